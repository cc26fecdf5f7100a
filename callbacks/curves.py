"""What a user sees of the SHARD evaluation: the forgetting curves as a figure and a file for any
logger, TensorBoard's "forgetting" layout and HParams, and the closing table of a fit.

`ShardEvaluation` calls these on rank 0; `history` is its list of evaluated points (`CurvePoint`,
`{"epoch": N, "metrics": {tag: value}}`, plain data that its checkpoints keep), `conditions` maps each condition to its tag prefix
(`{"interleaved": "val", "text": "val/text"}`), and `probes` names those of them whose `agreement`
with the main layout is drawn as "does it listen" (issue 26; none by default, and then nothing
here changes).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, TypedDict

import lightning as L
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger

from interleave.eval.predictions import Prediction
from interleave.eval.tasks import AGREEMENT, CONDITIONS, ROOT, TASKS, Task, metric_tag, resolved
from interleave.files import atomic_path, write_text_atomic


class CurvePoint(TypedDict):
    """One evaluated point of the curves: a plain dict, as `ShardEvaluation.state_dict` keeps it."""

    epoch: int
    metrics: dict[str, float]


LANGUAGE = "language"  # the retention texts' chart and panel (issue 39)
LISTEN = "does it listen"  # the agreement chart's name: a probe's answers against the real clip's


def charted() -> list[Task]:
    """Every task's curve in drawing order: Table 2's tasks (always drawn), F1 before accuracy, then the others."""
    return sorted(TASKS.values(), key=lambda task: (task.column is None, task.headline != "f1"))


def curves_of(history: list[CurvePoint], conditions: dict[str, str]) -> list[Task]:
    """The tasks whose curve is drawn: Table 2's always, any other where some point measured it."""

    def measured(task: Task) -> bool:
        return any(
            h["metrics"].get(metric_tag(prefix, task.name, task.headline)) is not None
            for h in history
            for prefix in conditions.values()
        )

    return [task for task in charted() if task.column is not None or measured(task)]


def title(condition: str) -> str:
    return CONDITIONS[condition].title if condition in CONDITIONS else f"{condition} prompts"


def agreement_lines(
    conditions: dict[str, str], probes: tuple[str, ...], tasks: set[str] | None = None
) -> dict[str, str]:
    """The "does it listen" lines: "<probe> <task>" -> its agreement tag, for every probe and task
    it asks (every task when `tasks` is None)."""
    return {
        f"{probe} {task.name}": metric_tag(conditions[probe], task.name, AGREEMENT)
        for probe in probes
        for task in charted()
        if (tasks is None or task.name in tasks) and _asks(probe, task, conditions)
    }


