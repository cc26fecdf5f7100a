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

from interleave.tools.playground.ask import NOT_LISTED, Limits, Question, ask, build_served  # noqa: E402
from interleave.tools.playground.cli import (  # noqa: E402
    CLIP_SLOTS,
    NO_AUTH_WARNING,
    build_page,
    launch,
    main,
    read_credentials,
    status_text,
)
from tests.helpers import TINY_ENCODER, write_clip, write_config  # noqa: E402

UPLOAD_MB = 12  # the test server's upload limit: a 10-minute recording at 8 kHz (9.2 MB) is within it
SAMPLING = dict(
    greedy=False, temperature=0.1, top_p=0.95, top_k=500, penalty=1.1, max_new=4, repeats=2, seed=3, score=True
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory, tokenizer_dir, tiny_llama_config):
    """(client, served model, folder): a tiny random model served on a free port of 127.0.0.1."""
    folder = tmp_path_factory.mktemp("playground")
    kwargs = dict(
        llm=None,
        llm_config=tiny_llama_config,
        tokenizer=str(tokenizer_dir),
        encoder="tiny",
        encoder_kwargs=TINY_ENCODER,
        lora_r=4,
        lora_alpha=8,
    )
    (folder / "extra").mkdir()
    served = build_served(
        str(write_config(folder, folder, kwargs)),
        "none",
        roots=[str(folder / "extra")],
        limits=Limits(max_bytes=UPLOAD_MB * 2**20, max_seconds=300),
    )
    port = free_port()
    page = launch(build_page(served), "127.0.0.1", port, block=False, max_upload_mb=UPLOAD_MB)
    assert page.server_name == "127.0.0.1" and page.local_url.startswith(f"http://127.0.0.1:{port}")
    yield Client(f"http://127.0.0.1:{port}/", verbose=False), served, folder
    page.close()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # the server is gone


def ask_page(client: Client, prompt: str, clips: list, ltu: str = "", template: str = "free text", **settings):
    values = {**SAMPLING, **settings}
    files = [handle_file(str(c)) for c in clips] + [None] * (CLIP_SLOTS - len(clips))
    return client.predict(prompt, ltu, template, *files, *values.values(), api_name="/ask")


@pytest.mark.slow
def test_one_clip_is_answered_in_both_layouts_with_verdicts_p_yes_and_its_fbank(app, tmp_path):
    client, served, _ = app
    clip = write_clip(tmp_path / "siren.wav", freq=1500.0)
    message, interleaved, ltu, images, details = ask_page(
        client,
        "Is [AUDIO] similar to alarm?",
        [clip],
        ltu="Is the sound of the object in this audio signal similar to alarm?",
    )
    assert message == "Serving the zero-shot model; seed 3."
    assert (
        "### Instruction:\nIs [AUDIO] similar to alarm?" in interleaved
        and "→ **" in interleaved
        and "P(yes) = " in interleaved
    )
    assert "[AUDIO] ### Instruction:\nIs the sound of the object in this audio signal similar to alarm?" in ltu
    layouts = details["layouts"]
    assert set(layouts) == {"interleaved", "noninterleaved"} and details["seed"] == 3 and details["parser"] == "paper"
    assert details["sampling"]["max_new_tokens"] == 4 and details["clips"] == [
        {"name": "siren.wav", "seconds": 1.0, "heard": 1.0, "positions": 32}
    ]
    for entry in layouts.values():
        assert len(entry["answers"]) == 2 and len(entry["verdicts"]) == 2 and 0 <= entry["p_yes"] <= 1
    # What the page shows is what the evaluation's code path gives for the same question and seed.
    direct = ask(
        served,
        Question(
            prompt="Is [AUDIO] similar to alarm?",
            clips=[str(clip)],
            repeats=2,
            seed=3,
            score=True,
            ltu_prompt="Is the sound of the object in this audio signal similar to alarm?",
            sampling=served.settings.sampling.__class__(max_new_tokens=4),
        ),
    )
    assert [e["answers"] for e in direct["layouts"].values()] == [e["answers"] for e in layouts.values()]
    assert images.endswith((".webp", ".png")) and Path(images).stat().st_size > 1000  # the fbank figure


