"""Where the evaluation counts the queries it answers, as the trainer shows its own progress
(`query_progress`): a task of Lightning's rich bar, a tqdm bar below its tqdm bars, or a line every
10 s off a terminal; other ranks show nothing."""

from __future__ import annotations

import sys
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_info

from interleave.progress import Progress


class _RichTask:
    """Queries answered, as one more task of the trainer's rich progress bar (removed when done)."""

    def __init__(self, progress: Any, total: int, desc: str) -> None:
        self.progress, self.task = progress, progress.add_task(desc.removeprefix("[interleave] "), total=total)

    def __enter__(self) -> _RichTask:
        return self

    def __exit__(self, *_: Any) -> None:
        self.progress.remove_task(self.task)

    def __call__(self, n: int) -> None:
        self.progress.update(self.task, advance=n)


def query_progress(trainer: L.Trainer, total: int, desc: str) -> Progress | _RichTask:
    """Where rank 0 counts the queries it answers, as the trainer shows its own progress: a task of
    its rich bar; a tqdm bar below its tqdm bars (same stream, cleared when done); without a bar or
    off a terminal (a batch log), a `rank_zero_info` line every 10 s and a last one. Other ranks: nothing."""
    bar = trainer.progress_bar_callback
    enabled = bar is not None and bar.is_enabled
    if (
        trainer.is_global_zero
        and enabled
        and isinstance(bar, RichProgressBar)
        and bar.progress is not None
        and bar.progress.live.is_started
    ):
        return _RichTask(bar.progress, total, desc)
    stream = sys.stdout if isinstance(bar, TQDMProgressBar) else sys.stderr
    return Progress(
        total,
        "queries",
        desc,
        file=stream,
        tty=None if enabled else False,
        write=rank_zero_info,
        enabled=trainer.is_global_zero,
        leave=False,
    )
