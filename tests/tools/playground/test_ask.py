"""interleave.tools.playground.ask: the playground answers a question exactly as the SHARD evaluation
answers the same query (same prompt, collation, seed, sampler, P(yes), parser), refuses what cannot
be asked with a message, and loads only checkpoints that fit the config."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from interleave.errors import InterleaveError
from interleave.eval.evaluate import answer_queries, prompt_table, render_instruction
from interleave.eval.query import Query
from interleave.eval.settings import EvalSettings
from interleave.model.fitting import CheckpointMismatch
from interleave.model.generation import Sampling
from interleave.tools.playground.ask import (
    PlaygroundError,
    Question,
    ask,
    build_served,
    check_question,
    describe,
    fbank_image,
    load_checkpoint,
    newest_checkpoint,
    template_prompts,
)
from tests.helpers import write_clip, write_config


@pytest.fixture()
def served(tmp_path, small_dataset, tiny_model_kwargs):
    return build_served(str(write_config(tmp_path, small_dataset, tiny_model_kwargs)), "none")


def save_trainable(model, path, scale: float = 1.0, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone() * scale for k, v in model.trainable_parameters().items()}
    torch.save({"state_dict": state, "hyper_parameters": dict(model.hparams), **extra}, path)
    return path


@pytest.mark.parametrize("layout", ["interleaved", "noninterleaved"])
def test_the_answers_are_those_the_shard_evaluation_gives_the_same_query(served, tmp_path, layout):
    clip = str(write_clip(tmp_path / "clip.wav", freq=900.0))
    query = Query(id="q", task="synonym", label="Siren", word="siren", audio=clip, candidate="alarm", truth="yes")
    sampling = Sampling(max_new_tokens=6, temperature=1.0)  # a random model at T=1: seeds show in the answers
    settings = EvalSettings(
        sampling=sampling, repeats=3, batch_size=1, seed=7, scoring=True, full_answers=True
    )  # the page shows whole answers
    (row,) = answer_queries(served.model, [query], layout, settings, served.inputs, {})
    settings = replace(
        settings, full_answers=False
    )  # the default mode: each answer cut at its verdict, the same verdicts
    (cut,) = answer_queries(served.model, [query], layout, settings, served.inputs, {})
    assert cut.parsed == row.parsed and all(row.answers[i].startswith(a) for i, a in enumerate(cut.answers))
    interleaved, ltu = template_prompts("synonym", "alarm", served.settings.table)
    assert (interleaved, ltu) == (
        render_instruction(query, "interleaved", prompt_table()),
        render_instruction(query, "noninterleaved", prompt_table()),
    )
    question = Question(
        prompt=interleaved, ltu_prompt=ltu, clips=[clip], sampling=sampling, repeats=3, seed=7, score=True
    )
    mine = ask(served, question)["layouts"][layout]
    assert mine["answers"] == row.answers and mine["verdicts"] == row.parsed
    assert mine["p_yes"] == pytest.approx(row.p_yes)
    other = ask(
        served, Question(prompt=interleaved, ltu_prompt=ltu, clips=[clip], sampling=sampling, repeats=3, seed=8)
    )
    assert other["layouts"][layout]["answers"] != row.answers  # the seed is what reproduces them


def test_ltu_layout_is_derived_from_a_free_text_prompt_and_shown_audio_first(served, tmp_path):
    clip = str(write_clip(tmp_path / "clip.wav"))
    result = ask(
        served, Question(prompt="Is [AUDIO] loud?", clips=[clip], repeats=1, sampling=Sampling(max_new_tokens=2))
    )
    ltu = result["layouts"]["noninterleaved"]
    assert ltu["instruction"] == "Is this audio loud?" and ltu["prompt"].startswith("[AUDIO] ### Instruction:")
    assert "### Instruction:\nIs [AUDIO] loud?" in result["layouts"]["interleaved"]["prompt"]
    assert result["clips"][0]["name"] == "clip.wav" and result["clips"][0]["seconds"] == 1.0
    shown = describe(result)
    assert shown["interleaved"].count("\n1. ") == 1 and "verdicts (paper parser)" in shown["interleaved"]


@pytest.mark.parametrize(
    "prompt, clips, expected",
    [
        ("", 1, "Write a prompt"),
        ("Is [AUDIO] loud?", 0, "Add a clip"),
        ("Is it loud?", 1, "The prompt has 0 [AUDIO] placeholder(s) but 1 clip(s)"),
        ("Is [AUDIO] louder than [AUDIO]?", 1, "The prompt has 2 [AUDIO] placeholder(s) but 1 clip(s)"),
        ("[AUDIO] [AUDIO] [AUDIO] [AUDIO]?", 4, "4 clips in one prompt: the page takes at most 3."),
    ],
)
def test_questions_that_cannot_be_asked_say_why(prompt, clips, expected):
    with pytest.raises(
        PlaygroundError, match=expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        check_question(Question(prompt=prompt, clips=[f"c{i}.wav" for i in range(clips)]))


def test_unreadable_and_empty_clips_and_long_prompts_are_named(served, tmp_path):
    empty, junk = tmp_path / "empty.wav", tmp_path / "junk.ogg"
    empty.write_bytes(b"")
    junk.write_bytes(b"not audio " * 20)
    with pytest.raises(PlaygroundError, match=r"Clip 1 \(empty.wav\): file is empty"):
        ask(served, Question(prompt="Is [AUDIO] loud?", clips=[str(empty)]))
    with pytest.raises(PlaygroundError, match=r"Clip 1 \(junk.ogg\): cannot decode audio"):
        ask(served, Question(prompt="Is [AUDIO] loud?", clips=[str(junk)]))
    clip = str(write_clip(tmp_path / "clip.wav"))
    long = ask(
        served,
        Question(
            prompt="Is [AUDIO] " + "very " * 200 + "loud?",
            clips=[clip],
            ltu_prompt="Loud?",
            repeats=1,
            sampling=Sampling(max_new_tokens=2),
        ),
    )
    assert "more than max_length=128" in long["layouts"]["interleaved"]["error"]
    assert long["layouts"]["noninterleaved"]["answers"]  # the other layout is still answered


def test_a_checkpoint_loads_only_if_it_fits_and_none_restores_the_zero_shot_model(served, tmp_path, tiny_model_kwargs):
    from interleave.model.module import AudioLLM

    model = served.model
    before = {k: v.clone() for k, v in model.trainable_parameters().items()}
    other = AudioLLM(**{**tiny_model_kwargs, "lora_r": 2})
    with pytest.raises(
        CheckpointMismatch, match=r"does not fit the config's model: .*another shape.*lora_r: 4 here, 2"
    ):
        load_checkpoint(served, str(save_trainable(other, tmp_path / "other.ckpt")))
    assert all(torch.equal(v, before[k]) for k, v in model.trainable_parameters().items())  # nothing changed
    # Same shapes, another lora_alpha: the factors would be applied at the wrong scale, so refused.
    scaled = AudioLLM(**{**tiny_model_kwargs, "lora_alpha": 2 * model.hparams["lora_alpha"]})
    with pytest.raises(
        CheckpointMismatch, match=r"trained at another scale \(lora_alpha\).*lora_alpha: \d+ here, \d+ in"
    ):
        load_checkpoint(served, str(save_trainable(scaled, tmp_path / "scaled.ckpt")))
    assert all(torch.equal(v, before[k]) for k, v in model.trainable_parameters().items())
    with pytest.raises(InterleaveError, match="checkpoint not found"):
        load_checkpoint(served, str(tmp_path / "missing.ckpt"))
    fitting = save_trainable(model, tmp_path / "fits.ckpt", scale=2.0)
    assert load_checkpoint(served, str(fitting)) == f"checkpoint {fitting}"
    assert all(torch.equal(v, 2 * before[k]) for k, v in model.trainable_parameters().items())
    assert load_checkpoint(served, "none") == "the zero-shot model"
    assert all(torch.equal(v, before[k]) for k, v in model.trainable_parameters().items())


def test_without_ckpt_the_newest_intact_checkpoint_of_the_run_is_served(tmp_path, small_dataset, tiny_model_kwargs):
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)  # logger: runs/t, checkpoints: ckpt/
    assert "zero-shot" in build_served(str(config)).serving
    served = build_served(str(config), "none")
    old = save_trainable(served.model, tmp_path / "runs" / "t" / "version_0" / "checkpoints" / "last.ckpt")
    new = save_trainable(served.model, tmp_path / "runs" / "t" / "version_1" / "checkpoints" / "epoch=0.ckpt")
    torn = tmp_path / "ckpt" / "last.ckpt"
    torn.parent.mkdir()
    torn.write_bytes(new.read_bytes()[:100])
    assert newest_checkpoint([old.parent, new.parent, torn.parent]) == new
    assert build_served(str(config)).serving == f"checkpoint {new} (the newest of the config's run)"


def test_a_checkpoint_that_does_not_fit_at_start_up_leaves_the_zero_shot_model_and_says_why(
    tmp_path, small_dataset, tiny_model_kwargs
):
    from interleave.model.module import AudioLLM

    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    other = save_trainable(AudioLLM(**{**tiny_model_kwargs, "lora_r": 2}), tmp_path / "other.ckpt")
    served = build_served(str(config), str(other))
    assert served.serving == "the zero-shot model"
    assert served.note.startswith(f"{other} does not fit the config's model") and served.note.endswith(
        "; serving the zero-shot model instead"
    )
    assert "checkpoint not found" in build_served(str(config), str(tmp_path / "missing.ckpt")).note


def test_the_fbank_image_is_a_picture_of_the_clip(served, tmp_path):
    from interleave.encoders.audio import load_fbank

    clip = {"name": "c.wav", "seconds": 1.0, "fbank": load_fbank(write_clip(tmp_path / "c.wav"))}
    one, two = fbank_image([clip]), fbank_image([clip, clip])
    assert one.ndim == 3 and one.shape[2] == 3 and one.shape[0] > 100 and one.std() > 10
    assert two.shape[0] > 1.8 * one.shape[0] and two.shape[1] == one.shape[1]  # one row per clip


@pytest.fixture()
def released(tmp_path, small_dataset):
    """A run's config with configs/models/qwen2_audio.yaml after it and the released folder given as
    --paths.qwen2_audio, as a run trained through the overlay is started: build_served's arguments."""
    from tests.helpers import REPO, save_tiny_qwen2_audio

    folder = save_tiny_qwen2_audio(tmp_path / "qwen2-audio")
    base = write_config(tmp_path, small_dataset, {"lora_r": 4, "lora_alpha": 8})
    configs = [str(base), str(REPO / "configs" / "models" / "qwen2_audio.yaml")]
    return {"config": configs, "overrides": [f"--paths.qwen2_audio={folder}"]}