@pytest.mark.slow
def test_the_templates_fill_table_1s_questions_in_both_layouts(app):
    client, _, _ = app
    assert client.predict("hypernym", "vehicle", api_name="/template") == (
        "Is [AUDIO] a type of vehicle?",
        "Is the sound of the object in this audio signal a type of vehicle?",
    )
    assert client.predict("identity", "", api_name="/template") == (
        "Can you list the labels based on [AUDIO] ?",
        "Can you list the labels based on this audio file?",
    )


@pytest.mark.slow
def test_an_identity_question_has_no_yes_no_verdict(app, tmp_path):
    client, _, _ = app
    clip = write_clip(tmp_path / "c.wav")
    _, interleaved, _, _, details = ask_page(
        client, "Can you list the labels based on [AUDIO] ?", [clip], template="identity", score=False, greedy=True
    )
    assert details["layouts"]["interleaved"]["verdicts"] is None and "→" not in interleaved
    assert details["sampling"]["do_sample"] is False and details["layouts"]["interleaved"]["p_yes"] is None


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, expected",
    [
        ("empty", "Clip 1 (empty.wav): file is empty (0 bytes)."),
        ("unreadable", "Clip 1 (junk.wav): cannot decode audio"),
        ("no placeholder", "The prompt has 0 [AUDIO] placeholder(s) but 1 clip(s) were given"),
        ("two placeholders", "The prompt has 2 [AUDIO] placeholder(s) but 1 clip(s) were given"),
        ("two clips", "The prompt has 1 [AUDIO] placeholder(s) but 2 clip(s) were given"),
        ("no clip", "Add a clip"),
        ("blank setting", "Fill in the sampling settings: seed."),
        ("too many answers", "Sampling needs at least 1 new token, 1 to 64 answers"),
    ],
)
def test_bad_input_gets_a_message_in_the_page_and_the_server_lives_on(app, tmp_path, case, expected):
    client, _, _ = app
    clip, empty, junk = write_clip(tmp_path / "c.wav"), tmp_path / "empty.wav", tmp_path / "junk.wav"
    empty.write_bytes(b"")
    junk.write_bytes(b"RIFF and then nothing that decodes " * 10)
    prompt, clips = {
        "empty": ("Is [AUDIO] loud?", [empty]),
        "unreadable": ("Is [AUDIO] loud?", [junk]),
        "no placeholder": ("Is it loud?", [clip]),
        "two placeholders": ("Is [AUDIO] louder than [AUDIO]?", [clip]),
        "two clips": ("Is [AUDIO] loud?", [clip, clip]),
        "no clip": ("Is [AUDIO] loud?", []),
        "blank setting": ("Is [AUDIO] loud?", [clip]),
        "too many answers": ("Is [AUDIO] loud?", [clip]),
    }[case]
    settings = {"blank setting": {"seed": None}, "too many answers": {"repeats": 65}}.get(case, {})
    message, interleaved, ltu, images, details = ask_page(client, prompt, clips, **settings)
    assert expected in message and (interleaved, ltu, images, details) == ("", "", None, {})
    assert ask_page(client, "Is [AUDIO] loud?", [clip])[4]["layouts"]["interleaved"]["answers"]  # still serving


@pytest.mark.slow
def test_a_bug_is_a_message_and_a_logged_trace_not_a_dead_server(app, tmp_path, monkeypatch, caplog):
    client, _, _ = app
    clip = write_clip(tmp_path / "c.wav")

    def broken(served, question):
        raise RuntimeError("boom")

    monkeypatch.setattr("interleave.tools.playground.cli.ask", broken)
    message = ask_page(client, "Is [AUDIO] loud?", [clip])[0]
    assert message == "**Internal error (RuntimeError: boom); the trace is in the server's log.**"
    assert "RuntimeError: boom" in caplog.text
    monkeypatch.undo()
    assert ask_page(client, "Is [AUDIO] loud?", [clip])[4]["layouts"]["interleaved"]["answers"]


