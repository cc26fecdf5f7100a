"""The two-level bootstrap: resampling units, the draws, intervals and paired differences."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from interleave.errors import InterleaveError
from interleave.eval.evaluate import condition_metrics
from interleave.tools.bootstrap import (
    Design,
    clip_key,
    differences_markdown,
    draw,
    intervals,
    item_draws,
    item_interval,
    multiplicities,
    paired_differences,
    resampled_metrics,
    seed_counts,
    seed_intervals,
    seed_item_interval,
    seed_means,
    shared_resamples,
    word_key,
)
from tests.helpers import prediction, reference_draws, reference_seed_draws


def rows_of(words=("Siren", "Dog", "Rain"), clips=4, condition="interleaved", flip=0):
    out = []
    for w, label in enumerate(words):
        slug = label.lower()
        for k in range(clips):
            out.append(
                prediction(
                    id=f"identity/{slug}/{k}",
                    task="identity",
                    condition=condition,
                    label=label,
                    answers=["a"],
                    parsed=[bool((w + k + flip) % 2)],
                )
            )
            for truth, candidate in (("yes", "alarm"), ("no", "cat")):
                answer = "yes" if (w * k + (truth == "yes") + flip) % 3 else "no"
                out.append(
                    prediction(
                        id=f"synonym/{slug}/{k}/{candidate}",
                        task="synonym",
                        condition=condition,
                        label=label,
                        candidate=candidate,
                        truth=truth,
                        answers=["a", "b"],
                        parsed=[answer, None if k == 1 else answer],
                    )
                )
    return out


def test_resampling_units_follow_the_id_scheme():
    row = prediction(id="synonym/heart_sounds_heartbeat/2/alarm", task="synonym", label="Heart sounds, heartbeat")
    assert word_key(row) == "Heart sounds, heartbeat" and clip_key(row) == "2"
    assert clip_key(prediction(id="identity/siren/0", task="identity", label="Siren")) == "0"
    # an id outside the scheme is its own clip; a row without a label its own word
    assert clip_key(prediction(id="synonym/0/sinusoid", task="synonym", label="Sine wave")) == "id:synonym/0/sinusoid"
    assert word_key(prediction(id="q7", task="synonym", label="")) == "id:q7"


def test_draws_are_two_level_seeded_and_whole():
    design = Design.of(rows_of(clips=3) + rows_of(words=("Wind",), clips=5))
    assert design.words == ["Dog", "Rain", "Siren", "Wind"] and list(design.sizes) == [3, 3, 3, 5]
    words, clips = draw(design, 500, seed=1)
    assert words.shape == (500, 4) and clips.shape == (500, 14)
    assert (words.sum(axis=1) == 4).all()  # as many words drawn as there are
    # each drawn word brings as many clip draws as it has clips, all among its own clips
    for w, (start, size) in enumerate(zip(design.starts, design.sizes)):
        assert (clips[:, start : start + size].sum(axis=1) == words[:, w] * size).all()
    again = draw(design, 500, seed=1)
    assert (again[0] == words).all() and (again[1] == clips).all()
    assert not (draw(design, 500, seed=2)[1] == clips).all()


def test_rows_of_one_clip_move_together_and_text_rows_follow_their_word():
    rows = rows_of()
    text = [
        replace(r, condition="text", id=f"synonym/{r.label.lower()}/0/{r.candidate}")
        for r in rows
        if r.task == "synonym" and r.id.split("/")[2] == "0"
    ]
    design = Design.of(rows + text)
    counts = draw(design, 200, seed=0)
    weights = multiplicities(design, counts, rows, "interleaved")
    by_clip = {}
    for i, row in enumerate(rows):
        by_clip.setdefault((row.label, clip_key(row)), []).append(i)
    for members in by_clip.values():
        assert (weights[:, members] == weights[:, members[:1]]).all()
    text_weights = multiplicities(design, counts, text, "text")
    word = {w: i for i, w in enumerate(design.words)}
    assert (text_weights == counts[0][:, [word[r.label] for r in text]]).all()


def test_intervals_bracket_the_metrics_and_are_seeded():
    rows = rows_of(words=("Siren", "Dog", "Rain", "Wind", "Sea", "Bird"))
    point = condition_metrics(rows, "val")
    found = intervals({"interleaved": rows}, {"interleaved": "val"}, resamples=300, seed=0)
    assert set(found) == set(point)
    for tag, (lo, hi) in found.items():
        assert lo <= point[tag] <= hi, tag
    assert found == intervals({"interleaved": rows}, {"interleaved": "val"}, resamples=300, seed=0)
    assert intervals({"interleaved": rows}, {"interleaved": "val"}, resamples=0) == {}


def test_paired_differences_share_the_draws():
    a = {"interleaved": rows_of()}
    b = {"interleaved": rows_of(flip=1)}
    same = paired_differences(a, a, {"interleaved": "interleaved"}, resamples=100)
    assert all(diff == lo == hi == 0 for _, _, diff, lo, hi in same.values())
    each = {}
    found = paired_differences(a, b, {"interleaved": "interleaved"}, resamples=200, seed=0, each=each)
    assert each["b"] == intervals(b, {"interleaved": "interleaved"}, resamples=200, seed=0)  # the same draws
    va, vb, diff, lo, hi = found["interleaved/shard/synonym/f1"]
    assert diff == pytest.approx(vb - va) and lo <= diff <= hi
    assert paired_differences(a, b, {"interleaved": "i"}, resamples=0)["i/identity/accuracy"][3:] == (None, None)
    table = differences_markdown(found, "A = a; B = b", {"shard/synonym/f1": "Syno F1"}, 200, 0)
    assert "| interleaved | Syno F1 |" in table.splitlines()[4]  # the named metric first
    with pytest.raises(InterleaveError, match="not about the same queries"):
        paired_differences(a, {"interleaved": rows_of(words=("Siren",))}, {"interleaved": "x"}, resamples=10)
    with pytest.raises(InterleaveError, match="share no condition"):
        paired_differences(a, {"text": rows_of()}, {"interleaved": "x", "text": "t"}, resamples=10)


def test_a_thousand_resamples_of_a_thousand_queries_take_seconds():
    import time

    rows = rows_of(words=tuple(f"Word {i}" for i in range(84)), clips=4)  # 1008 queries, 1680 answers
    condition_metrics(rows, "val")  # imports done
    start = time.perf_counter()
    intervals({"interleaved": rows}, {"interleaved": "val"}, resamples=1000, seed=0)
    assert time.perf_counter() - start < 60  # measured about 2 s on 2 shared cores


# --- the seed level -------------------------------------------------------------------------


def test_seed_counts_draw_the_seeds_with_replacement():
    counts = seed_counts(3, 400, seed=5)
    drawn = reference_seed_draws(3, 400, 5)
    assert counts.shape == (400, 3) and (counts.sum(axis=1) == 3).all()
    assert (counts == np.stack([np.bincount(row, minlength=3) for row in drawn])).all()
    assert (seed_counts(1, 10, seed=5) == 1).all()


def test_seed_means_weigh_each_drawn_seed_by_its_count_and_ignore_undrawn_nans():
    counts = np.array([[2, 0, 1], [0, 3, 0], [1, 1, 1]])
    values = [
        {"t": np.array([1.0, np.nan, np.nan])},
        {"t": np.array([np.nan, 2.0, 6.0])},
        {"t": np.array([4.0, 7.0, 0.0]), "only": np.zeros(3)},
    ]
    means = seed_means(values, counts)
    assert list(means) == ["t"]  # a tag some seeds lack is not averaged
    assert means["t"][0] == pytest.approx((2 * 1 + 4) / 3)  # seed 1's NaN is not drawn
    assert means["t"][1] == pytest.approx(2.0)
    assert np.isnan(means["t"][2])  # a drawn seed (seed 0) without a value


def test_seed_intervals_equal_a_reference_computed_by_hand():
    """Three seeds' answers about the same queries: the hierarchical interval against the same
    draws made and scored by hand (identity accuracy, synonym F1 from counts)."""
    seeds = [rows_of(words=("Siren", "Dog", "Rain", "Wind"), clips=3, flip=f) for f in (0, 1, 2)]
    seeds[2] = [
        replace(r, parsed=["yes"] * len(r.parsed)) if r.task == "synonym" and r.label == "Dog" else r for r in seeds[2]
    ]
    found = seed_intervals(
        [{"interleaved": rows} for rows in seeds], [{"interleaved": "val"}] * 3, resamples=300, seed=7
    )
    words = sorted({r.label for r in seeds[0]})
    clips = {w: sorted({clip_key(r) for r in seeds[0] if r.label == w}) for w in words}
    draws = reference_draws(words, clips, 300, 7)
    chosen = reference_seed_draws(3, 300, 7)

    def accuracy(rows, weight):
        hits = sum(weight[(r.label, clip_key(r))] * sum(r.parsed) for r in rows if r.task == "identity")
        return hits / sum(weight[(r.label, clip_key(r))] * len(r.parsed) for r in rows if r.task == "identity")

    def f1(rows, weight):
        tp = fp = fn = 0
        for r in rows:
            if r.task == "synonym":
                for p in r.parsed:
                    n = weight[(r.label, clip_key(r))]
                    tp += n * (p == "yes" and r.truth == "yes")
                    fp += n * (p == "yes" and r.truth == "no")
                    fn += n * (p != "yes" and r.truth == "yes")
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0

    for tag, statistic in (("val/identity/accuracy", accuracy), ("val/shard/synonym/f1", f1)):
        values = [np.mean([statistic(seeds[s], weight) for s in chosen[b]]) for b, weight in enumerate(draws)]
        assert found[tag] == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), abs=1e-6), tag


def test_one_seed_is_the_runs_own_interval():
    rows = rows_of(words=("Siren", "Dog", "Rain"), clips=3)
    alone = intervals({"interleaved": rows}, {"interleaved": "val"}, resamples=200, seed=3)
    assert seed_intervals([{"interleaved": rows}], [{"interleaved": "val"}], resamples=200, seed=3) == alone
    twice = seed_intervals([{"interleaved": rows}] * 2, [{"interleaved": "val"}] * 2, resamples=200, seed=3)
    assert twice == pytest.approx(alone)  # two identical seeds: the seed level adds nothing


def test_shared_resamples_score_the_same_answers_on_the_same_draws_once(monkeypatch):
    from interleave.eval import evaluate

    rows = rows_of(words=("Siren", "Dog", "Rain"), clips=2)
    calls = []
    original = evaluate.condition_metrics
    monkeypatch.setattr(
        evaluate, "condition_metrics", lambda found, prefix: calls.append(prefix) or original(found, prefix)
    )
    design = Design.of(rows)
    counts = draw(design, 20, seed=1)
    alone = resampled_metrics({"interleaved": rows}, {"interleaved": "val"}, design, counts)
    with shared_resamples():
        first = resampled_metrics({"interleaved": rows}, {"interleaved": "val"}, design, counts)
        again = resampled_metrics({"interleaved": rows}, {"interleaved": "val/interleaved"}, design, counts)
        other = resampled_metrics(
            {"interleaved": rows_of(words=("Siren", "Dog", "Rain"), clips=2, flip=1)},
            {"interleaved": "val"},
            design,
            counts,
        )
    assert calls == ["val"] * 20 + ["val"] * 20 + ["val"] * 20  # alone, first, other: `again` was not scored
    assert set(first) == set(alone) and all((first[t] == alone[t]).all() for t in alone)
    assert all(
        np.array_equal(again["val/interleaved" + t.removeprefix("val")], v, equal_nan=True) for t, v in first.items()
    )
    assert any(not np.array_equal(other[t], first[t], equal_nan=True) for t in first)
    resampled_metrics({"interleaved": rows}, {"interleaved": "val"}, design, counts)  # outside: scored again
    assert len(calls) == 80


def test_items_are_resampled_with_the_same_draws_for_paired_values():
    rng = np.random.default_rng(0)
    draws = item_draws(4, 2000, rng)
    assert draws.shape == (2000, 4) and item_draws(0, 10, rng) is None and item_draws(4, 0, rng) is None
    right = np.array([1.0, 0.0, 1.0, 1.0])
    lo, hi = item_interval(right, draws)
    assert 0.0 <= lo < 0.75 < hi <= 1.0
    assert item_interval(right, None) is None
    assert item_interval(np.array([0.0, 0.0, 1.0, np.nan]), draws)[1] == 1.0  # an item not asked is left out
    assert item_interval(np.zeros(4), draws) == (0.0, 0.0)


def test_the_seed_and_item_interval_draws_seeds_then_items():
    same = [np.array([1.0, 0.0, 1.0, 1.0])] * 3  # three seeds that agree: only the items vary
    lo, hi = seed_item_interval(same, 2000, 0)
    assert 0.0 <= lo < 0.75 < hi <= 1.0
    apart = [np.ones(4), np.zeros(4), np.ones(4)]  # the items agree, the seeds do not
    lo, hi = seed_item_interval(apart, 2000, 0)
    assert lo == 0.0 and hi == 1.0
    assert seed_item_interval(same, 0, 0) is None and seed_item_interval([], 10, 0) is None
    assert seed_item_interval([np.ones(4)], 100, 0) == (1.0, 1.0)
