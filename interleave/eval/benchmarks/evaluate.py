"""One benchmark asked of a model at one evaluated point: both scorings, with the clip and under the controls.

Conditions: `clip` (the item's own clips) and the controls a run asks (`CONTROLS`): `no_clip`
(the question and choices alone, no audio span: MMAU's no-audio baseline), `silence` and `noise`
(the encoder reads silence, or seeded white noise at the clip's RMS, instead of each clip:
`interleave.eval.probes`), `swap` (another item's clips, by a seeded cyclic order among the items
with as many clips). Scorings (`SCORINGS`): `ranked` (`ranked.choice_loglikelihoods`, the highest
wins) and `generated` (answers sampled with the run's sampling settings and repeats, each from its
own stream seeded from (seed, epoch, `bench/<name>/<condition>`, item, repeat), so the SHARD's
streams and rows are untouched; each answer's choice by `choices.named_choice` under the
benchmark's rule, the majority over the repeats judged).

Items are cut into chunks of `batch_size`, chunk k answered by rank k mod world size, and every
rank's rows gathered: the figures are the same with one process or several.

Tags (`interleave.eval.tasks.bench_tag`), under `val/bench/<name>`:

    <scoring>/accuracy                         with the clip
    <scoring>/category/<category>/accuracy     per category (and sub_category), names made safe (`items.tag_name`)
    generated/no_choice                        the share of generated answers that name no choice
    <control>/<scoring>/accuracy, .../agreement    a control's accuracy and its agreement with the clip's choice
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch

from interleave.data.records import Record
from interleave.errors import InterleaveError, RecordError
from interleave.eval.benchmarks.choices import RULES, correct, majority, named_choice
from interleave.eval.benchmarks.items import BenchmarkItem, tag_name
from interleave.eval.benchmarks.prompts import asks, no_clip, prompt_templates, render
from interleave.eval.benchmarks.ranked import NORMS, TOKEN_MEAN, Question, choice_loglikelihoods, ranked_choice
from interleave.eval.evaluate import EvalInputs, EvaluationStopped, Point, answer_seed, audio_features, gather_rows
from interleave.eval.probes import variant
from interleave.eval.tasks import bench_tag
from interleave.model.generation import Sampling, sample_answers

if TYPE_CHECKING:
    from interleave.eval.settings import EvalSettings
    from interleave.model.module import AudioLLM

CLIP = "clip"
CONTROLS = ("no_clip", "silence", "noise", "swap")
RANKED, GENERATED = "ranked", "generated"
SCORINGS = (RANKED, GENERATED)
AGREEMENT, NO_CHOICE = "agreement", "no_choice"


@dataclass(frozen=True)
class BenchmarkConfig:
    """One benchmark a run evaluates: an entry of `callbacks.ShardEvaluation`'s `benchmarks`.

    Args:
        name: its tag segment (`val/bench/<name>/...`) and its predictions folder; letters, digits, `_`, `-`.
        file: the benchmark file in MMAU's format (`interleave.eval.benchmarks.items`).
        audio_root: the folder its clip paths are relative to (default: the file's folder).
        subset: how many items every evaluated point asks, a fixed seeded subset stratified by task
            and category (`items.fixed_subset`); None: every item.
        seed: seeds the subset, the noise, the swap and the generated answers' streams.
        scorings: `ranked` (choice log-likelihoods) and/or `generated` (sampled answers, MMAU's rule).
        controls: the controls asked beside the clip: some of `no_clip`, `silence`, `noise`, `swap`.
        rule: how a generated answer names a choice: `mmau` (MMAU's own rule, the default) or `letters`.
        norm: the ranked scoring's length normalisation: `token_mean` (default) or `sum`.
        prompts: the benchmark prompt per layout ({layout: template}, `prompts.PROMPTS` overridden).
        max_length: the longest prompt asked, in tokens with the clips' spans; None (default): the
            LLM's context less the answer's room (`max_position_embeddings` − `max_new_tokens`), never
            less than the run's `data.max_length`. The run's `data.max_length` bounds its training
            records (the demo's is 128), not the questions a benchmark asks: MMAU's are longer.
        whole_at_end: also ask every good item of the file once when a fit ends (the same scorings
            and controls), logged under `val/bench/<name>/whole/...`, its rows in
            `predictions/whole.bench.jsonl` and its figures in `predictions/whole.metrics.json`
            (`callbacks.benchmarks`); a fit resumed after that is not asked again.
    """

    name: str
    file: str
    audio_root: str | None = None
    subset: int | None = None
    seed: int = 0
    scorings: tuple[str, ...] = (RANKED,)
    controls: tuple[str, ...] = ("no_clip",)
    rule: str = "mmau"
    norm: str = TOKEN_MEAN
    prompts: dict[str, str] | None = None
    max_length: int | None = None
    whole_at_end: bool = False
    templates: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"benchmark {self.name!r}"
        if not isinstance(self.name, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise InterleaveError(f"benchmark name {self.name!r}: use letters, digits, '_' and '-' only")
        object.__setattr__(self, "scorings", tuple(self.scorings))
        object.__setattr__(self, "controls", tuple(self.controls))
        if not self.scorings or any(s not in SCORINGS for s in self.scorings):
            raise InterleaveError(f"{where}: scorings must be some of {list(SCORINGS)}, got {list(self.scorings)}")
        if any(c not in CONTROLS for c in self.controls):
            raise InterleaveError(f"{where}: controls must be some of {list(CONTROLS)}, got {list(self.controls)}")
        if self.rule not in RULES:
            raise InterleaveError(f"{where}: rule must be one of {list(RULES)}, got {self.rule!r}")
        if self.norm not in NORMS:
            raise InterleaveError(f"{where}: norm must be one of {list(NORMS)}, got {self.norm!r}")
        if self.subset is not None and (
            isinstance(self.subset, bool) or not isinstance(self.subset, int) or self.subset < 1
        ):
            raise InterleaveError(
                f"{where}: subset must be a whole number of at least 1, or null for every item; got {self.subset!r}"
            )
        if self.max_length is not None and (
            isinstance(self.max_length, bool) or not isinstance(self.max_length, int) or self.max_length < 1
        ):
            raise InterleaveError(
                f"{where}: max_length must be a whole number of at least 1, or null for the LLM's context; "
                f"got {self.max_length!r}"
            )
        if not isinstance(self.whole_at_end, bool):
            raise InterleaveError(f"{where}: whole_at_end must be true or false, got {self.whole_at_end!r}")
        try:
            object.__setattr__(self, "templates", prompt_templates(self.prompts))
        except ValueError as err:
            raise InterleaveError(f"{where}: {err}") from None

    @property
    def conditions(self) -> tuple[str, ...]:
        return (CLIP, *self.controls)


@dataclass(frozen=True)
class RunSettings:
    """What a benchmark takes from the run's evaluation: its sampling settings and repeats (the
    generated scoring), its chunk size, and its main layout (which prompt each item is asked in)."""

    layout: str = "interleaved"
    sampling: Sampling = field(default_factory=Sampling)
    repeats: int = 4
    batch_size: int = 16

    @classmethod
    def of(cls, settings: EvalSettings) -> RunSettings:
        """A run's evaluation settings as its benchmarks take them: its main condition's layout, its
        sampling, repeats and chunk size."""
        from interleave.eval.tasks import CONDITIONS

        layout = CONDITIONS[settings.conditions[0]].layout
        return cls(layout=layout, sampling=settings.sampling, repeats=settings.repeats, batch_size=settings.batch_size)


@dataclass(frozen=True)
class BenchmarkRow:
    """One item under one condition and scoring, as `predictions/bench/<name>/epoch=NN.jsonl` holds it:
    the prompt, the choices, the answer's index, the chosen one (None: none named), whether it is
    right; `scores` (ranked) or `answers` and `named` (generated, one per repeat)."""

    benchmark: str
    condition: str
    scoring: str
    id: str
    prompt: str
    choices: list[str]
    answer: int
    chosen: int | None
    correct: bool
    category: str = ""
    sub_category: str = ""
    scores: list[float] | None = None
    answers: list[str] | None = None
    named: list[int | None] | None = None
    index: int = field(default=0, compare=False)

    def to_json(self) -> str:
        optional = ("scores", "answers", "named")  # the scoring's own keys; `chosen` stays, null for no choice
        row = {k: v for k, v in asdict(self).items() if k != "index" and not (k in optional and v is None)}
        return json.dumps(row, ensure_ascii=False)


def swap_table(items: Sequence[BenchmarkItem], seed: int) -> dict[str, tuple[str, ...]]:
    """Each item's swapped clips: among the items with as many clips, in a seeded sha256 order, each
    takes those of the next one (cyclically) whose clips are not its own. An item with no such
    other item (alone with its clip count, or all of them on its clips) has none."""
    groups: dict[int, list[BenchmarkItem]] = {}
    for item in sorted(items, key=lambda it: hashlib.sha256(f"swap/{seed}/{it.id}".encode()).digest()):
        groups.setdefault(len(item.clips), []).append(item)
    table = {}
    for group in groups.values():
        for i, item in enumerate(group):
            after = group[i + 1 :] + group[:i]
            other = next((o for o in after if o.clips != item.clips), None)
            if other is not None:
                table[item.id] = other.clips
    return table


def _rounds(count: int, size: int, point: Point) -> list[range | None]:
    """This rank's chunk of each round of `count` items (chunk k goes to rank k mod world size), None
    in a round where it has none: every rank goes through as many rounds, so a collective `stop` is
    asked equally often on every rank."""
    chunks = (count + size - 1) // size
    return [
        range(c * size, min((c + 1) * size, count)) if (c := first + point.rank) < chunks else None
        for first in range(0, chunks, point.world_size)
    ]


def ask(
    model: AudioLLM,
    config: BenchmarkConfig,
    items: Sequence[BenchmarkItem],
    run: RunSettings,
    inputs: EvalInputs,
    features: dict[str, torch.Tensor],
    point: Point | None = None,
    stop: Callable[[], bool] | None = None,
    conditions: tuple[str, ...] | None = None,
) -> tuple[list[BenchmarkRow], dict[str, float], dict[str, int]]:
    """Every asked item under every condition and scoring of `config` (each rank its share, then
    every rank's rows on every rank): the rows, the tagged metrics and the counts (`asked`, `skipped`:
    items the layout cannot ask, `too_long`: prompts longer than the benchmark's `max_length` (`prompt_limit`),
    `no_swap`: items with no other item's clips to swap in). `point`:
    the epoch that seeds the generated answers, and this rank's share (default: one process, epoch 0).
    `conditions`: those asked instead of `config.conditions` (a text file's items, which have no clip,
    are asked under `no_clip` alone: issue 39's text multiple choice)."""
    point = point or Point()
    template = config.templates.get(run.layout)
    if template is None:
        raise InterleaveError(
            f"benchmark {config.name!r}: no prompt for the layout {run.layout!r}; give one under "
            f"its prompts ({sorted(config.templates)} have one)"
        )
    inputs = replace(inputs, collator=copy.copy(inputs.collator))
    inputs.collator.max_length = prompt_limit(model, config, run, inputs.collator.max_length)
    rendered = [(item, render(item, template)) for item in items]
    layout_asks = [(item, text) for item, text in rendered if not item.clips or asks(item, run.layout, text)]
    asked = [(item, text) for item, text in layout_asks if _fits(inputs, item, text)]
    swap = swap_table([item for item, _ in asked], config.seed)
    counts = {
        "asked": len(asked),
        "skipped": len(items) - len(layout_asks),
        "too_long": len(layout_asks) - len(asked),
        "no_swap": sum(item.id not in swap for item, _ in asked) if "swap" in config.controls else 0,
    }
    rows: dict[tuple[str, str], list[BenchmarkRow]] = {}
    for condition in conditions or config.conditions:
        pool = [(i, it, t) for i, (it, t) in enumerate(asked) if condition != "swap" or it.id in swap]
        for scoring in config.scorings:
            mine: list[BenchmarkRow] = []
            for chunk in _rounds(len(pool), run.batch_size, point):
                if stop is not None and stop():
                    raise EvaluationStopped(f"benchmark {config.name}: stopped")
                if chunk is None:
                    continue
                mine += _answer(
                    model, config, [pool[k] for k in chunk], condition, scoring, run, inputs, features, point, swap
                )
            rows[(condition, scoring)] = gather_rows(mine)
    return [r for part in rows.values() for r in part], benchmark_metrics(config, rows), counts


def prompt_limit(model: AudioLLM, config: BenchmarkConfig, run: RunSettings, run_max_length: int) -> int:
    """The longest prompt a benchmark asks (tokens, clips' spans included): its `max_length`, else the
    LLM's context less the generated answer's room, never less than the run's `data.max_length`."""
    if config.max_length is not None:
        return config.max_length
    context = getattr(getattr(getattr(model, "llm", None), "config", None), "max_position_embeddings", None)
    return max(run_max_length, context - run.sampling.max_new_tokens) if isinstance(context, int) else run_max_length


def _fits(inputs: EvalInputs, item: BenchmarkItem, text: str) -> bool:
    """Whether the item's prompt (clips included) fits the benchmark's collation (`prompt_limit`)."""
    try:
        instruction = text if item.clips else no_clip(text)  # a text item is asked without its placeholder
        record = Record(id=item.id, audio=item.clips, instruction=instruction)
        inputs.collator.encode(record, with_answer=False, with_audio=bool(item.clips))
    except RecordError:
        return False
    return True


def _answer(
    model: AudioLLM,
    config: BenchmarkConfig,
    chunk: list[tuple[int, BenchmarkItem, str]],
    condition: str,
    scoring: str,
    run: RunSettings,
    inputs: EvalInputs,
    features: dict[str, torch.Tensor],
    point: Point,
    swap: dict[str, tuple[str, ...]],
) -> list[BenchmarkRow]:
    """One chunk's rows under one condition and scoring."""
    device = next(model.parameters()).device
    audio = condition != "no_clip"
    prompts = [text if audio else no_clip(text) for _, _, text in chunk]
    clips = [swap[item.id] if condition == "swap" else item.clips for _, item, _ in chunk]
    read = variant(condition, config.seed) if condition in ("silence", "noise") else None
    feats = None
    if audio:
        feats = audio_features(
            model, [c for group in clips for c in group], features, inputs.store, channel=inputs.channel, variant=read
        ).to(device)
    out = []
    if scoring == RANKED:
        questions = [Question(p, item.choices, c if audio else ()) for p, (_, item, _), c in zip(prompts, chunk, clips)]
        scores = choice_loglikelihoods(model, inputs.collator, questions, feats, norm=config.norm)
        for (index, item, _), prompt, s in zip(chunk, prompts, scores):
            chosen = ranked_choice(s)
            out.append(_row(config, condition, scoring, item, prompt, chosen, index, scores=s))
        return out
    records = [Record(id=item.id, audio=c, instruction=p) for p, (_, item, _), c in zip(prompts, chunk, clips)]
    encoded = [inputs.collator.encode(r, with_answer=False, with_audio=audio) for r in records]
    tensors = {k: v.to(device) for k, v in inputs.collator.pad(encoded, "left").items()}
    seeds = [
        answer_seed(config.seed, point.epoch, f"bench/{config.name}/{condition}", index, j)
        for index, _, _ in chunk
        for j in range(run.repeats)
    ]
    answers = sample_answers(
        model,
        tensors["input_ids"],
        tensors["attention_mask"],
        tensors["audio_mask"],
        None,
        run.repeats,
        run.sampling,
        seeds=seeds,
        features=feats,
    )
    for (index, item, _), prompt, texts in zip(chunk, prompts, answers):
        named = [named_choice(t, item.choices, config.rule) for t in texts]
        out.append(_row(config, condition, scoring, item, prompt, majority(named), index, answers=texts, named=named))
    return out


def _row(
    config: BenchmarkConfig,
    condition: str,
    scoring: str,
    item: BenchmarkItem,
    prompt: str,
    chosen: int | None,
    index: int,
    **scored: Any,
) -> BenchmarkRow:
    return BenchmarkRow(
        config.name,
        condition,
        scoring,
        item.id,
        prompt,
        list(item.choices),
        item.answer_index,
        chosen,
        correct(chosen, item.answer, item.choices),
        item.category,
        item.sub_category,
        index=index,
        **scored,
    )


def benchmark_metrics(config: BenchmarkConfig, rows: dict[tuple[str, str], list[BenchmarkRow]]) -> dict[str, float]:
    """The tagged figures of one benchmark's rows ({(condition, scoring): rows}; see the module docstring)."""
    metrics: dict[str, float] = {}
    for (condition, scoring), part in rows.items():
        if not part:
            continue
        head = (scoring,) if condition == CLIP else (condition, scoring)
        metrics[bench_tag(config.name, *head, "accuracy")] = sum(r.correct for r in part) / len(part)
        if scoring == GENERATED:
            named = [n for r in part for n in r.named or []]
            metrics[bench_tag(config.name, *head, NO_CHOICE)] = sum(n is None for n in named) / len(named)
        if condition == CLIP:
            for kind in ("category", "sub_category"):
                groups: dict[str, list[bool]] = {}
                for r in part:
                    if getattr(r, kind):
                        groups.setdefault(tag_name(getattr(r, kind)), []).append(r.correct)
                for name, hits in groups.items():
                    metrics[bench_tag(config.name, scoring, kind, name, "accuracy")] = sum(hits) / len(hits)
        else:
            real = {r.id: r.chosen for r in rows.get((CLIP, scoring), [])}
            same = [r.chosen == real[r.id] for r in part if r.id in real]
            if same:
                metrics[bench_tag(config.name, condition, scoring, AGREEMENT)] = sum(same) / len(same)
    return metrics
