"""Collation: expand the placeholder into the audio span, build labels, pad into a batch.

Tokenization follows LTU's rule on the whole string, for any tokenizer: a record's text tokens
are the tokens of `prompt + answer` tokenized as ONE string (BOS as the tokenizer adds it; EOS
appended), and the answer's labels start at `len(tokenize(prompt))`. Interleaved prompts are
tokenized whole too, with each `[AUDIO]` and one adjacent space removed ("Is [AUDIO] similar"
reads as "Is similar"); the audio span (`audio_tokens` positions, the model's setting, marked in `audio_mask`,
whose `input_ids` hold the pad id and are replaced by audio embeddings in the model) is inserted
at that character offset, so no SentencePiece `▁` or byte-level `Ġ` exists only because the text
was cut. Where the offset falls inside one token, that token alone is split there (`Encoded.splits`).
Without a placeholder the span goes first, before BOS (LTU's layout). The placeholder string
never reaches the tokenizer. A record with several clips has one placeholder per clip, each
replaced by its own clip's span, in order; the whole prompt (every span included) must fit
`max_length`, so truncation only ever cuts the answer, never a span.
Batch keys: input_ids, attention_mask, labels, audio_mask, and every clip of the batch stacked
(row by row, in placeholder order within a row) under `audio` (the encoder's inputs) or
`audio_features` (cached encoder features), never both; the k-th clip fills the k-th span of
`audio_mask` read row by row, left to right (`span_starts`), as the model's `masked_scatter` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch

from interleave import AUDIO_PLACEHOLDER, NUM_AUDIO_TOKENS
from interleave.data.chat import ChatTemplate
from interleave.data.prompts import PromptTemplate, check_clip_count, remove_placeholders
from interleave.data.records import Record
from interleave.encoders.base import stack_clips
from interleave.errors import InterleaveError, RecordError
from interleave.spec import Batch, DataSpec

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    audio_mask: list[bool]
    splits: int = 0  # text tokens split at an audio offset because the offset fell inside them
    spans: tuple[int, ...] = ()  # where each clip's span starts, in placeholder order


def tokenizer_adds_bos(tokenizer: Any) -> bool:
    """Whether the tokenizer itself puts BOS first (LLaMA's does, SmolLM2's does not)."""
    bos = tokenizer.bos_token_id
    return bos is not None and tokenizer("a")["input_ids"][:1] == [bos]


def pad_token_id(tokenizer: Any) -> int:
    """The pad id to use: the tokenizer's, else its EOS (LLaMA has no pad token)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def tokens_with_audio(tokenizer: Any, text: str, offsets: list[int]) -> tuple[list[int], list[int], int]:
    """Whole-string tokens of `text` and where an audio span goes for each character offset.

    Returns (token ids, for each offset the number of tokens before it, how many tokens had to be
    split). A token that starts before an offset belongs before it; one that straddles an offset is
    replaced by its two sides, each tokenized on its own.
    """
    if not text:
        return [], [0] * len(offsets), 0
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, spans = list(encoding["input_ids"]), [tuple(s) for s in encoding["offset_mapping"]]
    splits = 0
    for offset in sorted(set(offsets)):
        for j, (start, end) in enumerate(spans):
            if start < offset < end:
                left = tokenizer(text[start:offset], add_special_tokens=False, return_offsets_mapping=True)
                right = tokenizer(text[offset:end], add_special_tokens=False, return_offsets_mapping=True)
                ids[j : j + 1] = list(left["input_ids"]) + list(right["input_ids"])
                spans[j : j + 1] = [(start + a, start + b) for a, b in left["offset_mapping"]] + [
                    (offset + a, offset + b) for a, b in right["offset_mapping"]
                ]
                splits += 1
                break
    cuts = [sum(1 for start, _ in spans if start < offset) for offset in offsets]
    return ids, cuts, splits


def insert_spans(values: list, cuts: list[int], fill: Any, length: int | Sequence[int] = NUM_AUDIO_TOKENS) -> list:
    """`values` with a run of `fill` (one audio span) inserted before each position in `cuts`, each
    `length` long (one count for every span, or one per span)."""
    lengths = [length] * len(cuts) if isinstance(length, int) else list(length)
    out, last = [], 0
    for cut, n in zip(cuts, lengths, strict=True):
        out += values[last:cut] + [fill] * n
        last = cut
    return out + values[last:]


