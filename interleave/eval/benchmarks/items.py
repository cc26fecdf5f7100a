"""A benchmark file in MMAU's released format: read, checked item by item, and its fixed subset.

The file is a JSON array (MMAU's `mmau-test-mini.json`) or JSONL of items with `id`, `audio_id`
(a path relative to `audio_root`, by default the file's folder; MMAU writes
`./test-mini-audios/ID.wav`; MMAU-Pro-style several clips per item as a list), `question`,
`choices` (two or more distinct strings), `answer` (one of the choices, as a string), and optional
`category`, `sub-category`, `task`, `difficulty`, `dataset`; other fields are kept out.

`check_items` names every bad item by its index (0-based, its place in the file) and field: a
missing field, no or one choice, a duplicate choice, an answer not among the choices, a missing
or undecodable clip (with the run's loader), two items with one id (the second is named). The bad
items are counted and reported; the rest is evaluated (`Benchmark.items`).

`fixed_subset` picks at most `size` items, stratified by (`task`, `category`), by a sha256 order
of the ids and the seed alone: the same items at every evaluated point, on every rank, in every
process (`SUBSET_RULE` names the rule in the provenance).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile

from interleave.data.record_index import audio_problem
from interleave.encoders.audio import read_head
from interleave.errors import InterleaveError
from interleave.eval.query import slug
from interleave.provenance import file_hash

SUBSET_RULE = "task-category-stratified-sha256-v1"  # `fixed_subset`'s rule; bump the version when it changes
REQUIRED = ("id", "audio_id", "question", "choices", "answer")
OPTIONAL = {
    "category": "category",
    "sub-category": "sub_category",
    "task": "task",
    "difficulty": "difficulty",
    "dataset": "dataset",
}


class BenchmarkError(InterleaveError):
    """A benchmark file that cannot be read at all (not JSON, not a list of objects); names the file."""


@dataclass(frozen=True)
class BenchmarkItem:
    """One multiple-choice item; `clips` are resolved paths in placeholder order, `index` its place in the file."""

    id: str
    clips: tuple[str, ...]
    question: str
    choices: tuple[str, ...]
    answer: str
    index: int
    category: str = ""
    sub_category: str = ""
    task: str = ""
    difficulty: str = ""
    dataset: str = ""

    @property
    def answer_index(self) -> int:
        """Which choice is the answer."""
        return self.choices.index(self.answer)


@dataclass(frozen=True)
class ItemProblem:
    """Why the item at `index` (its place in the file) cannot be evaluated: the field and the reason."""

    index: int
    field: str
    reason: str

    def describe(self, file: str | Path) -> str:
        return f"{file}: item {self.index} ({self.field}): {self.reason}"


@dataclass(frozen=True)
class Benchmark:
    """A checked benchmark file: its good items in file order, its bad items' problems, its sha256."""

    file: str
    items: tuple[BenchmarkItem, ...]
    problems: tuple[ItemProblem, ...]
    sha256: str

    @property
    def bad_items(self) -> int:
        """How many items have at least one problem (counted, reported, not evaluated)."""
        return len({p.index for p in self.problems})


