"""Reliability: each fault is caused for real (signals to real processes, real corrupt files) and survived.

Kill/resume, kill during a save, SIGTERM preemption, NaN losses, DDP with a failing rank, bad input
at every entry point, and malicious checkpoints. Tiny models; subprocesses run with one thread.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
import lightning as L

import train
from callbacks.reliability import atomic_torch_save
from interleave.data import main as data_main
from interleave.report import main as report_main
from interleave.shard import main as shard_main
from tests.conftest import write_clip, write_jsonl
from tests.test_train import write_config

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


class PauseAtStep(L.Callback):
    """Test-only: at `step`, write `marker` and wait (up to `seconds`) so the test can signal a run mid-epoch."""

    def __init__(self, step: int, marker: str, seconds: float = 120.0) -> None:
        self.step, self.marker, self.seconds = step, marker, seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != self.step:
            return
        Path(self.marker).write_text(str(trainer.global_step))
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not trainer.received_sigterm:
            time.sleep(0.05)


def edit_config(path: Path, *, ckpt_every: int | None = None, extra_callbacks: list | None = None,
                data: dict | None = None) -> Path:
    config = yaml.safe_load(path.read_text())
    if ckpt_every is not None:
        config["trainer"]["callbacks"][0]["init_args"]["every_n_train_steps"] = ckpt_every
    config["trainer"]["callbacks"] += extra_callbacks or []
    config["data"].update(data or {})
    path.write_text(yaml.safe_dump(config))
    return path


def pause(step: int, marker: Path) -> dict:
    return {"class_path": "tests.test_reliability.PauseAtStep", "init_args": {"step": step, "marker": str(marker)}}


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(marker: Path, process: subprocess.Popen, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"run ended before {marker.name}: {process.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, f"no {marker.name} after {seconds}s"
        time.sleep(0.1)


def run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def trainable(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def deterministic_kwargs(tiny_model_kwargs: dict) -> dict:
    # No dropout: the only randomness left is the data order, which group_by_length fixes per epoch.
    return {**tiny_model_kwargs, "lora_dropout": 0.0, "val_generate": False}


# ---- 1. kill and resume ---------------------------------------------------------------------


def test_sigkill_mid_epoch_then_resume_ends_with_the_weights_of_an_uninterrupted_run(tmp_path, small_dataset,
                                                                                      tiny_model_kwargs):
    """4 records, batch 2: 2 steps an epoch, a checkpoint at each epoch end; 3 epochs = 6 steps."""
    kwargs = deterministic_kwargs(tiny_model_kwargs)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for folder in (straight, killed):
        folder.mkdir()
    data = {"group_by_length": True}
    config = edit_config(write_config(straight, small_dataset, kwargs, max_steps=6), data=data)
    done = run(["fit", "--config", str(config)])
    assert done.returncode == 0, done.stderr[-3000:]

    marker = killed / "at_step_5"
    config = edit_config(write_config(killed, small_dataset, kwargs, max_steps=6), data=data,
                         extra_callbacks=[pause(5, marker)])
    process = start(["fit", "--config", str(config)])
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)  # mid-epoch 2: step 5 of 6, last checkpoint at step 4
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    last = killed / "ckpt" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4
    assert not (killed / "ckpt" / "epoch=2-step=6.ckpt").exists()

    at_kill = trainable(last)
    config = edit_config(write_config(killed, small_dataset, kwargs, max_steps=6), data=data)
    resumed = train.cli(["fit", "--config", str(config), f"--ckpt_path={last}"])
    assert resumed.trainer.global_step == 6
    assert resumed.trainer.fit_loop.epoch_progress.current.completed == 3
    want, got = trainable(straight / "ckpt" / "last.ckpt"), trainable(killed / "ckpt" / "last.ckpt")
    assert set(want) == set(got)
    # the resumed steps moved the weights far beyond the tolerance below
    assert max((want[n] - at_kill[n]).abs().max().item() for n in want) > 1e-3
    for name in want:  # CPU, one thread, same order of operations: equal to float32 rounding (atol 1e-6)
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-6, msg=name)


KILLED_SAVER = """
import sys, time, torch
from pathlib import Path
from callbacks.reliability import atomic_torch_save
target = Path(sys.argv[1])
big = {"w": torch.randn(12_000_000)}
atomic_torch_save({"version": 0, **big}, target)
Path(sys.argv[2]).write_text("ready")
for version in range(1, 1000):
    atomic_torch_save({"version": version, **big}, target)
