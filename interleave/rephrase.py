"""Build the paper's interleaved fine-tuning set (Appendix B) from LTU's OpenAQA JSON, resumably.

    python -m interleave.rephrase --input openaqa_5.6M.json --out ft40k.jsonl --size 40000 \\
        --backend openai --base-url https://api.openai.com/v1 --model gpt-4.1-mini
    python -m interleave.rephrase summary ft40k.jsonl

The input (a JSON array of several GB, or JSONL) is streamed twice, never loaded whole: the first
pass counts the eligible records per source (`SOURCES`), the second keeps a seeded bottom-k sample
per source (a reservoir: memory bounded by --size) with the input's task mix; a source with no
eligible record is warned about on stderr and in the summary (its names may be wrong). Each instruction is
rewritten by a backend (interleave.rewriters) and validated; every record ends in OUT or in
OUT.rejects.jsonl with its reason. Lines are appended and flushed one by one, so a rerun after a
crash skips what is done and a torn last line is cut off.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import logging
import os
import random
import sys
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from interleave.errors import InterleaveError
from interleave.records import Record, from_dict, from_openaqa
from interleave.rewriters import KINDS, MEDIA_WORDS, Rewriter, RewriteFailed, make_rewriter, redact, validate

log = logging.getLogger("interleave.rephrase")

CLOSED_PREFIX = "Closed-ended question: "
CHUNK_CHARS = 1 << 18
MAX_RECORD_CHARS = 1 << 24  # a malformed element stops the read-ahead here, not at the end of the file
FSYNC_EVERY = 64  # records; flush() after every record already survives kill -9


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


def empty_source_warnings(counts: dict[str, int], sources: dict[str, Source], unmatched: Counter | None = None) -> list[str]:
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
            f"input's 'task' and 'dataset' values and fix them with --sources{common}")
    return warnings


def select(path: str | Path, size: int, seed: int, sources: dict[str, Source],
           unmatched: Counter | None = None) -> tuple[list[Item], dict[str, int]]:
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
        raise InterleaveError(f"{path}: none of its {sum(found.values())} records has a task and dataset "
                              f"that --sources lists ({', '.join(sources)}):\n{details}")
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


# ---------------------------------------------------------------------------------------------
# output, resume


def rejects_path(out: str | Path) -> Path:
    """OUT.jsonl -> OUT.rejects.jsonl, beside OUT."""
    out = Path(out)
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.rejects.jsonl")


def meta_path(out: str | Path) -> Path:
    """OUT.jsonl -> OUT.meta.json: the run's settings (never the key) and timings."""
    path = rejects_path(out)
    return path.with_name(path.name[: -len(".rejects.jsonl")] + ".meta.json")


def iter_done(path: Path) -> Iterator[dict]:
    """The complete lines of an output file, streamed; a torn last line (kill -9 mid-write) is
    cut off the file."""
    if not path.exists():
        return
    with open(path, "rb+") as handle:
        good_end = 0
        lineno = 0
        for raw in handle:
            lineno += 1
            try:
                if not raw.endswith(b"\n"):
                    raise ValueError("no newline")
                row = json.loads(raw)
            except ValueError:
                if handle.read(1):
                    raise InterleaveError(f"{path}:{lineno}: malformed line in the middle of the file") from None
                log.warning("%s:%d: cutting off a torn last line (%d bytes)", path, lineno, len(raw))
                handle.truncate(good_end)
                return
            good_end += len(raw)
            yield row


def read_done(path: Path) -> list[dict]:
    """All complete lines of an output file (see iter_done)."""
    return list(iter_done(path))


