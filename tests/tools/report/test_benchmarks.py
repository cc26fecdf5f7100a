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
    forgetting_section,
    gain_rows,
    study_lines,
    study_markdown,
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
    select = lambda run, epoch: (1, folder / "epoch=01.metrics.json")  # noqa: E731
    assert "since epoch 00" not in benchmark_section([(tmp_path, "run")], select, args)  # the accuracy table alone
    text, gains = forgetting_section([(tmp_path, "run")], select, args)
    assert "Benchmark accuracy since epoch 00 (the forgetting summary's multiple-choice part" in text
    assert "| run | 00 | 01 | b | ranked | clip | 4 | +0.750 |" in text and gains[0]["Accuracy change"] == "+0.750"
    assert forgetting_section([(tmp_path, "run")], lambda run, epoch: (0, folder / "epoch=00.metrics.json"), args) == (
        "",
        [],
    )
    # an epoch-00 point that is a checkpoint evaluated on its own is not before training: no change since it
    (folder / "epoch=00.metrics.json").write_text(json.dumps({"benchmarks": {"b": {"sha256": "x"}}, "ckpt_path": "c"}))
    assert forgetting_section([(tmp_path, "run")], select, args) == ("", [])


def test_a_studys_figures_are_means_over_seeds_with_seeds_then_items_drawn():
    right = lambda values, condition="clip": [row(condition, f"i{k}", 0 if v else 1) for k, v in enumerate(values)]  # noqa: E731
    seeds = [
        (right([1, 1, 1, 0]) + right([1, 0, 0, 0], "no_clip"), right([1, 0, 0, 0]) + right([1, 0, 0, 0], "no_clip")),
        (right([1, 1, 0, 0]) + right([0, 0, 0, 0], "no_clip"), right([0, 0, 0, 0]) + right([0, 0, 0, 0], "no_clip")),
    ]
    lines = {line["Condition"]: line for line in study_lines("ft", 2, seeds, resamples=0, seed=0)}
    assert lines["clip"]["Accuracy"] == "0.625" and lines["clip"]["Change since 00"] == "+0.500"
    assert lines["no_clip"]["Accuracy"] == "0.125" and lines["no_clip"]["Change since 00"] == "+0.000"
    assert lines["clip"]["Seeds"] == "2" and lines["clip"]["Items"] == "4"
    bounded = {line["Condition"]: line for line in study_lines("ft", 2, seeds, resamples=200, seed=0)}
    assert (
        bounded["clip"]["Accuracy"].startswith("0.625 [")
        and bounded["no_clip"]["Change since 00"] == "+0.000 [+0.000, +0.000]"
    )
    without_start = study_lines("ft", 2, [(seeds[0][0], None), seeds[1]], resamples=0, seed=0)
    assert {line["Change since 00"] for line in without_start} == {"–"}  # not every seed has an epoch 00
    assert "hierarchical intervals (200 resamples" in study_markdown(list(bounded.values()), 200)
    assert study_markdown([], 0) == ""


def test_the_report_puts_the_change_since_epoch_00_in_the_forgetting_summary_and_its_file(tmp_path):
    from interleave.tools.report.cli import main
    from tests.helpers import answer_set, write_answered_point

    run = tmp_path / "run"
    for epoch in (0, 1):
        header = {"benchmarks": {"mc": {"sha256": "h", "subset": None}}, "bench_rows": 4}
        write_answered_point(run, epoch, answer_set(epoch, clips=2), **header)
        rows = [row(c, f"i{k}", 0 if k <= epoch else 1) for c in ("clip", "no_clip") for k in range(2)]
        (run / "predictions" / f"epoch={epoch:02d}.bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([str(run), "--out", str(tmp_path / "out"), "--bootstrap", "20"]) == 0
    text = (tmp_path / "out" / "report.md").read_text()
    assert text.index("Forgetting (the reported epoch") < text.index("Benchmark accuracy since epoch 00")
    saved = (tmp_path / "out" / "forgetting_benchmarks.csv").read_text().splitlines()
    assert saved[0] == "Run,Since,Epoch,Benchmark,Scoring,Condition,Items,Accuracy change"
    assert saved[1].endswith('/run,00,01,b,ranked,clip,2,"+0.500 [+0.000, +1.000]"') and len(saved) == 3