"""


def test_a_kill_during_a_save_leaves_the_previous_checkpoint_whole(tmp_path):
    """SIGKILL a process that saves a 48 MB checkpoint over and over: the file always loads."""
    target, marker = tmp_path / "last.ckpt", tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-c", KILLED_SAVER, str(target), str(marker)], cwd=REPO, env=ENV)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    while not any(p.stat().st_size > 2**20 for p in tmp_path.glob("last.ckpt.tmp-*")):  # a later save, half done
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    (partial,) = tmp_path.glob("last.ckpt.tmp-*")  # what the kill left: a partial file, never the target
    assert partial.stat().st_size < target.stat().st_size
    assert torch.load(target, map_location="cpu", weights_only=True)["w"].numel() == 12_000_000


def test_a_truncated_last_ckpt_is_refused_naming_it_and_the_intact_ones(tmp_path, small_dataset, tiny_model_kwargs,
                                                                        capsys):
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    train.cli(["fit", "--config", str(config)])
    last = tmp_path / "ckpt" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # what a kill mid-write leaves
    capsys.readouterr()
    assert train.main(["fit", "--config", str(config), "--trainer.max_steps=6", f"--ckpt_path={last}"]) == 2
    err = capsys.readouterr().err
    assert f"{last}: not a complete checkpoint" in err and "Traceback" not in err
    assert str(tmp_path / "ckpt" / "epoch=1-step=4.ckpt") in err  # the intact fallback, named
    run = train.cli(["fit", "--config", str(config), "--trainer.max_steps=6",
                     f"--ckpt_path={tmp_path / 'ckpt' / 'epoch=1-step=4.ckpt'}"])
    assert run.trainer.global_step == 6


def test_lightning_itself_saves_through_the_atomic_writer(tmp_path, small_dataset, tiny_model_kwargs, monkeypatch):
    calls = []
    monkeypatch.setattr("callbacks.reliability.atomic_torch_save",
                        lambda obj, path: calls.append(path) or atomic_torch_save(obj, path))
    train.cli(["fit", "--config", str(write_config(tmp_path, small_dataset, tiny_model_kwargs))])
    assert tmp_path / "ckpt" / "last.ckpt" in calls
    assert not list((tmp_path / "ckpt").glob("*.tmp-*"))


# ---- 2. preemption --------------------------------------------------------------------------


def test_sigterm_saves_a_checkpoint_exits_cleanly_and_resumes(tmp_path, small_dataset, tiny_model_kwargs):
    marker = tmp_path / "at_step_3"
    config = edit_config(write_config(tmp_path, small_dataset, tiny_model_kwargs, max_steps=8), ckpt_every=100,
                         extra_callbacks=[pause(3, marker)])
    process = start(["fit", "--config", str(config)])
    wait_for(marker, process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    last = tmp_path / "ckpt" / "last.ckpt"
    assert not list((tmp_path / "ckpt").glob("epoch=*"))  # the only checkpoint is the one SIGTERM wrote
    assert f"SIGTERM: saved {last} at step 3" in out + err
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 3
    assert "Traceback" not in err

    config = edit_config(write_config(tmp_path, small_dataset, tiny_model_kwargs, max_steps=6), ckpt_every=100)
    resumed = train.cli(["fit", "--config", str(config), f"--ckpt_path={last}"])
    assert resumed.trainer.global_step == 6


# ---- 3. numerical faults --------------------------------------------------------------------


@pytest.fixture()
def nan_dataset(small_dataset) -> Path:
    """6 training records; r_bad's float WAV has finite but huge samples, so its fbank is NaN."""
    loud = (np.random.default_rng(0).standard_normal(16000) * 3e38).clip(-3.3e38, 3.3e38).astype(np.float32)
    sf.write(small_dataset / "audio" / "loud.wav", loud, 16000, subtype="FLOAT")
    for i in (6, 7):
        write_clip(small_dataset / "audio" / f"c{i}.wav", seed=i)
    rows = [json.loads(line) for line in (small_dataset / "train.jsonl").read_text().splitlines()]
    rows += [{"id": "r6", "audio": "audio/c6.wav", "instruction": "What sound is [AUDIO]?", "output": "Labels: Siren"},
             {"id": "r_bad", "audio": "audio/loud.wav", "instruction": "What sound is [AUDIO]?",
              "output": "Labels: Siren"}]
    write_jsonl(small_dataset / "train.jsonl", rows)
    return small_dataset


