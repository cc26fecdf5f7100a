"""Instruction records: the JSONL training contract and the LTU/OpenAQA adapter.

A record is one line of JSONL with `id`, `audio`, `instruction`, optional `input`, `output`,
optional `task` and `dataset`. `audio` is one path, or a list of paths whose clips fill the
prompt's `[AUDIO]` placeholders in order (`interleave.data.prompts.clip_count_problem` says which
combinations are good). LTU's OpenAQA JSON (a list of objects with `audio_id`) is read
through `from_openaqa`, not renamed by hand. Every problem is reported with file:line (or
file[index] for a JSON array), never dropped silently.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Record:
    id: str
    audio: str | tuple[str, ...]  # one path, or the clips of the prompt's placeholders in order
    instruction: str
    output: str = ""
    input: str = ""
    task: str = ""
    dataset: str = ""
    where: str = ""  # "file:line" the record came from, for messages
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def clips(self) -> tuple[str, ...]:
        """The record's audio paths in placeholder order (one for a plain `audio` string)."""
        return (self.audio,) if isinstance(self.audio, str) else tuple(self.audio)

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
    return _record(obj, _require_str(obj, "id", True), require_audio(obj, "audio"), where, require_output, _KNOWN)


def require_audio(obj: dict, key: str) -> str | tuple[str, ...]:
    """An audio field: one non-empty path, or a list of them (kept as a tuple; an empty list is
    kept too, and the clip/placeholder check names it with both counts)."""
    value = obj.get(key, None)
    if not isinstance(value, list):
        return _require_str(obj, key, True)
    for i, path in enumerate(value):
        if not isinstance(path, str) or not path.strip():
            raise ValueError(f"field '{key}' item {i} must be a non-empty path string, got {path!r}")
    return tuple(value)


def from_openaqa(obj: dict, where: str, require_output: bool = True) -> Record:
    """Adapter for LTU's OpenAQA objects: `audio_id` is the audio path (or a list of them, one per
    `[AUDIO]`); the id is derived if absent."""
    audio = require_audio(obj, "audio_id")
    record_id = obj.get("id")
    record_id = str(record_id) if record_id not in (None, "") else where
    return _record(obj, record_id, audio, where, require_output, _KNOWN | {"audio_id"})


def _record(
    obj: dict, record_id: str, audio: str | tuple[str, ...], where: str, require_output: bool, known: set[str]
) -> Record:
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


BOM = b"\xef\xbb\xbf"  # spreadsheet tools start UTF-8 files with it
EMPTY_FILE = "the file holds no records"
READ_BYTES = 16 << 20


def parse_line(raw: bytes, where: str, require_output: bool = True) -> Record | None:
    """One JSONL line (bytes, without its newline) as a Record; None for a blank line; ValueError
    with the reason for a bad one (not UTF-8, malformed JSON, missing or mistyped fields)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"not UTF-8: byte 0x{raw[err.start]:02x} at byte {err.start + 1} of the line") from None
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"malformed JSON: {err.msg} (column {err.colno})") from None
    return from_dict(obj, where, require_output)


def jsonl_lines(file: Path, start: int, end: int) -> Iterator[tuple[int, int, bytes]]:
    """(line number counted from `start`, byte offset, bytes without the newline) of every line
    of the bytes [start, end) of `file`, which begin a line and end one (or the file)."""
    offset, lineno, pending = start, 0, b""
    with open(file, "rb") as handle:
        handle.seek(start)
        while True:
            chunk = handle.read(min(READ_BYTES, end - handle.tell()))
            data = pending + chunk
            if chunk:
                cut = data.rfind(b"\n")
                lines, pending = (data[:cut].split(b"\n"), data[cut + 1 :]) if cut >= 0 else ([], data)
            else:
                lines, pending = ([data] if data else []), b""
            for raw in lines:
                lineno += 1
                at = offset
                offset += len(raw) + 1
                if at == 0 and raw.startswith(BOM):
                    raw, at = raw[len(BOM) :], len(BOM)
                yield lineno, at, raw.removesuffix(b"\r")
            if not chunk:
                return


def line_ranges(file: Path, processes: int) -> list[tuple[int, int]]:
    """`file` cut into about `processes` byte ranges, each made of whole lines."""
    size = file.stat().st_size
    cuts = [0]
    with open(file, "rb") as handle:
        for k in range(1, processes):
            handle.seek(max(k * size // processes, cuts[-1]))
            handle.readline()  # to the start of the next line
            if cuts[-1] < handle.tell() < size:
                cuts.append(handle.tell())
    return list(zip(cuts, cuts[1:] + [size]))


NOT_FOUND = "not found"
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def not_a_file(path: str | Path) -> str | None:
    """Why `path` is no regular file to read records or audio from, or None if it is one:
    `NOT_FOUND`, "is a directory", "is a character device", "is a FIFO (named pipe)", ... Looked at
    with stat only, never opened (opening a FIFO waits for a writer; a device may never end)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return NOT_FOUND
    except OSError as err:
        return f"cannot be looked at ({os.strerror(err.errno) if err.errno else err})"
    except ValueError:  # a NUL byte in the path
        return "is no valid path (it holds a NUL byte)"
    if stat.S_ISREG(mode):
        return None
    return next((f"is {kind}" for test, kind in _KINDS if test(mode)), "is not a regular file")


