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
command) turns an expected, user-facing error into one `error:` line and exit status 2, also one
that jsonargparse raises wrapped (a `data.train_files` refused while the data module is built).
Every config file is read strictly (`interleave.config_paths.install_yaml_check`: malformed YAML
or a key given twice is one line naming the file, line and column). A command-line or config
mistake jsonargparse finds is one line too, naming the command's `--help` (`OneLineParser`)
instead of printing the whole usage. Ctrl-C is one line and exit status 130: Lightning stops `fit`
itself (it tears the trainer down, then exits 1, saving nothing); `main` says instead whether a
checkpoint is kept (the newest one this run saved) and how to resume from it.
"""

from __future__ import annotations

import logging
import re
import signal
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonargparse import set_parsing_settings
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from callbacks.reliability import PreemptionCheckpoint, ResumeRandomState, install_safe_checkpoint_io
from interleave.checkpoints import load_weights
from interleave.config_paths import PARSER_MODE, add_paths_argument, install_yaml_check
from interleave.data.module import InterleavedDataModule
from interleave.errors import INPUT, report_errors, running_command
from interleave.model.module import AudioLLM

SUBCOMMANDS = ("fit", "validate", "test", "predict")
_RUNNING: list[Trainer] = []  # the trainer of the run `main` started, once built: what an interrupt kept


class OneLineParser(LightningArgumentParser):
    """train.py's parser (and each subcommand's): a mistake on the command line or in a config is one
    `error:` line naming the command's `--help`, not the whole usage (about 76 lines) first."""

    def error(self, message: str, ex: Exception | None = None) -> None:
        from jsonargparse._common import debug_mode_active

        if not self.exit_on_error or debug_mode_active():
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        running = running_command()
        if running is None:  # cli() called as it is
            hint = f"`python {parser.prog} --help` lists the options"
        elif running.startswith("python train.py"):
            hint = f"`{running} --help` lists the options"
        else:  # a tool building a run (build_run): its own options, then the config's
            hint = f"`{running} --help` lists its options, `python train.py fit --help` a config's"
        text = ""
        for line in (line.strip() for line in str(message).splitlines() if line.strip()):
            text += (" " if text.endswith(":") else "; ") + line if text else line
        sys.stderr.write(f"error: {bad_value(text) or text} ({hint})\n")
        sys.exit(INPUT)


def bad_value(text: str) -> str | None:
    """jsonargparse's account of a value of the wrong type (`Parser key "data": Does not validate
    against any of the Union subtypes; ... Problem with given class_path '...': Parser key
    "batch_size": Expected a <class 'int'>. Got value: x; ...`) as `data.init_args.batch_size
    (interleave.data.InterleavedDataModule): expected int, got 'x'`; None for any other message."""
    keys = re.findall(r'Parser key "([^"]+)"', text)
    if not keys:
        return None
    start = text.rfind(f'Parser key "{keys[-1]}"')
    inner = text[start:]
    given = re.search(r"NestedArg\(key='" + re.escape(keys[-1]) + r"', val='([^']*)'\)", text)
    value = re.search(r"(?:Got value|Given value): (.+?)(?=; |$)", inner)
    types = re.findall(r"Expected a <class '([^']+)'>", inner[: value.start()] if value else "")
    if value is None or not types:
        return None
    owner = re.findall(r"Problem with given class_path '([^']+)'", text[:start])
    where = keys[-1] if len(keys) == 1 else f"{keys[0]}.init_args.{keys[-1]}"
    names = dict.fromkeys("null" if t == "NoneType" else t.rsplit(".", 1)[-1] for t in types)
    return (
        f"{where}{f' ({owner[-1]})' if owner else ''}: expected {' or '.join(names)}, "
        f"got {given.group(1) if given else value.group(1)!r}"
    )


# What `train.py fit|validate|...` saves in a run's config.yaml beside the run itself (the subcommand's own
# arguments): a tool building the run from that file (`build_run`) accepts them and leaves them unused.
SUBCOMMAND_KEYS = ("optimizer", "lr_scheduler", "ckpt_path", "weights_only")


class InterleaveCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        add_paths_argument(parser)  # `paths:`, merged over every --config (interleave.config_paths)

    def setup_parser(
        self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: dict[str, Any]
    ) -> None:
        """Without a subcommand (the tools' `build_run`), a run's saved config.yaml still parses: its
        subcommand keys are accepted and not used."""
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        if not add_subcommands:
            known = {action.dest for action in self.parser._actions}
            for key in SUBCOMMAND_KEYS:
                if key not in known:
                    self.parser.add_argument(
                        f"--{key}",
                        type=Any,
                        default=None,
                        help="a subcommand's argument (a saved config.yaml holds it): not used here",
                    )

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
        _RUNNING.append(trainer)
        install_safe_checkpoint_io(trainer)
        for kind in (PreemptionCheckpoint, ResumeRandomState):
            if not any(isinstance(c, kind) for c in trainer.callbacks):
                trainer.callbacks.append(kind())
        return trainer


