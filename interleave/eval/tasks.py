"""The SHARD tasks and the evaluation conditions: one registry that everything else reads.

A `Task` says what a query of that task is asked (its prompt per prompt layout: Table 1's
`interleaved`, with `[AUDIO]` where the clip stands, and LTU's `noninterleaved`, audio before
the prompt), how its answers are scored (a yes/no `verdict`, or a `label` match), how many clips
it holds, and how the report and the curves name it. A `Condition` is one way of asking the
queries: which prompt layout, and whether the clips go to the encoder (the text-only control puts
each clip's word where its `[AUDIO]` stood). A condition asks a task when the task has a prompt
in its layout (LTU's layout holds one clip, so the two-clip `pair` task has none there) and, for
the text control, when the answer is not in the prompt (no label task).

The evaluation, the callback's TensorBoard layout and HParams, `curves.png`, `interleave report`
and the playground iterate over `TASKS` and `CONDITIONS`; adding a task or a condition is one
`register` here (`registered(...)` undoes it, for tests). Tags are made by `metric_tag` and read
back by `parse_tag`, nowhere else:

    val/shard/{task}/{metric}        a verdict task under the run's main layout
    val/{task}/accuracy              a label task (identity) under the run's main layout
    val/{condition}/...              the same under any other condition (`val/text/...`, `val/noninterleaved/...`)
    val/bench/{benchmark}/...        a multiple-choice benchmark's figures (`bench_tag`), no SHARD tag
    val/retention/{text}/...         a retention text's figures (`retention_tag`, issue 39), no SHARD tag

The probes of issue 26 are condition entries too. A clip probe (`Condition.clip_transform`:
`silence`, `noise`, `swap`, carried out by `interleave.eval.probes`) replaces each clip before the
encoder and asks under the run's main layout (`layout=None`), the question unchanged. The placement
sweep puts a one-clip prompt's audio at the start of the question (`question_start`) or at its end
(`question_end`), one prompt layout each (a `Task.prompts` entry, overridable like Table 1's); with
LTU's layout (`noninterleaved`, before the whole prompt) and Table 1's (`interleaved`, where
`[AUDIO]` stands) that makes four placements. A condition asked as a probe
(`EvalSettings.probes`) also logs its `agreement` with the main layout's answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Literal

from interleave import AUDIO_PLACEHOLDER
from interleave.eval.query import Query

VERDICT, LABEL = "verdict", "label"
VERDICT_METRICS = ("accuracy", "precision", "recall", "f1", "unparsed")
SCORED_METRICS = ("scored_accuracy", "scored_f1")  # with the callback's `scoring`: P(yes) vs P(no)
LABEL_METRICS = ("accuracy",)
AGREEMENT = "agreement"  # a probe's: the share of queries whose majority verdict is the main layout's
COLUMN_SUFFIX = {
    "accuracy": "Acc",
    "precision": "P",
    "recall": "R",
    "f1": "F1",
    "unparsed": "unparsed",
}  # report columns
ROOT = "val"  # every evaluation tag starts here
SHARD = "shard"  # the tag segment of the verdict tasks
PAIR = "pair"  # issue 19's two-clip task (the SHARD builder makes its ids)
BENCH = "bench"  # the tag segment of the multiple-choice benchmarks (`bench_tag`; interleave.eval.benchmarks)
RETENTION = "retention"  # the tag segment of the text retention figures (`retention_tag`; interleave.eval.retention)


@dataclass(frozen=True)
class Task:
    """One SHARD task. `prompts` maps a prompt layout to its template: `{candidate}` (also
    `{<task name>}`, as Table 1 writes it) is the candidate word, `{word}` the clip's own word,
    one `[AUDIO]` per clip in the layouts that place the audio in the prompt."""

    name: str
    prompts: Mapping[str, str]
    scoring: Literal["verdict", "label"]
    clips: int = 1
    chart: str = ""  # the name of its curve and chart ("synonym F1")
    column: str | None = None  # its stem in the report's Table 2 ("Syno"); None: listed under the table
    note: str = ""  # the line that introduces it under the report's table (when `column` is None)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics logged for it under every condition that asks it (scored ones aside)."""
        return VERDICT_METRICS if self.scoring == VERDICT else LABEL_METRICS

    @property
    def headline(self) -> str:
        """The metric its curve and chart draw: F1 for a verdict, accuracy for a label."""
        return "f1" if self.scoring == VERDICT else "accuracy"

    def stand_ins(self, query: Query) -> tuple[str, ...]:
        """The words the text control writes where the clips stood: the clip's word, and a second
        clip's word (the candidate) for a two-clip task."""
        return (query.word,) if self.clips == 1 else (query.word, query.candidate or "")


