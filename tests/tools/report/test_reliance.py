"""interleave.tools.report.reliance: the reliance table of `interleave report` (issue 26), its values,
bootstrap intervals and the re-scoring with --parser; nothing for runs without probes."""

from __future__ import annotations

import json
from pathlib import Path

from interleave.eval.evaluate import agreement_metrics, condition_metrics
from interleave.tools.report.cli import main
from interleave.tools.report.reliance import probes_of, reliance_intervals, reliance_markdown, reliance_rows
from tests.helpers import prediction, write_point

LABELS = ("Siren", "Dog", "Drum", "Bell")


def answers(condition: str, flip: int) -> list:
    """Two clips per label, a yes/no query and an identity query each; `flip` of them answered otherwise."""
    rows = []
    for i, label in enumerate(LABELS):
        for k in range(2):
            n = 2 * i + k
            verdict = "yes" if (n % 3 == 0) != (n < flip) else "no"
            rows.append(
                prediction(
                    id=f"synonym/{label.lower()}/{k}/x",
                    condition=condition,
                    label=label,
                    candidate="x",
                    truth="yes" if n % 2 else "no",
                    answers=[verdict.title()] * 3,
                    parsed=[verdict] * 3,
                )
            )
            named = (n % 2 == 0) != (n < flip)
            rows.append(
                prediction(
                    id=f"identity/{label.lower()}/{k}",
                    task="identity",
                    condition=condition,
                    label=label,
                    answers=["Labels: " + (label if named else "Noise")] * 3,
                    parsed=[named] * 3,
                )
            )
    return rows


def write_run(run: Path, probes: dict[str, int]) -> Path:
    by_condition = {"interleaved": answers("interleaved", 0)} | {p: answers(p, flip) for p, flip in probes.items()}
    metrics = {"layout": "interleaved", "parser": "paper", **condition_metrics(by_condition["interleaved"], "val")}
    for probe in probes:
        metrics |= condition_metrics(by_condition[probe], f"val/{probe}")
        metrics |= agreement_metrics(by_condition["interleaved"], by_condition[probe], f"val/{probe}")
    file = write_point(run, 1, {**metrics, "prediction_rows": sum(map(len, by_condition.values()))})
    file.with_name("epoch=01.jsonl").write_text(
        "".join(r.to_json() + "\n" for rows in by_condition.values() for r in rows)
    )
    return file


def point(run: Path) -> list:
    return [(f"{run.parent.name}/{run.name}", 1, run / "predictions" / "epoch=01.metrics.json")]


def test_the_table_gives_each_probes_figure_and_agreement_with_intervals(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "version_0"
    write_run(run, {"silence": 3, "swap": 8})
    rows = reliance_rows(point(run), resamples=200, seed=1)
    assert [(r["Probe"], r["Task"]) for r in rows] == [
        ("silence", "identity"),
        ("silence", "synonym"),
        ("swap", "identity"),
        ("swap", "synonym"),
    ]
    by = {(r["Probe"], r["Task"]): r for r in rows}
    assert by[("silence", "synonym")]["Agreement"][0] == 5 / 8  # 3 of 8 queries flipped
    assert by[("swap", "identity")]["Agreement"][0] == 0.0
    lo, hi = by[("silence", "synonym")]["Agreement"][1]
    assert 0 <= lo <= 5 / 8 <= hi <= 1 and lo < hi
    assert by[("swap", "synonym")]["Agreement"][1] == (0.0, 0.0)  # every resample disagrees everywhere
    assert by[("silence", "identity")]["Figure"][0] == "accuracy" and by[("silence", "synonym")]["Figure"][0] == "f1"
    markdown = reliance_markdown(rows)
    assert "| runs/version_0 | 01 | silence | synonym | F1 " in markdown
    assert "| 62.5 [" in markdown and "| 37.5 [" in markdown  # agreement 5/8, reliance 3/8
    assert "| swap | identity | Acc 50.0 [" in markdown and "| 0.0 [0.0, 0.0] | 100.0 [100.0, 100.0] |" in markdown


def test_the_report_appends_it_and_a_run_without_probes_gets_none(tmp_path: Path, capsys) -> None:
    run, plain = tmp_path / "a" / "version_0", tmp_path / "b" / "version_0"
    write_run(run, {"silence": 2})
    write_run(plain, {})
    assert main([str(run), "--out", str(tmp_path / "out"), "--bootstrap", "20"]) == 0
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "Does it listen?" in markdown and "| a/version_0 | 01 | silence | identity |" in markdown
    assert main([str(plain), "--out", str(tmp_path / "plain"), "--bootstrap", "0"]) == 0
    assert "Does it listen?" not in (tmp_path / "plain" / "report.md").read_text()
    assert probes_of(json.loads((plain / "predictions" / "epoch=01.metrics.json").read_text())) == []


def test_with_a_parser_the_figures_come_from_the_saved_answers(tmp_path: Path) -> None:
    run = tmp_path / "r" / "version_0"
    file = write_run(run, {"silence": 3})
    metrics = json.loads(file.read_text())
    metrics["val/silence/shard/synonym/agreement"] = 0.01  # the logged figure, not the answers'
    file.write_text(json.dumps(metrics))
    logged = {(r["Probe"], r["Task"]): r for r in reliance_rows(point(run), resamples=0)}
    assert logged[("silence", "synonym")]["Agreement"] == (0.01, None)
    rescored = {(r["Probe"], r["Task"]): r for r in reliance_rows(point(run), parser="paper", resamples=0)}
    assert rescored[("silence", "synonym")]["Agreement"] == (5 / 8, None)


def test_agreement_intervals_resample_the_real_and_probe_rows_together() -> None:
    real, probe = answers("interleaved", 0), answers("silence", 8)
    found = reliance_intervals(real, probe, "silence", "val/silence", 50, 0)
    assert found["val/silence/shard/synonym/agreement"] == (0.0, 0.0)
    assert "val/silence/shard/synonym/f1" in found and "val/silence/identity/accuracy" in found
    assert reliance_intervals(real, real, "interleaved", "val/x", 50, 0)["val/x/identity/agreement"] == (1.0, 1.0)