def test_a_nan_loss_stops_naming_step_and_records_and_keeps_the_last_good_checkpoint(tmp_path, nan_dataset,
                                                                                     tiny_model_kwargs, capsys):
    config = edit_config(write_config(tmp_path, nan_dataset, tiny_model_kwargs, max_steps=12), ckpt_every=1)
    assert train.main(["fit", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "non-finite training loss (nan) at step" in err and "'r_bad'" in err and "Traceback" not in err
    step = int(err.split(" at step ")[1].split(",")[0])
    ckpts = sorted((tmp_path / "ckpt").glob("epoch=*.ckpt"))
    assert len(ckpts) == step  # one per good step, none after the NaN
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == step
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


def test_skip_mode_skips_and_counts_nonfinite_batches(tmp_path, nan_dataset, tiny_model_kwargs):
    config = write_config(tmp_path, nan_dataset, {**tiny_model_kwargs, "on_nonfinite_loss": "skip"}, max_steps=4)
    run = train.cli(["fit", "--config", str(config)])
    assert run.trainer.global_step == 4  # 3 batches an epoch, one skipped: 2 epochs
    assert run.trainer.current_epoch == 2
    assert float(run.trainer.callback_metrics["train/skipped_nonfinite"]) == 2.0
    assert all(torch.isfinite(p).all() for p in run.model.trainable_parameters().values())


# ---- 6. safe loading ------------------------------------------------------------------------


class RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("command", ["fit", "validate"])
def test_a_checkpoint_that_runs_code_is_refused(tmp_path, small_dataset, tiny_model_kwargs, capsys, command):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": RunsCode(str(marker))}, evil)
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    assert train.main([command, "--config", str(config), f"--ckpt_path={evil}"]) == 2
    err = capsys.readouterr().err
    assert f"{evil}: refused" in err and "Traceback" not in err
    assert not marker.exists()


# ---- 4. distributed faults ------------------------------------------------------------------


DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]


def test_ddp_fit_with_shard_evaluation_gives_the_metrics_of_one_process(tmp_path, small_dataset, tiny_model_kwargs):
    from tests.test_shard_eval import ALL_TAGS, run_dir, shard_config

    points = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        out.mkdir()
        config = shard_config(out, small_dataset, tiny_model_kwargs, {"text_control": False},
                              max_steps=-1, max_epochs=1)
        if devices == 1:
            train.cli(["fit", "--config", str(config)])
        else:
            done = run(["fit", "--config", str(config), *DDP])
            assert done.returncode == 0, done.stderr[-3000:]
        predictions = run_dir(out) / "predictions"
        assert (predictions / "epoch=01.metrics.json").is_file()  # fit went through its epoch and evaluated
        rows = [json.loads(line) for line in (predictions / "epoch=00.jsonl").read_text().splitlines()]
        assert len({(r["condition"], r["id"]) for r in rows}) == len(rows) == 15 + 15  # each query once
        metrics = json.loads((predictions / "epoch=00.metrics.json").read_text())
        points[devices] = ({t: metrics[t] for t in ALL_TAGS if t in metrics}, rows)
    # Before training both runs hold the same weights: the same answers and metrics, on 1 or 2 ranks.
    assert points[2] == points[1]


@pytest.mark.parametrize("rank", [1, 0])
def test_a_data_error_on_one_rank_stops_every_rank_with_the_message(rank, tmp_path, small_dataset, tiny_model_kwargs):
    from torch.utils.data import DistributedSampler

    draws = [list(DistributedSampler(range(4), num_replicas=2, rank=r, shuffle=True, seed=0)) for r in (0, 1)]
    bad = draws[rank][0]  # only `rank` draws this record (records r0..r3 are c0..c3.wav)
    assert bad not in draws[1 - rank]
    clip = small_dataset / "audio" / f"c{bad}.wav"
    clip.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + os.urandom(256))  # exists, cannot be decoded
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs, max_steps=2)
    started = time.monotonic()
    done = run(["fit", "--config", str(config), *DDP], timeout=240)  # a hang would raise TimeoutExpired
    assert done.returncode != 0
    assert str(clip) in done.stderr, done.stderr[-3000:]
    assert time.monotonic() - started < 240


# ---- 5. bad input at every entry point ------------------------------------------------------
# Rephrasing (interleave.rephrase) and the feature cache are being rewritten elsewhere: not covered here.


def corrupt(path: Path) -> Path:
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)))
    return path


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def with_line(path: Path, line: str) -> Path:
    path.write_text(path.read_text() + line + "\n")
    return path


def long_record(data: Path) -> Path:
    row = {"id": "long", "audio": "audio/c0.wav", "instruction": "What sound is [AUDIO]? " + "Listen well. " * 200,
           "output": "Labels: Siren"}
    return with_line(data / "train.jsonl", json.dumps(row))


def unknown_key(config: Path) -> Path:
    data = yaml.safe_load(config.read_text())
    data["model"]["lerning_rate"] = 0.1
    config.write_text(yaml.safe_dump(data))
    return config


# (entry point, bad input) -> set-up returning (main, argv, what the message must name)
TRAIN_CASES = {
    "fit/missing-audio": lambda d, c: ("fit", (d / "audio" / "c1.wav").unlink() or d / "audio" / "c1.wav"),
    "fit/corrupt-audio": lambda d, c: ("fit", corrupt(d / "audio" / "c1.wav")),
    "fit/empty-audio": lambda d, c: ("fit", empty(d / "audio" / "c1.wav")),
    "fit/malformed-json": lambda d, c: ("fit", with_line(d / "train.jsonl", '{"id": "oops", "audio": ')),
    "fit/placeholders": lambda d, c: ("fit", with_line(d / "train.jsonl", json.dumps(
        {"id": "two", "audio": "audio/c0.wav", "instruction": "[AUDIO] or [AUDIO]?", "output": "x"})) and "id=two"),
    "fit/over-long": lambda d, c: ("fit", long_record(d) and "id=long"),
    "fit/unknown-config-key": lambda d, c: ("fit", unknown_key(c) and "lerning_rate"),
    "validate/missing-audio": lambda d, c: ("validate", (d / "audio" / "c5.wav").unlink() or d / "audio" / "c5.wav"),
    "validate/corrupt-audio": lambda d, c: ("validate", corrupt(d / "audio" / "c5.wav")),
    "validate/malformed-json": lambda d, c: ("validate", with_line(d / "val.jsonl", "not json")),
}


