"""The SHARD probes of issue 26: what the encoder reads instead of each clip, and the agreement of a
probe's answers with the real clip's.

A clip probe (`interleave.eval.tasks.Condition.clip_transform`) is carried out here at the
waveform level, so every encoder's own feature path (CAV-MAE's fbank, AST's and Whisper's
extractors: `Encoder.load_inputs(path, channel, transform)`) and the feature cache are used
unchanged:

- `silence`: the clip's 16 kHz waveform replaced by zeros of the same length (its duration);
- `noise`: by white Gaussian noise scaled to the waveform's RMS, from a generator seeded with
  the evaluation's `seed` and the clip's own samples (`noise_seed`): the same clip gets the same
  noise wherever it lies, another seed other noise;
- `swap`: each clip replaced by a clip of another word, through a seeded derangement of the words
  (`derangement`: no word maps to itself), the question unchanged.

Silence and noise are `interleave.encoders.cache.Variant`s: their features are cached under the variant's
name (`silence`, `noise/seed=S`) beside the clip's own, never under the clip's key. A swapped
clip is a real clip of the SHARD, so its features are that clip's own.

`agreement` compares a probe's rows with the main layout's, query by query: the share of queries
whose majority verdict over the repeats (for a label task, whose majority correctness) is the same.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch

from interleave.encoders.cache import Variant
from interleave.errors import InterleaveError
from interleave.eval.predictions import Prediction
from interleave.eval.query import Query
from interleave.eval.tasks import TASKS

NO_MAJORITY = "no majority"  # a query whose repeats give no value more than half the time


def silence(waveform: torch.Tensor) -> torch.Tensor:
    """Digital silence of the clip's duration."""
    return torch.zeros_like(waveform)


def noise_seed(waveform: torch.Tensor, seed: int) -> int:
    """The noise generator's seed: CRC32 of the clip's float32 samples, started from `noise/<seed>`."""
    return zlib.crc32(waveform.to(torch.float32).contiguous().numpy().tobytes(), zlib.crc32(f"noise/{seed}".encode()))


def white_noise(seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The `noise` transform of an evaluation seeded `seed`: white noise at the clip's RMS level."""

    def transform(waveform: torch.Tensor) -> torch.Tensor:
        generator = torch.Generator().manual_seed(noise_seed(waveform, seed))
        white = torch.randn(waveform.shape, generator=generator, dtype=torch.float64)
        rms = waveform.to(torch.float64).pow(2).mean().sqrt()
        return (white * (rms / white.pow(2).mean().sqrt())).to(torch.float32)

    return transform


def variant(probe: str, seed: int) -> Variant | None:
    """The waveform variant a clip probe reads (None for `swap`, which reads other real clips)."""
    if probe == "silence":
        return Variant("silence", silence)
    if probe == "noise":
        return Variant(f"noise/seed={seed}", white_noise(seed))
    if probe == "swap":
        return None
    raise InterleaveError(f"unknown clip probe {probe!r}; expected one of {', '.join(CLIP_PROBES)}")


def derangement(words: Sequence[str], seed: int) -> dict[str, str]:
    """A seeded permutation of the distinct `words` with no fixed point (uniform over derangements:
    shuffles drawn until one moves every word); at least two words are needed."""
    ordered = sorted(set(words))
    if len(ordered) < 2:
        raise InterleaveError(f"the swap probe needs clips of at least two words, got {ordered}")
    rng = random.Random(f"swap/{seed}")
    while True:
        shuffled = ordered[:]
        rng.shuffle(shuffled)
        if all(a != b for a, b in zip(ordered, shuffled)):
            return dict(zip(ordered, shuffled))


def clip_words(query: Query) -> tuple[str, ...]:
    """The word of each of the query's clips: its own, and a pair query's second clip's (the candidate)."""
    return TASKS[query.task].stand_ins(query)


def swapped_clips(queries: Sequence[Query], seed: int) -> Callable[[Query], tuple[str, ...]]:
    """The `swap` probe over `queries`: each clip of word w becomes a clip of word π(w) (`derangement`),
    the i-th clip of w the (i mod n)-th of π(w)'s n clips (in SHARD order), never a clip that is also w's."""
    pools: dict[str, list[str]] = {}
    for query in queries:
        for clip, word in zip(query.clips, clip_words(query)):
            if clip not in pools.setdefault(word, []):
                pools[word].append(clip)
    moved = derangement(list(pools), seed)
    owned = {word: set(clips) for word, clips in pools.items()}
    table: dict[tuple[str, str], str] = {}
    for word, clips in pools.items():
        others = [c for c in pools[moved[word]] if c not in owned[word]]
        if not others:
            raise InterleaveError(f"the swap probe: every clip of {moved[word]!r} is also a clip of {word!r}")
        for i, clip in enumerate(clips):
            table[(clip, word)] = others[i % len(others)]
    return lambda query: tuple(table[(clip, word)] for clip, word in zip(query.clips, clip_words(query)))


CLIP_PROBES = ("silence", "noise", "swap")


# ---- agreement -------------------------------------------------------------------------------


def majority(row: Prediction) -> Any:
    """The value more than half of a row's repeats give (yes / no / None for a verdict task; the label
    named or not for a label task), else `NO_MAJORITY`."""
    value, count = Counter(row.parsed).most_common(1)[0] if row.parsed else (NO_MAJORITY, 0)
    return value if 2 * count > len(row.parsed) else NO_MAJORITY


def agreements(real: Sequence[Prediction], probe: Sequence[Prediction]) -> dict[str, list[bool]]:
    """Per task, one flag per query the probe asked (in its order) that the real condition asked too:
    whether the two majority values (`majority`) are the same."""
    reference = {(row.task, row.id): majority(row) for row in real}
    out: dict[str, list[bool]] = {}
    for row in probe:
        if (row.task, row.id) in reference:
            out.setdefault(row.task, []).append(majority(row) == reference[(row.task, row.id)])
    return out


def agreement(real: Sequence[Prediction], probe: Sequence[Prediction]) -> dict[str, float]:
    """Per task, the share of the probe's queries whose majority value is the real condition's."""
    return {task: sum(flags) / len(flags) for task, flags in agreements(real, probe).items()}
