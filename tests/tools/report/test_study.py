"""`interleave report --study`: one row per condition, the mean over seeds; the hierarchical
interval against a reference made by hand; one seed worded as such; seeds at different epochs
named; tags of any condition; --per-seed; --plot with a band over seeds."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from interleave.errors import InterleaveError
from interleave.tools.report.cli import main
from interleave.tools.report.study import (
    BAND,
    LABELS,
    ONE_SEED,
    SEED_LABELS,
    study_conditions,
    study_report,
    study_series,
)
from interleave.tools.report.table import rows
from tests.helpers import WORDS, answer_set, reference_draws, reference_seed_draws, table_lines, write_answered_point


def make_study(root: Path, plan: dict[str, dict[int, list[int]]], extra: str | None = None) -> dict:
    """root/<condition>/seed=<s>/ with saved answers at each listed epoch; returns condition -> seed -> epoch -> answers."""
    written: dict = {}
    for c, (condition, seeds) in enumerate(plan.items()):
        for s, epochs in seeds.items():
            for epoch in epochs:
                answers = answer_set(100 * c + 10 * s + epoch, words=WORDS[:3], clips=2)
                if extra:
                    answers += answer_set(1000 + 100 * c + 10 * s + epoch, condition=extra, words=WORDS[:3], clips=2)
                write_answered_point(root / condition / f"seed={s}", epoch, answers)
                written.setdefault(condition, {}).setdefault(s, {})[epoch] = answers
    return written


def by_hand(answers: list[dict], weight, task: str) -> float:
    """Identity accuracy or a relation's F1 of one seed's answers, each clip counted `weight` times."""
    mine = [r for r in answers if r["task"] == task and r["condition"] == "interleaved"]
    key = lambda r: (r["label"], r["id"].split("/")[2])  # noqa: E731
    if task == "identity":
        return sum(weight[key(r)] * sum(r["parsed"]) for r in mine) / sum(
            weight[key(r)] * len(r["parsed"]) for r in mine
        )
    tp = sum(weight[key(r)] * (p == "yes") for r in mine if r["truth"] == "yes" for p in r["parsed"])
    fp = sum(weight[key(r)] * (p == "yes") for r in mine if r["truth"] == "no" for p in r["parsed"])
    fn = sum(weight[key(r)] * (p != "yes") for r in mine if r["truth"] == "yes" for p in r["parsed"])
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def test_the_row_is_the_mean_over_seeds_with_the_hierarchical_interval(tmp_path: Path) -> None:
    written = make_study(tmp_path / "study", {"ft": {0: [0, 2], 1: [0, 2], 2: [0, 2]}})
    found = study_report(tmp_path / "study", bootstrap=200, seed=4)
    (row,) = found.table
    assert row["Study condition"] == "ft" and row["Seeds"] == "3" and row["Epoch"] == 2
    answers = [written["ft"][s][2] for s in (0, 1, 2)]
    ones = Counter({(w, str(k)): 1 for w in WORDS[:3] for k in range(2)})  # every clip once: the seed's own figure
    clips = {w: ["0", "1"] for w in sorted(WORDS[:3])}
    draws = reference_draws(sorted(WORDS[:3]), clips, 200, 4)
    chosen = reference_seed_draws(3, 200, 4)
    for column, task in (("Identity Acc", "identity"), ("Syno F1", "synonym"), ("Hyper F1", "hypernym")):
        per_seed = [by_hand(a, ones, task) for a in answers]
        assert row[column] == pytest.approx(np.mean(per_seed)), column
        values = [np.mean([by_hand(answers[s], weight, task) for s in chosen[b]]) for b, weight in enumerate(draws)]
        lo, hi = np.percentile(values, [2.5, 97.5])
        assert (row[f"{column} lo"], row[f"{column} hi"]) == pytest.approx((lo, hi), abs=1e-6), column


def test_one_seed_is_worded_as_such_and_its_interval_is_the_runs_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_study(tmp_path / "study", {"base": {3: [0]}, "ft": {0: [0, 1], 1: [0, 1]}})
    assert main(["--study", str(tmp_path / "study"), "--out", str(tmp_path / "out"), "--bootstrap", "100"]) == 0
    markdown = capsys.readouterr().out
    body = table_lines(markdown)
    assert [cells[:4] for cells in body] == [["base", ONE_SEED, "interleaved", "00"], ["ft", "2", "interleaved", "01"]]
    assert "base: 1 seed (seed=3): its interval is over queries only" in markdown
    assert "hierarchical bootstrap" in markdown and "seeds are drawn with replacement" in markdown
    (alone,) = rows([tmp_path / "study" / "base" / "seed=3"], bootstrap=100)
    header = next(line for line in markdown.splitlines() if line.startswith("| Study condition"))
    names = [c.strip() for c in header.strip("|").split(" | ")]
    first = dict(zip(names, body[0]))
    assert (
        first["Syno F1"]
        == f"{100 * alone['Syno F1']:.1f} [{100 * alone['Syno F1 lo']:.1f}, {100 * alone['Syno F1 hi']:.1f}]"
    )
    with (tmp_path / "out" / "report.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        written = list(reader)
    assert tuple(reader.fieldnames or ())[: len(LABELS)] == LABELS
    assert written[0]["Seeds"] == ONE_SEED and float(written[0]["Syno F1 lo"]) == pytest.approx(alone["Syno F1 lo"])


def test_seeds_at_different_epochs_are_named_never_mixed(tmp_path: Path) -> None:
    make_study(tmp_path / "study", {"ft": {0: [0, 1, 2], 1: [0, 1]}})
    found = study_report(tmp_path / "study")
    (row,) = found.table
    assert row["Epoch"] == 1
    assert (
        "ft: its seeds reached different last epochs (seed=0: 02, seed=1: 01); its row is at epoch 01, "
        "the last every seed reached"
    ) in found.notes
    assert study_report(tmp_path / "study", epoch=0).table[0]["Epoch"] == 0
    with pytest.raises(InterleaveError, match=r"seed=1: no epoch point 02 \(available: 00, 01\)"):
        study_report(tmp_path / "study", epoch=2)


def test_unevaluated_seeds_and_extra_conditions(tmp_path: Path) -> None:
    """A seed without points is named and left out; tags of a condition the registry does not
    know (a probe's) give their own row, with intervals."""
    make_study(tmp_path / "study", {"ft": {0: [0], 1: [0]}}, extra="silence")
    (tmp_path / "study" / "ft" / "seed=2").mkdir()
    (tmp_path / "study" / "submitit").mkdir()  # interleave study's own folder: not a condition
    assert [c.name for c in study_conditions(tmp_path / "study")] == ["ft"]
    found = study_report(tmp_path / "study", bootstrap=50)
    assert [(r["Study condition"], r["Condition"], r["Seeds"]) for r in found.table] == [
        ("ft", "interleaved", "2"),
        ("ft", "silence", "2"),
    ]
    assert found.table[1]["Syno F1 lo"] <= found.table[1]["Syno F1"] <= found.table[1]["Syno F1 hi"]
    assert any("seed=2 has no evaluated point yet" in n for n in found.notes)


def test_per_seed_rows_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_study(tmp_path / "study", {"ft": {0: [0, 1], 1: [0, 1]}})
    out = tmp_path / "out"
    assert main(["--study", str(tmp_path / "study"), "--per-seed", "--out", str(out), "--bootstrap", "30"]) == 0
    markdown = capsys.readouterr().out
    assert "Each seed's own row" in markdown
    with (out / "report_seeds.csv").open(newline="") as f:
        seeds = list(csv.DictReader(f))
    assert [r["Run"] for r in seeds] == ["ft/seed=0", "ft/seed=1"] and list(seeds[0])[: len(SEED_LABELS)] == list(
        SEED_LABELS
    )
    (own,) = rows([tmp_path / "study" / "ft" / "seed=1"], bootstrap=30)
    assert float(seeds[1]["Hyper F1"]) == pytest.approx(own["Hyper F1"])
    with (out / "report.csv").open(newline="") as f:
        (mean,) = list(csv.DictReader(f))
    assert float(mean["Hyper F1"]) == pytest.approx((float(seeds[0]["Hyper F1"]) + own["Hyper F1"]) / 2)
    assert (out / "forgetting.csv").is_file() and (out / "forgetting_seeds.csv").is_file()


def test_plot_draws_the_mean_with_a_band_over_seeds(tmp_path: Path) -> None:
    from matplotlib.collections import PolyCollection

    from interleave.tools.report.figure import curves_figure

    make_study(tmp_path / "study", {"ft": {0: [0, 1, 2], 1: [0, 1, 2], 2: [0, 1, 2, 3]}})
    series = study_series(tmp_path / "study")
    (points,) = series.values()
    assert [p["Epoch"] for p in points] == [0, 1, 2]  # seed 2's epoch 3 is not drawn: the other seeds lack it
    for p in points:
        values = [
            json.loads(
                (
                    tmp_path / "study" / "ft" / f"seed={s}" / "predictions" / f"epoch={p['Epoch']:02d}.metrics.json"
                ).read_text()
            )["val/shard/synonym/f1"]
            for s in range(3)
        ]
        assert (p["Syno F1"], p["Syno F1 min"], p["Syno F1 max"]) == pytest.approx(
            (np.mean(values), min(values), max(values))
        )
    figure = curves_figure(series, BAND)
    synonym = figure.axes[0]
    (band,) = [c for c in synonym.collections if isinstance(c, PolyCollection)]
    edges = band.get_paths()[0].vertices
    assert edges[:, 1].min() == pytest.approx(min(p["Syno F1 min"] for p in points))
    assert edges[:, 1].max() == pytest.approx(max(p["Syno F1 max"] for p in points))
    assert list(synonym.lines[0].get_ydata()) == pytest.approx([p["Syno F1"] for p in points])
    assert figure._suptitle.get_text() == BAND
    out = tmp_path / "out"
    assert main(["--study", str(tmp_path / "study"), "--plot", "--out", str(out), "--bootstrap", "0"]) == 0
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_study_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty" / "a").mkdir(parents=True)
    assert main(["--study", str(tmp_path / "empty"), "--out", str(tmp_path)]) == 2
    assert "no <condition>/seed=<s>/ run folder found" in capsys.readouterr().err
    assert main(["--study", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--per-seed"])
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--study", str(tmp_path)])
    make_study(tmp_path / "study", {"ft": {0: [0], 1: [0]}})
    metrics = tmp_path / "study" / "ft" / "seed=1" / "predictions" / "epoch=00.metrics.json"
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "layout": "noninterleaved"}))
    assert main(["--study", str(tmp_path / "study"), "--out", str(tmp_path)]) == 2
    assert "different main layouts" in capsys.readouterr().err


