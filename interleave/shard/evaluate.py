"""SHARD and identity evaluation of an AudioLLM: Table 1's prompts, sampled answers, metrics.

A query (`interleave.shard.Query`) becomes a prompt for one *condition*: `interleaved`
(`[AUDIO]` where Table 1 puts it), `noninterleaved` (LTU's layout: audio before the prompt)
or `text` (the control: the word itself stands where `[AUDIO]` stood; no audio at all).
Each query is answered `repeats` times by sampling; the repeats share one prefill.

Queries are cut into fixed chunks, chunk k is answered by rank k mod world size, and each
answer samples from its own stream seeded from (seed, epoch, condition, query index, repeat).
So the answers, and the metrics, are the same with 1 process or several, and no query is
answered twice. By default a yes/no answer stops as soon as its parsed verdict is settled
(`interleave.shard.answers.settled_answer`): the same verdict as the whole answer, marked `cut`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Literal

import torch
import torch.distributed as dist
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_f1_score,
    binary_precision,
    binary_recall,
)

from interleave import AUDIO_PLACEHOLDER
from interleave.cache import FeatureCache, compute_features
from interleave.collate import Collator
from interleave.generation import Sampling, sample_answers, yes_probability
from interleave.labels import contains_label
from interleave.records import Record
from interleave.shard.answers import parse_answer, settled_answer
from interleave.shard.format import PAIR, YES_NO_TASKS, Query

if TYPE_CHECKING:  # the model calls the evaluation through the callback; this module only reads it
    from interleave.model import AudioLLM

Condition = Literal["interleaved", "noninterleaved", "text"]

# The paper's Table 1. `{synonym}` / `{hypernym}` is the query's candidate word.
TABLE1: dict[str, dict[str, str]] = {
    "identity": {
        "noninterleaved": "Can you list the labels based on this audio file?",
        "interleaved": f"Can you list the labels based on {AUDIO_PLACEHOLDER} ?",
    },
    "synonym": {
        "noninterleaved": "Is the sound of the object in this audio signal similar to {synonym}?",
        "interleaved": f"Is {AUDIO_PLACEHOLDER} similar to {{synonym}}?",
    },
    "hypernym": {
        "noninterleaved": "Is the sound of the object in this audio signal a type of {hypernym}?",
        "interleaved": f"Is {AUDIO_PLACEHOLDER} a type of {{hypernym}}?",
    },
    # Not the paper's: two clips in one prompt (issue 19). LTU's layout holds one clip, so none.
    "pair": {"interleaved": f"Is {AUDIO_PLACEHOLDER} the same kind of sound as {AUDIO_PLACEHOLDER}?"},
}


def prompt_table(overrides: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """Table 1 with `overrides` ({task: {layout: template}}) applied."""
    table = {task: dict(layouts) for task, layouts in TABLE1.items()}
    for task, layouts in (overrides or {}).items():
        if task not in table:
            raise ValueError(f"unknown task '{task}' in prompts; expected one of {sorted(table)}")
        table[task].update(layouts)
    return table


def condition_queries(queries: list[Query], condition: Condition) -> list[Query]:
    """The queries a condition asks. The text control has no identity task (the answer would be
    in the prompt), and asks each (task, word, candidate) once: its prompt does not depend on the clip.
    LTU's layout (`noninterleaved`) holds one clip, so it asks no pair query."""
    if condition == "noninterleaved":
        return [q for q in queries if q.task != PAIR]
    if condition != "text":
        return list(queries)
    unique: dict[tuple, Query] = {}
    for q in queries:
        if q.task != "identity":
            unique.setdefault((q.task, q.word, q.candidate, q.truth), q)
    return list(unique.values())


def render_instruction(query: Query, condition: Condition, table: dict[str, dict[str, str]]) -> str:
    """The instruction of `query` under `condition`; the text control puts the word at `[AUDIO]`."""
    template = table[query.task]["interleaved" if condition == "text" else condition]
    candidate = query.candidate or ""
    text = template.format(synonym=candidate, hypernym=candidate, candidate=candidate, word=query.word)
    if condition == "text" and query.task == PAIR:  # both words, each where its clip stood
        return text.replace(AUDIO_PLACEHOLDER, query.word, 1).replace(AUDIO_PLACEHOLDER, candidate, 1)
    if condition == "text":
        text = text.replace(AUDIO_PLACEHOLDER, query.word)
    return text


