"""The record index: a JSONL record file's line offsets, token lengths and check results, built
once (by one forked process per core, each a part of the file) and memory-mapped by every later
run and every process, so a million records set up in seconds and cost a few bytes each.

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
import functools
import hashlib
import json
import multiprocessing
import os
import signal
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np

from interleave import AUDIO_PLACEHOLDER
from interleave.data import chat, collate, prompts, records, token_count
from interleave.data.collate import Collator
from interleave.errors import AudioError, InterleaveError
from interleave.files import atomic_path
from interleave.data.records import (EMPTY_FILE, NOT_FOUND, Problem, Record, duplicate_reason, jsonl_lines,
                                     line_ranges, not_a_file, parse_line, resolve_audio_path)
from interleave.data.token_count import BAD, OK, SPLIT, TokenCounter, measure_records

MAGIC = b"INTERLEAVE-RECORD-INDEX\n"
PREFIX = struct.Struct("<QQ32s")  # after MAGIC: the header's length, the index file's length, the checksum
ALIGN = 64
DUPLICATE = 3  # a row's status: OK, SPLIT or BAD (`measure_records`), or a duplicate id
COLUMNS = {"offset": "<i8", "size": "<i4", "line": "<i4", "length": "<i4", "status": "u1", "audio": "<i4"}


# The code a row's length and status come from: the record contract, the template and placeholder
# rule, the collator, `measure_records` and this index's builder.
RULE_FILES = [Path(module.__file__) for module in (records, prompts, chat, collate, token_count)] + [Path(__file__)]


@functools.cache
def rules_hash() -> str:
    """A hash of `RULE_FILES`' source: any change to that code gives another index key, so no
    version has to be bumped by hand (an edit elsewhere in those files rebuilds too, harmlessly)."""
    digest = hashlib.sha256()
    for file in RULE_FILES:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def settings(collator: Collator) -> dict[str, Any]:
    """Everything a row's length or check result depends on, besides the record file itself."""
    tokenizer = collator.tokenizer
    return {
        "rules": rules_hash(),
        "audio_tokens": collator.audio_tokens,
        "placeholder": AUDIO_PLACEHOLDER,
        "tokenizer": hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest(),
        "special_ids": [tokenizer.bos_token_id, tokenizer.eos_token_id, collator.pad_id],
        "add_bos": collator.add_bos,
        "template": collator.template.key(),
        "max_length": collator.max_length,
    }  # train_on_prompt changes labels only, never a length or a check


def index_path(file: str | Path, collator: Collator, index_dir: str | Path | None = None,
               described: dict[str, Any] | None = None) -> Path:
    """Where the index of `file` for `collator`'s settings (`described`, when already computed) lives."""
    file = Path(file)
    described = dict(settings(collator) if described is None else described)
    if index_dir is not None:  # one folder for files of many folders: the file's own path tells them apart
        described["file"] = str(file.resolve())
    key = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
    return Path(index_dir if index_dir is not None else file.parent) / f"{file.name}.{key}.index"


def file_fingerprint(file: Path, digest: str | None = None) -> dict[str, Any]:
    stat = file.stat()
    if digest is None:
        with open(file, "rb") as handle:
            digest = hashlib.file_digest(handle, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "blake2b": digest}


