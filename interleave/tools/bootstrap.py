"""95 % bootstrap intervals of the SHARD and identity metrics, from a point's saved answers.

The queries about one clip are not independent (one clip, one encoding, many candidates), nor are
the clips of one word; so the resampling is two-level: draw the words with replacement, then, for
every drawn word, draw its clips with replacement; a drawn clip brings all its rows. The text
control's prompts do not depend on the clip, so its rows follow their word alone. Every resample's
metrics are computed by the evaluation's own `interleave.shard.evaluate.condition_metrics`; numpy
draws all resamples at once and turns them into per-row multiplicities.

The word is a row's `label`; the clip is the label plus the clip number in the row's id
(`interleave.shard.build`'s scheme: `synonym/<slug(label)>/<k>/<candidate>`, `identity/<slug(label)>/<k>`),
or the whole id where the id does not follow that scheme. Paired comparisons (`paired_differences`)
resample both runs with the same draws, so the words and clips of each resample are the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from interleave.errors import InterleaveError
from interleave.shard.predictions import Prediction

Rows = Sequence[Prediction]
TEXT_CONDITION = "text"  # the text-only control: its rows follow their word, not a clip
LEVEL = 0.95


def word_key(row: Prediction) -> str:
    """The resampling unit of the first level: the row's label (its id when it has none)."""
    return row.label if isinstance(row.label, str) and row.label else f"id:{row.id}"


def clip_key(row: Prediction) -> str:
    """The second level, within a word: the clip number of the row's id (`format.clip_of`), else the whole id."""
    from interleave.shard.format import clip_of

    clip = clip_of(row.id, row.task, row.label) if isinstance(row.label, str) else None
    return f"id:{row.id}" if clip is None else clip


@dataclass
class Design:
    """The words and their clips found in some rows: word w's clips are clips[starts[w]:starts[w] + sizes[w]]."""

    words: list[str]
    clips: list[tuple[str, str]]
    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, rows: Rows) -> Design:
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(word_key(row), set()).add(clip_key(row))
        words = sorted(found)
        clips = [(w, c) for w in words for c in sorted(found[w])]
        sizes = np.array([len(found[w]) for w in words], dtype=np.int64)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        return cls(words, clips, starts, sizes)


def draw(design: Design, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multiplicities of every word [resamples, W] and every clip [resamples, C] in each resample:
    W words drawn with replacement, then each drawn word's clips drawn with replacement."""
    n_words, n_clips = len(design.words), len(design.clips)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_words, size=(resamples, n_words))
    resample = np.repeat(np.arange(resamples), n_words)
    word_counts = np.bincount(resample * n_words + drawn.ravel(), minlength=resamples * n_words)
    # One clip draw per clip of every drawn word: repeat each drawn word by its number of clips.
    per_word = design.sizes[drawn.ravel()]
    words = np.repeat(drawn.ravel(), per_word)
    clip = design.starts[words] + (rng.random(words.size) * design.sizes[words]).astype(np.int64)
    clip_counts = np.bincount(np.repeat(resample, per_word) * n_clips + clip, minlength=resamples * n_clips)
    return word_counts.reshape(resamples, n_words), clip_counts.reshape(resamples, n_clips)


def multiplicities(design: Design, counts: tuple[np.ndarray, np.ndarray], rows: Rows, condition: str) -> np.ndarray:
    """How many times each row appears in each resample: [resamples, len(rows)]."""
    word_counts, clip_counts = counts
    if condition == TEXT_CONDITION:
        index = {w: i for i, w in enumerate(design.words)}
        return word_counts[:, [index[word_key(r)] for r in rows]]
    index = {c: i for i, c in enumerate(design.clips)}
    return clip_counts[:, [index[(word_key(r), clip_key(r))] for r in rows]]