class EvaluationStopped(Exception):
    """`answer_queries` was asked to stop (a SIGTERM during training): no metrics for this point."""



@torch.no_grad()
def audio_features(
    model: AudioLLM, paths: list[str], cache: dict[str, torch.Tensor], store: FeatureCache | None = None, batch_size: int = 8,
    channel: str = "first",
) -> torch.Tensor:
    """Encoder features [N, 32, D] of the clips, computed once per clip and kept in `cache`
    (and read from / written to `store`, an `interleave.cache.FeatureCache`, when given).
    `channel` picks the audio channel of multi-channel files (`interleave.audio.load_waveform`)."""
    missing = [p for p in dict.fromkeys(paths) if p not in cache]
    if store is not None:
        for path in missing:
            if (features := store.lookup(path)) is not None:
                cache[path] = features
        missing = [p for p in missing if p not in cache]
    for path, features in compute_features(model.audio_encoder, missing, batch_size, channel):
        cache[path] = features
        if store is not None:
            store.put(path, features)
    return torch.stack([cache[p] for p in paths])


def answer_seed(seed: int, epoch: int, condition: str, index: int, repeat: int) -> int:
    """The seed of one answer's random stream: query `index`'s repeat `repeat`."""
    return zlib.crc32(f"{seed}/{epoch}/{condition}/{index}/{repeat}".encode())


@dataclass
class EvalSettings:
    """What one evaluation pass needs besides the model and the queries."""

    collator: Collator
    table: dict[str, dict[str, str]]
    sampling: Sampling = field(default_factory=Sampling)
    repeats: int = 4
    batch_size: int = 16
    seed: int = 0
    store: FeatureCache | None = None  # features to read (and fill), if the run has a feature cache
    score: bool = False  # also the deterministic yes/no scoring mode (`p_yes` per row)
    channel: str = "first"  # which channel of multi-channel audio (interleave.audio.load_waveform)
    parser: str = "paper"  # `parse_answer`'s rules for the yes/no answers (interleave.shard.PARSERS)
    full_answers: bool = False  # every answer to EOS or the cap; by default yes/no answers stop at their verdict