class Appender:
    """Appends one JSON line at a time: flushed per record, fsynced every FSYNC_EVERY and on close."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(path, "a", encoding="utf-8")
        self.unsynced = 0

    def write(self, row: dict) -> None:
        self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.handle.flush()
        self.unsynced += 1
        if self.unsynced >= FSYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        os.fsync(self.handle.fileno())
        self.unsynced = 0

    def close(self) -> None:
        self.sync()
        self.handle.close()


# ---------------------------------------------------------------------------------------------
# rewriting


@dataclass
class Settings:
    """What a run needs besides the backend."""

    seed: int = 0
    max_attempts: int = 3
    concurrency: int = 8
    media_words: tuple[str, ...] = MEDIA_WORDS
    keep_closed_prefix: bool = True
    secrets: tuple[str, ...] = field(default=(), repr=False)


def rewrite_one(item: Item, rewriter: Rewriter, settings: Settings) -> tuple[bool, dict]:
    """(True, training record) or (False, reject row) for one item, after up to max_attempts."""
    try:
        record = item.record
    except ValueError as err:
        return False, {"id": item.id, "reason": "invalid_record", "attempts": [str(err)], "where": item.where}
    original = record.instruction
    prefix = CLOSED_PREFIX if original.startswith(CLOSED_PREFIX) else ""
    question = original[len(prefix) :].strip()
    reasons: list[str] = []
    candidate = ""
    for attempt in range(settings.max_attempts):
        rng = random.Random(f"{settings.seed}:{item.id}:{attempt}")
        try:
            candidate = rewriter.rewrite(question, item.kind, rng)
        except RewriteFailed as err:
            reasons.append(err.reason)
            continue
        reason = validate(candidate, item.kind, settings.media_words)
        if reason is None:
            instruction = (prefix if settings.keep_closed_prefix else "") + candidate
            row = {
                "id": item.id, "audio": record.audio, "instruction": instruction, "input": record.input,
                "output": record.output, "task": record.task, "dataset": record.dataset,
                "original_instruction": original,
            }
            return True, row
        reasons.append(reason)
    row = {
        "id": item.id, "audio": record.audio, "task": record.task, "dataset": record.dataset,
        "original_instruction": original, "reason": reasons[-1], "attempts": reasons,
        "last_candidate": redact(candidate, settings.secrets), "where": item.where,
    }
    return False, row


def run(items: list[Item], rewriter: Rewriter, out: Path, settings: Settings, retry_rejects: bool = False) -> dict:
    """Rewrite every item not yet in OUT (or its rejects), appending as results come in."""
    done = {row.get("id") for row in iter_done(out)}
    rejected = {row.get("id") for row in iter_done(rejects_path(out))}
    skip = done if retry_rejects else done | rejected
    todo = [item for item in items if item.id not in skip]
    log.info("%d selected, %d already done, %d to rewrite", len(items), len(items) - len(todo), len(todo))
    good, bad = Appender(out), Appender(rejects_path(out))
    written = Counter()
    started = time.monotonic()
    last_log = started
    pool = ThreadPoolExecutor(max_workers=max(1, settings.concurrency))
    pending: set[Future] = set()
    queue = iter(todo)
    try:
        while True:
            while len(pending) < 2 * max(1, settings.concurrency):
                item = next(queue, None)
                if item is None:
                    break
                pending.add(pool.submit(rewrite_one, item, rewriter, settings))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                ok, row = future.result()
                (good if ok else bad).write(row)
                written["ok" if ok else "rejected"] += 1
            if time.monotonic() - last_log > 10:
                last_log = time.monotonic()
                rate = sum(written.values()) / (last_log - started)
                log.info("%d written, %d rejected, %.1f records/s", written["ok"], written["rejected"], rate)
    finally:
        if pending and hasattr(rewriter, "cancel"):
            rewriter.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        good.close()
        bad.close()
    seconds = time.monotonic() - started
    return {"written": written["ok"], "rejected": written["rejected"], "seconds": round(seconds, 3)}


# ---------------------------------------------------------------------------------------------
# summary


def summarize(out: str | Path, top: int = 20) -> dict:
    """Counts per task, rejects per reason, prompt diversity, the most frequent prompts, throughput."""
    out = Path(out)
    if not out.exists():
        raise InterleaveError(f"{out}: no such output file")
    prompts: Counter = Counter()
    tasks: Counter = Counter()
    done = set()
    for row in iter_done(out):
        done.add(row.get("id"))
        prompts[row.get("instruction", "")] += 1
        tasks[row.get("task", "")] += 1
    # the last word on each id that never made it into OUT (--retry-rejects may reject it again)
    last = {r.get("id"): r for r in iter_done(rejects_path(out)) if r.get("id") not in done}
    rejects = list(last.values())
    runs, warnings = [], []
    if meta_path(out).exists():
        meta = json.loads(meta_path(out).read_text(encoding="utf-8"))
        runs, warnings = meta.get("runs", []), meta.get("warnings", [])
    handled = sum(r.get("written", 0) + r.get("rejected", 0) for r in runs)
    seconds = sum(r.get("seconds", 0) for r in runs)
    return {
        "records": len(done),
        "per_task": dict(tasks.most_common()),
        "rejected": len(rejects),
        "rejects_per_reason": dict(Counter(r.get("reason", "") for r in rejects).most_common()),
        "distinct_prompts": len(prompts),
        "distinct_ratio": round(len(prompts) / len(done), 4) if done else 0.0,
        "top_prompts": prompts.most_common(top),
        "records_per_second": round(handled / seconds, 2) if seconds else None,
        "warnings": warnings,
    }


def format_summary(summary: dict) -> str:
    """The summary as readable text."""
    lines = [f"records: {summary['records']}  rejected: {summary['rejected']}"]
    lines += [f"  task {task}: {n}" for task, n in summary["per_task"].items()]
    lines += [f"  reject {reason}: {n}" for reason, n in summary["rejects_per_reason"].items()]
    lines.append(f"distinct prompts: {summary['distinct_prompts']} / {summary['records']} ({summary['distinct_ratio']:.1%})")
    if summary["records_per_second"] is not None:
        lines.append(f"throughput: {summary['records_per_second']} records/s")
    lines.append(f"most frequent prompts (top {len(summary['top_prompts'])}):")
    lines += [f"  {n:6d}  {prompt}" for prompt, n in summary["top_prompts"]]
    lines += [f"warning: {w}" for w in summary.get("warnings", [])]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m interleave.rephrase", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="OpenAQA JSON array or JSONL")
    p.add_argument("--out", required=True, help="output JSONL (rejects go to OUT.rejects.jsonl)")
    p.add_argument("--size", type=int, required=True, help="number of records to select")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("openai", "local", "template"), default="template")
    p.add_argument("--sources", help="JSON table kind -> {tasks, datasets} replacing the paper's sources")
    p.add_argument("--base-url", default="https://api.openai.com/v1")
    p.add_argument("--model", help="chat model (openai) or interleave.llm spec (local)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key ('' for none)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument("--max-retries", type=int, default=6, help="HTTP retries per attempt (429, 5xx, timeouts)")
    p.add_argument("--backoff-base", type=float, default=1.0, help="seconds; doubled per retry, with jitter")
    p.add_argument("--backoff-max", type=float, default=60.0)
    p.add_argument("--no-json-mode", action="store_true", help="do not send response_format=json_object")
    p.add_argument("--max-attempts", type=int, default=3, help="rewrites tried per record before it is rejected")
    p.add_argument("--media-words", help="comma-separated words a rewrite must not contain")
    p.add_argument("--drop-closed-prefix", action="store_true", help="drop LTU's 'Closed-ended question: ' prefix")
    p.add_argument("--retry-rejects", action="store_true", help="rewrite earlier rejects again on this run")
    return p


def _check_meta(out: Path, settings: dict) -> list[dict]:
    """Earlier runs' timings; refuses to resume into OUT made from another selection."""
    path = meta_path(out)
    if not path.exists() or not (out.exists() or rejects_path(out).exists()):
        return []
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise InterleaveError(f"{path}: unreadable run settings: {err}") from None
    for key in ("input", "size", "seed", "sources"):
        if meta.get("selection", {}).get(key) != settings[key]:
            raise InterleaveError(
                f"{out} was made with {key}={meta.get('selection', {}).get(key)!r}, not {settings[key]!r}; "
                "use the same selection to resume or another --out"
            )
    return meta.get("runs", [])


