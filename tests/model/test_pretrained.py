"""interleave.model.pretrained: `model.pretrained` reads a released Qwen2-Audio folder into the
framework's own parts, and the framework's path (its collator and chat layout, the qwen2_audio
encoder kind, the linear projector with the released weights, `merge_embeddings`, the LLM read in
place) gives `Qwen2AudioForConditionalGeneration`'s logits (<= 1e-5 in float32) and greedy tokens,
with the processor's token ids, from raw clips and from cached features."""

from __future__ import annotations

import pytest
import torch

from interleave.data.collate import Collator
from interleave.data.records import Record
from interleave.errors import InterleaveError
from interleave.model.module import AudioLLM
from tests.helpers import clip, processor_inputs, reference_logits, save_tiny_qwen2_audio

TOL = 1e-5


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_qwen2_audio(tmp_path_factory.mktemp("qwen2_audio"))


@pytest.fixture(scope="module")
def model(folder):
    return AudioLLM(pretrained=str(folder)).eval()


@pytest.fixture(scope="module")
def reference(folder):
    from transformers import Qwen2AudioForConditionalGeneration

    return Qwen2AudioForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()


def _record(items: list, answer: str, index: int = 0) -> Record:
    """A record of `items` (text pieces and clips): `[AUDIO]` where a clip stands mid-text; a
    record whose only clip comes first and alone is written without one (the native layout)."""
    clips = [x for x in items if not isinstance(x, str)]
    native = len(clips) == 1 and not isinstance(items[0], str) and len(items) == 2
    text = items[1] if native else "".join(x if isinstance(x, str) else "[AUDIO]" for x in items)
    paths = tuple(f"clip{index}_{k}.wav" for k in range(len(clips)))
    return Record(id=str(index), audio=paths[0] if len(paths) == 1 else paths, instruction=text, output=answer)


def _batch(model, cases, answers: bool = True, cached: bool = False):
    collator = Collator.of_spec(
        model.data_spec(), max_length=4096, with_answer=answers, padding_side="right" if answers else "left"
    )
    items = []
    for i, (pieces, answer) in enumerate(cases):
        inputs = [
            model.audio_encoder.inputs_from_waveform(torch.from_numpy(x)) for x in pieces if not isinstance(x, str)
        ]
        if cached:
            with torch.no_grad():
                features = model.audio_encoder(torch.stack(inputs))
            counts = model.audio_encoder.positions(torch.stack(inputs)).tolist()
            items.append(
                {
                    "record": _record(pieces, answer or "", i),
                    "audio_features": [f[:n] for f, n in zip(features, counts)],
                }
            )
        else:
            items.append({"record": _record(pieces, answer or "", i), "audio": inputs})
    return collator(items)


CASES = {
    "one clip mid-text": [(["Is ", clip(2.0, seed=1), " a siren?"], "Yes, it is.")],
    "two clips of different lengths": [(["Is ", clip(1.3, seed=2), " like ", clip(4.1, seed=3), "?"], "No.")],
    "a batch of 1 s, 7 s and 30 s": [
        ([clip(1.0, seed=4), "What sound is this?"], "Labels: Siren"),
        ([clip(7.0, seed=5), "Listen and name the sound."], "Beep"),
        ([clip(30.0, seed=6), "What sound is this?"], "Drum; Tick"),
    ],
}


@pytest.mark.parametrize("cached", [False, True], ids=["raw clips", "cached features"])
@pytest.mark.parametrize("case", list(CASES))
def test_framework_logits_equal_the_released_models(folder, model, case, cached):
    cases = CASES[case]
    batch = _batch(model, cases, cached=cached)
    theirs = processor_inputs(folder, cases)
    audio_id = model.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    # the framework's ids are the processor's, its audio spans where the processor's <|AUDIO|>s are
    assert torch.equal(batch["audio_mask"], theirs["input_ids"] == audio_id)
    assert torch.equal(batch["input_ids"][~batch["audio_mask"]], theirs["input_ids"][~batch["audio_mask"]])
    assert torch.equal(batch["attention_mask"], theirs["attention_mask"])
    with torch.no_grad():
        ours = model(batch).logits
    keep = batch["attention_mask"].bool()
    assert (ours[keep] - reference_logits(folder, theirs)[keep]).abs().max() <= TOL


def test_answers_end_with_the_turn_end_token(model):
    batch = _batch(model, CASES["one clip mid-text"])
    labels = batch["labels"][0][batch["labels"][0] != -100].tolist()
    assert model.tokenizer.decode(labels) == "Yes, it is.<|im_end|>"


