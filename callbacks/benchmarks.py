"""The multiple-choice benchmarks of the evaluation callback (`ShardEvaluation(benchmarks=[...])`):
read and checked once, asked at every evaluated point beside the SHARD, their rows and provenance.

Each entry of `benchmarks` is an `interleave.eval.benchmarks.evaluate.BenchmarkConfig` (name, file,
audio_root, subset, seed, scorings, controls, rule, norm, prompts). At set-up every file is read and
checked (`interleave.eval.benchmarks.items`): bad items are counted and named (the first few), never
silently dropped, and the rest is evaluated; clips longer than the encoder hears are counted (the
encoder reads their first `heard_seconds`). The metrics file records, per benchmark, the file's
sha256, the subset rule, and those counts (`header`); the rows go to `predictions/epoch=NN.bench.jsonl`
(their own file: the SHARD's `epoch=NN.jsonl` is untouched).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
from interleave.eval.evaluate import EvalInputs, Point
from interleave.eval.tasks import bench_tag
from interleave.files import write_text_atomic

BENCH_ROWS = "bench_rows"  # the metrics file's key: how many rows epoch=NN.bench.jsonl holds
HEADER = "benchmarks"  # the metrics file's key: each benchmark's provenance and counts
SHOWN_PROBLEMS = 10  # bad items named at set-up; the others counted
NOT_ASKED = {  # the counts of `interleave.eval.benchmarks.evaluate.ask`, as the run states them
    "skipped": "with more clips than the layout's prompt asks",
    "too_long": "with a prompt longer than the benchmark's max_length (default: the LLM's context)",
    "no_swap": "with no other item's clips to swap in (swap control)",
}


def benchmark_configs(entries: Sequence[dict[str, Any]] | None) -> list[BenchmarkConfig]:
    """The callback's `benchmarks` entries as configs; an unknown key, a missing one or two entries
    with one name is one error naming the entry."""
    fields = {f.name for f in dataclasses.fields(BenchmarkConfig) if f.init}
    configs = []
    for number, entry in enumerate(entries or []):
        if not isinstance(entry, dict):
            raise InterleaveError(f"benchmarks[{number}]: expected a mapping (name, file, ...), got {entry!r}")
        unknown = sorted(set(entry) - fields)
        missing = [key for key in ("name", "file") if key not in entry]
        if unknown or missing:
            raise InterleaveError(
                f"benchmarks[{number}]: "
                + (f"unknown key(s) {unknown}; " if unknown else "")
                + (f"missing {missing}; " if missing else "")
                + f"expected some of {sorted(fields)}"
            )
        configs.append(BenchmarkConfig(**entry))
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
            self.loaded.append(LoadedBenchmark(config, bench, items, cut))
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


def write_rows(folder: Path, epoch: int, rows: Sequence[BenchmarkRow]) -> Path:
    """`epoch=NN.bench.jsonl`: one benchmark row a line."""
    path = folder / f"epoch={epoch:02d}.bench.jsonl"
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
