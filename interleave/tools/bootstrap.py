"""95 % bootstrap intervals of the SHARD and identity metrics, from a point's saved answers.

The queries about one clip are not independent (one clip, one encoding, many candidates), nor are
the clips of one word; so the resampling is two-level: draw the words with replacement, then, for
every drawn word, draw its clips with replacement; a drawn clip brings all its rows. The text
control's prompts do not depend on the clip, so its rows follow their word alone. Every resample's
metrics are computed by the evaluation's own `interleave.eval.evaluate.condition_metrics`; numpy
draws all resamples at once and turns them into per-row multiplicities.

The word is a row's `label`; the clip is the label plus the clip number in the row's id
(`interleave.shard.build`'s scheme: `synonym/<slug(label)>/<k>/<candidate>`, `identity/<slug(label)>/<k>`),
or the whole id where the id does not follow that scheme. Paired comparisons (`paired_differences`)
resample both runs with the same draws, so the words and clips of each resample are the same.

Over seeds (`seed_intervals`, `interleave report --study`), a third level comes first: each
resample draws the S seeds of a condition with replacement (`seed_counts`, its own random stream)
and takes the mean of the drawn seeds' metrics, each computed on that resample's words and clips.
The seeds answered the same queries, so one draw of words and clips serves every seed of the
resample (the query sample is shared, not renewed per seed: an independent draw per seed would
shrink the queries' share of the variance by S). With one seed this is the run's own interval.

A multiple-choice benchmark's items are independent questions: its intervals resample the items
(`item_draws`, `item_interval`), the same draws for every condition, point, α or run compared, so a
change is computed item by item on the same draws (paired); over seeds, the seeds first, then the
items (`seed_item_interval`).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from interleave.errors import InterleaveError
from interleave.eval.predictions import Prediction

Rows = Sequence[Prediction]
TEXT_CONDITION = "text"  # the text-only control: its rows follow their word, not a clip
LEVEL = 0.95
SEED_STREAM = 1  # the seed level's random stream: numpy's default_rng((seed, SEED_STREAM))


def word_key(row: Prediction) -> str:
    """The resampling unit of the first level: the row's label (its id when it has none)."""
    return row.label if isinstance(row.label, str) and row.label else f"id:{row.id}"


def clip_key(row: Prediction) -> str:
    """The second level, within a word: the clip number of the row's id (`format.clip_of`), else the whole id."""
    from interleave.eval.query import clip_of

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


_shared: dict[bytes, dict[str, np.ndarray]] | None = None  # see `shared_resamples`


@contextmanager
def shared_resamples() -> Iterator[None]:
    """Within it, one condition's answers resampled with the same multiplicities are scored once:
    the report's table, its forgetting summary and a study's per-seed rows resample the same
    answers on the same draws (the same queries give the same design and draws)."""
    global _shared
    outer, _shared = _shared, {} if _shared is None else _shared
    try:
        yield
    finally:
        _shared = outer


def _scored(rows: Rows, weights: np.ndarray) -> bytes:
    """What a condition's resampled metrics depend on: each row's scored fields and its multiplicities."""
    fields = repr([(r.task, r.truth, list(r.parsed), r.p_yes) for r in rows]).encode()
    return hashlib.sha256(fields + weights.tobytes() + str(weights.shape).encode()).digest()


def resampled_metrics(
    rows_by_condition: Mapping[str, Rows],
    prefixes: Mapping[str, str],
    design: Design,
    counts: tuple[np.ndarray, np.ndarray],
) -> dict[str, np.ndarray]:
    """Every tag's value in every resample (NaN where a resample has none), from `condition_metrics`."""
    from interleave.eval.evaluate import condition_metrics

    resamples = counts[0].shape[0]
    out: dict[str, np.ndarray] = {}
    for condition, rows in rows_by_condition.items():
        weights = multiplicities(design, counts, rows, condition)
        key = _scored(rows, weights) if _shared is not None else b""
        if _shared is not None and key in _shared:  # tags kept without their prefix
            out.update({prefixes[condition] + tail: values for tail, values in _shared[key].items()})
            continue
        table = np.empty(len(rows), dtype=object)
        table[:] = list(rows)
        found: dict[str, np.ndarray] = {}
        for b in range(resamples):
            sample = table[np.repeat(np.arange(len(rows)), weights[b])].tolist()
            for tag, value in condition_metrics(sample, prefixes[condition]).items():
                found.setdefault(tag, np.full(resamples, np.nan))[b] = value
        out.update(found)
        if _shared is not None:
            _shared[key] = {tag.removeprefix(prefixes[condition]): values for tag, values in found.items()}
    return out


