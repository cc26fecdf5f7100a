"""Surviving long jobs: checkpoints that are whole or absent, loaded safely, and saved on SIGTERM.

- `SafeCheckpointIO`: Lightning's own save goes through an fsspec transaction whose temp file may
  sit on another filesystem and is never fsynced; this one writes `NAME.tmp-PID` beside the target,
  fsyncs it and `os.replace()`s it, so a kill mid-save leaves the previous file intact. Loading goes
  through `interleave.checkpoints.load_weights` (weights only; clear refusals).
- `PreemptionCheckpoint`: Lightning 2.6 turns SIGTERM into a clean stop at the next batch boundary
  (`SIGTERMException`, exit code 0) but saves nothing; this callback then writes `last.ckpt`.
- `ResumeRandomState`: checkpoints carry every rank's random state (dropout draws from it), put
  back before the first batch after a resume, so a resumed run draws what an unbroken one would.
  The data order is the other half: `interleave.data.sampler.TrainingSampler` and the data module's
  checkpointed position.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException

from interleave.checkpoints import load_weights
from interleave.files import atomic_open


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write beside the target, fsync, then rename: a reader sees the old file or the new one, never half."""
    with atomic_open(path, "wb") as handle:
        torch.save(obj, handle)


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

    The file is the first ModelCheckpoint's `last` file, which that callback is told it wrote, so a
    resumed run keeps overwriting it instead of starting a `last-v1.ckpt` beside a stale one.
    Without a ModelCheckpoint it goes to `default_root_dir/checkpoints`. Resume with
    `--ckpt_path=<that folder>/last.ckpt`.
    """

    def __init__(self, filename: str = "last.ckpt") -> None:
        self.filename = filename
        self.saved: Path | None = None

    @staticmethod
    def model_checkpoint(trainer: L.Trainer) -> ModelCheckpoint | None:
        return next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.dirpath), None)

    def folder(self, trainer: L.Trainer) -> Path:
        found = self.model_checkpoint(trainer)
        return Path(found.dirpath) if found else Path(trainer.default_root_dir) / "checkpoints"

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != TrainerFn.FITTING:
            return
        self.saved = self.folder(trainer) / self.filename
        found = self.model_checkpoint(trainer)
        if found is not None and found.save_last:
            found.last_model_path = str(self.saved)  # goes into the checkpoint with the callback's state
        trainer.save_checkpoint(self.saved)
        rank_zero_info(
            f"[interleave] SIGTERM: saved {self.saved} at step {trainer.global_step}; "
            f"resume with --ckpt_path={self.saved}"
        )


def random_state() -> dict[str, Any]:
    """This process's torch, CUDA, numpy and Python random states, in types `weights_only` loading accepts."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
        "python": random.getstate(),
    }


def set_random_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


class ResumeRandomState(L.Callback):
    """Save every rank's random state in checkpoints; after a resume, restore it at the first training batch.

    In an unbroken run nothing draws from the global generators between a checkpoint and the next
    training batch (validation does not sample, the SHARD evaluation forks its own generator, and
    the data module's loaders have generators of their own), so that is where the draws resume.
    Restoring at load time would not do: the resumed run sets up loaders and validation first.
    """

    def __init__(self) -> None:
        self.pending: dict[str, Any] | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        states = [random_state()]
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            states = [None] * trainer.world_size  # every rank saves with the others (Lightning's contract)
            torch.distributed.all_gather_object(states, random_state())
        checkpoint["random_states"] = states

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("random_states") or []
        if len(states) != trainer.world_size:
            if states:
                rank_zero_info(
                    f"[interleave] the checkpoint holds random states of {len(states)} process(es), "
                    f"this run has {trainer.world_size}: random draws differ from an unbroken run"
                )
            return
        self.pending = states[trainer.global_rank]

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.pending is not None:
            set_random_state(self.pending)
            self.pending = None
