"""The study file of `interleave study`: read, checked key by key, as small dataclasses.

```yaml
name: paper                        # default: the file's name without .yaml
config: [configs/paper/base.yaml]  # the base config(s), as train.py's --config (paths from the working folder)
overrides: [--paths.llm=/models/vicuna-7b]   # optional, for every condition
conditions:
  ft_small:
    command: fit                   # fit (default) or validate
    config: configs/paper/ft_small.yaml      # optional, after the base
    overrides: {model.learning_rate: 2.0e-5} # or a list of --key=value
seeds: [0, 1, 2]
seed_keys: [seed_everything, data.seed]   # default: what a seed sets (initialisation, dropout, sampling; data order)
output: runs/paper                 # default runs/<name>
executor: {kind: local, gpus: 2}   # or {kind: slurm, nodes: 1, gpus_per_node: 2, time: "24:00:00", partition: gpu, slurm: {account: abc}}
```
Every fault is a `StudyError` naming the file and the key; a key given twice (two conditions of one
name: YAML would keep the last alone) or malformed YAML names the file, line and column
(`interleave.config_paths.yaml_fault`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from interleave.config_paths import yaml_fault
from interleave.errors import InterleaveError

SEED_KEYS = ("seed_everything", "data.seed")  # a replicate differs in everything random: weights and data order
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
SUBCOMMANDS = ("fit", "validate")


class StudyError(InterleaveError):
    """A study file that cannot run as written, or runs it may not change; names the file and key."""


@dataclass(frozen=True)
class Condition:
    name: str
    subcommand: str
    configs: list[str]
    overrides: list[str]


@dataclass(frozen=True)
class Executor:
    """Where the runs go: `local` (`parallel` at a time, `gpus_per_run` GPUs each) or `slurm` (submitit)."""

    kind: str = "local"
    gpus: int = 0
    gpus_per_run: int = 1
    parallel: int = 1
    nodes: int = 1
    gpus_per_node: int = 0
    minutes: int = 60
    partition: str | None = None
    cpus_per_task: int | None = None
    mem_gb: int | None = None
    slurm: dict[str, Any] = field(default_factory=dict)
    cluster: str = "slurm"

    def train_overrides(self) -> list[str]:
        """Slurm: train.py's Trainer spans the job's nodes and GPUs (Lightning reads the SLURM_* variables)."""
        if self.kind != "slurm":
            return []
        devices = [f"--trainer.devices={self.gpus_per_node}"] if self.gpus_per_node else []
        return [f"--trainer.num_nodes={self.nodes}", *devices]

    def submitit_parameters(self, name: str) -> dict[str, Any]:
        """submitit's parameters: one task per GPU on each node (Lightning's multi-node DDP under srun)."""
        params: dict[str, Any] = {
            "name": name,
            "nodes": self.nodes,
            "tasks_per_node": max(self.gpus_per_node, 1),
            "timeout_min": self.minutes,
        }
        if self.gpus_per_node:
            params["gpus_per_node"] = self.gpus_per_node
        for key in ("cpus_per_task", "mem_gb"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.slurm:
            params["slurm_additional_parameters"] = dict(self.slurm)
        return params


@dataclass(frozen=True)
class Study:
    name: str
    configs: list[str]
    overrides: list[str]
    conditions: list[Condition]
    seeds: list[int]
    output: Path
    executor: Executor
    seed_keys: tuple[str, ...] = SEED_KEYS  # the config keys each run's seed is given to

    def condition(self, name: str) -> Condition:
        return next(c for c in self.conditions if c.name == name)


def minutes(value: Any, where: str) -> int:
    """A time limit: minutes (an int) or Slurm's "[D-]HH:MM[:SS]"."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    found = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d\d)(?::(\d\d))?", str(value))
    if not found:
        raise StudyError(f'{where}: expected minutes or "[D-]HH:MM[:SS]", got {value!r}')
    days, hours, mins, secs = (int(g or 0) for g in found.groups())
    return max(1, days * 1440 + hours * 60 + mins + (1 if secs else 0))


def integer(value: Any, where: str, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise StudyError(f"{where}: expected an integer >= {least}, got {value!r}")
    return value


def keys(block: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(block) - set(allowed))
    if unknown:
        raise StudyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(allowed)})")


def configs(value: Any, where: str) -> list[str]:
    found = [value] if isinstance(value, str) else value
    if found is None:
        return []
    if not isinstance(found, list) or not all(isinstance(v, str) and v for v in found):
        raise StudyError(f"{where}: expected a config path or a list of them, got {value!r}")
    for path in found:
        if not Path(path).is_file():
            raise StudyError(f"{where}: no config file {path} (paths are relative to the working folder)")
    return list(found)