@dataclass(frozen=True)
class Condition:
    """One way of asking the queries, the evaluation's one notion of a condition (a run names them by
    their `name`, the key of `CONDITIONS`): `layout` picks each task's prompt (None: the run's main
    layout's, see `under`); without `audio` (the text control) the words of `Task.stand_ins` replace
    the clips, and each (task, word, candidate) is asked once since the prompt no longer depends on
    the clip. `clip_transform` names what the encoder reads instead of each clip
    (`interleave.eval.probes.CLIP_PROBES`: silence, noise, swap), None for the clip itself."""

    name: str
    layout: str | None
    title: str
    audio: bool = True
    clip_transform: str | None = None

    def under(self, main_layout: str) -> Condition:
        """This condition in a run whose main layout is `main_layout` (its own layout unless None)."""
        return self if self.layout is not None else replace(self, layout=main_layout)

    def asks(self, task: Task) -> bool:
        """Whether this condition asks `task`: it has a prompt in this layout, and a label task's
        answer would not be in the prompt."""
        return self.layout is not None and self.layout in task.prompts and (self.audio or task.scoring == VERDICT)

    def queries(self, queries: list[Query]) -> list[Query]:
        """The queries this condition asks, in SHARD order."""
        asked = [q for q in queries if self.asks(TASKS[q.task])]
        if self.audio:
            return asked
        unique: dict[tuple, Query] = {}
        for q in asked:
            unique.setdefault((q.task, q.word, q.candidate, q.truth), q)
        return list(unique.values())

    def render(self, query: Query, table: Mapping[str, Mapping[str, str]]) -> str:
        """The instruction of `query` under this condition (`table`: `prompt_table`)."""
        task = TASKS[query.task]
        candidate = query.candidate or ""
        text = table[query.task][str(self.layout)].format(
            **{task.name: candidate}, candidate=candidate, word=query.word
        )
        if self.audio:
            return text
        words = task.stand_ins(query)
        if len(words) == 1:
            return text.replace(AUDIO_PLACEHOLDER, words[0])
        for word in words:  # each word where its clip stood
            text = text.replace(AUDIO_PLACEHOLDER, word, 1)
        return text


TASKS: dict[str, Task] = {}
CONDITIONS: dict[str, Condition] = {}


def register(entry: Task | Condition) -> None:
    """Add a task or a condition to the registry (a name already there is refused)."""
    if isinstance(entry, Task):
        if entry.name in TASKS or entry.name in (SHARD, BENCH, RETENTION):
            raise ValueError(f"task {entry.name!r} is already registered")
        TASKS[entry.name] = entry
    else:
        if entry.name in CONDITIONS or entry.name in (SHARD, BENCH, RETENTION, *TASKS):
            raise ValueError(f"condition {entry.name!r} is already registered or names a task")
        CONDITIONS[entry.name] = entry


@contextmanager
def registered(*entries: Task | Condition) -> Iterator[None]:
    """The registry with `entries` added, as it was again afterwards."""
    for entry in entries:
        register(entry)
    try:
        yield
    finally:
        for entry in entries:
            (TASKS if isinstance(entry, Task) else CONDITIONS).pop(entry.name, None)


def resolved(condition: str, main: str) -> Condition:
    """The registered `condition` in a run whose main condition is `main` (`Condition.under`)."""
    return CONDITIONS[condition].under(CONDITIONS[main].layout)


def verdict_tasks() -> list[Task]:
    return [t for t in TASKS.values() if t.scoring == VERDICT]