def percentiles(values: np.ndarray) -> tuple[float, float] | None:
    if np.all(np.isnan(values)):
        return None
    tail = 100 * (1 - LEVEL) / 2
    lo, hi = np.nanpercentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def item_draws(count: int, resamples: int, rng: np.random.Generator) -> np.ndarray | None:
    """[resamples, count] indices of items drawn with replacement (None: no intervals, or no item)."""
    return rng.integers(0, count, size=(resamples, count)) if resamples and count else None


def item_interval(values: np.ndarray, draws: np.ndarray | None) -> tuple[float, float] | None:
    """The 95 % interval of the mean of per-item `values` (NaN: an item not asked, left out) over `draws`."""
    if draws is None:
        return None
    with warnings.catch_warnings():  # a draw of items none of which holds a value: NaN, left out
        warnings.simplefilter("ignore", RuntimeWarning)
        return percentiles(np.nanmean(values[draws], axis=1))


def seed_item_interval(per_seed: Sequence[np.ndarray], resamples: int, seed: int) -> tuple[float, float] | None:
    """The 95 % interval of the mean over seeds of per-item values ([items] per seed, the same items in
    the same order, NaN where not asked): each resample draws the seeds, then the items (one draw of
    items shared by the drawn seeds, as `seed_intervals` shares the queries' draw)."""
    if not resamples or not per_seed or not len(per_seed[0]):
        return None
    counts = seed_counts(len(per_seed), resamples, seed)  # [resamples, seeds]
    draws = item_draws(len(per_seed[0]), resamples, np.random.default_rng([seed, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.stack([np.nanmean(values[draws], axis=1) for values in per_seed], axis=1)  # [resamples, seeds]
        return percentiles(np.nansum(means * counts, axis=1) / np.sum(counts * ~np.isnan(means), axis=1))


def intervals(
    rows_by_condition: Mapping[str, Rows], prefixes: Mapping[str, str], resamples: int = 1000, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Tag -> (lo, hi), the 95 % percentile interval of every metric `condition_metrics` gives."""
    if resamples < 1:
        return {}
    design = Design.of([r for rows in rows_by_condition.values() for r in rows])
    if not design.words:
        return {}
    counts = draw(design, resamples, seed)
    found = resampled_metrics(rows_by_condition, prefixes, design, counts)
    return {tag: bounds for tag, values in found.items() if (bounds := percentiles(values)) is not None}


def _query_keys(rows: Rows) -> list[tuple[Any, ...]]:
    return sorted((r.task, r.id, str(r.candidate), str(r.truth)) for r in rows)


@dataclass
class Paired:
    """Two answer sets' metrics (tag -> value) and their values in every resample of the same
    words and clips (tag -> [resamples]; empty without resamples)."""

    point_a: dict[str, float]
    point_b: dict[str, float]
    in_a: dict[str, np.ndarray]
    in_b: dict[str, np.ndarray]


def resampling(rows: Rows, resamples: int, seed: int) -> tuple[Design, tuple[np.ndarray, np.ndarray]] | None:
    """The design of `rows` and its `draw`s, or None without resamples or rows."""
    design = Design.of(rows)
    return (design, draw(design, resamples, seed)) if resamples >= 1 and design.words else None


def paired(
    a: Mapping[str, Rows],
    b: Mapping[str, Rows],
    prefixes: Mapping[str, str],
    drawn: tuple[Design, tuple[np.ndarray, np.ndarray]] | None,
) -> Paired:
    """Both answer sets' metrics on their common conditions, and with `drawn` (`resampling` of
    rows holding both sets' queries) their values in the same resamples. The sets must hold the
    same queries."""
    from interleave.eval.evaluate import condition_metrics

    common = [c for c in a if c in b]
    if not common:
        raise InterleaveError(
            f"the runs share no condition (one has {', '.join(a) or 'none'}, the other {', '.join(b) or 'none'})"
        )
    for condition in common:
        if _query_keys(a[condition]) != _query_keys(b[condition]):
            raise InterleaveError(
                f"the runs' saved answers of condition {condition} are not about the same queries; "
                "a paired comparison needs runs evaluated on the same SHARD"
            )
    point_a = {k: v for c in common for k, v in condition_metrics(list(a[c]), prefixes[c]).items()}
    point_b = {k: v for c in common for k, v in condition_metrics(list(b[c]), prefixes[c]).items()}
    if drawn is None:
        return Paired(point_a, point_b, {}, {})
    design, counts = drawn
    return Paired(
        point_a,
        point_b,
        resampled_metrics({c: a[c] for c in common}, prefixes, design, counts),
        resampled_metrics({c: b[c] for c in common}, prefixes, design, counts),
    )


def paired_differences(
    a: Mapping[str, Rows],
    b: Mapping[str, Rows],
    prefixes: Mapping[str, str],
    resamples: int = 1000,
    seed: int = 0,
    each: dict[str, Any] | None = None,
) -> dict[str, tuple[Any, ...]]:
    """Tag -> (a, b, b - a, lo, hi): both runs' metrics on their common conditions and the 95 %
    interval of the difference, each resample drawing the same words and clips for both runs
    (lo and hi are None without resamples). The runs must hold the same queries. `each`, when
    given, receives each run's own intervals from the same resamples ("a", "b": tag -> (lo, hi))."""
    common = [c for c in a if c in b]
    found = paired(a, b, prefixes, resampling([r for c in common for r in a[c]], resamples, seed))
    diffs = {tag: found.in_b[tag] - found.in_a[tag] for tag in found.in_a if tag in found.in_b}
    if each is not None and found.in_a:
        for name, values in (("a", found.in_a), ("b", found.in_b)):
            each[name] = {tag: bounds for tag, v in values.items() if (bounds := percentiles(v)) is not None}
    out = {}
    for tag, value_a in found.point_a.items():
        if tag in found.point_b:
            bounds = percentiles(diffs[tag]) if tag in diffs else None
            out[tag] = (value_a, found.point_b[tag], found.point_b[tag] - value_a, *(bounds or (None, None)))
    return out


# ---- the seed level: a condition's seeds, then words, then clips --------------------------------


def seed_counts(seeds: int, resamples: int, seed: int) -> np.ndarray:
    """How many times each of `seeds` seeds is drawn in each resample, [resamples, seeds]: S seeds
    drawn with replacement by `numpy.random.default_rng((seed, SEED_STREAM)).integers(0, S, (resamples, S))`."""
    drawn = np.random.default_rng((seed, SEED_STREAM)).integers(0, seeds, size=(resamples, seeds))
    resample = np.repeat(np.arange(resamples), seeds)
    return np.bincount(resample * seeds + drawn.ravel(), minlength=resamples * seeds).reshape(resamples, seeds)


def seed_means(per_seed: Sequence[Mapping[Any, np.ndarray]], counts: np.ndarray) -> dict[Any, np.ndarray]:
    """Tag -> each resample's mean over its drawn seeds (a seed drawn twice counts twice) of the
    seeds' values in that resample ([resamples] each), for the tags every seed has; NaN where a
    drawn seed has none."""
    tags = [t for t in per_seed[0] if all(t in values for values in per_seed)] if per_seed else []
    out = {}
    for tag in tags:
        values = np.stack([values[tag] for values in per_seed], axis=1)  # [resamples, seeds]
        drawn = counts > 0
        mean = np.where(drawn, values * counts, 0.0).sum(axis=1) / counts.shape[1]
        mean[np.any(drawn & np.isnan(values), axis=1)] = np.nan
        out[tag] = mean
    return out


def seed_intervals(
    rows_by_seed: Sequence[Mapping[str, Rows]],
    prefixes_by_seed: Sequence[Mapping[str, str]],
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Tag -> (lo, hi), the 95 % interval of the mean over seeds (each seed's saved answers by
    condition, and its conditions' tag prefixes): the seeds drawn with replacement, then one draw
    of words, then clips shared by the drawn seeds (see the module's docstring)."""
    drawn = resampling([r for rows in rows_by_seed for c in rows.values() for r in c], resamples, seed)
    if drawn is None:
        return {}
    design, counts = drawn
    per_seed = [
        resampled_metrics(rows, prefixes, design, counts) for rows, prefixes in zip(rows_by_seed, prefixes_by_seed)
    ]
    means = seed_means(per_seed, seed_counts(len(per_seed), resamples, seed))
    return {tag: bounds for tag, values in means.items() if (bounds := percentiles(values)) is not None}


def differences_markdown(
    diffs: dict[str, tuple[Any, ...]], title: str, names: Mapping[str, str], resamples: int, seed: int
) -> str:
    """`paired_differences`' result (tags `<condition>/<metric tag>`) as a Markdown table in
    percentages; `names` gives a metric tag's column name (in the order the rows take)."""
    order = {suffix: i for i, suffix in enumerate(names)}
    conditions = list(dict.fromkeys(tag.partition("/")[0] for tag in diffs))
    keyed = sorted(
        diffs.items(),
        key=lambda item: (
            conditions.index(item[0].partition("/")[0]),
            order.get(item[0].partition("/")[2], len(order)),
            item[0],
        ),
    )
    intervals = (
        (
            f", with 95 % bootstrap intervals ({resamples} resamples of the same words, then clips, for both runs; "
            f"--seed {seed})"
        )
        if resamples > 0
        else ""
    )
    lines = [
        f"Paired differences B - A ({title}), percentages{intervals}:",
        "",
        "| Condition | Metric | A | B | B - A |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for tag, (va, vb, diff, lo, hi) in keyed:
        condition, _, suffix = tag.partition("/")
        interval = f" [{100 * lo:+.1f}, {100 * hi:+.1f}]" if lo is not None and hi is not None else ""
        lines.append(
            f"| {condition} | {names.get(suffix, suffix)} | {100 * va:.1f} | {100 * vb:.1f} | "
            f"{100 * diff:+.1f}{interval} |"
        )
    return "\n".join(lines) + "\n"


# ---- text retention (issue 39): the selection's segments, resampled -------------------------------


def segment_ratio(
    before: Any, after: Any, resamples: int, seed: int
) -> tuple[float, tuple[float, float] | None, np.ndarray | None]:
    """Retention = perplexity of `before` / perplexity of `after` (two `interleave.eval.retention.Scored`
    of one selection), with its paired 95 % interval: each resample draws the segments with
    replacement (`default_rng(seed).integers`), both scored on that draw (token-weighted
    exp(Σ NLL / Σ tokens)); and every resample's value (None with `resamples` 0)."""
    ratio = before.perplexity / after.perplexity
    if resamples < 1:
        return ratio, None, None
    n = len(before.nll)
    drawn = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    rows = np.repeat(np.arange(resamples), n)
    counts = np.bincount(rows * n + drawn.ravel(), minlength=resamples * n).reshape(resamples, n)

    def perplexities(scored: Any) -> np.ndarray:
        return np.exp((counts @ np.asarray(scored.nll)) / (counts @ np.asarray(scored.tokens, dtype=float)))

    resampled = perplexities(before) / perplexities(after)
    return ratio, percentiles(resampled), resampled
