"""interleave.tools.dataset: `interleave data check FILE` lists every bad record with file:line and reason."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from interleave.tools.dataset import main as data_main
from tests.helpers import (
    BAD_KINDS,
    PAPER,
    TINY_LLAMA,
    bad_file,
    good,
    paths_args,
    sigint_as_in_a_terminal,
    tiny_overrides,
    write_clip,
    write_config,
    write_jsonl,
    write_shard,
)

REPO = Path(__file__).resolve().parents[2]


def test_checker_reports_every_bad_kind_with_file_and_line(tmp_path, capsys, tokenizer_dir):
    path = bad_file(tmp_path)
    code = data_main(["check", str(path), "--decode", "--tokenizer", str(tokenizer_dir), "--max-length", "128"])
    out = capsys.readouterr().out
    assert code == 1
    for line, reason in BAD_KINDS.items():
        assert any(l.startswith(f"{path}:{line}") and reason in l for l in out.splitlines()), (line, reason, out)
    assert f"{path}: 9 record(s), 1 good, 8 bad" in out


def test_checker_passes_a_clean_file_and_without_decode_misses_only_decoding(tmp_path, capsys, tokenizer_dir):
    write_clip(tmp_path / "audio" / "g0.wav")
    path = write_jsonl(tmp_path / "ok.jsonl", [good(0)])
    assert data_main(["check", str(path), "--tokenizer", str(tokenizer_dir)]) == 0
    assert "1 record(s), 1 good, 0 bad" in capsys.readouterr().out
    bad = bad_file(tmp_path / "b")
    data_main(["check", str(bad), "--tokenizer", "none"])
    out = capsys.readouterr().out
    assert (
        "unreadable audio" not in out and "lengths not checked" in out and "6 bad" in out
    )  # neither decoding nor length checked


def test_checker_counts_records_whose_placeholder_splits_a_token(tmp_path, capsys, tokenizer_dir):
    write_clip(tmp_path / "audio" / "g0.wav")
    write_clip(tmp_path / "audio" / "g1.wav")
    path = write_jsonl(tmp_path / "ok.jsonl", [good(0), good(1, "Is it a type of vehi[AUDIO]cle?")])
    assert data_main(["check", str(path), "--tokenizer", str(tokenizer_dir)]) == 0  # a note, not a problem
    out = capsys.readouterr().out
    assert "2 record(s), 2 good, 0 bad" in out
    assert "note: 1 good record(s) have a text token split where [AUDIO] stands" in out and f"{path}:2 (id=g1)" in out


@pytest.mark.parametrize(
    "name, message",
    [
        ("nope.jsonl", "no such file"),
        ("folder", "is a directory, not a record file"),
        ("fifo", "is a FIFO (named pipe), not a record file"),
    ],
)
def test_checker_a_missing_file_a_directory_or_a_fifo_is_one_error_line_exit_2(tmp_path, capsys, name, message):
    """Issue 34: no phantom `1 record(s), 0 good, 1 bad`; the FIFO is never opened (that would wait)."""
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    for flags in (["--tokenizer", "none"], ["--config", str(tmp_path / "never-read.yaml")]):  # before any run is built
        assert data_main(["check", str(tmp_path / name), *flags]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err == f"error: {tmp_path / name}: {message}\n"


def test_checker_a_0_byte_file_holds_0_records_exit_2(tmp_path, capsys):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert data_main(["check", str(path), "--tokenizer", "none"]) == 2
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [f"{path}: the file holds no records", f"{path}: 0 record(s), 0 good, 0 bad"]
    array = tmp_path / "openaqa.json"  # an OpenAQA array that does not parse is no bad record either
    array.write_text('[{"audio_id": "a.wav", "instruction": "What is [AUDIO]?", "output": "x"},\n{"oops"')
    assert data_main(["check", str(array), "--tokenizer", "none"]) == 2
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == [
        f"{array}:2: malformed JSON: Expecting ':' delimiter",
        f"{array}: 0 record(s), 0 good, 0 bad",
    ]
    array.write_text('[{"audio_id": "a.wav", "instruction": "What is [AUDIO]?", "output": "x"}, {"audio_id": "a.wav"}]')
    assert data_main(["check", str(array), "--tokenizer", "none"]) == 1  # its records, named FILE[i], are counted
    assert f"{array}: 2 record(s), 0 good, 2 bad" in capsys.readouterr().out


def test_checker_names_audio_that_is_a_directory_a_device_or_a_fifo(tmp_path, capsys):
    (tmp_path / "clips").mkdir()
    os.mkfifo(tmp_path / "pipe.wav")
    write_clip(tmp_path / "audio" / "g0.wav")
    path = write_jsonl(
        tmp_path / "odd.jsonl",
        [
            good(0),
            good(1) | {"audio": "clips"},
            good(2) | {"audio": "/dev/zero"},
            good(3) | {"audio": "pipe.wav"},
            good(4) | {"audio": "gone.wav"},
        ],
    )
    for decode in ([], ["--decode"]):  # the decoder never gets to block on the FIFO
        assert data_main(["check", str(path), "--tokenizer", "none", *decode]) == 1
        out = capsys.readouterr().out.splitlines()
        assert out[:5] == [
            f"{path}:2 (id=g1): audio path is a directory, not an audio file: {tmp_path / 'clips'}",
            f"{path}:3 (id=g2): audio path is a character device, not an audio file: /dev/zero",
            f"{path}:4 (id=g3): audio path is a FIFO (named pipe), not an audio file: {tmp_path / 'pipe.wav'}",
            f"{path}:5 (id=g4): audio file not found: {tmp_path / 'gone.wav'}",
            f"{path}: 5 record(s), 1 good, 4 bad",
        ]


def run_check(*args: str) -> subprocess.CompletedProcess:
    """`interleave data check ...` as a user runs it, in its own process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "interleave.tools.command", "data", "check", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_check_rebuilds_a_damaged_record_index_and_names_it(tmp_path, capsys, caplog, small_dataset, tiny_model_kwargs):
    """Issue 34: an index cut to its header and 16 bytes (as the issue ran it: the command in its own
    process), cut 1000 bytes short, or with 4000 bytes of its middle overwritten is named and rebuilt
    by `data check --config`, which counts every record."""
    from tests.helpers import damage, header_end

    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    path = write_jsonl(small_dataset / "many.jsonl", [good(i) | {"audio": f"audio/c{i % 6}.wav"} for i in range(400)])
    assert data_main(["check", str(path), "--config", str(config)]) == 0  # builds the index
    assert f"{path}: 400 record(s), 400 good, 0 bad" in capsys.readouterr().out
    (index,) = small_dataset.glob("many.jsonl.*.index")
    whole = index.read_bytes()
    damage(index, "header+16")  # header_end reads the damaged file's header, which is whole
    done = run_check(str(path), "--config", str(config))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    cut = f"is cut short: {header_end(index) + 16} bytes, where its header says {len(whole)}"
    assert f"[interleave] {path}: record index {index} {cut}; rebuilding it" in done.stderr
    assert done.stdout.splitlines()[-1] == f"{path}: 400 record(s), 400 good, 0 bad" and index.read_bytes() == whole
    for how, why in (
        ("end cut", f"is cut short: {len(whole) - 1000} bytes, where its header says {len(whole)}"),
        ("middle overwritten", "is damaged: its checksum does not match its bytes (overwritten)"),
    ):
        damage(index, how)
        caplog.clear()
        assert data_main(["check", str(path), "--config", str(config)]) == 0
        assert f"[interleave] {path}: record index {index} {why}; rebuilding it" in caplog.messages
        assert capsys.readouterr().out.splitlines()[-1] == f"{path}: 400 record(s), 400 good, 0 bad"
        assert index.read_bytes() == whole
    path.write_text("")  # no records: exit 2, through the index too
    assert data_main(["check", str(path), "--config", str(config)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{path}: the file holds no records", f"{path}: 0 record(s), 0 good, 0 bad"]


def test_checker_measures_spans_of_audio_tokens_positions(tmp_path, capsys, tokenizer_dir):
    from interleave.data.checks import load_checked
    from interleave.data.collate import Collator
    from interleave.model.llm import load_tokenizer

    write_clip(tmp_path / "audio" / "g0.wav")
    path = write_jsonl(tmp_path / "ok.jsonl", [good(0)])
    collator = Collator(load_tokenizer(str(tokenizer_dir)), max_length=4096)
    (record,), _ = load_checked(path, tmp_path, collator, None, [])
    prompt = len(collator.encode(record, with_answer=False).input_ids)  # with LTU's 32 positions
    args = ["check", str(path), "--tokenizer", str(tokenizer_dir), "--max-length", str(prompt - 1)]
    assert data_main(args) == 1 and "1 bad" in capsys.readouterr().out
    assert data_main([*args, "--audio-tokens", "8"]) == 0  # another encoder's 8 positions fit


LONG_WORDS = "xylophonic quizzical zephyr marmalade kaleidoscope juxtapose labyrinthine obfuscate serendipity".split()


@pytest.mark.slow
def test_check_with_the_paper_config_agrees_with_fit_where_the_defaults_do_not(
    tmp_path, capsys, monkeypatch, small_dataset, tiny_ltu, llama_tokenizer
):
    """Issue 25: a prompt that fits SmolLM2's 512 positions but not the paper run's LLaMA-style
    tokenizer. The default check passes it; `--config` rejects it, with the reason `fit` stops with."""
    import random

    import train
    from interleave.cli import build_run
    from interleave.data.checks import DataError

    monkeypatch.setattr("sys.argv", ["train.py"])
    monkeypatch.chdir(tmp_path)  # the paper configs' runs/paper lands here, not in the checkout
    write_shard(small_dataset)
    folder = tmp_path / "llama"
    llama_tokenizer.save_pretrained(folder)
    config = {**TINY_LLAMA, "vocab_size": len(llama_tokenizer), "bos_token_id": 1, "eos_token_id": 2}
    rng = random.Random(0)
    wordy = "Is [AUDIO] " + " ".join(rng.choice(LONG_WORDS) for _ in range(110)) + "?"
    rows = [json.loads(line) for line in (small_dataset / "train.jsonl").read_text().splitlines()]
    path = write_jsonl(
        small_dataset / "train.jsonl", rows + [good(0, wordy) | {"id": "wordy", "audio": rows[0]["audio"]}]
    )
    rows_configs = [
        arg for name in ("base", "finetune", "ft_small") for arg in ("--config", str(PAPER / f"{name}.yaml"))
    ]
    run_args = [
        *rows_configs,
        *paths_args(small_dataset, tiny_ltu),
        *tiny_overrides(folder, config),
        "--trainer.enable_progress_bar=false",
        "--trainer.max_epochs=1",
    ]

    assert data_main(["check", str(path)]) == 0  # SmolLM2, the default template, max_length 512
    assert f"{path}: 5 record(s), 5 good, 0 bad" in capsys.readouterr().out
    assert data_main(["check", str(path), *run_args]) == 1
    out = capsys.readouterr().out
    (problem,) = [line for line in out.splitlines() if line.startswith(f"{path}:5 (id=wordy)")]
    assert "leaving no room for the answer within max_length=512" in problem and "4 good, 1 bad" in out
    with pytest.raises(DataError) as stopped:
        train.cli(["fit", *run_args])
    assert [str(p) for p in stopped.value.problems] == [problem]  # what fit rejects, with the same reason
    write_jsonl(path, rows + [good(0, "Is [AUDIO] short?") | {"id": "short", "audio": rows[0]["audio"]}])
    assert data_main(["check", str(path), *run_args]) == 0  # and what it accepts, fit's set-up takes
    run = build_run(run_args)
    run.datamodule.setup("fit")  # as trainer.fit calls it
    assert len(run.datamodule.train_set) == 5 and not run.datamodule.rejected


def test_check_refuses_length_flags_beside_a_config(tmp_path, capsys):
    with pytest.raises(SystemExit):
        data_main(["check", str(tmp_path / "x.jsonl"), "--config", "c.yaml", "--max-length", "64"])
    assert "override them as train.py does" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data_main(["check", str(tmp_path / "x.jsonl"), "--data.max_length=64"])
    assert "train.py overrides go with --config" in capsys.readouterr().err


def test_check_help_states_the_defaults(capsys):
    with pytest.raises(SystemExit):
        data_main(["check", "--help"])
    out = capsys.readouterr().out
    assert "builtin:smollm2-135m-instruct" in out and "default 512" in out and "default 32" in out and "--config" in out


@pytest.mark.slow
def test_ctrl_c_during_a_check_is_one_line_and_keeps_the_record_index(tmp_path, small_dataset, tiny_model_kwargs):
    """Issue 34: SIGINT printed a 52-line traceback. A check with --config builds the file's record
    index first, then decodes every clip (--decode): interrupted while decoding, it exits 130 with
    one line naming the index, which is kept whole and is what the next check reuses."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from interleave.cli import build_run
    from interleave.data.record_index import RecordIndex, index_path, settings
    from tests.helpers import write_config

    root = Path(__file__).resolve().parents[2]
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    clips = tmp_path / "clips"
    clips.mkdir()
    count = 20_000  # distinct clips (links to one), each decoded once: a minute or more, far past the interrupt
    for i in range(count):
        os.symlink(small_dataset / "audio" / "c0.wav", clips / f"{i}.wav")
    path = write_jsonl(
        tmp_path / "big.jsonl", [good(i) | {"id": f"r{i}", "audio": f"clips/{i}.wav"} for i in range(count)]
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "interleave.tools", "data", "check", "--config", str(config), str(path), "--decode"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_in_a_terminal,  # the Ctrl-C tested reaches it however the suite was started
    )
    deadline = time.monotonic() + 240
    while not list(tmp_path.glob("big.jsonl.*.index")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the check ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)  # a loaded machine (CI) can be slow to stop
    assert proc.returncode == 130, err[-3000:]
    (index,) = tmp_path.glob("big.jsonl.*.index")
    assert [line for line in err.splitlines() if line.startswith(("interrupted:", "error:"))] == [
        f"interrupted: interleave data check; the record index {index} is kept (later checks and runs reuse it)"
    ]
    assert err.rstrip("\n").splitlines()[-1].startswith("interrupted:") and "Traceback" not in err
    assert "record(s)" not in out  # stopped before its counts
    collator = build_run(["--config", str(config)]).datamodule.collator()
    assert index == index_path(path, collator)
    kept = RecordIndex.load(index, path, settings(collator))  # whole, and matching the file: reused as it is
    assert kept is not None and kept.rows == count


@pytest.mark.slow
def test_ctrl_c_from_a_terminal_while_several_processes_build_the_index_is_one_line(
    tmp_path, small_dataset, tiny_model_kwargs
):
    """A terminal's Ctrl-C reaches the whole process group: the forked builders of a large file's
    record index printed a traceback each. Only the check itself says it was interrupted; no index
    is left half-written."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import psutil

    from tests.helpers import write_config

    root = Path(__file__).resolve().parents[2]
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    filler = "Labels: Siren. " * 24
    path = write_jsonl(
        tmp_path / "big.jsonl",
        [good(i) | {"id": f"r{i}", "audio": "audio/c0.wav", "output": filler} for i in range(100_000)],
    )
    assert path.stat().st_size > 32 << 20  # two builders on two cores (index_build.build_processes)
    proc = subprocess.Popen(
        [sys.executable, "-m", "interleave.tools", "data", "check", "--config", str(config), str(path)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_in_a_terminal,  # the Ctrl-C tested reaches it however the suite was started
    )
    deadline = time.monotonic() + 240
    while len(psutil.Process(proc.pid).children()) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None and len(psutil.Process(proc.pid).children()) >= 2, "no builders to interrupt"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    _, err = proc.communicate(timeout=300)  # a loaded machine (CI) can be slow to stop
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert [line for line in err.splitlines() if line.startswith(("interrupted:", "error:"))] == [
        "interrupted: interleave data check; no record index was written (it is written whole or not at all)"
    ]
    assert not list(tmp_path.glob("big.jsonl.*"))  # neither an index nor a temporary one left behind


def test_a_benchmark_file_is_recognised_by_its_content_and_its_bad_items_named(tmp_path, capsys):
    from tests.helpers import mmau_item

    for i in range(3):
        write_clip(tmp_path / "test-mini-audios" / f"c{i}.wav")
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    good_items = [mmau_item(i) for i in range(3)]
    path = tmp_path / "mmau.json"
    path.write_text(json.dumps(good_items))
    assert data_main(["check", str(path)]) == 0
    assert f"{path}: benchmark, 3 item(s), 3 good, 0 bad" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    rows = [
        *good_items,
        mmau_item(3, choices=["Car horn"]),
        mmau_item(4, answer="Thunder"),
        mmau_item(5, audio_id="broken.wav"),
        mmau_item(0),
    ]
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert data_main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: item 3 (choices): 1 choice(s); a question needs 2 or more" in out
    assert f"{bad}: item 4 (answer): 'Thunder' is not among the choices" in out
    assert f"{bad}: item 5 (audio_id): unreadable audio" in out  # decoded by default (its first 0.1 s)
    assert f"{bad}: item 6 (id): id 'id-0' is already item 0's" in out
    assert f"{bad}: benchmark, 7 item(s), 3 good, 4 bad" in out


def test_a_benchmark_checked_as_a_run_uses_the_runs_entry_and_states_long_clips(
    tmp_path, capsys, small_dataset, tiny_model_kwargs
):
    import yaml

    from tests.helpers import write_bench

    write_clip(small_dataset / "long" / "c0.wav", seconds=12.0)
    elsewhere = tmp_path / "bench"
    elsewhere.mkdir()
    items = json.loads(write_bench(small_dataset).read_text())
    items[0]["audio_id"] = "./long/c0.wav"
    path = elsewhere / "bench.json"
    path.write_text(json.dumps(items))
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    data = yaml.safe_load(config.read_text())
    data["trainer"]["callbacks"].append(
        {
            "class_path": "callbacks.ShardEvaluation",
            "init_args": {"benchmarks": [{"name": "b", "file": str(path), "audio_root": str(small_dataset)}]},
        }
    )
    config.write_text(yaml.safe_dump(data))
    assert data_main(["check", str(path)]) == 1  # the file's own folder holds no clip
    capsys.readouterr()
    assert data_main(["check", str(path), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"{path}: benchmark, 5 item(s), 5 good, 0 bad" in out
    assert "1 clip(s) longer than the 10.26 s the encoder hears" in out


def test_a_text_multiple_choice_file_is_checked_without_clips(tmp_path, capsys):
    items = [
        {"id": "t0", "question": "Which one is a colour?", "choices": ["red", "table"], "answer": "red"},
        {"id": "t1", "question": "Which one can swim?", "choices": ["fish"], "answer": "fish"},
    ]
    path = tmp_path / "text_mc.json"
    path.write_text(json.dumps(items))
    assert data_main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: item 1 (choices): 1 choice(s); a question needs 2 or more" in out
    assert f"{path}: text multiple-choice file (no audio_id), 2 item(s), 1 good, 1 bad" in out
