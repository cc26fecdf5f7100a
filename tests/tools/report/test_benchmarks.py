"""interleave.tools.report.benchmarks: accuracy with the clip and under each control, agreement and the
answers that change, paired bootstrap intervals over items, and runs on other benchmark files refused."""

import argparse
import json

import pytest

from interleave.errors import InterleaveError
from interleave.tools.report.benchmarks import (
    benchmark_rows,
    benchmark_section,
    check_same_benchmarks,
    gain_rows,
    to_markdown,
)


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


def test_the_change_since_epoch_00_is_paired_over_the_items_both_points_asked():
    before = [row("clip", f"i{k}", 1) for k in range(4)]  # every item wrong at epoch 00
    (line,) = [g for g in gain_rows("run", 2, ROWS, before, resamples=0, seed=0) if g["Condition"] == "clip"]
    assert line["Accuracy change"] == "+0.750" and line["Items"] == "4" and line["Epoch"] == "02"
    assert gain_rows("run", 2, ROWS, [], resamples=0, seed=0) == []
    (bounded,) = [g for g in gain_rows("run", 2, ROWS, before, 100, 0) if g["Condition"] == "clip"]
    assert bounded["Accuracy change"].startswith("+0.750 [")


def test_the_section_adds_the_change_since_epoch_00(tmp_path):
    folder = tmp_path / "predictions"
    folder.mkdir()
    for epoch, rows in ((0, [row("clip", f"i{k}", 1) for k in range(4)]), (1, ROWS)):
        (folder / f"epoch={epoch:02d}.metrics.json").write_text(json.dumps({"benchmarks": {"b": {"sha256": "x"}}}))
        (folder / f"epoch={epoch:02d}.bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = argparse.Namespace(epoch=None, bootstrap=0, seed=0)
    text = benchmark_section([(tmp_path, "run")], lambda run, epoch: (1, folder / "epoch=01.metrics.json"), args)
    assert "Benchmark accuracy since epoch 00" in text and "| run | 00 | 01 | b | ranked | clip | 4 | +0.750 |" in text