AUDIO_KEYS = ("audio", "audio_features")  # an item's and a batch's clips: encoder inputs, or cached features


def span_starts(audio_mask: torch.Tensor, audio_tokens: int | None) -> list[tuple[int, int]]:
    """(row, first position) of each clip's span in `audio_mask` [B, L], in the order the clips are
    stacked in the batch and the model's `masked_scatter` fills them: row by row, left to right.
    `audio_tokens` is every span's length; None: spans of their own lengths, each a run of marked
    positions (a variable-length family's spans never touch: its template wraps each clip)."""
    if audio_tokens is None:
        return [(row, start) for row, start, _ in span_runs(audio_mask)]
    rows, columns = audio_mask.nonzero(as_tuple=True)
    return list(zip(rows[::audio_tokens].tolist(), columns[::audio_tokens].tolist()))


def span_runs(audio_mask: torch.Tensor) -> list[tuple[int, int, int]]:
    """(row, start, length) of each run of marked positions in `audio_mask` [B, L], row by row, left to right."""
    runs = []
    for row, marks in enumerate(audio_mask.tolist()):
        start = None
        for column, marked in enumerate([*marks, False]):
            if marked and start is None:
                start = column
            elif not marked and start is not None:
                runs.append((row, start, column - start))
                start = None
    return runs


