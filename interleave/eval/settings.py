"""How the SHARD is asked: `EvalSettings`, the one typed object the callback (`callbacks.ShardEvaluation`),
the playground and the benches share, built once from a run's options (`EvalSettings.of_options`, the
callback's config keys as users write them), and the fixed subset of a quick check (`capped_queries`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from interleave.errors import InterleaveError
from interleave.eval import tasks
from interleave.eval.answers import PARSERS
from interleave.eval.query import Query, clip_of
from interleave.eval.tasks import CONDITIONS, condition_prefix, prompt_table, resolved
from interleave.model.generation import Sampling


@dataclass(frozen=True, kw_only=True)
class EvalSettings:
    """How the SHARD is asked, the one definition shared by `callbacks.ShardEvaluation`, the
    playground and the benches (`bench/bench_eval.py`, `bench/bench_gpu.py`); built by keyword only,
    and from a run's options by `of_options`. It checks itself when built (`InterleaveError`).

    Args:
        sampling: how answers are generated (`interleave.model.generation.Sampling`).
        repeats: answers sampled per query.
        parser: `parse_answer`'s rules for the yes/no answers (`interleave.eval.answers.PARSERS`).
        conditions: condition names of the registry (`interleave.eval.tasks.CONDITIONS`), the run's
            main layout first (logged under plain `val/`).
        batch_size: queries answered together.
        seed: the seed of every answer's stream (`answer_seed`) and of the probes and the subset.
        prompts: overrides of Table 1's prompts ({task: {layout: template}}).
        full_answers: every answer to EOS or the cap; by default yes/no answers stop at their verdict.
        scoring: also the deterministic yes/no scoring mode (`p_yes` per row).
        probes: those of `conditions` (after the main one) that also log their `agreement` with the
            main layout's answers (issue 26's reliance figures).
        max_queries_per_task: None asks every query; N asks `capped_queries`' fixed subset, for a
            quick check.
    """

    sampling: Sampling = field(default_factory=Sampling)
    repeats: int = 4
    parser: str = "paper"
    conditions: tuple[str, ...] = ("interleaved", "text")
    batch_size: int = 16
    seed: int = 0
    prompts: Mapping[str, Mapping[str, str]] | None = None
    full_answers: bool = False
    scoring: bool = False
    probes: tuple[str, ...] = ()
    max_queries_per_task: int | None = None
    table: dict[str, dict[str, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.batch_size < 1:
            raise InterleaveError("SHARD evaluation: repeats and batch_size must be at least 1")
        cap = self.max_queries_per_task
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise InterleaveError(
                f"SHARD evaluation: max_queries_per_task must be a whole number of at least 1, "
                f"or null for every query; got {cap!r}"
            )
        if self.parser not in PARSERS:
            raise InterleaveError(f"SHARD evaluation: parser must be one of {', '.join(PARSERS)}, got {self.parser!r}")
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown or not self.conditions:
            raise InterleaveError(
                f"SHARD evaluation: unknown condition(s) {unknown}; expected some of {list(CONDITIONS)}"
            )
        if CONDITIONS[self.conditions[0]].layout is None:
            raise InterleaveError(
                f"SHARD evaluation: {self.conditions[0]} cannot be the main condition: it is a "
                "probe asked under the main condition's layout"
            )
        stray = [p for p in self.probes if p not in self.conditions[1:]]
        if stray:
            raise InterleaveError(
                f"SHARD evaluation: probe(s) {stray} are not among the conditions after the main one "
                f"({self.conditions[0]}, whose answers a probe's are compared with)"
            )
        try:
            object.__setattr__(self, "table", prompt_table(self.prompts))
        except ValueError as err:
            raise InterleaveError(f"SHARD evaluation: {err}") from None

    @classmethod
    def of_options(
        cls,
        *,
        layout: str = "interleaved",
        extra_layouts: Sequence[str] | None = None,
        text_control: bool = True,
        probes: Sequence[str] | None = None,
        sampling: Sampling | None = None,
        repeats: int = 4,
        parser: str = "paper",
        batch_size: int = 16,
        seed: int = 0,
        prompts: Mapping[str, Mapping[str, str]] | None = None,
        full_answers: bool = False,
        scoring: bool = False,
        max_queries_per_task: int | None = None,
    ) -> EvalSettings:
        """The settings of a run's options, named as `ShardEvaluation`'s config keys: the main
        condition `layout`, then `extra_layouts`, the text control (`text_control`) and `probes`
        (each name once, in that order) make `conditions`; `probes` also log their agreement. The
        other options are the fields of the same name. The one place a run's options become settings."""
        conditions = [layout, *(extra_layouts or []), *(["text"] if text_control else []), *(probes or [])]
        return cls(
            sampling=Sampling() if sampling is None else sampling,
            repeats=repeats,
            parser=parser,
            conditions=tuple(dict.fromkeys(conditions)),
            batch_size=batch_size,
            seed=seed,
            prompts=prompts,
            full_answers=full_answers,
            scoring=scoring,
            probes=tuple(dict.fromkeys(probes or [])),
            max_queries_per_task=max_queries_per_task,
        )

    @property
    def prefixes(self) -> dict[str, str]:
        """Each condition's tag prefix: the first under `val`, the others under `val/<condition>`."""
        return {c: condition_prefix(c, self.conditions[0]) for c in self.conditions}

    def condition(self, name: str) -> tasks.Condition:
        """The registered condition `name` in this evaluation (a clip probe asks under the main layout)."""
        return resolved(name, self.conditions[0])

    def asked(self, queries: Sequence[Query]) -> list[Query]:
        """The queries this evaluation asks of a SHARD's `queries`: all of them, or with
        `max_queries_per_task` the fixed subset `capped_queries(queries, cap, seed)`."""
        return (
            list(queries)
            if self.max_queries_per_task is None
            else capped_queries(queries, self.max_queries_per_task, self.seed)
        )

    def subset(self, queries: Sequence[Query]) -> str | None:
        """What the metrics file records as `shard_subset` (`interleave.provenance`) when this
        evaluation asks only part of `queries`: the cap, the seed and the selection rule (with the
        SHARD file's hash they fix the subset); None when every query is asked."""
        if len(self.asked(queries)) == len(queries):
            return None
        return f"at most {self.max_queries_per_task} queries per task, seed {self.seed}, {SUBSET_RULE}"