def _write_meta(out: Path, selection: dict, backend: dict, runs: list[dict], warnings: list[str] = ()) -> None:
    path = meta_path(out)
    tmp = path.with_name(path.name + ".tmp")
    meta = {"selection": selection, "backend": backend, "runs": runs, "warnings": list(warnings)}
    tmp.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def build(args: argparse.Namespace) -> dict:
    """Select, rewrite and summarise, as the CLI asks."""
    if args.size < 1 or args.concurrency < 1 or args.max_attempts < 1:
        raise InterleaveError("--size, --concurrency and --max-attempts must be at least 1")
    sources = load_sources(args.sources) if args.sources else SOURCES
    out = Path(args.out)
    selection = {
        "input": str(Path(args.input).resolve()), "size": args.size, "seed": args.seed,
        "sources": {k: {"tasks": list(s.tasks), "datasets": list(s.datasets)} for k, s in sources.items()},
    }
    runs = _check_meta(out, selection)
    api_key = ""
    if args.backend == "openai" and args.api_key_env:
        api_key = os.environ.get(args.api_key_env, "")
        if not api_key:
            raise InterleaveError(f"--backend openai: the environment variable {args.api_key_env} is not set")
    media = tuple(w.strip() for w in args.media_words.split(",") if w.strip()) if args.media_words else MEDIA_WORDS
    rewriter = make_rewriter(
        args.backend, model=args.model, base_url=args.base_url, api_key=api_key, timeout=args.timeout,
        max_retries=args.max_retries, backoff_base=args.backoff_base, backoff_max=args.backoff_max,
        json_mode=not args.no_json_mode, media_words=media,
    )
    settings = Settings(
        seed=args.seed, max_attempts=args.max_attempts, concurrency=args.concurrency if args.backend == "openai" else 1,
        media_words=media, keep_closed_prefix=not args.drop_closed_prefix, secrets=(api_key,),
    )
    backend_info = {"backend": args.backend, "model": args.model, "base_url": args.base_url if args.backend == "openai" else None,
                    "api_key_env": args.api_key_env if args.backend == "openai" else None}
    unmatched: Counter = Counter()
    items, counts = select(args.input, args.size, args.seed, sources, unmatched)
    warnings = empty_source_warnings(counts, sources, unmatched)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    _write_meta(out, selection, backend_info, runs, warnings)
    log.info("eligible per kind: %s; selected %d", counts, len(items))
    if len(items) < args.size:
        log.warning("only %d eligible records for --size %d", len(items), args.size)
    stats: dict = {}
    try:
        stats = run(items, rewriter, out, settings, retry_rejects=args.retry_rejects)
    finally:
        _write_meta(out, selection, backend_info, runs + ([stats] if stats else []), warnings)
    return stats


def main(argv: list[str] | None = None) -> int:
    """CLI entry; `summary OUT.jsonl` prints the summary of an existing output."""
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    secrets: tuple[str, ...] = ()
    try:
        if argv[:1] == ["summary"]:
            p = argparse.ArgumentParser(prog="python -m interleave.rephrase summary")
            p.add_argument("out")
            p.add_argument("--top", type=int, default=20)
            ns = p.parse_args(argv[1:])
            print(format_summary(summarize(ns.out, ns.top)))
            return 0
        args = _parser().parse_args(argv)
        if args.backend == "openai" and args.api_key_env:
            secrets = (os.environ.get(args.api_key_env, ""),)
        build(args)
        print(format_summary(summarize(args.out)))
        return 0
    except InterleaveError as err:
        print(f"error: {redact(str(err), secrets)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
