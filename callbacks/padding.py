"""How much of each training epoch's batches is padding: the cost length grouping removes."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch


class PaddingFraction(L.Callback):
    """Logs `train/padding_fraction`: padding tokens / all token positions of the epoch's batches."""

    def __init__(self) -> None:
        self.padding = 0
        self.total = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.padding = self.total = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        mask = batch["attention_mask"]
        self.padding += int((mask == 0).sum())
        self.total += mask.numel()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        counts = torch.tensor([self.padding, self.total], dtype=torch.float64, device=pl_module.device)
        counts = trainer.strategy.reduce(counts, reduce_op="sum")  # every rank's batches
        if counts[1] > 0:
            pl_module.log("train/padding_fraction", float(counts[0] / counts[1]))
