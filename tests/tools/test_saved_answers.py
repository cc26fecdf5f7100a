"""A point's saved answers: read, checked, grouped by condition, as saved or parsed again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.tools.saved_answers import answer_rows, answers_path, read_predictions

ROWS = [
    {"id": "synonym/siren/0/alarm", "task": "synonym", "condition": "interleaved", "label": "Siren",
     "truth": "yes", "answers": ["Yes.", "It is similar to an alarm."], "parsed": ["yes", None]},
    {"id": "identity/siren/0", "task": "identity", "condition": "interleaved", "label": "Siren",
     "answers": ["Siren", "Dog"], "parsed": [True, False]},
    {"id": "synonym/siren/0/alarm", "task": "synonym", "condition": "text", "label": "Siren",
     "truth": "yes", "answers": ["No."], "parsed": ["no"]},
]


def write(folder: Path, rows: list[dict]) -> Path:
    file = folder / "epoch=03.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return file


def test_answers_path_is_beside_the_metrics_file(tmp_path: Path) -> None:
    assert answers_path(tmp_path / "epoch=03.metrics.json") == tmp_path / "epoch=03.jsonl"


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
    file.write_text(file.read_text() + "not json\n")
    with pytest.raises(InterleaveError, match=r"epoch=03.jsonl:4: not JSON"):
        read_predictions(file)


def test_answers_cut_at_their_verdict_are_re_scored_only_by_the_parser_that_cut_them(tmp_path: Path) -> None:
    cut_row = {**ROWS[0], "answers": ["No ", "Not similar, it is a type of alarm."], "parsed": ["no", "no"],
               "cut": [True, False], "cut_parser": "paper"}
    file = write(tmp_path, [cut_row, ROWS[1]])
    assert answer_rows(file)["interleaved"][0].parsed == ["no", "no"]  # as saved
    assert answer_rows(file, "paper")["interleaved"][0].parsed == ["no", "no"]  # the same rules: the same verdicts
    with pytest.raises(InterleaveError, match=r"answer row 1 \(synonym/siren/0/alarm\): 1 answer\(s\) stopped at their "
                                              r"verdict under the paper parser.*--parser paper.*full_answers: true"):
        answer_rows(file, "extended")
    uncut = write(tmp_path, [{**cut_row, "cut": [False, False]}])
    assert answer_rows(uncut, "extended")["interleaved"][0].parsed == ["no", "no"]


@pytest.mark.parametrize("cut", [[True], ["yes", False], True], ids=["short", "not-bool", "not-a-list"])
def test_bad_cut_marks_are_named_by_line(tmp_path: Path, cut) -> None:
    file = write(tmp_path, [ROWS[1], {**ROWS[0], "cut": cut, "cut_parser": "paper"}])
    with pytest.raises(InterleaveError, match=r"epoch=03.jsonl:2: 'cut' should hold one true/false per answer"):
        read_predictions(file)
