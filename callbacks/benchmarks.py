"""The multiple-choice benchmarks of the evaluation callback (`ShardEvaluation(benchmarks=[...])`):
read and checked once, asked at every evaluated point beside the SHARD, their rows and provenance.

Each entry of `benchmarks` is an `interleave.eval.benchmarks.evaluate.BenchmarkConfig` (name, file,
audio_root, subset, seed, scorings, controls, rule, norm, prompts). At set-up every file is read and
checked (`interleave.eval.benchmarks.items`): bad items are counted and named (the first few), never
silently dropped, and the rest is evaluated; clips longer than the encoder hears are counted (the
encoder reads their first `heard_seconds`). The metrics file records, per benchmark, the file's
sha256, the subset rule, and those counts (`header`); the rows go to `predictions/epoch=NN.bench.jsonl`
(their own file: the SHARD's `epoch=NN.jsonl` is untouched). A benchmark with `whole_at_end` is also
asked whole, every good item once, when a fit ends (`Benchmarks.at_fit_end`): its figures under
`val/bench/<name>/whole/...`, its rows in `predictions/whole.bench.jsonl` and its metrics file
`predictions/whole.metrics.json` (no `epoch=NN` point: the report's per-epoch reading never takes it
for one); a record beside the fit's last checkpoint (`last.whole.json`) says it was asked, so a fit
resumed from that checkpoint after it (its run folder a new version) does not ask it again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from interleave.errors import InterleaveError
from interleave.eval.benchmarks.evaluate import CLIP, BenchmarkConfig, BenchmarkRow, RunSettings, ask
from interleave.eval.benchmarks.items import (
    SUBSET_RULE,
    Benchmark,
    BenchmarkItem,
    clip_seconds,
    fixed_subset,
    read_benchmark,
)
from interleave.eval.evaluate import EvalInputs, EvaluationStopped, Point
from interleave.eval.tasks import bench_tag
from interleave.files import write_text_atomic

BENCH_ROWS = "bench_rows"  # the metrics file's key: how many rows epoch=NN.bench.jsonl holds
HEADER = "benchmarks"  # the metrics file's key: each benchmark's provenance and counts
WHOLE = "whole"  # the tag segment (val/bench/<name>/whole/...) and file stem of the whole files at a fit's end
SHOWN_PROBLEMS = 10  # bad items named at set-up; the others counted
NOT_ASKED = {  # the counts of `interleave.eval.benchmarks.evaluate.ask`, as the run states them
    "skipped": "with more clips than the layout's prompt asks",
    "too_long": "with a prompt longer than the benchmark's max_length (default: the LLM's context)",
    "no_swap": "with no other item's clips to swap in (swap control)",
}


def checked_entry(where: str, entry: Any, fields: set[str]) -> dict[str, Any]:
    """`entry`, the item `where` of an evaluation callback's list (`benchmarks[0]`, `retention[1]`), as a
    mapping with `name` and `file` and no key outside `fields`; otherwise one error naming it."""
    if not isinstance(entry, dict):
        raise InterleaveError(f"{where}: expected a mapping (name, file, ...), got {entry!r}")
    unknown = sorted(set(entry) - fields)
    missing = [key for key in ("name", "file") if key not in entry]
    if unknown or missing:
        raise InterleaveError(
            f"{where}: "
            + (f"unknown key(s) {unknown}; " if unknown else "")
            + (f"missing {missing}; " if missing else "")
            + f"expected some of {sorted(fields)}"
        )
    return entry


def benchmark_configs(entries: Sequence[dict[str, Any]] | None) -> list[BenchmarkConfig]:
    """The callback's `benchmarks` entries as configs; an unknown key, a missing one or two entries
    with one name is one error naming the entry."""
    fields = {f.name for f in dataclasses.fields(BenchmarkConfig) if f.init}
    configs = []
    for number, entry in enumerate(entries or []):
        configs.append(BenchmarkConfig(**checked_entry(f"benchmarks[{number}]", entry, fields)))
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise InterleaveError(f"benchmarks: two entries with one name in {names}")
    return configs


@dataclasses.dataclass
class LoadedBenchmark:
    """One benchmark as a run asks it: its config, the checked file and the items every point asks."""

    config: BenchmarkConfig
    benchmark: Benchmark
    items: list[BenchmarkItem]
    clips_cut: int = 0
    whole_clips_cut: int = 0  # of every good item's clips (`whole_at_end`)

    def header(self) -> dict[str, Any]:
        """What the metrics file records of it: file, hash, subset (None: every item), counts."""
        subset = self.config.subset
        return {
            "file": self.benchmark.file,
            "sha256": self.benchmark.sha256,
            "subset": None
            if len(self.items) == len(self.benchmark.items)
            else f"{subset} items, seed {self.config.seed}, {SUBSET_RULE}",
            "items": len(self.items),
            "bad_items": self.benchmark.bad_items,
            "clips_cut": self.clips_cut,
        }


class Benchmarks:
    """The run's benchmarks: `load` once (every rank reads the same files), `ask` at each point."""

    def __init__(self, entries: Sequence[dict[str, Any]] | None) -> None:
        self.configs = benchmark_configs(entries)
        self.loaded: list[LoadedBenchmark] = []
        self.counts: dict[str, dict[str, int]] = {}  # the last point's counts per benchmark (asked, skipped, no_swap)

    def __bool__(self) -> bool:
        return bool(self.configs)

    def load(self, heard_seconds: float, load: Callable[[Path], Any] | None = None) -> None:
        """Read and check every file; state the bad items and the clips longer than the encoder hears."""
        if self.loaded:
            return
        for config in self.configs:
            bench = read_benchmark(config.file, config.audio_root, load)
            items = fixed_subset(bench.items, config.subset, config.seed)
            cut = sum(clip_seconds(c) > heard_seconds for item in items for c in item.clips)
            whole = cut
            if config.whole_at_end and len(items) < len(bench.items):
                whole = sum(clip_seconds(c) > heard_seconds for item in bench.items for c in item.clips)
            self.loaded.append(LoadedBenchmark(config, bench, items, cut, whole))
            lines = [
                f"[interleave] benchmark {config.name}: {len(items)} of {len(bench.items)} good items asked"
                + (f" ({config.subset} by {SUBSET_RULE}, seed {config.seed})" if len(items) < len(bench.items) else "")
                + f", from {config.file}"
            ]
            if bench.problems:
                lines.append(f"[interleave] benchmark {config.name}: {bench.bad_items} bad item(s) not evaluated:")
                lines += [f"  {p.describe(config.file)}" for p in bench.problems[:SHOWN_PROBLEMS]]
                if len(bench.problems) > SHOWN_PROBLEMS:
                    lines.append(
                        f"  ... and {len(bench.problems) - SHOWN_PROBLEMS} more (interleave data check names them all)"
                    )
            if cut:
                lines.append(
                    f"[interleave] benchmark {config.name}: {cut} clip(s) longer than the {heard_seconds:.2f} s "
                    "the encoder hears: their first seconds are heard"
                )
            if not items:
                raise InterleaveError(f"{config.file}: benchmark {config.name!r} has no good item to evaluate")
            rank_zero_info("\n".join(lines))

    def ask(
        self,
        model: Any,
        run: RunSettings,
        inputs: EvalInputs,
        features: dict[str, torch.Tensor],
        point: Point,
        stop: Callable[[], bool] | None = None,
    ) -> tuple[list[BenchmarkRow], dict[str, float]]:
        """Every benchmark at one point: its rows (benchmark by benchmark) and its tagged figures."""
        rows: list[BenchmarkRow] = []
        metrics: dict[str, float] = {}
        for loaded in self.loaded:
            mine, figures, counts = ask(model, loaded.config, loaded.items, run, inputs, features, point, stop)
            rows += mine
            metrics.update(figures)
            if counts != self.counts.get(loaded.config.name):  # stated at the first point, and when they change
                left = {k: v for k, v in counts.items() if k != "asked" and v}
                if left:
                    rank_zero_info(
                        f"[interleave] benchmark {loaded.config.name}: {counts['asked']} item(s) asked; not asked: "
                        + ", ".join(f"{v} {NOT_ASKED[k]}" for k, v in left.items())
                    )
            self.counts[loaded.config.name] = counts
        return rows, metrics

    @property
    def asks_whole(self) -> bool:
        """Whether a benchmark asks its whole file at the end of a fit (`whole_at_end`)."""
        return any(c.whole_at_end for c in self.configs)

    def at_fit_end(
        self,
        trainer: L.Trainer,
        model: Any,
        run: RunSettings,
        inputs: EvalInputs,
        features: dict[str, torch.Tensor],
        header: dict[str, Any],
        stop: Callable[[], bool] | None = None,
    ) -> Path | None:
        """Every good item of each benchmark with `whole_at_end`, once, in eval mode (every rank; rank 0
        logs and writes `predictions/whole.{metrics.json,bench.jsonl}`). Not asked again when that
        metrics file, or the record beside the checkpoint the fit resumed from (`whole_record`), says
        these files were asked at this step; a SIGTERM stops it, and the next resume asks it."""
        folder = Path(trainer.log_dir or trainer.default_root_dir) / "predictions"  # a collective under DDP
        whole = [b for b in self.loaded if b.config.whole_at_end]
        hashes = {b.config.name: b.benchmark.sha256 for b in whole}
        records = [folder / f"{WHOLE}.metrics.json", *([whole_record(trainer.ckpt_path)] if trainer.ckpt_path else [])]
        done = next((r for r in records if whole_done(r, trainer.global_step, hashes)), None)
        if done is not None:
            rank_zero_info(
                f"[interleave] benchmarks, whole files: already asked at step {trainer.global_step} ({done})"
            )
            return None
        point = Point(epoch=trainer.current_epoch, rank=trainer.global_rank, world_size=trainer.world_size)
        rows: list[BenchmarkRow] = []
        metrics: dict[str, float] = {}
        entries: dict[str, Any] = {}
        try:
            for loaded in whole:
                items = loaded.benchmark.items
                mine, figures, counts = ask(model, loaded.config, items, run, inputs, features, point, stop)
                rows += mine
                prefix = bench_tag(loaded.config.name)
                metrics.update({f"{prefix}/{WHOLE}{tag.removeprefix(prefix)}": v for tag, v in figures.items()})
                entries[loaded.config.name] = {
                    **loaded.header(),
                    "subset": None,
                    "items": len(items),
                    "clips_cut": loaded.whole_clips_cut,
                    **counts,
                }
        except EvaluationStopped:
            rank_zero_info("[interleave] benchmarks, whole files: SIGTERM, stopped (a resumed fit asks them)")
            return None
        trainer.callback_metrics.update({tag: torch.tensor(value) for tag, value in metrics.items()})
        if not trainer.is_global_zero:
            return None
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        path = write_rows(folder, WHOLE, rows)
        metrics_file = folder / f"{WHOLE}.metrics.json"
        write_text_atomic(
            metrics_file,
            json.dumps({**header, HEADER: entries, BENCH_ROWS: len(rows), **metrics}, indent=2, sort_keys=True) + "\n",
        )
        record = {"global_step": trainer.global_step, HEADER: {n: {"sha256": h} for n, h in hashes.items()}}
        for callback in trainer.checkpoint_callbacks:
            if getattr(callback, "last_model_path", ""):
                write_text_atomic(
                    whole_record(callback.last_model_path), json.dumps({**record, "file": str(metrics_file)})
                )
        print(f"[interleave] benchmarks, whole files at the end of the fit: {summary(metrics)}  ({path})")
        return path

    def charts(self) -> dict[str, list[str]]:
        """TensorBoard's "forgetting" charts of the benchmarks: per benchmark and scoring, the accuracy
        with the clip and under each control, one line each."""
        return {
            f"{config.name} {scoring} accuracy": [
                bench_tag(config.name, *((scoring,) if condition == CLIP else (condition, scoring)), "accuracy")
                for condition in config.conditions
            ]
            for config in self.configs
            for scoring in config.scorings
        }

    def header(self) -> dict[str, Any]:
        """The metrics file's `benchmarks` entry: per benchmark its provenance and counts."""
        return {HEADER: {b.config.name: {**b.header(), **self.counts.get(b.config.name, {})} for b in self.loaded}}