@pytest.mark.parametrize("layout", ["interleaved", "noninterleaved"])
def test_a_released_model_is_served_in_its_chat_layout_with_spans_as_long_as_the_clip(released, tmp_path, layout):
    """model.pretrained (issue 36): both layouts answered in Qwen2-Audio's chat layout, each clip's span
    as long as the clip (13 s: 325 positions, past LTU's 10.24 s), the answers the SHARD evaluation gives."""
    served = build_served(ckpt="none", **released)
    clip = str(write_clip(tmp_path / "clip.wav", seconds=13.0, freq=900.0))
    query = Query(id="q", task="synonym", label="Siren", word="siren", audio=clip, candidate="alarm", truth="yes")
    sampling = Sampling(max_new_tokens=4, temperature=1.0)
    settings = EvalSettings(sampling=sampling, repeats=2, batch_size=1, seed=3, scoring=True, full_answers=True)
    (row,) = answer_queries(served.model, [query], layout, settings, served.inputs, {})
    interleaved, ltu = template_prompts("synonym", "alarm", served.settings.table)
    question = Question(
        prompt=interleaved, ltu_prompt=ltu, clips=[clip], sampling=sampling, repeats=2, seed=3, score=True
    )
    result = ask(served, question)
    mine = result["layouts"][layout]
    assert mine["answers"] == row.answers and mine["p_yes"] == pytest.approx(row.p_yes)
    assert result["clips"][0]["heard"] == 13.0  # Qwen2-Audio hears 30 s, not LTU's 10.24
    assert mine["prompt"].startswith("<|im_start|>system\n") and mine["prompt"].endswith("<|im_start|>assistant\n")
    assert "Audio 1: <|audio_bos|>[AUDIO]<|audio_eos|>" in mine["prompt"]
    assert result["clips"][0]["positions"] == 13 * 25  # 25 positions a second
    from interleave.tools.playground.cli import picture_label

    assert picture_label(served).startswith("fbank of each clip's first 10.24 s")  # not what this tower reads


