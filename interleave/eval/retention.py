"""Text retention (issue 39): the LLM's perplexity on held-out human-written text, at every evaluated
point, so that what audio fine-tuning does to its own language is seen beside the SHARD.

A retention text is a plain-text file (its paragraphs, separated by blank lines, are the units) or a
JSONL file (`.jsonl`: one `{"text": ...}` a line, each text a unit). Each unit is tokenized on its own
(no special tokens), its tokens cut into pieces of at most the LLM's context less one (a unit longer
than the context is split there, and the run says how many were); each piece becomes a *segment*: the
tokenizer's BOS (when it has one) and the piece, every token of which is scored (without a BOS, the
first token is context only). The selection is fixed and seeded (`select`): the segments in a
seeded random order (numpy's `default_rng(seed).permutation`), taken whole until `tokens` scored
tokens are reached, the last one cut to the exact count; the same tokens at every point, on every
rank. A file with fewer scored tokens than asked is refused.

Text multiple choice (an entry with `kind: choice`): a file in the benchmark format
(`interleave.eval.benchmarks.items`) whose items have no `audio_id`, asked by the benchmark code
(`interleave.eval.benchmarks.evaluate.ask`) under its no-clip condition alone, with its ranked and
generated scorings; its figures under `val/retention/<name>/<scoring>/accuracy` (`choice_figures`).

The figure is token-weighted: perplexity = exp(Σ NLL / Σ tokens) over the selection, each token's NLL
the LLM's own next-token cross-entropy (the model as it is: LoRA adapter active), computed like
`AudioLLM.loss` (the decoder's hidden states, the LM head at the scored positions only). Under DDP each
rank scores every `world_size`-th segment and the per-segment sums of NLL and tokens are all-reduced,
so every rank holds the same figures; the per-segment sums are kept (`Scored`) for the report's paired
bootstrap over segments.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from interleave.errors import InterleaveError
from interleave.eval.benchmarks.evaluate import BenchmarkConfig
from interleave.eval.evaluate import Point
from interleave.eval.tasks import bench_tag, retention_tag

DEFAULT_TOKENS = 2048  # scored tokens per text, unless `tokens` says otherwise
PERPLEXITY = "perplexity"
PERPLEXITY_KIND, CHOICE = "perplexity", "choice"  # an entry's `kind`: held-out text, or text multiple choice
NO_CLIP = "no_clip"  # the one condition a text multiple-choice file is asked under
HEAD_CHUNK = 2048  # positions sent through the LM head at once (its logits are vocabulary-wide)


@dataclass(frozen=True)
class RetentionConfig:
    """One entry of the evaluation callback's `retention` list.

    Args:
        name: the text's name in the tags (`val/retention/<name>/perplexity`) and the report.
        file: a plain-text file (paragraphs separated by blank lines) or JSONL (`.jsonl`, `{"text": ...}`
            a line), UTF-8.
        tokens: scored tokens in the fixed seeded selection (the file must hold at least as many).
        seed: the seed of the selection.
        batch_size: segments scored together.
    """

    name: str
    file: str
    tokens: int = DEFAULT_TOKENS
    seed: int = 0
    batch_size: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise InterleaveError(f"retention: name {self.name!r} must be a non-empty string without '/'")
        for key in ("tokens", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InterleaveError(f"retention {self.name}: {key} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class Unit:
    """One unit of a retention text: its text and the line of the file where it starts."""

    line: int
    text: str


@dataclass(frozen=True)
class Segment:
    """One scored segment: the unit it comes from (its line), which piece of it, its token ids
    (BOS first when the tokenizer has one) and how many of them are scored (all but the first)."""

    line: int
    piece: int
    ids: tuple[int, ...]

    @property
    def scored(self) -> int:
        return len(self.ids) - 1


@dataclass(frozen=True)
class Selection:
    """A retention text as every point scores it: the segments, the file's hash, and what the run states."""

    config: RetentionConfig
    segments: tuple[Segment, ...]
    sha256: str
    units: int
    split_units: int  # units longer than the context, split
    available: int  # scored tokens the whole file holds
    context: int

    @property
    def tokens(self) -> int:
        return sum(s.scored for s in self.segments)

    def header(self) -> dict[str, Any]:
        """What the metrics file records of it (provenance; the per-point figures come with `Scored`)."""
        return {
            "file": self.config.file,
            "sha256": self.sha256,
            "tokens": self.tokens,
            "segments": len(self.segments),
            "seed": self.config.seed,
            "units": self.units,
            "split_units": self.split_units,
            "context": self.context,
        }

    def describe(self) -> str:
        split = (
            f"; {self.split_units} unit(s) longer than the context ({self.context} tokens) split there"
            if self.split_units
            else ""
        )
        return (
            f"[interleave] retention {self.config.name}: {self.tokens} of {self.available} tokens "
            f"({len(self.segments)} segments, seed {self.config.seed}) from {self.config.file}{split}"
        )


