"""The record checks: every problem of a record file, with file:line and reason, before a long job.

`check_records` finds them in parsed records (the one rule is `interleave.data.token_count.measure_records`;
the audio check `record_index.audio_problem`); `load_checked` reads a file and checks it (OpenAQA's
JSON, and `interleave data check` without an index); `DataError` lists them all. A JSONL file
read through its record index is checked there (`RecordIndex.checked`) with the same two rules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from interleave.data.collate import Collator
from interleave.data.record_index import audio_problem
from interleave.data.records import Problem, Record, read_records, resolve_clips
from interleave.data.token_count import BAD, SPLIT, measure_records
from interleave.errors import InterleaveError


class DataError(InterleaveError):
    """A dataset has bad records; the message lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"{len(problems)} bad record(s); fix them, or set data.on_bad_record=skip to train without them:\n{lines}"
        )


def check_records(
    records: list[Record],
    audio_root: str | Path | None,
    collator: Collator | None = None,
    load: Callable[[Path], Any] | None = None,
    split: list[str] | None = None,
) -> list[Problem]:
    """Problems of parsed records: what `measure_records` finds (clip and placeholder counts that do
    not match; with a collator, a prompt that cannot fit `max_length`), then a missing clip or (with
    `load`, the run's encoder input loader) an unreadable one. With a collator, records where a text
    token had to be split at the audio offset are listed in `split` (not a problem)."""
    measured = measure_records(records, collator)
    problems = []
    for i, record in enumerate(records):
        where = record.describe()
        if measured.status[i] == BAD:
            problems.append(Problem(where, measured.reasons[i]))
            continue
        if measured.status[i] == SPLIT and split is not None:
            split.append(where)
        for path in resolve_clips(record, audio_root):
            if (reason := audio_problem(path, load)) is not None:
                problems.append(Problem(where, reason))
                break
    return problems


def load_checked(
    path: str | Path,
    audio_root: str | Path | None,
    collator: Collator | None,
    load: Callable[[Path], Any] | None = None,
    split: list[str] | None = None,
) -> tuple[list[Record], list[Problem]]:
    """Read a record file and check it: (good records, problems). `audio_root` defaults to the file's folder."""
    root = Path(audio_root) if audio_root is not None else Path(path).parent
    records, problems = read_records(path)
    record_problems = check_records(records, root, collator, load, split)
    bad = {p.where for p in record_problems}
    return [r for r in records if r.describe() not in bad], problems + record_problems