SUBSET_RULE = "clips-round-robin-v1"  # `capped_queries`' rule; bump the version when it changes


def _rank(seed: int, *parts: str) -> tuple[bytes, str]:
    """A fixed pseudo-random sort key of a word, clip or query: the same in every process and on every rank."""
    name = "/".join(parts)
    return hashlib.sha256(f"subset/{seed}/{name}".encode()).digest(), name


def _clip_order(clip: list[Query], seed: int) -> list[Query]:
    """A clip's queries in a seeded order that alternates their truths (yes, no, yes, ... or no, yes, ...),
    so a clip cut short keeps both answers where it has both."""
    by_truth: dict[str, list[Query]] = {}
    for q in sorted(clip, key=lambda q: _rank(seed, q.task, "query", q.id)):
        by_truth.setdefault(str(q.truth), []).append(q)
    place = {q.id: i for queries in by_truth.values() for i, q in enumerate(queries)}
    return sorted(clip, key=lambda q: (place[q.id], _rank(seed, q.task, "query", q.id)))


def capped_queries(queries: Sequence[Query], limit: int, seed: int = 0) -> list[Query]:
    """At most `limit` queries of each task, the same ones at every call, in SHARD order.

    Chosen by word and clip, the units `interleave.tools.bootstrap` resamples (the word is the
    query's label, the clip the clip number of its id, `format.clip_of`, else the whole id): the
    task's words in a seeded order, each word's clips in a seeded order, a clip's queries in a seeded
    order that alternates yes and no; then the first clip of every word, then the second of every
    word, and so on, a clip's queries together, until `limit` queries are taken. So a cap spreads
    over as many words as whole clips allow, and every clip but perhaps the last comes with all its
    queries. The order depends only on the queries and `seed` (sha256, no process state): every
    evaluated point of a run and every rank under DDP ask the same subset, and a task with at most
    `limit` queries keeps all of them.
    """
    by_task: dict[str, dict[str, dict[str, list[Query]]]] = {}  # task -> word -> clip -> queries
    for q in queries:
        clip = clip_of(q.id, q.task, q.label) or f"id:{q.id}"
        by_task.setdefault(q.task, {}).setdefault(q.label, {}).setdefault(clip, []).append(q)
    keep: set[str] = set()
    for task, words in by_task.items():
        rounds = [
            [_clip_order(clips[c], seed) for c in sorted(clips, key=lambda c: _rank(seed, task, "clip", word, c))]
            for word, clips in sorted(words.items(), key=lambda item: _rank(seed, task, "word", item[0]))
        ]
        order = [q for r in range(max(map(len, rounds))) for word in rounds if r < len(word) for q in word[r]]
        keep.update(q.id for q in order[:limit])
    return [q for q in queries if q.id in keep]
