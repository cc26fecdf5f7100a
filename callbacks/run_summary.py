"""Tell the user where a run's logs and checkpoints are, how big the checkpoints are, and what a
mixture of training files draws from each file every epoch."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only

DRAWN = "data/drawn/"  # + a source's name: records drawn from it this epoch (`data.train_files`)


class RunSummary(L.Callback):
    """Prints the log folder when fit starts and the checkpoint files when it ends. With
    `data.train_files`, at each training epoch's start: one line of the records drawn per source,
    logged as `data/drawn/<name>` (every logger, at the epoch's first step) and put in
    `trainer.callback_metrics`, from which the SHARD evaluation's `epoch=NN.metrics.json` takes them
    (the file of epoch NN holds the draws of the epoch just trained, its zero-based epoch NN-1)."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask, rank 0 prints
        if log_dir and trainer.is_global_zero:
            print(f"[interleave] logs: {log_dir}  (view: tensorboard --logdir {Path(log_dir).parent})")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        drawn = getattr(trainer.datamodule, "drawn", None)
        counts = drawn(trainer.current_epoch) if drawn is not None else {}
        if not counts:
            return
        metrics = {f"{DRAWN}{name}": float(count) for name, count in counts.items()}
        trainer.callback_metrics.update({tag: torch.tensor(value) for tag, value in metrics.items()})
        if trainer.is_global_zero:
            listed = ", ".join(f"{count} from {name}" for name, count in counts.items())
            print(f"[interleave] epoch {trainer.current_epoch} draws {sum(counts.values())} records: {listed}")
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for callback in trainer.callbacks:
            if isinstance(callback, ModelCheckpoint):
                for path in dict.fromkeys(p for p in (callback.best_model_path, callback.last_model_path) if p):
                    size = Path(path).stat().st_size / 2**20 if Path(path).exists() else float("nan")
                    print(f"[interleave] checkpoint: {path} ({size:.1f} MiB)")
