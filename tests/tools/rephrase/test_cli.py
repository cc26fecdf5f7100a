"""Tests for interleave.tools.rephrase: the three backends end to end, resume after SIGKILL and Ctrl-C,
the summary, warnings about empty sources, and the API key never leaking. The `openai` backend
talks to a real HTTP server on 127.0.0.1 that misbehaves on purpose."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from interleave import AUDIO_PLACEHOLDER
from interleave.errors import InterleaveError
from interleave.tools.rephrase.cli import main, read_done, rejects_path, summarize
from interleave.tools.rephrase.openaqa import load_sources, select
from interleave.tools.rephrase.rewriters import DIVERSITY_INSTRUCTIONS
from tests.helpers import SECRET, mixed_input, openaqa, sigint_as_in_a_terminal, write_json

REPO = Path(__file__).resolve().parents[3]


KEY_ENV = "REPHRASE_TEST_KEY"


# ---------------------------------------------------------------------------------------------
# a chat-completions server that misbehaves on purpose


class MockChat:
    """Answers chat completions; the old prompt's `MODE:x` marker picks a misbehaviour."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: dict[str, list[float]] = defaultdict(list)
        self.auth: list[str] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                old = re.search(r'Old Prompt: "(.*)"', body["messages"][1]["content"]).group(1)
                with mock.lock:
                    mock.auth.append(self.headers.get("Authorization", ""))
                    mock.bodies.append(body)
                    mock.calls[old].append(time.monotonic())
                    n = len(mock.calls[old])
                mode = re.search(r"MODE:(\w+)", old)
                mode = mode.group(1) if mode else "ok"
                if mock.delay:
                    time.sleep(mock.delay)
                tag = hashlib.sha1(old.encode()).hexdigest()[:8]
                good = f"Regarding [AUDIO], list the labels and describe their acoustic features (#{tag})."
                try:
                    if mode == "429" and n == 1:
                        return self._send(429, b'{"error": "slow down"}', {"Retry-After": "1"})
                    if (mode == "500" and n == 1) or mode == "500always":
                        return self._send(500, b'{"error": "boom"}')
                    if (mode == "slow" and n == 1) or mode == "slowalways":
                        time.sleep(1.0)
                    if mode == "badbody" and n == 1:
                        return self._send(200, b"<html>not json")
                    if mode == "401":
                        echo = f"invalid key, headers were: Authorization: {self.headers['Authorization']}"
                        return self._send(401, echo.encode())
                    content = {
                        "badjson": "Sure! Here is your prompt: What is in [AUDIO]?",
                        "zero": json.dumps({"revised_prompt": "What sounds can be heard here?"}),
                        "two": json.dumps({"revised_prompt": "Compare [AUDIO] with [AUDIO]."}),
                        "media": json.dumps({"revised_prompt": "What happens in this clip: [AUDIO]?"}),
                    }.get(mode)
                    if mode == "zeroonce" and n == 1:
                        content = json.dumps({"revised_prompt": "What is heard?"})
                    if content is None:
                        content = "```json\n" + json.dumps({"revised_prompt": good}) + "\n```"
                    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
                    self._send(200, json.dumps(answer).encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, code, data, headers=None):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def openai_args(tmp, server, inp, out, size, *extra):
    return [
        "--input",
        str(inp),
        "--out",
        str(out),
        "--size",
        str(size),
        "--backend",
        "openai",
        "--base-url",
        server.url,
        "--model",
        "mock-4.1-mini",
        "--api-key-env",
        KEY_ENV,
        "--timeout",
        "0.4",
        "--max-retries",
        "2",
        "--backoff-base",
        "0.01",
        "--backoff-max",
        "0.05",
        "--max-attempts",
        "2",
        "--concurrency",
        "4",
        *extra,
    ]


def assert_no_secret(tmp_path, *texts):
    for text in texts:
        assert SECRET not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


# ---------------------------------------------------------------------------------------------
# openai backend against the misbehaving server


MODES = {
    "ok": None,
    "429": None,
    "500": None,
    "slow": None,
    "badbody": None,
    "zeroonce": None,
    "500always": "http_500",
    "slowalways": "timeout",
    "badjson": "malformed_answer",
    "zero": "no_placeholder",
    "two": "multiple_placeholders",
    "media": "media_word",
}


