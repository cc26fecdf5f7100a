"""SHARD and identity evaluation of an AudioLLM: Table 1's prompts, sampled answers, metrics.

A query (`interleave.eval.query.Query`) becomes a prompt for one *condition*: `interleaved`
(`[AUDIO]` where Table 1 puts it), `noninterleaved` (LTU's layout: audio before the prompt)
or `text` (the control: the word itself stands where `[AUDIO]` stood; no audio at all).
Each query is answered `repeats` times by sampling; the repeats share one prefill.

Queries are cut into fixed chunks, chunk k is answered by rank k mod world size, and each
answer samples from its own stream seeded from (seed, epoch, condition, query index, repeat).
So the answers, and the metrics, are the same with 1 process or several, and no query is
answered twice. By default a yes/no answer stops as soon as its parsed verdict is settled
(`interleave.eval.answers.settled_answer`): the same verdict as the whole answer, marked `cut`.
How to ask is `interleave.eval.settings.EvalSettings`; with its `max_queries_per_task` (a quick
check), `capped_queries` there picks the queries asked before any of this: a fixed subset, the same
at every evaluated point and on every rank.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_f1_score,
    binary_precision,
    binary_recall,
)

from interleave.data.collate import Collator, stack_clips
from interleave.data.records import Record
from interleave.encoders.cache import FeatureCache, Variant, compute_features
from interleave.eval.answers import parse_answer, settled_answer
from interleave.eval.predictions import Prediction
from interleave.eval.probes import agreement, swapped_clips, variant
from interleave.eval.query import Query
from interleave.eval.settings import EvalSettings
from interleave.eval.tasks import (
    AGREEMENT,
    LABEL,
    TASKS,
    metric_tag,
    prompt_table,
    resolved,
    verdict_tasks,
)
from interleave.labels import contains_label
from interleave.model.generation import sample_answers, yes_probability

__all__ = ["prompt_table"]  # re-exported: where the evaluation's callers have always found it

if TYPE_CHECKING:  # the model calls the evaluation through the callback; this module only reads it
    from interleave.model.module import AudioLLM


def condition_queries(queries: list[Query], condition: str, main: str = "interleaved") -> list[Query]:
    """The queries a condition asks in a run whose main condition is `main` (`tasks.Condition.queries`)."""
    return resolved(condition, main).queries(queries)


def render_instruction(
    query: Query, condition: str, table: Mapping[str, Mapping[str, str]], main: str = "interleaved"
) -> str:
    """The instruction of `query` under `condition` (`interleave.eval.tasks.Condition.render`)."""
    return resolved(condition, main).render(query, table)


class EvaluationStopped(Exception):
    """`answer_queries` was asked to stop (a SIGTERM during training): no metrics for this point."""


def audio_features(*args: Any, **kwargs: Any) -> torch.Tensor:
    """`clip_features` stacked [N, positions, D] (a variable-length encoder's padded to the longest)."""
    return stack_clips(clip_features(*args, **kwargs))


@torch.no_grad()
def clip_features(
    model: AudioLLM,
    paths: list[str],
    cache: dict[str, torch.Tensor],
    store: FeatureCache | None = None,
    batch_size: int = 8,
    channel: str = "first",
    variant: Variant | None = None,
) -> list[torch.Tensor]:
    """Encoder features of the clips, one [positions, D] each (32 for LTU), computed once per clip and
    kept in `cache` (and read from / written to `store`, an `interleave.encoders.cache.FeatureCache`,
    when given). `channel` picks the audio channel of multi-channel files
    (`interleave.encoders.audio.load_waveform`); `variant` (a probe's silence or noise) is read
    instead of each clip, kept under its own keys."""
    key = (lambda p: p) if variant is None else variant.key
    name = "" if variant is None else variant.name
    missing = [p for p in dict.fromkeys(paths) if key(p) not in cache]
    if store is not None:
        for path in missing:
            if (features := store.lookup(path, variant=name)) is not None:
                cache[key(path)] = features
        missing = [p for p in missing if key(p) not in cache]
    for path, features in compute_features(model.audio_encoder, missing, batch_size, channel, variant):
        cache[key(path)] = features
        if store is not None:
            store.put(path, features, variant=name)
    return [cache[key(p)] for p in paths]


def answer_seed(seed: int, epoch: int, condition: str, index: int, repeat: int) -> int:
    """The seed of one answer's random stream: query `index`'s repeat `repeat`."""
    return zlib.crc32(f"{seed}/{epoch}/{condition}/{index}/{repeat}".encode())


@dataclass(frozen=True)
class EvalInputs:
    """What an evaluation takes from the run: its data module's collation (left-padded, answer-free),
    its feature cache (if any) and the audio channel of multi-channel files. The evaluation never
    imports the data module: a run's are read from it by `callbacks.shard_eval.eval_inputs`."""

    collator: Collator
    store: FeatureCache | None = None
    channel: str = "first"


def answer_queries(
    model: AudioLLM,
    queries: list[Query],
    condition: str,
    settings: EvalSettings,
    inputs: EvalInputs,
    features: dict[str, torch.Tensor],
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Prediction]:
    """This rank's share of the answers: one row per query of the chunks it owns.

    A row holds the query, the prompt, every answer, its parsed value (yes/no/None for a verdict
    task; whether the label was named, for a label task) and the truth; `cut` (one flag per answer) and
    `cut_parser` when an answer stopped at its verdict under those parser rules. `index` is the query's place in
    `queries`, so rows gathered from all ranks can be put back in order.
    `stop` is asked before each round of chunks (every rank asks equally often, so it may be a
    collective); when it answers True the evaluation ends with EvaluationStopped.
    `progress` is called after each chunk with the number of queries it just answered (this rank's
    share in all: `rank_share`); what to show is the caller's business.
    """
    rows: list[Prediction] = []
    device = next(model.parameters()).device
    size, asked = settings.batch_size, settings.condition(condition)
    probe = asked.clip_transform
    swap = swapped_clips(queries, settings.seed) if probe == "swap" else None
    read = None if probe is None else variant(probe, settings.seed)
    chunks = (len(queries) + size - 1) // size
    for first in range(0, chunks, world_size):
        if stop is not None and stop():
            raise EvaluationStopped(f"stopped after {len(rows)} of {len(queries)} queries")
        chunk = first + rank
        if chunk >= chunks:
            continue
        start = chunk * size
        batch = queries[start : start + size]
        prompts = [asked.render(q, settings.table) for q in batch]
        records = [Record(id=q.id, audio=q.clips, instruction=p, where=q.where) for q, p in zip(batch, prompts)]
        clips = [clip for q in batch for clip in (q.clips if swap is None else swap(q))]
        heard = (
            None
            if not asked.audio
            else clip_features(model, clips, features, inputs.store, channel=inputs.channel, variant=read)
        )
        # a span as long as the clip that is heard (a variable-length encoder's; a swap's other clip)
        variable = heard is not None and model.audio_encoder.variable_length
        lengths = iter([len(h) for h in heard] if variable else [])
        encoded = [
            inputs.collator.encode(
                r,
                with_answer=False,
                with_audio=asked.audio,
                lengths=[next(lengths) for _ in r.clips] if variable else None,
            )
            for r in records
        ]
        tensors = {k: v.to(device) for k, v in inputs.collator.pad(encoded, "left").items()}
        audio = None if heard is None else stack_clips(heard).to(device)
        seeds = [
            answer_seed(settings.seed, epoch, condition, start + i, j)
            for i in range(len(batch))
            for j in range(settings.repeats)
        ]
        verdict = [TASKS[q.task].scoring != LABEL for q in batch]
        settle = (
            None
            if settings.full_answers
            else [partial(settled_answer, rules=settings.parser) if v else None for v in verdict]
        )
        cut: list[bool] = []
        answers = sample_answers(
            model,
            tensors["input_ids"],
            tensors["attention_mask"],
            tensors["audio_mask"],
            None,
            settings.repeats,
            settings.sampling,
            seeds=seeds,
            settle=settle,
            cut=cut,
            features=audio,
        )
        p_yes = [None] * len(batch)
        if settings.scoring:
            p_yes = yes_probability(
                model,
                tensors["input_ids"],
                tensors["attention_mask"],
                tensors["audio_mask"],
                None,
                context=inputs.collator.template.render("?"),
                features=audio,
            )
        for offset, (query, prompt, texts) in enumerate(zip(batch, prompts, answers)):
            if verdict[offset]:
                parsed: list[Any] = [parse_answer(t, rules=settings.parser) for t in texts]
            else:
                parsed = [contains_label(t, query.label) for t in texts]
            marks = cut[offset * settings.repeats : (offset + 1) * settings.repeats]
            rows.append(
                Prediction(
                    id=query.id,
                    task=query.task,
                    condition=condition,
                    label=query.label,
                    candidate=query.candidate or None,
                    truth=query.truth or None,
                    prompt=prompt,
                    answers=texts,
                    parsed=parsed,
                    cut=marks if any(marks) else None,
                    cut_parser=settings.parser if any(marks) else None,
                    p_yes=p_yes[offset] if settings.scoring and verdict[offset] else None,
                    index=start + offset,
                    clips=query.clips,
                )
            )
        if progress is not None:
            progress(len(batch))
    return rows


def rank_share(n_queries: int, batch_size: int, rank: int = 0, world_size: int = 1) -> int:
    """How many of `n_queries` `answer_queries` gives this rank (chunk k goes to rank k mod world size)."""
    return sum(
        min(batch_size, n_queries - start) for start in range(rank * batch_size, n_queries, world_size * batch_size)
    )


def gather_rows(rows: list[Prediction]) -> list[Prediction]:
    """Every rank's rows on every rank, in query order (a no-op without torch.distributed)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, rows)
        rows = [row for part in parts for row in part]
    return sorted(rows, key=lambda row: row.index)


def relation_metrics(rows: list[Prediction]) -> dict[str, float]:
    """Accuracy, precision, recall and F1 with Yes as the positive class, and the unparsed rate.

    Every answer counts (a query repeated 4 times is 4 samples); an unparsed answer counts as
    not-Yes (this project's reading: the paper does not say, and Table 2 is consistent with it)
    and is reported as a rate of its own.
    """
    parsed = [p for row in rows for p in row.parsed]
    if not parsed:
        return {}
    preds = torch.tensor([p == "yes" for p in parsed], dtype=torch.long)
    target = torch.tensor([row.truth == "yes" for row in rows for _ in row.parsed], dtype=torch.long)
    return {
        "accuracy": float(binary_accuracy(preds, target)),
        "precision": float(binary_precision(preds, target)),
        "recall": float(binary_recall(preds, target)),
        "f1": float(binary_f1_score(preds, target)),
        "unparsed": sum(p is None for p in parsed) / len(parsed),
    }


def condition_metrics(rows: list[Prediction], prefix: str) -> dict[str, float]:
    """Tagged metrics of one condition's rows (`interleave.eval.tasks.metric_tag` under `prefix`):
    every yes/no task's `relation_metrics` (and scored ones where rows hold `p_yes`), every label
    task's accuracy."""
    metrics: dict[str, float] = {}
    for task in verdict_tasks():
        for name, value in relation_metrics([r for r in rows if r.task == task.name]).items():
            metrics[metric_tag(prefix, task.name, name)] = value
        scored = [r for r in rows if r.task == task.name and r.p_yes is not None]
        if scored:
            preds = torch.tensor([r.p_yes > 0.5 for r in scored], dtype=torch.long)
            target = torch.tensor([r.truth == "yes" for r in scored], dtype=torch.long)
            metrics[metric_tag(prefix, task.name, "scored_accuracy")] = float(binary_accuracy(preds, target))
            metrics[metric_tag(prefix, task.name, "scored_f1")] = float(binary_f1_score(preds, target))
    for task in TASKS.values():
        hits = [hit for row in rows if row.task == task.name and task.scoring == LABEL for hit in row.parsed]
        if hits:
            metrics[metric_tag(prefix, task.name, "accuracy")] = sum(hits) / len(hits)
    return metrics


@dataclass(frozen=True)
class Evaluated:
    """What `evaluate` gives for one point: every condition's rows (`Prediction`, in condition order,
    every rank's) and their tagged metrics (`interleave.eval.tasks.metric_tag` -> value)."""

    rows: list[Prediction]
    metrics: dict[str, float]


@dataclass(frozen=True)
class Point:
    """One evaluation point as one rank sees it: `epoch` seeds the answers (`answer_seed`), `rank`
    of `world_size` picks the chunks this rank answers."""

    epoch: int = 0
    rank: int = 0
    world_size: int = 1


def evaluate(
    model: AudioLLM,
    queries: list[Query],
    settings: EvalSettings,
    inputs: EvalInputs,
    features: dict[str, torch.Tensor],
    point: Point = Point(),
    stop: Callable[[], bool] | None = None,
    progress: Callable[[str, int, int], AbstractContextManager[Callable[[int], None] | None]] | None = None,
) -> Evaluated:
    """Every query under every condition of `settings` (each rank its share, then every rank's rows
    on every rank): the rows in condition order and their tagged metrics (`Evaluated`). `progress(condition,
    this rank's share, the condition's queries)` gives what counts this rank's answered queries."""
    rows: list[Prediction] = []
    metrics: dict[str, float] = {}
    done_by: dict[str, list[Prediction]] = {}
    for condition, prefix in settings.prefixes.items():
        asked = settings.condition(condition).queries(queries)
        share = rank_share(len(asked), settings.batch_size, point.rank, point.world_size)
        with progress(condition, share, len(asked)) if progress is not None else nullcontext() as shown:
            mine = answer_queries(
                model,
                asked,
                condition,
                settings,
                inputs,
                features,
                epoch=point.epoch,
                rank=point.rank,
                world_size=point.world_size,
                stop=stop,
                progress=shown,
            )
        done = done_by[condition] = gather_rows(mine)
        metrics.update(condition_metrics(done, prefix))
        if condition in settings.probes:  # after the gather: every rank holds every row
            metrics.update(agreement_metrics(done_by[settings.conditions[0]], done, prefix))
        rows.extend(done)
    return Evaluated(rows=rows, metrics=metrics)


def agreement_metrics(real: list[Prediction], probe: list[Prediction], prefix: str) -> dict[str, float]:
    """A probe's tagged `agreement` per task with the main layout's rows (`interleave.eval.probes.agreement`)."""
    return {metric_tag(prefix, task, AGREEMENT): value for task, value in agreement(real, probe).items()}
