"""`interleave frontier --config CONFIG --ckpt END [--start CKPT] [--alphas 0,0.25,0.5,0.75,1] [--out DIR]`:
the trade-off between the reasoning gain and the labelling loss of one run, from one checkpoint.

The config's SHARD evaluation (every task and condition its `ShardEvaluation` asks, with its
settings, identity included) is run at weights interpolated between the run's start and END
(`interleave.model.interpolate`: the LoRA update in its effect, the projector linearly, frozen weights
untouched). The start is the model the config builds before training (LTU's released projector
and LoRA for the paper's rows; a fresh adapter, whose B is zero, has no effect) or `--start CKPT`.
Every α is asked with the seeds of epoch 0 (those `train.py validate` uses), so α = 0 gives the
start model's very answers, α = 1 the checkpoint's, and the α's differ in their weights alone.

Each α's answers are saved as the evaluation saves a point (`<out>/alpha=A/predictions/epoch=00.jsonl`
and `.metrics.json`, with a key of the config, SHARD, settings and checkpoints, and the number of
rows), so a second run asks only the α's not finished yet (an α whose answers were cut is asked
again; every α's answers are checked against their count when the tables are made). Then `frontier.md`, `frontier.csv` and `frontier.png`
(`interleave.tools.frontier.table`). Any `train.py` override (`--data.x=...`) is taken too.

The evaluation's multiple-choice benchmarks (its `benchmarks` entries, their fixed subsets) are asked
at every α too, after the SHARD, their rows in `alpha=A/predictions/epoch=00.bench.jsonl`; the
tables and the figure show each one's accuracy (both scorings the config asks, the clip and its
controls) with its change from α = 0 (`interleave.tools.frontier.benchmarks`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEFAULT_ALPHAS = "0,0.25,0.5,0.75,1"
SEED_EPOCH = 0  # the seeds every α is asked with (answer_seed's epoch): train.py validate's


def parse_alphas(text: str) -> list[float]:
    """`--alphas`: comma-separated finite numbers, each once, in increasing order; 0 (the reference
    of the gains and retentions) is added when missing. Values outside [0, 1] extrapolate (allowed;
    the command warns)."""
    from interleave.errors import InterleaveError

    values = []
    for part in text.split(","):
        try:
            value = float(part.strip())
        except ValueError:
            raise InterleaveError(f"--alphas: {part.strip()!r} is not a number (give e.g. {DEFAULT_ALPHAS})") from None
        if not math.isfinite(value):
            raise InterleaveError(f"--alphas: {part.strip()!r} is not a finite number")
        values.append(value + 0.0)  # -0 is 0
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise InterleaveError(f"--alphas: {', '.join(f'{v:g}' for v in repeated)} given more than once")
    return sorted(set(values) | {0.0})


def alpha_folder(out: Path, alpha: float) -> Path:
    """Where one α's answers go (`alpha=0.25`, `alpha=1.0`: the float's shortest exact form)."""
    return out / f"alpha={alpha!r}"


def default_out(ckpt: Path) -> Path:
    """Beside the checkpoint: `<run>/frontier/<checkpoint name>` for a run's `checkpoints/` folder,
    else `<its folder>/frontier/<checkpoint name>`."""
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return run / "frontier" / ckpt.stem


@dataclass(frozen=True)
class Ask:
    """What the frontier asks: the config(s) and overrides, the checkpoints, the α's, where and how."""

    configs: list[str]
    ckpt: Path
    start: Path | None
    alphas: list[float]
    out: Path
    device: str | None = None
    resamples: int = 1000
    seed: int = 0
    overrides: tuple[str, ...] = ()


