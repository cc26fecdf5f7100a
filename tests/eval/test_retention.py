"""interleave.eval.retention: the text, its fixed seeded selection, the perplexity against transformers'
own loss (batched and one segment at a time), the base LLM's figure with a zero update, a large update,
and every bad input named in one line."""

import json
import math
from pathlib import Path

import pytest
import torch

from interleave.errors import InterleaveError
from interleave.eval.evaluate import Point
from interleave.eval.retention import RetentionConfig, figures, load, read_units, score, segments, select
from interleave.tools.demo.cli import DEMO_TEXT
from tests.helpers import fit_base_to_text, large_lora_update

ONE = Point(epoch=0, rank=0, world_size=1)


def selection(model, tokens: int = 300, seed: int = 0, file: Path = DEMO_TEXT, context: int | None = None, **kw):
    config = RetentionConfig(name="t", file=str(file), tokens=tokens, seed=seed, **kw)
    return load(config, model.tokenizer, context or model.llm.config.max_position_embeddings)


def reference(llm, segs, batched: bool) -> float:
    """Σ NLL by transformers' own forward and loss (labels), with the adapter active."""
    total = 0.0
    groups = [segs] if batched else [[s] for s in segs]
    for group in groups:
        width = max(len(s.ids) for s in group)
        ids = torch.zeros((len(group), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for row, s in enumerate(group):
            ids[row, : len(s.ids)] = torch.tensor(s.ids)
            mask[row, : len(s.ids)] = 1
            labels[row, : len(s.ids)] = torch.tensor(s.ids)
        with torch.no_grad():
            loss = llm(input_ids=ids, attention_mask=mask, labels=labels).loss
        total += float(loss) * sum(s.scored for s in group)
    return total


def test_the_perplexity_is_transformers_own_loss_batched_and_one_segment_at_a_time(model):
    chosen = selection(model)
    scored = score(model.llm, chosen, 0, ONE)
    assert sum(scored.tokens) == 300
    for batched in (True, False):
        assert math.isclose(sum(scored.nll), reference(model.llm, chosen.segments, batched), rel_tol=1e-5)
    assert figures("t", scored) == {"val/retention/t/perplexity": pytest.approx(scored.perplexity)}
    assert scored.perplexity == pytest.approx(math.exp(reference(model.llm, chosen.segments, False) / 300), rel=1e-5)


def test_the_selection_is_fixed_seeded_and_exactly_the_tokens_asked(model):
    first, again, other = selection(model), selection(model), selection(model, seed=1)
    assert first.segments == again.segments and first.tokens == 300
    assert other.segments != first.segments and other.tokens == 300
    assert first.header()["sha256"] == again.header()["sha256"]
    # the scored positions of every segment are a prefix of a real segment of the text
    found, _ = segments(read_units(DEMO_TEXT), model.tokenizer, model.llm.config.max_position_embeddings)
    for s in first.segments:
        assert any(f.ids[: len(s.ids)] == s.ids and f.line == s.line for f in found)


def test_the_base_figure_is_the_same_with_the_update_at_zero_and_a_large_update_raises_it(model):
    chosen = selection(model, tokens=120)
    fit_base_to_text(model, chosen.segments, steps=20)
    with_zero = score(model.llm, chosen, 0, ONE).perplexity  # peft's LoRA B starts at zero
    with model.llm.disable_adapter():
        base = score(model.llm, chosen, 0, ONE).perplexity
    assert with_zero == pytest.approx(base, rel=1e-6)
    large_lora_update(model)
    assert base < 100  # the base has learnt the text: better than chance (400 tokens)
    assert score(model.llm, chosen, 0, ONE).perplexity > 1.5 * base


def test_a_unit_longer_than_the_context_is_split_and_said(model, tmp_path):
    text = tmp_path / "long.txt"
    text.write_text(" ".join(["the people of the city"] * 60) + "\n\nshort one\n")
    chosen = selection(model, tokens=40, file=text, context=32)
    assert chosen.split_units == 1 and all(len(s.ids) <= 32 for s in chosen.segments)
    assert "1 unit(s) longer than the context (32 tokens) split there" in chosen.describe()


def test_jsonl_texts_are_units(model, tmp_path):
    text = tmp_path / "t.jsonl"
    text.write_text("\n".join(json.dumps({"text": p}) for p in ["one two three four", "five six seven"]) + "\n")
    assert [u.line for u in read_units(text)] == [1, 2]
    assert selection(model, tokens=5, file=text).tokens == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the retention text is empty"),
        (b"\n  \n\n", "the retention text is empty"),
        (b"fine line\n\nbad \xff byte\n", ":3: not UTF-8 text"),
        (b"a few words\n", "fewer than the 300 asked"),
    ],
)
def test_bad_texts_are_one_line_naming_the_file(model, tmp_path, content, message):
    text = tmp_path / "bad.txt"
    text.write_bytes(content)
    with pytest.raises(InterleaveError) as err:
        selection(model, file=text)
    assert str(err.value).startswith(str(text)) and message in str(err.value) and "\n" not in str(err.value)


def test_bad_jsonl_and_missing_files_and_bad_configs_are_named(model, tmp_path):
    text = tmp_path / "bad.jsonl"
    text.write_text('{"text": "ok"}\n{"txt": 1}\n')
    with pytest.raises(InterleaveError, match=r"bad\.jsonl:2: expected"):
        read_units(text)
    with pytest.raises(InterleaveError, match=r"missing\.txt: cannot read"):
        read_units(tmp_path / "missing.txt")
    with pytest.raises(InterleaveError, match="tokens must be a positive integer"):
        RetentionConfig(name="x", file="f", tokens=0)
    with pytest.raises(InterleaveError, match="without '/'"):
        RetentionConfig(name="a/b", file="f")


def test_select_takes_whole_segments_then_cuts_the_last():
    from interleave.eval.retention import Segment

    found = [Segment(i, 0, tuple(range(i + 3))) for i in range(5)]  # 2..6 scored tokens
    chosen = select(found, 9, 0, "f")
    assert sum(s.scored for s in chosen) == 9 and all(s.ids == found[s.line].ids[: len(s.ids)] for s in chosen)
