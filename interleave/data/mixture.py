"""Training on a weighted mixture of record files (`data.train_files`): which records each epoch draws.

```yaml
data:
  train_files:
    - {path: data/labels.jsonl, weight: 0.8}
    - {path: data/replay.jsonl, weight: 0.2, name: replay}   # name: default the file name without extension
  epoch_records: 1000                                         # optional; default every source's usable records
```

The rule, for epoch `e` (every draw a pure function of `data.seed`, `e` and the sources' usable
record counts `n_i`, never of the global random state, so a resumed run draws what an unbroken one does):

- **Epoch length** `N`: `epoch_records`, else the total of the sources' usable records `sum(n_i)`.
- **Records per source**: the weights are normalised (`w_i = weight_i / sum(weight)`) and source `i`
  gets `floor(N w_i)` records plus, for the `R = N - sum(floor)` left over, one more for each of
  `R` distinct sources drawn with probabilities equal to their fractional parts (systematic sampling,
  one uniform draw seeded by (seed, e)). So the counts add up to `N` exactly, each is within one of
  `N w_i`, and its mean over epochs is exactly `N w_i`.
- **Which records**: each source is read through an endless sequence of passes, each pass a seeded
  permutation of its records (seeded by (seed, source position, pass)), continued from epoch to epoch:
  epoch `e` takes the next `c_i(e)` records of that sequence. Within a pass nothing repeats, so records
  are drawn without replacement until a source runs out; then its next pass starts. A pass that
  starts inside an epoch puts last the records that epoch already drew from the pass before, so an
  epoch never draws a record twice unless it draws more records from its source than the source
  holds (a small, heavily weighted replay source repeats within the epoch). After `m` draws from a
  source of `n` records, each of them has been drawn `floor(m/n)` or `ceil(m/n)` times.
- **Order**: the epoch's `N` draws are shuffled, grouped by length and split across ranks exactly as
  one file's records are (`interleave.data.sampler.TrainingSampler`: the ranks get disjoint positions of
  one order; a mid-epoch resume skips the batches done).

Each source is read and checked on its own (its record index, its bad records named by file and
line, `data.on_bad_record` for each; its counts in the set-up log). `MixedRecords` is the sources'
datasets end to end (record `offset_i + j` is source `i`'s record `j`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from interleave.data.sampler import TrainingSampler
from interleave.errors import InterleaveError

_PASS, _ROUNDING = 1, 2  # the streams' tags in their seeds
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Source:
    """One record file of a mixture, its weight and the name its counts go under (`data/drawn/<name>`)."""

    path: str
    weight: float
    name: str


def parse_sources(value: Any, where: str = "data.train_files") -> list[Source]:
    """`data.train_files` checked: a non-empty list of {path, weight[, name]}, weights finite and > 0,
    names distinct (one file listed twice needs a name for each entry: it is then two sources)."""
    if isinstance(value, (list, tuple)) and not value:
        raise InterleaveError(
            f"{where}: an empty list; give at least one {{path: FILE, weight: W}} "
            "(or leave it unset and give data.train_file)"
        )
    if not isinstance(value, (list, tuple)):
        raise InterleaveError(f"{where}: expected a list of {{path: FILE, weight: W}}, got {value!r}")
    sources = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, dict) or "path" not in item or "weight" not in item:
            raise InterleaveError(f"{at}: expected {{path: FILE, weight: W}} (name optional), got {item!r}")
        unknown = sorted(set(item) - {"path", "weight", "name"})
        if unknown:
            raise InterleaveError(f"{at}: unknown key {unknown[0]!r} (known: path, weight, name)")
        path, weight = item["path"], item["weight"]
        if not isinstance(path, (str, Path)) or not str(path):
            raise InterleaveError(f"{at}.path: expected a record file, got {path!r}")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
            raise InterleaveError(f"{at}.weight: expected a finite number > 0, got {weight!r}")
        name = item.get("name", Path(str(path)).name.split(".")[0])
        if not isinstance(name, str) or not _NAME.match(name):
            raise InterleaveError(f"{at}.name: expected letters, digits, _ . + - (a metric name), got {name!r}")
        sources.append(Source(str(path), float(weight), name))
    names = [s.name for s in sources]
    for i, name in enumerate(names):
        if name in names[:i]:
            j = names.index(name)
            if same_file(sources[j].path, sources[i].path):
                raise InterleaveError(
                    f"{where}[{i}]: {sources[i].path} is listed again (as {where}[{j}]) under the "
                    f"same name {name!r}; to draw from it as two sources give each entry its own `name:`"
                )
            raise InterleaveError(
                f"{where}[{i}]: {sources[i].path} and {sources[j].path} ({where}[{j}]) are both "
                f"named {name!r}; give one of them its own `name:`"
            )
    return sources


def same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (the same path, or links to it)."""
    return os.path.realpath(a) == os.path.realpath(b)


