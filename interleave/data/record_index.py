"""The record index: a JSONL record file's line offsets, token lengths and check results, built
once (by one forked process per core, each a part of the file: `interleave.data.index_build`) and
memory-mapped by every later run and every process, so a million records set up in seconds and cost a few bytes each.

One index per record file and per setting that changes lengths or checks (the tokenizer, its
special ids, the template, `max_length`, the audio span's length, and the rules themselves:
`rules_hash`, the source of the code that reads, checks and measures records): its name holds
a key of those settings, and its header the file's size, modification time and BLAKE2b hash; any
difference rebuilds it. Its header also holds its own length and a BLAKE2b checksum of all its
other bytes, checked on every open: a damaged index is logged by name with what was wrong and
rebuilt, never used. It lies beside the record file (`train.jsonl.<key>.index`) or in
`index_dir`. Records are read lazily, by byte offset, when a dataset asks for one. The checks
are `interleave.data.token_count.measure_records`' (the one rule, also `interleave.data.checks.check_records`'):
what depends on the text (fields, duplicate ids, the placeholder count, a prompt too long) is
stored; the audio files are looked at on every open (`audio_problem`), once per distinct clip.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from interleave.data.collate import Collator
from interleave.data.index_build import (
    COLUMNS,
    MAGIC,
    PREFIX,
    aligned,
    build,
    file_fingerprint,
    index_path,
    settings,
)
from interleave.data.records import (
    EMPTY_FILE,
    NOT_FOUND,
    Problem,
    Record,
    duplicate_reason,
    not_a_file,
    parse_line,
    resolve_audio_path,
)
from interleave.data.token_count import BAD, OK, SPLIT
from interleave.errors import AudioError, InterleaveError


@contextmanager
def _exclusive(file: Path) -> Iterator[None]:
    """Only one process (of this machine, or of all where the file system passes locks on) at a
    time builds an index of `file`: the others wait here, then find it built."""
    fd = os.open(file, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Unusable(Exception):
    """Why an index file cannot be used as it is (no reason: there is none yet); it is rebuilt."""


def _reused(target: Path, file: Path, expected: dict[str, Any]) -> tuple[RecordIndex | None, str | None]:
    try:
        return RecordIndex.load(target, file, expected), None
    except Unusable as why:
        return None, (why.args or [None])[0]


def open_index(
    file: str | Path, collator: Collator, index_dir: str | Path | None = None, log: Any = None
) -> RecordIndex:
    """The index of `file` for `collator`'s settings: reused if it is whole (its length and
    checksum) and matches the file and the settings, else built (by one process at a time) and
    written atomically; `log` gets a line saying which, and why an index found was not used."""
    file = Path(file)
    expected = settings(collator)  # hashes the tokenizer's whole definition: computed once
    target = index_path(file, collator, index_dir, expected)
    index, _ = _reused(target, file, expected)
    if index is not None:
        if log:
            log(f"[interleave] {file}: record index {target} reused ({index.rows} records)")
        return index
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(target.parent, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        raise InterleaveError(
            f"cannot write the record index of {file} in {target.parent}; set data.index_dir to a writable folder"
        )
    with _exclusive(file):
        index, reason = _reused(target, file, expected)  # another process may have built it meanwhile
        if index is None:
            if log and reason:
                log(f"[interleave] {file}: record index {target} {reason}; rebuilding it")
            started = time.perf_counter()
            build(file, collator, target, described=expected)
            index = RecordIndex.load(target, file, expected, check_content=False)
            if log:
                log(
                    f"[interleave] {file}: record index built in {time.perf_counter() - started:.1f} s "
                    f"({index.rows} records) -> {target}"
                )
    return index


class RecordIndex:
    """One record file's index, memory-mapped: columns of `rows` entries (one per parsed record,
    in file order) and the problems found while reading."""

    def __init__(self, path: Path, file: Path, header: dict[str, Any], start: int) -> None:
        self.path, self.file, self.header, self.start = path, file, header, start
        self.rows: int = header["rows"]
        self._map()

    def _map(self) -> None:
        buffer = np.memmap(self.path, np.uint8, mode="r") if self.rows else None
        self.columns: dict[str, np.ndarray] = {}
        for name, dtype in COLUMNS.items():
            at = self.start + self.header["columns"][name]
            size = self.rows * np.dtype(dtype).itemsize
            self.columns[name] = buffer[at : at + size].view(dtype) if buffer is not None else np.zeros(0, dtype)
        self._fd: int | None = None
        self._pid = -1

    @classmethod
    def load(cls, path: Path, file: Path, expected: dict[str, Any], check_content: bool = True) -> RecordIndex:
        """The index at `path` if it is whole (its length and checksum) and belongs to `file` as it
        is now (with `check_content`, its hash too) and to `expected`; else `Unusable` says why."""
        try:
            with open(path, "rb") as handle:
                fields = handle.read(len(MAGIC) + PREFIX.size)
                if not MAGIC.startswith(fields[: len(MAGIC)]):
                    raise Unusable("is not a record index (it does not start as one)")
                if len(fields) < len(MAGIC) + PREFIX.size:
                    raise Unusable(f"is cut short: {len(fields)} bytes, inside its header")
                size, length, checksum = PREFIX.unpack(fields[len(MAGIC) :])
                actual = os.fstat(handle.fileno()).st_size
                if actual != length:
                    raise Unusable(
                        f"is {'cut short' if actual < length else 'longer than written'}: {actual} bytes, "
                        f"where its header says {length}"
                    )
                digest = hashlib.blake2b(fields[:-32], digest_size=32)
                blob = handle.read(min(size, length))  # a damaged size: the checksum tells
                digest.update(blob)
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                if digest.digest() != checksum:
                    raise Unusable("is damaged: its checksum does not match its bytes (overwritten)")
                header = json.loads(blob)
        except FileNotFoundError:
            raise Unusable() from None  # not built yet
        except (OSError, ValueError) as err:  # unreadable, or (though the checksum matched) a header that is not JSON
            raise Unusable(f"cannot be read ({err})") from None
        if header.get("settings") != expected:
            raise Unusable("was built for other settings")
        if file_fingerprint(file, None if check_content else header["file"]["blake2b"]) != header["file"]:
            raise Unusable(f"is out of date: {file} changed since it was built")
        return cls(path, file, header, aligned(len(MAGIC) + PREFIX.size + size))

    def __reduce__(self) -> tuple:  # DataLoader workers started by spawn or forkserver map it again
        return RecordIndex, (self.path, self.file, self.header, self.start)

    def record(self, row: int) -> Record:
        """The record of one row, read from the file by its byte offset."""
        if self._pid != os.getpid():
            self._fd, self._pid = os.open(self.file, os.O_RDONLY), os.getpid()
        columns = self.columns
        line = int(columns["line"][row])
        raw = os.pread(self._fd, int(columns["size"][row]), int(columns["offset"][row]))
        try:
            record = parse_line(raw.removesuffix(b"\r"), f"{self.file}:{line}")
        except ValueError as err:
            record = None
            reason = str(err)
        if record is None:
            raise InterleaveError(
                f"{self.file}:{line}: the line differs from set-up ({reason if raw.strip() else 'blank'}); "
                "the file changed during the run: restart it"
            )
        return record

    def checked(
        self, audio_root: str | Path, load: Callable[[Path], Any] | None = None, split: list[str] | None = None
    ) -> tuple[IndexedRecords, list[Problem]]:
        """(good records, problems) as `interleave.data.checks.load_checked` gives them, audio checked now
        (`audio_problem`: present, and with `load`, the run's encoder input loader, readable)."""
        status, audio = self.columns["status"], self.columns["audio"]
        candidate = (status == OK) | (status == SPLIT)
        table = self.header["audio"]
        used = np.unique(audio[candidate])
        reasons: dict[int, str] = {}
        seen: dict[str, str | None] = {}  # each clip looked at once, though many entries name it
        for i in used.tolist():
            for clip in _clips(table[i]):
                if clip not in seen:
                    seen[clip] = audio_problem(resolve_audio_path(clip, audio_root), load)
                if seen[clip] is not None:
                    reasons[i] = seen[clip]
                    break
        bad_audio = np.zeros(len(table), bool)
        bad_audio[list(reasons)] = True
        bad_clips = candidate & bad_audio[audio]
        if split is not None:
            split.extend(self.record(row).describe() for row in np.flatnonzero(status == SPLIT).tolist())
        problems = self.read_problems()
        bad = {row: (record_id, reason) for row, record_id, reason in self.header["bad"]}
        lines = self.columns["line"]
        for row in np.flatnonzero(bad_clips | (status == BAD)).tolist():
            if row in bad:
                record_id, reason = bad[row]
                problems.append(Problem(f"{self.file}:{lines[row]} (id={record_id})", reason))
            else:
                problems.append(Problem(self.record(row).describe(), reasons[int(audio[row])]))
        return IndexedRecords(self, np.flatnonzero(candidate & ~bad_clips)), problems

    def read_problems(self) -> list[Problem]:
        """What reading the file found, in line order: bad lines, then nothing else; or the file is empty."""
        if self.header["empty"]:
            return [Problem(str(self.file), EMPTY_FILE)]
        out = []
        for line, reason, *duplicate in self.header["read_problems"]:
            if reason is None:
                record_id, first = duplicate
                reason = duplicate_reason(record_id, f"{self.file}:{first}")
            out.append(Problem(f"{self.file}:{line}", reason))
        return out


class IndexedRecords:
    """A sequence of records read lazily through an index: the rows it holds, in its order."""

    def __init__(self, index: RecordIndex, rows: np.ndarray) -> None:
        self.index, self.rows = index, np.asarray(rows, np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int | slice) -> Record | IndexedRecords:
        if isinstance(item, slice):
            return IndexedRecords(self.index, self.rows[item])
        return self.index.record(int(self.rows[item]))

    def __iter__(self) -> Iterator[Record]:
        return (self.index.record(row) for row in self.rows.tolist())

    def subset(self, order: list[int] | np.ndarray) -> IndexedRecords:
        """The records at positions `order` of this sequence, in that order."""
        return IndexedRecords(self.index, self.rows[np.asarray(order, np.int64)])

    def lengths(self) -> np.ndarray:
        """Each record's token length, as the collator's `encode` gives it."""
        return np.asarray(self.index.columns["length"][self.rows])

    def audio_paths(self, audio_root: str | Path) -> list[Path]:
        """The distinct audio files of these records."""
        table = self.index.header["audio"]
        clips = (clip for i in np.unique(self.index.columns["audio"][self.rows]).tolist() for clip in _clips(table[i]))
        return [resolve_audio_path(clip, audio_root) for clip in dict.fromkeys(clips)]


def _clips(entry: str | list[str]) -> list[str]:
    """The clips of an audio table entry: one path, or a record's list of them."""
    return [entry] if isinstance(entry, str) else list(entry)


def audio_problem(path: Path, load: Callable[[Path], Any] | None = None) -> str | None:
    """Why a clip cannot be used, or None: missing, no regular file (a directory, a device, a FIFO:
    named as such, never opened), or (with `load`, the run's encoder input loader with its channel,
    as training reads the clip) unreadable. The one audio check."""
    if (kind := not_a_file(path)) is not None:
        return f"audio file not found: {path}" if kind == NOT_FOUND else f"audio path {kind}, not an audio file: {path}"
    if load is not None:
        try:
            load(path)
        except AudioError as err:
            return f"unreadable audio: {err.reason} ({path})"
    return None
