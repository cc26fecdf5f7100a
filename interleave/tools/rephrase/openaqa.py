"""LTU's OpenAQA records for rephrasing: which source kinds to take, streaming the input, selection.

The input (a JSON array of several GB, or JSONL) is streamed, never loaded whole: `select` counts
the eligible records per source kind in a first pass and keeps a seeded bottom-k sample per
kind in a second (memory bounded by the size asked for), with the input's task mix. A requested
source kind with no eligible record is warned about (`empty_source_warnings`): OpenAQA names
other than `as_strong_train` / `open-ended question` are unverified.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interleave.data.records import Record, from_dict, from_openaqa
from interleave.errors import InterleaveError
from interleave.tools.rephrase.rewriters import KINDS

CHUNK_CHARS = 1 << 18
MAX_RECORD_CHARS = 1 << 24  # a malformed element stops the read-ahead here, not at the end of the file


@dataclass(frozen=True)
class Source:
    """Which OpenAQA records a template kind takes: its `task` values and `dataset` values."""

    tasks: tuple[str, ...]
    datasets: tuple[str, ...]


# The paper's sources, in OpenAQA's own names (LTU's openaqa/ scripts and README): AudioSet-Strong
# train is `as_strong_train`, AudioSet-Balanced (AS-20K) is `as_20k`; LTU's tasks are
# `open-ended question`, `cla_label` (labels) and `cla_label_des` (labels with acoustic features).
SOURCES: dict[str, Source] = {
    "open-ended": Source(tasks=("open-ended question",), datasets=("as_strong_train",)),
    "label": Source(tasks=("cla_label",), datasets=("as_20k", "as_strong_train")),
    "acoustic": Source(tasks=("cla_label_des",), datasets=("as_20k", "as_strong_train")),
}
# The only OpenAQA names known to be right; the others above (`as_20k`, `cla_label`, `cla_label_des`)
# are unverified. A requested source with no eligible record is warned about (build, summary).
VERIFIED_TASKS = ("open-ended question",)
VERIFIED_DATASETS = ("as_strong_train",)
MAX_UNMATCHED_PAIRS = 10_000  # distinct (task, dataset) pairs counted for the warnings; memory stays bounded


def load_sources(path: str | Path) -> dict[str, Source]:
    """A sources table from JSON: {"label": {"tasks": [...], "datasets": [...]}, ...}."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InterleaveError(f"{path}: cannot read the sources table: {err}") from None
    if not isinstance(raw, dict) or not raw:
        raise InterleaveError(f"{path}: expected a JSON object mapping kinds to {{tasks, datasets}}")
    table = {}
    for kind, entry in raw.items():
        if kind not in KINDS:
            raise InterleaveError(f"{path}: unknown kind '{kind}'; known: {', '.join(KINDS)}")
        ok = isinstance(entry, dict) and all(
            isinstance(entry.get(k), list) and all(isinstance(v, str) for v in entry[k]) for k in ("tasks", "datasets")
        )
        if not ok:
            raise InterleaveError(f"{path}: '{kind}' needs lists of strings 'tasks' and 'datasets'")
        table[kind] = Source(tuple(entry["tasks"]), tuple(entry["datasets"]))
    return table


def kind_of(obj: dict, sources: dict[str, Source]) -> str | None:
    """The template kind whose source takes this OpenAQA object, or None."""
    for kind, source in sources.items():
        if obj.get("task") in source.tasks and obj.get("dataset") in source.datasets:
            return kind
    return None


# ---------------------------------------------------------------------------------------------
# streaming input


def iter_objects(path: str | Path) -> Iterator[tuple[int, str, Any]]:
    """(position, "file:line", object) for each element of a JSON array or each JSONL line."""
    for position, where, obj, _ in iter_raw(path):
        yield position, where, obj


def iter_raw(path: str | Path) -> Iterator[tuple[int, str, Any, str]]:
    """(position, "file:line", object, its JSON text) for each element of a JSON array or JSONL line.

    The array is decoded incrementally (raw_decode over a buffer of CHUNK_CHARS reads), so memory
    stays bounded by the largest record, not the file.
    """
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8")
    except OSError as err:
        raise InterleaveError(f"{path}: cannot open input: {err.strerror}") from None
    with handle:
        head = handle.read(CHUNK_CHARS)
        stripped = head.lstrip()
        if stripped.startswith("["):
            yield from _iter_array(path, handle, head)
        else:
            yield from _iter_lines(path, handle, head)


def _iter_lines(path: Path, handle, head: str) -> Iterator[tuple[int, str, Any, str]]:
    position = 0
    pending = head
    lineno = 0
    while True:
        chunk = handle.read(CHUNK_CHARS)
        pending += chunk
        lines = pending.split("\n")
        pending = lines.pop() if chunk else ""
        for line in lines:
            lineno += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise InterleaveError(f"{path}:{lineno}: malformed JSON: {err.msg} (column {err.colno})") from None
            yield position, f"{path}:{lineno}", obj, line
            position += 1
        if not chunk:
            return