@pytest.mark.parametrize("case", list(TRAIN_CASES))
def test_train_py_bad_input_is_a_clear_error(case, tmp_path, small_dataset, tiny_model_kwargs, capsys):
    config = write_config(tmp_path, small_dataset, {**tiny_model_kwargs, "val_generate": False}, max_steps=2)
    command, named = TRAIN_CASES[case](small_dataset, config)
    try:
        code = train.main([command, "--config", str(config)])
    except SystemExit as exit_:  # argument errors: jsonargparse prints usage and exits
        code = exit_.code
    out, err = capsys.readouterr()
    assert code not in (0, None)
    assert str(named) in err, err[-2000:]
    assert "Traceback" not in err


def test_train_py_missing_config_path(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SystemExit) as exit_:
        train.main(["fit", "--config", str(missing)])
    err = capsys.readouterr().err
    assert exit_.value.code != 0 and str(missing) in err and "Traceback" not in err


def data_case(kind: str, folder: Path) -> Path:
    path = folder / "train.jsonl"
    if kind == "missing-audio":
        (folder / "audio" / "c1.wav").unlink()
    elif kind == "corrupt-audio":
        corrupt(folder / "audio" / "c1.wav")
    elif kind == "empty-audio":
        empty(folder / "audio" / "c1.wav")
    elif kind == "malformed-json":
        with_line(path, '{"id": "oops"')
    elif kind == "placeholders":
        row = {"id": "two", "audio": "audio/c0.wav", "instruction": "[AUDIO][AUDIO]", "output": "x"}
        with_line(path, json.dumps(row))
    elif kind == "over-long":
        long_record(folder)
    elif kind == "missing-file":
        return folder / "nope.jsonl"
    return path


DATA_NAMED = {"missing-audio": "c1.wav", "corrupt-audio": "c1.wav", "empty-audio": "c1.wav",
              "malformed-json": "train.jsonl:5", "placeholders": "id=two", "over-long": "id=long",
              "missing-file": "nope.jsonl"}


@pytest.mark.parametrize("kind", list(DATA_NAMED))
def test_dataset_checker_bad_input(kind, small_dataset, tokenizer_dir, capsys):
    path = data_case(kind, small_dataset)
    code = data_main(["check", str(path), "--decode", "--tokenizer", str(tokenizer_dir), "--max-length", "128"])
    out, err = capsys.readouterr()
    assert code != 0 and DATA_NAMED[kind] in out + err, out + err
    assert "Traceback" not in err


LABELS = "index,mid,display_name\n0,/m/0,Siren\n1,/m/1,Drum\n"


@pytest.mark.parametrize("kind", ["missing-labels", "malformed-clips", "malformed-lexicon"])
def test_shard_build_bad_input(kind, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text(LABELS)
    clips = tmp_path / "clips.json"
    clips.write_text(json.dumps({"Siren": [str(tmp_path / "missing.wav")], "Drum": [str(tmp_path / "missing.wav")]}))
    named = {"missing-labels": "nope.csv", "malformed-clips": "clips.json", "malformed-lexicon": "lexicon.json"}[kind]
    if kind == "missing-labels":
        labels = tmp_path / "nope.csv"
    elif kind == "malformed-clips":
        clips.write_text('{"Siren": [')
    lexicon = tmp_path / "lexicon.json"
    lexicon.write_text("{}")  # only the malformed-lexicon case gets that far
    code = shard_main(["build", "--labels", str(labels), "--clips", str(clips), "--out", str(tmp_path / "s.jsonl"),
                       "--lexicon", str(lexicon)])
    out, err = capsys.readouterr()
    assert code != 0 and named in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("kind", ["missing-run", "malformed-metrics", "empty-metrics"])
def test_report_bad_input(kind, tmp_path, capsys):
    run = tmp_path / "version_0"
    point = run / "predictions" / "epoch=00.metrics.json"
    point.parent.mkdir(parents=True)
    point.write_text({"missing-run": "{}", "malformed-metrics": '{"val/shard', "empty-metrics": ""}[kind])
    target = tmp_path / "nope" if kind == "missing-run" else run
    code = report_main([str(target), "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code != 0 and str(target if kind == "missing-run" else point) in err, err
    assert "Traceback" not in err
