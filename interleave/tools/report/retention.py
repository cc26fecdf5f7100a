"""The report's language retention (issue 39): per run (or study condition) and retention text, the
perplexity of the held-out text before training (epoch 00) and at the reported point, and

- retention = perplexity at epoch 00 / perplexity at the reported point (below 1: the LLM's own
  language got worse; 1: unchanged),

with a paired 95 % bootstrap interval over the text's segments (`interleave.tools.bootstrap.segment_ratio`):
every resample draws the selection's segments with replacement, and both points are scored on that
same draw (each perplexity the token-weighted exp(Σ NLL / Σ tokens) of the drawn segments, from the
per-segment sums the metrics file keeps, `interleave.eval.retention.saved_texts`). A study condition's figure is the
mean over its seeds, the seed level drawn first (`bootstrap.seed_counts`, `bootstrap.seed_means`), one
draw of segments shared by its seeds (they score the same selection). The two points must have scored
the same selection (same file hash and segment count), else the run gets a note instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interleave.errors import InterleaveError
from interleave.eval.retention import saved_texts
from interleave.tools.report.forgetting import FIRST, Points, load_points
from interleave.tools.report.table import write_csv

FILE = "retention.csv"


@dataclass
class TextRetention:
    """One run's (or study condition's) retention of one text: both perplexities, their ratio, its
    interval and its value in every resample (for the seed level)."""

    run: str
    text: str
    last: int
    before: float
    after: float
    retention: float
    bounds: tuple[float, float] | None = None
    resampled: np.ndarray | None = None
    seeds: int = 0


def run_retention(points: Points, resamples: int, seed: int) -> list[TextRetention]:
    """One run's retention of every text both of its points scored (`bootstrap.segment_ratio`)."""
    from interleave.tools.bootstrap import segment_ratio

    first, last = (saved_texts(m, points.label) for m in points.metrics)
    out = []
    for name, before in first.items():
        after = last.get(name)
        if after is None:
            continue
        if after.sha256 != before.sha256 or len(after.scored.nll) != len(before.scored.nll):
            raise InterleaveError(
                f"retention {name!r}: epochs {FIRST:02d} and {points.last:02d} scored different selections"
            )
        ratio, bounds, resampled = segment_ratio(before.scored, after.scored, resamples, seed)
        found = TextRetention(points.label, name, points.last, before.scored.perplexity, after.scored.perplexity, ratio)
        found.bounds, found.resampled = bounds, resampled
        out.append(found)
    return out


def seed_retention(name: str, seeds: Sequence[Points], resamples: int, seed: int) -> list[TextRetention]:
    """A study condition's retention of every text all its seeds scored: the mean over seeds, with the
    seed level drawn first and one draw of segments shared by the seeds."""
    from interleave.tools.bootstrap import percentiles, seed_counts, seed_means

    each = [{r.text: r for r in run_retention(p, resamples, seed)} for p in seeds]
    shared = [t for t in each[0] if all(t in e for e in each)] if each else []
    out = []
    for text in shared:
        runs = [e[text] for e in each]
        found = TextRetention(
            name,
            text,
            seeds[0].last,
            float(np.mean([r.before for r in runs])),
            float(np.mean([r.after for r in runs])),
            float(np.mean([r.retention for r in runs])),
            seeds=len(seeds),
        )
        if resamples > 0:
            means = seed_means([{text: r.resampled} for r in runs], seed_counts(len(runs), resamples, seed))
            found.resampled, found.bounds = means[text], percentiles(means[text])
        out.append(found)
    return out


def summaries(
    runs: Sequence[tuple[Path, str]], epoch: int | None, parser: str | None, resamples: int, seed: int
) -> tuple[list[TextRetention], list[str]]:
    """The retention of every run whose points scored a retention text, and a note for each that cannot
    be compared (runs that scored no text are left out silently)."""
    found: list[TextRetention] = []
    notes: list[str] = []
    for run, label in runs:
        points = load_points(run, label, epoch, parser)
        if isinstance(points, str):
            continue  # the forgetting summary names why a run has no two points
        try:
            found += run_retention(points, resamples, seed)
        except InterleaveError as err:
            notes.append(f"{label}: no retention figures: {err}")
    return found, notes


def to_markdown(
    found: Sequence[TextRetention], notes: Sequence[str], resamples: int, seed: int, label: str = "Run"
) -> str:
    """The language retention section: a legend, one row per run (or study condition) and text."""
    if not found and not notes:
        return ""
    interval = (
        f"[lo, hi] = paired 95 % bootstrap interval: {resamples} resamples of the text's segments, each "
        f"scored at both epochs (--bootstrap {resamples} --seed {seed})"
        if any(f.bounds for f in found)
        else "no intervals"
    )
    lines = [
        f"Language retention (held-out text): perplexity at epoch {FIRST:02d} (before training) and at "
        f"the reported epoch; retention = perplexity at epoch {FIRST:02d} / perplexity there (below 1: the "
        f"LLM's own language got worse); {interval}.",
        "",
        f"| {label} | Text | Epochs | perplexity {FIRST:02d} | perplexity | retention |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for f in found:
        cell = f"{f.retention:.3f}" + (f" [{f.bounds[0]:.3f}, {f.bounds[1]:.3f}]" if f.bounds else "")
        lines.append(f"| {f.run} | {f.text} | {FIRST:02d} → {f.last:02d} | {f.before:.2f} | {f.after:.2f} | {cell} |")
    return "\n".join(lines + [""] + list(notes)) + "\n"


def write(found: Sequence[TextRetention], path: Path, label: str = "Run") -> Path:
    """`retention.csv`: one row per run (or study condition) and text."""
    fields = [label, "Text", "First", "Last", "Perplexity first", "Perplexity last", "Retention", "lo", "hi"]
    table = [
        {
            label: f.run,
            "Text": f.text,
            "First": FIRST,
            "Last": f.last,
            "Perplexity first": f.before,
            "Perplexity last": f.after,
            "Retention": f.retention,
            "lo": f.bounds[0] if f.bounds else None,
            "hi": f.bounds[1] if f.bounds else None,
        }
        for f in found
    ]
    if not table:
        raise InterleaveError(f"{path}: no retention figures to write")
    write_csv(path, fields, table)
    return path
