"""An evaluated point of `ShardEvaluation`: its types (`EvaluatedPoint`, the `CheckpointPoint` of a
checkpoint evaluated on its own, the `Loaded` checkpoint), the epochs a checkpoint's weights were
trained, its files (`write_point`: predictions/epoch=NN.jsonl and its metrics file), and the model as an
evaluation asks it (`evaluating`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch

from interleave.eval.evaluate import Evaluated
from interleave.eval.predictions import CKPT_PATH, ROW_COUNT, Prediction
from interleave.files import write_text_atomic


class Loaded(NamedTuple):
    """A checkpoint loaded outside a fit (`validate --ckpt_path`): the epochs its weights were
    trained (`trained_epochs`) and its step, each None when it does not say."""

    epochs: int | None = None
    global_step: int | None = None


@dataclass(frozen=True)
class CheckpointPoint:
    """What the metrics file says of a checkpoint evaluated on its own (`validate --ckpt_path X`)."""

    ckpt_path: str
    ckpt_global_step: int | None
    seed_epoch: int

    def header(self) -> dict[str, Any]:
        return {CKPT_PATH: self.ckpt_path, "ckpt_global_step": self.ckpt_global_step, "seed_epoch": self.seed_epoch}


@dataclass(frozen=True)
class EvaluatedPoint:
    """One evaluated point of a run: its epoch (the training epochs done), the step it was
    measured at, every prediction row and tagged metric (`interleave.eval.evaluate.Evaluated`), and
    for a checkpoint evaluated on its own, which one."""

    epoch: int
    global_step: int
    evaluated: Evaluated
    checkpoint: CheckpointPoint | None = None
    bench_rows: list[Any] = field(default_factory=list)  # the benchmarks' rows (`callbacks.benchmarks`)
    retention: dict[str, Any] = field(
        default_factory=dict
    )  # the metrics file's `retention` entry (`callbacks.retention`)

    @property
    def metrics(self) -> dict[str, float]:
        return self.evaluated.metrics

    @property
    def rows(self) -> list[Prediction]:
        return self.evaluated.rows


def trained_epochs(checkpoint: dict[str, Any]) -> int | None:
    """The training epochs a Lightning checkpoint's weights completed, as a fit numbers its points:
    Lightning's `epoch` (the epochs completed when it was saved), plus the epoch under way when it
    was saved after that epoch's last batch (ModelCheckpoint at an epoch's end); None when it does
    not say."""
    epoch = checkpoint.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        return None
    fit = (checkpoint.get("loops") or {}).get("fit_loop") or {}
    progress = (fit.get("epoch_progress") or {}).get("current") or {}
    under_way = progress.get("started", 0) > progress.get("completed", epoch)
    return epoch + 1 if under_way and (fit.get("epoch_loop.batch_progress") or {}).get("is_last_batch") else epoch


def write_point(folder: Path, epoch: int, evaluated: Evaluated, header: dict[str, Any]) -> Path:
    """One evaluated point's files: `epoch=NN.jsonl` (every prediction row) and `epoch=NN.metrics.json`
    (`header`, how many rows the predictions file holds (`ROW_COUNT`), then every metric, flat and
    sorted); returns their common stem."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"epoch={epoch:02d}"
    write_text_atomic(Path(f"{stem}.jsonl"), "".join(row.to_json() + "\n" for row in evaluated.rows))
    write_text_atomic(
        Path(f"{stem}.metrics.json"),
        json.dumps({**header, ROW_COUNT: len(evaluated.rows), **evaluated.metrics}, indent=2, sort_keys=True) + "\n",
    )
    return stem


@contextmanager
def evaluating(trainer: L.Trainer, pl_module: L.LightningModule) -> Iterator[None]:
    """The model as an evaluation asks it: eval mode, no gradients, the trainer's precision; every
    module's own mode back afterwards (a frozen encoder stays in eval mode during training)."""
    modes = {module: module.training for module in pl_module.modules()}
    pl_module.eval()
    try:
        with torch.no_grad(), trainer.precision_plugin.val_step_context():
            yield
    finally:
        for module, training in modes.items():
            module.train(training)