def whole_record(checkpoint: str | Path) -> Path:
    """Beside a fit's last checkpoint (`last.ckpt`), the record that its benchmarks were asked whole
    (`last.whole.json`: the step, each file's sha256 and the metrics file)."""
    return Path(checkpoint).with_name(f"{Path(checkpoint).stem}.{WHOLE}.json")


def whole_done(path: Path, global_step: int, hashes: dict[str, str]) -> bool:
    """Whether `path` (`whole.metrics.json` or a `whole_record`) records these benchmark files asked whole at this step."""
    try:
        done = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    asked = {name: entry.get("sha256") for name, entry in (done.get(HEADER) or {}).items()}
    return done.get("global_step") == global_step and asked == hashes


def write_rows(folder: Path, epoch: int | str, rows: Sequence[BenchmarkRow]) -> Path:
    """`epoch=NN.bench.jsonl` (`whole.bench.jsonl` for the whole files): one benchmark row a line."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"epoch={epoch:02d}.bench.jsonl" if isinstance(epoch, int) else f"{epoch}.bench.jsonl")
    write_text_atomic(path, "".join(row.to_json() + "\n" for row in rows))
    return path


def summary(metrics: dict[str, float]) -> str:
    """The headline figures of every benchmark: accuracy with the clip and under each control, per scoring."""
    return ", ".join(
        f"{tag.removeprefix('val/')}={value:.3f}"
        for tag, value in metrics.items()
        if tag.startswith("val/bench/")
        and tag.endswith("/accuracy")
        and not {"category", "sub_category"} & set(tag.split("/"))
    )