def point_key(fields: dict[str, Any]) -> str:
    """sha256 of what makes a saved α's answers this frontier's (config, SHARD, settings, checkpoints, α)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode("utf-8")).hexdigest()


def finished(folder: Path, key: str) -> bool:
    """Whether `folder` holds an α's answers saved under `key` (both files present, the key the
    same, the answers holding the rows the metrics file counts: a cut file is asked again)."""
    from interleave.errors import InterleaveError
    from interleave.tools.saved_answers import answers_path, bench_rows, check_saved_rows

    metrics = folder / "predictions" / f"epoch={SEED_EPOCH:02d}.metrics.json"
    try:
        saved = json.loads(metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not (isinstance(saved, dict) and saved.get("frontier_key") == key and answers_path(metrics).is_file()):
        return False
    try:
        check_saved_rows(metrics, saved)
        bench_rows(metrics)  # the benchmark rows it counts, where it has some
    except InterleaveError as err:
        print(f"[interleave] frontier: {err}; asking this alpha again", file=sys.stderr)
        return False
    return True


def run_frontier(ask: Ask) -> list[Path]:
    """Evaluate every α not finished yet, then write the frontier's files; returns them."""
    import torch

    from callbacks.benchmarks import BENCH_ROWS, write_rows
    from callbacks.benchmarks import summary as bench_summary
    from callbacks.points import write_point
    from callbacks.shard_eval import ShardEvaluation, eval_inputs
    from interleave.checkpoints import load_weights
    from interleave.cli import build_run
    from interleave.errors import InterleaveError
    from interleave.eval.benchmarks.evaluate import RunSettings
    from interleave.eval.evaluate import Point, condition_queries, evaluate
    from interleave.eval.tasks import TASKS, parse_tag
    from interleave.model.fitting import fitting_state
    from interleave.model.interpolate import Interpolation
    from interleave.progress import Progress
    from interleave.provenance import config_hash, file_hash, provenance
    from interleave.tools.frontier.benchmarks import AlphaBench, benchmark_section
    from interleave.tools.frontier.table import AlphaRows, frontier_rows, write_frontier
    from interleave.tools.saved_answers import answer_rows, bench_rows

    end_checkpoint = load_weights(ask.ckpt)  # a bad file is refused by name before any model is built
    start_checkpoint = load_weights(ask.start) if ask.start is not None else None
    run = build_run([a for config in ask.configs for a in ("--config", config)] + list(ask.overrides))
    model, data = run.model, run.datamodule
    evaluation = next((c for c in run.trainer.callbacks if isinstance(c, ShardEvaluation)), None)
    if evaluation is None:
        raise InterleaveError(
            f"{', '.join(ask.configs)}: the config asks no ShardEvaluation (trainer.callbacks), "
            "so there is no SHARD to measure the frontier on"
        )
    if evaluation.shard_file is None:
        raise InterleaveError(
            f"{', '.join(ask.configs)}: the config's ShardEvaluation asks benchmarks only (no shard_file), "
            "so there is no SHARD to measure the frontier on"
        )
    evaluation.setup(run.trainer, model, "validate")  # reads the SHARD, checks its clips
    start = (
        {k: v.detach().clone() for k, v in model.trainable_parameters().items()}
        if start_checkpoint is None
        else fitting_state(model, start_checkpoint, ask.start)
    )
    end = fitting_state(model, end_checkpoint, ask.ckpt)
    settings = evaluation.settings
    common = {
        "config": config_hash(model.hparams, data.hparams),
        "shard": file_hash(evaluation.shard_file),
        "settings": config_hash({"settings": settings, "identity": evaluation.identity}),
        "ckpt": file_hash(ask.ckpt),
        "start": "config" if ask.start is None else file_hash(ask.start),
        "seed_epoch": SEED_EPOCH,
        **({"retention": [vars(c) for c in evaluation.retention.configs]} if evaluation.retention else {}),
    }
    benchmarks = evaluation.benchmarks
    if benchmarks:  # each file and entry (a frontier without benchmarks keeps the key it had)
        common["benchmarks"] = {b.config.name: [b.benchmark.sha256, repr(b.config)] for b in benchmarks.loaded}
    keys = {alpha: point_key({**common, "alpha": alpha}) for alpha in ask.alphas}
    todo = [alpha for alpha in ask.alphas if not finished(alpha_folder(ask.out, alpha), keys[alpha])]
    per_alpha = sum(len(condition_queries(evaluation.queries, c)) for c in settings.conditions)
    if todo:
        interpolation = Interpolation(model, start, end)
        model.to(torch.device(ask.device) if ask.device else run.trainer.strategy.root_device).eval()
        inputs = eval_inputs(data)
        header = {
            "epoch": SEED_EPOCH,
            "global_step": 0,
            "layout": settings.conditions[0],
            **provenance(
                evaluation.shard_file, settings.parser, model.hparams, data.hparams, subset=evaluation.shard_subset
            ),
            "checkpoint": str(ask.ckpt),
            "start": "the config's model" if ask.start is None else str(ask.start),
        }
        with Progress(per_alpha * len(ask.alphas), "queries", "[interleave] frontier") as progress:
            for alpha in ask.alphas:
                if alpha not in todo:
                    progress.skip(per_alpha)
                    continue
                interpolation.set(alpha)
                with torch.no_grad(), run.trainer.precision_plugin.val_step_context():
                    evaluated = evaluate(
                        model,
                        evaluation.queries,
                        settings,
                        inputs,
                        evaluation.point_features(model),
                        Point(epoch=SEED_EPOCH),
                        progress=lambda *_: nullcontext(progress),
                    )
                    if evaluation.retention:  # the held-out text's perplexity at this α (issue 39)
                        kept = evaluation.retention.score(
                            model, Point(epoch=SEED_EPOCH), RunSettings.of(settings), inputs
                        )
                        evaluated = replace(evaluated, metrics={**evaluated.metrics, **kept})
                    asked, figures = ([], {})
                    if benchmarks:
                        features = evaluation.point_features(model)
                        asked, figures = benchmarks.ask(
                            model, RunSettings.of(evaluation.settings), inputs, features, Point()
                        )
                folder = alpha_folder(ask.out, alpha) / "predictions"
                extra = {}
                if benchmarks:
                    write_rows(folder, SEED_EPOCH, asked)
                    extra = {**benchmarks.header(), BENCH_ROWS: len(asked)}
                stem = write_point(
                    folder,
                    SEED_EPOCH,
                    replace(evaluated, metrics={**evaluated.metrics, **figures}),
                    {**header, **extra, **evaluation.retention.header(), "alpha": alpha, "frontier_key": keys[alpha]},
                )
                headline = ", ".join(
                    f"{TASKS[t.task].chart} {value:.3f}"
                    for tag, value in evaluated.metrics.items()
                    if (t := parse_tag(tag)) is not None and t.condition is None and t.metric == TASKS[t.task].headline
                )
                headline += f"; {bench_summary(figures)}" if figures else ""
                print(f"[interleave] frontier alpha={alpha:g}: {headline}  ({stem}.jsonl)", file=sys.stderr)
    else:
        print(f"[interleave] frontier: every alpha already evaluated in {ask.out}")
    points = [
        AlphaRows(alpha, answer_rows(alpha_folder(ask.out, alpha) / "predictions" / f"epoch={SEED_EPOCH:02d}.jsonl"))
        for alpha in ask.alphas
    ]
    rows = frontier_rows(points, settings.prefixes, ask.resamples, ask.seed)
    asked_bench = [
        AlphaBench(
            alpha, bench_rows(alpha_folder(ask.out, alpha) / "predictions" / f"epoch={SEED_EPOCH:02d}.metrics.json")
        )
        for alpha in ask.alphas
    ]
    about = {
        "config": ", ".join(ask.configs),
        "checkpoint (α = 1)": str(ask.ckpt),
        "start (α = 0)": "the config's model before training" if ask.start is None else str(ask.start),
        "SHARD": str(evaluation.shard_file),
        "answers": f"{settings.repeats} per query, the seeds of epoch "
        f"{SEED_EPOCH} at every α; saved under {ask.out}/alpha=A/predictions/",
        **({"benchmarks": ", ".join(c.name for c in benchmarks.configs)} if benchmarks else {}),
    }
    section = benchmark_section(asked_bench, ask.resamples, ask.seed)
    return retention_section(write_frontier(ask.out, rows, about, ask.resamples, ask.seed, [section]), ask)