def cli(args: list[str] | None = None, run: bool = True, prog: str | None = None) -> LightningCLI:
    """Build (and by default run) the CLI; tests use the returned object to inspect the run. `prog`
    names the command in its usage line (default: the script, `train.py`)."""
    # "omegaconf+" resolves `${paths.x}` after every source is merged, so `--paths.x=...` on the
    # command line reaches the values that interpolate it; configs write absolute `${paths.x}`.
    set_parsing_settings(omegaconf_absolute_to_relative_paths=True)
    install_yaml_check(PARSER_MODE)  # a config's malformed YAML or repeated key: one line naming it
    with warnings.catch_warnings():
        # `interleave cache ...` passes its own arguments while sys.argv holds the command's.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        return InterleaveCLI(
            AudioLLM,
            InterleavedDataModule,
            # A config's `data` may name a subclass (the demo's); a plain block is an InterleavedDataModule,
            # but interpolates `${...}` only under a class_path (jsonargparse), so the shipped configs name it.
            subclass_mode_data=True,
            parser_kwargs={"parser_mode": PARSER_MODE, **({"prog": prog} if prog else {})},
            parser_class=OneLineParser,
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


def build_run(args: Sequence[str], prog: str | None = None) -> Run:
    """The run that `python train.py fit ARGS` would start (`--config CONFIG`, several in order,
    and `--data.x=...` overrides), built exactly as it builds it (the same parsing, defaults,
    interpolation and connection), without running anything; `prog` names the tool in the usage
    line of its `--help` (`interleave cache`)."""
    built = cli(list(args), run=False, prog=prog)
    return Run(built.model, built.datamodule, built.trainer)


def main(args: list[str] | None = None) -> int:
    """`python train.py ...`: run the CLI, with user-facing errors as one line and exit status 2, and
    an interrupt as one line and exit status 130 saying which checkpoint is kept."""
    argv = sys.argv[1:] if args is None else list(args)
    subcommand = next((a for a in argv if a in SUBCOMMANDS), None)
    what = f"python train.py {subcommand}" if subcommand else "python train.py"
    _RUNNING.clear()
    quiet, handler = _LightningInterruptLine(), signal.getsignal(signal.SIGINT)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(quiet)
    try:
        return report_errors(
            lambda: cli(args), what=what, kept=lambda: checkpoint_kept(_RUNNING[-1] if _RUNNING else None)
        )
    finally:
        logging.getLogger("lightning.pytorch.utilities.rank_zero").removeFilter(quiet)
        if handler is not None and signal.getsignal(signal.SIGINT) != handler:
            signal.signal(signal.SIGINT, handler)  # Lightning ignores Ctrl-C while it shuts down, and leaves it so


class _LightningInterruptLine(logging.Filter):
    """Drops Lightning's "Detected KeyboardInterrupt, attempting graceful shutdown ..." (main's line replaces it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Detected KeyboardInterrupt" not in str(record.getMessage())


def checkpoint_kept(trainer: Trainer | None) -> str:
    """What an interrupted run keeps: the newest checkpoint it saved (and how to resume), or none."""
    if trainer is None:
        return "it stopped before the trainer was built; no checkpoint was written"
    stage = getattr(trainer.state.fn, "value", trainer.state.fn)
    if stage is None:
        return "it stopped before the run began; no checkpoint was written"
    where = f"at epoch {trainer.current_epoch}, step {trainer.global_step}"
    if stage != "fit":
        return f"stopped {where}; {stage} writes no checkpoint"
    saved = []
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint):
            saved += [callback.last_model_path, callback.best_model_path, *callback.best_k_models]
        elif isinstance(callback, PreemptionCheckpoint):
            saved.append(callback.saved)
    found = [Path(p) for p in saved if p and Path(p).is_file()]
    if not found:
        return f"stopped {where}; no checkpoint had been saved yet"
    last = {Path(c.last_model_path) for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.last_model_path}
    newest = max(found, key=lambda p: (p.stat().st_mtime_ns, p in last))  # a tie: the `last` one, resumes use it
    return f"stopped {where}; the newest checkpoint is kept: {newest} (resume with --ckpt_path={newest})"


def stray_overrides(overrides: list[str]) -> list[str]:
    """What in `overrides` (the arguments a tool passes on to `build_run`) is no train.py override:
    `--key.name=value`, or `--key.name value`; a tool refuses those by name before building the run."""
    stray, expects_value = [], False
    for arg in overrides:
        if arg.startswith("--") and "." in arg.split("=", 1)[0]:
            expects_value = "=" not in arg
        elif expects_value:
            expects_value = False
        else:
            stray.append(arg)
    return stray
