"""The report's lines about the tasks outside Table 2 (the two-clip `pair` task of issue 19, and
any registered task without a `Task.column`), under the table.

Table 2's columns are the paper's; such a task's figures (under the row's layout, and the
text-only control's) are listed under the table after its `Task.note`, only for runs whose
metrics hold them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from interleave.eval.tasks import TASKS, Task, metric_tag

FIGURES = {"Acc": "accuracy", "F1": "f1"}
TEXT_PREFIX = "val/text"


def listed_tasks() -> list[Task]:
    """The yes/no tasks the table has no column for."""
    return [t for t in TASKS.values() if t.column is None and "f1" in t.metrics]


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    return float(value) if ok else None


def pair_figures(metrics: dict[str, Any], prefix: str) -> dict[str, dict[str, float | None]]:
    """Per listed task, its figures in one report row: under the row's `prefix` ("val" or
    "val/<layout>") and the text control's ("Text Acc", "Text F1")."""
    return {
        task.name: {
            name: _number(metrics.get(metric_tag(prefix, task.name, metric))) for name, metric in FIGURES.items()
        }
        | {
            f"Text {name}": _number(metrics.get(metric_tag(TEXT_PREFIX, task.name, metric)))
            for name, metric in FIGURES.items()
        }
        for task in listed_tasks()
    }


def pair_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Per listed task with figures, its note and one line per row ("- RUN LAYOUT: Acc 62.5, F1 50.0, ..."), or nothing."""
    out: list[str] = []
    for task in listed_tasks():
        found = [
            (row, row["_pair"][task.name])
            for row in rows
            if task.name in row.get("_pair", {}) and any(v is not None for v in row["_pair"][task.name].values())
        ]
        lines = [
            f"- {row['Run']} {row['Condition']}: "
            + ", ".join(f"{name} {'–' if value is None else f'{100 * value:.1f}'}" for name, value in figures.items())
            for row, figures in found
        ]
        out += [task.note or f"{task.name}:", *lines] if lines else []
    return out
