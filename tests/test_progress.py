"""interleave.progress: counts that reach the total, a bounded number of plain lines off a terminal,
a tqdm bar on one, rank 0 only."""

import io

import pytest

from interleave import progress as progress_module
from interleave.progress import Progress, duration


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_are_bounded_and_the_last_one_reaches_the_total():
    clock, out = Clock(), io.StringIO()
    with Progress(
        800, "records", "[interleave] job", interval=10, file=out, tty=False, enabled=True, clock=clock
    ) as bar:
        for i in range(800):
            clock.now += 0.125  # 100 s in all: 10 lines and the last, not 800
            bar.update(1, rejected=i // 100)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11 and "\r" not in out.getvalue()
    assert lines[0] == "[interleave] job: 80/800 records (10%), 0 rejected, 8.0 records/s, 0:01:30 left"
    assert lines[-1] == "[interleave] job: done 800/800 records (100%), 7 rejected, 8.0 records/s, in 0:01:40"
    assert bar.done == bar.total == 800


def test_skipped_work_counts_towards_the_total_not_the_rate():
    clock, out = Clock(), io.StringIO()
    bar = Progress(10, "clips", "cache", initial=4, file=out, tty=False, enabled=True, clock=clock)
    bar.skip(2)
    clock.now = 2.0
    bar.update(4)
    bar.close()
    bar.close()  # once
    assert out.getvalue().splitlines() == ["cache: done 10/10 clips (100%), 6 already done, 2.0 clips/s, in 0:00:02"]


def test_a_stopped_job_says_so_and_other_ranks_are_silent(monkeypatch):
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        with Progress(5, "queries", "eval", file=out, tty=False, enabled=True):
            raise KeyboardInterrupt
    assert out.getvalue().startswith("eval: stopped at 0/5 queries (0%), ")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(progress_module.sys, "modules", {})  # no Lightning rank: the launcher's
    silent = io.StringIO()
    with Progress(5, "queries", "eval", file=silent, interval=0) as bar:
        bar.update(5)
    assert silent.getvalue() == ""


def test_unknown_then_growing_total_and_a_custom_writer():
    lines: list[str] = []
    with Progress(0, "clips", "decode", write=lines.append, tty=False, enabled=True, interval=0, clock=Clock()) as bar:
        bar.add_total(3)
        bar(3)
    assert lines[-1].startswith("decode: done 3/3 clips")


def test_a_terminal_gets_a_tqdm_bar_and_no_plain_lines():
    out = io.StringIO()
    out.isatty = lambda: True
    with Progress(3, "records", "[interleave] job", file=out, enabled=True) as bar:
        bar.skip(1)
        bar.update(2, rejected=1)
    assert bar.bar is not None and bar.bar.n == 3
    assert "job" in out.getvalue() and "[interleave] job: done" not in out.getvalue()


def test_duration():
    assert duration(3725.4) == "1:02:05" and duration(-1) == "0:00:00"
