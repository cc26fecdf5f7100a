"""A point's saved answers: read, checked, grouped by condition, as saved or parsed again."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.tools.saved_answers import (
    answer_rows,
    answers_path,
    bench_rows,
    check_saved_rows,
    metrics_path,
    read_predictions,
)

ROWS = [
    {
        "id": "synonym/siren/0/alarm",
        "task": "synonym",
        "condition": "interleaved",
        "label": "Siren",
        "truth": "yes",
        "answers": ["Yes.", "It is similar to an alarm."],
        "parsed": ["yes", None],
    },
    {
        "id": "identity/siren/0",
        "task": "identity",
        "condition": "interleaved",
        "label": "Siren",
        "answers": ["Siren", "Dog"],
        "parsed": [True, False],
    },
    {
        "id": "synonym/siren/0/alarm",
        "task": "synonym",
        "condition": "text",
        "label": "Siren",
        "truth": "yes",
        "answers": ["No."],
        "parsed": ["no"],
    },
]


def write(folder: Path, rows: list[dict]) -> Path:
    """A point's saved answers and its metrics file, which counts them (as the evaluation writes them)."""
    file = folder / "epoch=03.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "epoch=03.metrics.json").write_text(json.dumps({"epoch": 3, "prediction_rows": len(rows)}))
    return file


def test_answers_path_is_beside_the_metrics_file(tmp_path: Path) -> None:
    assert answers_path(tmp_path / "epoch=03.metrics.json") == tmp_path / "epoch=03.jsonl"
    assert metrics_path(tmp_path / "epoch=03.jsonl") == tmp_path / "epoch=03.metrics.json"


def test_rows_by_condition_as_saved_or_parsed_again(tmp_path: Path) -> None:
    file = write(tmp_path, ROWS)
    assert len(read_predictions(file)) == 3
    saved = answer_rows(file)
    assert list(saved) == ["interleaved", "text"]
    assert [r.parsed for r in saved["interleaved"]] == [["yes", None], [True, False]]
    extended = answer_rows(file, "extended")
    assert extended["interleaved"][0].parsed == ["yes", "yes"]  # "similar to" reads as yes
    assert extended["interleaved"][1].parsed == [True, False]


@pytest.mark.parametrize("parsed", [None, ["yes"], ["maybe", "no"]], ids=["missing", "short", "not-yes-no"])
def test_bad_saved_parsed_values_are_named(tmp_path: Path, parsed) -> None:
    file = write(tmp_path, [{**ROWS[0], "parsed": parsed}])
    with pytest.raises(InterleaveError, match=r"epoch=03.jsonl: answer row 1 \(synonym/siren/0/alarm\): 'parsed'"):
        answer_rows(file)
    assert answer_rows(file, "paper")["interleaved"][0].parsed == ["yes", None]  # re-parsing needs none


def test_unreadable_rows_are_named_by_line(tmp_path: Path) -> None:
    file = write(tmp_path, ROWS)
    file.write_text("".join(file.read_text().splitlines(keepends=True)[:-1]) + "not json\n")
    with pytest.raises(InterleaveError, match=r"epoch=03.jsonl:3: not JSON"):
        read_predictions(file)


def test_answers_cut_at_their_verdict_are_re_scored_only_by_the_parser_that_cut_them(tmp_path: Path) -> None:
    cut_row = {
        **ROWS[0],
        "answers": ["No ", "Not similar, it is a type of alarm."],
        "parsed": ["no", "no"],
        "cut": [True, False],
        "cut_parser": "paper",
    }
    file = write(tmp_path, [cut_row, ROWS[1]])
    assert answer_rows(file)["interleaved"][0].parsed == ["no", "no"]  # as saved
    assert answer_rows(file, "paper")["interleaved"][0].parsed == ["no", "no"]  # the same rules: the same verdicts
    with pytest.raises(
        InterleaveError,
        match=r"answer row 1 \(synonym/siren/0/alarm\): 1 answer\(s\) stopped at their "
        r"verdict under the paper parser.*--parser paper.*full_answers: true",
    ):
        answer_rows(file, "extended")
    uncut = write(tmp_path, [{**cut_row, "cut": [False, False]}])
    assert answer_rows(uncut, "extended")["interleaved"][0].parsed == ["no", "no"]


@pytest.mark.parametrize("cut", [[True], ["yes", False], True], ids=["short", "not-bool", "not-a-list"])
def test_bad_cut_marks_are_named_by_line(tmp_path: Path, cut) -> None:
    file = write(tmp_path, [ROWS[1], {**ROWS[0], "cut": cut, "cut_parser": "paper"}])
    with pytest.raises(InterleaveError, match=r"epoch=03.jsonl:2: 'cut' should hold one true/false per answer"):
        read_predictions(file)