class _Builder:
    """Reads a record file once, chunk by chunk, into the index's columns."""

    def __init__(self, file: Path, collator: Collator) -> None:
        self.file, self.collator = file, collator
        self.counter = TokenCounter(collator.tokenizer)
        self.columns: dict[str, list[np.ndarray]] = {name: [] for name in COLUMNS}
        self.id_hashes: list[np.ndarray] = []
        self.read_problems: list[list[Any]] = []  # [line, reason] or [line, None, id, first line]
        self.bad: dict[int, list[Any]] = {}  # row -> [id, reason]
        self.audio: dict[str | tuple[str, ...], int] = {}  # a record's audio field (one path or its clips)
        self.rows = 0

    def add(self, batch: list[tuple[int, int, int, Record]]) -> None:
        """Check and measure one chunk of parsed records: (line, offset, size, record)."""
        measured = measure_records([b[3] for b in batch], self.collator, self.counter)
        length, status = measured.lengths, measured.status
        for i, reason in measured.reasons.items():
            self.bad[self.rows + i] = [batch[i][3].id, reason]
        n = len(batch)
        audio = self.audio
        self.columns["line"].append(np.array([b[0] for b in batch], np.int32))
        self.columns["offset"].append(np.array([b[1] for b in batch], np.int64))
        self.columns["size"].append(np.array([b[2] for b in batch], np.int32))
        self.columns["audio"].append(np.array([audio.setdefault(b[3].audio, len(audio)) for b in batch], np.int32))
        self.columns["length"].append(length)
        self.columns["status"].append(status)
        self.id_hashes.append(np.array([hash(b[3].id) for b in batch], np.int64))
        self.rows += n

    def run(self, start: int, end: int, chunk_rows: int = 50_000) -> dict[str, Any]:
        """The rows of the bytes [start, end): columns, problems, clips, id hashes (lines counted from start)."""
        batch: list[tuple[int, int, int, Record]] = []
        entries = lines = 0
        for lines, offset, raw in jsonl_lines(self.file, start, end):
            try:
                record = parse_line(raw, f"{self.file}:{lines}")
            except ValueError as err:
                self.read_problems.append([lines, str(err)])
                entries += 1
                continue
            if record is None:
                continue
            entries += 1
            batch.append((lines, offset, len(raw), record))
            if len(batch) >= chunk_rows:
                self.add(batch)
                batch = []
        if batch:
            self.add(batch)
        columns = {name: np.concatenate(parts) if parts else np.zeros(0, COLUMNS[name]) for name, parts in self.columns.items()}
        hashes = np.concatenate(self.id_hashes) if self.id_hashes else np.zeros(0, np.int64)
        return {"columns": columns, "hashes": hashes, "read_problems": self.read_problems, "bad": self.bad,
                "audio": list(self.audio), "rows": self.rows, "entries": entries, "lines": lines}


_JOB: tuple[Path, Collator] | None = None  # what forked builders read: the file and the collator


def _build_part(part: tuple[int, int]) -> dict[str, Any]:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per process; no warning about the fork
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent alone says so
    file, collator = _JOB
    return _Builder(file, collator).run(*part)


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The parts' results as one: rows, line numbers and clip numbers continued."""
    audio: dict[str, int] = {}
    columns: dict[str, list[np.ndarray]] = {name: [] for name in COLUMNS}
    read_problems, bad, rows, lines = [], {}, 0, 0
    for part in results:
        remap = np.array([audio.setdefault(a, len(audio)) for a in part["audio"]] or [0], np.int32)
        for name, values in part["columns"].items():
            columns[name].append(remap[values] if name == "audio" and len(values) else
                                 values + lines if name == "line" else values)
        read_problems += [[line + lines, *rest] for line, *rest in part["read_problems"]]
        bad.update({row + rows: value for row, value in part["bad"].items()})
        rows += part["rows"]
        lines += part["lines"]
    return {"columns": {name: np.concatenate(parts).astype(COLUMNS[name]) for name, parts in columns.items()},
            "hashes": np.concatenate([part["hashes"] for part in results]), "read_problems": read_problems,
            "bad": bad, "audio": list(audio), "rows": rows, "entries": sum(part["entries"] for part in results)}


def _mark_duplicates(file: Path, built: dict[str, Any]) -> None:
    """Rows whose id an earlier row has: duplicates (read problems), as `read_records` says."""
    hashes, columns = built["hashes"], built["columns"]
    order = np.argsort(hashes, kind="stable")
    same = np.flatnonzero(hashes[order][1:] == hashes[order][:-1])
    if not len(same):
        return
    rows = np.unique(np.concatenate([order[same], order[same + 1]]))  # candidates; equal hashes, maybe not equal ids
    first: dict[str, int] = {}
    with open(file, "rb") as handle:
        for row in rows.tolist():
            handle.seek(int(columns["offset"][row]))
            record = parse_line(handle.read(int(columns["size"][row])).removesuffix(b"\r"), "")
            if record.id not in first:
                first[record.id] = row
                continue
            columns["status"][row] = DUPLICATE
            built["bad"].pop(row, None)
            built["read_problems"].append([int(columns["line"][row]), None, record.id, int(columns["line"][first[record.id]])])


