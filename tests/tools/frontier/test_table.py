"""interleave.tools.frontier.table: gains and retentions from α = 0 on hand-made answers, paired
intervals (the same words and clips at every α), and the three files."""

from __future__ import annotations

import csv
import math

import pytest

from interleave.eval.predictions import Prediction
from interleave.tools.frontier.table import AlphaRows, frontier_rows, write_frontier

PREFIXES = {"interleaved": "val", "text": "val/text"}
WORDS = ("siren", "drum", "bell", "whistle")


def rows(named: int, says_yes: int) -> dict[str, list[Prediction]]:
    """Four words with two clips each: identity names the label for the first `named` words; the
    synonym questions (truth yes, then no) are answered yes for the first `says_yes` words, always
    yes on the no question of the last word; the text control answers yes to every question."""
    out: dict[str, list[Prediction]] = {"interleaved": [], "text": []}
    for w, word in enumerate(WORDS):
        for clip in range(2):
            out["interleaved"].append(
                Prediction(
                    f"identity/{word}/{clip}",
                    "identity",
                    "interleaved",
                    word,
                    None,
                    None,
                    "p",
                    ["a", "a"],
                    [w < named] * 2,
                )
            )
            for truth in ("yes", "no"):
                yes = (w < says_yes) if truth == "yes" else w == len(WORDS) - 1
                out["interleaved"].append(
                    Prediction(
                        f"synonym/{word}/{clip}/{truth}",
                        "synonym",
                        "interleaved",
                        word,
                        f"c{truth}",
                        truth,
                        "p",
                        ["a", "a"],
                        ["yes" if yes else "no"] * 2,
                    )
                )
        for truth in ("yes", "no"):
            out["text"].append(
                Prediction(
                    f"synonym/{word}/0/{truth}", "synonym", "text", word, f"c{truth}", truth, "p", ["a"], ["yes"]
                )
            )
    return out


def test_gain_and_retention_are_measured_from_alpha_zero_with_paired_intervals():
    points = [
        AlphaRows(0.0, rows(named=4, says_yes=1)),
        AlphaRows(0.5, rows(named=3, says_yes=3)),
        AlphaRows(1.0, rows(named=4, says_yes=1)),
    ]
    found = {(r.alpha, r.condition, r.task): r for r in frontier_rows(points, PREFIXES, resamples=200, seed=1)}
    assert set(found) == {
        (a, c, t)
        for a in (0.0, 0.5, 1.0)
        for c, t in (("interleaved", "identity"), ("interleaved", "synonym"), ("text", "synonym"))
    }
    identity = found[(0.5, "interleaved", "identity")]
    assert (identity.metric, identity.value, identity.change, identity.ratio) == ("accuracy", 0.75, -0.25, 0.75)
    synonym = found[(0.5, "interleaved", "synonym")]
    # F1, yes the positive class: alpha 0 says yes to 1 of 4 words' true and 1 false (P 1/2, R 1/4: F1 1/3);
    # alpha 0.5 to 3 true and 1 false (P 3/4, R 3/4)
    assert synonym.metric == "f1" and found[(0.0, "interleaved", "synonym")].value == pytest.approx(1 / 3)
    assert synonym.value == pytest.approx(0.75) and synonym.change == pytest.approx(0.75 - 1 / 3)
    lo, hi = synonym.change_interval
    assert 0.0 <= lo <= synonym.change <= hi  # paired: no resample of the same words and clips loses
    # The same answers at alpha 1 as at 0: every paired resample differs by exactly nothing
    same = found[(1.0, "interleaved", "synonym")]
    assert same.change == 0.0 and same.change_interval == (0.0, 0.0)
    assert found[(1.0, "interleaved", "identity")].ratio_interval == (1.0, 1.0)
    assert found[(0.5, "text", "synonym")].change == 0.0 and math.isnan(found[(0.5, "text", "synonym")].ratio) is False


def test_without_alpha_zero_there_is_no_frontier_and_without_resamples_no_intervals():
    with pytest.raises(ValueError, match="alpha = 0"):
        frontier_rows([AlphaRows(1.0, rows(4, 1))], PREFIXES)
    found = frontier_rows([AlphaRows(0.0, rows(4, 1)), AlphaRows(1.0, rows(2, 4))], PREFIXES, resamples=0)
    assert all(r.interval is None and r.change_interval is None and r.ratio_interval is None for r in found)


def test_the_files_and_a_start_that_names_no_label(tmp_path):
    points = [AlphaRows(0.0, rows(named=0, says_yes=1)), AlphaRows(1.0, rows(named=2, says_yes=4))]
    found = frontier_rows(points, PREFIXES, resamples=50)
    identity = next(r for r in found if r.alpha == 1.0 and r.task == "identity")
    assert identity.value == 0.5 and math.isnan(identity.ratio) and identity.ratio_interval is None
    written = write_frontier(tmp_path, found, {"config": "c.yaml"}, resamples=50, seed=0)
    assert [p.name for p in written] == ["frontier.md", "frontier.csv", "frontier.png"]
    assert (tmp_path / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = list(csv.DictReader((tmp_path / "frontier.csv").open()))
    assert len(table) == len(found) and table[0].keys() >= {"alpha", "condition", "task", "value", "change_lo", "ratio"}
    assert next(r for r in table if r["alpha"] == "1.0" and r["task"] == "identity")["ratio"] == ""
    markdown = (tmp_path / "frontier.md").read_text()
    assert (
        "- config: c.yaml" in markdown and "## interleaved prompts" in markdown and "## text-only control" in markdown
    )
    assert "| 1 | 50.0 [" in markdown and "| –" in markdown  # retention undefined: a dash
