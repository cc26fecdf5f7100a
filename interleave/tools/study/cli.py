"""`interleave study STUDY.yaml`: a study's conditions × seeds as runs, here or on a Slurm cluster.

A study file names a base config, named conditions (each its overrides and `fit` or `validate`),
seeds, an output folder and an executor. Every (condition, seed) is one `python train.py ...` run
in `<output>/<condition>/seed=<s>/`, with its command (`command.txt`, `run.json`) and resolved
config (`config.yaml`) beside it. Running the study again skips finished runs, resumes interrupted
ones from their `last.ckpt` and refuses runs whose spec the study file has since changed.
`--status` says what is done, running, failed (with the log's last lines) and the time left.
The study file's keys are checked in `interleave.tools.study.file`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from interleave.errors import report_errors
from interleave.files import write_text_atomic
from interleave.progress import duration
from interleave.tools.study.file import Study, StudyError, load_study

TRAIN_PY = Path(__file__).resolve().parents[3] / "train.py"
DONE, FAILED, RUNNING, SUBMITTED = "done.json", "failed.json", "running.json", "submitted.json"
ACTIVE_SLURM_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING"}


@dataclass(frozen=True)
class Run:
    """One (condition, seed) of a study and its folder."""

    condition: str
    seed: int
    folder: Path

    @property
    def name(self) -> str:
        return f"{self.condition}/seed={self.seed}"


def runs_of(study: Study) -> list[Run]:
    return [Run(c.name, s, study.output / c.name / f"seed={s}") for c in study.conditions for s in study.seeds]


def base_arguments(study: Study, run: Run) -> list[str]:
    """train.py's arguments for a run, without where its files go: what its spec is made of."""
    condition = study.condition(run.condition)
    args = [condition.subcommand]
    for config in study.configs + condition.configs:
        args += ["--config", str(config)]
    return (
        args
        + study.overrides
        + condition.overrides
        + study.executor.train_overrides()
        + [f"--{key}={run.seed}" for key in study.seed_keys]
    )


def resolve(args: list[str], where: str) -> dict[str, Any]:
    """The config train.py would run with these arguments (its `--print_config`), parsed in-process."""
    from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

    from interleave.cli import cli

    out, err = io.StringIO(), io.StringIO()
    code: Any = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli(args + ["--print_config"])
        except SystemExit as exit_:
            code = exit_.code
        except (MissingMandatoryValue, InterpolationToMissingValueError) as missing:
            raise StudyError(
                f"{where}: a value is left to set (???); set it in the study file's overrides: "
                f"{str(missing).splitlines()[0]}"
            ) from None
    if code not in (0, None) or not out.getvalue().strip():
        reason = next((line for line in reversed(err.getvalue().splitlines()) if line.strip()), f"exit status {code}")
        raise StudyError(f"{where}: train.py refuses {' '.join(args)}: {reason}")
    return yaml.safe_load(out.getvalue())


def placement(resolved: dict[str, Any], run: Run, where: str) -> list[str]:
    """The arguments that put a run's logs and checkpoints in its folder (checked against its config)."""
    trainer = resolved.get("trainer") or {}
    args = [f"--trainer.default_root_dir={run.folder.resolve()}"]
    logger = trainer.get("logger")
    if isinstance(logger, list):
        raise StudyError(f"{where}: trainer.logger is a list; a study run needs one logger (or none)")
    if isinstance(logger, dict):  # TensorBoard/CSV: <save_dir>/<name>/<version>/ = the run's folder
        args += [
            f"--trainer.logger.init_args.save_dir={run.folder.parent.resolve()}",
            f"--trainer.logger.init_args.name={run.folder.name}",
            "--trainer.logger.init_args.version=",
        ]
    for callback in trainer.get("callbacks") or []:
        dirpath = (callback.get("init_args") or {}).get("dirpath") if isinstance(callback, dict) else None
        if dirpath and str(callback.get("class_path", "")).endswith("ModelCheckpoint"):
            raise StudyError(
                f"{where}: ModelCheckpoint's dirpath {dirpath} would put every run's checkpoints in one "
                "folder; remove dirpath so that they go to each run's folder"
            )
    return args


def flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (lists stay values): what differs is named key by key."""
    if isinstance(value, dict) and value:
        return {k: v for key, sub in value.items() for k, v in flat(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def settled(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved config's keys that hold a value: a setting that a later version of interleave adds
    with a null default (`data.train_files`) changes no run that started before it."""
    return {key: value for key, value in flat(config).items() if value is not None}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before, after = settled(old), settled(new)
    return [
        f"{key}: {before.get(key, '(unset)')!r} -> {after.get(key, '(unset)')!r}"
        for key in sorted(set(before) | set(after))
        if before.get(key, "(unset)") != after.get(key, "(unset)")
    ]


def inputs_of(study: Study, run: Run, args: list[str]) -> dict[str, Any]:
    """What a run's spec is computed from: unchanged inputs need no second resolution (a fast rerun)."""
    configs = study.configs + study.condition(run.condition).configs
    return {
        "arguments": args,
        "cwd": os.getcwd(),
        "folder": str(run.folder.resolve()),
        "files": {c: hashlib.sha256(Path(c).read_bytes()).hexdigest() for c in configs},
    }


def check_devices(study: Study, config: dict[str, Any], where: str) -> None:
    devices = str((config.get("trainer") or {}).get("devices"))  # 2 or "2"; "auto" and lists are not checked
    if study.executor.gpus and devices.isdigit() and int(devices) > study.executor.gpus_per_run:
        raise StudyError(
            f"{where}: trainer.devices is {devices} but executor.gpus_per_run is "
            f"{study.executor.gpus_per_run}: give each run as many GPUs as it uses"
        )


def prepare(study: Study, study_file: Path) -> list[Run]:
    """Write each run's command, spec and resolved config; refuse (all at once, naming what differs)
    runs that already started under another spec."""
    if not TRAIN_PY.is_file():
        raise StudyError(f"{study_file}: a study runs the checkout's train.py, and there is none at {TRAIN_PY}")
    runs, refused = runs_of(study), []
    for run in runs:
        where = f"{study_file}: condition {run.condition!r}, seed {run.seed}"
        args = base_arguments(study, run)
        known, inputs = run.folder / "run.json", inputs_of(study, run, args)
        stored = read(known)
        if stored and stored.get("inputs") == inputs:
            check_devices(study, stored["spec"]["config"], where)
            continue  # prepared before from the same arguments and config files
        spec = {"arguments": args, "config": resolve(args, where)}
        old = stored["spec"]["config"] if stored else spec["config"]  # the config decides; not how it was spelled
        if settled(old) != settled(spec["config"]) and (run.folder / "train.log").exists():
            refused.append(f"{run.name} ({run.folder}):\n    " + "\n    ".join(differences(old, spec["config"])))
            continue
        check_devices(study, spec["config"], where)
        args = args + placement(spec["config"], run, where)
        command = [sys.executable, str(TRAIN_PY), *args]
        run.folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run.folder / "config.yaml", yaml.safe_dump(resolve(args, where), sort_keys=False))
        write_text_atomic(run.folder / "command.txt", " ".join(command) + "\n")
        write_text_atomic(
            known,
            json.dumps(
                {
                    "study": study.name,
                    "condition": run.condition,
                    "seed": run.seed,
                    "cwd": os.getcwd(),
                    "command": command,
                    "inputs": inputs,
                    "spec": spec,
                },
                indent=1,
            )
            + "\n",
        )
    if refused:
        raise StudyError(
            f"{study_file} changed since these runs started; move their folders away (or name the "
            "condition anew) to run them with the new spec:\n  " + "\n  ".join(refused)
        )
    return runs


