"""Surviving long jobs: checkpoints that are whole or absent, loaded safely, and saved on SIGTERM.

- `SafeCheckpointIO`: Lightning's own save goes through an fsspec transaction whose temp file may
  sit on another filesystem and is never fsynced; this one writes `NAME.tmp-PID` beside the target,
  fsyncs it and `os.replace()`s it, so a kill mid-save leaves the previous file intact. Loading goes
  through `interleave.checkpoints.load_weights` (weights only; clear refusals).
- `PreemptionCheckpoint`: Lightning 2.6 turns SIGTERM into a clean stop at the next batch boundary
  (`SIGTERMException`, exit code 0) but saves nothing; this callback then writes `last.ckpt`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from interleave.checkpoints import load_weights


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write beside the target, fsync, then rename: a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class SafeCheckpointIO(TorchCheckpointIO):
    """Atomic local saves and weights-only loads with clear refusals (see the module docstring)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("SafeCheckpointIO takes no storage_options")
        if "://" in str(path):  # remote filesystems: Lightning's own transaction-based save
            super().save_checkpoint(checkpoint, path)
            return
        atomic_torch_save(checkpoint, Path(path))

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        if "://" in str(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        return load_weights(Path(path), map_location if map_location is not None else "cpu")


def install_safe_checkpoint_io(trainer: L.Trainer) -> None:
    """Use SafeCheckpointIO unless the config chose a CheckpointIO of its own."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = SafeCheckpointIO()


class PreemptionCheckpoint(L.Callback):
    """On SIGTERM (Lightning stops at the next batch boundary), save `last.ckpt` so the job resumes there.

    The file goes to the first ModelCheckpoint's folder (else `default_root_dir/checkpoints`); resume
    with `--ckpt_path=<that folder>/last.ckpt`.
    """

    def __init__(self, filename: str = "last.ckpt") -> None:
        self.filename = filename
        self.saved: Path | None = None

    def folder(self, trainer: L.Trainer) -> Path:
        for callback in trainer.callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath:
                return Path(callback.dirpath)
        return Path(trainer.default_root_dir) / "checkpoints"

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING:
            return
        self.saved = self.folder(trainer) / self.filename
        trainer.save_checkpoint(self.saved)
        rank_zero_info(f"[interleave] SIGTERM: saved {self.saved} at step {trainer.global_step}; "
                       f"resume with --ckpt_path={self.saved}")
