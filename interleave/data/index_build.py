"""How a record index is written: its format (`MAGIC`, `PREFIX`, the aligned `COLUMNS`), its key
(`settings`, `rules_hash`, `index_path`) and its builder (`build`: one forked process per core, each a
part of the record file, then the duplicate ids marked and the file written atomically with its own
length and checksum). `interleave.data.record_index` opens, verifies and reads what this writes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
import signal
import struct
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from interleave import AUDIO_PLACEHOLDER
from interleave.data import chat, collate, prompts, records, token_count
from interleave.data.collate import Collator
from interleave.data.records import (
    Record,
    jsonl_lines,
    line_ranges,
    parse_line,
)
from interleave.data.token_count import TokenCounter, measure_records
from interleave.errors import InterleaveError
from interleave.files import atomic_path

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
    } | (
        {"clip_spans": "from the clips' headers"} if collator.clip_spans is not None else {}
    )  # train_on_prompt changes labels only, never a length or a check


def index_path(
    file: str | Path, collator: Collator, index_dir: str | Path | None = None, described: dict[str, Any] | None = None
) -> Path:
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
        columns = {
            name: np.concatenate(parts) if parts else np.zeros(0, COLUMNS[name]) for name, parts in self.columns.items()
        }
        hashes = np.concatenate(self.id_hashes) if self.id_hashes else np.zeros(0, np.int64)
        return {
            "columns": columns,
            "hashes": hashes,
            "read_problems": self.read_problems,
            "bad": self.bad,
            "audio": list(self.audio),
            "rows": self.rows,
            "entries": entries,
            "lines": lines,
        }


def _builder_started() -> None:
    """A forked builder's first step: Ctrl-C reaches the whole process group, and the parent alone
    says so. The builder was forked with SIGINT blocked (see `_run_builders`), so one that came during
    the fork (while library fork hooks ran) waits pending and is dropped here, never a traceback."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per process; no warning about the fork
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _builder(file: Path, collator: Collator, part: tuple[int, int], send: Connection) -> None:
    """A forked builder: its part of `file`, sent back whole, or the error that stopped it."""
    _builder_started()
    try:
        result: tuple[str, Any] = ("built", _Builder(file, collator).run(*part))
    except Exception as err:  # the parent raises it
        result = ("failed", err)
    try:
        send.send(result)
    except Exception as err:  # an error that cannot be pickled: its words
        send.send(("failed", RuntimeError(f"{type(err).__name__}: {err}")))
    finally:
        send.close()


def _run_builders(
    file: Path, collator: Collator, parts: list[tuple[int, int]], started: threading.Thread
) -> list[dict[str, Any]]:
    """Each part of `file` built in a forked process of its own (then `started` is started), the
    results in part order. Processes, not a `multiprocessing.Pool`: on an interrupt or an error the
    builders are killed and reaped here, where a pool's terminate can wait on a worker's queue lock."""
    context = multiprocessing.get_context("fork")
    workers: list[tuple[Any, Connection]] = []
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # the builders are born with it blocked
    try:
        try:
            for part in parts:
                receive, send = context.Pipe(duplex=False)
                process = context.Process(target=_builder, args=(file, collator, part, send), daemon=True)
                workers.append((process, receive))
                process.start()
                send.close()  # the builder's end: its death is then this end's EOF
        finally:  # a Ctrl-C that came while forking reaches this process now, not lost
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        started.start()
        results = []
        for process, receive in workers:
            try:
                status, value = receive.recv()
            except EOFError:
                process.join()
                raise InterleaveError(
                    f"a record index builder of {file} ended without its part (exit code {process.exitcode}); run again"
                ) from None
            if status == "failed":
                raise value
            results.append(value)
        return results
    finally:
        for process, receive in workers:
            if process.pid is not None:
                if process.is_alive():
                    process.kill()
                process.join()
            receive.close()


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The parts' results as one: rows, line numbers and clip numbers continued."""
    audio: dict[str, int] = {}
    columns: dict[str, list[np.ndarray]] = {name: [] for name in COLUMNS}
    read_problems, bad, rows, lines = [], {}, 0, 0
    for part in results:
        remap = np.array([audio.setdefault(a, len(audio)) for a in part["audio"]] or [0], np.int32)
        for name, values in part["columns"].items():
            columns[name].append(
                remap[values] if name == "audio" and len(values) else values + lines if name == "line" else values
            )
        read_problems += [[line + lines, *rest] for line, *rest in part["read_problems"]]
        bad.update({row + rows: value for row, value in part["bad"].items()})
        rows += part["rows"]
        lines += part["lines"]
    return {
        "columns": {name: np.concatenate(parts).astype(COLUMNS[name]) for name, parts in columns.items()},
        "hashes": np.concatenate([part["hashes"] for part in results]),
        "read_problems": read_problems,
        "bad": bad,
        "audio": list(audio),
        "rows": rows,
        "entries": sum(part["entries"] for part in results),
    }


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
            built["read_problems"].append(
                [int(columns["line"][row]), None, record.id, int(columns["line"][first[record.id]])]
            )


def build_processes(file: Path) -> int:
    """How many processes build the index of `file`: one per usable core, one for a small file."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, 8, file.stat().st_size // (16 << 20)))


def build(
    file: Path,
    collator: Collator,
    target: Path,
    processes: int | None = None,
    *,
    described: dict[str, Any] | None = None,
) -> None:
    """Build the index of `file` (in `processes` forked processes, each a part of the file; by
    default `build_processes`) and write it to `target` atomically; `described` is
    `settings(collator)` when the caller has it already."""
    before = file.stat()
    digest: list[str] = []  # the file's hash, read in a thread started after the fork
    hashing = threading.Thread(target=lambda: digest.append(file_fingerprint(file)["blake2b"]))
    parts = line_ranges(file, processes or build_processes(file))
    if len(parts) == 1:
        hashing.start()
        results = [_Builder(file, collator).run(*parts[0])]
    else:
        results = _run_builders(file, collator, parts, hashing)
    hashing.join()
    built = _merge(results)
    _mark_duplicates(file, built)
    fingerprint = file_fingerprint(file, digest[0])
    if (fingerprint["size"], fingerprint["mtime_ns"]) != (before.st_size, before.st_mtime_ns):
        raise InterleaveError(f"{file} changed while its record index was being built; run again")
    header = {
        "settings": settings(collator) if described is None else described,
        "file": fingerprint,
        "rows": built["rows"],
        "empty": built["entries"] == 0,
        "read_problems": sorted(built["read_problems"]),
        "bad": [[row, *v] for row, v in sorted(built["bad"].items())],
        "audio": built["audio"],
        "columns": {},
    }
    position = 0
    for name, dtype in COLUMNS.items():
        header["columns"][name] = position
        position += aligned(built["rows"] * np.dtype(dtype).itemsize)
    blob = json.dumps(header).encode()
    start = aligned(len(MAGIC) + PREFIX.size + len(blob))
    body = [blob, bytes(start - len(MAGIC) - PREFIX.size - len(blob))]  # the header, then each column, aligned
    for name, dtype in COLUMNS.items():
        data = built["columns"][name].astype(dtype, copy=False).tobytes()
        body += [data, bytes(aligned(len(data)) - len(data))]
    checksum = hashlib.blake2b(MAGIC + struct.pack("<QQ", len(blob), start + position), digest_size=32)
    for part in body:
        checksum.update(part)
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        out.write(MAGIC + PREFIX.pack(len(blob), start + position, checksum.digest()))
        for part in body:
            out.write(part)


def aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN
