"""What a user sees of the SHARD evaluation: the forgetting curves as a figure and a file for any
logger, TensorBoard's "forgetting" layout and HParams, and the closing table of a fit.

`ShardEvaluation` calls these on rank 0; `history` is its list of evaluated points,
`{"epoch": N, "metrics": {tag: value}}`, and `conditions` maps each condition to its tag prefix
(`{"interleaved": "val", "text": "val/text"}`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger

from interleave.files import atomic_path, write_text_atomic

CURVES = (("shard/synonym/f1", "synonym F1"), ("shard/hypernym/f1", "hypernym F1"),
          ("identity/accuracy", "identity accuracy"))  # fmt: skip
METRICS = ("f1", "accuracy", "precision", "recall", "unparsed")
PAIR_CURVE = ("shard/pair/f1", "pair F1")  # issue 19's two-clip task: drawn where the SHARD file has it


def curves_of(history: list[dict[str, Any]], conditions: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The curves to draw: `CURVES`, and the pair task's where some point measured it."""
    measured = any(h["metrics"].get(f"{prefix}/{PAIR_CURVE[0]}") is not None for h in history for prefix in conditions.values())
    return CURVES + (PAIR_CURVE,) if measured else CURVES


def title(condition: str) -> str:
    return "text-only control" if condition == "text" else f"{condition} prompts"


def curves_figure(history: list[dict[str, Any]], conditions: dict[str, str]) -> Any:
    """SHARD F1 per relation and identity accuracy against epoch, one panel per condition."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(4.5 * len(conditions), 3.5), layout="constrained")
    axes = figure.subplots(1, len(conditions), squeeze=False)[0]
    epochs = [h["epoch"] for h in history]
    for ax, (condition, prefix) in zip(axes, conditions.items()):
        for tag, name in curves_of(history, conditions):
            values = [h["metrics"].get(f"{prefix}/{tag}") for h in history]
            points = [(e, v) for e, v in zip(epochs, values) if v is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=name)
        ax.set(title=title(condition), xlabel="epochs trained", ylim=(0, 1))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    return figure


def curves_table(history: list[dict[str, Any]], conditions: dict[str, str]) -> list[dict[str, Any]]:
    """The points the figure plots: one row per epoch and condition (None where not measured)."""
    return [{"epoch": h["epoch"], "condition": condition,
             **{name.replace(" ", "_").lower(): h["metrics"].get(f"{prefix}/{tag}") for tag, name in curves_of(history, conditions)}}
            for h in history for condition, prefix in conditions.items()]


def publish_curves(trainer: L.Trainer, history: list[dict[str, Any]], conditions: dict[str, str],
                   run_dir: Path, step: int) -> Path:
    """Write `curves.png` and `curves.csv` into the run folder and log the figure through every
    logger that takes images (TensorBoard, W&B, MLflow); a CSV logger gets the files alone."""
    figure = curves_figure(history, conditions)
    png = run_dir / "curves.png"
    with atomic_path(png) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    rows = curves_table(history, conditions)
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


def _measured(task: str, condition: str) -> bool:
    """Whether a condition asks a task: the text control has no identity task, LTU's layout
    (one clip before the prompt) no pair task."""
    return not ((task == "identity" and condition == "text") or (task == "pair" and condition == "noninterleaved"))


def shard_tags(conditions: dict[str, str], identity: bool = True, pair: bool = False) -> list[str]:
    """Every SHARD/identity tag the evaluation logs for these conditions (`pair`: the SHARD file
    holds two-clip queries)."""
    tags = []
    for condition, prefix in conditions.items():
        tasks = ("synonym", "hypernym", "pair") if pair and _measured("pair", condition) else ("synonym", "hypernym")
        tags += [f"{prefix}/shard/{task}/{m}" for task in tasks for m in METRICS]
        if identity and _measured("identity", condition):
            tags.append(f"{prefix}/identity/accuracy")
    return tags


def forgetting_layout(conditions: dict[str, str], identity: bool = True, pair: bool = False) -> dict[str, Any]:
    """TensorBoard's Custom Scalars layout "forgetting": one chart per measure, a line per condition
    that measures it (the pair task's chart when the SHARD file holds two-clip queries)."""
    charts = {}
    for tag, name in CURVES + ((PAIR_CURVE,) if pair else ()):
        task = tag.split("/")[1] if tag.startswith("shard/") else "identity"
        if task == "identity" and not identity:
            continue
        lines = [f"{prefix}/{tag}" for condition, prefix in conditions.items() if _measured(task, condition)]
        if lines:
            charts[name] = ["Multiline", lines]
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


def describe_for_tensorboard(logger: TensorBoardLogger, hparams: dict[str, Any], conditions: dict[str, str],
                             identity: bool = True, pair: bool = False) -> None:
    """The "forgetting" Custom Scalars layout, and the run's settings in the HParams tab with its
    SHARD/identity tags as the metrics (their values are the scalars already logged)."""
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    writer = logger.experiment
    writer.add_custom_scalars(forgetting_layout(conditions, identity, pair))
    tags = shard_tags(conditions, identity, pair)
    file_writer = writer._get_file_writer()
    for summary in hparams_summary(hparams, dict.fromkeys(tags, 0.0)):
        file_writer.add_summary(summary)


def closing_table(history: list[dict[str, Any]], conditions: dict[str, str]) -> str:
    """The SHARD/identity curves as a text table, for the end of a fit."""
    curves = curves_of(history, conditions)
    header = f"  {'condition':<22}{'epoch':>6}" + "".join(f"{name:>20}" for _, name in curves)
    lines = [header]
    for condition, prefix in conditions.items():
        for h in history:
            cells = [h["metrics"].get(f"{prefix}/{tag}") for tag, _ in curves]
            lines.append(f"  {title(condition):<22}{h['epoch']:>6}"
                         + "".join(f"{'-' if v is None else f'{v:.3f}':>20}" for v in cells))
    return "\n".join(lines)


def samples_markdown(rows: list[dict[str, Any]], per_task: int) -> str:
    """A Markdown table of the first answers of each task and condition."""
    lines = ["| condition | task | prompt | answer | parsed | truth |", "| --- | --- | --- | --- | --- | --- |"]
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row["condition"], row["task"])
        if seen.get(key, 0) >= per_task:
            continue
        seen[key] = seen.get(key, 0) + 1
        truth = row["truth"] or row["label"]
        cells = [row["condition"], row["task"], row["prompt"], row["answers"][0], str(row["parsed"][0]), truth]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)