def last_checkpoint(folder: Path) -> Path | None:
    found = sorted(folder.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def execute(folder: str, env: dict[str, str] | None = None) -> int:
    """Run one study run (its run.json's command, resumed from its last.ckpt when it has one).

    The same function runs under the local executor and inside a submitit job (where every Slurm
    task of a multi-node job runs it, and train.py finds its rank in the SLURM_* variables); only
    rank 0 writes the run's markers: running.json at the start, done.json or failed.json at the end.
    """
    run_dir = Path(folder)
    spec = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    command = list(spec["command"])
    checkpoint = last_checkpoint(run_dir)
    if checkpoint is not None and command[2] == "fit":
        command.append(f"--ckpt_path={checkpoint}")
    rank = int(os.environ.get("SLURM_PROCID", "0"))
    log = run_dir / ("train.log" if rank == 0 else f"train.rank{rank}.log")
    start = time.time()
    if rank == 0:
        (run_dir / FAILED).unlink(missing_ok=True)
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"[study] {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n")
        out.flush()
        proc = subprocess.Popen(
            command, cwd=spec["cwd"], stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        if rank == 0:  # train.py's own pid: a run outliving a killed study still counts as running
            write_text_atomic(
                run_dir / RUNNING,
                json.dumps(
                    {
                        "host": socket.gethostname(),
                        "pid": proc.pid,
                        "start": start,
                        "resumed_from": str(checkpoint or ""),
                    }
                ),
            )
        code = proc.wait()
    if rank == 0:
        marker = {"exit": code, "seconds": round(time.time() - start, 1), "end": time.time()}
        write_text_atomic(run_dir / (DONE if code == 0 else FAILED), json.dumps(marker) + "\n")
    if code != 0:
        raise RuntimeError(f"{spec['condition']}/seed={spec['seed']} failed (exit {code}): see {log}")
    return code


def alive(pid: int) -> bool:
    """Whether a process of this host is still there (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def slurm_state(study: Study, job_id: str) -> str:
    """A submitted job's state from Slurm (sacct, through submitit); UNKNOWN when it cannot say."""
    try:
        import submitit

        return str(submitit.SlurmJob(folder=study.output / "submitit", job_id=job_id).state)
    except Exception:  # noqa: BLE001  (no sacct here, or it failed: the state is not known)
        return "UNKNOWN"


def state(study: Study, run: Run) -> tuple[str, dict[str, Any]]:
    """done | failed | running | queued | unknown (Slurm cannot say) | interrupted | to do, with its marker."""
    for name, marker in (("done", DONE), ("failed", FAILED)):
        found = read(run.folder / marker)
        if found is not None:
            return name, found
    running = read(run.folder / RUNNING)
    submitted = read(run.folder / SUBMITTED)
    if submitted and submitted.get("cluster") == "slurm":
        job = slurm_state(study, submitted["job_id"])
        if job == "UNKNOWN":  # Slurm cannot say: never submit a run twice (remove submitted.json to resubmit)
            return "unknown", submitted
        if job in ACTIVE_SLURM_STATES:
            return ("running" if running or job == "RUNNING" else "queued"), {**(running or {}), **submitted}
    if running:
        here = running.get("host") == socket.gethostname()
        if here and alive(int(running["pid"])):
            return "running", running
        return "interrupted", running
    return "to do", {}


def log_tail(folder: Path, lines: int = 8) -> list[str]:
    try:
        return (folder / "train.log").read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return ["(no train.log)"]


def status(study: Study) -> str:
    """The study's progress: one line per run, failed runs with their log's last lines, and an ETA."""
    runs = runs_of(study)
    states = [state(study, run) for run in runs]
    lines, counts = [], {}
    for run, (kind, info) in zip(runs, states):
        counts[kind] = counts.get(kind, 0) + 1
        detail = ""
        if kind in ("done", "failed"):
            detail = f"{duration(info['seconds'])}" + (f", exit {info['exit']}" if kind == "failed" else "")
        elif kind == "running" and "start" in info:
            detail = f"for {duration(time.time() - info['start'])} on {info.get('host')}"
        if "job_id" in info:
            detail += f" (job {info['job_id']})"
        lines.append(f"  {run.name:<32} {kind:<11} {detail}".rstrip())
        if kind in ("failed", "interrupted"):
            lines += [f"      | {line}" for line in log_tail(run.folder)]
    finished = [info["seconds"] for kind, info in states if kind == "done"]
    left = [kind for kind, _ in states if kind != "done"]
    if not left:
        eta = "all done"
    elif finished:
        mean = sum(finished) / len(finished)
        elapsed = [time.time() - info.get("start", time.time()) for kind, info in states if kind == "running"]
        seconds = sum(max(mean - e, 0.0) for e in elapsed) + mean * (len(left) - len(elapsed))
        eta = f"ETA {duration(seconds / study.executor.parallel)} ({duration(mean)} a run, {study.executor.parallel} at a time)"
    else:
        eta = "ETA: after the first run finishes"
    summary = ", ".join(f"{n} {k}" for k, n in counts.items())
    return f"study {study.name} ({study.output}): {len(runs)} runs: {summary}; {eta}\n" + "\n".join(lines)


def pending(study: Study, runs: list[Run]) -> list[Run]:
    """The runs to start now: not done and not running or queued."""
    todo = []
    for run in runs:
        kind, info = state(study, run)
        if kind in ("running", "queued", "unknown"):
            print(f"[study] {run.name}: {kind}, left alone")
        elif kind != "done":
            todo.append(run)
    return todo


def run_local(study: Study, runs: list[Run]) -> int:
    """`executor: local`: `parallel` runs at a time, each on its own GPUs (CUDA_VISIBLE_DEVICES)."""
    queue, failures, lock = list(runs), [], threading.Lock()
    per_run = study.executor.gpus_per_run

    def worker(slot: int) -> None:
        env = {}
        if study.executor.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(slot * per_run + g) for g in range(per_run))
        while True:
            with lock:
                if not queue:
                    return
                run = queue.pop(0)
            print(f"[study] {run.name}: started{' on GPU ' + env['CUDA_VISIBLE_DEVICES'] if env else ''}", flush=True)
            try:
                execute(str(run.folder), env)
                print(f"[study] {run.name}: done", flush=True)
            except RuntimeError as err:
                with lock:
                    failures.append(str(err))
                print(f"[study] {err}", flush=True)
            with lock:
                print(status(study).splitlines()[0], flush=True)

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(study.executor.parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 1 if failures else 0


def submitit_executor(study: Study) -> Any:
    """submitit's executor for the study's cluster, with its resources (its folder: <output>/submitit)."""
    import submitit

    try:
        executor = submitit.AutoExecutor(folder=study.output / "submitit", cluster=study.executor.cluster)
    except RuntimeError as err:  # no srun here
        raise StudyError(
            f"study {study.name}: executor: {err} (`cluster: local` runs the same jobs on this machine)"
        ) from None
    executor.update_parameters(**study.executor.submitit_parameters(study.name))
    return executor


def run_submitit(study: Study, runs: list[Run], wait: bool) -> int:
    """`executor: slurm`: one submitit job per run (a job array), with the study file's resources.

    `cluster: local` runs the same jobs through submitit's local executor (tests, a trial on one machine)."""
    executor = submitit_executor(study)
    with executor.batch():
        jobs = [executor.submit(execute, str(run.folder)) for run in runs]
    for run, job in zip(runs, jobs):
        write_text_atomic(
            run.folder / SUBMITTED,
            json.dumps({"job_id": str(job.job_id), "cluster": study.executor.cluster, "time": time.time()}) + "\n",
        )
        print(f"[study] {run.name}: submitted as job {job.job_id}", flush=True)
    if not (wait or study.executor.cluster == "local"):
        print("[study] follow it with: interleave study STUDY.yaml --status")
        return 0
    failed = 0
    for run, job in zip(runs, jobs):
        try:
            job.result()
        except Exception as err:  # noqa: BLE001  (submitit re-raises the job's error with its traceback)
            failed += 1
            print(f"[study] {run.name} failed: {str(err).strip().splitlines()[-1]}", flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interleave study", description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="the study file (YAML)")
    parser.add_argument("--status", action="store_true", help="print the study's progress; run nothing")
    parser.add_argument("--dry-run", action="store_true", help="write each run's command and config; run nothing")
    parser.add_argument("--wait", action="store_true", help="slurm: wait for the submitted jobs to finish")
    args = parser.parse_args(argv)

    def body() -> int:
        study = load_study(args.study)
        if args.status:
            print(status(study))
            return 0
        runs = prepare(study, args.study)
        if args.dry_run:
            for run in runs:
                print(f"{run.name}: {(run.folder / 'command.txt').read_text(encoding='utf-8').strip()}")
            return 0
        todo = pending(study, runs)
        print(f"[study] {study.name}: {len(runs)} runs, {len(runs) - len(todo)} done or under way, {len(todo)} to run")
        code = 0
        if todo:
            code = run_local(study, todo) if study.executor.kind == "local" else run_submitit(study, todo, args.wait)
        print(status(study))
        return code

    return report_errors(
        body,
        what="interleave study",
        kept="finished runs are kept; the same command skips them and resumes the others from their last.ckpt",
    )


if __name__ == "__main__":
    sys.exit(main())
