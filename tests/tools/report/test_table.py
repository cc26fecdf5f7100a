"""interleave.tools.report.table: the table's columns under other label columns (the study's),
its Markdown and CSV, and one run's series by condition."""

from __future__ import annotations

import csv
from pathlib import Path

from interleave.tools.report.table import (
    LABEL_COLUMNS,
    columns,
    markdown_table,
    run_rows,
    run_series,
    to_csv,
    value_columns,
)
from tests.tools.report.test_cli import TABLE2_ROW1, shard, write_point


def test_other_label_columns_render_and_write(tmp_path: Path) -> None:
    labels = ("Study condition", "Seeds", "Condition", "Epoch", "Parser")
    table = run_rows("ft", 2, {"layout": "interleaved", **TABLE2_ROW1})
    for row in table:
        row.update({"Study condition": "ft", "Seeds": "3"})
    header, rule, body = markdown_table(table, labels).splitlines()
    assert header.startswith("| Study condition | Seeds | Condition | Epoch | Parser | Identity Acc |")
    assert rule.startswith("| --- | --- | --- | ---: | --- | ---: |")
    assert body.startswith("| ft | 3 | interleaved | 02 | unknown | 48.45 |")
    assert columns() == LABEL_COLUMNS + value_columns()
    to_csv(table, tmp_path / "t.csv", labels)
    with (tmp_path / "t.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert list(row)[:5] == list(labels) and float(row["Syno F1"]) == 0.3078


def test_run_series_by_condition(tmp_path: Path) -> None:
    run = tmp_path / "version_0"
    for epoch in (0, 1, 2):
        write_point(run, epoch, {"layout": "interleaved", **shard("val/", 0.5, 0.6), **shard("val/text/", 0.9, 0.8)})
    found = run_series(run, "r")
    assert list(found) == ["interleaved", "text"] and [p["Epoch"] for p in found["interleaved"]] == [0, 1, 2]
    assert [p["Epoch"] for p in run_series(run, "r", epochs=[0, 2])["text"]] == [0, 2]
    assert found["text"][0]["Syno F1"] == 0.93


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
