"""Check a record file before a long job: `interleave data check FILE [--decode] [--max-length N]`.

Lists every problem with file:line and the reason (malformed JSON, missing fields, wrong
placeholder count, missing audio, unreadable audio with `--decode`, too long for `--max-length`
with the tokenizer of `--tokenizer`), notes the records whose placeholder splits a token, prints
counts, and exits 1 if any record is bad (2 if the file or tokenizer cannot be read).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from interleave import NUM_AUDIO_TOKENS
from interleave.collate import Collator
from interleave.data import load_checked
from interleave.errors import report_errors
from interleave.llm import load_tokenizer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interleave data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser("check", help="list every problem of a record file (JSONL or OpenAQA JSON)")
    command.add_argument("file", type=Path)
    command.add_argument("--audio-root", type=Path, default=None, help="folder relative audio paths start from (default: the file's folder)")
    command.add_argument("--decode", action="store_true", help="also decode every audio file")
    command.add_argument("--tokenizer", default="builtin:smollm2-135m-instruct", help="LLM spec whose tokenizer measures lengths; 'none' skips the length check")
    command.add_argument("--max-length", type=int, default=512)
    command.add_argument("--audio-tokens", type=int, default=NUM_AUDIO_TOKENS, help="audio positions per clip, as the model's model.audio_tokens (default %(default)s, LTU's)")
    args = parser.parse_args(argv)
    return report_errors(lambda: check(args))


def check(args: argparse.Namespace) -> int:
    """Check one record file as `main`'s arguments say; print the problems and counts; 1 if any is bad."""
    collator = None
    if args.tokenizer != "none":
        collator = Collator(load_tokenizer(args.tokenizer), max_length=args.max_length, audio_tokens=args.audio_tokens)
    split: list[str] = []
    records, problems = load_checked(args.file, args.audio_root, collator, args.decode, split)
    for problem in problems:
        print(problem)
    total = len(records) + len(problems)
    reasons = Counter(p.reason.split(":")[0] for p in problems)
    print(f"{args.file}: {total} record(s), {len(records)} good, {len(problems)} bad")
    for reason, count in reasons.most_common():
        print(f"  {count:6d}  {reason}")
    if split:
        print(f"  note: {len(split)} good record(s) have a text token split where [AUDIO] stands "
              f"(the placeholder sits inside a word), e.g. {split[0]}")
    if collator is None:
        print("  (lengths not checked: --tokenizer none)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