def build_processes(file: Path) -> int:
    """How many processes build the index of `file`: one per usable core, one for a small file."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 8, file.stat().st_size // (16 << 20)))


def build(file: Path, collator: Collator, target: Path, processes: int | None = None, *,
          described: dict[str, Any] | None = None) -> None:
    """Build the index of `file` (in `processes` forked processes, each a part of the file; by
    default `build_processes`) and write it to `target` atomically; `described` is
    `settings(collator)` when the caller has it already."""
    global _JOB
    before = file.stat()
    digest: list[str] = []  # the file's hash, read in a thread started after the fork
    hashing = threading.Thread(target=lambda: digest.append(file_fingerprint(file)["blake2b"]))
    parts = line_ranges(file, processes or build_processes(file))
    if len(parts) == 1:
        hashing.start()
        results = [_Builder(file, collator).run(*parts[0])]
    else:
        _JOB = (file, collator)
        try:
            with multiprocessing.get_context("fork").Pool(len(parts)) as pool:
                hashing.start()
                results = pool.map(_build_part, parts, chunksize=1)
        finally:
            _JOB = None
    hashing.join()
    built = _merge(results)
    _mark_duplicates(file, built)
    fingerprint = file_fingerprint(file, digest[0])
    if (fingerprint["size"], fingerprint["mtime_ns"]) != (before.st_size, before.st_mtime_ns):
        raise InterleaveError(f"{file} changed while its record index was being built; run again")
    header = {"settings": settings(collator) if described is None else described, "file": fingerprint, "rows": built["rows"], "empty": built["entries"] == 0,
              "read_problems": sorted(built["read_problems"]), "bad": [[row, *v] for row, v in sorted(built["bad"].items())],
              "audio": built["audio"], "columns": {}}
    position = 0
    for name, dtype in COLUMNS.items():
        header["columns"][name] = position
        position += _aligned(built["rows"] * np.dtype(dtype).itemsize)
    blob = json.dumps(header).encode()
    start = _aligned(len(MAGIC) + PREFIX.size + len(blob))
    body = [blob, bytes(start - len(MAGIC) - PREFIX.size - len(blob))]  # the header, then each column, aligned
    for name, dtype in COLUMNS.items():
        data = built["columns"][name].astype(dtype, copy=False).tobytes()
        body += [data, bytes(_aligned(len(data)) - len(data))]
    checksum = hashlib.blake2b(MAGIC + struct.pack("<QQ", len(blob), start + position), digest_size=32)
    for part in body:
        checksum.update(part)
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        out.write(MAGIC + PREFIX.pack(len(blob), start + position, checksum.digest()))
        for part in body:
            out.write(part)


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


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


def open_index(file: str | Path, collator: Collator, index_dir: str | Path | None = None,
               log: Any = None) -> RecordIndex:
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
        raise InterleaveError(f"cannot write the record index of {file} in {target.parent}; "
                              "set data.index_dir to a writable folder")
    with _exclusive(file):
        index, reason = _reused(target, file, expected)  # another process may have built it meanwhile
        if index is None:
            if log and reason:
                log(f"[interleave] {file}: record index {target} {reason}; rebuilding it")
            started = time.perf_counter()
            build(file, collator, target, described=expected)
            index = RecordIndex.load(target, file, expected, check_content=False)
            if log:
                log(f"[interleave] {file}: record index built in {time.perf_counter() - started:.1f} s "
                    f"({index.rows} records) -> {target}")
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
                size, length, checksum = PREFIX.unpack(fields[len(MAGIC):])
                actual = os.fstat(handle.fileno()).st_size
                if actual != length:
                    raise Unusable(f"is {'cut short' if actual < length else 'longer than written'}: {actual} bytes, "
                                   f"where its header says {length}")
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
        return cls(path, file, header, _aligned(len(MAGIC) + PREFIX.size + size))

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
            raise InterleaveError(f"{self.file}:{line}: the line differs from set-up ({reason if raw.strip() else 'blank'}); "
                                  "the file changed during the run: restart it")
        return record

    def checked(self, audio_root: str | Path, load: Callable[[Path], Any] | None = None,
                split: list[str] | None = None) -> tuple[IndexedRecords, list[Problem]]:
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
