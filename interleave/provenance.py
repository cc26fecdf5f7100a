"""What makes two runs' figures comparable, recorded in every metrics file.

`provenance(...)` gives the keys the evaluation writes beside its metrics
(`predictions/epoch=NN.metrics.json`): `code_version` (the git commit of this package's checkout,
else the installed version), `config_hash` (the run's resolved hyper-parameters), `shard_hash`
(the SHARD file's bytes), `parser` (the answer parser's rules) and `tokenization` (the name of
the tokenization rule, `TOKENIZATION`); and `shard_subset` where the evaluation asked only part of
the SHARD (`ShardEvaluation`'s `max_queries_per_task`: the cap, its seed and the selection rule),
absent where it asked every query. `interleave report` refuses to compare runs whose `shard_hash`
differs, or whose `shard_subset` differs (a file without one asked every query: the cap did not
exist before it), and flags any other difference.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

# The tokenization rule of `interleave.data.collate` (ARCHITECTURE.md, "Tokenization"): the tokens of
# prompt + answer as one string, EOS after, labels from len(tokenize(prompt)). Bump the version
# when the rule changes, so that the report can tell runs tokenized differently apart.
TOKENIZATION = "whole-string-v1"
UNKNOWN = "unknown"
KEYS = ("code_version", "config_hash", "shard_hash", "parser", "tokenization")
SUBSET = "shard_subset"  # recorded only for a capped evaluation
EVERY_QUERY = "every query"  # a run without `shard_subset`
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


@lru_cache(maxsize=1)
def code_version(timeout: float = 5.0) -> str:
    """The git commit (`git rev-parse HEAD`) of the checkout this package lies in, else the
    installed package's version, else "unknown"."""
    folder = Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=timeout, check=False
        )
        commit = done.stdout.strip()
        if done.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit):
            return commit
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return metadata.version("interleave")
    except metadata.PackageNotFoundError:
        return UNKNOWN


def _canonical(value: Any) -> Any:
    """A JSON-able, deterministic form of a hyper-parameter value (no memory addresses)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__, **_canonical(dataclasses.asdict(value))}
    if isinstance(value, Path):
        return value.as_posix()
    return _ADDRESS.sub("", repr(value))


def config_hash(*hparams: dict[str, Any] | None) -> str:
    """sha256 of the hyper-parameters (e.g. the model's and the data module's `hparams`), in a
    canonical JSON form: the same settings give the same hash in any order and any process."""
    canonical = [_canonical(dict(h)) if h is not None else None for h in hparams]
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_hash(path: str | Path) -> str:
    """sha256 of a file's bytes (the SHARD file's, for `shard_hash`)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(
    shard_file: str | Path, parser: str, *hparams: dict[str, Any] | None, subset: str | None = None
) -> dict[str, str]:
    """The provenance keys of one metrics file (see the module docstring); `subset`, the evaluation's
    `EvalSettings.subset` (None: every query asked, and no `shard_subset` key)."""
    found = {
        "code_version": code_version(),
        "config_hash": config_hash(*hparams),
        "shard_hash": file_hash(shard_file),
        "parser": parser,
        "tokenization": TOKENIZATION,
    }
    return found if subset is None else {**found, SUBSET: subset}


def recorded(metrics: dict[str, Any]) -> dict[str, str]:
    """The provenance keys a metrics file records, "unknown" for those it does not (older runs),
    and its `shard_subset` where it has one."""
    found = {key: str(metrics.get(key) or UNKNOWN) for key in KEYS}
    return found if not metrics.get(SUBSET) else {**found, SUBSET: str(metrics[SUBSET])}


def check_comparable(runs: dict[str, dict[str, str]]) -> list[str]:
    """Refuse (InterleaveError) runs whose known `shard_hash` differs, or whose `shard_subset`
    differs (one without it asked every query); return one note per other key (code version,
    tokenization, parser) on which runs with known values differ. `runs` maps each run's name to
    its `recorded` keys; unknown values never refuse nor flag."""
    from interleave.errors import InterleaveError

    shards = {run: keys["shard_hash"] for run, keys in runs.items() if keys.get("shard_hash", UNKNOWN) != UNKNOWN}
    first = next(iter(shards.items()), None)
    for run, digest in shards.items():
        if first is not None and digest != first[1]:
            raise InterleaveError(
                f"runs {first[0]} and {run} were evaluated on different SHARD files (shard_hash {first[1]} vs {digest}); "
                "their figures cannot be put side by side"
            )
    subsets = {run: keys.get(SUBSET) or EVERY_QUERY for run, keys in runs.items()}
    first_subset = next(iter(subsets.items()), None)
    for run, subset in subsets.items():
        if first_subset is not None and subset != first_subset[1]:
            raise InterleaveError(
                f"runs {first_subset[0]} and {run} were evaluated on different parts of the SHARD ({first_subset[0]}: "
                f"{first_subset[1]}; {run}: {subset}; ShardEvaluation's max_queries_per_task); their figures cannot "
                "be put side by side"
            )
    notes = []
    for key in ("code_version", "tokenization", "parser"):
        values = {run: keys.get(key, UNKNOWN) for run, keys in runs.items()}
        if len({v for v in values.values() if v != UNKNOWN}) > 1:
            listed = "; ".join(f"{run}: {value}" for run, value in values.items())
            notes.append(f"the runs differ in {key} ({listed}): their figures may not be comparable")
    return notes
