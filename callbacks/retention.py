"""The retention texts of the evaluation callback (`ShardEvaluation(retention=[...])`, issue 39): read,
checked and selected once, scored at every evaluated point beside the SHARD (epoch 0: the base LLM).

Each entry is an `interleave.eval.retention.RetentionConfig` (name, file, tokens, seed, batch_size).
Its perplexity is logged under `val/retention/<name>/perplexity`; the metrics file records, per text,
its provenance (file, sha256, tokens, segments, seed, units split at the context) and the point's
per-segment NLL and token sums (`segment_nll`, `segment_tokens`), which the report's paired bootstrap
over segments reads (`interleave.tools.report.retention`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from lightning.pytorch.utilities import rank_zero_info

from callbacks.benchmarks import checked_entry
from interleave.errors import InterleaveError
from interleave.eval.benchmarks.evaluate import BenchmarkConfig, RunSettings, ask
from interleave.eval.benchmarks.items import BenchmarkItem, fixed_subset, read_benchmark
from interleave.eval.evaluate import EvalInputs, Point
from interleave.eval.retention import (
    CHOICE,
    NO_CLIP,
    PERPLEXITY,
    PERPLEXITY_KIND,
    RetentionConfig,
    Scored,
    Selection,
    choice_config,
    choice_figures,
    context_of,
    figures,
    load,
    score,
)
from interleave.eval.tasks import retention_tag

CHOICE_KEYS = ("name", "file", "subset", "seed", "scorings", "rule", "norm", "prompts")  # a `kind: choice` entry's
HEADER = "retention"  # the metrics file's key: each text's provenance and this point's per-segment sums


def retention_configs(entries: Sequence[dict[str, Any]] | None) -> list[RetentionConfig | BenchmarkConfig]:
    """The callback's `retention` entries as configs: a held-out text (`RetentionConfig`) or, with
    `kind: choice`, a text multiple-choice file (`BenchmarkConfig`, `choice_config`); an unknown key,
    a missing one, an unknown kind or two entries with one name is one error naming the entry."""
    configs: list[RetentionConfig | BenchmarkConfig] = []
    for number, entry in enumerate(entries or []):
        if not isinstance(entry, dict):
            raise InterleaveError(f"retention[{number}]: expected a mapping (name, file, ...), got {entry!r}")
        kind = entry.get("kind", PERPLEXITY_KIND)
        if kind not in (PERPLEXITY_KIND, CHOICE):
            raise InterleaveError(f"retention[{number}]: kind must be {PERPLEXITY_KIND} or {CHOICE}, got {kind!r}")
        fields = {"kind"} | (
            set(CHOICE_KEYS) if kind == CHOICE else {f.name for f in dataclasses.fields(RetentionConfig)}
        )
        checked_entry(f"retention[{number}]", entry, fields)
        if kind == CHOICE:
            configs.append(choice_config(entry))
        else:
            configs.append(RetentionConfig(**{k: v for k, v in entry.items() if k != "kind"}))
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise InterleaveError(f"retention: two entries with one name in {names}")
    return configs


class Retention:
    """The run's retention texts: `load` once (every rank selects the same tokens and items), `score`
    at each point."""

    def __init__(self, entries: Sequence[dict[str, Any]] | None) -> None:
        found = retention_configs(entries)
        self.configs = [c for c in found if isinstance(c, RetentionConfig)]
        self.choices = [c for c in found if isinstance(c, BenchmarkConfig)]  # text multiple choice
        self.selections: list[Selection] = []
        self.items: dict[str, list[BenchmarkItem]] = {}
        self.counts: dict[str, dict[str, Any]] = {}  # each multiple-choice file's provenance and counts
        self.scored: dict[str, Scored] = {}  # the last point's figures per text

    def __bool__(self) -> bool:
        return bool(self.configs or self.choices)

    def load(self, model: Any) -> None:
        """Read, check and select every text with the model's tokenizer and its LLM's context, and
        every multiple-choice file's items (bad items counted and named, the rest asked)."""
        if self.selections or self.items:
            return
        context = context_of(model.llm) if self.configs else 0
        self.selections = [load(config, model.tokenizer, context) for config in self.configs]
        lines = [s.describe() for s in self.selections]
        for config in self.choices:
            bench = read_benchmark(config.file, text=True)
            items = fixed_subset(bench.items, config.subset, config.seed)
            if not items:
                raise InterleaveError(f"{config.file}: retention {config.name!r} has no good item to ask")
            self.items[config.name] = items
            self.counts[config.name] = {"file": bench.file, "sha256": bench.sha256, "items": len(items)}
            self.counts[config.name]["bad_items"] = bench.bad_items
            lines.append(
                f"[interleave] retention {config.name}: {len(items)} of {len(bench.items)} good text "
                f"multiple-choice items asked from {config.file}"
                + (f"; {bench.bad_items} bad item(s) not asked: " + bench.problems[0].describe(config.file))
                * bool(bench.problems)
            )
        rank_zero_info("\n".join(lines))

    def score(
        self, model: Any, point: Point, run: RunSettings | None = None, inputs: EvalInputs | None = None
    ) -> dict[str, float]:
        """Every text's perplexity and every multiple-choice file's accuracy at this point (the model
        in eval mode, no gradients); the multiple-choice files take the run's settings and collation."""
        pad = model.tokenizer.pad_token_id
        pad = 0 if pad is None else int(pad)
        metrics: dict[str, float] = {}
        for selection in self.selections:
            scored = score(model.llm, selection, pad, point)
            self.scored[selection.config.name] = scored
            metrics.update(figures(selection.config.name, scored))
        for config in self.choices:
            assert run is not None and inputs is not None, "text multiple choice needs the run's settings and inputs"
            _, found, counts = ask(
                model, config, self.items[config.name], run, inputs, {}, point, conditions=(NO_CLIP,)
            )
            self.counts[config.name].update({k: v for k, v in counts.items() if k in ("asked", "too_long")})
            metrics.update(choice_figures(config.name, found))
        return metrics

    def lines(self) -> dict[str, str]:
        """The "language" chart's lines: text name -> its perplexity tag."""
        return {config.name: retention_tag(config.name, PERPLEXITY) for config in self.configs}

    def charts(self) -> dict[str, list[str]]:
        """TensorBoard's "forgetting" charts of the text multiple-choice files: per file, its accuracy per scoring."""
        return {
            f"language {config.name} accuracy": [retention_tag(config.name, f"{s}/accuracy") for s in config.scorings]
            for config in self.choices
        }

    def header(self) -> dict[str, Any]:
        """The metrics file's `retention` entry: per text, its provenance and this point's per-segment
        sums; per multiple-choice file, its provenance and counts."""
        texts = {
            s.config.name: {**s.header(), **self.scored[s.config.name].to_json()}
            for s in self.selections
            if s.config.name in self.scored
        }
        return {HEADER: {**texts, **{name: {"kind": CHOICE, **c} for name, c in self.counts.items()}}}


def summary(metrics: dict[str, float]) -> str:
    """Every text's perplexity at one point."""
    return ", ".join(
        f"{tag.removeprefix('val/')}={value:.2f}" for tag, value in metrics.items() if tag.startswith("val/retention/")
    )
