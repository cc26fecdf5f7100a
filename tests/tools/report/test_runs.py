"""interleave.tools.report.runs: run folders, their points, labels and the parser check (the
metrics files and re-scoring are exercised through the report in test_report.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.tools.report.runs import (
    check_parser,
    epoch_points,
    labelled_runs,
    point_metrics,
    run_label,
    select_point,
)
from tests.helpers import write_point


def test_points_labels_and_the_chosen_point(tmp_path: Path) -> None:
    parent = tmp_path / "runs" / "demo"
    for name, epochs in (("version_10", (0, 1)), ("version_2", (0, 12, 3))):
        for epoch in epochs:
            write_point(parent / name, epoch, {"val/identity/accuracy": epoch / 100})
    assert list(epoch_points(parent / "version_2")) == [0, 3, 12]
    assert [label for _, label in labelled_runs([parent, parent / "version_2"])] == [
        "demo/version_2",
        "demo/version_10",
    ]
    assert run_label(parent / "version_2", parent / "version_2") == "demo/version_2"
    assert select_point(parent / "version_2", None)[0] == 12
    assert point_metrics(select_point(parent / "version_2", 3)[1], None)["val/identity/accuracy"] == 0.03
    with pytest.raises(InterleaveError, match=r"no epoch point 05 \(available: 00, 03, 12\)"):
        select_point(parent / "version_2", 5)


def test_unknown_parser_is_named() -> None:
    check_parser(None)
    check_parser("paper")
    with pytest.raises(InterleaveError, match="'loose'; expected one of paper, extended"):
        check_parser("loose")


def test_runs_whose_labels_collide_are_told_apart_and_a_different_shard_is_refused(tmp_path: Path) -> None:
    """Two copies of one study (`a/runs/t/version_0`, `b/runs/t/version_0`) were both labelled
    `t/version_0`: their provenance collapsed into one entry, so two SHARD files went unrefused."""
    from interleave.tools.report.table import rows

    runs = [tmp_path / copy / "runs" / "t" / "version_0" for copy in ("a", "b")]
    for run, digest in zip(runs, ("1" * 16, "2" * 16)):
        write_point(run, 0, {"val/identity/accuracy": 0.5, "shard_hash": digest})
    labels = [label for _, label in labelled_runs([run.parent for run in runs])]
    assert labels == ["a/runs/t/version_0", "b/runs/t/version_0"]
    assert [label for _, label in labelled_runs([runs[0].parent])] == ["t/version_0"]  # alone: as short as before
    with pytest.raises(
        InterleaveError, match="runs a/runs/t/version_0 and b/runs/t/version_0 were evaluated on different SHARD files"
    ):
        rows([run.parent for run in runs])
