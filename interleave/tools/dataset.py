"""Check a record file before a long job: `interleave data check [--config CONFIG ...] FILE [--decode] [OVERRIDES]`.

Lists every problem with file:line and the reason (malformed JSON, missing fields, wrong
placeholder count, missing audio, unreadable audio with `--decode`, a prompt too long), notes the
records whose placeholder splits a token, prints counts, and exits 0 if every record is good, 1 if
any record is bad, 2 if there is nothing to check: FILE missing, not a regular file (a directory,
a device, a FIFO: one `error:` line, no counts) or holding no records (0 records; a JSON array that
does not parse too), or the config or the tokenizer cannot be read.

A multiple-choice benchmark file (MMAU's format: items with `question` and `choices`) is recognised
by its content and checked as one (`check_benchmark`): every bad item named by index and field; a
file none of whose items has `audio_id` is checked as a text multiple-choice file (issue 39).

With `--config` (several in order, then `train.py` overrides such as `--paths.llm=...`) the file
is checked exactly as that run's set-up checks it (`InterleavedDataModule.check_file`): the run's
template, tokenizer, `data.max_length`, `model.audio_tokens`, and with `--decode` (or the config's
`data.check_audio_decode`) the run's encoder loader and `data.audio_channel`; what it passes, `fit`
accepts. This builds the run's model (its tokenizer and encoder come from it).
Without `--config`: the default template, `--tokenizer`, `--max-length` and `--audio-tokens`, and
`--decode` reads each clip as CAV-MAE's fbank of its first channel (the default model's loader).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from interleave import NUM_AUDIO_TOKENS
from interleave.data.checks import load_checked
from interleave.data.collate import Collator
from interleave.data.records import EMPTY_FILE, NOT_FOUND, Problem, Record, is_json_array, not_a_file
from interleave.encoders.audio import load_fbank
from interleave.errors import InterleaveError, report_errors
from interleave.eval.benchmarks.items import clip_seconds, decode_check, looks_like_benchmark, read_benchmark, read_raw
from interleave.model.llm import load_tokenizer

DEFAULT_TOKENIZER = "builtin:smollm2-135m-instruct"
DEFAULT_MAX_LENGTH = 512


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interleave data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser(
        "check",
        help="list every problem of a record file (JSONL or OpenAQA JSON)",
        description="Check FILE as the run of --config checks it (its template, tokenizer, max_length, "
        "audio_tokens, encoder loader and channel; further arguments are train.py overrides), "
        "or, without --config, with the defaults below.",
    )
    command.add_argument("file", type=Path)
    command.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="CONFIG",
        help="a run's config (repeatable, as train.py's); the file is checked as that run's set-up checks it",
    )
    command.add_argument(
        "--audio-root",
        type=Path,
        default=None,
        help="folder relative audio paths start from (default: the config's data.audio_root, else the file's folder)",
    )
    command.add_argument("--decode", action="store_true", help="also decode every audio file with the encoder's loader")
    command.add_argument(
        "--tokenizer",
        default=None,
        help=f"without --config: LLM spec whose tokenizer measures lengths; 'none' skips the length check "
        f"(default {DEFAULT_TOKENIZER})",
    )
    command.add_argument(
        "--max-length", type=int, default=None, help=f"without --config: data.max_length (default {DEFAULT_MAX_LENGTH})"
    )
    command.add_argument(
        "--audio-tokens",
        type=int,
        default=None,
        help=f"without --config: audio positions per clip, as model.audio_tokens (default {NUM_AUDIO_TOKENS}, LTU's)",
    )
    args, overrides = command_args(parser, argv)
    args.overrides = overrides
    return report_errors(lambda: check(args), what="interleave data check", kept=lambda: index_kept(args))


def command_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The parsed arguments, and the rest (train.py overrides), which only `--config` may take."""
    args, rest = parser.parse_known_args(argv)
    if rest and not args.config:
        parser.error(f"unrecognized arguments: {' '.join(rest)} (train.py overrides go with --config)")
    if args.config and any(v is not None for v in (args.tokenizer, args.max_length, args.audio_tokens)):
        parser.error(
            "with --config the run's tokenizer, max_length and audio_tokens are used; "
            "override them as train.py does (--data.max_length=N, --model.audio_tokens=N)"
        )
    return args, rest


