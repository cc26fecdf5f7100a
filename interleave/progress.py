"""Progress of a long job, for a person at a terminal and for a batch job's log alike.

`Progress(total, unit, desc)` counts work done (`update`), work found already done (`skip`: a
resumed run, a cache hit; counted towards the total but not the rate) and any other counts to
show (`update(rejected=3)`). On a terminal it is a tqdm bar; off one (a batch job's log: the
stream is no tty) it prints one plain line at most every `interval` seconds and a final line,
never a stream of carriage returns:

    [interleave] rephrase: 1200/40000 records (3%), 12 rejected, 4.1 records/s, 2:37:41 left
    [interleave] rephrase: done 40000/40000 records (100%), 311 rejected, 4.1 records/s, in 2:43:10

Only rank 0 of a distributed run shows anything. Output goes to stderr unless told otherwise.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

DEFAULT_INTERVAL = 10.0  # seconds between two plain lines


def global_rank() -> int:
    """This process's rank: Lightning's once it has set one, else the launcher's environment."""
    module = sys.modules.get("lightning_utilities.core.rank_zero")
    rank = getattr(getattr(module, "rank_zero_only", None), "rank", None)
    if rank is not None:
        return int(rank)
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


def duration(seconds: float) -> str:
    """H:MM:SS."""
    seconds = int(round(max(0.0, seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Done / total, other counts, rate and time left of one job (see the module's docstring).

    `unit` is plural ("records", "clips"). `tty` forces the bar (True) or plain lines (False);
    by default the bar is used when `file` is a terminal. `write` replaces printing plain lines to
    `file` (e.g. `rank_zero_info`). `enabled` defaults to rank 0 only. `clock` is for tests.
    """

    def __init__(
        self,
        total: int | None,
        unit: str = "items",
        desc: str = "",
        *,
        initial: int = 0,
        interval: float = DEFAULT_INTERVAL,
        file: TextIO | None = None,
        tty: bool | None = None,
        write: Callable[[str], None] | None = None,
        enabled: bool | None = None,
        leave: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.unit, self.desc = total, unit, desc
        self.done = self.skipped = initial
        self.counts: dict[str, Any] = {}
        self.interval, self.clock = interval, clock
        self.file = sys.stderr if file is None else file
        self.write = write or (lambda line: print(line, file=self.file, flush=True))
        self.enabled = global_rank() == 0 if enabled is None else enabled
        self.started = self.last = clock()
        self.closed = False
        self.bar = None
        if self.enabled and (tty if tty is not None else _isatty(self.file)):
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=initial,
                unit=unit,
                desc=desc.removeprefix("[interleave] "),
                file=self.file,
                leave=leave,
                dynamic_ncols=True,
                mininterval=0.5,
            )

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.close(stopped=kind is not None)

    def add_total(self, n: int) -> None:
        """More work than first known (a second round of clips to decode)."""
        self.total = (self.total or 0) + n
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.refresh()

    def skip(self, n: int = 1) -> None:
        """`n` found already done: towards the total, not the rate."""
        self.done += n
        self.skipped += n
        if self.bar is not None:
            self.bar.n += n
            self.bar.last_print_n += n
            self.bar.initial += n
            self.bar.refresh()
        self._tick()

    def update(self, n: int = 1, **counts: Any) -> None:
        """`n` more done; `counts` are other running totals to show (`rejected=3`)."""
        self.done += n
        self.counts.update(counts)
        if self.bar is not None:
            if counts:
                self.bar.set_postfix(counts, refresh=False)
            self.bar.update(n)
        self._tick()

    def __call__(self, n: int = 1) -> None:
        """A `progress` callback: `n` more done."""
        self.update(n)

    def rate(self) -> float:
        elapsed = self.clock() - self.started
        return (self.done - self.skipped) / elapsed if elapsed > 0 else 0.0

    def line(self, final: bool = False, stopped: bool = False) -> str:
        """The plain line of where the job stands (`final`: its last, `stopped`: it ended early)."""
        head = f"{self.desc}: " if self.desc else ""
        done = f"{self.done}/{self.total} {self.unit}" if self.total is not None else f"{self.done} {self.unit}"
        if self.total:
            done += f" ({self.done / self.total:.0%})"
        parts = [("stopped at " if stopped else "done " if final else "") + done]
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        parts += [f"{value} {name}" for name, value in self.counts.items()]
        rate = self.rate()
        parts.append(f"{rate:.1f} {self.unit}/s")
        if final:
            parts.append(f"in {duration(self.clock() - self.started)}")
        elif self.total is not None and rate > 0:
            parts.append(f"{duration((self.total - self.done) / rate)} left")
        return head + ", ".join(parts)

    def _tick(self) -> None:
        if not self.enabled or self.bar is not None:
            return
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.write(self.line())

    def close(self, stopped: bool = False) -> None:
        """The final line (plain mode), or the bar closed; once."""
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.enabled:
            self.write(self.line(final=True, stopped=stopped))


def _isatty(file: TextIO) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False