def test_a_cut_seed_is_refused_and_folders_that_are_not_conditions_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 34: a seed's saved answers cut at a line boundary stop the study's report with one line
    naming the file and both counts; a frontier's output (in the study folder, or below a seed's run)
    is no condition and no seed."""
    make_study(tmp_path / "study", {"ft": {0: [0, 1], 1: [0, 1]}})
    frontier = tmp_path / "study" / "frontier"  # `interleave frontier --out runs/<study>/frontier`
    write_answered_point(frontier / "alpha=0.0", 0, answer_set(1), frontier_key="k", alpha=0.0)
    write_answered_point(
        tmp_path / "study" / "ft" / "seed=0" / "frontier" / "last" / "alpha=0.0",
        0,
        answer_set(1),
        frontier_key="k",
        alpha=0.0,
    )
    (tmp_path / "study" / "submitit").mkdir()
    found = study_report(tmp_path / "study", bootstrap=0)
    assert [(r["Study condition"], r["Seeds"], r["Epoch"]) for r in found.table] == [("ft", "2", 1)]
    assert f"{frontier}: no seed=<s>/ folder, not a condition of the study: skipped" in found.notes
    assert not any("submitit" in note for note in found.notes)

    answers = tmp_path / "study" / "ft" / "seed=1" / "predictions" / "epoch=01.jsonl"
    lines = answers.read_text().splitlines(keepends=True)
    answers.write_text("".join(lines[:20]))
    assert main(["--study", str(tmp_path / "study"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {answers}: holds 20 answer rows, but its metrics file (epoch=01.metrics.json) says the evaluation wrote "
        f"{len(lines)}: the file was cut (an interrupted copy or a killed write) or changed since; copy it again or "
        "evaluate the point again"
    ]
    assert not (tmp_path / "out").exists()


def test_a_studys_benchmarks_are_reported_over_seeds_and_in_their_file(tmp_path: Path) -> None:
    import json

    make_study(tmp_path / "study", {"ft": {0: [0, 2], 1: [0, 2]}, "base": {0: [0, 2]}})
    for condition, seeds in (("ft", (0, 1)), ("base", (0,))):
        for s in seeds:
            for epoch in (0, 2):
                folder = tmp_path / "study" / condition / f"seed={s}" / "predictions"
                rows = [
                    {
                        "benchmark": "mc",
                        "scoring": "ranked",
                        "condition": "clip",
                        "id": f"i{k}",
                        "correct": k < epoch + s,
                    }
                    for k in range(4)
                ]
                (folder / f"epoch={epoch:02d}.bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
                metrics = json.loads((folder / f"epoch={epoch:02d}.metrics.json").read_text())
                metrics |= {"benchmarks": {"mc": {"sha256": "h", "subset": None}}, "bench_rows": 4}
                (folder / f"epoch={epoch:02d}.metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "out"
    assert main(["--study", str(tmp_path / "study"), "--out", str(out), "--bootstrap", "50"]) == 0
    text = (out / "report.md").read_text()
    assert "Multiple-choice benchmarks (docs/benchmarks.md), the mean over each condition's seeds" in text
    lines = {r["Study condition"]: r for r in csv.DictReader((out / "benchmarks.csv").open())}
    assert lines["ft"]["Accuracy"].startswith("0.625 [") and lines["ft"]["Change since 00"].startswith("+0.500 [")
    assert lines["base"]["Seeds"] == "1" and lines["base"]["Accuracy"].startswith("0.500 [")

    # a seed evaluated on another file of the benchmark is refused by name
    other = tmp_path / "study" / "base" / "seed=0" / "predictions" / "epoch=02.metrics.json"
    metrics = json.loads(other.read_text())
    metrics["benchmarks"]["mc"]["sha256"] = "other"
    other.write_text(json.dumps(metrics))
    assert main(["--study", str(tmp_path / "study"), "--out", str(out)]) == 2
