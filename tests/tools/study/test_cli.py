"""interleave.tools.study: a 2 × 2 grid of tiny train.py runs through the local executor (killed
mid-study, then completed) and through submitit's local executor; changed specs refused; a
resumed run's --ckpt_path; failed runs with their log's last lines; the ETA."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from interleave.tools.study.cli import execute, main, pending, runs_of, status, submitit_executor
from interleave.tools.study.file import Executor, Study, StudyCondition, StudyError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["interleave"])
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the runs' and submitit jobs' interpreters import this checkout


@pytest.fixture()
def tiny_config(tmp_path, small_dataset, tiny_model_kwargs) -> Path:
    """One training step of the tiny random LLaMA; checkpoints in the run's folder (no dirpath)."""
    config = {
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": 1,
            "log_every_n_steps": 1,
            "num_sanity_val_steps": 0,
            "limit_val_batches": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": {
                "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                "init_args": {"save_dir": str(tmp_path / "elsewhere"), "name": "t"},
            },
            "callbacks": [
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {"save_last": True, "every_n_train_steps": 1},
                }
            ],
        },
        "model": {**tiny_model_kwargs, "val_max_new_tokens": 2},
        "data": {
            "train_file": str(small_dataset / "train.jsonl"),
            "val_file": str(small_dataset / "val.jsonl"),
            "batch_size": 2,
            "max_length": 128,
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def write_study(tmp_path: Path, config: Path, executor, lora_r: int = 2) -> Path:
    study = {
        "name": "grid",
        "config": str(config),
        "output": str(tmp_path / "runs" / "grid"),
        "seeds": [0, 1],
        "conditions": {"small_lora": {"overrides": {"model.lora_r": lora_r}}, "as_is": {"command": "validate"}},
        "executor": executor,
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


RUNS = ["small_lora/seed=0", "small_lora/seed=1", "as_is/seed=0", "as_is/seed=1"]


def starts(folder: Path) -> int:
    return (folder / "train.log").read_text(encoding="utf-8").count("[study] ")


@pytest.mark.slow
def test_a_grid_killed_mid_study_then_rerun_completes_only_what_was_missing(tmp_path, tiny_config, capsys):
    study_file = write_study(tmp_path, tiny_config, {"kind": "local", "parallel": 2})
    out = tmp_path / "runs" / "grid"
    proc = subprocess.Popen(
        [sys.executable, "-m", "interleave.tools.study", str(study_file)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 900  # a hang guard, not a timing assert
        while not list(out.glob("*/*/done.json")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the study and the runs it started: kill -9 mid-study
        proc.wait()
    finished = {p.parent: p.stat().st_mtime_ns for p in out.glob("*/*/done.json")}
    assert finished and len(finished) < 4

    assert main([str(study_file)]) == 0
    for run in RUNS:
        assert (out / run / "done.json").exists(), run
    for folder, mtime in finished.items():  # finished runs untouched: not started again
        assert (folder / "done.json").stat().st_mtime_ns == mtime and starts(folder) == 1
    capsys.readouterr()

    run = out / "small_lora" / "seed=1"
    command = (run / "command.txt").read_text(encoding="utf-8")
    assert f"train.py fit --config {tiny_config} --model.lora_r=2 --seed_everything=1 --data.seed=1" in command
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert config["seed_everything"] == 1 and config["model"]["lora_r"] == 2
    assert (run / "checkpoints" / "last.ckpt").exists() and list(run.glob("events.out.tfevents.*"))
    assert not (tmp_path / "elsewhere").exists()  # the config's own logger folder is not used
    assert json.loads((run / "run.json").read_text(encoding="utf-8"))["command"][2] == "fit"

    assert main([str(study_file), "--status"]) == 0
    assert "4 runs: 4 done; all done" in capsys.readouterr().out
    before = {r: starts(out / r) for r in RUNS}
    assert main([str(study_file)]) == 0  # nothing left: nothing starts
    assert {r: starts(out / r) for r in RUNS} == before


@pytest.mark.slow  # submitit starts a process per run
def test_the_grid_through_submitits_local_executor(tmp_path, tiny_config, capsys):
    study_file = write_study(
        tmp_path,
        tiny_config,
        {"kind": "slurm", "cluster": "local", "nodes": 1, "gpus_per_node": 0, "time": "0:20:00", "partition": "gpu"},
    )
    assert main([str(study_file)]) == 0
    out = tmp_path / "runs" / "grid"
    for run in RUNS:
        assert json.loads((out / run / "done.json").read_text())["exit"] == 0, run
        job = json.loads((out / run / "submitted.json").read_text())
        assert job["cluster"] == "local" and list((out / "submitit").glob(f"{job['job_id']}_*_log.out")), run
    assert (out / "small_lora" / "seed=0" / "checkpoints" / "last.ckpt").exists()
    assert "4 runs: 4 done; all done" in capsys.readouterr().out


def test_a_changed_study_file_is_refused_for_the_runs_it_changes(tmp_path, tiny_config, capsys):
    study_file = write_study(tmp_path, tiny_config, "local")
    assert main([str(study_file), "--dry-run"]) == 0  # writes each run's command and spec, runs nothing
    started = tmp_path / "runs" / "grid" / "small_lora" / "seed=0"
    (started / "train.log").write_text("[study] started\n")
    assert main([str(study_file), "--dry-run"]) == 0  # the same file again: nothing differs
    study = yaml.safe_load(study_file.read_text())
    study["conditions"]["small_lora"]["overrides"] = ["--model.lora_r=2", "--model.lora_alpha=8"]
    study_file.write_text(yaml.safe_dump(study))  # spelled otherwise, the same config: not a change
    assert main([str(study_file), "--dry-run"]) == 0
    capsys.readouterr()

    known = started / "run.json"  # a run started before a setting with a null default existed: no change
    stored = json.loads(known.read_text())
    data = stored["spec"]["config"]["data"]
    data = data.get("init_args", data)
    assert data.pop("train_files", "missing") is None
    stored["inputs"]["arguments"] = ["(resolved by an older version)"]
    known.write_text(json.dumps(stored))
    assert main([str(study_file), "--dry-run"]) == 0

    write_study(tmp_path, tiny_config, "local", lora_r=3)
    assert main([str(study_file), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"error: {study_file} changed since these runs started" in err
    assert "small_lora/seed=0" in err and "model.lora_r: 2 -> 3" in err
    assert "seed=1" not in err  # not started: its spec is simply rewritten
    assert "--model.lora_r=3" in (started.parent / "seed=1" / "command.txt").read_text()


def test_a_config_that_puts_checkpoints_outside_the_run_is_refused(tmp_path, tiny_config, capsys):
    config = yaml.safe_load(tiny_config.read_text())
    config["trainer"]["callbacks"][0]["init_args"]["dirpath"] = str(tmp_path / "ckpt")
    tiny_config.write_text(yaml.safe_dump(config))
    assert main([str(write_study(tmp_path, tiny_config, "local")), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "seed 0: ModelCheckpoint's dirpath" in err and "remove dirpath" in err


def test_a_local_run_given_fewer_gpus_than_its_trainer_uses_is_refused(tmp_path, tiny_config, capsys):
    study_file = write_study(tmp_path, tiny_config, {"kind": "local", "gpus": 2})
    study = yaml.safe_load(study_file.read_text())
    study["overrides"] = ["--trainer.devices=2"]
    study_file.write_text(yaml.safe_dump(study))
    assert main([str(study_file), "--dry-run"]) == 2
    assert "trainer.devices is 2 but executor.gpus_per_run is 1" in capsys.readouterr().err


def fake_run(tmp_path: Path, code: int) -> tuple[Study, Path]:
    """A run folder whose command is a stand-in for train.py that prints its arguments and exits `code`."""
    script = tmp_path / "fake_train.py"
    script.write_text(f"import sys\nprint('args', sys.argv[1:])\nprint('boom' if {code} else 'ok')\nsys.exit({code})\n")
    study = Study("s", [], [], [StudyCondition("a", "fit", [], [])], [0], tmp_path / "out", Executor())
    folder = study.output / "a" / "seed=0"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(
        json.dumps(
            {
                "condition": "a",
                "seed": 0,
                "cwd": str(tmp_path),
                "command": [sys.executable, str(script), "fit", "--x=1"],
            }
        )
    )
    return study, folder


@pytest.mark.slow  # the study starts the run's process
def test_an_interrupted_fit_resumes_from_its_last_checkpoint(tmp_path):
    study, folder = fake_run(tmp_path, 0)
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"")
    (folder / "running.json").write_text(json.dumps({"host": "elsewhere", "pid": 1, "start": 0}))
    assert "interrupted" in status(study)
    assert execute(str(folder)) == 0
    log = (folder / "train.log").read_text()
    assert f"'--ckpt_path={folder / 'checkpoints' / 'last.ckpt'}'" in log
    assert json.loads((folder / "done.json").read_text())["exit"] == 0
    assert "1 runs: 1 done; all done" in status(study)


@pytest.mark.slow
def test_a_run_whose_process_is_still_alive_is_left_alone(tmp_path):
    study, folder = fake_run(tmp_path, 0)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (folder / "running.json").write_text(
            json.dumps({"host": socket.gethostname(), "pid": sleeper.pid, "start": time.time()})
        )
        assert "1 running" in status(study) and pending(study, runs_of(study)) == []
    finally:
        sleeper.kill()
        sleeper.wait()
    assert "1 interrupted" in status(study) and pending(study, runs_of(study)) == runs_of(study)


@pytest.mark.slow  # the study starts the run's process
def test_a_failed_run_is_shown_with_its_logs_last_lines(tmp_path):
    study, folder = fake_run(tmp_path, 3)
    with pytest.raises(RuntimeError, match=r"a/seed=0 failed \(exit 3\)"):
        execute(str(folder))
    report = status(study)
    assert "1 failed" in report and "exit 3" in report and "| boom" in report
    assert "--ckpt_path" not in (folder / "train.log").read_text()  # nothing to resume from


def test_the_eta_comes_from_the_finished_runs(tmp_path):
    study = Study(
        "s",
        [],
        [],
        [StudyCondition("a", "fit", [], []), StudyCondition("b", "fit", [], [])],
        [0, 1],
        tmp_path / "out",
        Executor(parallel=2),
    )
    for seed, seconds in ((0, 100.0), (1, 200.0)):
        folder = study.output / "a" / f"seed={seed}"
        folder.mkdir(parents=True)
        (folder / "done.json").write_text(json.dumps({"exit": 0, "seconds": seconds}))
    report = status(study)  # two left at 150 s each, two at a time: 150 s
    assert "4 runs: 2 done, 2 to do; ETA 0:02:30 (0:02:30 a run, 2 at a time)" in report


def test_a_slurm_study_asks_for_one_task_per_gpu_under_srun(tmp_path, monkeypatch):
    """The sbatch script submitit would submit (with a stand-in `srun` on PATH: there is no cluster here)."""
    slurm = Executor("slurm", nodes=2, gpus_per_node=4, minutes=90, partition="gpu", slurm={"account": "lab"})
    study = Study("big", [], [], [StudyCondition("a", "fit", [], [])], [0], tmp_path / "out", slurm)
    with pytest.raises(StudyError, match="big: executor: .*srun.*`cluster: local` runs the same jobs"):
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        submitit_executor(study)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "srun").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    script = submitit_executor(study)._executor._make_submission_file_text("python -m submitit.core._submit", "u")
    for line in (
        "--nodes=2",
        "--ntasks-per-node=4",
        "--gpus-per-node=4",
        "--partition=gpu",
        "--account=lab",
        "--time=90",
        "--job-name=big",
    ):
        assert f"#SBATCH {line}\n" in script, line
    assert "\nsrun " in script


@pytest.mark.parametrize(
    "job,kind,left_alone",
    [
        ("PENDING", "queued", True),
        ("RUNNING", "running", True),
        ("UNKNOWN", "unknown", True),
        ("TIMEOUT", "to do", False),
    ],
)
def test_a_submitted_slurm_run_is_left_alone_while_slurm_holds_it(tmp_path, monkeypatch, job, kind, left_alone):
    study, folder = fake_run(tmp_path, 0)
    (folder / "submitted.json").write_text(json.dumps({"job_id": "42", "cluster": "slurm", "time": 0}))
    monkeypatch.setattr("interleave.tools.study.cli.slurm_state", lambda study, job_id: job if job_id == "42" else "?")
    assert f"1 {kind}" in status(study)
    assert pending(study, runs_of(study)) == ([] if left_alone else runs_of(study))


@pytest.mark.slow  # the study starts the runs' processes
def test_a_study_whose_base_config_uses_the_qwen2_audio_overlay_runs(tmp_path, tiny_config, capsys):
    """Issue 36: a study's base is a run's config and configs/models/qwen2_audio.yaml, the folder given
    as --paths.qwen2_audio in the study's overrides; --dry-run writes each run's command and a config
    whose model is the released folder's (the base's tiny LLM, tokenizer and encoder reset), and both
    conditions (fit with another LoRA rank, validate) run."""
    from tests.helpers import save_tiny_qwen2_audio

    folder = save_tiny_qwen2_audio(tmp_path / "qwen2-audio")
    overlay = REPO / "configs" / "models" / "qwen2_audio.yaml"
    study = {
        "name": "released",
        "config": [str(tiny_config), str(overlay)],
        "overrides": [f"--paths.qwen2_audio={folder}"],
        "output": str(tmp_path / "runs" / "released"),
        "seeds": [0],
        "conditions": {"small_lora": {"overrides": {"model.lora_r": 2}}, "as_is": {"command": "validate"}},
        "executor": "local",
    }
    study_file = tmp_path / "released.yaml"
    study_file.write_text(yaml.safe_dump(study))
    out = tmp_path / "runs" / "released"
    assert main([str(study_file), "--dry-run"]) == 0
    run = out / "small_lora" / "seed=0"
    command = (run / "command.txt").read_text(encoding="utf-8")
    assert f"train.py fit --config {tiny_config} --config {overlay} --paths.qwen2_audio={folder}" in command
    model = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))["model"]
    assert model["pretrained"] == str(folder) and model["lora_r"] == 2
    assert (model["llm_config"], model["tokenizer"], model["encoder"]) == (None, None, "cavmae")  # the folder's
    assert not list(out.glob("*/*/done.json"))  # nothing ran

    assert main([str(study_file)]) == 0
    for name in ("small_lora/seed=0", "as_is/seed=0"):
        assert json.loads((out / name / "done.json").read_text())["exit"] == 0, (out / name / "train.log").read_text()
    saved = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["released"]["folder"] == str(folder)
    assert all("lora_" in k or k.startswith("audio_proj.") for k in saved["state_dict"])
    assert main([str(study_file), "--status"]) == 0
    assert "2 runs: 2 done; all done" in capsys.readouterr().out
