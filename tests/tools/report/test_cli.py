"""The Table-2-style report: run discovery, epoch choice, rendering, CSV and CLI errors."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from interleave.tools.report import cli as report
from interleave.tools.report.cli import COLUMNS, main
from interleave.tools.report.runs import find_runs, load_run, read_metrics, rescore
from interleave.tools.report.table import rows, to_csv, to_markdown
from interleave.tools.saved_answers import answers_path, read_predictions
from tests.helpers import (
    TABLE2_ROW1,
    WORDS,
    answer_set,
    prediction,
    shard,
    table_lines,
    write_answered_point,
    write_point,
)


def test_paper_row_renders_percentages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "ltu" / "version_0"
    write_point(run, 0, {"layout": "noninterleaved", **TABLE2_ROW1, "val/loss": 0.4})
    out = tmp_path / "out"
    assert main([str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    markdown = (out / "report.md").read_text()
    assert printed == markdown
    (cells,) = table_lines(markdown)
    row = dict(zip(COLUMNS, cells))
    assert row["Run"] == "ltu/version_0" and row["Condition"] == "noninterleaved" and row["Epoch"] == "00"
    assert row["Parser"] == "unknown"  # a metrics file that does not record its parser
    expected = ["48.45", "59.50", "76.40", "96.45", "98.90", "18.31", "52.76", "30.78", "68.81"]
    assert cells[4:13] == expected  # Table 2 column order
    assert cells[13:] == ["–"] * 6  # no unparsed, no text control
    assert "unparsed = share of answers that were neither yes nor no" in markdown
    assert "Re-scored" not in markdown
    assert markdown.splitlines()[1].startswith("| --- | --- | ---: | --- | ---: |")


def test_latest_epoch_by_default_and_epoch_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "version_1"
    for epoch, acc in ((0, 0.10), (1, 0.20), (2, 0.30)):
        write_point(run, epoch, {"layout": "interleaved", "val/identity/accuracy": acc})
    assert load_run(run)["val/identity/accuracy"] == 0.30
    assert load_run(run, epoch=1)["val/identity/accuracy"] == 0.20

    assert main([str(run), "--out", str(tmp_path)]) == 0
    (cells,) = table_lines(capsys.readouterr().out)
    assert cells[2:5] == ["02", "unknown", "30.00"]
    assert main([str(run), "--epoch", "0", "--out", str(tmp_path)]) == 0
    (cells,) = table_lines(capsys.readouterr().out)
    assert cells[2:5] == ["00", "unknown", "10.00"]


def test_epoch_points_sort_numerically(tmp_path: Path) -> None:
    run = tmp_path / "version_0"
    for epoch in (2, 10, 9):
        write_point(run, epoch, {"val/identity/accuracy": epoch / 100})
    (row,) = rows([run])
    assert row["Epoch"] == 10 and row["Identity Acc"] == pytest.approx(0.10)


def test_parent_folder_finds_runs_and_extra_layouts(tmp_path: Path) -> None:
    parent = tmp_path / "runs" / "demo"
    a, b = parent / "version_2", parent / "version_10"
    write_point(
        a,
        1,
        {
            "layout": "interleaved",
            **TABLE2_ROW1,
            **shard("val/text/", 0.9, 0.8),
            "val/noninterleaved/identity/accuracy": 0.5,
            **shard("val/noninterleaved/", 0.3, 0.4),
        },
    )
    write_point(b, 3, {"layout": "interleaved", **shard("val/", 0.6, 0.7)})
    (parent / "notes").mkdir()  # a folder without metrics is ignored

    assert find_runs(parent) == [a, b]  # natural order: version_2 before version_10
    assert find_runs(a) == [a]
    table = rows([parent])
    assert [(r["Run"], r["Condition"], r["Epoch"]) for r in table] == [
        ("demo/version_2", "interleaved", 1),
        ("demo/version_2", "noninterleaved", 1),
        ("demo/version_10", "interleaved", 3),
    ]
    primary, extra, other = table
    assert primary["Syno P"] == 0.9645 and extra["Identity Acc"] == 0.5 and extra["Syno P"] == 0.31
    # the text control is filled on every condition row of its run
    assert primary["Text Syno Acc"] == extra["Text Syno Acc"] == 0.9
    assert primary["Text Hyper F1"] == extra["Text Hyper F1"] == 0.83
    assert other["Text Syno Acc"] is None and other["Identity Acc"] is None
    assert other["Syno unparsed"] == 0.64

    markdown = to_markdown(table)
    body = table_lines(markdown)
    assert len(body) == 3
    assert body[2][COLUMNS.index("Identity Acc")] == "–"  # missing identity
    assert body[1][COLUMNS.index("Text Syno F1")] == "93.00"


def test_missing_metrics_shown_as_dash(tmp_path: Path) -> None:
    run = tmp_path / "version_0"
    write_point(run, 0, {"val/shard/synonym/f1": 0.5, "val/shard/hypernym/f1": None, "val/loss": 1.0})
    table = rows([run])
    (cells,) = table_lines(to_markdown(table))
    row = dict(zip(COLUMNS, cells))
    assert row["Condition"] == "primary"  # no "layout" tag
    assert row["Syno F1"] == "50.00"
    assert all(row[c] == "–" for c in COLUMNS[4:] if c != "Syno F1")


def test_csv_has_raw_fractions(tmp_path: Path) -> None:
    run = tmp_path / "ltu" / "version_0"
    write_point(run, 4, {"layout": "interleaved", **TABLE2_ROW1, **shard("val/text/", 0.9, 0.8)})
    assert main([str(run), "--out", str(tmp_path / "new" / "dir")]) == 0
    with (tmp_path / "new" / "dir" / "report.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        (row,) = list(reader)
    assert row["Run"] == "ltu/version_0" and row["Epoch"] == "4"
    assert float(row["Syno P"]) == 0.9645 and float(row["Hyper F1"]) == 0.6881
    assert float(row["Identity Acc"]) == 0.4845
    assert float(row["Text Hyper Acc"]) == 0.8 and float(row["Text Syno F1"]) == 0.93
    assert row["Syno unparsed"] == ""


def test_to_csv_direct(tmp_path: Path) -> None:
    table = [{"Run": "r", "Condition": "interleaved", "Epoch": 0, "Syno Acc": 0.25}]
    to_csv(table, tmp_path / "t.csv")
    (row,) = list(csv.DictReader((tmp_path / "t.csv").open(newline="")))
    assert row["Syno Acc"] == "0.25" and row["Hyper Acc"] == ""


def test_error_folder_without_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    (empty / "version_0" / "predictions").mkdir(parents=True)
    assert main([str(empty), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(empty) in err and "Traceback" not in err
    assert not (tmp_path / "report.md").exists()

    assert main([str(tmp_path / "nope")]) == 2
    assert str(tmp_path / "nope") in capsys.readouterr().err


@pytest.mark.parametrize(
    "content",
    ['{"val/identity/accuracy": 0.5', "[0.5]", '{"val/shard/synonym/f1": "high"}'],
    ids=["truncated", "not-object", "not-number"],
)
def test_error_malformed_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    run = tmp_path / "version_0"
    file = write_point(run, 0, {})
    file.write_text(content)
    assert main([str(run), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(file) in err


def test_error_missing_epoch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "version_0"
    for epoch in (0, 2):
        write_point(run, epoch, {"val/identity/accuracy": 0.5})
    assert main([str(run), "--epoch", "5", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(run) in err and "05" in err and "available: 00, 02" in err


# --- --parser: re-scoring the saved answers ---------------------------------------------------

# Answers that the two parsers read differently ("paper" / "extended" in the comments).
PREDICTIONS = [
    # synonym, primary layout: paper yes None | None no | None None; extended yes yes | yes no | yes yes
    {
        "task": "synonym",
        "condition": "interleaved",
        "truth": "yes",
        "answers": ["Yes.", "The sound is similar to an alarm."],
    },
    {
        "task": "synonym",
        "condition": "interleaved",
        "truth": "no",
        "answers": ["The sound is similar to a dog barking.", "No."],
    },
    {"task": "synonym", "condition": "interleaved", "truth": "no", "answers": ["Sure.", "It is a type of signal."]},
    # hypernym: paper None yes | yes; extended yes yes | yes
    {
        "task": "hypernym",
        "condition": "interleaved",
        "truth": "yes",
        "answers": ["It is a kind of signal.", "It does."],
    },
    {"task": "hypernym", "condition": "interleaved", "truth": "no", "answers": ["Yes, it is."]},
    # identity: the parser does not matter
    {
        "task": "identity",
        "condition": "interleaved",
        "truth": None,
        "label": "Siren",
        "answers": ["Siren, alarm", "Dog"],
    },
    # an extra layout and the text control
    {"task": "synonym", "condition": "noninterleaved", "truth": "no", "answers": ["It is not similar."]},
    {"task": "synonym", "condition": "text", "truth": "yes", "answers": ["Indeed."]},
]


def write_predictions(run: Path, epoch: int, predictions: list[dict], metrics: dict) -> Path:
    file = write_point(run, epoch, {"prediction_rows": len(predictions), **metrics})
    base = {"id": "q", "label": "Siren", "candidate": "alarm", "prompt": "Is [AUDIO] similar to alarm?"}
    lines = [json.dumps({**base, **row, "parsed": ["stale"] * len(row["answers"])}) for row in predictions]
    (run / "predictions" / f"epoch={epoch:02d}.jsonl").write_text("\n".join(lines) + "\n")
    return file


LOGGED = {
    "layout": "interleaved",
    "parser": "extended",
    "val/loss": 0.4,
    "val/shard/synonym/f1": 0.99,
    "val/noninterleaved/shard/hypernym/f1": 0.5,
}


def test_parser_option_rescores_the_saved_answers(tmp_path: Path) -> None:
    run = tmp_path / "ltu" / "version_0"
    write_predictions(run, 1, PREDICTIONS, LOGGED)

    logged, _ = rows([run])  # without --parser: the logged figures, and the parser they record
    assert logged["Parser"] == "extended" and logged["Syno F1"] == 0.99

    paper_primary, paper_extra = rows([run], parser="paper")
    extended_primary, extended_extra = rows([run], parser="extended")
    assert paper_primary["Parser"] == paper_extra["Parser"] == "paper"
    assert extended_primary["Parser"] == "extended"
    # synonym, paper: tp 1, fp 0, fn 1 (an unparsed answer to a yes query), tn 4; 4 of 6 unparsed
    assert paper_primary["Syno F1"] == pytest.approx(2 / 3)
    assert paper_primary["Syno P"] == pytest.approx(1.0) and paper_primary["Syno R"] == pytest.approx(0.5)
    assert paper_primary["Syno Acc"] == pytest.approx(5 / 6)
    assert paper_primary["Syno unparsed"] == pytest.approx(4 / 6)
    # synonym, extended: tp 2, fp 3, fn 0, tn 1: "similar to" and "a type of" read as yes
    assert extended_primary["Syno F1"] == pytest.approx(4 / 7)
    assert extended_primary["Syno Acc"] == pytest.approx(3 / 6) and extended_primary["Syno unparsed"] == 0.0
    # hypernym: paper tp 1, fn 1, fp 1; extended tp 2, fp 1
    assert paper_primary["Hyper F1"] == pytest.approx(0.5) and extended_primary["Hyper F1"] == pytest.approx(0.8)
    assert paper_primary["Hyper unparsed"] == pytest.approx(1 / 3)
    # the text control: "Indeed." is unparsed under paper, yes under extended
    assert paper_primary["Text Syno F1"] == 0.0 and extended_primary["Text Syno F1"] == 1.0
    # identity and the plainly negative extra layout read the same either way
    assert paper_primary["Identity Acc"] == extended_primary["Identity Acc"] == 0.5
    assert paper_extra["Condition"] == "noninterleaved" and paper_extra["Syno Acc"] == extended_extra["Syno Acc"] == 1.0
    # a figure logged for a condition without saved answers is not carried over
    assert paper_extra["Hyper F1"] is None


def test_parser_option_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "ltu" / "version_0"
    write_predictions(run, 0, PREDICTIONS, LOGGED)
    assert main([str(run), "--parser", "paper", "--out", str(tmp_path / "out")]) == 0
    markdown = capsys.readouterr().out
    assert "Re-scored with the paper parser (--parser paper)" in markdown
    primary = dict(zip(COLUMNS, table_lines(markdown)[0]))
    # one word, one clip (every row's id is "q"): each resample is the whole set, the interval a point
    assert primary["Parser"] == "paper" and primary["Syno F1"] == "66.7 [66.7, 66.7]"
    with (tmp_path / "out" / "report.csv").open(newline="") as f:
        first = next(csv.DictReader(f))
    assert first["Parser"] == "paper" and float(first["Syno F1"]) == pytest.approx(2 / 3)

    assert main([str(run), "--parser", "extended", "--out", str(tmp_path / "out")]) == 0
    primary = dict(zip(COLUMNS, table_lines(capsys.readouterr().out)[0]))
    assert primary["Parser"] == "extended" and primary["Syno F1"] == "57.1 [57.1, 57.1]"


def test_rescoring_with_the_recorded_parser_reproduces_the_logged_figures(tmp_path: Path) -> None:
    from interleave.eval.answers import parse_answer
    from interleave.eval.evaluate import condition_metrics

    parsed = [
        prediction(**{**row, "parsed": [parse_answer(a) for a in row["answers"]]})
        for row in PREDICTIONS
        if row["condition"] == "interleaved" and row["task"] != "identity"
    ]
    metrics = {"layout": "interleaved", "parser": "paper", **condition_metrics(parsed, "val")}
    run = tmp_path / "version_0"
    file = write_predictions(
        run, 0, [r for r in PREDICTIONS if r["condition"] == "interleaved" and r["task"] != "identity"], metrics
    )
    assert rescore(file, read_metrics(file), "paper") == json.loads(file.read_text())


def test_parser_option_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "version_0"
    write_predictions(run, 0, PREDICTIONS, LOGGED)
    assert main([str(run), "--parser", "loose", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "loose" in err and "paper, extended" in err

    answers = run / "predictions" / "epoch=00.jsonl"
    kept = answers.read_text().splitlines(keepends=True)[:-1]  # the last row replaced by a bad one: the count holds
    answers.write_text("".join(kept) + '{"task": "synonym", "condition": "interleaved", "answers": "Yes"}\n')
    assert main([str(run), "--parser", "paper", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{answers}:{len(PREDICTIONS)}" in err and "answers" in err and "Traceback" not in err

    answers.unlink()
    assert main([str(run), "--parser", "paper", "--out", str(tmp_path)]) == 2
    assert str(answers) in capsys.readouterr().err
    assert main([str(run), "--out", str(tmp_path)]) == 0  # without --parser the answers are not needed


# --- intervals, --compare, provenance, --plot ---------------------------------------------------


def test_intervals_in_markdown_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "version_0"
    write_answered_point(run, 1, answer_set(1))
    out = tmp_path / "out"
    assert main([str(run), "--out", str(out), "--bootstrap", "200", "--seed", "3"]) == 0
    markdown = capsys.readouterr().out
    row = dict(zip(COLUMNS, table_lines(markdown)[0]))
    (table,) = rows([run], bootstrap=200, seed=3)
    for column in ("Identity Acc", "Syno Acc", "Hyper P", "Syno R", "Hyper F1", "Syno unparsed"):
        value, lo, hi = table[column], table[f"{column} lo"], table[f"{column} hi"]
        assert lo <= value <= hi and lo < hi, column
        assert row[column] == f"{100 * value:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
    assert "95 % bootstrap interval" in markdown and "--bootstrap 200 --seed 3" in markdown
    with (out / "report.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        (written,) = list(reader)
    assert tuple(reader.fieldnames or ())[: len(COLUMNS)] == COLUMNS
    assert float(written["Syno F1 lo"]) == pytest.approx(table["Syno F1 lo"])
    assert float(written["Syno F1 hi"]) == pytest.approx(table["Syno F1 hi"])
    assert written["Text Syno F1 lo"] == ""  # no text control: no value, no interval
    # seeded: the same seed gives the same intervals, another seed others; 0 resamples gives none
    assert rows([run], bootstrap=200, seed=3)[0]["Syno F1 lo"] == table["Syno F1 lo"]
    assert rows([run], bootstrap=200, seed=4)[0]["Syno F1 lo"] != table["Syno F1 lo"]
    assert main([str(run), "--out", str(out), "--bootstrap", "0"]) == 0
    assert dict(zip(COLUMNS, table_lines(capsys.readouterr().out)[0]))["Syno F1"] == f"{100 * table['Syno F1']:.2f}"
    with (out / "report.csv").open(newline="") as f:
        assert tuple(csv.DictReader(f).fieldnames or ()) == COLUMNS


def test_intervals_come_from_the_evaluations_own_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from interleave.eval import evaluate

    run = tmp_path / "version_0"
    answers = answer_set(2) + answer_set(5, condition="noninterleaved")
    write_answered_point(run, 0, answers)
    calls = []
    original = evaluate.condition_metrics
    monkeypatch.setattr(
        evaluate, "condition_metrics", lambda found, prefix: calls.append(prefix) or original(found, prefix)
    )
    primary, extra = rows([run], bootstrap=50)
    assert sorted(set(calls)) == ["val", "val/noninterleaved"] and len(calls) == 2 * 50
    assert extra["Condition"] == "noninterleaved" and extra["Syno F1 lo"] <= extra["Syno F1"] <= extra["Syno F1 hi"]


def test_runs_without_saved_answers_get_no_intervals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "ltu" / "version_0"
    write_point(run, 0, {"layout": "noninterleaved", **TABLE2_ROW1})
    assert main([str(run), "--out", str(tmp_path)]) == 0
    markdown = capsys.readouterr().out
    assert dict(zip(COLUMNS, table_lines(markdown)[0]))["Syno P"] == "96.45"
    assert "no intervals for ltu/version_0" in markdown and "epoch=00.jsonl" in markdown


def test_compare_gives_paired_differences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, same = tmp_path / "a" / "version_0", tmp_path / "b" / "version_0", tmp_path / "c" / "version_0"
    write_answered_point(a, 2, answer_set(1))
    write_answered_point(b, 2, answer_set(7))
    write_answered_point(same, 2, answer_set(1))
    assert main(["--compare", str(a), str(b), "--out", str(tmp_path / "out"), "--bootstrap", "200"]) == 0
    markdown = capsys.readouterr().out
    assert [r[0] for r in table_lines(markdown)[:2]] == ["a/version_0", "b/version_0"]
    assert "Paired differences B - A (A = a/version_0, epoch 02; B = b/version_0, epoch 02)" in markdown
    line = next(x for x in markdown.splitlines() if x.startswith("| interleaved | Syno F1 |"))
    (first,) = rows([a])
    (second,) = rows([b])
    cells = [c.strip() for c in line.strip("|").split(" | ")]
    assert cells[2:4] == [f"{100 * first['Syno F1']:.1f}", f"{100 * second['Syno F1']:.1f}"]
    assert cells[4].startswith(f"{100 * (second['Syno F1'] - first['Syno F1']):+.1f} [")
    # each run's own intervals come from the same resamples: as the run alone would get them
    (alone,) = rows([b], bootstrap=200)
    shown = dict(zip(COLUMNS, table_lines(markdown)[1]))
    assert (
        shown["Hyper R"]
        == f"{100 * alone['Hyper R']:.1f} [{100 * alone['Hyper R lo']:.1f}, {100 * alone['Hyper R hi']:.1f}]"
    )
    compared = markdown.split("Paired differences", 1)[1]
    assert compared.count("| interleaved |") == 11  # accuracy, precision, recall, F1, unparsed x 2, identity
    # paired: a run against the same answers differs by exactly 0 in every resample
    assert main(["--compare", str(a), str(same), "--out", str(tmp_path / "out"), "--bootstrap", "100"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("| interleaved | Hyper Acc |"))
    assert line.endswith("| +0.0 [+0.0, +0.0] |")
    assert "Paired differences" in (tmp_path / "out" / "report.md").read_text()


def test_compare_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a" / "version_0", tmp_path / "b" / "version_0"
    write_answered_point(a, 0, answer_set(1))
    write_point(b, 0, {"layout": "interleaved", **TABLE2_ROW1})
    assert main(["--compare", str(a), str(b), "--out", str(tmp_path), "--bootstrap", "10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "epoch=00.jsonl" in err and "--compare" in err
    write_answered_point(b, 0, answer_set(1, words=WORDS[:2]))
    assert main(["--compare", str(a), str(b), "--out", str(tmp_path), "--bootstrap", "10"]) == 2
    assert "not about the same queries" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(a), "--compare", str(a), str(b)])
    with pytest.raises(SystemExit):
        main([])


def test_runs_on_different_shards_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "runs"
    write_point(parent / "version_0", 1, {"layout": "interleaved", "shard_hash": "a" * 64, **TABLE2_ROW1})
    write_point(parent / "version_1", 1, {"layout": "interleaved", "shard_hash": "b" * 64, **TABLE2_ROW1})
    write_point(parent / "version_2", 1, {"layout": "interleaved", **TABLE2_ROW1})  # older: never refused
    assert main([str(parent), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert "runs/version_0" in err and "runs/version_1" in err and "a" * 64 in err and "b" * 64 in err
    assert not (tmp_path / "out" / "report.md").exists()
    assert main([str(parent / "version_0"), str(parent / "version_2"), "--out", str(tmp_path / "out")]) == 0


def test_provenance_is_listed_and_differences_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "runs"
    same = {"shard_hash": "c" * 64, "config_hash": "d" * 64, "tokenization": "whole-string-v1", "parser": "paper"}
    write_point(parent / "version_0", 1, {"layout": "interleaved", "code_version": "1" * 40, **same, **TABLE2_ROW1})
    write_point(parent / "version_1", 1, {"layout": "interleaved", "code_version": "2" * 40, **same, **TABLE2_ROW1})
    write_point(parent / "version_2", 1, {"layout": "interleaved", **TABLE2_ROW1})
    assert main([str(parent), "--out", str(tmp_path)]) == 0
    markdown = capsys.readouterr().out
    assert len(table_lines(markdown)) == 3
    assert (
        f"- runs/version_0: code {'1' * 12}, config {'d' * 12}, SHARD {'c' * 12}, tokenization whole-string-v1"
        in markdown
    )
    assert "- runs/version_2: code unknown, config unknown, SHARD unknown, tokenization unknown" in markdown
    note = next(line for line in markdown.splitlines() if line.startswith("Note: "))
    assert "code_version" in note and "1" * 40 in note and "2" * 40 in note and "runs/version_2: unknown" in note
    assert "differ in tokenization" not in markdown and "differ in parser" not in markdown


def test_plot_draws_one_line_per_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from interleave.tools.report.figure import curves_figure

    parent = tmp_path / "runs"
    values = {"version_0": [0.5, 0.6, 0.7], "version_1": [0.2, 0.3, 0.1]}
    for name, points in values.items():
        for epoch, v in enumerate(points):
            write_point(
                parent / name,
                epoch,
                {
                    "layout": "interleaved",
                    "val/shard/synonym/f1": v,
                    "val/shard/hypernym/f1": v / 2,
                    "val/identity/accuracy": 1 - v,
                },
            )
    series = report.curve_series([parent])
    assert list(series) == ["runs/version_0", "runs/version_1"]
    figure = curves_figure(series)
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == ["synonym F1", "hypernym F1", "identity accuracy"]
    for ax, scale in zip(axes, (lambda v: v, lambda v: v / 2, lambda v: 1 - v)):
        assert [line.get_label() for line in ax.lines] == ["runs/version_0", "runs/version_1"]
        for line, points in zip(ax.lines, values.values()):
            assert list(line.get_xdata()) == [0, 1, 2]
            assert list(line.get_ydata()) == pytest.approx([scale(v) for v in points])
    # --plot writes curves.png beside report.md, from every point even with --epoch
    out = tmp_path / "out"
    assert main([str(parent), "--plot", "--epoch", "1", "--out", str(out)]) == 0
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "report.md").is_file()
    assert str(out / "curves.png") in capsys.readouterr().err


def test_plot_has_a_line_per_condition(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "version_0"
    for epoch in (0, 1):
        write_point(
            run,
            epoch,
            {
                "layout": "interleaved",
                **shard("val/", 0.5, 0.6),
                **shard("val/text/", 0.9, 0.8),
                **shard("val/noninterleaved/", 0.3, 0.4),
                "val/identity/accuracy": 0.5,
            },
        )
    series = report.curve_series([run])
    assert list(series) == ["runs/version_0 (interleaved)", "runs/version_0 (noninterleaved)", "runs/version_0 (text)"]
    assert [p["Syno F1"] for p in series["runs/version_0 (text)"]] == [0.93, 0.93]
    axes = report_figure_axes(series)
    assert len(axes[0].lines) == 3 and len(axes[2].lines) == 1  # the text control has no identity


def report_figure_axes(series):
    from interleave.tools.report.figure import curves_figure

    return curves_figure(series).axes


# --- saved answers checked against their metrics file; folders that are not runs (issue 34) -----

REPO = Path(__file__).resolve().parents[3]


def probed_run(run: Path) -> dict[int, Path]:
    """A run as the evaluation leaves it with probes: epochs 00 and 02, each with its saved answers
    (interleaved, silence, swap) and a metrics file that counts them; epoch -> answers file."""
    from interleave.eval.evaluate import agreement_metrics
    from interleave.eval.predictions import Prediction

    out = {}
    for epoch, seed in ((0, 1), (2, 5)):
        real = answer_set(seed, words=WORDS[:2], clips=2)
        probes = {
            probe: answer_set(seed + k, probe, words=WORDS[:2], clips=2) for k, probe in ((1, "silence"), (2, "swap"))
        }
        agreement = {}
        for probe, answered in probes.items():
            agreement |= agreement_metrics(
                [prediction(**r) for r in real], [prediction(**r) for r in answered], f"val/{probe}"
            )
        file = write_answered_point(
            run, epoch, real + [r for answered in probes.values() for r in answered], **agreement
        )
        out[epoch] = answers_path(file)
        assert len(read_predictions(out[epoch])) == json.loads(file.read_text())["prediction_rows"]
        assert all(isinstance(r, Prediction) for r in read_predictions(out[epoch]))
    return out


def interleave_cli(*args: str) -> subprocess.CompletedProcess[str]:
    import os
    import sys

    return subprocess.run(
        [sys.executable, "-m", "interleave.tools", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.mark.slow
def test_a_predictions_file_cut_at_a_line_boundary_is_refused_naming_both_counts(tmp_path: Path) -> None:
    """Issue 34: keep the first 20 lines of a point's predictions (an interrupted copy, a process
    killed between writes): `interleave report` used to exit 0 with intervals from 20 answers, the
    probes' rows without theirs, no reliance table and no forgetting summary, and said nothing."""
    run = tmp_path / "runs" / "demo" / "version_0"
    answers = probed_run(run)[2]
    lines = answers.read_text().splitlines(keepends=True)
    assert len(lines) == 60
    answers.write_text("".join(lines[:20]))
    kept = {p: p.read_bytes() for p in (run / "predictions").iterdir()}
    out = tmp_path / "out"
    done = interleave_cli("report", str(run), "--out", str(out))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: {answers}: holds 20 answer rows, but its metrics file (epoch=02.metrics.json) says "
        "the evaluation wrote 60: the file was cut (an interrupted copy or a killed write) or changed "
        "since; copy it again or evaluate the point again\n"
    )
    assert not out.exists() and kept == {p: p.read_bytes() for p in (run / "predictions").iterdir()}


