"""`model.pretrained` on a released Audio Flamingo 3 folder: the framework's own path (its collator
and the folder's chat template, the audioflamingo3 encoder kind's 30-s windows joined into one
span, the mlp projector with the released weights, `merge_embeddings`, the LLM read in place) gives
`AudioFlamingo3ForConditionalGeneration`'s logits (<= 1e-5 in float32) for clips of 1 s, 30 s and
34 s in one batch, the processor's token ids for one clip before the text, and generate()'s greedy
tokens; mid-text and several clips are read as written (with the start-up warning)."""

from __future__ import annotations

import pytest
import torch

from interleave.data.collate import Collator
from interleave.data.records import Record
from interleave.encoders.base import stack_clips
from interleave.errors import InterleaveError
from interleave.model.module import AudioLLM
from tests.helpers import af3_processor_inputs, clip, save_tiny_audioflamingo3

TOL = 1e-5
CASES = [
    (clip(1.0, seed=4), "What sound is this?", "Labels: Siren"),
    (clip(30.0, seed=5), "Listen and name the sound.", "Beep"),
    (clip(34.0, seed=6), "What sound is this?", "Drum; Tick"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_audioflamingo3(tmp_path_factory.mktemp("af3"))


@pytest.fixture(scope="module")
def model(folder):
    with pytest.warns(UserWarning, match="outside its training layout"):
        return AudioLLM(pretrained=str(folder)).eval()


@pytest.fixture(scope="module")
def reference(folder):
    from transformers import AudioFlamingo3ForConditionalGeneration

    return AudioFlamingo3ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()


def _batch(model, cases, answers: bool = True, cached: bool = False):
    """The framework's batch of native records (one clip, no placeholder: before the text)."""
    collator = Collator.of_spec(
        model.data_spec(), max_length=4096, with_answer=answers, padding_side="right" if answers else "left"
    )
    items = []
    for i, (wave, text, answer) in enumerate(cases):
        record = Record(id=str(i), audio=f"clip{i}.wav", instruction=text, output=answer or "")
        inputs = model.audio_encoder.inputs_from_waveform(torch.from_numpy(wave))
        if cached:
            with torch.no_grad():
                features = model.audio_encoder(inputs[None])[0]
            items.append({"record": record, "audio_features": features[: model.clip_positions(inputs)]})
        else:
            items.append({"record": record, "audio": inputs})
    return collator(items)


@pytest.mark.parametrize("cached", [False, True], ids=["raw clips", "cached features"])
def test_framework_logits_equal_the_released_models(folder, model, reference, cached):
    batch = _batch(model, CASES, cached=cached)
    theirs = af3_processor_inputs(folder, CASES)
    audio_id = model.tokenizer.convert_tokens_to_ids("<sound>")
    # the framework's ids are the processor's, its audio spans where the processor's <sound>s are
    assert torch.equal(batch["audio_mask"], theirs["input_ids"] == audio_id)
    assert torch.equal(batch["input_ids"][~batch["audio_mask"]], theirs["input_ids"][~batch["audio_mask"]])
    assert torch.equal(batch["attention_mask"], theirs["attention_mask"])
    assert batch["audio_mask"].sum(dim=1).tolist() == [25, 750, 850]
    with torch.no_grad():
        ours = model(batch).logits
        expected = reference(**theirs).logits
    keep = batch["attention_mask"].bool()
    assert (ours[keep] - expected[keep]).abs().max() <= TOL


def test_answers_end_with_the_turn_end_token(model):
    batch = _batch(model, CASES[:1])
    labels = batch["labels"][0][batch["labels"][0] != -100].tolist()
    assert model.tokenizer.decode(labels) == "Labels: Siren<|im_end|>"


def test_greedy_tokens_equal_generate(folder, model, reference):
    cases = [(wave, text, None) for wave, text, _ in CASES]
    batch = _batch(model, cases, answers=False)
    theirs = af3_processor_inputs(folder, cases, side="left")
    assert torch.equal(batch["input_ids"][~batch["audio_mask"]], theirs["input_ids"][~batch["audio_mask"]])
    with torch.no_grad():
        embeds = model.merge_embeddings(batch["input_ids"], batch["audio_mask"], batch["audio"])
        ours = model.llm.generate(
            inputs_embeds=embeds,
            attention_mask=batch["attention_mask"],
            max_new_tokens=8,
            min_new_tokens=8,
            do_sample=False,
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


def test_mid_text_and_several_clips_are_read_where_they_stand(model):
    """Outside AF3's training layout, but exact: each clip's span where its placeholder is, a
    record of two clips without placeholders one `<sound>` line each before the text."""
    template = model.data_spec().template
    sound = "<|im_start|>user\n"
    assert sound + "Is [AUDIO] a siren?<|im_end|>" in template.render("Is [AUDIO] a siren?")
    assert sound + "[AUDIO]\n[AUDIO]\nSame?<|im_end|>" in template.render("Same?", clips=2)
    assert sound + "[AUDIO]Same?<|im_end|>" in template.render("Same?", clips=1)  # the native layout
    waves = [clip(1.0, seed=1), clip(2.0, seed=2)]
    inputs = [model.audio_encoder.inputs_from_waveform(torch.from_numpy(w)) for w in waves]
    collator = Collator.of_spec(model.data_spec(), max_length=4096)
    records = [
        Record(id="a", audio=("a.wav", "b.wav"), instruction="Is [AUDIO] like [AUDIO]?", output="No."),
        Record(id="b", audio=("a.wav", "b.wav"), instruction="Same?", output="No."),
    ]
    batch = collator([{"record": r, "audio": inputs} for r in records])
    with torch.no_grad():
        loss = model.loss(batch)
    assert torch.isfinite(loss)
    assert batch["audio"].shape[0] == 4 and batch["audio_mask"].sum(dim=1).tolist() == [75, 75]
    # each clip's span alone equals its clip's embeddings: the merge puts clip k at span k
    with torch.no_grad():
        merged = model.batch_embeddings(batch)
        first = model.audio_embeddings(stack_clips(inputs[:1]))[0, :25]
    start = int(batch["audio_mask"][0].nonzero()[0])
    assert (merged[0, start : start + 25] - first).abs().max() <= TOL


def test_two_clips_that_touch_are_named_as_a_record_problem(model):
    from interleave.errors import RecordError

    collator = Collator.of_spec(model.data_spec(), max_length=4096)
    record = Record(id="t", audio=("a.wav", "b.wav"), instruction="Are [AUDIO] [AUDIO] alike?", output="No.")
    with pytest.raises(RecordError, match="two clips touch"):
        collator.encode(record, lengths=[25, 25])


def test_the_released_parts(folder, model):
    from safetensors import safe_open

    assert model.audio_encoder.kind == "audioflamingo3" and len(model.audio_proj) == 3
    with safe_open(str(folder / "model.safetensors"), "pt") as weights:
        assert torch.equal(model.audio_proj[0].weight, weights.get_tensor("multi_modal_projector.linear_1.weight"))
        assert torch.equal(model.audio_proj[2].bias, weights.get_tensor("multi_modal_projector.linear_2.bias"))
    lora = {n for n, p in model.named_parameters() if p.requires_grad and "lora_" in n}
    assert lora and all(n.startswith("llm.") for n in lora)  # LoRA on the LLM alone, not the tower's q/v
    assert model.tokenizer.eos_token == "<|im_end|>"
    assert model.data_spec().heard_seconds == 600.0


def test_a_folder_without_a_chat_template_is_refused_by_name(tmp_path):
    bare = save_tiny_audioflamingo3(tmp_path / "bare", template=False)
    with pytest.raises(InterleaveError, match=f"model.pretrained: {bare} has no chat template"):
        AudioLLM(pretrained=str(bare)).data_spec()


@pytest.mark.slow
def test_fit_validate_report_through_the_overlay(tmp_path, small_dataset, capsys):
    """configs/models/audio_flamingo3.yaml over a run's config: fit 2 steps with the SHARD evaluation
    (both layouts), validate the checkpoint, and the report tables the points."""
    import json

    import train
    from interleave.tools.report import cli as report
    from tests.helpers import REPO, shard_config

    folder = save_tiny_audioflamingo3(tmp_path / "audio-flamingo-3")
    kwargs = {"lora_r": 4, "lora_alpha": 8, "learning_rate": 1e-2, "warmup_steps": 1, "val_max_new_tokens": 4}
    config = shard_config(tmp_path, small_dataset, kwargs, {"text_control": False}, max_steps=2)
    overlay = ["--config", str(REPO / "configs/models/audio_flamingo3.yaml"), f"--paths.audio_flamingo3={folder}"]
    run = train.cli(["fit", "--config", str(config), *overlay])
    assert run.model.audio_encoder.kind == "audioflamingo3" and run.trainer.global_step == 2
    assert run.datamodule.hparams.max_length == 1024
    batch = next(iter(run.datamodule.val_dataloader()))
    assert batch["audio_mask"].sum(dim=1).tolist() == [25, 25]  # 1-s clips: 25 positions each
    prompt = run.model.tokenizer.decode(batch["input_ids"][0][~batch["audio_mask"][0]])
    assert prompt.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    train.cli(["validate", "--config", str(config), *overlay, f"--ckpt_path={ckpt}"])
    versions = sorted((tmp_path / "runs" / "t").glob("version_*"))
    metrics = json.loads((versions[-1] / "predictions" / "epoch=01.metrics.json").read_text())
    assert metrics["ckpt_path"] == str(ckpt) and "val/shard/synonym/accuracy" in metrics
    capsys.readouterr()
    assert report.main([str(tmp_path / "runs" / "t"), "--out", str(tmp_path / "out"), "--bootstrap", "0"]) == 0
    markdown = capsys.readouterr().out
    assert "| t/version_1 | interleaved | 01" in markdown and "noninterleaved" in markdown
