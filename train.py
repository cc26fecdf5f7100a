"""Train and evaluate interleaved audio LLMs: `python train.py fit|validate|test|predict --config ...`.

A LightningCLI in omegaconf parser mode, so configs can interpolate (`${...}`) and any value can
be overridden with a dotted flag (`--model.learning_rate=1e-4`).
"""

from __future__ import annotations

import sys

from lightning.pytorch.cli import LightningCLI

from interleave.data import InterleavedDataModule
from interleave.errors import InterleaveError
from interleave.model import AudioLLM


class InterleaveCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # A free-form block where configs gather the paths a user must set, for `${paths.x}`.
        parser.add_argument("--paths", type=dict[str, str], default={}, help="named paths that the config interpolates")


def cli(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and by default run) the CLI; tests use the returned object to inspect the run."""
    return InterleaveCLI(
        AudioLLM,
        InterleavedDataModule,
        parser_kwargs={"parser_mode": "omegaconf"},
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


def main(args: list[str] | None = None) -> int:
    try:
        cli(args)
    except InterleaveError as err:  # expected, user-facing: the message names the input at fault
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