def mixture_sources(
    train_files: Any, epoch_records: int | None, train_file: str | None, val_split: bool
) -> list[Source]:
    """The data module's mixture settings checked: `train_files` parsed ([] when unset), refused
    beside `train_file` or a validation split of it, and `epoch_records` refused without it."""
    sources = parse_sources(train_files) if train_files is not None else []
    if sources and train_file:
        raise InterleaveError("data.train_files (a mixture) and data.train_file (one file) are both given: give one")
    if sources and val_split:
        raise InterleaveError("data.val_fraction splits data.train_file; with data.train_files give a data.val_file")
    if epoch_records is not None and not sources:
        raise InterleaveError("data.epoch_records sets a mixture's epoch length: it needs data.train_files")
    return sources


def split_counts(total: int, weights: Sequence[float], u: float) -> list[int]:
    """`total` split by `weights`: each share's floor, and the remainder to distinct shares chosen by
    systematic sampling over the fractional parts at offset `u` in [0, 1) (each gets its extra
    record with probability equal to its fractional part)."""
    shares = np.asarray(weights, np.float64) / float(np.sum(weights)) * total
    counts = np.floor(shares).astype(np.int64)
    left = total - int(counts.sum())
    if left:
        fractions = shares - counts
        fractions *= left / fractions.sum()  # they add up to `left` (up to rounding)
        edges = np.cumsum(fractions)
        points = u + np.arange(left)
        chosen = np.minimum(np.searchsorted(edges, points, side="right"), len(counts) - 1)
        counts[chosen] += 1
    return counts.tolist()