# --- the rows against the count of the metrics file (issue 34) ---------------------------------


def test_a_file_cut_at_a_line_boundary_or_grown_is_refused_naming_both_counts(tmp_path: Path) -> None:
    file = write(tmp_path, ROWS)
    whole = file.read_text()
    file.write_text("".join(whole.splitlines(keepends=True)[:2]))  # the first 2 of 3 lines: every row reads
    message = (
        rf"^{file}: holds 2 answer rows, but its metrics file \(epoch=03.metrics.json\) says the evaluation "
        r"wrote 3: the file was cut \(an interrupted copy or a killed write\) or changed since; copy it again "
        r"or evaluate the point again$"
    )
    for read in (read_predictions, answer_rows, lambda f: answer_rows(f, "extended")):
        with pytest.raises(InterleaveError, match=message):
            read(file)
    metrics = json.loads((tmp_path / "epoch=03.metrics.json").read_text())
    with pytest.raises(InterleaveError, match=message):  # without reading the rows: what the report checks first
        check_saved_rows(tmp_path / "epoch=03.metrics.json", metrics)
    file.write_text(whole + whole.splitlines(keepends=True)[0])
    with pytest.raises(InterleaveError, match=r"holds 4 answer rows, but .* wrote 3"):
        read_predictions(file)
    file.write_text(whole + "\n\n")  # blank lines are no rows
    assert len(read_predictions(file)) == 3


@pytest.mark.parametrize("count", ["3", -1, 2.5, True], ids=["text", "negative", "fraction", "bool"])
def test_a_count_that_is_not_a_count_is_named(tmp_path: Path, count) -> None:
    file = write(tmp_path, ROWS)
    (tmp_path / "epoch=03.metrics.json").write_text(json.dumps({"prediction_rows": count}))
    with pytest.raises(
        InterleaveError,
        match=rf"epoch=03.metrics.json: prediction_rows should be a count of rows, "
        rf"got {re.escape(repr(count))}",
    ):
        read_predictions(file)


def test_without_a_count_the_rows_are_read_with_one_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    older, lone = tmp_path / "older", tmp_path / "lone"
    older.mkdir()
    lone.mkdir()
    file = write(older, ROWS)
    (older / "epoch=03.metrics.json").write_text(json.dumps({"epoch": 3}))  # written before the count
    assert len(read_predictions(file)) == len(answer_rows(file)["interleaved"]) + 1 == 3
    assert capsys.readouterr().err == (
        f"warning: {file}: its metrics file (epoch=03.metrics.json) does not say how many "
        "rows it holds (no prediction_rows: written before the count was recorded); "
        "read without that check\n"
    )  # once, however often it is read
    alone = write(lone, ROWS)
    (lone / "epoch=03.metrics.json").unlink()
    assert len(read_predictions(alone)) == 3
    assert capsys.readouterr().err == (
        f"warning: {alone}: no metrics file beside it (epoch=03.metrics.json) to say how "
        "many rows it should hold; read without that check\n"
    )
    (lone / "epoch=03.metrics.json").write_text("{")
    with pytest.raises(InterleaveError, match=r"epoch=03.metrics.json: not a readable metrics JSON file"):
        read_predictions(alone)


def test_a_points_benchmark_rows_are_read_and_their_count_checked(tmp_path):
    metrics = tmp_path / "epoch=01.metrics.json"
    metrics.write_text(json.dumps({}))
    assert bench_rows(metrics) == []  # a point without benchmarks
    metrics.write_text(json.dumps({"bench_rows": 2}))
    rows = [{"benchmark": "m", "id": "a", "correct": True}, {"benchmark": "m", "id": "b", "correct": False}]
    bench = tmp_path / "epoch=01.bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert bench_rows(metrics) == rows
    bench.write_text(json.dumps(rows[0]) + "\n")
    with pytest.raises(
        InterleaveError, match=re.escape(f"{bench}: holds 1 benchmark rows, but epoch=01.metrics.json counts 2")
    ):
        bench_rows(metrics)
    bench.unlink()
    with pytest.raises(InterleaveError, match=re.escape(f"{bench}: missing, but epoch=01.metrics.json counts 2")):
        bench_rows(metrics)
    bench.write_text("{not json\n")
    with pytest.raises(InterleaveError, match="not a readable benchmark rows file"):
        bench_rows(metrics)