@pytest.mark.slow
def test_openai_backend_recovers_or_rejects_with_reason(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    objs = [openaqa(f"What is the sound in the audio clip? MODE:{mode}", i) for i, mode in enumerate(MODES)]
    inp = write_json(tmp_path / "openaqa.json", objs)
    out = tmp_path / "out.jsonl"
    with MockChat() as server:
        assert main(openai_args(tmp_path, server, inp, out, len(objs))) == 0
    captured = capsys.readouterr()

    rows = {json.loads(line)["original_instruction"].split("MODE:")[1]: json.loads(line) for line in out.open()}
    rejects = {r["original_instruction"].split("MODE:")[1]: r for r in map(json.loads, rejects_path(out).open())}
    assert set(rows) == {m for m, reason in MODES.items() if reason is None}
    assert {m: r["reason"] for m, r in rejects.items()} == {m: r for m, r in MODES.items() if r is not None}
    for mode, row in rows.items():
        assert row["instruction"].count(AUDIO_PLACEHOLDER) == 1
        assert row["output"] == objs[list(MODES).index(mode)]["output"]
        assert row["audio"] == objs[list(MODES).index(mode)]["audio_id"]
        assert set(row) >= {"id", "audio", "instruction", "input", "output", "task", "dataset", "original_instruction"}
    assert rejects["500always"]["attempts"] == ["http_500", "http_500"]
    # 429 with Retry-After: 1 -> the retry came at least a second later
    t429 = [t for old, t in server.calls.items() if "MODE:429" in old][0]
    assert len(t429) == 2 and t429[1] - t429[0] >= 0.95
    # the key travels as a Bearer header only
    assert set(server.auth) == {f"Bearer {SECRET}"}
    body = server.bodies[0]
    assert 0.7 <= body["temperature"] <= 1.1 and body["response_format"] == {"type": "json_object"}
    assert any(line in body["messages"][0]["content"] for line in DIVERSITY_INSTRUCTIONS)
    assert_no_secret(tmp_path, captured.out, captured.err, caplog.text)
    assert "records: 6  rejected: 6" in captured.out and "reject media_word: 1" in captured.out


@pytest.mark.slow
def test_refused_key_stops_the_run_and_is_redacted(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    inp = write_json(tmp_path / "openaqa.json", [openaqa("What is in the audio? MODE:401", 0)])
    with MockChat() as server:
        code = main(openai_args(tmp_path, server, inp, tmp_path / "out.jsonl", 1))
    captured = capsys.readouterr()
    assert code == 2
    # (the input has no label or acoustic records: their warnings come first; the progress says where it stopped)
    assert "[interleave] rephrase: stopped at 0/1 records (0%)" in captured.err
    assert [line for line in captured.err.splitlines() if not line.startswith(("warning: ", "[interleave] rephrase:"))][
        0
    ].startswith("error: ")
    assert "HTTP 401" in captured.err and "***" in captured.err
    assert "Traceback" not in captured.err
    assert_no_secret(tmp_path, captured.out, captured.err, caplog.text)


def test_missing_key_variable_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(KEY_ENV, raising=False)
    inp = write_json(tmp_path / "openaqa.json", [openaqa("What is in the audio?", 0)])
    code = main(
        [
            "--input",
            str(inp),
            "--out",
            str(tmp_path / "o.jsonl"),
            "--size",
            "1",
            "--backend",
            "openai",
            "--model",
            "m",
            "--api-key-env",
            KEY_ENV,
        ]
    )
    assert code == 2 and KEY_ENV in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# resume, crash safety, summary


def test_torn_last_line_is_cut_off(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "instr')
    assert [r["id"] for r in read_done(path)] == ["a", "b"]
    assert path.read_bytes() == b'{"id": "a"}\n{"id": "b"}\n'
    path.write_bytes(b'{"id": "a"}\n{broken\n{"id": "c"}\n')
    with pytest.raises(InterleaveError, match=r"out.jsonl:2"):
        read_done(path)


def test_rerun_skips_done_and_refuses_another_selection(tmp_path, capsys):
    inp = write_json(tmp_path / "in.json", mixed_input(30, 20, 10, 5))
    out = tmp_path / "out.jsonl"
    args = ["--input", str(inp), "--out", str(out), "--size", "40", "--backend", "template"]
    assert main(args) == 0
    first = out.read_text()
    assert main(args) == 0
    assert out.read_text() == first  # nothing rewritten twice
    rows = read_done(out) + read_done(rejects_path(out))
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40
    capsys.readouterr()
    assert main(args[:-2] + ["--seed", "5"]) == 2
    assert "seed=0" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    inp = write_json(tmp_path / "in.json", mixed_input(40, 20, 10, 10))
    killed, clean = tmp_path / "killed.jsonl", tmp_path / "clean.jsonl"
    with MockChat(delay=0.25) as server:
        cmd = [sys.executable, "-m", "interleave.tools.rephrase", *openai_args(tmp_path, server, inp, killed, 48)]
        cmd[cmd.index("--timeout") + 1] = "5"
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not killed.exists() or killed.read_text().count("\n") < 8):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        partial = killed.read_text().count("\n")
        assert 8 <= partial < 48
        with killed.open("a") as f:
            f.write('{"id": "openaqa-0", "audio": "/da')  # what a kill mid-write leaves
        server.delay = 0.0
        assert main(openai_args(tmp_path, server, inp, killed, 48)) == 0
        assert main(openai_args(tmp_path, server, inp, clean, 48)) == 0
    resumed = [json.loads(line) for line in killed.open()]
    uninterrupted = [json.loads(line) for line in clean.open()]
    assert len({r["id"] for r in resumed}) == len(resumed) == 48
    key = lambda r: r["id"]  # noqa: E731
    assert sorted(resumed, key=key) == sorted(uninterrupted, key=key)
    assert not rejects_path(killed).read_text()
    assert_no_secret(tmp_path, err.decode())


def test_summary_command(tmp_path, capsys):
    inp = write_json(tmp_path / "in.json", mixed_input(30, 20, 10, 5))
    out = tmp_path / "out.jsonl"
    assert main(["--input", str(inp), "--out", str(out), "--size", "60", "--backend", "template"]) == 0
    capsys.readouterr()
    assert main(["summary", str(out)]) == 0
    text = capsys.readouterr().out
    summary = summarize(out)
    assert summary["records"] + summary["rejected"] == 60
    assert summary["per_task"] == {"open-ended question": 30, "cla_label": 20, "cla_label_des": 10}
    assert summary["distinct_prompts"] == 60 and summary["records_per_second"] > 0
    assert len(summary["top_prompts"]) == 20
    assert "distinct prompts: 60 / 60" in text and "throughput:" in text and "task cla_label_des: 10" in text
    assert main(["summary", str(tmp_path / "missing.jsonl")]) == 2


def test_closed_ended_prefix_is_kept_or_dropped(tmp_path):
    objs = [openaqa("Closed-ended question: Analyze audio events in clip given.", 0, "cla_label", "as_20k")]
    inp = write_json(tmp_path / "in.json", objs)
    assert main(["--input", str(inp), "--out", str(tmp_path / "a.jsonl"), "--size", "1"]) == 0
    assert (
        read_done(tmp_path / "a.jsonl")[0]["instruction"] == "Closed-ended question: Analyze audio events in [AUDIO]."
    )
    assert main(["--input", str(inp), "--out", str(tmp_path / "b.jsonl"), "--size", "1", "--drop-closed-prefix"]) == 0
    assert read_done(tmp_path / "b.jsonl")[0]["instruction"] == "Analyze audio events in [AUDIO]."


def test_a_broken_record_is_rejected_not_dropped(tmp_path, capsys):
    objs = [
        openaqa("What is in the audio clip?", 0),
        {
            "instruction": "What is in the audio?",
            "dataset": "as_strong_train",
            "task": "open-ended question",
            "output": "x",
        },
    ]
    inp = write_json(tmp_path / "in.json", objs)
    out = tmp_path / "out.jsonl"
    args = ["--input", str(inp), "--out", str(out), "--size", "2"]
    assert main(args) == 0
    [reject] = read_done(rejects_path(out))
    assert reject["id"] == "openaqa-1" and reject["reason"] == "invalid_record"
    assert "audio_id" in reject["attempts"][0] and reject["where"].endswith("in.json:10")
    assert main(args + ["--retry-rejects"]) == 0  # tried again, rejected again, counted once
    assert len(read_done(rejects_path(out))) == 2 and summarize(out)["rejected"] == 1


@pytest.mark.slow
def test_ctrl_c_exits_130_and_the_rerun_completes(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    inp = write_json(tmp_path / "in.json", mixed_input(20, 10, 6, 0))
    out = tmp_path / "out.jsonl"
    with MockChat(delay=0.2) as server:
        cmd = [sys.executable, "-m", "interleave.tools.rephrase", *openai_args(tmp_path, server, inp, out, 36)]
        cmd[cmd.index("--timeout") + 1] = "5"
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=os.environ | {"PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=sigint_as_in_a_terminal,  # the Ctrl-C tested reaches it however the suite was started
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 4):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and "rerun the same command to resume" in err and "Traceback" not in err
        server.delay = 0.0
        assert main(openai_args(tmp_path, server, inp, out, 36)) == 0
    ids = [r["id"] for r in read_done(out)]
    assert len(ids) == len(set(ids)) == 36
    assert_no_secret(tmp_path, err)


def test_a_source_with_no_eligible_record_is_warned_about(tmp_path, capsys):
    # No cla_label_des at all, and labels only under a dataset name the defaults do not list.
    objs = [openaqa(f"What is the sound in the audio clip? #{i}", i) for i in range(6)]
    objs += [
        openaqa(f"Closed-ended question: list the labels. #{i}", i, "cla_label", "audioset_balanced")
        for i in range(6, 9)
    ]
    inp = write_json(tmp_path / "in.json", objs)
    out = tmp_path / "out.jsonl"
    assert main(["--input", str(inp), "--out", str(out), "--size", "4", "--backend", "template"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2  # 'label' and 'acoustic'; 'open-ended' has 6 eligible records
    label = next(w for w in warnings if "source 'label'" in w)
    acoustic = next(w for w in warnings if "source 'acoustic'" in w)
    for warning, task in ((label, "cla_label"), (acoustic, "cla_label_des")):
        assert "0 eligible records" in warning and f"tasks ['{task}']" in warning
        assert "datasets ['as_20k', 'as_strong_train']" in warning and "may be wrong" in warning
        assert "only 'as_strong_train' and 'open-ended question' are verified" in warning
        assert f"unverified here: '{task}', 'as_20k'" in warning and "--sources" in warning
        assert "'cla_label'/'audioset_balanced' (3)" in warning  # what the input has instead
    assert "source 'open-ended'" not in captured.err
    assert label in captured.out and acoustic in captured.out  # in the summary printed at the end
    summary = summarize(out)
    assert [f"warning: {w}" for w in summary["warnings"]] == warnings
    assert main(["summary", str(out)]) == 0
    assert label in capsys.readouterr().out

    table = tmp_path / "sources.json"  # a --sources table is checked the same way; every name unverified
    table.write_text(json.dumps({"label": {"tasks": ["label"], "datasets": ["as_balanced"]}}))
    with pytest.raises(
        InterleaveError, match=r"source 'label' has 0 eligible records .*unverified here: 'label', 'as_balanced'"
    ):
        select(inp, 4, 0, load_sources(table))
    table.write_text(
        json.dumps(
            {
                "open-ended": {"tasks": ["open-ended question"], "datasets": ["as_strong_train"]},
                "label": {"tasks": ["label"], "datasets": ["as_balanced"]},
            }
        )
    )
    out2 = tmp_path / "out2.jsonl"
    assert main(["--input", str(inp), "--out", str(out2), "--size", "4", "--sources", str(table)]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: ") == 1 and "source 'label'" in err and "datasets ['as_balanced']" in err
    # a run whose every source has records says nothing
    assert (
        main(
            [
                "--input",
                str(inp),
                "--out",
                str(tmp_path / "out3.jsonl"),
                "--size",
                "4",
                "--sources",
                str(
                    write_json(
                        tmp_path / "s3.json",
                        {"open-ended": {"tasks": ["open-ended question"], "datasets": ["as_strong_train"]}},
                    )
                ),
            ]
        )
        == 0
    )
    assert "warning: " not in capsys.readouterr().err
    assert summarize(tmp_path / "out3.jsonl")["warnings"] == []


def test_progress_counts_every_record_resumed_ones_included(tmp_path, capsys):
    from interleave.tools.rephrase.cli import Settings, run
    from interleave.tools.rephrase.openaqa import SOURCES
    from interleave.tools.rephrase.rewriters import make_rewriter

    inp = write_json(tmp_path / "in.json", mixed_input(30, 20, 10, 5))
    out = tmp_path / "out.jsonl"
    items, _ = select(inp, 40, 0, SOURCES)
    rewriter = make_rewriter("template")
    run(items[:25], rewriter, out, Settings(concurrency=1), progress_every=0)  # a first run, stopped early
    capsys.readouterr()
    stats = run(items, rewriter, out, Settings(concurrency=1), progress_every=0)
    lines = capsys.readouterr().err.splitlines()
    progress = [line for line in lines if line.startswith("[interleave] rephrase:")]
    assert len(progress) == 15 + 1  # one per record at interval 0, and the last; no carriage returns
    assert progress[0].startswith("[interleave] rephrase: 26/40 records (65%), 25 already done, ")
    assert "records/s" in progress[0] and progress[0].endswith(" left")
    assert re.fullmatch(
        rf"\[interleave\] rephrase: done 40/40 records \(100%\), 25 already done, "
        rf"{stats['rejected']} rejected, [0-9.]+ records/s, in 0:00:0\d",
        progress[-1],
    )


def test_a_batch_log_gets_only_the_last_progress_line_of_a_short_run(tmp_path, capsys):
    inp = write_json(tmp_path / "in.json", mixed_input(30, 20, 10, 5))
    args = ["--input", str(inp), "--out", str(tmp_path / "out.jsonl"), "--size", "40", "--backend", "template"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert [line for line in err.splitlines() if "rephrase: " in line][-1].startswith(
        "[interleave] rephrase: done 40/40 records (100%)"
    )