@pytest.mark.slow
def test_a_prompt_longer_than_the_context_gets_a_message(app, tmp_path):
    client, _, _ = app
    clip = write_clip(tmp_path / "c.wav")
    message, interleaved, ltu, _, details = ask_page(
        client, "Is [AUDIO] " + "very " * 200 + "loud?", [clip], ltu="Is it " + "very " * 200 + "loud?"
    )
    assert "The interleaved prompt cannot be asked: prompt needs" in message and "more than max_length=128" in message
    assert "more than max_length=128" in interleaved and "more than max_length=128" in ltu
    assert "error" in details["layouts"]["noninterleaved"]
    message, _, ltu, _, details = ask_page(client, "Is [AUDIO] loud?", [clip], max_new=600)
    assert "more than the LLM's context of 512" in message and "answers" not in details["layouts"]["interleaved"]


@pytest.mark.slow
def test_checkpoints_load_from_the_page_only_if_they_fit(app, tmp_path):
    client, served, folder = app
    tmp_path = folder / "ckpt"  # the config's ModelCheckpoint folder: listed
    tmp_path.mkdir(exist_ok=True)
    model = served.model
    state = {k: v.detach().clone() for k, v in model.trainable_parameters().items()}
    wrong = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) for k, v in state.items()}
    torch.save({"state_dict": wrong}, tmp_path / "wrong.ckpt")
    torch.save({"state_dict": state}, tmp_path / "fits.ckpt")
    (tmp_path / "torn.ckpt").write_bytes((tmp_path / "fits.ckpt").read_bytes()[:50])
    message = client.predict(str(tmp_path / "wrong.ckpt"), api_name="/load")
    assert "wrong.ckpt does not fit the config's model" in message and "still serving the zero-shot model" in message
    assert "not a complete checkpoint" in client.predict(str(tmp_path / "torn.ckpt"), api_name="/load")
    assert (
        client.predict(str(tmp_path / "fits.ckpt"), api_name="/load") == f"Serving checkpoint {tmp_path / 'fits.ckpt'}."
    )
    clip = write_clip(tmp_path / "c.wav")
    assert ask_page(client, "Is [AUDIO] loud?", [clip])[0].startswith(f"Serving checkpoint {tmp_path / 'fits.ckpt'}")
    assert client.predict("", api_name="/load") == "Serving the zero-shot model."


@pytest.mark.slow
def test_a_two_clip_prompt_is_answered_interleaved(app, tmp_path):
    client, _, _ = app
    low, high = write_clip(tmp_path / "low.wav", freq=300.0), write_clip(tmp_path / "high.wav", freq=3000.0)
    message, interleaved, ltu, images, details = ask_page(client, "Is [AUDIO] higher than [AUDIO]?", [low, high])
    assert "### Instruction:\nIs [AUDIO] higher than [AUDIO]?" in interleaved
    assert len(details["layouts"]["interleaved"]["answers"]) == 2 and details["clips"][1]["name"] == "high.wav"
    assert "noninterleaved" not in details["layouts"] and "one clip" in ltu


@pytest.mark.slow
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


