"""The SHARD command line: ``interleave shard {wordnet,lexicon,build} ...`` (or ``python -m interleave.shard``).

interleave shard wordnet --from /usr/share/wordnet --out DIR
interleave shard lexicon (--words FILE | --labels CSV) --out LEXICON [--wordnet DIR] [--overrides JSON] [--stoplist FILE]
interleave shard build --labels CSV --clips INDEX --out FILE [--lexicon FILE | --wordnet [DIR]] ...
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError, report_errors
from interleave.shard.build import build_shard
from interleave.shard.clips import read_labels
from interleave.shard.lexicon import build_lexicon
from interleave.shard.lexicon_file import (
    lexicon_meta,
    read_overrides,
    read_stoplist,
    write_lexicon,
)
from interleave.shard.rules import DEFAULT_STOPLIST, lexicon_counts, resolve_conflicts
from interleave.shard.wordnet import find_wordnet, open_wordnet, prepare_wordnet


def _print_summary(report: Mapping[str, Any]) -> None:
    counts = report["counts"]
    print(
        f"[interleave] SHARD: {counts['words_included']} words ({counts['words_skipped']} skipped), "
        f"{counts['queries']} queries, {counts['clips_multi_label']} multi-label, "
        f"{counts['clips_missing_audio']} missing and {counts['clips_unreadable_audio']} unreadable clips left out "
        f"-> {report['shard']}",
        file=sys.stderr,
    )
    for clip in report["unreadable_audio"]:
        print(f"  unreadable {clip['audio']} ({clip['label']}): {clip['reason']}", file=sys.stderr)
    for word in report["words"]:
        if word["status"] == "skipped":
            print(f"  skipped {word['label']!r}: {word['reason']}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``interleave shard {wordnet,lexicon,build} ...``."""
    parser = argparse.ArgumentParser(prog="interleave shard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("wordnet", help="lay a WordNet database (e.g. Debian's) out as an nltk data folder")
    prep.add_argument(
        "--from", dest="source", type=Path, required=True, help="WordNet database folder, e.g. /usr/share/wordnet"
    )
    prep.add_argument("--out", type=Path, required=True, help="nltk data folder to write (gets corpora/wordnet/)")

    lex = sub.add_parser(
        "lexicon",
        help="write the lexicon (sense, synonyms, hypernyms, related lemmas) of a word list or of every label",
    )
    words = lex.add_mutually_exclusive_group(required=True)
    words.add_argument("--words", type=Path, help="AudioSet display names, one per line")
    words.add_argument(
        "--labels",
        type=Path,
        help="AudioSet class_labels_indices.csv: every label, each entered or skipped with its reason",
    )
    lex.add_argument("--out", type=Path, required=True)
    lex.add_argument(
        "--wordnet", type=Path, default=None, help="WordNet folder (default: $NLTK_DATA or nltk's data paths)"
    )

    build = sub.add_parser("build", help="build a SHARD file from AudioSet labels, clips and WordNet")
    build.add_argument("--labels", type=Path, required=True, help="AudioSet class_labels_indices.csv")
    build.add_argument(
        "--clips", type=Path, required=True, help="clip index: {label: [audio]} JSON or JSONL {audio, labels}"
    )
    build.add_argument("--out", type=Path, required=True, help="SHARD file to write (the report goes beside it)")
    build.add_argument(
        "--lexicon", type=Path, default=None, help="a stored lexicon (default: the shipped AudioSet lexicon)"
    )
    build.add_argument(
        "--wordnet",
        type=Path,
        nargs="?",
        const=Path(""),
        default=None,
        help="derive the lexicon afresh from WordNet in DIR (no DIR: $NLTK_DATA or nltk's data paths)",
    )
    build.add_argument(
        "--words", type=Path, default=None, help="display names, one per line (default: every label with clips)"
    )
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--clips-per-word", type=int, default=4)
    build.add_argument(
        "--pairs",
        type=int,
        default=0,
        metavar="N",
        help="add the pair task: N two-clip queries of one word (yes) and N of unrelated words (no)",
    )
    build.add_argument("--lexicon-out", type=Path, default=None, help="also write the lexicon used")
    for command in (lex, build):
        command.add_argument(
            "--stoplist",
            type=Path,
            default=None,
            help="hypernyms never asked about, one per line (default: the built-in list, see README)",
        )
        command.add_argument("--overrides", type=Path, default=None, help="curated override JSON {label: {...}}")
        command.add_argument("--synonyms", type=int, default=2, help="synonyms per word (default 2)")
        command.add_argument("--hypernyms", type=int, default=2, help="hypernyms per word (default 2)")
    args = parser.parse_args(argv)
    return report_errors(lambda: _COMMANDS[args.command](args))


def _wordnet_command(args: argparse.Namespace) -> None:
    out = prepare_wordnet(args.source, args.out)
    print(f"wrote {out}; use --wordnet {args.out} or NLTK_DATA={args.out}")


def _build_command(args: argparse.Namespace) -> None:
    report = build_shard(
        args.labels, args.clips, args.out, wordnet=args.wordnet, lexicon=args.lexicon, words=args.words,
        overrides=args.overrides, seed=args.seed, clips_per_word=args.clips_per_word,
        n_synonyms=args.synonyms, n_hypernyms=args.hypernyms, lexicon_out=args.lexicon_out,
        stoplist=read_stoplist(args.stoplist) if args.stoplist else None, pairs=args.pairs,
    )  # fmt: skip
    _print_summary(report)


def _lexicon_command(args: argparse.Namespace) -> None:
    if args.labels is not None:
        labels = list(dict.fromkeys(read_labels(args.labels).values()))
    else:
        try:
            lines = [line.strip() for line in args.words.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError) as err:
            raise InterleaveError(f"cannot read word list {args.words}: {err}") from err
        labels = list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))
    wn = open_wordnet(args.wordnet if args.wordnet is not None else find_wordnet())
    curated = read_overrides(args.overrides) if args.overrides is not None else {}
    stoplist = read_stoplist(args.stoplist) if args.stoplist else DEFAULT_STOPLIST
    entries, skipped = build_lexicon(
        wn, labels, curated, n_synonyms=args.synonyms, n_hypernyms=args.hypernyms, stoplist=stoplist
    )
    entries, conflicts = resolve_conflicts(entries)
    skipped = sorted([*skipped, *conflicts], key=lambda s: labels.index(s.label))
    write_lexicon(entries, args.out, lexicon_meta(wn, args.synonyms, args.hypernyms, curated, stoplist), skipped)
    counts = lexicon_counts(entries, skipped)
    groups = ", ".join(f"{n} {g}" for g, n in counts["per_group"].items())
    print(
        f"[interleave] lexicon: {len(entries)} of {len(labels)} labels qualify ({groups}) -> {args.out}",
        file=sys.stderr,
    )
    for kind, n in counts["skipped_per_reason"].items():
        print(f"  {n} skipped: {kind}", file=sys.stderr)
    for item in skipped:
        print(f"  skipped {item.label!r}: {item.reason}", file=sys.stderr)


_COMMANDS = {"wordnet": _wordnet_command, "lexicon": _lexicon_command, "build": _build_command}


if __name__ == "__main__":
    sys.exit(main())
