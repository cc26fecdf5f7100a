"""The report's language retention (issue 39): per run (or study condition) and retention text, the
perplexity of the held-out text before training (epoch 00) and at the reported point, and

- retention = perplexity at epoch 00 / perplexity at the reported point (below 1: the LLM's own
  language got worse; 1: unchanged),

with a paired 95 % bootstrap interval over the text's segments: every resample draws the selection's
segments with replacement (`numpy.random.default_rng(seed).integers`), and both points are scored on that
same draw (each perplexity the token-weighted exp(Σ NLL / Σ tokens) of the drawn segments, from the
per-segment sums the metrics file keeps, `callbacks.retention`). A study condition's figure is the
mean over its seeds, the seed level drawn first (`bootstrap.seed_counts`, `bootstrap.seed_means`), one
draw of segments shared by its seeds (they score the same selection). The two points must have scored
the same selection (same file hash and segment count), else the run gets a note instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interleave.errors import InterleaveError
from interleave.eval.retention import CHOICE
from interleave.tools.report.forgetting import FIRST, Points, load_points
from interleave.tools.report.table import write_csv

HEADER = "retention"  # the metrics file's key (`callbacks.retention.HEADER`)
FILE = "retention.csv"


@dataclass(frozen=True)
class Segments:
    """One text at one point, as its metrics file keeps it: per-segment NLL sums and token counts."""

    sha256: str
    nll: np.ndarray
    tokens: np.ndarray

    @property
    def perplexity(self) -> float:
        return math.exp(float(self.nll.sum()) / float(self.tokens.sum()))


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


def texts(metrics: dict[str, Any], file: str = "") -> dict[str, Segments]:
    """The retention texts of one point's metrics (none when it scored none); a malformed entry is
    one error naming the file."""
    found = {}
    for name, entry in (metrics.get(HEADER) or {}).items():
        if isinstance(entry, dict) and entry.get("kind") == CHOICE:
            continue  # a text multiple-choice file: its accuracies are tagged figures, no segments
        try:
            nll = np.asarray(entry["segment_nll"], dtype=float)
            tokens = np.asarray(entry["segment_tokens"], dtype=float)
            if nll.shape != tokens.shape or not len(nll) or tokens.min() < 1:
                raise ValueError("segment_nll and segment_tokens must be as long, non-empty, tokens >= 1")
            found[name] = Segments(str(entry["sha256"]), nll, tokens)
        except (KeyError, TypeError, ValueError) as err:
            raise InterleaveError(f"{file}: retention {name!r} is malformed ({err})") from None
    return found


def _draws(segments: int, resamples: int, seed: int) -> np.ndarray:
    """How many times each segment is drawn in each resample, [resamples, segments]."""
    drawn = np.random.default_rng(seed).integers(0, segments, size=(resamples, segments))
    rows = np.repeat(np.arange(resamples), segments)
    return np.bincount(rows * segments + drawn.ravel(), minlength=resamples * segments).reshape(resamples, segments)


def _perplexities(counts: np.ndarray, segments: Segments) -> np.ndarray:
    return np.exp((counts @ segments.nll) / (counts @ segments.tokens))


def run_retention(points: Points, resamples: int, seed: int) -> list[TextRetention]:
    """One run's retention of every text both of its points scored."""
    first, last = (texts(m, points.label) for m in points.metrics)
    out = []
    for name, before in first.items():
        after = last.get(name)
        if after is None:
            continue
        if after.sha256 != before.sha256 or len(after.nll) != len(before.nll):
            raise InterleaveError(
                f"retention {name!r}: epochs {FIRST:02d} and {points.last:02d} scored different selections"
            )
        found = TextRetention(points.label, name, points.last, *kept(before, after, resamples, seed))
        out.append(found)
    return out


def kept(
    before: Segments, after: Segments, resamples: int, seed: int
) -> tuple[float, float, float, tuple[float, float] | None, np.ndarray | None]:
    """Both perplexities, retention = before / after, its paired interval and resamples (segments
    drawn with replacement, both scored on each draw; none with `resamples` 0)."""
    ratio = before.perplexity / after.perplexity
    if resamples < 1:
        return before.perplexity, after.perplexity, ratio, None, None
    counts = _draws(len(before.nll), resamples, seed)
    resampled = _perplexities(counts, before) / _perplexities(counts, after)
    return before.perplexity, after.perplexity, ratio, _bounds(resampled), resampled


def alpha_retention(
    by_alpha: dict[float, dict[str, Segments]], resamples: int, seed: int
) -> list[tuple[float, str, float, float, tuple[float, float] | None]]:
    """The frontier's retention: per α and text, (α, text, perplexity, retention against the first α,
    its paired interval); texts every α scored, all on one selection."""
    alphas = sorted(by_alpha)
    if not alphas:
        return []
    first = by_alpha[alphas[0]]
    out = []
    for name, before in first.items():
        if not all(name in by_alpha[a] and by_alpha[a][name].sha256 == before.sha256 for a in alphas):
            continue
        for alpha in alphas:
            _, after, ratio, bounds, _ = kept(before, by_alpha[alpha][name], resamples, seed)
            out.append((alpha, name, after, ratio, bounds))
    return out


def alpha_markdown(rows: Sequence[tuple[float, str, float, float, tuple[float, float] | None]], resamples: int) -> str:
    """The frontier's language retention section (nothing when no text was scored)."""
    if not rows:
        return ""
    first = min(r[0] for r in rows)
    lines = [
        "",
        f"Language retention (held-out text, issue 39): perplexity at each α; retention = perplexity at "
        f"α = {first:g} / perplexity there"
        + (
            f", with a paired 95 % bootstrap interval over the text's segments ({resamples} resamples)."
            if resamples
            else "."
        ),
        "",
        "| α | Text | perplexity | retention |",
        "| ---: | --- | ---: | ---: |",
    ]
    for alpha, name, perplexity, ratio, bounds in rows:
        cell = f"{ratio:.3f}" + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds else "")
        lines.append(f"| {alpha:g} | {name} | {perplexity:.2f} | {cell} |")
    return "\n".join(lines) + "\n"


def _bounds(values: np.ndarray) -> tuple[float, float] | None:
    from interleave.tools.bootstrap import percentiles

    return percentiles(values)


def seed_retention(name: str, seeds: Sequence[Points], resamples: int, seed: int) -> list[TextRetention]:
    """A study condition's retention of every text all its seeds scored: the mean over seeds, with the
    seed level drawn first and one draw of segments shared by the seeds."""
    from interleave.tools.bootstrap import seed_counts, seed_means

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
            found.resampled, found.bounds = means[text], _bounds(means[text])
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
        f"Language retention (held-out text, issue 39): perplexity at epoch {FIRST:02d} (before training) and at "
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
