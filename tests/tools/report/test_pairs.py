"""interleave.tools.report.pairs: the two-clip pair task's figures under the report's table, and the note
that LTU's layout cannot ask it."""

from __future__ import annotations

from pathlib import Path

from interleave.eval.tasks import TASKS
from interleave.tools.report.pairs import pair_figures, pair_notes
from interleave.tools.report.table import rows, to_markdown
from tests.helpers import shard, write_point

PAIR_NOTE = TASKS["pair"].note


def test_the_pair_task_is_reported_under_the_table_for_the_layouts_that_ask_it(tmp_path: Path) -> None:
    """Issue 19: interleaved and text-only figures of the two-clip task; LTU's layout has none, and the report says so."""
    run = tmp_path / "run" / "version_0"
    write_point(
        run,
        1,
        {
            "layout": "interleaved",
            **shard("val/", 0.6, 0.5),
            "val/shard/pair/accuracy": 0.625,
            "val/shard/pair/f1": 0.5,
            "val/text/shard/pair/accuracy": 0.75,
            "val/text/shard/pair/f1": 0.8,
            **shard("val/noninterleaved/", 0.55, 0.45),
        },
    )
    markdown = to_markdown(rows([run]))
    assert "LTU's layout holds one clip" in markdown
    assert "- run/version_0 interleaved: Acc 62.5, F1 50.0, Text Acc 75.0, Text F1 80.0" in markdown
    assert "- run/version_0 noninterleaved: Acc –, F1 –, Text Acc 75.0" in markdown
    plain = tmp_path / "plain" / "version_0"
    write_point(plain, 1, {"layout": "interleaved", **shard("val/", 0.6, 0.5)})
    assert "Pair" not in to_markdown(rows([plain]))


def test_pair_figures_and_notes_directly() -> None:
    metrics = {"val/shard/pair/accuracy": 0.5, "val/text/shard/pair/f1": float("nan")}
    assert pair_figures(metrics, "val") == {"pair": {"Acc": 0.5, "F1": None, "Text Acc": None, "Text F1": None}}
    assert pair_notes([{"Run": "r", "Condition": "interleaved", "_pair": pair_figures(metrics, "val")}]) == [
        PAIR_NOTE,
        "- r interleaved: Acc 50.0, F1 –, Text Acc –, Text F1 –",
    ]
    assert pair_notes([{"Run": "r", "Condition": "interleaved", "_pair": pair_figures({}, "val")}]) == []