class Collator:
    """Encodes records and pads them into a batch; pass it as a DataLoader's `collate_fn`.

    `padding_side="right"` for training, `"left"` for generation. With `with_answer=False` the
    rows hold only the prompt (for generation). With `with_prompt_batch=True` (validation) the
    batch also carries a left-padded, answer-free copy under `prompt_*` keys and the reference
    answers, so one loader serves both the loss and generation. `audio_tokens` is the length of
    one audio span: the model's `audio_tokens` (LTU's 32 by default), which the data module passes.
    A variable-length family (Qwen2-Audio) gives `clip_positions` instead: one clip's encoder inputs
    -> its span length; a clip's cached features are as many rows as its span. `template` is LTU's
    alpaca `PromptTemplate` or a released family's `ChatTemplate` (`interleave.data.chat`).
    """

    def __init__(
        self,
        tokenizer: Any,
        template: PromptTemplate | ChatTemplate | None = None,
        max_length: int = 512,
        train_on_prompt: bool = False,
        padding_side: Literal["right", "left"] = "right",
        with_answer: bool = True,
        with_prompt_batch: bool = False,
        add_bos: bool | None = None,
        audio_tokens: int = NUM_AUDIO_TOKENS,
        clip_positions: Callable[[torch.Tensor], int] | None = None,
        clip_spans: Callable[[Record], list[int]] | None = None,
    ) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise InterleaveError(
                f"{type(tokenizer).__name__} gives no character offsets; the collator needs a fast "
                "(tokenizers-backed) tokenizer to place the audio span on the whole string's tokens"
            )
        self.tokenizer = tokenizer
        self.template = template or PromptTemplate()
        self.max_length = max_length
        self.train_on_prompt = train_on_prompt
        self.padding_side = padding_side
        self.with_answer = with_answer
        self.with_prompt_batch = with_prompt_batch
        self.add_bos = tokenizer_adds_bos(tokenizer) if add_bos is None else add_bos
        self.pad_id = pad_token_id(tokenizer)
        if audio_tokens < 1:
            raise ValueError(f"audio_tokens must be at least 1, got {audio_tokens}")
        self.audio_tokens = audio_tokens
        self.clip_positions = clip_positions
        self.clip_spans = clip_spans
        # a variable-length family's `audio_tokens` is its longest span (Audio Flamingo 3's: ten
        # minutes, 15000 positions), counted only where no clip is at hand: each record is checked
        if clip_positions is None and self.max_length <= audio_tokens:
            raise ValueError(f"max_length={max_length} cannot hold the {audio_tokens}-position audio span")

    @classmethod
    def of_spec(cls, spec: DataSpec, template: PromptTemplate | None = None, **kwargs: Any) -> Collator:
        """The collator for the model's side of the contract: its tokenizer, its span lengths (fixed, or
        following each clip) and a released family's chat layout, which replaces `template` (the data's
        own); `kwargs` go to `Collator` (`max_length`, `padding_side`, ...)."""
        return cls(
            spec.tokenizer,
            template if spec.template is None else spec.template,
            audio_tokens=spec.audio_tokens,
            clip_positions=spec.clip_positions,
            **kwargs,
        )

    def _text(self, text: str, offsets: list[int]) -> tuple[list[int], list[int], int]:
        """BOS (as the tokenizer adds it) and the whole string's tokens, with the audio cut points."""
        ids, cuts, splits = tokens_with_audio(self.tokenizer, text, offsets)
        if self.add_bos:
            return [self.tokenizer.bos_token_id] + ids, [c + 1 for c in cuts], splits
        return ids, cuts, splits

    def encode(
        self,
        record: Record,
        with_answer: bool | None = None,
        with_audio: bool = True,
        lengths: Sequence[int] | None = None,
    ) -> Encoded:
        """Token ids, labels and audio mask of one record; raises RecordError if it cannot fit.

        `with_audio=False` encodes a text-only prompt (no audio span; it must hold no placeholder).
        `lengths`: each clip's span length (a variable-length family's); default `audio_tokens` each.
        """
        with_answer = self.with_answer if with_answer is None else with_answer
        rendered = self.template.render(record.instruction, record.input, clips=len(record.clips) if with_audio else 0)
        prompt, offsets = remove_placeholders(rendered)
        if not with_audio and offsets:
            raise RecordError(record.describe(), f"a text-only prompt cannot hold {AUDIO_PLACEHOLDER}")
        if with_audio:
            check_clip_count(len(record.clips), len(offsets), record.describe())
        ltu_layout = with_audio and not offsets  # the audio span comes before everything, BOS included
        prompt_ids, cuts, splits = self._text(prompt, offsets)
        if ltu_layout:
            cuts = [0]
        if self.clip_positions is not None and any(a == b for a, b in zip(cuts, cuts[1:])):
            # spans of their own lengths are told apart by the text between them (`span_runs`)
            raise RecordError(
                record.describe(),
                "two clips touch (nothing between two [AUDIO]s); write text between them: this "
                "family's spans follow their clips' lengths and its template does not wrap them",
            )
        spans = self.record_spans(record, len(cuts)) if lengths is None else list(lengths)
        if len(spans) != len(cuts):
            raise RecordError(record.describe(), f"{len(spans)} clip length(s) given for {len(cuts)} span(s)")
        n_audio = sum(spans)
        prompt_len = len(prompt_ids) + n_audio
        if not with_answer:
            if prompt_len > self.max_length:
                raise RecordError(
                    record.describe(),
                    f"prompt needs {prompt_len} tokens ({n_audio} audio), more than max_length={self.max_length}",
                )
            ids = insert_spans(prompt_ids, cuts, self.pad_id, spans)
            mask = insert_spans([False] * len(prompt_ids), cuts, True, spans)
            return Encoded(ids, [IGNORE_INDEX] * len(ids), mask, splits, self._starts(cuts, spans))
        if prompt_len >= self.max_length:
            raise RecordError(
                record.describe(),
                f"prompt needs {prompt_len} tokens ({n_audio} audio), leaving no room for the answer "
                f"within max_length={self.max_length}",
            )
        # LTU's rule: tokenize prompt + answer as one string, append EOS, keep the first
        # len(tokenize(prompt)) labels out of the loss unless training on the prompt.
        text_ids, cuts, splits = self._text(prompt + record.output, offsets)
        if ltu_layout:
            cuts = [0]
        eos = self.tokenizer.eos_token_id
        if not text_ids or text_ids[-1] != eos:
            text_ids = text_ids + [eos]
        n_prompt = len(prompt_ids)
        labels = [t if (i >= n_prompt or self.train_on_prompt) else IGNORE_INDEX for i, t in enumerate(text_ids)]
        ids = insert_spans(text_ids, cuts, self.pad_id, spans)[: self.max_length]
        labels = insert_spans(labels, cuts, IGNORE_INDEX, spans)[: self.max_length]
        is_audio = insert_spans([False] * len(text_ids), cuts, True, spans)[: self.max_length]
        # The prompt (every span) fits max_length, checked above, so the cut only shortens the answer.
        return Encoded(ids, labels, is_audio, splits, self._starts(cuts, spans))

    @staticmethod
    def _starts(cuts: list[int], spans: list[int]) -> tuple[int, ...]:
        """Where each span starts once the spans before it are inserted."""
        return tuple(cut + sum(spans[:k]) for k, cut in enumerate(cuts))

    def pad(self, rows: list[Encoded], side: Literal["right", "left"]) -> dict[str, torch.Tensor]:
        """Pad encoded rows to the longest one, on the given side."""
        width = max(len(r.input_ids) for r in rows)

        def padded(values: list, fill: Any) -> list:
            extra = [fill] * (width - len(values))
            return values + extra if side == "right" else extra + values

        return {
            "input_ids": torch.tensor([padded(r.input_ids, self.pad_id) for r in rows], dtype=torch.long),
            "attention_mask": torch.tensor([padded([1] * len(r.input_ids), 0) for r in rows], dtype=torch.long),
            "labels": torch.tensor([padded(r.labels, IGNORE_INDEX) for r in rows], dtype=torch.long),
            "audio_mask": torch.tensor([padded(r.audio_mask, False) for r in rows], dtype=torch.bool),
        }

    def __call__(self, items: list[dict[str, Any]]) -> Batch:
        """items: dicts with `record` (Record) and either `audio` (the encoder's inputs of its clip)
        or `audio_features` (its cached features [audio_tokens, D]): one tensor, or a list of
        them, one per clip in placeholder order. The batch carries the clips under the same key."""
        records: list[Record] = [item["record"] for item in items]
        keys = {key for item in items for key in AUDIO_KEYS if key in item}
        if len(keys) != 1:
            raise InterleaveError(f"a batch's items must all carry one of {list(AUDIO_KEYS)}, not {sorted(keys)}")
        (key,) = keys
        clips = [item[key] if isinstance(item[key], (list, tuple)) else [item[key]] for item in items]
        lengths = [self._lengths(audio, key) for audio in clips]
        encoded = [self.encode(r, lengths=n) for r, n in zip(records, lengths)]
        for record, row, audio in zip(records, encoded, clips):
            if len(audio) != len(row.spans):
                raise RecordError(
                    record.describe(), f"{len(audio)} clip(s) of audio given for {len(row.spans)} span(s)"
                )
        batch: dict[str, Any] = self.pad(encoded, self.padding_side)
        batch[key] = stack_clips([clip for audio in clips for clip in audio])
        batch["ids"] = [r.id for r in records]
        if self.with_prompt_batch:
            prompts = self.pad([self.encode(r, with_answer=False, lengths=n) for r, n in zip(records, lengths)], "left")
            batch.update({f"prompt_{k}": v for k, v in prompts.items() if k != "labels"})
            batch["references"] = [r.output for r in records]
        return cast(Batch, batch)  # its keys are `Batch`'s (tests/test_spec.py)

    def record_spans(self, record: Record, spans: int) -> list[int]:
        """The lengths of a record's `spans` spans when its clips are not at hand: read from the
        clips' headers where the family's spans follow the clips (`clip_spans`), else `audio_tokens` each."""
        if self.clip_spans is not None and spans == len(record.clips):
            return self.clip_spans(record)
        return [self.audio_tokens] * spans

    def _lengths(self, clips: list[torch.Tensor], key: str) -> list[int] | None:
        """Each clip's span length for a variable-length family (None: `audio_tokens` each): the
        rows of its cached features, or the count its encoder inputs give (`clip_positions`)."""
        if self.clip_positions is None:
            return None
        return [int(clip.shape[0]) if key == "audio_features" else self.clip_positions(clip) for clip in clips]