@dataclass(frozen=True)
class Scored:
    """One selection scored at one point: per segment (in selection order) its summed NLL (nats) and
    its scored tokens."""

    nll: tuple[float, ...]
    tokens: tuple[int, ...]

    @property
    def perplexity(self) -> float:
        return math.exp(sum(self.nll) / sum(self.tokens))

    def to_json(self) -> dict[str, Any]:
        return {"segment_nll": list(self.nll), "segment_tokens": list(self.tokens)}


@dataclass(frozen=True)
class SavedText:
    """One text's figures as a point's metrics file keeps them (`retention` entry): the file's hash
    and the per-segment sums."""

    sha256: str
    scored: Scored


def saved_texts(metrics: dict[str, Any], file: str = "") -> dict[str, SavedText]:
    """The retention texts a point's metrics scored (text multiple-choice entries aside); a malformed
    entry is one error naming the file."""
    found = {}
    for name, entry in (metrics.get("retention") or {}).items():
        if isinstance(entry, dict) and entry.get("kind") == CHOICE:
            continue  # a text multiple-choice file: its accuracies are tagged figures, no segments
        try:
            nll, tokens = entry["segment_nll"], entry["segment_tokens"]
            scored = Scored(tuple(float(v) for v in nll), tuple(int(v) for v in tokens))
            if len(scored.nll) != len(scored.tokens) or not scored.tokens or min(scored.tokens) < 1:
                raise ValueError("segment_nll and segment_tokens must be as long, non-empty, tokens >= 1")
            found[name] = SavedText(str(entry["sha256"]), scored)
        except (KeyError, TypeError, ValueError) as err:
            raise InterleaveError(f"{file}: retention {name!r} is malformed ({err})") from None
    return found