def is_json_array(path: Path, head: bytes) -> bool:
    """Whether a record file is an OpenAQA-style JSON array rather than JSONL."""
    return path.suffix == ".json" and head.removeprefix(BOM).lstrip().startswith(b"[")


def read_records(path: str | Path, require_output: bool = True) -> tuple[list[Record], list[Problem]]:
    """Read every record of a JSONL file (or an OpenAQA JSON array) and every problem found.

    Problems: unreadable file, an empty file, bytes that are not UTF-8 (that line only), malformed
    JSON, missing or mistyped fields, duplicate ids. A leading UTF-8 byte-order mark is ignored.
    """
    path = Path(path)
    records: list[Record] = []
    problems: list[Problem] = []
    try:
        data = path.read_bytes()
    except OSError as err:
        return [], [Problem(str(path), f"cannot read file: {err}")]
    data = data.removeprefix(BOM)

    if is_json_array(path, data):
        try:
            items = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as err:
            line = data[: err.start].count(b"\n") + 1
            return [], [Problem(f"{path}:{line}", f"not UTF-8: byte 0x{data[err.start]:02x}")]
        except json.JSONDecodeError as err:
            return [], [Problem(f"{path}:{err.lineno}", f"malformed JSON: {err.msg}")]
        entries = []
        for i, item in enumerate(items):
            where = f"{path}[{i}]"
            try:
                entries.append((where, from_dict(item, where, require_output), None))
            except ValueError as err:
                entries.append((where, None, str(err)))
    else:
        entries = []
        for lineno, _, raw in jsonl_lines(path, 0, path.stat().st_size):
            where = f"{path}:{lineno}"
            try:
                record = parse_line(raw, where, require_output)
            except ValueError as err:
                entries.append((where, None, str(err)))
                continue
            if record is not None:
                entries.append((where, record, None))
    if not entries:
        return [], [Problem(str(path), EMPTY_FILE)]

    seen: dict[str, str] = {}
    for where, record, error in entries:
        if error is not None:
            problems.append(Problem(where, error))
            continue
        if record.id in seen:
            problems.append(Problem(where, duplicate_reason(record.id, seen[record.id])))
            continue
        seen[record.id] = where
        records.append(record)
    return records, problems


def duplicate_reason(record_id: str, first: str) -> str:
    return f"duplicate id '{record_id}' (first at {first})"


def resolve_clips(record: Record, audio_root: str | Path | None) -> list[Path]:
    """Every audio path of the record, in placeholder order (`resolve_audio_path` each)."""
    return [resolve_audio_path(audio, audio_root) for audio in record.clips]


def resolve_audio_path(audio: str, audio_root: str | Path | None) -> Path:
    """An audio field's path: absolute as given, else relative to `audio_root`."""
    path = Path(audio).expanduser()
    if path.is_absolute() or audio_root is None:
        return path
    return Path(audio_root) / path