def resampled_metrics(rows_by_condition: Mapping[str, Rows], prefixes: Mapping[str, str], design: Design,
                      counts: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    """Every tag's value in every resample (NaN where a resample has none), from `condition_metrics`."""
    from interleave.shard.evaluate import condition_metrics

    resamples = counts[0].shape[0]
    out: dict[str, np.ndarray] = {}
    for condition, rows in rows_by_condition.items():
        table = np.empty(len(rows), dtype=object)
        table[:] = list(rows)
        weights = multiplicities(design, counts, rows, condition)
        for b in range(resamples):
            sample = table[np.repeat(np.arange(len(rows)), weights[b])].tolist()
            for tag, value in condition_metrics(sample, prefixes[condition]).items():
                out.setdefault(tag, np.full(resamples, np.nan))[b] = value
    return out


def _percentiles(values: np.ndarray) -> tuple[float, float] | None:
    if np.all(np.isnan(values)):
        return None
    tail = 100 * (1 - LEVEL) / 2
    lo, hi = np.nanpercentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def intervals(rows_by_condition: Mapping[str, Rows], prefixes: Mapping[str, str], resamples: int = 1000,
              seed: int = 0) -> dict[str, tuple[float, float]]:
    """Tag -> (lo, hi), the 95 % percentile interval of every metric `condition_metrics` gives."""
    if resamples < 1:
        return {}
    design = Design.of([r for rows in rows_by_condition.values() for r in rows])
    if not design.words:
        return {}
    counts = draw(design, resamples, seed)
    found = resampled_metrics(rows_by_condition, prefixes, design, counts)
    return {tag: bounds for tag, values in found.items() if (bounds := _percentiles(values)) is not None}


def _query_keys(rows: Rows) -> list[tuple[Any, ...]]:
    return sorted((r.task, r.id, str(r.candidate), str(r.truth)) for r in rows)


def paired_differences(a: Mapping[str, Rows], b: Mapping[str, Rows], prefixes: Mapping[str, str],
                       resamples: int = 1000, seed: int = 0, each: dict[str, Any] | None = None
                       ) -> dict[str, tuple[Any, ...]]:
    """Tag -> (a, b, b - a, lo, hi): both runs' metrics on their common conditions and the 95 %
    interval of the difference, each resample drawing the same words and clips for both runs
    (lo and hi are None without resamples). The runs must hold the same queries. `each`, when
    given, receives each run's own intervals from the same resamples ("a", "b": tag -> (lo, hi))."""
    from interleave.shard.evaluate import condition_metrics

    common = [c for c in a if c in b]
    if not common:
        raise InterleaveError(f"the runs share no condition (one has {', '.join(a) or 'none'}, "
                              f"the other {', '.join(b) or 'none'})")
    for condition in common:
        if _query_keys(a[condition]) != _query_keys(b[condition]):
            raise InterleaveError(f"the runs' saved answers of condition {condition} are not about the same queries; "
                                  "a paired comparison needs runs evaluated on the same SHARD")
    point_a = {k: v for c in common for k, v in condition_metrics(list(a[c]), prefixes[c]).items()}
    point_b = {k: v for c in common for k, v in condition_metrics(list(b[c]), prefixes[c]).items()}
    found: dict[str, np.ndarray] = {}
    if resamples >= 1:
        design = Design.of([r for c in common for r in a[c]])
        counts = draw(design, resamples, seed)  # the same draws for both runs: paired
        in_a = resampled_metrics({c: a[c] for c in common}, prefixes, design, counts)
        in_b = resampled_metrics({c: b[c] for c in common}, prefixes, design, counts)
        found = {tag: in_b[tag] - in_a[tag] for tag in in_a if tag in in_b}
        if each is not None:
            for name, values in (("a", in_a), ("b", in_b)):
                each[name] = {tag: bounds for tag, v in values.items() if (bounds := _percentiles(v)) is not None}
    out = {}
    for tag in point_a:
        if tag in point_b:
            bounds = _percentiles(found[tag]) if tag in found else None
            out[tag] = (point_a[tag], point_b[tag], point_b[tag] - point_a[tag], *(bounds or (None, None)))
    return out


def differences_markdown(diffs: dict[str, tuple[Any, ...]], title: str, names: Mapping[str, str], resamples: int,
                         seed: int) -> str:
    """`paired_differences`' result (tags `<condition>/<metric tag>`) as a Markdown table in
    percentages; `names` gives a metric tag's column name (in the order the rows take)."""
    order = {suffix: i for i, suffix in enumerate(names)}
    conditions = list(dict.fromkeys(tag.partition("/")[0] for tag in diffs))
    keyed = sorted(diffs.items(), key=lambda item: (conditions.index(item[0].partition("/")[0]),
                                                    order.get(item[0].partition("/")[2], len(order)), item[0]))
    intervals = (f", with 95 % bootstrap intervals ({resamples} resamples of the same words, then clips, for both runs; "
                 f"--seed {seed})") if resamples > 0 else ""
    lines = [f"Paired differences B - A ({title}), percentages{intervals}:", "",
             "| Condition | Metric | A | B | B - A |", "| --- | --- | ---: | ---: | ---: |"]
    for tag, (va, vb, diff, lo, hi) in keyed:
        condition, _, suffix = tag.partition("/")
        interval = f" [{100 * lo:+.1f}, {100 * hi:+.1f}]" if lo is not None and hi is not None else ""
        lines.append(f"| {condition} | {names.get(suffix, suffix)} | {100 * va:.1f} | {100 * vb:.1f} | "
                     f"{100 * diff:+.1f}{interval} |")
    return "\n".join(lines) + "\n"
