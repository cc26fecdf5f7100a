"""The `interleave` command: one entry point for every offline tool (`interleave --help`).

Training and evaluation stay `python train.py fit|validate|test|predict --config ...`.
Each subcommand runs inside `interleave.errors.running("interleave NAME")`: its errors' hints name
`interleave NAME ... --help` (not `interleave --help`), and an interrupt is one line saying what
was kept (each tool says what it keeps: its `report_errors(..., kept=...)`). Exit statuses follow the one rule
of `interleave.errors`: 2 bad input, 130 interrupted, 1 the run itself failed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from interleave.errors import INPUT, interrupted, running

# name -> (module whose `main(argv)` runs it, what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("interleave.tools.dataset", "check a record file before a long job (data check FILE)"),
    "shard": ("interleave.shard.cli", "build the SHARD benchmark (shard wordnet|lexicon|build)"),
    "rephrase": ("interleave.tools.rephrase.cli", "rewrite OpenAQA records into interleaved ones (Appendix B)"),
    "cache": ("interleave.tools.fill_cache", "fill a run's feature cache ahead of time (cache --config CONFIG)"),
    "report": ("interleave.tools.report.cli", "Table 2 from runs' metrics (report RUN_DIR...)"),
    "frontier": (
        "interleave.tools.frontier.cli",
        "gain against retention from a run's start to a checkpoint (frontier --config CONFIG --ckpt CKPT)",
    ),
    "export": ("interleave.tools.export", "a checkpoint as a peft adapter + projector (export CKPT OUT_DIR)"),
    "demo": ("interleave.tools.demo.cli", "write the CPU demo's synthetic data set (demo DIR)"),
    "study": (
        "interleave.tools.study.cli",
        "a study's conditions x seeds as runs, here or on Slurm (study STUDY.yaml)",
    ),
    "playground": (
        "interleave.tools.playground.cli",
        "ask a model about your clips in the browser (playground --config CONFIG)",
    ),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items()]
    return (
        "usage: interleave COMMAND [ARGS...]   (interleave COMMAND --help for its arguments)\n\ncommands:\n"
        + "\n".join(lines)
        + "\n\ntraining and evaluation: python train.py fit|validate|test|predict --config CONFIG\n"
    )


@contextmanager
def help_named() -> Iterator[None]:
    """Inside: an argparse error (a tool's own arguments) ends with the `--help` of the parser that
    refused it (`interleave report --help`, `interleave data check --help`)."""
    plain = argparse.ArgumentParser.error

    def error(parser: argparse.ArgumentParser, message: str) -> None:
        plain(parser, f"{message} (`{parser.prog} --help` lists the options)")

    argparse.ArgumentParser.error = error  # type: ignore[method-assign]
    try:
        yield
    finally:
        argparse.ArgumentParser.error = plain  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{usage()}", end="", file=sys.stderr)
        return INPUT
    with running(f"interleave {name}"), help_named():  # its errors' hints, its interrupt
        try:
            module = importlib.import_module(COMMANDS[name][0])  # only the chosen tool is imported
            return module.main(rest)
        except KeyboardInterrupt:  # before (or outside) the tool's own handler: while it was starting
            return interrupted()


if __name__ == "__main__":  # `python -m interleave.tools.command ...` ran nothing and exited 0 without it
    sys.exit(main())
