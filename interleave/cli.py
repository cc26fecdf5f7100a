"""The command line of training and evaluation (`python train.py ...`).

`python train.py fit|validate|test|predict --config ...` is a LightningCLI in omegaconf+ parser
mode: configs interpolate (`${paths.llm}`), interpolations are resolved after the command line is
read (so `--paths.llm=...` reaches them), and any value can be overridden with a dotted flag
(`--model.learning_rate=1e-4`). A `???` left in a config must be set. `data` may name a subclass
of `InterleavedDataModule` (`class_path:`), as the demo's config does.

Every run connects its data module to its model here, once (`InterleaveCLI.instantiate_classes`:
`datamodule.connect(model.data_spec())`); the tools build a run from a config exactly as
`train.py` does through `build_run`.

`report_errors` (from `interleave.errors`, the one handler of every `python -m` and `interleave`
command) turns an expected, user-facing error into one `error:` line and exit status 2.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonargparse import set_parsing_settings
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningCLI

from callbacks.reliability import PreemptionCheckpoint, ResumeRandomState, install_safe_checkpoint_io
from interleave.checkpoints import load_weights
from interleave.config_paths import add_paths_argument
from interleave.data import InterleavedDataModule
from interleave.errors import report_errors
from interleave.model import AudioLLM


class InterleaveCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        add_paths_argument(parser)  # `paths:`, merged over every --config (interleave.config_paths)

    def instantiate_classes(self) -> None:
        """Build the model, data module and trainer, then hand the data module the model's side of
        the contract: the one place where model and data are connected."""
        super().instantiate_classes()
        if self.datamodule is not None:
            self.datamodule.connect(self.model.data_spec())

    def _parse_ckpt_path(self) -> None:
        """Refuse an unsafe or incomplete `--ckpt_path` with a message naming it, before Lightning reads it."""
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and ckpt_path not in ("last", "best", "hpc", "registry") and "://" not in str(ckpt_path):
            load_weights(Path(ckpt_path))
        super()._parse_ckpt_path()

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Every run gets atomic, weights-only checkpoints, a checkpoint on SIGTERM and exact resumes
        (see callbacks.reliability)."""
        trainer = super().instantiate_trainer(**kwargs)
        install_safe_checkpoint_io(trainer)
        for kind in (PreemptionCheckpoint, ResumeRandomState):
            if not any(isinstance(c, kind) for c in trainer.callbacks):
                trainer.callbacks.append(kind())
        return trainer


def cli(args: list[str] | None = None, run: bool = True) -> LightningCLI:
    """Build (and by default run) the CLI; tests use the returned object to inspect the run."""
    # "omegaconf+" resolves `${paths.x}` after every source is merged, so `--paths.x=...` on the
    # command line reaches the values that interpolate it; configs write absolute `${paths.x}`.
    set_parsing_settings(omegaconf_absolute_to_relative_paths=True)
    with warnings.catch_warnings():
        # `interleave cache ...` passes its own arguments while sys.argv holds the command's.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        return InterleaveCLI(
            AudioLLM,
            InterleavedDataModule,
            # A config's `data` may name a subclass (the demo's); a plain block is an InterleavedDataModule,
            # but interpolates `${...}` only under a class_path (jsonargparse), so the shipped configs name it.
            subclass_mode_data=True,
            parser_kwargs={"parser_mode": "omegaconf+"},
            save_config_kwargs={"overwrite": True},
            args=args,
            run=run,
        )


@dataclass(frozen=True)
class Run:
    """A run as a config describes it, built but not started: what the tools work with."""

    model: AudioLLM
    datamodule: InterleavedDataModule  # connected to `model`
    trainer: Trainer  # its callbacks (ShardEvaluation, checkpoints), logger and precision


def build_run(args: Sequence[str]) -> Run:
    """The run that `python train.py fit ARGS` would start (`--config CONFIG`, several in order,
    and `--data.x=...` overrides), built exactly as it builds it (the same parsing, defaults,
    interpolation and connection), without running anything."""
    built = cli(list(args), run=False)
    return Run(built.model, built.datamodule, built.trainer)


def main(args: list[str] | None = None) -> int:
    """`python train.py ...`: run the CLI, with user-facing errors as one line and exit status 2."""
    return report_errors(lambda: cli(args))
