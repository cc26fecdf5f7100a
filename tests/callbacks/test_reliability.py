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
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import interleave.encoders.audio
import train
from callbacks.reliability import atomic_torch_save
from interleave.data.sampler import TrainingSampler
from interleave.shard.cli import main as shard_main
from interleave.tools.dataset import main as data_main
from interleave.tools.fill_cache import main as cache_main
from interleave.tools.rephrase.cli import main as rephrase_main
from interleave.tools.report.cli import main as report_main
from tests.helpers import RunsCode, write_clip, write_config, write_jsonl

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def hold_until_sigterm(trainer: L.Trainer, marker: str, seconds: float) -> None:
    """Write `marker` (the step) so the test knows where the run is, then wait up to `seconds` for SIGTERM."""
    Path(marker).write_text(str(trainer.global_step))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not trainer.received_sigterm:
        time.sleep(0.05)


class PauseAtStep(L.Callback):
    """Test-only: at `step`, write `marker` and wait (up to `seconds`) so the test can signal a run mid-epoch."""

    def __init__(self, step: int, marker: str, seconds: float = 120.0) -> None:
        self.step, self.marker, self.seconds = step, marker, seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != self.step:
            return
        hold_until_sigterm(trainer, self.marker, self.seconds)


def edit_config(
    path: Path, *, ckpt_every: int | None = None, extra_callbacks: list | None = None, data: dict | None = None
) -> Path:
    config = yaml.safe_load(path.read_text())
    if ckpt_every is not None:
        config["trainer"]["callbacks"][0]["init_args"]["every_n_train_steps"] = ckpt_every
    config["trainer"]["callbacks"] += extra_callbacks or []
    config["data"].update(data or {})
    path.write_text(yaml.safe_dump(config))
    return path