def prompt_table(overrides: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """Every task's prompts ({task: {layout: template}}, Table 1 for the paper's) with `overrides` applied."""
    table = {name: dict(task.prompts) for name, task in TASKS.items()}
    for name, layouts in (overrides or {}).items():
        if name not in table:
            raise ValueError(f"unknown task '{name}' in prompts; expected one of {sorted(table)}")
        table[name].update(layouts)
    return table


# ---- tags -----------------------------------------------------------------------------------


def condition_prefix(condition: str, main: str) -> str:
    """The tag prefix of `condition` in a run whose main layout is `main`: `val` or `val/<condition>`."""
    return ROOT if condition == main else f"{ROOT}/{condition}"


def metric_tag(prefix: str, task: str, metric: str) -> str:
    """The tag of one metric of one task under a condition's `prefix` (`condition_prefix`)."""
    return f"{prefix}/{task}/{metric}" if TASKS[task].scoring == LABEL else f"{prefix}/{SHARD}/{task}/{metric}"


def bench_tag(benchmark: str, *parts: str) -> str:
    """The tag of one figure of a multiple-choice benchmark: `val/bench/<benchmark>/<parts>...`
    (`parse_tag` reads it as no SHARD tag)."""
    return "/".join((ROOT, BENCH, benchmark, *parts))


def retention_tag(text: str, metric: str) -> str:
    """The tag of one figure of a retention text: `val/retention/<text>/<metric>` (`parse_tag` reads
    it as no SHARD tag; not under `val/text/...`, the text-only condition's prefix)."""
    return "/".join((ROOT, RETENTION, text, metric))


@dataclass(frozen=True)
class Tag:
    """A parsed evaluation tag; `condition` is None under the run's main layout."""

    condition: str | None
    task: str
    metric: str


def parse_tag(tag: str) -> Tag | None:
    """`metric_tag` read back; None for any other tag (`val/loss`, `epoch`, ...). A verdict task's
    tag is recognised by its form (even for a task not registered here); a label task's by its name."""
    parts = tag.split("/")
    if len(parts) < 3 or parts[0] != ROOT or parts[1] in (BENCH, RETENTION):
        return None
    condition, rest = None, parts[1:]
    if rest[0] != SHARD and not _label_task(rest[0]):
        condition, rest = rest[0], rest[1:]
    if len(rest) == 3 and rest[0] == SHARD and rest[1] and rest[2]:
        return Tag(condition, rest[1], rest[2])
    if len(rest) == 2 and _label_task(rest[0]) and rest[1]:
        return Tag(condition, rest[0], rest[1])
    return None


def _label_task(name: str) -> bool:
    return name in TASKS and TASKS[name].scoring == LABEL


# ---- the registry: the paper's Table 1, issue 19's pair, the three conditions ------------------

# The placement sweep's layouts (issue 26): the audio at the start / the end of a one-clip question.
START, END = "question_start", "question_end"
A = AUDIO_PLACEHOLDER

for _entry in (
    Task(
        "identity",
        {
            "noninterleaved": "Can you list the labels based on this audio file?",
            "interleaved": f"Can you list the labels based on {A} ?",
            START: f"{A} Can you list the labels of this sound?",
            END: f"Can you list the labels of this sound? {A}",
        },
        LABEL,
        chart="identity accuracy",
        column="Identity",
    ),
    Task(
        "synonym",
        {
            "noninterleaved": "Is the sound of the object in this audio signal similar to {synonym}?",
            "interleaved": f"Is {A} similar to {{synonym}}?",
            START: f"{A} Is this sound similar to {{synonym}}?",
            END: f"Is this sound similar to {{synonym}}? {A}",
        },
        VERDICT,
        chart="synonym F1",
        column="Syno",
    ),
    Task(
        "hypernym",
        {
            "noninterleaved": "Is the sound of the object in this audio signal a type of {hypernym}?",
            "interleaved": f"Is {A} a type of {{hypernym}}?",
            START: f"{A} Is this sound a type of {{hypernym}}?",
            END: f"Is this sound a type of {{hypernym}}? {A}",
        },
        VERDICT,
        chart="hypernym F1",
        column="Hyper",
    ),
    # Not the paper's: two clips in one prompt (issue 19). LTU's layout holds one clip, so none.
    Task(
        PAIR,
        {"interleaved": f"Is {AUDIO_PLACEHOLDER} the same kind of sound as {AUDIO_PLACEHOLDER}?"},
        VERDICT,
        clips=2,
        chart="pair F1",
        note='Pair (two clips in one prompt, "Is [AUDIO] the same kind of sound as [AUDIO]?") is asked with '
        "interleaved prompts and the text-only control only; LTU's layout holds one clip, so it has none:",
    ),
    Condition("interleaved", "interleaved", "interleaved prompts"),
    Condition("noninterleaved", "noninterleaved", "noninterleaved prompts"),
    Condition("text", "interleaved", "text-only control", audio=False),
    # Issue 26's probes: the clip replaced (under the run's main layout), the audio moved.
    Condition("silence", None, "silence for each clip", clip_transform="silence"),
    Condition("noise", None, "white noise for each clip", clip_transform="noise"),
    Condition("swap", None, "a clip of another word", clip_transform="swap"),
    Condition(START, START, "audio at the question's start"),
    Condition(END, END, "audio at the question's end"),
):
    register(_entry)
del _entry, A