def read_raw(path: str | Path) -> list[Any]:
    """The file's items as parsed JSON values, in file order: a JSON array, else JSON lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise BenchmarkError(f"{path}: cannot read the benchmark file: {err}") from None
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise BenchmarkError(f"{path}: not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})") from None
        return list(values)
    values = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise BenchmarkError(f"{path}:{number}: not a JSON line: {err.msg}") from None
    return values


def looks_like_benchmark(path: str | Path) -> bool:
    """Whether a file is a benchmark by its content: a JSON array or JSONL whose first item is an
    object holding `question` and `choices` (what `interleave data check` recognises it by)."""
    try:
        values = read_raw(path)
    except BenchmarkError:
        return False
    return bool(values) and isinstance(values[0], dict) and {"question", "choices"} <= set(values[0])


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _item_problems(index: int, raw: Any, text: bool = False) -> list[ItemProblem]:
    """The problems of one item's fields alone (the clips and the ids are checked by `check_items`);
    a text item (`text`: a text multiple-choice file, issue 39) has no `audio_id`."""
    if not isinstance(raw, dict):
        return [ItemProblem(index, "item", f"expected a JSON object, got {type(raw).__name__}")]
    out = [
        ItemProblem(index, key, "missing") for key in REQUIRED if key not in raw and not (text and key == "audio_id")
    ]
    if text and "audio_id" in raw:
        out.append(ItemProblem(index, "audio_id", "a text item has no clip (this file is asked without audio)"))
    if "id" in raw and not (_text(raw["id"]) or (isinstance(raw["id"], int) and not isinstance(raw["id"], bool))):
        out.append(ItemProblem(index, "id", f"expected a non-empty string or a whole number, got {raw['id']!r}"))
    clips = raw.get("audio_id")
    if "audio_id" in raw and not (_text(clips) or (isinstance(clips, list) and clips and all(map(_text, clips)))):
        out.append(ItemProblem(index, "audio_id", f"expected a path or a non-empty list of paths, got {clips!r}"))
    if "question" in raw and not _text(raw["question"]):
        out.append(ItemProblem(index, "question", f"expected a non-empty string, got {raw['question']!r}"))
    choices = raw.get("choices")
    if "choices" in raw:
        if not isinstance(choices, list) or not all(map(_text, choices)):
            out.append(ItemProblem(index, "choices", f"expected a list of non-empty strings, got {choices!r}"))
        elif len(choices) < 2:
            out.append(ItemProblem(index, "choices", f"{len(choices)} choice(s); a question needs 2 or more"))
        else:
            seen: set[str] = set()
            for choice in choices:
                if choice.strip() in seen:
                    out.append(ItemProblem(index, "choices", f"duplicate choice {choice!r}"))
                seen.add(choice.strip())
            if "answer" in raw and not _text(raw["answer"]):
                out.append(ItemProblem(index, "answer", f"expected a non-empty string, got {raw['answer']!r}"))
            elif "answer" in raw and raw["answer"] not in choices:
                out.append(ItemProblem(index, "answer", f"{raw['answer']!r} is not among the choices {choices}"))
    for key in OPTIONAL:
        if raw.get(key) is not None and not isinstance(raw[key], str):
            out.append(ItemProblem(index, key, f"expected a string, got {raw[key]!r}"))
    return out


def check_items(
    values: Sequence[Any], audio_root: str | Path, load: Callable[[Path], Any] | None = None, text: bool = False
) -> tuple[list[BenchmarkItem], list[ItemProblem]]:
    """The good items and every problem of the bad ones, by index and field. Clip paths are
    relative to `audio_root` (or absolute); each must exist and, with `load` (the run's encoder
    input loader), decode. An id seen before names the later item."""
    root = Path(audio_root)
    items, problems, first_of = [], [], {}
    for index, raw in enumerate(values):
        found = _item_problems(index, raw, text)
        clips: list[str] = []
        if isinstance(raw, dict) and not any(p.field in ("audio_id", "item") for p in found) and "audio_id" in raw:
            listed = raw["audio_id"] if isinstance(raw["audio_id"], list) else [raw["audio_id"]]
            for path in listed:
                clip = (root / path).resolve() if not Path(path).is_absolute() else Path(path)
                if (reason := audio_problem(clip, load)) is not None:
                    found.append(ItemProblem(index, "audio_id", reason))
                clips.append(str(clip))
        if isinstance(raw, dict) and "id" in raw and not any(p.field == "id" for p in found):
            key = str(raw["id"])
            if key in first_of:
                found.append(ItemProblem(index, "id", f"id {key!r} is already item {first_of[key]}'s"))
            else:
                first_of[key] = index
        if found:
            problems.extend(found)
            continue
        items.append(
            BenchmarkItem(
                id=str(raw["id"]),
                clips=tuple(clips),
                question=raw["question"],
                choices=tuple(raw["choices"]),
                answer=raw["answer"],
                index=index,
                **{field: raw.get(key) or "" for key, field in OPTIONAL.items()},
            )
        )
    return items, problems


def read_benchmark(
    path: str | Path,
    audio_root: str | Path | None = None,
    load: Callable[[Path], Any] | None = None,
    text: bool = False,
) -> Benchmark:
    """A benchmark file read and checked (`check_items`); `audio_root` defaults to the file's folder;
    `text`: items without `audio_id` (a text multiple-choice file, asked without audio)."""
    path = Path(path)
    values = read_raw(path)
    if not values:
        raise BenchmarkError(f"{path}: the benchmark file holds no item")
    items, problems = check_items(values, path.parent if audio_root is None else audio_root, load, text)
    return Benchmark(str(path), tuple(items), tuple(problems), file_hash(path))


def decode_check(channel: str = "first") -> Callable[[Path], Any]:
    """A cheap check that a clip decodes: its header and first 0.1 s read as the encoders read
    clips (`interleave.encoders.audio.read_head`, `channel` of a multi-channel file); raises AudioError."""
    return lambda path: read_head(path, 0.1, channel)


def clip_seconds(path: str | Path) -> float:
    """A clip's duration from its header (0 where the header cannot be read)."""
    try:
        info = soundfile.info(str(path))
    except (soundfile.SoundFileError, RuntimeError, OSError):
        return 0.0
    return info.frames / info.samplerate if info.samplerate else 0.0


def tag_name(name: str) -> str:
    """A category's name made safe for a tag segment ("Sound Event Detection" -> "sound_event_detection")."""
    return slug(name) or "none"


def _order(seed: int, item: BenchmarkItem) -> bytes:
    return hashlib.sha256(f"benchmark-subset/{seed}/{item.id}".encode()).digest()


def fixed_subset(items: Sequence[BenchmarkItem], size: int | None, seed: int = 0) -> list[BenchmarkItem]:
    """At most `size` items (None: all), in file order, stratified by (`task`, `category`).

    Each stratum gets its share of `size` in proportion to its items (largest remainders, ties to
    the stratum whose first item comes first in the sha256 order), and takes its items in the sha256
    order of (seed, id). Depends on the items and `seed` alone: the same subset at every point.
    """
    if size is None or size >= len(items):
        return list(items)
    strata: dict[tuple[str, str], list[BenchmarkItem]] = {}
    for item in sorted(items, key=lambda it: _order(seed, it)):
        strata.setdefault((item.task, item.category), []).append(item)
    quota = {key: size * len(group) // len(items) for key, group in strata.items()}
    left = size - sum(quota.values())
    by_remainder = sorted(
        strata, key=lambda key: (-(size * len(strata[key]) % len(items)), _order(seed, strata[key][0]))
    )
    for key in by_remainder[:left]:
        quota[key] += 1
    keep = {item.id for key, group in strata.items() for item in group[: quota[key]]}
    return [item for item in items if item.id in keep]