def read_units(file: str | Path) -> list[Unit]:
    """The units of a retention text (paragraphs, or a JSONL file's texts); an unreadable, undecodable
    or empty file, or a bad JSONL line, is one error naming the file."""
    path = Path(file)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InterleaveError(f"{path}: cannot read the retention text ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise InterleaveError(f"{path}:{line}: not UTF-8 text (undecodable byte at offset {err.start})") from None
    units = _jsonl_units(path, text) if path.suffix == ".jsonl" else _paragraphs(text)
    if not units:
        raise InterleaveError(f"{path}: the retention text is empty")
    return units


def _paragraphs(text: str) -> list[Unit]:
    units, lines, start = [], [], 0
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if line.strip():
            if not lines:
                start = number
            lines.append(line)
        elif lines:
            units.append(Unit(start, "\n".join(lines)))
            lines = []
    return units


def _jsonl_units(path: Path, text: str) -> list[Unit]:
    units = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise InterleaveError(f"{path}:{number}: not a JSON object ({err.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise InterleaveError(f'{path}:{number}: expected {{"text": "..."}}, got {line[:60]!r}')
        if row["text"].strip():
            units.append(Unit(number, row["text"]))
    return units


def segments(units: list[Unit], tokenizer: Any, context: int) -> tuple[list[Segment], int]:
    """Every unit as segments of at most `context` tokens (BOS first when the tokenizer has one), and
    how many units were longer than the context (split)."""
    bos = tokenizer.bos_token_id
    prefix = () if bos is None else (int(bos),)
    room = context - len(prefix)
    if room < 2:
        raise InterleaveError(f"retention: the LLM's context ({context} tokens) is too short to score text")
    encoded = tokenizer([u.text for u in units], add_special_tokens=False)["input_ids"]
    out, split = [], 0
    for unit, ids in zip(units, encoded):
        pieces = [ids[i : i + room] for i in range(0, len(ids), room)]
        split += len(pieces) > 1
        out += [Segment(unit.line, k, prefix + tuple(p)) for k, p in enumerate(pieces) if len(prefix) + len(p) > 1]
    return out, split


def select(found: list[Segment], tokens: int, seed: int, file: str) -> list[Segment]:
    """The fixed seeded selection of exactly `tokens` scored tokens (see the module's docstring)."""
    available = sum(s.scored for s in found)
    if available < tokens:
        raise InterleaveError(f"{file}: {available} tokens to score, fewer than the {tokens} asked (retention tokens)")
    chosen, total = [], 0
    for index in np.random.default_rng(seed).permutation(len(found)):
        segment = found[int(index)]
        take = min(segment.scored, tokens - total)
        chosen.append(
            segment if take == segment.scored else Segment(segment.line, segment.piece, segment.ids[: take + 1])
        )
        total += take
        if total == tokens:
            break
    return chosen


def load(config: RetentionConfig, tokenizer: Any, context: int) -> Selection:
    """A retention text read, checked, tokenized and selected, once per run."""
    units = read_units(config.file)
    found, split = segments(units, tokenizer, context)
    chosen = select(found, config.tokens, config.seed, config.file)
    sha = hashlib.sha256(Path(config.file).read_bytes()).hexdigest()
    return Selection(config, tuple(chosen), sha, len(units), split, sum(s.scored for s in found), context)


def context_of(llm: Any) -> int:
    """The LLM's context: its config's `max_position_embeddings`."""
    context = getattr(llm.config, "max_position_embeddings", None)
    if not isinstance(context, int) or context < 2:
        raise InterleaveError("retention: the LLM's config states no context (max_position_embeddings)")
    return context


def segment_nll(llm: Any, batch: list[Segment], pad_id: int) -> torch.Tensor:
    """Summed NLL (float64, nats) of each segment's scored tokens under `llm` (a peft model or a plain
    transformers causal LM), right-padded into one batch."""
    base = llm.get_base_model() if hasattr(llm, "get_base_model") else llm
    device = base.get_input_embeddings().weight.device
    width = max(len(s.ids) for s in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, segment in enumerate(batch):
        ids[row, : len(segment.ids)] = torch.tensor(segment.ids)
        mask[row, : len(segment.ids)] = 1
    ids, mask = ids.to(device), mask.to(device)
    hidden = base.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
    keep = mask[:, 1:].bool()
    states, targets = hidden[:, :-1][keep], ids[:, 1:][keep]
    rows = torch.arange(len(batch), device=device).unsqueeze(1).expand_as(keep)[keep]
    nll = torch.cat(
        [
            F.cross_entropy(
                base.get_output_embeddings()(states[i : i + HEAD_CHUNK]).float(),
                targets[i : i + HEAD_CHUNK],
                reduction="none",
            )
            for i in range(0, len(targets), HEAD_CHUNK)
        ]
    )
    return torch.zeros(len(batch), dtype=torch.float64, device=device).index_add_(0, rows, nll.double())


def score(llm: Any, selection: Selection, pad_id: int, point: Point) -> Scored:
    """One point's figures of a selection: this rank's share of the segments scored (every
    `world_size`-th), the per-segment sums all-reduced across ranks."""
    count = len(selection.segments)
    device = (llm.get_base_model() if hasattr(llm, "get_base_model") else llm).get_input_embeddings().weight.device
    nll = torch.zeros(count, dtype=torch.float64, device=device)
    mine = list(range(point.rank, count, point.world_size))
    size = selection.config.batch_size
    with torch.no_grad():
        for start in range(0, len(mine), size):
            indices = mine[start : start + size]
            nll[indices] = segment_nll(llm, [selection.segments[i] for i in indices], pad_id)
    if point.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(nll)
    return Scored(tuple(float(v) for v in nll.cpu()), tuple(s.scored for s in selection.segments))


def figures(name: str, scored: Scored) -> dict[str, float]:
    """The tagged figure of one text at one point: `val/retention/<name>/perplexity`."""
    return {retention_tag(name, PERPLEXITY): scored.perplexity}


def choice_config(entry: dict[str, Any]) -> BenchmarkConfig:
    """A `kind: choice` entry as the benchmark it is: its keys are `BenchmarkConfig`'s (name, file, subset,
    seed, scorings, rule, norm, prompts), asked under the no-clip condition alone."""
    return BenchmarkConfig(**{k: v for k, v in entry.items() if k != "kind"}, controls=(NO_CLIP,))


def choice_figures(name: str, metrics: dict[str, float]) -> dict[str, float]:
    """A text multiple-choice file's figures, moved from the benchmark's no-clip tags
    (`val/bench/<name>/no_clip/<scoring>/...`) to `val/retention/<name>/<scoring>/...`."""
    prefix = bench_tag(name, NO_CLIP) + "/"
    return {retention_tag(name, tag.removeprefix(prefix)): v for tag, v in metrics.items() if tag.startswith(prefix)}
