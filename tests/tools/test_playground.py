"""interleave.tools.playground: the page served on 127.0.0.1 with a tiny random model, called
through gradio_client as a browser calls it: both layouts' answers for one clip, Table 1's
templates, every bad input answered with a message (the server lives on), checkpoints loaded from
the page; the server is stopped at the end."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import torch

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # as the playground sets it: no call home from the tests either
pytest.importorskip("gradio", reason='the playground extra: pip install -e ".[playground]"')
from gradio_client import Client, handle_file  # noqa: E402

from interleave.tools.playground import (  # noqa: E402
    CLIP_SLOTS,
    build_page,
    launch,
    main,
    status_text,
)
from interleave.tools.playground_ask import Question, ask, build_served  # noqa: E402
from tests.conftest import TINY_ENCODER, write_clip, write_config  # noqa: E402

SAMPLING = dict(greedy=False, temperature=0.1, top_p=0.95, top_k=500, penalty=1.1, max_new=4, repeats=2, seed=3,
                score=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory, tokenizer_dir, tiny_llama_config):
    """(client, served model, folder): a tiny random model served on a free port of 127.0.0.1."""
    folder = tmp_path_factory.mktemp("playground")
    kwargs = dict(llm=None, llm_config=tiny_llama_config, tokenizer=str(tokenizer_dir), encoder="tiny",
                  encoder_kwargs=TINY_ENCODER, lora_r=4, lora_alpha=8)
    served = build_served(str(write_config(folder, folder, kwargs)), "none")
    port = free_port()
    page = launch(build_page(served), "127.0.0.1", port, block=False)
    assert page.server_name == "127.0.0.1" and page.local_url.startswith(f"http://127.0.0.1:{port}")
    yield Client(f"http://127.0.0.1:{port}/", verbose=False), served, folder
    page.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # the server is gone


def ask_page(client: Client, prompt: str, clips: list, ltu: str = "", template: str = "free text", **settings):
    values = {**SAMPLING, **settings}
    files = [handle_file(str(c)) for c in clips] + [None] * (CLIP_SLOTS - len(clips))
    return client.predict(prompt, ltu, template, *files, *values.values(), api_name="/ask")


def test_one_clip_is_answered_in_both_layouts_with_verdicts_p_yes_and_its_fbank(app, tmp_path):
    client, served, _ = app
    clip = write_clip(tmp_path / "siren.wav", freq=1500.0)
    message, interleaved, ltu, images, details = ask_page(client, "Is [AUDIO] similar to alarm?", [clip],
                                                         ltu="Is the sound of the object in this audio signal similar to alarm?")
    assert message == "Serving the zero-shot model; seed 3."
    assert "### Instruction:\nIs [AUDIO] similar to alarm?" in interleaved and "→ **" in interleaved and "P(yes) = " in interleaved
    assert "[AUDIO] ### Instruction:\nIs the sound of the object in this audio signal similar to alarm?" in ltu
    layouts = details["layouts"]
    assert set(layouts) == {"interleaved", "noninterleaved"} and details["seed"] == 3 and details["parser"] == "paper"
    assert details["sampling"]["max_new_tokens"] == 4 and details["clips"] == [{"name": "siren.wav", "seconds": 1.0}]
    for entry in layouts.values():
        assert len(entry["answers"]) == 2 and len(entry["verdicts"]) == 2 and 0 <= entry["p_yes"] <= 1
    # What the page shows is what the evaluation's code path gives for the same question and seed.
    direct = ask(served, Question(prompt="Is [AUDIO] similar to alarm?", clips=[str(clip)], repeats=2, seed=3, score=True,
                                  ltu_prompt="Is the sound of the object in this audio signal similar to alarm?",
                                  sampling=served.settings.sampling.__class__(max_new_tokens=4)))
    assert [e["answers"] for e in direct["layouts"].values()] == [e["answers"] for e in layouts.values()]
    assert images.endswith((".webp", ".png")) and Path(images).stat().st_size > 1000  # the fbank figure


def test_the_templates_fill_table_1s_questions_in_both_layouts(app):
    client, _, _ = app
    assert client.predict("hypernym", "vehicle", api_name="/template") == (
        "Is [AUDIO] a type of vehicle?", "Is the sound of the object in this audio signal a type of vehicle?")
    assert client.predict("identity", "", api_name="/template") == (
        "Can you list the labels based on [AUDIO] ?", "Can you list the labels based on this audio file?")


def test_an_identity_question_has_no_yes_no_verdict(app, tmp_path):
    client, _, _ = app
    clip = write_clip(tmp_path / "c.wav")
    _, interleaved, _, _, details = ask_page(client, "Can you list the labels based on [AUDIO] ?", [clip], template="identity",
                                             score=False, greedy=True)
    assert details["layouts"]["interleaved"]["verdicts"] is None and "→" not in interleaved
    assert details["sampling"]["do_sample"] is False and details["layouts"]["interleaved"]["p_yes"] is None


@pytest.mark.parametrize("case, expected", [
    ("empty", "Clip 1 (empty.wav): file is empty (0 bytes)."),
    ("unreadable", "Clip 1 (junk.wav): cannot decode audio"),
    ("no placeholder", "The prompt has 0 [AUDIO] placeholder(s) but 1 clip(s) were given"),
    ("two placeholders", "The prompt has 2 [AUDIO] placeholder(s) but 1 clip(s) were given"),
    ("two clips", "The prompt has 1 [AUDIO] placeholder(s) but 2 clip(s) were given"),
    ("no clip", "Add a clip"),
    ("blank setting", "Fill in the sampling settings: seed."),
    ("too many answers", "Sampling needs at least 1 new token, 1 to 64 answers"),
])
def test_bad_input_gets_a_message_in_the_page_and_the_server_lives_on(app, tmp_path, case, expected):
    client, _, _ = app
    clip, empty, junk = write_clip(tmp_path / "c.wav"), tmp_path / "empty.wav", tmp_path / "junk.wav"
    empty.write_bytes(b"")
    junk.write_bytes(b"RIFF and then nothing that decodes " * 10)
    prompt, clips = {
        "empty": ("Is [AUDIO] loud?", [empty]), "unreadable": ("Is [AUDIO] loud?", [junk]),
        "no placeholder": ("Is it loud?", [clip]), "two placeholders": ("Is [AUDIO] louder than [AUDIO]?", [clip]),
        "two clips": ("Is [AUDIO] loud?", [clip, clip]), "no clip": ("Is [AUDIO] loud?", []),
        "blank setting": ("Is [AUDIO] loud?", [clip]), "too many answers": ("Is [AUDIO] loud?", [clip]),
    }[case]
    settings = {"blank setting": {"seed": None}, "too many answers": {"repeats": 65}}.get(case, {})
    message, interleaved, ltu, images, details = ask_page(client, prompt, clips, **settings)
    assert expected in message and (interleaved, ltu, images, details) == ("", "", None, {})
    assert ask_page(client, "Is [AUDIO] loud?", [clip])[4]["layouts"]["interleaved"]["answers"]  # still serving


def test_a_bug_is_a_message_and_a_logged_trace_not_a_dead_server(app, tmp_path, monkeypatch, caplog):
    client, _, _ = app
    clip = write_clip(tmp_path / "c.wav")

    def broken(served, question):
        raise RuntimeError("boom")

    monkeypatch.setattr("interleave.tools.playground.ask", broken)
    message = ask_page(client, "Is [AUDIO] loud?", [clip])[0]
    assert message == "**Internal error (RuntimeError: boom); the trace is in the server's log.**"
    assert "RuntimeError: boom" in caplog.text
    monkeypatch.undo()
    assert ask_page(client, "Is [AUDIO] loud?", [clip])[4]["layouts"]["interleaved"]["answers"]


def test_a_prompt_longer_than_the_context_gets_a_message(app, tmp_path):
    client, _, _ = app
    clip = write_clip(tmp_path / "c.wav")
    message, interleaved, ltu, _, details = ask_page(client, "Is [AUDIO] " + "very " * 200 + "loud?", [clip],
                                                    ltu="Is it " + "very " * 200 + "loud?")
    assert "The interleaved prompt cannot be asked: prompt needs" in message and "more than max_length=128" in message
    assert "more than max_length=128" in interleaved and "more than max_length=128" in ltu
    assert "error" in details["layouts"]["noninterleaved"]
    message, _, ltu, _, details = ask_page(client, "Is [AUDIO] loud?", [clip], max_new=600)
    assert "more than the LLM's context of 512" in message and "answers" not in details["layouts"]["interleaved"]


def test_checkpoints_load_from_the_page_only_if_they_fit(app, tmp_path):
    client, served, _ = app
    model = served.model
    state = {k: v.detach().clone() for k, v in model.trainable_parameters().items()}
    wrong = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) for k, v in state.items()}
    torch.save({"state_dict": wrong}, tmp_path / "wrong.ckpt")
    torch.save({"state_dict": state}, tmp_path / "fits.ckpt")
    (tmp_path / "torn.ckpt").write_bytes((tmp_path / "fits.ckpt").read_bytes()[:50])
    message = client.predict(str(tmp_path / "wrong.ckpt"), api_name="/load")
    assert "wrong.ckpt does not fit the config's model" in message and "still serving the zero-shot model" in message
    assert "not a complete checkpoint" in client.predict(str(tmp_path / "torn.ckpt"), api_name="/load")
    assert client.predict(str(tmp_path / "fits.ckpt"), api_name="/load") == f"Serving checkpoint {tmp_path / 'fits.ckpt'}."
    clip = write_clip(tmp_path / "c.wav")
    assert ask_page(client, "Is [AUDIO] loud?", [clip])[0].startswith(f"Serving checkpoint {tmp_path / 'fits.ckpt'}")
    assert client.predict("", api_name="/load") == "Serving the zero-shot model."


def test_a_two_clip_prompt_is_answered_interleaved(app, tmp_path):
    client, _, _ = app
    low, high = write_clip(tmp_path / "low.wav", freq=300.0), write_clip(tmp_path / "high.wav", freq=3000.0)
    message, interleaved, ltu, images, details = ask_page(client, "Is [AUDIO] higher than [AUDIO]?", [low, high])
    assert "### Instruction:\nIs [AUDIO] higher than [AUDIO]?" in interleaved
    assert len(details["layouts"]["interleaved"]["answers"]) == 2 and details["clips"][1]["name"] == "high.wav"
    assert "noninterleaved" not in details["layouts"] and "one clip" in ltu


def test_the_page_says_why_a_checkpoint_asked_for_at_start_up_is_not_served(app):
    _, served, _ = app
    assert status_text(served) == "Serving the zero-shot model."
    noted = replace(served, note="x.ckpt does not fit the config's model: ...; serving the zero-shot model instead")
    assert status_text(noted) == f"Serving the zero-shot model.\n\n**{noted.note}**"


def test_the_command_binds_this_machine_by_default_and_names_its_flags(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "usage: interleave playground" in out and "default 127.0.0.1" in out
    for flag in ("--config", "--ckpt", "--host", "--port"):
        assert flag in out
