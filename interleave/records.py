"""Instruction records: the JSONL training contract and the LTU/OpenAQA adapter.

A record is one line of JSONL with `id`, `audio`, `instruction`, optional `input`, `output`,
optional `task` and `dataset`. LTU's OpenAQA JSON (a list of objects with `audio_id`) is read
through `from_openaqa`, not renamed by hand. Every problem is reported with file:line (or
file[index] for a JSON array), never dropped silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Record:
    id: str
    audio: str
    instruction: str
    output: str = ""
    input: str = ""
    task: str = ""
    dataset: str = ""
    where: str = ""  # "file:line" the record came from, for messages
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def describe(self) -> str:
        """Where the record came from and its id, as error messages name it."""
        return f"{self.where} (id={self.id})" if self.where else f"id={self.id}"


@dataclass(frozen=True)
class Problem:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


_KNOWN = {"id", "audio", "instruction", "input", "output", "task", "dataset"}


def _require_str(obj: dict, key: str, required: bool) -> str:
    value = obj.get(key, None)
    if value is None:
        if required:
            raise ValueError(f"missing field '{key}'")
        return ""
    if not isinstance(value, str):
        raise ValueError(f"field '{key}' must be a string, got {type(value).__name__}")
    if required and not value.strip() and key != "output":
        raise ValueError(f"field '{key}' is empty")
    return value


def from_dict(obj: Any, where: str, require_output: bool = True) -> Record:
    """Build a Record from one JSON object of the training contract or of OpenAQA (`audio_id`)."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    if "audio" not in obj and "audio_id" in obj:
        return from_openaqa(obj, where, require_output)
    return _record(obj, _require_str(obj, "id", True), _require_str(obj, "audio", True), where, require_output, _KNOWN)


def from_openaqa(obj: dict, where: str, require_output: bool = True) -> Record:
    """Adapter for LTU's OpenAQA objects: `audio_id` is the audio path; the id is derived if absent."""
    audio = _require_str(obj, "audio_id", True)
    record_id = obj.get("id")
    record_id = str(record_id) if record_id not in (None, "") else where
    return _record(obj, record_id, audio, where, require_output, _KNOWN | {"audio_id"})


def _record(obj: dict, record_id: str, audio: str, where: str, require_output: bool, known: set[str]) -> Record:
    return Record(
        id=record_id,
        audio=audio,
        instruction=_require_str(obj, "instruction", True),
        output=_require_str(obj, "output", require_output),
        input=_require_str(obj, "input", False),
        task=_require_str(obj, "task", False),
        dataset=_require_str(obj, "dataset", False),
        where=where,
        extra={k: v for k, v in obj.items() if k not in known},
    )


def read_records(path: str | Path, require_output: bool = True) -> tuple[list[Record], list[Problem]]:
    """Read every record of a JSONL file (or an OpenAQA JSON array) and every problem found.

    Problems: unreadable file, malformed JSON, missing or mistyped fields, duplicate ids.
    """
    path = Path(path)
    records: list[Record] = []
    problems: list[Problem] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return [], [Problem(str(path), f"cannot read file: {err}")]

    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            return [], [Problem(f"{path}:{err.lineno}", f"malformed JSON: {err.msg}")]
        entries = [(f"{path}[{i}]", item, None) for i, item in enumerate(items)]
    else:
        entries = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                entries.append((where, json.loads(line), None))
            except json.JSONDecodeError as err:
                entries.append((where, None, f"malformed JSON: {err.msg} (column {err.colno})"))

    seen: dict[str, str] = {}
    for where, obj, error in entries:
        if error is not None:
            problems.append(Problem(where, error))
            continue
        try:
            record = from_dict(obj, where, require_output)
        except ValueError as err:
            problems.append(Problem(where, str(err)))
            continue
        if record.id in seen:
            problems.append(Problem(where, f"duplicate id '{record.id}' (first at {seen[record.id]})"))
            continue
        seen[record.id] = where
        records.append(record)
    return records, problems


def resolve_audio(record: Record, audio_root: str | Path | None) -> Path:
    """The record's audio path: absolute as given, else relative to `audio_root`."""
    path = Path(record.audio).expanduser()
    if path.is_absolute() or audio_root is None:
        return path
    return Path(audio_root) / path
