"""interleave.tools.report.benchmarks: accuracy with the clip and under each control, agreement and the
answers that change, paired bootstrap intervals over items, and runs on other benchmark files refused."""

import argparse
import json

import pytest

from interleave.errors import InterleaveError
from interleave.tools.report.benchmarks import benchmark_rows, benchmark_section, check_same_benchmarks, to_markdown


def row(condition, item, chosen, answer=0, scoring="ranked"):
    return {
        "benchmark": "b",
        "condition": condition,
        "scoring": scoring,
        "id": item,
        "chosen": chosen,
        "answer": answer,
        "correct": chosen == answer,
    }


ROWS = (
    [row("clip", f"i{k}", 0 if k < 3 else 1) for k in range(4)]
    + [row("no_clip", f"i{k}", 0) for k in range(4)]
    + [row("swap", "i0", 2)]
)


def test_each_condition_has_its_accuracy_agreement_and_changed_share():
    lines = {line["Condition"]: line for line in benchmark_rows("run", 3, ROWS, resamples=0, seed=0)}
    assert lines["clip"]["Accuracy"] == "0.750" and lines["clip"]["Agreement"] == "" and lines["clip"]["Epoch"] == "03"
    assert lines["no_clip"]["Accuracy"] == "1.000" and lines["no_clip"]["Agreement"] == "0.750"
    assert lines["no_clip"]["Changed"] == "0.250"
    assert lines["swap"]["Items"] == "1" and lines["swap"]["Changed"] == "1.000"


def test_intervals_over_items_hold_the_figure():
    lines = benchmark_rows("run", 0, ROWS, resamples=200, seed=0)
    clip = lines[0]["Accuracy"]
    value, bounds = clip.split(" ", 1)
    lo, hi = map(float, bounds.strip("[]").split(", "))
    assert lo <= float(value) <= hi and lo < hi
    assert "95 % intervals over items, 200 resamples" in to_markdown(lines, 200)
    assert to_markdown([], 200) == ""


def test_runs_on_other_files_or_subsets_of_one_benchmark_are_refused():
    a = {"benchmarks": {"b": {"sha256": "x", "subset": None}}}
    check_same_benchmarks([("r1", a), ("r2", a), ("r3", {})])
    with pytest.raises(InterleaveError, match="different files or subsets of benchmark 'b'"):
        check_same_benchmarks([("r1", a), ("r2", {"benchmarks": {"b": {"sha256": "y", "subset": None}}})])
    with pytest.raises(InterleaveError, match="subset None vs 3 items"):
        check_same_benchmarks([("r1", a), ("r2", {"benchmarks": {"b": {"sha256": "x", "subset": "3 items"}}})])


def test_the_section_reads_a_points_rows_beside_its_metrics(tmp_path):
    folder = tmp_path / "predictions"
    folder.mkdir()
    metrics = folder / "epoch=01.metrics.json"
    metrics.write_text(json.dumps({"benchmarks": {"b": {"sha256": "x", "subset": None}}}))
    (folder / "epoch=01.bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    args = argparse.Namespace(epoch=None, bootstrap=0, seed=0)
    text = benchmark_section([(tmp_path, "run")], lambda run, epoch: (1, metrics), args)
    assert "| run | 01 | b | ranked | no_clip | 4 | 1.000 | 0.750 | 0.250 |" in text