def curves_figure(
    history: list[CurvePoint],
    conditions: dict[str, str],
    probes: tuple[str, ...] = (),
    benchmarks: dict[str, list[str]] | None = None,
    language: dict[str, str] | None = None,
) -> Any:
    """SHARD F1 per relation and identity accuracy against epoch, one panel per condition; with
    `probes`, one more panel: each probe's agreement with the main layout per task ("does it listen");
    with `benchmarks` ({chart: tags}, `callbacks.benchmarks.Benchmarks.charts`), one panel per chart:
    a benchmark's accuracy with the clip and under each control; with `language` ({text: tag},
    `callbacks.retention.Retention.lines`), a "language" panel: each retention text's perplexity
    (its own scale: lower is better)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [
        (
            title(condition),
            {task.chart: metric_tag(prefix, task.name, task.headline) for task in curves_of(history, conditions)},
        )
        for condition, prefix in conditions.items()
    ]
    if probes:
        panels.append((f"{LISTEN}: agreement with the real clip", agreement_lines(conditions, probes)))
    for chart, tags in (benchmarks or {}).items():
        panels.append((chart, {tag.split("/", 3)[3].removesuffix("/accuracy"): tag for tag in tags}))
    if language:
        panels.append((f"{LANGUAGE}: perplexity of held-out text", dict(language)))
    figure = Figure(figsize=(4.5 * len(panels), 3.5), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    epochs = [h["epoch"] for h in history]
    for ax, (name, lines) in zip(axes, panels):
        for label, tag in lines.items():
            values = [h["metrics"].get(tag) for h in history]
            points = [(e, v) for e, v in zip(epochs, values) if v is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=label)
        ax.set(title=name, xlabel="epochs trained")
        if not name.startswith(LANGUAGE):  # rates; perplexity keeps its own scale
            ax.set_ylim(0, 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    return figure


def curves_table(
    history: list[CurvePoint], conditions: dict[str, str], probes: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The points the figure plots: one row per epoch and condition (None where not measured); with
    `probes`, also `<task>_agreement` columns (a probe's rows hold them)."""
    agreeing = [task.name for task in charted()] if probes else []
    return [
        {
            "epoch": h["epoch"],
            "condition": condition,
            **{
                task.chart.replace(" ", "_").lower(): h["metrics"].get(metric_tag(prefix, task.name, task.headline))
                for task in curves_of(history, conditions)
            },
            **{f"{name}_{AGREEMENT}": h["metrics"].get(metric_tag(prefix, name, AGREEMENT)) for name in agreeing},
        }
        for h in history
        for condition, prefix in conditions.items()
    ]


def publish_curves(
    trainer: L.Trainer,
    history: list[CurvePoint],
    conditions: dict[str, str],
    run_dir: Path,
    step: int,
    probes: tuple[str, ...] = (),
    benchmarks: dict[str, list[str]] | None = None,
    language: dict[str, str] | None = None,
) -> Path:
    """Write `curves.png` and `curves.csv` into the run folder and log the figure through every
    logger that takes images (TensorBoard, W&B, MLflow); a CSV logger gets the files alone."""
    figure = curves_figure(history, conditions, probes, benchmarks, language)
    png = run_dir / "curves.png"
    with atomic_path(png) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    rows = curves_table(history, conditions, probes)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else ["epoch", "condition"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    write_text_atomic(run_dir / "curves.csv", text.getvalue())
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure("val/curves", figure, step)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key="val/curves", images=[str(png)], step=step)
        elif isinstance(logger, MLFlowLogger):
            logger.experiment.log_figure(logger.run_id, figure, f"curves/step={step:06d}.png")
    return png


def _asks(condition: str, task: Task, conditions: dict[str, str]) -> bool:
    """Whether `condition` asks `task` in a run of these `conditions` (a clip probe under the main layout)."""
    main = next((c for c, prefix in conditions.items() if prefix == ROOT), None)
    return condition in CONDITIONS and main in CONDITIONS and resolved(condition, main).asks(task)


def shard_tags(conditions: dict[str, str], tasks: set[str], probes: tuple[str, ...] = ()) -> list[str]:
    """Every SHARD/identity tag the evaluation logs for these conditions and the `tasks` its SHARD
    file asks, then the `probes`' agreement tags."""
    return [
        metric_tag(prefix, task.name, metric)
        for condition, prefix in conditions.items()
        for task in TASKS.values()
        if task.name in tasks and _asks(condition, task, conditions)
        for metric in task.metrics
    ] + list(agreement_lines(conditions, probes, tasks).values())


