"""Tell the user where a run's logs and checkpoints are, and how big the checkpoints are."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only


class RunSummary(L.Callback):
    """Prints the log folder when fit starts and the checkpoint files when it ends."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        log_dir = trainer.log_dir  # a collective under DDP: every rank must ask, rank 0 prints
        if log_dir and trainer.is_global_zero:
            print(f"[interleave] logs: {log_dir}  (view: tensorboard --logdir {Path(log_dir).parent})")

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for callback in trainer.callbacks:
            if isinstance(callback, ModelCheckpoint):
                for path in dict.fromkeys(p for p in (callback.best_model_path, callback.last_model_path) if p):
                    size = Path(path).stat().st_size / 2**20 if Path(path).exists() else float("nan")
                    print(f"[interleave] checkpoint: {path} ({size:.1f} MiB)")
