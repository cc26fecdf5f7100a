"""Build the paper's interleaved fine-tuning set (Appendix B) from LTU's OpenAQA JSON, resumably.

    interleave rephrase --input openaqa_5.6M.json --out ft40k.jsonl --size 40000 \\
        --backend openai --base-url https://api.openai.com/v1 --model gpt-4.1-mini
    interleave rephrase summary ft40k.jsonl

The input (a JSON array of several GB, or JSONL) is streamed twice, never loaded whole
(`interleave.tools.rephrase.openaqa`): the first pass counts the eligible records per source (`SOURCES`),
the second keeps a seeded bottom-k sample per source (a reservoir: memory bounded by --size) with
the input's task mix; a source with no eligible record is warned about on stderr and in the
summary (its names may be wrong). Each instruction is
rewritten by a backend (interleave.tools.rephrase.rewriters) and validated; every record ends in OUT or in
OUT.rejects.jsonl with its reason. Lines are appended and flushed one by one, so a rerun after a
crash skips what is done and a torn last line is cut off.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from interleave.errors import InterleaveError, report_errors
from interleave.files import write_text_atomic
from interleave.progress import DEFAULT_INTERVAL, Progress
from interleave.tools.rephrase.openaqa import SOURCES, Item, empty_source_warnings, load_sources, select
from interleave.tools.rephrase.rewriters import MEDIA_WORDS, RewriteFailed, Rewriter, make_rewriter, redact, validate

log = logging.getLogger("interleave.rephrase")

CLOSED_PREFIX = "Closed-ended question: "
FSYNC_EVERY = 64  # records; flush() after every record already survives kill -9


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
                "id": item.id,
                "audio": record.audio,
                "instruction": instruction,
                "input": record.input,
                "output": record.output,
                "task": record.task,
                "dataset": record.dataset,
                "original_instruction": original,
            }
            return True, row
        reasons.append(reason)
    row = {
        "id": item.id,
        "audio": record.audio,
        "task": record.task,
        "dataset": record.dataset,
        "original_instruction": original,
        "reason": reasons[-1],
        "attempts": reasons,
        "last_candidate": redact(candidate, settings.secrets),
        "where": item.where,
    }
    return False, row


def run(
    items: list[Item],
    rewriter: Rewriter,
    out: Path,
    settings: Settings,
    retry_rejects: bool = False,
    progress_every: float = DEFAULT_INTERVAL,
) -> dict:
    """Rewrite every item not yet in OUT (or its rejects), appending as results come in; progress
    (records done of all selected, those of earlier runs included, rejects, records/s, time left) goes
    to stderr: a bar on a terminal, else a line every `progress_every` seconds (`interleave.progress`)."""
    done = {row.get("id") for row in iter_done(out)}
    rejected = {row.get("id") for row in iter_done(rejects_path(out))}
    skip = done if retry_rejects else done | rejected
    todo = [item for item in items if item.id not in skip]
    log.info("%d selected, %d already done, %d to rewrite", len(items), len(items) - len(todo), len(todo))
    good, bad = Appender(out), Appender(rejects_path(out))
    written = Counter()
    started = time.monotonic()
    progress = Progress(
        len(items), "records", "[interleave] rephrase", initial=len(items) - len(todo), interval=progress_every
    )
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
                progress.update(1, rejected=written["rejected"])
    except BaseException:  # an error, Ctrl-C: where it stopped
        progress.close(stopped=True)
        raise
    finally:
        progress.close()
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
    lines.append(
        f"distinct prompts: {summary['distinct_prompts']} / {summary['records']} ({summary['distinct_ratio']:.1%})"
    )
    if summary["records_per_second"] is not None:
        lines.append(f"throughput: {summary['records_per_second']} records/s")
    lines.append(f"most frequent prompts (top {len(summary['top_prompts'])}):")
    lines += [f"  {n:6d}  {prompt}" for prompt, n in summary["top_prompts"]]
    lines += [f"warning: {w}" for w in summary.get("warnings", [])]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="interleave rephrase", description=__doc__.split("\n\n")[0])
    p.add_argument("--input", required=True, help="OpenAQA JSON array or JSONL")
    p.add_argument("--out", required=True, help="output JSONL (rejects go to OUT.rejects.jsonl)")
    p.add_argument("--size", type=int, required=True, help="number of records to select")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("openai", "local", "template"), default="template")
    p.add_argument("--sources", help="JSON table kind -> {tasks, datasets} replacing the paper's sources")
    p.add_argument("--base-url", default="https://api.openai.com/v1")
    p.add_argument("--model", help="chat model (openai) or interleave.model.llm spec (local)")
    p.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key ('' for none)"
    )
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
    meta = {"selection": selection, "backend": backend, "runs": runs, "warnings": list(warnings)}
    write_text_atomic(meta_path(out), json.dumps(meta, indent=1))


def build(args: argparse.Namespace) -> dict:
    """Select, rewrite and summarise, as the CLI asks."""
    if args.size < 1 or args.concurrency < 1 or args.max_attempts < 1:
        raise InterleaveError("--size, --concurrency and --max-attempts must be at least 1")
    sources = load_sources(args.sources) if args.sources else SOURCES
    out = Path(args.out)
    selection = {
        "input": str(Path(args.input).resolve()),
        "size": args.size,
        "seed": args.seed,
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
        args.backend,
        model=args.model,
        base_url=args.base_url,
        api_key=api_key,
        timeout=args.timeout,
        max_retries=args.max_retries,
        backoff_base=args.backoff_base,
        backoff_max=args.backoff_max,
        json_mode=not args.no_json_mode,
        media_words=media,
    )
    settings = Settings(
        seed=args.seed,
        max_attempts=args.max_attempts,
        concurrency=args.concurrency if args.backend == "openai" else 1,
        media_words=media,
        keep_closed_prefix=not args.drop_closed_prefix,
        secrets=(api_key,),
    )
    backend_info = {
        "backend": args.backend,
        "model": args.model,
        "base_url": args.base_url if args.backend == "openai" else None,
        "api_key_env": args.api_key_env if args.backend == "openai" else None,
    }
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
    if argv[:1] == ["summary"]:
        p = argparse.ArgumentParser(prog="interleave rephrase summary")
        p.add_argument("out")
        p.add_argument("--top", type=int, default=20)
        ns = p.parse_args(argv[1:])
        return report_errors(lambda: print(format_summary(summarize(ns.out, ns.top))))
    args = _parser().parse_args(argv)
    secrets = (os.environ.get(args.api_key_env, ""),) if args.backend == "openai" and args.api_key_env else ()

    def rephrase() -> None:
        build(args)
        print(format_summary(summarize(args.out)))

    kept = (
        f"every record rewritten so far is kept in {args.out} or {rejects_path(args.out)}; "
        "rerun the same command to resume after them"
    )
    return report_errors(
        rephrase, redact=lambda message: redact(message, secrets), what="interleave rephrase", kept=kept
    )


if __name__ == "__main__":
    sys.exit(main())