def test_several_configs_and_train_py_overrides_build_the_served_run(monkeypatch, capsys):
    """As a run was started through an overlay (issue 36's Qwen2-Audio): every --config in order, and
    train.py's overrides; a stray word is refused by argparse."""
    from interleave.errors import InterleaveError

    asked = {}

    def build(config, ckpt, device, roots, limits, overrides):
        asked.update(config=config, ckpt=ckpt, overrides=overrides)
        raise InterleaveError("built")

    monkeypatch.setattr("interleave.tools.playground.cli.build_served", build)
    overlay = ["--config", "configs/models/qwen2_audio.yaml", "--paths.qwen2_audio=/models/q"]
    assert main(["--config", "configs/demo.yaml", *overlay, "--ckpt", "none", "--data.max_length=2048"]) == 2
    assert asked == {
        "config": ["configs/demo.yaml", "configs/models/qwen2_audio.yaml"],
        "ckpt": "none",
        "overrides": ["--paths.qwen2_audio=/models/q", "--data.max_length=2048"],
    }
    assert "built" in capsys.readouterr().err
    assert main(["--config", "configs/demo.yaml", "--paths.qwen2_audio", "/models/q", "--ckpt", "none"]) == 2
    assert asked["overrides"] == ["--paths.qwen2_audio", "/models/q"]  # the value as its own word, as train.py takes it
    with pytest.raises(SystemExit) as done:
        main(["--config", "configs/demo.yaml", "stray"])
    assert done.value.code == 2 and "unrecognized arguments: stray" in capsys.readouterr().err


# ---- issue 28: served to a lab ----------------------------------------------------------------


@pytest.mark.slow
def test_paths_off_the_list_get_one_message_whatever_they_are_and_load_nothing(app, tmp_path, monkeypatch):
    """A missing file, a directory, /etc/passwd, a real checkpoint outside the roots, a symlink in a
    root leading out and a `..` path out of a root: the same words, and no file is opened."""
    client, served, folder = app
    outside = tmp_path / "outside.ckpt"
    torch.save({"state_dict": {k: v.detach().clone() for k, v in served.model.trainable_parameters().items()}}, outside)
    leak = folder / "extra" / "leak.ckpt"
    leak.symlink_to(outside)
    opened = []
    monkeypatch.setattr("interleave.tools.playground.ask.load_weights", lambda p, *a: opened.append(p))
    before = client.predict("none", api_name="/load")
    answers = {
        path: client.predict(str(path), api_name="/load")
        for path in [
            outside,
            tmp_path / "missing.ckpt",
            folder / "extra",
            "/etc/passwd",
            leak,
            f"{folder / 'extra'}/../../{tmp_path.name}/outside.ckpt",
            "../ckpt/x.ckpt",
        ]
    }
    assert set(answers.values()) == {f"**{NOT_LISTED}; still serving the zero-shot model.**"}, answers
    assert opened == [] and before == "Serving the zero-shot model."
    assert str(outside) not in client.predict(api_name="/checkpoints")["choices"].__str__()


@pytest.mark.slow
def test_a_listed_checkpoint_loads_and_the_list_is_refreshed_on_demand(app, monkeypatch):
    client, served, folder = app
    listed = folder / "extra" / "run" / "new.ckpt"
    listed.parent.mkdir(exist_ok=True)
    torch.save({"state_dict": {k: v.detach().clone() for k, v in served.model.trainable_parameters().items()}}, listed)
    choices = [c[0] if isinstance(c, (list, tuple)) else c for c in client.predict(api_name="/checkpoints")["choices"]]
    assert choices[0] == "none" and str(listed) in choices
    assert client.predict(str(listed), api_name="/load") == f"Serving checkpoint {listed}."
    assert client.predict("none", api_name="/load") == "Serving the zero-shot model."


