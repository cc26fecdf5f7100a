"""interleave.tools.frontier.benchmarks: each α's benchmark accuracy, its change and ratio from α = 0 paired
item by item (the same item draws at every α), the markdown tables and the figure's panels."""

import math

import numpy as np
import pytest
from PIL import Image

from interleave.tools.frontier.benchmarks import (
    AlphaBench,
    benchmark_frontier_rows,
    benchmark_markdown,
    benchmark_section,
)
from interleave.tools.frontier.table import FrontierRow, frontier_csv, write_frontier


def rows(correct: dict[str, list[int]], scoring: str = "ranked") -> list[dict]:
    """Benchmark rows of one point: {condition: right (1) or wrong (0) per item}."""
    return [
        {"benchmark": "mini", "scoring": scoring, "condition": condition, "id": f"i{k}", "correct": bool(v)}
        for condition, values in correct.items()
        for k, v in enumerate(values)
    ]


START = {"clip": [1, 0, 0, 1, 0, 0, 1, 0], "no_clip": [1, 0, 0, 0, 0, 0, 1, 0]}
END = {"clip": [1, 1, 1, 1, 0, 1, 1, 0], "no_clip": [1, 0, 0, 0, 0, 0, 1, 0]}


def test_each_alpha_accuracy_change_and_ratio_are_paired_on_the_items():
    found = benchmark_frontier_rows([AlphaBench(0.0, rows(START)), AlphaBench(1.0, rows(END))], resamples=200)
    by = {(r.alpha, r.condition): r for r in found}
    assert {r.task for r in found} == {"bench/mini/ranked"} and {r.metric for r in found} == {"accuracy"}
    start, end = by[(0.0, "clip")], by[(1.0, "clip")]
    assert start.value == pytest.approx(3 / 8) and end.value == pytest.approx(6 / 8)
    assert start.change == 0.0 and start.ratio == 1.0 and start.change_interval == (0.0, 0.0)
    assert end.change == pytest.approx(3 / 8) and end.ratio == pytest.approx(2.0)
    lo, hi = end.change_interval
    assert 0.0 <= lo <= 3 / 8 <= hi <= 1.0  # every item's change is 0 or +1: the paired interval is never below 0
    assert by[(1.0, "no_clip")].change == 0.0 and by[(1.0, "no_clip")].change_interval == (0.0, 0.0)
    assert found == benchmark_frontier_rows([AlphaBench(0.0, rows(START)), AlphaBench(1.0, rows(END))], 200)


def test_the_change_is_taken_on_the_items_both_alphas_asked_and_alpha_zero_is_needed():
    end = [r for r in rows(END) if r["id"] != "i1"]  # item 1 (wrong at 0, right at 1) not asked at α = 1
    found = {
        (r.alpha, r.condition): r
        for r in benchmark_frontier_rows([AlphaBench(0.0, rows(START)), AlphaBench(1.0, end)], 0)
    }
    assert found[(1.0, "clip")].value == pytest.approx(5 / 7) and found[(1.0, "clip")].change == pytest.approx(2 / 7)
    assert found[(1.0, "clip")].interval is None
    with pytest.raises(ValueError, match="alpha = 0"):
        benchmark_frontier_rows([AlphaBench(1.0, rows(END))])
    zero = {"clip": [0] * 8}
    (_, at_one) = benchmark_frontier_rows([AlphaBench(0.0, rows(zero)), AlphaBench(1.0, rows({"clip": [1] * 8}))], 0)
    assert math.isnan(at_one.ratio)  # no ratio to an accuracy of 0


def test_markdown_csv_and_figure(tmp_path):
    section = benchmark_section([AlphaBench(0.0, rows(START)), AlphaBench(1.0, rows(END))], resamples=50)
    lines = benchmark_markdown(section.rows)
    assert "### mini, ranked" in lines
    assert "| α | clip accuracy | clip change | no_clip accuracy | no_clip change |" in lines
    assert any(line.startswith("| 1 | 75.0 [") and "+37.5 [" in line for line in lines)
    assert benchmark_section([AlphaBench(0.0, []), AlphaBench(1.0, [])]).rows == ()
    shard = FrontierRow(0.0, "interleaved", "identity", "accuracy", 0.5, None, 0.0, None, 1.0, None)
    written = write_frontier(tmp_path, [shard], {"config": "c"}, 50, 0, [section])
    text = (tmp_path / "frontier.md").read_text()
    assert "## Multiple-choice benchmarks" in text and "### mini, ranked" in text
    csv_text = (tmp_path / "frontier.csv").read_text()
    assert csv_text == frontier_csv([shard, *section.rows]) and "bench/mini/ranked" in csv_text
    assert [p.name for p in written] == ["frontier.md", "frontier.csv", "frontier.png"]
    assert np.asarray(Image.open(tmp_path / "frontier.png")).shape[1] >= 2 * 500  # two panels
