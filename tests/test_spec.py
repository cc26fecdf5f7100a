"""interleave.spec: `DataSpec`, the model's side of the model <-> data handshake, defaults to LTU's (32
positions per clip, the Kaldi fbank and the 10.255 s it holds); the model states its own. `Batch`, what the
data side gives the model, is ARCHITECTURE.md's batch table, and what the collator makes."""

import re
from pathlib import Path

import pytest
import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.data.collate import Collator
from interleave.data.records import Record
from interleave.encoders.audio import FBANK_SECONDS, load_fbank
from interleave.spec import Batch, DataSpec


def test_a_spec_of_only_a_tokenizer_is_ltus():
    spec = DataSpec("tokenizer")
    assert (spec.audio_tokens, spec.audio_loader, spec.heard_seconds) == (NUM_AUDIO_TOKENS, load_fbank, FBANK_SECONDS)


def test_the_model_states_its_encoders_loader_and_positions(tiny_model_kwargs):
    from interleave.model.module import AudioLLM

    model = AudioLLM(**{**tiny_model_kwargs, "audio_tokens": 8})
    spec = model.data_spec()
    assert isinstance(spec, DataSpec) and spec.tokenizer is model.tokenizer and spec.audio_tokens == 8
    assert (
        spec.audio_loader == model.audio_encoder.load_inputs and spec.heard_seconds == model.audio_encoder.heard_seconds
    )


def batch_table() -> dict[str, bool]:
    """ARCHITECTURE.md's batch table: each key, and whether a batch may lack it ("optional")."""
    text = (Path(__file__).resolve().parents[1] / "ARCHITECTURE.md").read_text(encoding="utf-8")
    table = text.split("**Batch**", 1)[1].split("\n\n", 2)[1]
    found: dict[str, bool] = {}
    for line in table.splitlines()[2:]:
        keys, _, meaning = (cell.strip() for cell in line.strip("|").split("|"))
        for key in re.findall(r"`(\w+)`", keys):
            found[key] = meaning.startswith("optional")
    return found


def test_the_batch_type_is_architectures_batch_table():
    table = batch_table()
    assert list(table) == list(Batch.__annotations__)
    assert {key for key, optional in table.items() if optional} == Batch.__optional_keys__


@pytest.mark.parametrize("prompts", [False, True])
def test_a_collated_batch_holds_the_batch_types_keys(tokenizer, prompts):
    record = Record(id="r1", audio="a.wav", instruction="Is [AUDIO] loud?", output="Yes", where="f.jsonl:1")
    batch = Collator(tokenizer, with_prompt_batch=prompts)([{"record": record, "audio": torch.zeros(1024, 128)}])
    assert Batch.__required_keys__ <= set(batch) <= set(Batch.__annotations__)
    assert ("references" in batch) == prompts and "audio" in batch and "audio_features" not in batch
    for key, value in batch.items():
        assert isinstance(value, list if key in ("ids", "references") else torch.Tensor), key