@pytest.mark.slow
def test_uploads_over_the_size_or_duration_bound_get_a_message_and_the_server_keeps_serving(app, tmp_path, monkeypatch):
    import httpx
    import numpy as np
    import soundfile as sf

    client, served, _ = app
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + bytes((UPLOAD_MB + 1) * 2**20))
    with pytest.raises(ValueError, match=f"exceeds the maximum file size of {UPLOAD_MB * 2**20} bytes"):
        ask_page(client, "Is [AUDIO] loud?", [big])  # refused by the server's limit, as the client reads it
    with big.open("rb") as handle:  # and by the server itself, before anything is decoded
        refused = httpx.post(f"{client.src}gradio_api/upload", files={"files": ("big.wav", handle)}, timeout=60)
    assert refused.status_code == 413 and "File size exceeded maximum allowed size" in refused.text
    decoded = []
    monkeypatch.setattr("interleave.tools.playground.ask.read_head", lambda *a: decoded.append(a))
    with pytest.raises(Exception, match=rf"Clip 1 \(big.wav\) is {UPLOAD_MB + 1}.0 MB, more than this server takes"):
        ask(served, Question(prompt="Is [AUDIO] loud?", clips=[str(big)]))
    assert decoded == []
    monkeypatch.undo()
    rate, rng = 8000, np.random.default_rng(0)
    long = tmp_path / "long.wav"  # a real 10-minute recording (9.2 MB): within the size, past the duration
    sf.write(long, (0.1 * rng.standard_normal(600 * rate)).astype(np.float32), rate, subtype="PCM_16")
    message = ask_page(client, "Is [AUDIO] loud?", [long])[0]
    assert message == (
        "**Clip 1 (long.wav) lasts 600 s, longer than this server takes (300 s); the model hears only "
        "its first 10.26 s: cut the clip.**"
    )
    minute = write_clip(tmp_path / "minute.wav", seconds=60.0, sr=22050)
    message, _, _, _, details = ask_page(client, "Is [AUDIO] loud?", [minute])
    assert "Clip 1 lasts 60.0 s: the model hears its first 10.26 s." in message
    assert details["clips"] == [{"name": "minute.wav", "seconds": 60.0, "heard": 10.26, "positions": 32}]
    clip = write_clip(tmp_path / "c.wav")
    assert ask_page(client, "Is [AUDIO] loud?", [clip])[4]["layouts"]["interleaved"]["answers"]  # still serving


@pytest.mark.slow
def test_four_users_at_once_each_get_the_answers_of_their_own_clip_and_a_failure_stays_alone(
    app, tmp_path, monkeypatch
):
    from concurrent.futures import ThreadPoolExecutor

    import interleave.tools.playground.cli as playground

    _, served, _ = app
    url = app[0].src
    users = [
        (
            write_clip(tmp_path / f"u{i}.wav", seconds=1.0 + i, freq=300.0 + 400 * i, seed=i),
            f"Is [AUDIO] {word}?",
            10 + i,
        )
        for i, word in enumerate(["loud", "a siren", "music", "a dog"])
    ]
    settings = dict(temperature=1.0, repeats=3, max_new=5, score=False)
    alone = [
        ask_page(Client(url, verbose=False), prompt, [clip], seed=seed, **settings) for clip, prompt, seed in users
    ]
    real_ask = playground.ask

    def failing(served_, question):
        if question.clips[0].endswith("boom.wav"):
            raise RuntimeError("this request fails")
        return real_ask(served_, question)

    monkeypatch.setattr(playground, "ask", failing)
    boom = write_clip(tmp_path / "boom.wav")
    clients = [Client(url, verbose=False) for _ in range(len(users) + 1)]
    with ThreadPoolExecutor(len(clients)) as pool:
        futures = [
            pool.submit(ask_page, c, prompt, [clip], seed=seed, **settings)
            for c, (clip, prompt, seed) in zip(clients, users)
        ]
        failed = pool.submit(ask_page, clients[-1], "Is [AUDIO] loud?", [boom], **settings)
        together = [f.result(timeout=300) for f in futures]
    assert failed.result()[0].startswith("**Internal error (RuntimeError: this request fails)")
    for mine, own, (clip, _prompt, seed) in zip(together, alone, users):
        assert mine[4]["layouts"] == own[4]["layouts"] and mine[4]["seed"] == seed
        assert mine[4]["clips"][0]["name"] == clip.name and mine[1] == own[1] and mine[2] == own[2]
    assert len({str(m[4]["layouts"]["interleaved"]["answers"]) for m in together}) == len(users)  # all differ


