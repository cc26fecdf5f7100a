"""interleave.tools.report.table: the table's columns under other label columns (the study's),
its Markdown and CSV, and one run's series by condition."""

from __future__ import annotations

import csv
from pathlib import Path

from interleave.tools.report.table import columns, markdown_table, run_rows, run_series, to_csv
from tests.helpers import TABLE2_ROW1, shard, write_point

# Table 2's columns, written out: four labels, then the paper's metrics (accuracy, precision, recall, F1 and
# the share unparsed; synonym beside hypernym), then the text-only control's.
METRIC_COLUMNS = (
    "Identity Acc | Syno Acc | Hyper Acc | Syno P | Hyper P | Syno R | Hyper R | Syno F1 | Hyper F1 | "
    "Syno unparsed | Hyper unparsed | Text Syno Acc | Text Hyper Acc | Text Syno F1 | Text Hyper F1"
).split(" | ")


def test_other_label_columns_render_and_write(tmp_path: Path) -> None:
    """The paper's Table 2, first row, under the study's label columns: every figure a percentage with two
    decimals, every metric the point lacks a dash; the CSV keeps the fractions and leaves them empty."""
    assert columns() == ("Run", "Condition", "Epoch", "Parser", *METRIC_COLUMNS)  # the report's own labels
    labels = ("Study condition", "Seeds", "Condition", "Epoch", "Parser")
    table = run_rows("ft", 2, {"layout": "interleaved", **TABLE2_ROW1})
    for row in table:
        row.update({"Study condition": "ft", "Seeds": "3"})
    header, rule, body = markdown_table(table, labels).splitlines()
    assert header == "| " + " | ".join([*labels, *METRIC_COLUMNS]) + " |"
    assert rule == "| --- | --- | --- | ---: | --- |" + " ---: |" * 15
    assert body == (
        "| ft | 3 | interleaved | 02 | unknown | 48.45 | 59.50 | 76.40 | 96.45 | 98.90 | 18.31 | 52.76 | 30.78 | 68.81 "
        "| – | – | – | – | – | – |"
    )
    to_csv(table, tmp_path / "t.csv", labels)
    with (tmp_path / "t.csv").open(newline="") as f:
        (row,) = list(csv.reader(f))[1:]
    assert row == [
        *("ft", "3", "interleaved", "2", "unknown"),
        *("0.4845", "0.595", "0.764", "0.9645", "0.989", "0.1831", "0.5276", "0.3078", "0.6881"),
        *[""] * 6,
    ]


def test_run_series_by_condition(tmp_path: Path) -> None:
    run = tmp_path / "version_0"
    for epoch in (0, 1, 2):
        # synonym 0.50, 0.51, ... and hypernym 0.60, 0.61, ... (accuracy, precision, recall, F1, unparsed)
        write_point(run, epoch, {"layout": "interleaved", **shard("val/", 0.5, 0.6), **shard("val/text/", 0.9, 0.8)})
    found = run_series(run, "r")
    assert list(found) == ["interleaved", "text"] and [p["Epoch"] for p in found["interleaved"]] == [0, 1, 2]
    assert [p["Epoch"] for p in run_series(run, "r", epochs=[0, 2])["text"]] == [0, 2]
    assert found["text"][0] == {"Epoch": 0, "Syno F1": 0.93, "Hyper F1": 0.83}
    point = {k: v for k, v in found["interleaved"][0].items() if not k.startswith("_")}
    assert point == {
        **{"Run": "r", "Condition": "interleaved", "Epoch": 0, "Parser": "unknown", "Identity Acc": None},
        **{"Syno Acc": 0.5, "Hyper Acc": 0.6, "Syno P": 0.51, "Hyper P": 0.61, "Syno R": 0.52, "Hyper R": 0.62},
        **{"Syno F1": 0.53, "Hyper F1": 0.63, "Syno unparsed": 0.54, "Hyper unparsed": 0.64},
        **{"Text Syno Acc": 0.9, "Text Hyper Acc": 0.8, "Text Syno F1": 0.93, "Text Hyper F1": 0.83},
    }


def test_the_provenance_lines_state_a_capped_runs_subset() -> None:
    from interleave.tools.report.table import provenance_notes

    keys = {
        "code_version": "a" * 40,
        "config_hash": "b" * 16,
        "shard_hash": "c" * 16,
        "tokenization": "whole",
        "parser": "paper",
    }
    subset = "at most 2 queries per task, seed 0, clips-round-robin-v1"
    lines = provenance_notes({"capped": keys | {"shard_subset": subset}, "capped too": keys | {"shard_subset": subset}})
    assert lines[1].endswith(f"tokenization whole, SHARD subset: {subset}") and lines[2].endswith(subset)
    assert not provenance_notes({"full": keys})[1].count("subset")