def forgetting_layout(
    conditions: dict[str, str],
    tasks: set[str],
    probes: tuple[str, ...] = (),
    benchmarks: dict[str, list[str]] | None = None,
    language: dict[str, str] | None = None,
) -> dict[str, Any]:
    """TensorBoard's Custom Scalars layout "forgetting": one chart per task the SHARD file asks
    (its headline metric), a line per condition that asks it; with `probes`, a "does it listen"
    chart: each probe's agreement with the main layout, a line per probe and task; with `language`
    (retention texts, issue 39), a "language" chart: each text's perplexity."""
    charts = {}
    for task in charted():
        lines = [
            metric_tag(prefix, task.name, task.headline)
            for condition, prefix in conditions.items()
            if task.name in tasks and _asks(condition, task, conditions)
        ]
        if lines:
            charts[task.chart] = ["Multiline", lines]
    if listening := list(agreement_lines(conditions, probes, tasks).values()):
        charts[LISTEN] = ["Multiline", listening]
    for chart, lines in (benchmarks or {}).items():  # a benchmark's accuracy with the clip and under its controls
        charts[chart] = ["Multiline", lines]
    if language:
        charts[LANGUAGE] = ["Multiline", list(language.values())]
    return {"forgetting": charts}


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flat(f"{prefix}/{key}" if prefix else str(key), inner, out)
    elif not str(prefix).startswith("_"):
        out[prefix] = value if isinstance(value, (bool, int, float, str)) else str(value)


def run_hparams(trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
    """The run's model and data settings, flat (`model/learning_rate`, `data/batch_size`, ...)."""
    out: dict[str, Any] = {}
    _flat("model", dict(pl_module.hparams), out)
    if trainer.datamodule is not None:
        _flat("data", dict(trainer.datamodule.hparams), out)
    return out


def describe_for_tensorboard(
    logger: TensorBoardLogger,
    hparams: dict[str, Any],
    conditions: dict[str, str],
    tasks: set[str],
    probes: tuple[str, ...] = (),
    benchmarks: dict[str, list[str]] | None = None,
    language: dict[str, str] | None = None,
) -> None:
    """The "forgetting" Custom Scalars layout (with a chart per benchmark and scoring, `benchmarks`), and the run's settings in the HParams tab with its
    SHARD/identity tags as the metrics (their values are the scalars already logged). The HParams
    summaries go into the writer's own event file (its public `file_writer`, open once the layout
    is written): a second file would hide the live scalars from TensorBoard's newest-file polling."""
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    writer = logger.experiment
    writer.add_custom_scalars(forgetting_layout(conditions, tasks, probes, benchmarks, language))
    for summary in hparams_summary(hparams, dict.fromkeys(shard_tags(conditions, tasks, probes), 0.0)):
        writer.file_writer.add_summary(summary)


def closing_table(history: list[CurvePoint], conditions: dict[str, str], language: dict[str, str] | None = None) -> str:
    """The SHARD/identity curves as a text table, for the end of a fit; with `language` ({text: tag}),
    a line per retention text: its perplexity at every point."""
    curves = curves_of(history, conditions)
    header = f"  {'condition':<22}{'epoch':>6}" + "".join(f"{task.chart:>20}" for task in curves)
    lines = [header]
    for condition, prefix in conditions.items():
        for h in history:
            cells = [h["metrics"].get(metric_tag(prefix, task.name, task.headline)) for task in curves]
            lines.append(
                f"  {title(condition):<22}{h['epoch']:>6}"
                + "".join(f"{'-' if v is None else f'{v:.3f}':>20}" for v in cells)
            )
    for name, tag in (language or {}).items():
        points = [f"epoch {h['epoch']} {h['metrics'][tag]:.2f}" for h in history if h["metrics"].get(tag) is not None]
        lines.append(f"  {LANGUAGE}: {name} perplexity  " + ", ".join(points))
    return "\n".join(lines)


def samples_markdown(rows: list[Prediction], per_task: int) -> str:
    """A Markdown table of the first answers of each task and condition."""
    lines = ["| condition | task | prompt | answer | parsed | truth |", "| --- | --- | --- | --- | --- | --- |"]
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.condition, row.task)
        if seen.get(key, 0) >= per_task:
            continue
        seen[key] = seen.get(key, 0) + 1
        cells = [row.condition, row.task, row.prompt, row.answers[0], str(row.parsed[0]), row.truth or row.label]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)
