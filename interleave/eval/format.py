"""The SHARD file: one query per line of JSONL, read and written with every fault named.

    {"id": "synonym/siren/2/alarm", "task": "synonym", "label": "Siren", "word": "siren",
     "candidate": "alarm", "truth": "yes", "audio": "audio/siren_2.wav"}

``task`` is ``synonym``, ``hypernym``, ``identity`` or ``pair``; identity queries have no ``candidate`` and
no ``truth`` (the answer is ``label``); ``word`` is the plain-text word that replaces the audio
in the text-only control; ``audio`` is relative to the file's folder when the clip lies under it,
else absolute. A ``pair`` query ("Is [AUDIO] the same kind of sound as [AUDIO]?") has a second
clip, ``other_audio``, whose word is ``candidate`` (``word`` itself for a "yes" pair):

    {"id": "pair/yes/0/siren/siren", "task": "pair", "label": "Siren", "word": "siren",
     "candidate": "siren", "truth": "yes", "audio": "audio/siren_2.wav", "other_audio": "audio/siren_0.wav"}
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError
from interleave.eval.query import Query
from interleave.eval.tasks import LABEL, TASKS, VERDICT
from interleave.files import write_text_atomic

RELATIONS = ("synonym", "hypernym")  # the builder's WordNet relations, one yes/no task each
ANSWERS = ("yes", "no")

# --- the SHARD file ---------------------------------------------------------------------


_QUERY_KEYS = ("id", "task", "label", "word", "candidate", "truth", "audio", "other_audio")


def _query_from_json(line: str, where: str, folder: Path) -> Query:
    """Validate one line of a SHARD file; raises ValueError naming every fault of the line."""
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    faults = [f"unknown field {key!r}" for key in obj if key not in _QUERY_KEYS]
    for key in ("id", "task", "label", "word", "audio"):
        value = obj.get(key)
        if value is None:
            faults.append(f"missing field {key!r}")
        elif not isinstance(value, str) or not value.strip():
            faults.append(f"field {key!r} must be a non-empty string")
    task = obj.get("task")
    if isinstance(task, str) and task not in TASKS:
        faults.append(f"task {task!r} is none of {', '.join(TASKS)}")
    scoring = TASKS[task].scoring if isinstance(task, str) and task in TASKS else None
    two = scoring is not None and TASKS[task].clips == 2
    if scoring == LABEL:
        faults += [f"an {task} query has no {key!r}" for key in ("candidate", "truth") if key in obj]
    elif scoring == VERDICT:
        candidate, truth = obj.get("candidate"), obj.get("truth")
        if not isinstance(candidate, str) or not candidate.strip():
            faults.append(
                "missing field 'candidate'" if candidate is None else "field 'candidate' must be a non-empty string"
            )
        if truth is None:
            faults.append("missing field 'truth'")
        elif truth not in ANSWERS:
            faults.append(f"truth {truth!r} is neither 'yes' nor 'no'")
    other = obj.get("other_audio")
    if two and (not isinstance(other, str) or not other.strip()):
        faults.append(f"a {task} query needs 'other_audio', a non-empty string")
    elif not two and other is not None:
        faults.append(f"a {task} query has no 'other_audio'")
    if faults:
        raise ValueError("; ".join(faults))

    def absolute(audio: str) -> str:
        return audio if os.path.isabs(audio) else os.path.normpath(os.path.join(folder, audio))

    return Query(
        obj["id"],
        task,
        obj["label"],
        obj["word"],
        absolute(obj["audio"]),
        obj.get("candidate"),
        obj.get("truth"),
        where,
        absolute(other) if two else None,
    )


def read_shard(path: str | Path) -> list[Query]:
    """Read and validate a SHARD file; ``audio`` comes back absolute (resolved against the file's folder).

    Raises InterleaveError listing every malformed line, missing or bad field and duplicate id
    with file:line; nothing is dropped silently. Blank lines are allowed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InterleaveError(f"cannot read SHARD file {path}: {err}") from err
    folder = path.parent.absolute()
    queries: list[Query] = []
    first_line: dict[str, int] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            query = _query_from_json(line, where, folder)
        except ValueError as err:
            problems.append(f"{where}: {err}")
            continue
        if query.id in first_line:
            problems.append(f"{where}: duplicate id {query.id!r} (first on line {first_line[query.id]})")
            continue
        first_line[query.id] = number
        queries.append(query)
    if not queries and not problems:
        problems.append(f"{path}: holds no queries")
    if problems:
        raise InterleaveError(f"{len(problems)} problem(s) in SHARD file {path}:\n  " + "\n  ".join(problems))
    return queries


def _stored_path(audio: str, folder: Path) -> str:
    path = Path(audio)
    if path.is_absolute() and path.is_relative_to(folder):
        path = path.relative_to(folder)
    return path.as_posix()


def _query_to_json(query: Query, folder: Path) -> str:
    obj = {"id": query.id, "task": query.task, "label": query.label, "word": query.word}
    if TASKS[query.task].scoring == VERDICT:
        obj["candidate"], obj["truth"] = query.candidate, query.truth
    obj["audio"] = _stored_path(query.audio, folder)
    if query.other_audio is not None:
        obj["other_audio"] = _stored_path(query.other_audio, folder)
    return json.dumps(obj, ensure_ascii=False)


def write_shard(queries: Sequence[Query], path: str | Path) -> Path:
    """Write ``queries`` as a SHARD file atomically; audio under the file's folder is stored relative."""
    path = Path(path)
    ids = [q.id for q in queries]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise InterleaveError(f"cannot write {path}: duplicate query ids {dupes[:5]}")
    folder = Path(os.path.abspath(path.parent))
    write_text_atomic(path, "".join(_query_to_json(q, folder) + "\n" for q in queries))
    return path


def shard_counts(queries: Sequence[Query]) -> dict[str, Any]:
    """Query counts per task and truth, the numbers a SHARD report states."""
    counts: dict[str, Any] = {
        "queries": len(queries),
        "words": len({q.label for q in queries}),
        "clips": len({clip for q in queries for clip in q.clips}),
        "identity": sum(q.task == "identity" for q in queries),
    }
    for name, task in TASKS.items():  # the builder's relations always, any other yes/no task where asked
        if task.scoring == VERDICT and (name in RELATIONS or any(q.task == name for q in queries)):
            counts[name] = {a: sum(q.task == name and q.truth == a for q in queries) for a in ANSWERS}
    return counts