def test_greedy_tokens_equal_generate(folder, model, reference):
    cases = [
        (pieces, None) for pieces, _ in CASES["a batch of 1 s, 7 s and 30 s"] + CASES["two clips of different lengths"]
    ]
    batch = _batch(model, cases, answers=False)
    theirs = processor_inputs(folder, cases, side="left")
    assert torch.equal(batch["input_ids"][~batch["audio_mask"]], theirs["input_ids"][~batch["audio_mask"]])
    with torch.no_grad():
        embeds = model.merge_embeddings(batch["input_ids"], batch["audio_mask"], batch["audio"])
        ours = model.llm.generate(
            inputs_embeds=embeds,
            attention_mask=batch["attention_mask"],
            max_new_tokens=8,
            do_sample=False,
            min_new_tokens=8,
            pad_token_id=model.tokenizer.pad_token_id,
        )
        expected = reference.generate(**theirs, max_new_tokens=8, min_new_tokens=8, do_sample=False)
    assert torch.equal(ours, expected[:, theirs["input_ids"].shape[1] :])
    texts = model.generate(
        batch["input_ids"],
        batch["attention_mask"],
        batch["audio_mask"],
        batch["audio"],
        max_new_tokens=8,
        do_sample=False,
    )
    with torch.no_grad():
        until_end = reference.generate(**theirs, max_new_tokens=8, do_sample=False)
    assert texts == model.tokenizer.batch_decode(until_end[:, theirs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_the_released_parts(folder, model):
    from safetensors import safe_open

    assert model.audio_encoder.kind == "qwen2_audio" and len(model.audio_proj) == 1
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        assert torch.equal(model.audio_proj[0].weight, weights.get_tensor("multi_modal_projector.linear.weight"))
    lora = {n for n, p in model.named_parameters() if p.requires_grad and "lora_" in n}
    assert lora and all(n.startswith("llm.") for n in lora)  # LoRA on the LLM alone, not the tower's q/v
    assert model.tokenizer.eos_token == "<|im_end|>"


@pytest.mark.parametrize(
    "setting",
    [
        dict(llm="/models/other"),
        dict(encoder="whisper"),
        dict(audio_tokens=64),
        dict(tokenizer="/x"),
        dict(ltu_checkpoint="/x.bin"),
        dict(encoder_path="/models/whisper"),
    ],
)
def test_contradicting_settings_are_refused_by_name(folder, setting):
    (name,) = setting
    with pytest.raises(InterleaveError, match=f"remove model.{name}$"):
        AudioLLM(pretrained=str(folder), **setting)


def test_settings_that_agree_with_the_folder_are_accepted(folder, model):
    """Only a real contradiction is refused: a config that names the folder itself as the LLM,
    tokenizer or encoder folder, or the family's own encoder and projector kinds, builds the same model."""
    agreeing = AudioLLM(
        pretrained=str(folder),
        llm=f"{folder}/",
        tokenizer=str(folder),
        encoder="qwen2_audio",
        encoder_path=str(folder / ".." / folder.name),
        projector="linear",
    )
    assert agreeing.audio_encoder.kind == "qwen2_audio"
    ours, theirs = agreeing.state_dict(), model.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if "lora_A" not in k)  # LoRA's A starts random


def test_a_folder_of_another_family_is_refused(tmp_path):
    from transformers import WhisperConfig

    WhisperConfig().save_pretrained(tmp_path)
    with pytest.raises(
        InterleaveError, match=r"holds a 'whisper' model; the released families supported are \['qwen2_audio'\]"
    ):
        AudioLLM(pretrained=str(tmp_path))


@pytest.mark.parametrize("where", ["chat_template.json", "tokenizer_config.json"])
def test_the_chat_template_is_read_where_the_folder_keeps_it(tmp_path, model, where):
    other = save_tiny_qwen2_audio(tmp_path / "q", template_in=where)
    from interleave.model.pretrained import read_released

    assert read_released(other).chat_template().template == model.released.chat_template().template


def test_a_cached_run_gives_the_uncached_runs_loss(tmp_path, model):
    import soundfile as sf

    from interleave.encoders.cache import FeatureCache

    waveforms = [clip(1.0, seed=7), clip(3.3, seed=8), clip(12.0, seed=9)]
    paths = []
    for k, wave in enumerate(waveforms):
        sf.write(tmp_path / f"c{k}.wav", wave, 16000)
        paths.append(str(tmp_path / f"c{k}.wav"))
    cache = FeatureCache.of(tmp_path / "cache", model.audio_encoder)
    stats = cache.ensure(model.audio_encoder, paths, batch_size=2)
    assert stats.built == 3 and [cache.get(p).shape[0] for p in paths] == [25, 82, 300]
    collator = Collator.of_spec(model.data_spec(), max_length=4096)
    records = [
        Record(id="a", audio=(paths[0], paths[1]), instruction="Is [AUDIO] like [AUDIO]?", output="No."),
        Record(id="b", audio=paths[2], instruction="What sound is this?", output="Labels: Siren"),
    ]
    raw = collator([{"record": r, "audio": [model.audio_encoder.load_inputs(p) for p in r.clips]} for r in records])
    cached = collator([{"record": r, "audio_features": [cache.get(p) for p in r.clips]} for r in records])
    assert cached["audio_features"].shape == (3, 300, model.audio_encoder.width)
    assert torch.equal(raw["input_ids"], cached["input_ids"]) and torch.equal(raw["audio_mask"], cached["audio_mask"])
    with torch.no_grad():
        assert (model.loss(raw) - model.loss(cached)).abs() <= TOL


def test_a_checkpoint_records_its_released_folder_and_fits_no_other(tmp_path, folder, model):
    from interleave.model.fitting import CheckpointMismatch, fitting_state

    checkpoint = {"state_dict": dict(model.state_dict()), "hyper_parameters": dict(model.hparams)}
    model.on_save_checkpoint(checkpoint)
    assert checkpoint["released"]["family"] == "qwen2_audio" and checkpoint["released"]["folder"] == str(folder)
    model.on_load_checkpoint(checkpoint)  # its own folder: fine
    assert fitting_state(model, checkpoint, "run.ckpt") is checkpoint["state_dict"]
    other = AudioLLM(pretrained=str(save_tiny_qwen2_audio(tmp_path / "other", seed=1)))  # same shapes, other weights
    with pytest.raises(InterleaveError, match="was trained on another released model"):
        other.on_load_checkpoint(checkpoint)
    with pytest.raises(CheckpointMismatch, match="run.ckpt was trained on another released model"):
        fitting_state(other, checkpoint, "run.ckpt")
    del checkpoint["released"]
    with pytest.raises(InterleaveError, match="was not trained on a released model"):
        model.on_load_checkpoint(checkpoint)