def answer_queries(
    model: AudioLLM,
    queries: list[Query],
    condition: Condition,
    settings: EvalSettings,
    features: dict[str, torch.Tensor],
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """This rank's share of the answers: one row per query of the chunks it owns.

    A row holds the query, the prompt, every answer, its parsed value (yes/no/None for SHARD;
    whether the label was named, for identity) and the truth; `cut` (one flag per answer) and
    `cut_parser` when an answer stopped at its verdict under those parser rules. `index` is the query's place in
    `queries`, so rows gathered from all ranks can be put back in order.
    `stop` is asked before each round of chunks (every rank asks equally often, so it may be a
    collective); when it answers True the evaluation ends with EvaluationStopped.
    `progress` is called after each chunk with the number of queries it just answered (this rank's
    share in all: `rank_share`); what to show is the caller's business.
    """
    rows: list[dict[str, Any]] = []
    device = next(model.parameters()).device
    size = settings.batch_size
    chunks = (len(queries) + size - 1) // size
    for first in range(0, chunks, world_size):
        if stop is not None and stop():
            raise EvaluationStopped(f"stopped after {len(rows)} of {len(queries)} queries")
        chunk = first + rank
        if chunk >= chunks:
            continue
        start = chunk * size
        batch = queries[start : start + size]
        prompts = [render_instruction(q, condition, settings.table) for q in batch]
        records = [Record(id=q.id, audio=q.clips, instruction=p, where=q.where) for q, p in zip(batch, prompts)]
        encoded = [settings.collator.encode(r, with_answer=False, with_audio=condition != "text") for r in records]
        tensors = {k: v.to(device) for k, v in settings.collator.pad(encoded, "left").items()}
        clips = [clip for q in batch for clip in q.clips]
        audio = None if condition == "text" else audio_features(model, clips, features, settings.store,
                                                                  channel=settings.channel).to(device)
        seeds = [answer_seed(settings.seed, epoch, condition, start + i, j)
                 for i in range(len(batch)) for j in range(settings.repeats)]
        settle = None if settings.full_answers else [
            None if q.task == "identity" else partial(settled_answer, rules=settings.parser) for q in batch]
        cut: list[bool] = []
        answers = sample_answers(
            model, tensors["input_ids"], tensors["attention_mask"], tensors["audio_mask"], audio,
            settings.repeats, settings.sampling, seeds=seeds, settle=settle, cut=cut,
        )
        p_yes = [None] * len(batch)
        if settings.score:
            p_yes = yes_probability(model, tensors["input_ids"], tensors["attention_mask"], tensors["audio_mask"], audio,
                                    context=settings.collator.template.render("?"))
        for offset, (query, prompt, texts) in enumerate(zip(batch, prompts, answers)):
            if query.task == "identity":
                parsed: list[Any] = [contains_label(t, query.label) for t in texts]
            else:
                parsed = [parse_answer(t, rules=settings.parser) for t in texts]
            rows.append({
                "index": start + offset, "id": query.id, "task": query.task, "condition": condition,
                "label": query.label, "candidate": query.candidate or None, "truth": query.truth or None,
                "prompt": prompt, "answers": texts, "parsed": parsed,
                **({"cut": marks, "cut_parser": settings.parser}
                   if any(marks := cut[offset * settings.repeats : (offset + 1) * settings.repeats]) else {}),
                **({"p_yes": p_yes[offset]} if settings.score and query.task != "identity" else {}),
            })
        if progress is not None:
            progress(len(batch))
    return rows


def rank_share(n_queries: int, batch_size: int, rank: int = 0, world_size: int = 1) -> int:
    """How many of `n_queries` `answer_queries` gives this rank (chunk k goes to rank k mod world size)."""
    return sum(min(batch_size, n_queries - start) for start in range(rank * batch_size, n_queries, world_size * batch_size))


def gather_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rank's rows on every rank, in query order (a no-op without torch.distributed)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, rows)
        rows = [row for part in parts for row in part]
    return sorted(rows, key=lambda row: row["index"])


def relation_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Accuracy, precision, recall and F1 with Yes as the positive class, and the unparsed rate.

    Every answer counts (a query repeated 4 times is 4 samples); an unparsed answer counts as
    not-Yes (this project's reading: the paper does not say, and Table 2 is consistent with it)
    and is reported as a rate of its own.
    """
    parsed = [p for row in rows for p in row["parsed"]]
    if not parsed:
        return {}
    preds = torch.tensor([p == "yes" for p in parsed], dtype=torch.long)
    target = torch.tensor([row["truth"] == "yes" for row in rows for _ in row["parsed"]], dtype=torch.long)
    return {
        "accuracy": float(binary_accuracy(preds, target)),
        "precision": float(binary_precision(preds, target)),
        "recall": float(binary_recall(preds, target)),
        "f1": float(binary_f1_score(preds, target)),
        "unparsed": sum(p is None for p in parsed) / len(parsed),
    }


def condition_metrics(rows: list[dict[str, Any]], prefix: str) -> dict[str, float]:
    """Tagged metrics of one condition's rows: `{prefix}/shard/{relation}/{metric}` and
    `{prefix}/identity/accuracy` (the project's TensorBoard tags when `prefix` is `val`)."""
    metrics: dict[str, float] = {}
    for relation in YES_NO_TASKS:
        for name, value in relation_metrics([r for r in rows if r["task"] == relation]).items():
            metrics[f"{prefix}/shard/{relation}/{name}"] = value
        scored = [r for r in rows if r["task"] == relation and r.get("p_yes") is not None]
        if scored:
            preds = torch.tensor([r["p_yes"] > 0.5 for r in scored], dtype=torch.long)
            target = torch.tensor([r["truth"] == "yes" for r in scored], dtype=torch.long)
            metrics[f"{prefix}/shard/{relation}/scored_accuracy"] = float(binary_accuracy(preds, target))
            metrics[f"{prefix}/shard/{relation}/scored_f1"] = float(binary_f1_score(preds, target))
    hits = [hit for row in rows if row["task"] == "identity" for hit in row["parsed"]]
    if hits:
        metrics[f"{prefix}/identity/accuracy"] = sum(hits) / len(hits)
    return metrics