def test_a_released_models_server_loads_only_checkpoints_of_its_folder(released, tmp_path):
    """The checkpoint's record of its released folder: one trained on another folder (same shapes,
    other weights) is refused by the page and at start-up; one of the served folder loads."""
    from interleave.model.module import AudioLLM
    from tests.helpers import save_tiny_qwen2_audio

    served = build_served(ckpt="none", **released)
    own = served.model
    checkpoint = {"state_dict": {k: 2 * v.detach() for k, v in own.trainable_parameters().items()}}
    own.on_save_checkpoint(checkpoint)  # what a fit writes: the trainable weights and the folder's identity
    mine = tmp_path / "mine.ckpt"
    torch.save({**checkpoint, "hyper_parameters": dict(own.hparams)}, mine)
    other = AudioLLM(pretrained=str(save_tiny_qwen2_audio(tmp_path / "other", seed=1)), lora_r=4, lora_alpha=8)
    theirs = save_trainable(other, tmp_path / "theirs.ckpt", released=other.released.identity())
    with pytest.raises(CheckpointMismatch, match="theirs.ckpt was trained on another released model"):
        load_checkpoint(served, str(theirs))
    assert load_checkpoint(served, str(mine)) == f"checkpoint {mine}"
    assert all(torch.equal(v, checkpoint["state_dict"][k]) for k, v in own.trainable_parameters().items())
    note = build_served(ckpt=str(theirs), **released).note
    assert "was trained on another released model" in note and note.endswith("; serving the zero-shot model instead")
