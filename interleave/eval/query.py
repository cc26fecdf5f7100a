"""A SHARD query and its id: what the SHARD file (`interleave.eval.format`) holds and the task
registry (`interleave.eval.tasks`) asks, so that neither imports the other for it.

`Query` is one query (its clips in placeholder order); `query_id` makes a word's query ids and
`clip_of` reads the clip number back (the report's bootstrap resamples a word's clips by it);
`slug` is the id form of a label or word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    """One SHARD query; ``audio`` is absolute once read, ``where`` is "file:line" for messages."""

    id: str
    task: str
    label: str
    word: str
    audio: str
    candidate: str | None = None
    truth: str | None = None
    where: str = ""
    other_audio: str | None = None  # a pair query's second clip

    @property
    def clips(self) -> tuple[str, ...]:
        """The query's clips in placeholder order: one, or a pair query's two."""
        return (self.audio,) if self.other_audio is None else (self.audio, self.other_audio)


def slug(text: str) -> str:
    """Id form of a label or word: "Heart sounds, heartbeat" -> "heart_sounds_heartbeat"."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def query_id(task: str, label: str, clip: int, *rest: str) -> str:
    """A word's query id, `{task}/{slug(label)}/{clip}[/{rest}...]`: `clip` numbers the query's clip
    among its word's clips (identity `identity/siren/2`; yes/no `synonym/siren/2/alarm`, the
    candidate's slug after). The one place the layout is made; `clip_of` reads it back."""
    return "/".join((task, slug(label), str(clip), *map(slug, rest)))


def clip_of(query_id: str, task: str, label: str) -> str | None:
    """The clip number `query_id` was made with for this task and label, or None for an id not
    made by `query_id` (a pair's ids, a hand-written SHARD's): the report's bootstrap resamples
    a word's clips by it."""
    parts = query_id.split("/")
    if len(parts) >= 3 and parts[0] == task and parts[1] == slug(label) and parts[2].isdigit():
        return parts[2]
    return None