@pytest.mark.slow
def test_waiting_requests_are_told_their_place_in_the_queue(app, tmp_path, monkeypatch):
    """What the page shows as "queue: 2/3" is Gradio's queue estimation; a client sees the same
    messages: while one request holds the model, the others are IN_QUEUE with a rank."""
    import threading
    import time

    from gradio_client.utils import Status

    import interleave.tools.playground.cli as playground

    client, _, _ = app
    release, real_ask = threading.Event(), playground.ask
    monkeypatch.setattr(playground, "ask", lambda s, q: release.wait(60) and real_ask(s, q))
    clip = write_clip(tmp_path / "c.wav")
    values = [*SAMPLING.values()]
    files = [handle_file(str(clip))] + [None] * (CLIP_SLOTS - 1)
    jobs = [client.submit("Is [AUDIO] loud?", "", "free text", *files, *values, api_name="/ask") for _ in range(3)]
    ranks: set[int] = set()
    for _ in range(150):  # at most 30 s, usually a few polls
        statuses = [job.status() for job in jobs]
        ranks |= {s.rank for s in statuses if s.code == Status.IN_QUEUE and s.rank is not None}
        if {1} <= ranks:
            break
        time.sleep(0.2)
    release.set()
    assert 1 in ranks  # a request with one other ahead of it waiting
    assert all(job.result(timeout=120)[4]["layouts"]["interleaved"]["answers"] for job in jobs)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "lab-box.example"])
def test_serving_beyond_this_machine_without_a_sign_in_is_refused_before_anything_is_bound(host, capsys, monkeypatch):
    monkeypatch.setattr("interleave.tools.playground.cli.build_served", lambda *a, **k: pytest.fail("built a model"))
    monkeypatch.setattr("interleave.tools.playground.cli.launch", lambda *a, **k: pytest.fail("bound a port"))
    assert main(["--config", "configs/demo.yaml", "--host", host]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: --host {host} serves beyond this machine: give a sign-in with --auth USER:PASSWORD "
        "(repeatable) or --auth-file FILE (one user:password per line), or pass --no-auth to serve "
        "without one\n"
    )


@pytest.mark.slow
def test_no_auth_serves_with_a_warning_printed_and_on_the_page(app, capsys, monkeypatch):
    _, served, _ = app
    launched = {}
    monkeypatch.setattr("interleave.tools.playground.cli.build_served", lambda *a, **k: served)
    monkeypatch.setattr(
        "interleave.tools.playground.cli.launch",
        lambda page, host, port, **k: launched.update(page=page, host=host, **k),
    )
    assert main(["--config", "configs/demo.yaml", "--host", "0.0.0.0", "--no-auth"]) == 0
    assert f"warning: {NO_AUTH_WARNING}" in capsys.readouterr().err
    texts = [b.value for b in launched["page"].blocks.values() if type(b).__name__ == "Markdown"]
    assert f"**Warning: {NO_AUTH_WARNING}**" in texts and launched["host"] == "0.0.0.0" and not launched["credentials"]