def check(args: argparse.Namespace) -> int:
    """Check one record file as `main`'s arguments say; print the problems and counts; 1 if any
    record is bad, 2 if the file holds none or does not parse as a JSON array (a missing or
    unreadable file raises, before any work)."""
    readable(args.file)
    if looks_like_benchmark(args.file):
        return check_benchmark(args)
    split: list[str] = []
    if args.config:
        records, problems = checked_as_run(args, split)
        lengths = True
    else:
        tokenizer = args.tokenizer or DEFAULT_TOKENIZER
        lengths = tokenizer != "none"
        collator = (
            None
            if not lengths
            else Collator(
                load_tokenizer(tokenizer),
                max_length=args.max_length or DEFAULT_MAX_LENGTH,
                audio_tokens=args.audio_tokens or NUM_AUDIO_TOKENS,
            )
        )
        load = (lambda path: load_fbank(path, "first")) if args.decode else None
        records, problems = load_checked(args.file, args.audio_root, collator, load, split)
    unreadable = [p for p in problems if p.reason.startswith("cannot read file")]
    if unreadable:  # gone or changed since `readable`: no record to count
        raise InterleaveError(str(unreadable[0]))
    for problem in problems:
        print(problem)
    with open(args.file, "rb") as handle:
        array = is_json_array(args.file, handle.read(4096))
    # The file's own problems (no records in it; a JSON array that does not parse) are no bad records:
    # an array's records are named FILE[i], anything else about an array is about the whole file.
    whole = [p for p in problems if p.reason == EMPTY_FILE or (array and not p.where.startswith(f"{args.file}["))]
    bad = [p for p in problems if p not in whole]
    reasons = Counter(p.reason.split(":")[0] for p in bad)
    print(f"{args.file}: {len(records) + len(bad)} record(s), {len(records)} good, {len(bad)} bad")
    for reason, count in reasons.most_common():
        print(f"  {count:6d}  {reason}")
    if split:
        print(
            f"  note: {len(split)} good record(s) have a text token split where [AUDIO] stands "
            f"(the placeholder sits inside a word), e.g. {split[0]}"
        )
    if not lengths:
        print("  (lengths not checked: --tokenizer none)")
    return 2 if whole else 1 if bad else 0


def check_benchmark(args: argparse.Namespace) -> int:
    """A multiple-choice benchmark file (MMAU's format, recognised by its content): every bad item
    named by index and field, then counts; 1 if any item is bad. Clips are found from `--audio-root`,
    else the config's benchmark entry for this file, else the file's folder, and each is decoded: its
    first 0.1 s, or with `--decode` whole by the encoder loader (the run's, with `--config`).
    With `--config`, clips longer than its encoder hears are counted."""
    root, load, heard = args.audio_root, decode_check(), None
    if args.decode:
        load = lambda path: load_fbank(path, "first")  # noqa: E731
    if args.config:
        from interleave.cli import build_run  # the whole training stack: only for --config

        run = build_run([arg for config in args.config for arg in ("--config", config)] + args.overrides)
        heard = run.model.audio_encoder.heard_seconds
        channel = run.datamodule.audio_channel
        load = (
            (lambda path: run.model.data_spec().audio_loader(path, channel)) if args.decode else decode_check(channel)
        )
        if root is None:
            root = benchmark_root(run.trainer, args.file)
    text = not any(isinstance(v, dict) and "audio_id" in v for v in read_raw(args.file))  # text multiple choice
    bench = read_benchmark(args.file, root, load, text=text)
    for problem in bench.problems:
        print(problem.describe(args.file))
    total = len(bench.items) + bench.bad_items
    kind = "text multiple-choice file (no audio_id)" if text else "benchmark"
    print(f"{args.file}: {kind}, {total} item(s), {len(bench.items)} good, {bench.bad_items} bad")
    for reason, count in Counter(
        f"{p.field}: {p.reason.split(':')[0].split(' (')[0]}" for p in bench.problems
    ).most_common():
        print(f"  {count:6d}  {reason}")
    if heard is not None:
        long = sum(clip_seconds(c) > heard for item in bench.items for c in item.clips)
        if long:
            print(
                f"  note: {long} clip(s) longer than the {heard:.2f} s the encoder hears: their first seconds are heard"
            )
    return 1 if bench.problems else 0


def benchmark_root(trainer: object, file: Path) -> str | None:
    """The `audio_root` of the run's benchmark entry for `file` (None: none names it)."""
    for callback in getattr(trainer, "callbacks", []):
        for loaded in getattr(getattr(callback, "benchmarks", None), "configs", []):
            if Path(loaded.file).resolve() == file.resolve():
                return loaded.audio_root
    return None


def readable(file: Path) -> None:
    """Raise a one-line error unless `file` is a regular file this process can open (looked at
    first, so a FIFO or a device is never opened)."""
    kind = not_a_file(file)
    if kind is not None:
        raise InterleaveError(f"{file}: no such file" if kind == NOT_FOUND else f"{file}: {kind}, not a record file")
    try:
        open(file, "rb").close()
    except OSError as err:
        raise InterleaveError(f"{file}: cannot be read ({err.strerror or err})") from None


def checked_as_run(args: argparse.Namespace, split: list[str]) -> tuple[Sequence[Record], list[Problem]]:
    """(good records, problems) of the file as the run of `args.config` sees it at set-up."""
    from interleave.cli import build_run  # the whole training stack: only for --config

    run = build_run([arg for config in args.config for arg in ("--config", config)] + args.overrides)
    args.datamodule = run.datamodule  # an interrupt names its record index (index_kept)
    return run.datamodule.check_file(args.file, decode=args.decode or None, audio_root=args.audio_root, split=split)


def index_kept(args: argparse.Namespace) -> str:
    """What an interrupted check keeps: the file's record index, if built (it is written whole or not at all)."""
    datamodule = getattr(args, "datamodule", None)
    if datamodule is None:
        return "nothing was written" + ("" if args.config else " (without --config a check writes no file)")
    from interleave.data.record_index import index_path

    root = datamodule.audio_root_of(args.file) if args.audio_root is None else args.audio_root
    path = index_path(args.file, datamodule.collator(root), datamodule.hparams.get("index_dir"))
    if path.is_file():
        return f"the record index {path} is kept (later checks and runs reuse it)"
    return "no record index was written (it is written whole or not at all)"


if __name__ == "__main__":
    sys.exit(main())