@pytest.mark.parametrize(
    "options",
    [["--bootstrap", "0"], ["--parser", "paper"], ["--epoch", "2", "--plot"], ["--compare"]],
    ids=["no-intervals", "parser", "plot", "compare"],
)
def test_every_way_of_reading_a_cut_point_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str]
) -> None:
    run, other = tmp_path / "a" / "version_0", tmp_path / "b" / "version_0"
    answers = probed_run(run)[2]
    probed_run(other)
    answers.write_text("".join(answers.read_text().splitlines(keepends=True)[:20]))
    given = ["--compare", str(run), str(other)] if options == ["--compare"] else [str(run), *options]
    assert main(["--out", str(tmp_path / "out"), "--bootstrap", "20", *given]) == 2  # the options' --bootstrap wins
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {answers}: holds 20 answer rows") and "wrote 60" in err[0]
    # the point before, whole, is still read
    assert main([str(run), "--epoch", "0", "--out", str(tmp_path / "out"), "--bootstrap", "20"]) == 0


def test_an_older_metrics_file_without_the_count_is_read_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "runs" / "old" / "version_0"
    answers = probed_run(run)
    for file in answers.values():
        metrics = file.with_name(file.name.replace(".jsonl", ".metrics.json"))
        metrics.write_text(
            json.dumps({k: v for k, v in json.loads(metrics.read_text()).items() if k != "prediction_rows"})
        )
    assert main([str(run), "--out", str(tmp_path / "out"), "--bootstrap", "20"]) == 0
    done = capsys.readouterr()
    warnings = [line for line in done.err.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: {answers[e]}: its metrics file (epoch={e:02d}.metrics.json) does not say how many rows "
        "it holds (no prediction_rows: written before the count was recorded); read without that check"
        for e in (2, 0)
    ]  # once per file, however often the report reads it
    assert "Does it listen?" in done.out and "| old/version_0 | interleaved | 00 → 02 |" in done.out


