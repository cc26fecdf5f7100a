"""The training order: shuffled anew each epoch, optionally grouped by length, split across ranks,
and resumable mid-epoch.

The order of epoch `e` depends only on `seed + e` (never on the global RNG), so a run resumed from
a checkpoint draws the same order as one that was never stopped, and `resume_from` skips the
batches the checkpointed run had already trained on in that epoch (without loading them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DistributedSampler


class TrainingSampler(DistributedSampler):
    """Seeded per-epoch shuffle of `num_records` indices, split by rank.

    With `lengths`, each run of `group_batches` optimizer steps is sorted by length and cut into
    steps, then the steps are shuffled: a batch holds records of similar length (little padding),
    the ranks of one step get similar lengths too, and long batches do not all come first.
    It is a `DistributedSampler` so that Lightning uses it as it is under DDP instead of wrapping it
    in one that would reshuffle the grouped order; Lightning calls `set_epoch`.
    """

    def __init__(
        self,
        num_records: int,
        batch_size: int,
        lengths: Sequence[int] | None = None,
        group_batches: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
    ) -> None:
        if lengths is not None and len(lengths) != num_records:
            raise ValueError(f"{len(lengths)} lengths for {num_records} records")
        super().__init__(range(num_records), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.num_records, self.batch_size = num_records, batch_size
        self.lengths = None if lengths is None else np.asarray(lengths, np.int64)
        self.group_batches = max(1, group_batches)
        self.skip_epoch, self.skip_batches = -1, 0

    def resume_from(self, epoch: int, batches_done: int) -> None:
        """In `epoch`, start after the first `batches_done` batches of this rank (a mid-epoch resume)."""
        self.skip_epoch, self.skip_batches = epoch, batches_done

    def draw(self, generator: torch.Generator) -> np.ndarray:
        """The epoch's records in random order: every record once (`interleave.data.mixture.MixtureSampler`
        draws from several files instead)."""
        return torch.randperm(self.num_records, generator=generator).numpy()

    def global_order(self) -> np.ndarray:
        """The epoch's records (`draw`) in the order of `self.epoch`, before the split across ranks."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = self.draw(generator)
        if self.lengths is None:
            return order
        step = self.batch_size * self.num_replicas  # the records of one optimizer step, all ranks
        group = step * self.group_batches
        lengths = self.lengths
        steps = []
        for i in range(0, len(order), group):  # each run longest first; a stable sort keeps ties in order
            run = order[i : i + group]
            run = run[np.argsort(-lengths[run], kind="stable")]
            steps += [run[j : j + step] for j in range(0, len(run), step)]
        shuffled = torch.randperm(len(steps), generator=generator).tolist()
        return np.concatenate([steps[s] for s in shuffled]) if steps else order

    def __iter__(self) -> Iterator[int]:
        order = self.global_order()
        if len(order) < self.total_size:  # every rank gets num_samples: repeat from the start, as DDP does
            order = np.resize(order, self.total_size)
        mine = order[self.rank : self.total_size : self.num_replicas]
        skip = self.skip_batches * self.batch_size if self.epoch == self.skip_epoch else 0
        return iter(mine[skip:].tolist())