class MixturePlan:
    """What each epoch draws from each source (the rule in the module docstring)."""

    def __init__(
        self, sources: Sequence[Source], sizes: Sequence[int], epoch_records: int | None = None, seed: int = 0
    ) -> None:
        if len(sources) != len(sizes):
            raise ValueError(f"{len(sizes)} sizes for {len(sources)} sources")
        for source, size in zip(sources, sizes):
            if size < 1:
                raise InterleaveError(f"data.train_files: {source.path} has no usable records")
        if epoch_records is not None and (
            isinstance(epoch_records, bool) or not isinstance(epoch_records, int) or epoch_records < 1
        ):
            raise InterleaveError(f"data.epoch_records: expected an integer >= 1, got {epoch_records!r}")
        self.sources, self.sizes, self.seed = list(sources), [int(s) for s in sizes], int(seed)
        self.epoch_records = epoch_records
        self.epoch_length = epoch_records if epoch_records is not None else sum(self.sizes)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self._counts: list[list[int]] = []  # epoch -> counts, computed in order (positions need the earlier ones)
        self._passes: dict[int, dict[int, np.ndarray]] = {}  # source -> its last passes built (two at most)

    def _rng(self, *tags: int) -> np.random.Generator:
        return np.random.default_rng([self.seed % 2**63, *tags])

    def counts(self, epoch: int) -> list[int]:
        """Records drawn from each source in `epoch` (they add up to `epoch_length`)."""
        weights = [s.weight for s in self.sources]
        while len(self._counts) <= epoch:
            u = self._rng(_ROUNDING, len(self._counts)).random()
            self._counts.append(split_counts(self.epoch_length, weights, u))
        return self._counts[epoch]

    def drawn(self, epoch: int) -> dict[str, int]:
        """{source name: records drawn in `epoch`}, for the logs and the metrics file."""
        return dict(zip((s.name for s in self.sources), self.counts(epoch)))

    def start(self, epoch: int) -> list[int]:
        """How many records of each source the epochs before `epoch` drew (where `epoch` starts reading)."""
        self.counts(max(epoch - 1, 0))
        return [sum(c[i] for c in self._counts[:epoch]) for i in range(len(self.sources))]

    def _epoch_start(self, source: int, draw: int) -> int:
        """The number of the source's first draw in the epoch that holds its draw number `draw`."""
        while True:
            ends = np.cumsum([c[source] for c in self._counts]) if self._counts else np.zeros(0, np.int64)
            if len(ends) and ends[-1] > draw:
                epoch = int(np.searchsorted(ends, draw, side="right"))
                return int(ends[epoch - 1]) if epoch else 0
            self.counts(max(2 * len(self._counts), 1))

    def _pass(self, source: int, k: int) -> np.ndarray:
        """Pass `k` of a source: a seeded permutation of its records, except that a pass beginning
        inside an epoch puts that epoch's records of the pass before last (so no record comes twice
        in an epoch that draws at most the source's size). Each pass follows from the one before;
        only the last two built are kept (a large source's passes are large), an older one is rebuilt."""
        kept, size = self._passes.setdefault(source, {}), self.sizes[source]
        if k in kept:
            return kept[k]
        built = max((i for i in kept if i < k), default=-1)
        for j in range(built + 1, k + 1):
            order = self._rng(_PASS, source, j).permutation(size)
            begin = self._epoch_start(source, j * size) if j else 0
            if begin < j * size:
                later = np.isin(order, kept[j - 1][max(begin - (j - 1) * size, 0) :])
                order = np.concatenate([order[~later], order[later]])
            kept[j] = order
            for old in [i for i in kept if i < j - 1]:
                del kept[old]
        return kept[k]

    def stream(self, source: int, start: int, count: int) -> np.ndarray:
        """Draws `start` to `start + count` of source `source`'s pass sequence (its local record numbers)."""
        size = self.sizes[source]
        out = []
        for cycle in range(start // size, (start + count - 1) // size + 1 if count else 0):
            lo, hi = max(start - cycle * size, 0), min(start + count - cycle * size, size)
            out.append(self._pass(source, cycle)[lo:hi])
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def draw(self, epoch: int) -> np.ndarray:
        """The epoch's draws as indices into `MixedRecords`, source by source (not yet shuffled)."""
        parts = [
            self.offsets[i] + self.stream(i, begin, count)
            for i, (begin, count) in enumerate(zip(self.start(epoch), self.counts(epoch)))
        ]
        return np.concatenate(parts).astype(np.int64)

    def describe(self) -> list[list[Any]]:
        """What the plan is made of (saved with the position in the epoch: a resume checks it)."""
        return [[s.name, s.weight, n] for s, n in zip(self.sources, self.sizes)] + [[self.epoch_length, self.seed]]

    def summary(self, rejected: dict[str, int]) -> str:
        """The set-up log's lines: per source its file, weight, usable and skipped records, and the
        records epoch 0 draws (later epochs: `RunSummary`'s line each)."""
        total = sum(s.weight for s in self.sources)
        lines = [f"[interleave] mixture of {len(self.sources)} record files, {self.epoch_length} records per epoch:"]
        for source, size, count in zip(self.sources, self.sizes, self.counts(0)):
            share = source.weight / total
            lines.append(
                f"  {source.name}: {source.path}, weight {share:.3g}, {size} usable records "
                f"({rejected.get(source.name, 0)} bad skipped), epoch 0 draws {count} "
                f"(expected {share * self.epoch_length:.1f} per epoch)"
            )
        for i, source in enumerate(self.sources):  # one file listed under several names: say so once
            again = [s for s in self.sources if same_file(s.path, source.path)]
            if len(again) > 1 and again[0] is source:
                drawn = sum(c for s, c in zip(self.sources, self.counts(0)) if same_file(s.path, source.path))
                counted = (
                    ""
                    if self.epoch_records is not None
                    else f"; the epoch length counts its records {len(again)} times"
                )
                lines.append(
                    f"  note: {source.path} is listed {len(again)} times ({', '.join(s.name for s in again)}): "
                    f"each entry is a source of its own, so epoch 0 draws {drawn} records from its "
                    f"{self.sizes[i]}{counted}"
                )
        return "\n".join(lines)


class MixtureSampler(TrainingSampler):
    """`TrainingSampler` over a mixture: each epoch's draws (`MixturePlan.draw`) instead of every
    record once, then the same shuffle, length grouping, split by rank and mid-epoch resume.
    `lengths` are the token lengths of all of `MixedRecords`' records."""

    def __init__(
        self,
        plan: MixturePlan,
        batch_size: int,
        lengths: Sequence[int] | None = None,
        group_batches: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        super().__init__(plan.epoch_length, batch_size, None, group_batches, num_replicas, rank, plan.seed)
        if lengths is not None and len(lengths) != sum(plan.sizes):
            raise ValueError(f"{len(lengths)} lengths for {sum(plan.sizes)} records")
        self.lengths = None if lengths is None else np.asarray(lengths, np.int64)
        self.plan = plan

    def draw(self, generator: torch.Generator) -> np.ndarray:
        pool = self.plan.draw(self.epoch)
        return pool[torch.randperm(len(pool), generator=generator).numpy()]


class MixedRecords(Dataset):
    """The sources' datasets (`interleave.data.audio_records.AudioRecords`, each with its own audio root) end to end."""

    def __init__(self, parts: Sequence[Any]) -> None:
        self.parts = list(parts)
        self.ends = np.cumsum([len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def __getitem__(self, index: int) -> dict[str, Any]:
        part = int(np.searchsorted(self.ends, index, side="right"))
        return self.parts[part][index - (int(self.ends[part - 1]) if part else 0)]

    @property
    def cache(self) -> Any:
        return self.parts[0].cache

    @cache.setter
    def cache(self, store: Any) -> None:  # the run's feature cache reaches every source
        for part in self.parts:
            part.cache = store

    def paths(self) -> list[Path]:
        return list(dict.fromkeys(p for part in self.parts for p in part.paths()))

    def lengths(self, collator: Any) -> np.ndarray:
        return np.concatenate([np.asarray(part.lengths(collator), np.int64) for part in self.parts])