def pause(step: int, marker: Path) -> dict:
    return {
        "class_path": "tests.callbacks.test_reliability.PauseAtStep",
        "init_args": {"step": step, "marker": str(marker)},
    }


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(marker: Path, process: subprocess.Popen, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"run ended before {marker.name}: {process.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, f"no {marker.name} after {seconds}s"
        time.sleep(0.1)


def run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def trainable(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def deterministic_kwargs(tiny_model_kwargs: dict) -> dict:
    # Dropout stays on: the resumed run must draw the same masks (ResumeRandomState) and the same
    # data order (TrainingSampler + the data module's checkpointed position) as an unbroken one.
    return {**tiny_model_kwargs, "lora_dropout": 0.3, "val_generate": False}


# ---- 1. kill and resume ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("batch_size, ckpt_every, kill_at", [(1, 3, 4), (2, 2, 3)], ids=["mid-epoch", "epoch-end"])
def test_sigkill_then_resume_ends_with_the_weights_of_an_uninterrupted_run(
    batch_size, ckpt_every, kill_at, tmp_path, small_dataset, tiny_model_kwargs
):
    """4 records, 8 steps, killed at `kill_at`, resumed from the checkpoint before it.

    mid-epoch: batch 1 (4 steps an epoch), checkpoint at step 3, 3 of epoch 0's 4 batches done.
    epoch-end: batch 2 (2 steps an epoch), checkpoint at step 2, the end of epoch 0 (validation follows).
    """
    kwargs = deterministic_kwargs(tiny_model_kwargs)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for folder in (straight, killed):
        folder.mkdir()
    data = {"batch_size": batch_size}
    config = edit_config(write_config(straight, small_dataset, kwargs, max_steps=8), ckpt_every=ckpt_every, data=data)
    done = run(["fit", "--config", str(config)])
    assert done.returncode == 0, done.stderr[-3000:]

    marker = killed / f"at_step_{kill_at}"
    config = edit_config(
        write_config(killed, small_dataset, kwargs, max_steps=8),
        ckpt_every=ckpt_every,
        data=data,
        extra_callbacks=[pause(kill_at, marker)],
    )
    process = start(["fit", "--config", str(config)])
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    last = killed / "ckpt" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["global_step"] == kill_at - 1
    per_epoch = 4 // batch_size
    assert saved["InterleavedDataModule"]["train_position"] == {
        "epoch": (kill_at - 2) // per_epoch,
        "batches_done": (kill_at - 2) % per_epoch + 1,
        "batch_size": batch_size,
        "world_size": 1,
    }
    assert len(saved["random_states"]) == 1

    at_kill = trainable(last)
    config = edit_config(write_config(killed, small_dataset, kwargs, max_steps=8), ckpt_every=ckpt_every, data=data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = train.cli(["fit", "--config", str(config), f"--ckpt_path={last}"])
    assert not [w for w in caught if "not resumable" in str(w.message)]
    assert resumed.trainer.global_step == 8
    assert resumed.trainer.fit_loop.epoch_progress.current.completed == 8 // per_epoch
    want, got = trainable(straight / "ckpt" / "last.ckpt"), trainable(killed / "ckpt" / "last.ckpt")
    assert set(want) == set(got)
    # the resumed steps moved the weights far beyond the tolerance below
    assert max((want[n] - at_kill[n]).abs().max().item() for n in want) > 1e-3
    for name in want:  # CPU, one thread, same order of operations: equal to float32 rounding (atol 1e-6)
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-6, msg=name)


@pytest.mark.slow
def test_a_released_models_fit_killed_resumes_with_ckpt_path_last_to_the_uninterrupted_weights(tmp_path, small_dataset):
    """model.pretrained (issue 36) on the tiny Qwen2-Audio folder: killed (SIGKILL) at step 4 after the
    checkpoint of step 3, resumed with --ckpt_path last, it ends with an unbroken run's weights; its
    checkpoints hold LoRA and the projector only (no tower or LLM weight) and the folder's identity."""
    from tests.helpers import save_tiny_qwen2_audio

    folder = save_tiny_qwen2_audio(tmp_path / "qwen2-audio")
    kwargs = {
        "pretrained": str(folder),
        "llm": None,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.3,
        "learning_rate": 1e-2,
        "warmup_steps": 1,
        "val_generate": False,
    }
    data = {"batch_size": 1, "max_length": 1024}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for where in (straight, killed):
        where.mkdir()
    config = edit_config(write_config(straight, small_dataset, kwargs, max_steps=8), ckpt_every=3, data=data)
    done = run(["fit", "--config", str(config)])
    assert done.returncode == 0, done.stderr[-3000:]

    marker = killed / "at_step_4"
    config = edit_config(
        write_config(killed, small_dataset, kwargs, max_steps=8),
        ckpt_every=3,
        data=data,
        extra_callbacks=[pause(4, marker)],
    )
    process = start(["fit", "--config", str(config)])
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    last = killed / "ckpt" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 3 and saved["released"]["folder"] == str(folder)
    names = set(saved["state_dict"])
    assert names and all(("lora_A" in n or "lora_B" in n) or n.startswith("audio_proj.") for n in names)
    assert not [n for n in names if n.startswith("audio_encoder.") or "base_layer" in n or "embed_tokens" in n]
    at_kill = trainable(last)

    config = edit_config(write_config(killed, small_dataset, kwargs, max_steps=8), ckpt_every=3, data=data)
    resumed = train.cli(["fit", "--config", str(config), "--ckpt_path=last"])
    assert resumed.trainer.global_step == 8
    want, got = trainable(straight / "ckpt" / "last.ckpt"), trainable(last)
    assert set(want) == set(got) == names
    assert max((want[n] - at_kill[n]).abs().max().item() for n in want) > 1e-3
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=0, atol=1e-6, msg=name)


KILLED_SAVER = """
import io, sys, time, torch
from pathlib import Path
from callbacks.reliability import atomic_torch_save
target, half = Path(sys.argv[1]), Path(sys.argv[2])
big = {"w": torch.randn(12_000_000)}
atomic_torch_save({"version": 0, **big}, target)
real_save = torch.save
def stalled_save(obj, handle):  # the real bytes, but only the first half reach the file before the kill
    buffer = io.BytesIO()
    real_save(obj, buffer)
    handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    handle.flush()
    half.write_text("half written")
    time.sleep(600)
torch.save = stalled_save
atomic_torch_save({"version": 1, **big}, target)
"""


@pytest.mark.slow
def test_a_kill_during_a_save_leaves_the_previous_checkpoint_whole(tmp_path):
    """SIGKILL a process halfway through saving a 48 MB checkpoint: the previous file is whole and loads.

    The saver stalls at a known point (half the bytes written) so the kill lands mid-write every time;
    a kill timed by polling could land after the write and before the rename, testing nothing new.
    """
    target, half = tmp_path / "last.ckpt", tmp_path / "half"
    process = subprocess.Popen([sys.executable, "-c", KILLED_SAVER, str(target), str(half)], cwd=REPO, env=ENV)
    deadline = time.monotonic() + 120
    while not half.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    (partial,) = tmp_path.glob("last.ckpt.tmp-*")  # what the kill left: a partial file beside the target
    assert 0 < partial.stat().st_size < target.stat().st_size
    saved = torch.load(target, map_location="cpu", weights_only=True)
    assert saved["version"] == 0 and saved["w"].numel() == 12_000_000


@pytest.mark.slow
def test_a_truncated_last_ckpt_is_refused_naming_it_and_the_intact_ones(
    tmp_path, small_dataset, tiny_model_kwargs, capsys
):
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    train.cli(["fit", "--config", str(config)])
    last = tmp_path / "ckpt" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # what a kill mid-write leaves
    capsys.readouterr()
    assert train.main(["fit", "--config", str(config), "--trainer.max_steps=6", f"--ckpt_path={last}"]) == 2
    err = capsys.readouterr().err
    assert f"{last}: not a complete checkpoint" in err and "Traceback" not in err
    assert str(tmp_path / "ckpt" / "epoch=1-step=4.ckpt") in err  # the intact fallback, named
    run = train.cli(
        [
            "fit",
            "--config",
            str(config),
            "--trainer.max_steps=6",
            f"--ckpt_path={tmp_path / 'ckpt' / 'epoch=1-step=4.ckpt'}",
        ]
    )
    assert run.trainer.global_step == 6


@pytest.mark.slow
def test_lightning_itself_saves_through_the_atomic_writer(tmp_path, small_dataset, tiny_model_kwargs, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "callbacks.reliability.atomic_torch_save", lambda obj, path: calls.append(path) or atomic_torch_save(obj, path)
    )
    train.cli(["fit", "--config", str(write_config(tmp_path, small_dataset, tiny_model_kwargs))])
    assert tmp_path / "ckpt" / "last.ckpt" in calls
    assert not list((tmp_path / "ckpt").glob("*.tmp-*"))


# ---- 2. preemption --------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_exits_cleanly_and_resumes(tmp_path, small_dataset, tiny_model_kwargs):
    marker = tmp_path / "at_step_3"
    config = edit_config(
        write_config(tmp_path, small_dataset, tiny_model_kwargs, max_steps=8),
        ckpt_every=100,
        extra_callbacks=[pause(3, marker)],
    )
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


class PauseInValidation(L.Callback):
    """Test-only: after a fit's first validation batch (not the sanity check), write `marker`, wait for SIGTERM."""

    def __init__(self, marker: str, seconds: float = 120.0) -> None:
        self.marker, self.seconds = marker, seconds

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.sanity_checking or Path(self.marker).exists():
            return
        hold_until_sigterm(trainer, self.marker, self.seconds)


@pytest.mark.slow
def test_sigterm_during_validation_stops_the_shard_evaluation_saves_and_the_resume_evaluates(
    tmp_path, small_dataset, tiny_model_kwargs
):
    """SIGTERM while epoch 1's validation runs: SHARD stops before its first chunk, last.ckpt is saved, exit 0;
    the resumed run evaluates epoch 1 and goes on to epoch 2."""
    from tests.helpers import run_dir, shard_config

    marker = tmp_path / "in_validation"
    config = shard_config(
        tmp_path, small_dataset, tiny_model_kwargs, {"text_control": False}, max_steps=-1, max_epochs=2
    )
    config = edit_config(
        config,
        ckpt_every=100,
        extra_callbacks=[
            {"class_path": "tests.callbacks.test_reliability.PauseInValidation", "init_args": {"marker": str(marker)}}
        ],
    )
    process = start(["fit", "--config", str(config)])
    wait_for(marker, process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    assert "SHARD epoch 1: SIGTERM, stopped after 0 of" in out + err
    last = tmp_path / "ckpt" / "last.ckpt"
    assert f"SIGTERM: saved {last} at step 2" in out + err and "Traceback" not in err
    predictions = run_dir(tmp_path) / "predictions"
    assert sorted(p.name for p in predictions.glob("*.metrics.json")) == ["epoch=00.metrics.json"]

    config = edit_config(config, extra_callbacks=[])  # the marker exists: the pause callback stays idle
    resumed = run(["fit", "--config", str(config), f"--ckpt_path={last}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    files = (tmp_path / "runs" / "t").glob("version_*/predictions/*.metrics.json")
    points = {p.name: json.loads(p.read_text()) for p in files}
    assert sorted(points) == ["epoch=00.metrics.json", "epoch=01.metrics.json", "epoch=02.metrics.json"]
    assert [points[f"epoch={e:02d}.metrics.json"]["global_step"] for e in (0, 1, 2)] == [0, 2, 4]


@pytest.mark.slow
def test_sigterm_under_ddp_stops_both_ranks_saves_once_and_resumes(tmp_path, small_dataset, tiny_model_kwargs):
    """2 CPU processes, 2 records each per epoch, batch 1: SIGTERM to the launching process at step 1."""
    marker = tmp_path / "at_step_1"
    data = {"batch_size": 1}
    config = edit_config(
        write_config(tmp_path, small_dataset, tiny_model_kwargs, max_steps=4),
        ckpt_every=2,
        data=data,
        extra_callbacks=[pause(1, marker)],
    )
    process = start(["fit", "--config", str(config), *DDP])
    wait_for(marker, process)
    time.sleep(1.0)  # let the other rank reach its pause too
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err[-3000:]
    last = tmp_path / "ckpt" / "last.ckpt"
    assert f"SIGTERM: saved {last} at step 1" in out + err and "Traceback" not in err
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 1 and len(saved["random_states"]) == 2  # both ranks' random states
    assert saved["InterleavedDataModule"]["train_position"] == {
        "epoch": 0,
        "batches_done": 1,
        "batch_size": 1,
        "world_size": 2,
    }
    config = edit_config(write_config(tmp_path, small_dataset, tiny_model_kwargs, max_steps=4), ckpt_every=2, data=data)
    resumed = run(["fit", "--config", str(config), *DDP, f"--ckpt_path={last}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # it went on after step 1, mid-epoch 0 (2 batches an epoch on each rank), to step 4
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("epoch=*")) == ["epoch=0-step=2.ckpt", "epoch=1-step=4.ckpt"]
    assert not list((tmp_path / "ckpt").glob("last-v*"))  # ModelCheckpoint took the SIGTERM file over
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4


# ---- 3. numerical faults --------------------------------------------------------------------


@pytest.fixture()
def nan_dataset(small_dataset, monkeypatch) -> Path:
    """6 training records; r_bad's features turn to NaN on their way to the model.

    No audio file can do that any more (`interleave.encoders.audio` refuses clips whose fbank is not
    finite), so the fault stands for what remains: a feature extractor or a mixed-precision
    overflow that makes NaN of good input. The model, loss and training loop are the real ones.
    """
    for i in (6, 7):
        write_clip(small_dataset / "audio" / f"c{i}.wav", seed=i)
    rows = [json.loads(line) for line in (small_dataset / "train.jsonl").read_text().splitlines()]
    rows += [{"id": "r6", "audio": "audio/c6.wav", "instruction": "What sound is [AUDIO]?", "output": "Labels: Siren"}]
    bad = {"id": "r_bad", "audio": "audio/c7.wav", "instruction": "What sound is [AUDIO]?", "output": "Labels: Siren"}
    second_batch = list(TrainingSampler(6, batch_size=2, seed=0))[2]  # so that one good step comes first
    rows.insert(second_batch, bad)
    write_jsonl(small_dataset / "train.jsonl", rows)
    real = interleave.encoders.audio.load_fbank  # what the CAV-MAE encoder's load_inputs calls for each item
    monkeypatch.setattr(
        "interleave.encoders.audio.load_fbank",
        lambda path, *args: real(path, *args) * (float("nan") if Path(path).name == "c7.wav" else 1.0),
    )
    return small_dataset


@pytest.mark.slow  # a fit, stopped by the NaN
def test_a_nan_loss_stops_naming_step_and_records_and_keeps_the_last_good_checkpoint(
    tmp_path, nan_dataset, tiny_model_kwargs, capsys
):
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


@pytest.mark.slow
def test_skip_mode_skips_and_counts_nonfinite_batches(tmp_path, nan_dataset, tiny_model_kwargs):
    config = write_config(
        tmp_path, nan_dataset, {**tiny_model_kwargs, "on_nonfinite_loss": "skip"}, max_steps=-1, max_epochs=2
    )
    run = train.cli(["fit", "--config", str(config)])
    assert run.trainer.current_epoch == 2  # 3 batches an epoch, r_bad's skipped in each
    assert float(run.trainer.callback_metrics["train/skipped_nonfinite"]) == 2.0
    assert all(torch.isfinite(p).all() for p in run.model.trainable_parameters().values())


# ---- 6. safe loading ------------------------------------------------------------------------


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


@pytest.mark.slow
def test_ddp_fit_with_shard_evaluation_gives_the_metrics_of_one_process(tmp_path, small_dataset, tiny_model_kwargs):
    from tests.helpers import ALL_TAGS, run_dir, shard_config

    points = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        out.mkdir()
        config = shard_config(
            out, small_dataset, tiny_model_kwargs, {"text_control": False}, max_steps=-1, max_epochs=1
        )
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


@pytest.mark.slow
def test_a_released_models_ddp_fit_gives_the_metrics_of_one_process(tmp_path, small_dataset):
    """model.pretrained (issue 36) on the tiny Qwen2-Audio folder, compared as the LTU case above: a fit
    on 2 CPU processes (gloo) goes through its epoch and evaluates, and its epoch-0 point (SHARD,
    identity and the silence and swap probes, before training) is one process's, answer for answer."""
    from tests.helpers import ALL_TAGS, run_dir, save_tiny_qwen2_audio, shard_config

    folder = save_tiny_qwen2_audio(tmp_path / "qwen2-audio")
    kwargs = {"pretrained": str(folder), "llm": None, "lora_r": 4, "lora_alpha": 8, "val_max_new_tokens": 4}
    callback = {"text_control": False, "extra_layouts": [], "probes": ["silence", "swap"]}
    points = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        out.mkdir()
        config = shard_config(out, small_dataset, kwargs, callback, max_steps=-1, max_epochs=1)
        args = ["fit", "--config", str(config), "--data.max_length=1024"]
        if devices == 1:
            train.cli(args)
        else:
            done = run([*args, *DDP])
            assert done.returncode == 0, done.stderr[-3000:]
        predictions = run_dir(out) / "predictions"
        assert (predictions / "epoch=01.metrics.json").is_file()
        rows = [json.loads(line) for line in (predictions / "epoch=00.jsonl").read_text().splitlines()]
        assert {r["condition"] for r in rows} == {"interleaved", "silence", "swap"}
        assert len({(r["condition"], r["id"]) for r in rows}) == len(rows) == 3 * 15  # each query once
        metrics = json.loads((predictions / "epoch=00.metrics.json").read_text())
        tags = {t for t in metrics if t.startswith("val/")}
        points[devices] = ({t: metrics[t] for t in tags}, rows)
        saved = trainable(out / "ckpt" / "last.ckpt")
        assert all("lora_" in n or n.startswith("audio_proj.") for n in saved)
    assert {t for t in ALL_TAGS if not t.startswith(("val/noninterleaved", "val/text"))} <= set(points[1][0])
    assert points[2] == points[1]


@pytest.mark.slow
@pytest.mark.parametrize("rank", [1, 0])
def test_a_data_error_on_one_rank_stops_every_rank_with_the_message(rank, tmp_path, small_dataset, tiny_model_kwargs):
    draws = [list(TrainingSampler(4, batch_size=2, num_replicas=2, rank=r, seed=0)) for r in (0, 1)]
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


def corrupt(path: Path) -> Path:
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)))
    return path


def overflowing(path: Path) -> Path:
    """A float WAV of finite samples near 3e38: its fbank would be NaN."""
    loud = (np.random.default_rng(0).standard_normal(16000) * 3e38).clip(-3.3e38, 3.3e38).astype(np.float32)
    sf.write(path, loud, 16000, subtype="FLOAT", format="WAV")
    return path


def empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def with_line(path: Path, line: str) -> Path:
    path.write_text(path.read_text() + line + "\n")
    return path


def long_record(data: Path, file: str = "train.jsonl") -> Path:
    row = {
        "id": "long",
        "audio": "audio/c0.wav",
        "instruction": "What sound is [AUDIO]? " + "Listen well. " * 200,
        "output": "Labels: Siren",
    }
    return with_line(data / file, json.dumps(row))


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
    "fit/overflowing-audio": lambda d, c: ("fit", overflowing(d / "audio" / "c1.wav")),
    "fit/malformed-json": lambda d, c: ("fit", with_line(d / "train.jsonl", '{"id": "oops", "audio": ')),
    "fit/placeholders": lambda d, c: (
        "fit",
        with_line(
            d / "train.jsonl",
            json.dumps({"id": "two", "audio": "audio/c0.wav", "instruction": "[AUDIO] or [AUDIO]?", "output": "x"}),
        )
        and "id=two",
    ),
    "fit/over-long": lambda d, c: ("fit", long_record(d) and "id=long"),
    "fit/unknown-config-key": lambda d, c: ("fit", unknown_key(c) and "lerning_rate"),
    "validate/missing-audio": lambda d, c: ("validate", (d / "audio" / "c5.wav").unlink() or d / "audio" / "c5.wav"),
    "validate/corrupt-audio": lambda d, c: ("validate", corrupt(d / "audio" / "c5.wav")),
    "validate/empty-audio": lambda d, c: ("validate", empty(d / "audio" / "c5.wav")),
    "validate/overflowing-audio": lambda d, c: ("validate", overflowing(d / "audio" / "c5.wav")),
    "validate/malformed-json": lambda d, c: ("validate", with_line(d / "val.jsonl", "not json")),
    "validate/placeholders": lambda d, c: (
        "validate",
        with_line(
            d / "val.jsonl",
            json.dumps({"id": "two", "audio": "audio/c4.wav", "instruction": "[AUDIO] or [AUDIO]?", "output": "x"}),
        )
        and "id=two",
    ),
    "validate/over-long": lambda d, c: ("validate", long_record(d, "val.jsonl") and "id=long"),
    "validate/unknown-config-key": lambda d, c: ("validate", unknown_key(c) and "lerning_rate"),
}


@pytest.mark.slow  # a fit or validate, stopped by the data check
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
    elif kind == "overflowing-audio":
        overflowing(folder / "audio" / "c1.wav")
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


DATA_NAMED = {
    "missing-audio": "c1.wav",
    "corrupt-audio": "c1.wav",
    "empty-audio": "c1.wav",
    "overflowing-audio": "c1.wav",
    "malformed-json": "train.jsonl:5",
    "placeholders": "id=two",
    "over-long": "id=long",
    "missing-file": "nope.jsonl",
}


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
    code = shard_main(
        [
            "build",
            "--labels",
            str(labels),
            "--clips",
            str(clips),
            "--out",
            str(tmp_path / "s.jsonl"),
            "--lexicon",
            str(lexicon),
        ]
    )
    out, err = capsys.readouterr()
    assert code != 0 and named in err, err
    assert "Traceback" not in err


@pytest.mark.slow
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


@pytest.mark.parametrize(
    "case",
    [c for c in TRAIN_CASES if c.startswith("fit/")] + ["missing-config", "no-cache-folder", "unset-config-path"],
)
def test_feature_cache_bad_input(case, tmp_path, small_dataset, tiny_model_kwargs, capsys):
    """`python -m interleave.encoders.cache` reads the run's config and every clip of its sets: the same failures as fit."""
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    folder = ["--data.feature_cache", str(tmp_path / "cache")]
    if case == "missing-config":
        config, named = tmp_path / "nope.yaml", tmp_path / "nope.yaml"
    elif case == "no-cache-folder":
        folder, named = [], "data.feature_cache"
    elif case == "unset-config-path":  # the paper's configs leave their data paths as ???
        config, named = REPO / "configs" / "paper" / "base.yaml", "the config leaves paths."
    else:
        named = TRAIN_CASES[case](small_dataset, config)[1]
    try:
        code = cache_main(["--config", str(config), *folder])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code not in (0, None)
    assert str(named) in err, err[-2000:]
    assert "Traceback" not in err


REPHRASE_INPUT = {
    "missing-input": (None, "nope.json: cannot open input"),
    "empty-input": ("", "empty.json: no records"),
    "malformed-json": ('[\n {"task": "cla_label"},\n {"task": ,}\n]', "malformed.json:3: malformed JSON"),
    "malformed-jsonl": ('{"task": "cla_label"}\n{oops\n', "malformed.jsonl:2: malformed JSON"),
    "not-an-object": ("[1, 2]", "not-an-object.json:1: expected a JSON object"),
    "nothing-eligible": ('[{"task": "unknown", "dataset": "x"}]', "nothing-eligible.json: none of its 1 records"),
}


@pytest.mark.parametrize("kind", list(REPHRASE_INPUT))
def test_rephrase_bad_input(kind, tmp_path, capsys):
    text, named = REPHRASE_INPUT[kind]
    path = tmp_path / named.split(":")[0]
    if text is not None:
        path.write_text(text)
    code = rephrase_main(["--input", str(path), "--out", str(tmp_path / "out.jsonl"), "--size", "2"])
    err = capsys.readouterr().err
    assert code == 2 and str(tmp_path / named) in err, err
    assert "Traceback" not in err
