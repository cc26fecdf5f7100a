"""The forgetting summary: gain (F1 last − epoch 00) and retention (identity accuracy last /
epoch 00) with paired intervals: identical epochs give 0 and 100 % with zero width, a known shift
gives its value, the ratio's interval equals one computed by hand on the same draws."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from interleave.tools.report import forgetting
from interleave.tools.report.cli import main
from tests.helpers import WORDS, answer_set, reference_draws, write_answered_point, write_point

WORDS3 = WORDS[:3]


def shifted(answers: list[dict], keep: str) -> list[dict]:
    """The same queries answered otherwise: every yes/no answer right; identity right only for `keep`."""
    out = []
    for row in answers:
        if row["task"] == "identity":
            out.append({**row, "parsed": [row["label"] == keep] * len(row["answers"])})
        else:
            out.append({**row, "parsed": [row["truth"]] * len(row["answers"])})
    return out


def baseline(answers: list[dict]) -> list[dict]:
    """Every yes/no answer "no" (F1 0), every identity answer right."""
    return [
        {**row, "parsed": [True] * len(row["answers"]) if row["task"] == "identity" else ["no"] * len(row["answers"])}
        for row in answers
    ]


def summary(run: Path, resamples: int = 200, seed: int = 0) -> forgetting.Forgetting:
    (found,), notes = forgetting.summaries([(run, "run")], None, None, resamples, seed)
    return found


def test_identical_epochs_gain_nothing_with_a_zero_width_interval(tmp_path: Path) -> None:
    answers = answer_set(3, words=WORDS3, clips=3)
    for epoch in (0, 2):
        write_answered_point(tmp_path / "run", epoch, answers)
    found = summary(tmp_path / "run")
    assert found.last == 2
    assert set(found.values) == {("interleaved", "identity"), ("interleaved", "synonym"), ("interleaved", "hypernym")}
    for key, value in found.values.items():
        expected = 1.0 if key[1] == "identity" else 0.0
        assert value == pytest.approx(expected) and found.bounds[key] == pytest.approx((expected, expected)), key


def test_a_known_shift_and_the_ratio_against_a_reference(tmp_path: Path) -> None:
    answers = answer_set(4, words=WORDS3, clips=3)
    write_answered_point(tmp_path / "run", 0, baseline(answers))
    write_answered_point(tmp_path / "run", 1, shifted(answers, keep="Siren"))
    found = summary(tmp_path / "run", resamples=300, seed=9)
    for task in ("synonym", "hypernym"):  # F1 0 -> 1 in every resample (each clip has a yes query)
        assert found.values[("interleaved", task)] == pytest.approx(1.0)
        assert found.bounds[("interleaved", task)] == pytest.approx((1.0, 1.0))
    assert found.values[("interleaved", "identity")] == pytest.approx(1 / 3)  # one word of three kept
    words = sorted(WORDS3)
    draws = reference_draws(words, {w: ["0", "1", "2"] for w in words}, 300, 9)
    # identity at epoch 00 is right everywhere, so the ratio is the share of Siren's clips in the resample
    ratios = [sum(n for (w, _), n in weight.items() if w == "Siren") / sum(weight.values()) for weight in draws]
    assert found.bounds[("interleaved", "identity")] == pytest.approx(tuple(np.percentile(ratios, [2.5, 97.5])))


def test_the_plain_report_adds_the_summary_and_its_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "runs"
    answers = answer_set(5, words=WORDS3, clips=2)
    write_answered_point(parent / "version_0", 0, baseline(answers))
    write_answered_point(parent / "version_0", 1, shifted(answers, keep="Dog"))
    write_answered_point(parent / "version_1", 0, answers)  # only epoch 00: named, no row
    write_point(parent / "version_2", 0, {"layout": "interleaved", "val/identity/accuracy": 0.5})  # no answers
    write_point(parent / "version_2", 3, {"layout": "interleaved", "val/identity/accuracy": 0.25})
    out = tmp_path / "out"
    assert main([str(parent), "--out", str(out), "--bootstrap", "50"]) == 0
    markdown = capsys.readouterr().out
    section = markdown.split("Forgetting (", 1)[1]
    assert "paired 95 % bootstrap interval" in section
    line = next(x for x in section.splitlines() if x.startswith("| runs/version_0 | interleaved |"))
    assert line.startswith(
        "| runs/version_0 | interleaved | 00 → 01 | +100.0 [+100.0, +100.0] | +100.0 [+100.0, +100.0] |"
    )
    assert "| runs/version_2 | interleaved | 00 → 03 | – | – | 50.0 |" in section  # from the metrics files
    assert "runs/version_1: only epoch 00 is evaluated" in section
    assert "runs/version_2: no paired intervals, no saved answers" in section
    with (out / "forgetting.csv").open(newline="") as f:
        written = list(csv.DictReader(f))
    assert [(r["Run"], r["Last"]) for r in written] == [("runs/version_0", "1"), ("runs/version_2", "3")]
    assert float(written[0]["synonym F1 gain"]) == pytest.approx(1.0) and written[1]["synonym F1 gain"] == ""
    assert float(written[1]["identity retention"]) == pytest.approx(0.5) and written[1]["identity retention lo"] == ""
    # a report of runs with one point each has no section
    assert main([str(parent / "version_1"), "--out", str(out), "--bootstrap", "0"]) == 0
    assert "Forgetting" not in capsys.readouterr().out


def test_a_study_conditions_summary_is_the_mean_over_seeds(tmp_path: Path) -> None:
    from interleave.tools.report.study import study_report

    study = tmp_path / "study"
    for s, keep in ((0, "Siren"), (1, "Dog")):
        answers = answer_set(s, words=WORDS3, clips=2)
        write_answered_point(study / "ft" / f"seed={s}", 0, baseline(answers))
        write_answered_point(study / "ft" / f"seed={s}", 2, shifted(answers, keep=keep))
    write_answered_point(study / "one" / "seed=0", 0, baseline(answer_set(7, words=WORDS3, clips=2)))
    write_answered_point(study / "one" / "seed=0", 1, answer_set(8, words=WORDS3, clips=2))
    found = study_report(study, bootstrap=100, seed=2, per_seed=True)
    ft, one = found.forgetting
    assert ft.run == "ft" and ft.seeds == 2 and ft.values[("interleaved", "identity")] == pytest.approx(1 / 3)
    lo, hi = ft.bounds[("interleaved", "identity")]
    assert lo < 1 / 3 < hi
    # one seed: the run's own summary, from the same draws
    alone = forgetting.summaries([(study / "one" / "seed=0", "one/seed=0")], None, None, 100, 2)[0][0]
    assert one.values == pytest.approx(alone.values) and one.bounds == pytest.approx(alone.bounds)
    assert [f.run for f in found.seed_forgetting] == ["ft/seed=0", "ft/seed=1", "one/seed=0"]
    markdown = forgetting.to_markdown(found.forgetting, [], 100, 2, "Study condition")
    assert "| Study condition | Condition | Epochs |" in markdown and "| ft | interleaved | 00 → 02 |" in markdown


def test_retention_is_undefined_where_epoch_zero_labels_nothing(tmp_path: Path) -> None:
    answers = answer_set(6, words=WORDS3, clips=2)
    none_right = [{**r, "parsed": [False] * 2} if r["task"] == "identity" else r for r in answers]
    write_answered_point(tmp_path / "run", 0, none_right)
    write_answered_point(tmp_path / "run", 1, answers)
    found = summary(tmp_path / "run", resamples=20)
    assert np.isnan(found.values[("interleaved", "identity")]) and ("interleaved", "identity") not in found.bounds
    assert "| – |" in forgetting.to_markdown([found], [], 20, 0)
    assert json.dumps(forgetting.csv_rows([found])[1][0]["identity retention"]) == "null"


def test_points_about_other_queries_are_named_not_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_answered_point(tmp_path / "run", 0, answer_set(1, words=WORDS3, clips=2))
    write_answered_point(tmp_path / "run", 1, answer_set(1, words=WORDS[:2], clips=2))
    found, notes = forgetting.summaries([(tmp_path / "run", "run")], None, None, 10, 0)
    assert found == [] and len(notes) == 1 and "run: no forgetting figures" in notes[0] and "same queries" in notes[0]
    broken = tmp_path / "run" / "predictions" / "epoch=00.jsonl"
    broken.write_text("".join(broken.read_text().splitlines(keepends=True)[:-1]) + "[1]\n")  # a bad row, not a cut
    (points,) = [forgetting.load_points(tmp_path / "run", "run", None, None)]
    assert points.answers is None and f"{broken}:" in points.note
    assert main([str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--bootstrap", "10"]) == 0
    assert "run: no paired intervals" in capsys.readouterr().out


def test_an_epoch_zero_that_is_a_checkpoint_evaluated_on_its_own_is_not_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 34: `train.py validate --ckpt_path X` of a checkpoint that does not say its epochs files
    its point as epoch 00; its metrics file names X, and the summary does not take it for epoch 00
    before training."""
    answers = answer_set(3, words=WORDS3, clips=2)
    write_answered_point(
        tmp_path / "run",
        0,
        answers,
        ckpt_path="runs/demo/version_0/checkpoints/last.ckpt",
        ckpt_global_step=None,
        seed_epoch=0,
    )
    write_answered_point(tmp_path / "run", 1, shifted(answers, keep="Siren"))
    found, notes = forgetting.summaries([(tmp_path / "run", "run")], None, None, 10, 0)
    assert found == [] and notes == [
        "run: epoch 00 is the checkpoint runs/demo/version_0/checkpoints/last.ckpt evaluated "
        "on its own (train.py validate --ckpt_path), not the model before training"
    ]
    assert main([str(tmp_path / "run"), "--epoch", "0", "--out", str(tmp_path / "out"), "--bootstrap", "0"]) == 0
    markdown = capsys.readouterr().out
    assert "Forgetting" not in markdown and "before training" not in markdown
    assert (
        "run: epoch 00 is the checkpoint runs/demo/version_0/checkpoints/last.ckpt evaluated on its own "
        "(train.py validate --ckpt_path), its answers drawn with the seeds of epoch 00"
    ) in markdown
