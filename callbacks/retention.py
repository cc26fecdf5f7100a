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

from interleave.errors import InterleaveError
from interleave.eval.evaluate import Point
from interleave.eval.retention import (
    PERPLEXITY,
    RetentionConfig,
    Scored,
    Selection,
    context_of,
    figures,
    load,
    score,
)
from interleave.eval.tasks import retention_tag

HEADER = "retention"  # the metrics file's key: each text's provenance and this point's per-segment sums


def retention_configs(entries: Sequence[dict[str, Any]] | None) -> list[RetentionConfig]:
    """The callback's `retention` entries as configs; an unknown key, a missing one or two entries
    with one name is one error naming the entry."""
    fields = {f.name for f in dataclasses.fields(RetentionConfig)}
    configs = []
    for number, entry in enumerate(entries or []):
        if not isinstance(entry, dict):
            raise InterleaveError(f"retention[{number}]: expected a mapping (name, file, ...), got {entry!r}")
        unknown = sorted(set(entry) - fields)
        missing = [key for key in ("name", "file") if key not in entry]
        if unknown or missing:
            raise InterleaveError(
                f"retention[{number}]: "
                + (f"unknown key(s) {unknown}; " if unknown else "")
                + (f"missing {missing}; " if missing else "")
                + f"expected some of {sorted(fields)}"
            )
        configs.append(RetentionConfig(**entry))
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise InterleaveError(f"retention: two entries with one name in {names}")
    return configs


class Retention:
    """The run's retention texts: `load` once (every rank selects the same tokens), `score` at each point."""

    def __init__(self, entries: Sequence[dict[str, Any]] | None) -> None:
        self.configs = retention_configs(entries)
        self.selections: list[Selection] = []
        self.scored: dict[str, Scored] = {}  # the last point's figures per text

    def __bool__(self) -> bool:
        return bool(self.configs)

    def load(self, model: Any) -> None:
        """Read, check and select every text with the model's tokenizer and its LLM's context."""
        if self.selections:
            return
        context = context_of(model.llm)
        self.selections = [load(config, model.tokenizer, context) for config in self.configs]
        rank_zero_info("\n".join(s.describe() for s in self.selections))

    def score(self, model: Any, point: Point) -> dict[str, float]:
        """Every text's perplexity at this point (the model in eval mode, no gradients)."""
        pad = model.tokenizer.pad_token_id
        pad = 0 if pad is None else int(pad)
        metrics: dict[str, float] = {}
        for selection in self.selections:
            scored = score(model.llm, selection, pad, point)
            self.scored[selection.config.name] = scored
            metrics.update(figures(selection.config.name, scored))
        return metrics

    def lines(self) -> dict[str, str]:
        """The "language" chart's lines: text name -> its perplexity tag."""
        return {config.name: retention_tag(config.name, PERPLEXITY) for config in self.configs}

    def header(self) -> dict[str, Any]:
        """The metrics file's `retention` entry: per text, its provenance and this point's per-segment sums."""
        return {
            HEADER: {
                s.config.name: {**s.header(), **self.scored[s.config.name].to_json()}
                for s in self.selections
                if s.config.name in self.scored
            }
        }


def summary(metrics: dict[str, float]) -> str:
    """Every text's perplexity at one point."""
    return ", ".join(
        f"{tag.removeprefix('val/')}={value:.2f}" for tag, value in metrics.items() if tag.startswith("val/retention/")
    )
