"""Write what `train.py predict` generates to a JSONL file the user can read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter


class WritePredictions(BasePredictionWriter):
    """Appends one JSON line per record ({"id", "generated", "reference"}) as each batch finishes.

    `path` defaults to `predictions.jsonl` in the run's log folder (or `default_root_dir` without
    a logger). Each rank writes its own file (`.rankN` suffix) under DDP.
    """

    def __init__(self, path: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.path = path
        self._file: Path | None = None
        self._count = 0

    def _target(self, trainer: L.Trainer) -> Path:
        base = Path(self.path) if self.path else Path(trainer.log_dir or trainer.default_root_dir) / "predictions.jsonl"
        return base if trainer.world_size == 1 else base.with_name(f"{base.name}.rank{trainer.global_rank}")

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._file = self._target(trainer)
        self._file.parent.mkdir(parents=True, exist_ok=True)
        self._file.write_text("", encoding="utf-8")
        self._count = 0

    def write_on_batch_end(
        self,
        trainer,
        pl_module,
        prediction: list[dict[str, Any]],
        batch_indices,
        batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        with self._file.open("a", encoding="utf-8") as handle:
            for row in prediction:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._count += len(prediction)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        print(f"[interleave] predictions: {self._file} ({self._count} records)")