def _iter_array(path: Path, handle, buffer: str) -> Iterator[tuple[int, str, Any, str]]:
    decoder = json.JSONDecoder()
    idx = len(buffer) - len(buffer.lstrip()) + 1  # just past "["
    line = 1 + buffer.count("\n", 0, idx)
    position = 0
    expect_value = True

    def more() -> bool:
        nonlocal buffer, idx
        chunk = handle.read(CHUNK_CHARS)
        if not chunk:
            return False
        buffer = buffer[idx:] + chunk
        idx = 0
        return True

    while True:
        # skip whitespace and one comma between elements
        while True:
            while idx < len(buffer) and buffer[idx] in " \t\r\n":
                if buffer[idx] == "\n":
                    line += 1
                idx += 1
            if idx < len(buffer) or not more():
                break
        if idx >= len(buffer):
            raise InterleaveError(f"{path}:{line}: the JSON array is not closed (truncated file?)")
        char = buffer[idx]
        if char == "]":
            return
        if char == ",":
            if expect_value:
                raise InterleaveError(f"{path}:{line}: malformed JSON: unexpected ','")
            idx += 1
            expect_value = True
            continue
        if not expect_value:
            raise InterleaveError(f"{path}:{line}: malformed JSON: expected ',' or ']'")
        while True:
            try:
                obj, end = decoder.raw_decode(buffer, idx)
                break
            except json.JSONDecodeError as err:
                # read on only while the element could still be a record cut by the chunk boundary
                if len(buffer) - idx > MAX_RECORD_CHARS or not more():
                    bad = line + buffer.count("\n", idx, err.pos)
                    raise InterleaveError(f"{path}:{bad}: malformed JSON: {err.msg}") from None
        where, text = f"{path}:{line}", buffer[idx:end]
        line += text.count("\n")
        idx = end
        expect_value = False
        yield position, where, obj, text
        position += 1


# ---------------------------------------------------------------------------------------------
# selection


@dataclass(frozen=True)
class Item:
    """One selected OpenAQA record, ready to rewrite."""

    id: str
    position: int
    kind: str
    where: str
    text: str  # the object's JSON text: a third of the memory of the parsed dict

    @property
    def record(self) -> Record:
        """The OpenAQA object (or a training record) as a Record; ValueError if it is unusable."""
        obj = json.loads(self.text)
        return from_dict(obj, self.where) if "audio" in obj else from_openaqa(obj, self.where)


def _key(seed: int, position: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{position}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def allocate(counts: dict[str, int], size: int) -> dict[str, int]:
    """Split `size` over the kinds in proportion to `counts` (largest remainder), capped by counts."""
    total = sum(counts.values())
    if size >= total:
        return dict(counts)
    exact = {k: size * n / total for k, n in counts.items()}
    alloc = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: (alloc[k] - exact[k], k))[: size - sum(alloc.values())]:
        alloc[k] += 1
    return alloc


def empty_source_warnings(
    counts: dict[str, int], sources: dict[str, Source], unmatched: Counter | None = None
) -> list[str]:
    """One warning per requested source kind with 0 eligible records: its task and dataset names may
    be wrong. `unmatched` counts the (task, dataset) pairs of the records no source took."""
    common = ""
    if unmatched:
        pairs = ", ".join(f"{task!r}/{dataset!r} ({n})" for (task, dataset), n in unmatched.most_common(5))
        common = f"; the input's most frequent task/dataset pairs that no source takes: {pairs}"
    warnings = []
    for kind, source in sources.items():
        if counts.get(kind, 0):
            continue
        unverified = [n for n in source.tasks if n not in VERIFIED_TASKS]
        unverified += [n for n in source.datasets if n not in VERIFIED_DATASETS]
        names = f"unverified here: {', '.join(map(repr, unverified))}" if unverified else "these ones are verified"
        warnings.append(
            f"source '{kind}' has 0 eligible records in the input (tasks {list(source.tasks)}, datasets "
            f"{list(source.datasets)}): the task or dataset names may be wrong for this input (of OpenAQA's names "
            f"only 'as_strong_train' and 'open-ended question' are verified; {names}); compare them with the "
            f"input's 'task' and 'dataset' values and fix them with --sources{common}"
        )
    return warnings


def select(
    path: str | Path, size: int, seed: int, sources: dict[str, Source], unmatched: Counter | None = None
) -> tuple[list[Item], dict[str, int]]:
    """A seeded sample of `size` eligible records with the input's mix of kinds, in input order,
    and the eligible counts per kind. Two streaming passes; memory holds at most `size` records.
    `unmatched`, when given, counts the (task, dataset) pairs of the records no source takes.

    Each record's priority is a hash of (seed, position); each kind keeps its lowest priorities
    (bottom-k sampling, a uniform sample without replacement), so the same seed gives the same set.
    """
    found: Counter = Counter()
    for _, where, obj in iter_objects(path):
        if not isinstance(obj, dict):
            raise InterleaveError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        kind = kind_of(obj, sources)
        found[kind] += 1
        if kind is None and unmatched is not None:
            pair = (str(obj.get("task")), str(obj.get("dataset")))
            if pair in unmatched or len(unmatched) < MAX_UNMATCHED_PAIRS:
                unmatched[pair] += 1
    counts = {k: found.get(k, 0) for k in sources}
    if not found:
        raise InterleaveError(f"{path}: no records (empty input)")
    if not any(counts.values()):
        details = "\n".join(f"  {w}" for w in empty_source_warnings(counts, sources, unmatched))
        raise InterleaveError(
            f"{path}: none of its {sum(found.values())} records has a task and dataset "
            f"that --sources lists ({', '.join(sources)}):\n{details}"
        )
    alloc = allocate(counts, size)
    heaps: dict[str, list] = {k: [] for k in sources}
    for position, where, obj, text in iter_raw(path):
        kind = kind_of(obj, sources)
        if kind is None or alloc[kind] == 0:
            continue
        entry = (-_key(seed, position), position, where, text, obj.get("id"))
        heap = heaps[kind]
        if len(heap) < alloc[kind]:
            heapq.heappush(heap, entry)
        elif entry[0] > heap[0][0]:
            heapq.heapreplace(heap, entry)
    items = []
    for kind, heap in heaps.items():
        for _, position, where, text, own_id in heap:
            record_id = str(own_id) if own_id not in (None, "") else f"openaqa-{position}"
            items.append(Item(record_id, position, kind, where, text))
    items.sort(key=lambda item: item.position)
    return items, counts