def overrides(value: Any, where: str) -> list[str]:
    """`--key=value` strings, or a mapping {key: value} (values other than strings written as JSON)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"--{str(k).removeprefix('--')}={v if isinstance(v, str) else json.dumps(v)}" for k, v in value.items()]
    if not isinstance(value, list):
        raise StudyError(f"{where}: expected a list of --key=value or a mapping, got {value!r}")
    for item in value:
        if not (isinstance(item, str) and item.startswith("--") and "=" in item):
            raise StudyError(f"{where}: expected --key=value, got {item!r}")
    return list(value)


def executor(value: Any, where: str) -> Executor:
    block = {"kind": value} if isinstance(value, str) else value
    if not isinstance(block, dict) or block.get("kind") not in ("local", "slurm"):
        raise StudyError(f"{where}: expected `local`, `slurm` or a mapping with kind: local|slurm, got {value!r}")
    if block["kind"] == "local":
        keys(block, ("kind", "gpus", "gpus_per_run", "parallel"), where)
        gpus = integer(block.get("gpus", 0), f"{where}.gpus", 0)
        per_run = integer(block.get("gpus_per_run", 1), f"{where}.gpus_per_run", 1)
        if gpus and gpus % per_run:
            raise StudyError(f"{where}.gpus_per_run: {per_run} does not divide gpus: {gpus}")
        parallel = integer(block.get("parallel", gpus // per_run if gpus else 1), f"{where}.parallel", 1)
        if gpus and parallel > gpus // per_run:
            raise StudyError(
                f"{where}.parallel: {parallel} runs at a time need {parallel * per_run} GPUs; gpus is {gpus}"
            )
        return Executor("local", gpus=gpus, gpus_per_run=per_run, parallel=parallel)
    keys(
        block,
        ("kind", "nodes", "gpus_per_node", "time", "partition", "cpus_per_task", "mem_gb", "slurm", "cluster"),
        where,
    )
    extra = block.get("slurm") or {}
    if not isinstance(extra, dict):
        raise StudyError(f"{where}.slurm: expected a mapping of extra sbatch parameters, got {extra!r}")
    cluster = block.get("cluster", "slurm")
    if cluster not in ("slurm", "local"):
        raise StudyError(f"{where}.cluster: expected slurm or local (submitit's local executor), got {cluster!r}")
    optional = {k: integer(block[k], f"{where}.{k}", 1) for k in ("cpus_per_task", "mem_gb") if k in block}
    partition = block.get("partition")
    if partition is not None and not isinstance(partition, str):
        raise StudyError(f"{where}.partition: expected a name, got {partition!r}")
    nodes = integer(block.get("nodes", 1), f"{where}.nodes", 1)
    return Executor(
        "slurm",
        nodes=nodes,
        gpus_per_node=integer(block.get("gpus_per_node", 0), f"{where}.gpus_per_node", 0),
        minutes=minutes(block.get("time", 60), f"{where}.time"),
        partition=partition,
        slurm=dict(extra),
        cluster=cluster,
        parallel=1,
        **optional,
    )


def load_study(path: Path) -> Study:
    """Read and check a study file; every fault names the file and the key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise StudyError(f"{path}: cannot read the study file ({err.strerror})") from None
    fault = yaml_fault(text, str(path))  # malformed, or a key given twice (a condition that would vanish)
    if fault:
        raise StudyError(fault)
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise StudyError(f"{path}: expected a mapping with conditions, seeds and executor")
    keys(data, ("name", "config", "overrides", "conditions", "seeds", "seed_keys", "output", "executor"), str(path))
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not NAME.match(name):
        raise StudyError(f"{path}: name: expected letters, digits, _ . + - (a folder name), got {name!r}")
    base = configs(data.get("config"), f"{path}: config")
    common = overrides(data.get("overrides"), f"{path}: overrides")
    block = data.get("conditions")
    if not isinstance(block, dict) or not block:
        raise StudyError(f"{path}: conditions: expected a mapping of condition names to their settings")
    conditions = []
    for cname, settings in block.items():
        where = f"{path}: conditions.{cname}"
        if not isinstance(cname, str) or not NAME.match(cname):
            raise StudyError(f"{where}: a condition's name is a folder name (letters, digits, _ . + -)")
        settings = settings or {}
        if not isinstance(settings, dict):
            raise StudyError(f"{where}: expected a mapping (command, config, overrides), got {settings!r}")
        keys(settings, ("command", "config", "overrides"), where)
        subcommand = settings.get("command", "fit")
        if subcommand not in SUBCOMMANDS:
            raise StudyError(f"{where}.command: expected fit or validate, got {subcommand!r}")
        own = configs(settings.get("config"), f"{where}.config")
        if not base and not own:
            raise StudyError(f"{where}: no config: give the study a base `config:` or the condition its own")
        conditions.append(Condition(cname, subcommand, own, overrides(settings.get("overrides"), f"{where}.overrides")))
    seeds = data.get("seeds")
    if (
        not isinstance(seeds, list)
        or not seeds
        or len(set(map(repr, seeds))) != len(seeds)
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
    ):
        raise StudyError(f"{path}: seeds: expected a list of distinct integers >= 0, got {seeds!r}")
    seed_keys = data.get("seed_keys", list(SEED_KEYS))
    if (
        not isinstance(seed_keys, list)
        or not seed_keys
        or not all(isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", k) for k in seed_keys)
    ):
        raise StudyError(
            f"{path}: seed_keys: expected a list of config keys (seed_everything, data.seed, ...), got {seed_keys!r}"
        )
    output = data.get("output", f"runs/{name}")
    if not isinstance(output, str) or not output:
        raise StudyError(f"{path}: output: expected a folder, got {output!r}")
    return Study(
        name,
        base,
        common,
        conditions,
        seeds,
        Path(output),
        executor(data.get("executor", "local"), f"{path}: executor"),
        tuple(seed_keys),
    )
