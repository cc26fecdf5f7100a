"""SHARD's relational task: two clips in one prompt, "Is [AUDIO] the same kind of sound as [AUDIO]?".

`pair_queries` asks about `n` pairs of two clips of one word (truth "yes") and `n` pairs of a
clip of one word and a clip of another word that WordNet confirms unrelated to it, in both
directions (truth "no"): balanced, and drawn from a seeded generator, so a seed gives the same
pairs. The clips are those the other tasks already ask about (decoded once by the builder).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from interleave.eval.query import Query, slug
from interleave.eval.tasks import PAIR
from interleave.shard.rules import Entry, norm


def unrelated(a: Entry, b: Entry) -> bool:
    """Whether WordNet relates neither word to the other (nor are they one label)."""
    return a.label != b.label and norm(b.word) not in a.related and norm(a.word) not in b.related


def pair_queries(entries: Sequence[Entry], queries: Sequence[Query], n: int, seed: int) -> list[Query]:
    """Up to `n` "yes" and as many "no" pair queries (the same number of each: the smaller of `n`
    and how many distinct pairs of either kind exist) over the clips of `queries`' words."""
    if n < 1:
        return []
    clips: dict[str, list[str]] = {}
    for query in queries:
        if query.other_audio is None and query.audio not in clips.setdefault(query.label, []):
            clips[query.label].append(query.audio)
    clips = {label: sorted(paths) for label, paths in clips.items()}  # the draws below depend on this order
    words = [e for e in entries if clips.get(e.label)]
    rng = random.Random(f"shard/{seed}/pair")
    same = [(e, a, b) for e in words for i, a in enumerate(clips[e.label]) for b in clips[e.label][i + 1 :]]
    rng.shuffle(same)
    different = [(e, f) for e in words for f in words if unrelated(e, f)]
    rng.shuffle(different)
    no: list[tuple[Entry, str, Entry, str]] = []
    seen: set[tuple[str, str]] = set()
    # Round after round over the ordered word pairs, so the "no" pairs spread over the words;
    # a drawn clip pair already taken is drawn again later, within a bounded number of tries.
    for attempt in range(20 * n if different else 0):
        if len(no) == n:
            break
        e, f = different[attempt % len(different)]
        a, b = rng.choice(clips[e.label]), rng.choice(clips[f.label])
        if (a, b) not in seen:
            seen.add((a, b))
            no.append((e, a, f, b))
    count = min(n, len(same), len(no))
    out = []
    for k, (entry, a, b) in enumerate(same[:count]):
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        out.append(_pair(k, entry, first, entry, second, "yes"))
    for k, (e, a, f, b) in enumerate(no[:count]):
        out.append(_pair(k, e, a, f, b, "no"))
    return out


def _pair(k: int, entry: Entry, audio: str, other: Entry, other_audio: str, truth: str) -> Query:
    return Query(
        id=f"{PAIR}/{truth}/{k}/{slug(entry.label)}/{slug(other.label)}",
        task=PAIR,
        label=entry.label,
        word=entry.word,
        audio=audio,
        candidate=other.word,
        truth=truth,
        other_audio=other_audio,
    )
