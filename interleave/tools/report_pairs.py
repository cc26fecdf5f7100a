"""The report's lines about the two-clip `pair` task (issue 19), under the table.

Table 2's columns are the paper's; the pair task is not, and LTU's layout cannot ask it (it holds
one clip), so its figures (interleaved, and the text-only control) are listed under the table
with a line saying so, only for runs whose metrics hold them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

PAIR_NOTE = ("Pair (two clips in one prompt, \"Is [AUDIO] the same kind of sound as [AUDIO]?\") is asked with "
             "interleaved prompts and the text-only control only; LTU's layout holds one clip, so it has none:")
FIGURES = {"Acc": "shard/pair/accuracy", "F1": "shard/pair/f1"}


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    return float(value) if ok else None


def pair_figures(metrics: dict[str, Any], prefix: str) -> dict[str, float | None]:
    """The pair figures of one report row: under its layout's `prefix` ("val/" or "val/<layout>/") and the text control's."""
    figures = {name: _number(metrics.get(prefix + tag)) for name, tag in FIGURES.items()}
    return figures | {f"Text {name}": _number(metrics.get("val/text/" + tag)) for name, tag in FIGURES.items()}


def pair_notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The note and one line per row with pair figures ("- RUN LAYOUT: Acc 62.5, F1 50.0, ..."), or nothing."""
    rows = [row for row in rows if any(v is not None for v in row.get("_pair", {}).values())]
    lines = [f"- {row['Run']} {row['Condition']}: " + ", ".join(
        f"{name} {'–' if value is None else f'{100 * value:.1f}'}" for name, value in row["_pair"].items()) for row in rows]
    return [PAIR_NOTE, *lines] if lines else []