def retention_section(written: list[Path], ask: Ask) -> list[Path]:
    """`frontier.md` with the language retention at every α appended (issue 39), when the α's scored
    a retention text: its perplexity at each α and retention against α = 0 (perplexity at 0 / at α),
    with a paired interval over its segments (`interleave.tools.bootstrap.segment_ratio`)."""
    from interleave.eval.retention import saved_texts
    from interleave.files import write_text_atomic
    from interleave.tools.bootstrap import segment_ratio

    by_alpha = {}
    for alpha in ask.alphas:
        file = alpha_folder(ask.out, alpha) / "predictions" / f"epoch={SEED_EPOCH:02d}.metrics.json"
        by_alpha[alpha] = saved_texts(json.loads(file.read_text(encoding="utf-8")), str(file))
    first = min(by_alpha)
    lines = []
    for name, start in by_alpha[first].items():
        if all(name in by_alpha[a] and by_alpha[a][name].sha256 == start.sha256 for a in by_alpha):
            for alpha in sorted(by_alpha):
                at = by_alpha[alpha][name].scored
                ratio, bounds, _ = segment_ratio(start.scored, at, ask.resamples, ask.seed)
                cell = f"{ratio:.3f}" + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if bounds else "")
                lines.append(f"| {alpha:g} | {name} | {at.perplexity:.2f} | {cell} |")
    if lines:
        interval = f", paired 95 % bootstrap interval over its segments ({ask.resamples} resamples)" * (
            ask.resamples > 0
        )
        head = [
            "",
            f"Language retention (held-out text): perplexity at each α; retention = perplexity at α = {first:g} "
            f"/ perplexity there{interval}.",
            "",
            "| α | Text | perplexity | retention |",
            "| ---: | --- | ---: | ---: |",
        ]
        markdown = ask.out / "frontier.md"
        write_text_atomic(markdown, markdown.read_text(encoding="utf-8") + "\n".join(head + lines) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    from interleave.errors import report_errors

    parser = argparse.ArgumentParser(
        prog="interleave frontier",
        description="The reasoning gain against the labelling retention of a run, at weights "
        "interpolated between its start and a checkpoint.",
        epilog="Other arguments are train.py's overrides (--data.x=...).",
    )
    parser.add_argument("--config", action="append", required=True, help="the run's config (several: in order)")
    parser.add_argument("--ckpt", type=Path, required=True, help="the checkpoint at alpha = 1 (END)")
    parser.add_argument(
        "--start",
        type=Path,
        default=None,
        help="the checkpoint at alpha = 0 (default: the config's model before training)",
    )
    parser.add_argument(
        "--alphas",
        default=DEFAULT_ALPHAS,
        help=f"comma-separated, 0 always included; outside [0, 1] extrapolates (default: {DEFAULT_ALPHAS})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: <run>/frontier/<checkpoint name>, beside the checkpoint)",
    )
    parser.add_argument("--device", default=None, help="torch device (default: the config's trainer's)")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=1000,
        metavar="N",
        help="resamples of the 95%% intervals (0: none; default 1000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the resampling (default: 0)")
    args, overrides = parser.parse_known_args(argv)
    asked: list[Ask] = []

    def body() -> None:
        alphas = parse_alphas(args.alphas)
        outside = [a for a in alphas if not 0.0 <= a <= 1.0]
        if outside:
            print(
                f"[interleave] frontier: warning: alpha {', '.join(f'{a:g}' for a in outside)} outside [0, 1] "
                "extrapolates beyond the two trained points",
                file=sys.stderr,
            )
        ask = Ask(
            args.config,
            args.ckpt,
            args.start,
            alphas,
            args.out or default_out(args.ckpt),
            args.device,
            args.bootstrap,
            args.seed,
            tuple(overrides),
        )
        asked.append(ask)
        written = run_frontier(ask)
        print(f"[interleave] frontier: {', '.join(str(p) for p in written)}")

    return report_errors(body, what="interleave frontier", kept=lambda: kept_alphas(asked[0] if asked else None))


def kept_alphas(ask: Ask | None) -> str:
    """What an interrupted frontier keeps: each α whose answers were saved whole for this checkpoint
    (write_point writes them atomically), which the same command then does not ask again."""
    done = []
    for alpha in ask.alphas if ask is not None else []:
        try:
            saved = json.loads(
                (alpha_folder(ask.out, alpha) / "predictions" / f"epoch={SEED_EPOCH:02d}.metrics.json").read_text(
                    encoding="utf-8"
                )
            )
        except (OSError, ValueError):
            continue
        if isinstance(saved, dict) and saved.get("checkpoint") == str(ask.ckpt):
            done.append(f"{alpha:g}")
    if not done:
        return "no alpha had finished; nothing was written"
    return (
        f"the answers of alpha {', '.join(done)} are kept in {ask.out}/alpha=A/ (the same command asks only the others)"
    )


if __name__ == "__main__":
    sys.exit(main())
