"""The report's reliance table (issue 26): does the model listen?

For every probe a run asked (`ShardEvaluation(probes=...)`: silence, noise, swap, the placements)
and every task: the probe's own headline figure (F1, or identity accuracy) and its `agreement` with
the real clips under the run's main layout (the share of queries whose majority answer over the
repeats, or for identity whose majority correctness, is the same), with 95 % bootstrap intervals
from the point's saved answers (the report's words-then-clips resampling, `interleave.tools.bootstrap`,
the same draws for the real and the probe's rows). Reliance = 1 - agreement: under silence and
swap, how much the answers depend on the clip. With `--parser`, every figure is recomputed from
the saved answers with those rules; otherwise the logged figures are shown.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from interleave.eval.predictions import Prediction
from interleave.eval.probes import agreements
from interleave.eval.tasks import AGREEMENT, TASKS, metric_tag, parse_tag
from interleave.tools.bootstrap import multiplicities, percentiles, resampled_metrics, resampling

Row = dict[str, Any]
HEADER = ("Run", "Epoch", "Probe", "Task", "Figure", "Agreement", "Reliance")


def probes_of(metrics: dict[str, Any]) -> list[str]:
    """The conditions of a metrics file that logged an agreement (its probes), in tag order."""
    found = [
        parsed.condition for tag in metrics if (parsed := parse_tag(tag)) is not None and parsed.metric == AGREEMENT
    ]
    return list(dict.fromkeys(c for c in found if c is not None))


def reliance_intervals(
    real: Sequence[Prediction], probe: Sequence[Prediction], condition: str, prefix: str, resamples: int, seed: int
) -> dict[str, tuple[float, float]]:
    """Tag -> 95 % interval of the probe's metrics and of its agreement per task, the real and the
    probe's rows resampled with the same words and clips."""
    drawn = resampling([*real, *probe], resamples, seed)
    if drawn is None:
        return {}
    design, counts = drawn
    found = {
        tag: b
        for tag, values in resampled_metrics({condition: probe}, {condition: prefix}, design, counts).items()
        if (b := percentiles(values)) is not None
    }
    asked = {(r.task, r.id) for r in real}
    for task, agreed in agreements(real, probe).items():  # flags in the probe's order, for the queries both asked
        matched = [r for r in probe if r.task == task and (task, r.id) in asked]
        weights = multiplicities(design, counts, matched, condition).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = weights @ np.array(agreed, dtype=float) / weights.sum(axis=1)
        if (b := percentiles(shares)) is not None:
            found[metric_tag(prefix, task, AGREEMENT)] = b
    return found


def run_reliance(
    label: str,
    point: int,
    metrics: dict[str, Any],
    answers: dict[str, list[Prediction]] | None,
    parser: str | None,
    resamples: int,
    seed: int,
) -> list[Row]:
    """One run point's rows: per probe and task, (value, lo, hi) of its figure and of its agreement."""
    from interleave.eval.evaluate import agreement_metrics, condition_metrics

    main = str(metrics.get("layout") or "")
    out: list[Row] = []
    for probe in probes_of(metrics):
        prefix = f"val/{probe}"
        values = dict(metrics)
        ok = answers is not None and probe in answers and main in answers
        if ok and parser is not None:
            values.update(condition_metrics(answers[probe], prefix))
            values.update(agreement_metrics(answers[main], answers[probe], prefix))
        bounds = reliance_intervals(answers[main], answers[probe], probe, prefix, resamples, seed) if ok else {}
        for task in TASKS.values():
            agree_tag, figure_tag = (
                metric_tag(prefix, task.name, AGREEMENT),
                metric_tag(prefix, task.name, task.headline),
            )
            if values.get(agree_tag) is None:
                continue
            out.append(
                {
                    "Run": label,
                    "Epoch": point,
                    "Probe": probe,
                    "Task": task.name,
                    "Figure": (task.headline, values.get(figure_tag), bounds.get(figure_tag)),
                    "Agreement": (values[agree_tag], bounds.get(agree_tag)),
                }
            )
    return out


Point = tuple[str, int, Path]  # a run's label, its epoch point and that point's metrics file (the report's choice)


def reliance_rows(
    points: Sequence[Point], parser: str | None = None, resamples: int = 1000, seed: int = 0
) -> list[Row]:
    """The reliance rows of every run point (the report has read and checked its metrics file)."""
    from interleave.tools.saved_answers import answer_rows, answers_path

    out: list[Row] = []
    for label, point, file in points:
        metrics = json.loads(Path(file).read_text(encoding="utf-8"))
        if not probes_of(metrics):
            continue
        saved = answers_path(file)
        answers = answer_rows(saved, parser) if saved.is_file() else None
        out += run_reliance(label, point, metrics, answers, parser, resamples, seed)
    return out


def _percent(value: float | None, bounds: tuple[float, float] | None) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}" + (f" [{100 * bounds[0]:.1f}, {100 * bounds[1]:.1f}]" if bounds else "")


def reliance_markdown(rows: Sequence[Row]) -> str:
    """The reliance table in percentages with its legend, or "" when no run asked a probe."""
    if not rows:
        return ""
    lines = [
        "Does it listen? Each probe's figure and its agreement with the real clips (the run's main layout): "
        "the share of queries whose majority answer over the repeats (identity: whose majority correctness) "
        "is the same; reliance = 1 - agreement (under silence and swap: how much the answers depend on the "
        "clip). [lo, hi] = 95 % bootstrap interval from the saved answers.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        metric, value, bounds = row["Figure"]
        agreed, agreed_bounds = row["Agreement"]
        flipped = (1 - agreed_bounds[1], 1 - agreed_bounds[0]) if agreed_bounds else None
        cells = [
            row["Run"],
            f"{row['Epoch']:02d}",
            row["Probe"],
            row["Task"],
            f"{'F1' if metric == 'f1' else 'Acc'} {_percent(value, bounds)}",
            _percent(agreed, agreed_bounds),
            _percent(1 - agreed, flipped),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def reliance_section(
    runs: Sequence[tuple[Path, str]], select: Callable[[Path, int | None], tuple[int, Path]], args: argparse.Namespace
) -> str:
    """What `interleave report` appends to report.md: a blank line and the reliance table, or "".
    `runs` are the report's (run folder, label), `select(run, epoch)` its choice of point and metrics
    file, `args` its command line (`epoch`, `parser`, `bootstrap`, `seed`)."""
    points = [(label, *select(run, args.epoch)) for run, label in runs]
    table = reliance_markdown(reliance_rows(points, args.parser, args.bootstrap, args.seed))
    return "\n" + table if table else ""