@pytest.mark.slow
def test_a_frontier_output_and_an_empty_version_folder_are_not_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 34: `interleave report runs/demo` listed the frontier's `alpha=A/` folders as runs; a
    `validate` aborted before its evaluation leaves a `version_N` with no point (config, hparams,
    events), which is skipped too; each is named under the table."""
    from interleave.tools.report.runs import skipped_folders

    parent = tmp_path / "runs" / "demo"
    write_answered_point(parent / "version_0", 0, answer_set(1))
    write_answered_point(parent / "version_0", 2, answer_set(2))
    frontier = parent / "version_0" / "frontier" / "last"
    for alpha in (0.0, 1.0):  # as interleave frontier writes them: its key in every alpha's metrics
        write_answered_point(frontier / f"alpha={alpha!r}", 0, answer_set(3), frontier_key="k", alpha=alpha)
    aborted = parent / "version_1"
    aborted.mkdir()
    for name in ("config.yaml", "hparams.yaml", "events.out.tfevents.1.host.1.0"):
        (aborted / name).write_text("")
    assert find_runs(parent) == [parent / "version_0"]
    assert skipped_folders([parent]) == [
        f"{frontier}: an interleave frontier output (its alpha=A/ folders: one checkpoint at interpolated weights; "
        f"its table is {frontier / 'frontier.md'}), not a run: skipped",
        f"{aborted}: no evaluated point (predictions/epoch=NN.metrics.json: an evaluation aborted or not run yet), "
        "not a run: skipped",
    ]
    done = interleave_cli("report", str(parent), "--out", str(tmp_path / "out"), "--bootstrap", "10")
    assert done.returncode == 0, done.stderr
    assert [row[0] for row in table_lines(done.stdout)] == ["demo/version_0"]
    assert "alpha=" not in done.stdout.replace(f"{frontier}: an interleave frontier output (its alpha=A/", "")
    assert all(note in done.stdout for note in skipped_folders([parent]))
    # given as a RUN_DIR itself: a frontier's alpha folder is refused, an empty version_N too
    capsys.readouterr()
    assert main([str(frontier / "alpha=0.0"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (
        f"error: {frontier / 'alpha=0.0'}: an interleave frontier output (one checkpoint at interpolated weights), "
        f"not a run; its table is {frontier / 'frontier.md'}\n"
    )
    assert main([str(aborted), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"error: {aborted}: no run with predictions/epoch=NN.metrics.json found\n"