def test_credentials_come_from_flags_and_a_file_whose_bad_lines_are_named_not_shown(tmp_path, monkeypatch, capsys):
    from interleave.errors import InterleaveError

    users = tmp_path / "users.txt"
    users.write_text("# the lab\nada:s3cret:with:colons\n\nbob:pw\n")
    assert read_credentials(["eve:x"], str(users)) == [("eve", "x"), ("ada", "s3cret:with:colons"), ("bob", "pw")]
    users.write_text("ada:ok\nhunter2\n")
    with pytest.raises(InterleaveError) as err:
        read_credentials([], str(users))
    assert str(err.value) == f"{users}:2: not a user:password line (both non-empty)" and "hunter2" not in str(err.value)
    with pytest.raises(InterleaveError, match="--auth number 1 is not USER:PASSWORD"):
        read_credentials(["nopassword"], None)
    monkeypatch.setattr("interleave.tools.playground.cli.build_served", lambda *a, **k: pytest.fail("built"))
    users.write_text("ada:ok\n")
    assert (
        main(
            [
                "--config",
                "c.yaml",
                "--host",
                "0.0.0.0",
                "--auth-file",
                str(users),
                "--ckpt-root",
                str(tmp_path / "nope"),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err == f"error: --ckpt-root {tmp_path / 'nope'}: not a folder\n"


@pytest.mark.slow
def test_with_a_sign_in_an_unauthenticated_client_is_rejected(app, tmp_path):
    import httpx
    from gradio_client.exceptions import AuthenticationError

    _, served, _ = app
    port = free_port()
    page = launch(build_page(served), "127.0.0.1", port, block=False, credentials=[("lab", "pw")])
    url = f"http://127.0.0.1:{port}/"
    try:
        with pytest.raises(AuthenticationError):
            Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("lab", "wrong"), verbose=False)
        assert httpx.get(f"{url}config", timeout=30).status_code == 401
        signed_in = Client(url, auth=("lab", "pw"), verbose=False)
        assert signed_in.predict("hypernym", "vehicle", api_name="/template")[0] == "Is [AUDIO] a type of vehicle?"
        clip = write_clip(tmp_path / "c.wav")
        assert ask_page(signed_in, "Is [AUDIO] loud?", [clip])[4]["layouts"]["interleaved"]["answers"]
    finally:
        page.close()


def test_a_user_given_twice_is_refused_naming_both_places_not_the_passwords(tmp_path, capsys, monkeypatch):
    """Issue 34: the analogue of a YAML key given twice: which password would hold was Gradio's pick."""
    from interleave.errors import InterleaveError

    users = tmp_path / "users.txt"
    users.write_text("ada:first\n# comment\nbob:pw\nada:second\n")
    monkeypatch.setattr("interleave.tools.playground.cli.build_served", lambda *a, **k: pytest.fail("built a model"))
    assert main(["--config", "c.yaml", "--host", "0.0.0.0", "--auth-file", str(users)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {users}:4: user 'ada' is given twice (first at {users}:1); give each user one password\n"
    assert "first" not in err.replace("(first at", "") and "second" not in err
    users.write_text("bob:pw\n")
    with pytest.raises(InterleaveError, match=rf"^{users}:1: user 'bob' is given twice \(first at --auth number 2\)"):
        read_credentials(["ada:x", "bob:y"], str(users))
    with pytest.raises(
        InterleaveError, match=r"^--auth number 2: user 'ada' is given twice \(first at --auth number 1\)"
    ):
        read_credentials(["ada:x", "ada:y"], None)


@pytest.mark.slow
def test_serving_prints_its_address_not_gradios_share_tip_and_ctrl_c_closes_it(app, capsys, monkeypatch):
    """Issue 34: Gradio's "set `share=True` in `launch()`" is a tip this command cannot follow."""
    from types import SimpleNamespace

    from interleave.tools.command import main as interleave

    _, served, _ = app
    port = free_port()
    monkeypatch.setattr("interleave.tools.playground.cli.build_served", lambda *a, **k: served)

    def ctrl_c(seconds):  # the serving loop's wait: Ctrl-C once the page is up
        raise KeyboardInterrupt

    monkeypatch.setattr("interleave.tools.playground.cli.time", SimpleNamespace(sleep=ctrl_c))
    assert interleave(["playground", "--config", "c.yaml", "--port", str(port)]) == 130
    captured = capsys.readouterr()
    assert f"* Running on local URL:  http://127.0.0.1:{port}\n" in captured.out
    assert "share" not in captured.out + captured.err and "Keyboard interruption" not in captured.out
    assert captured.err.splitlines()[-1] == "interrupted: interleave playground; the server is closed"
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # closed
