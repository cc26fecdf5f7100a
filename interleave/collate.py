"""Collation: expand the placeholder into the audio span, build labels, pad into a batch.

The placeholder string never reaches the tokenizer: the rendered prompt is split at `[AUDIO]`
and each piece is tokenized alone; the audio span is `NUM_AUDIO_TOKENS` positions marked in
`audio_mask` (their `input_ids` hold the pad id and are replaced by audio embeddings in the
model). Batch contract (DESIGN.md): input_ids, attention_mask, labels, audio_mask, audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from interleave import AUDIO_PLACEHOLDER, NUM_AUDIO_TOKENS
from interleave.errors import RecordError
from interleave.prompts import PromptTemplate, split_at_placeholder
from interleave.records import Record

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    audio_mask: list[bool]


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


class Collator:
    """Encodes records and pads them into a batch; pass it as a DataLoader's `collate_fn`.

    `padding_side="right"` for training, `"left"` for generation. With `with_answer=False` the
    rows hold only the prompt (for generation). With `with_prompt_batch=True` (validation) the
    batch also carries a left-padded, answer-free copy under `prompt_*` keys and the reference
    answers, so one loader serves both the loss and generation.
    """

    def __init__(
        self,
        tokenizer: Any,
        template: PromptTemplate | None = None,
        max_length: int = 512,
        train_on_prompt: bool = False,
        padding_side: Literal["right", "left"] = "right",
        with_answer: bool = True,
        with_prompt_batch: bool = False,
        add_bos: bool | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.template = template or PromptTemplate()
        self.max_length = max_length
        self.train_on_prompt = train_on_prompt
        self.padding_side = padding_side
        self.with_answer = with_answer
        self.with_prompt_batch = with_prompt_batch
        self.add_bos = tokenizer_adds_bos(tokenizer) if add_bos is None else add_bos
        self.pad_id = pad_token_id(tokenizer)
        if self.max_length <= NUM_AUDIO_TOKENS:
            raise ValueError(f"max_length={max_length} cannot hold the {NUM_AUDIO_TOKENS}-position audio span")

    def _tokens(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def encode(self, record: Record, with_answer: bool | None = None, with_audio: bool = True) -> Encoded:
        """Token ids, labels and audio mask of one record; raises RecordError if it cannot fit.

        `with_audio=False` encodes a text-only prompt (no audio span; it must hold no placeholder).
        """
        with_answer = self.with_answer if with_answer is None else with_answer
        text = self.template.render(record.instruction, record.input)
        before, after = split_at_placeholder(text, record.describe())
        bos = [self.tokenizer.bos_token_id] if self.add_bos else []
        audio = [self.pad_id] * NUM_AUDIO_TOKENS
        if not with_audio:
            if after is not None:
                raise RecordError(record.describe(), f"a text-only prompt cannot hold {AUDIO_PLACEHOLDER}")
            ids = bos + self._tokens(before)
            is_audio = [False] * len(ids)
        elif after is None:  # LTU's layout: the audio span comes before everything, BOS included
            ids = audio + bos + self._tokens(before)
            is_audio = [True] * NUM_AUDIO_TOKENS + [False] * (len(ids) - NUM_AUDIO_TOKENS)
        else:
            pre, post = bos + self._tokens(before), self._tokens(after)
            ids = pre + audio + post
            is_audio = [False] * len(pre) + [True] * NUM_AUDIO_TOKENS + [False] * len(post)

        room = self.max_length - len(ids)
        if not with_answer:
            if room < 0:
                raise RecordError(
                    record.describe(),
                    f"prompt needs {len(ids)} tokens ({NUM_AUDIO_TOKENS} audio), more than max_length={self.max_length}",
                )
            return Encoded(ids, [IGNORE_INDEX] * len(ids), is_audio)
        if room < 1:
            raise RecordError(
                record.describe(),
                f"prompt needs {len(ids)} tokens ({NUM_AUDIO_TOKENS} audio), leaving no room for the answer "
                f"within max_length={self.max_length}",
            )
        answer = (self._tokens(record.output) + [self.tokenizer.eos_token_id])[:room]
        if self.train_on_prompt:
            prompt_labels = [IGNORE_INDEX if a else t for t, a in zip(ids, is_audio)]
        else:
            prompt_labels = [IGNORE_INDEX] * len(ids)
        return Encoded(ids + answer, prompt_labels + answer, is_audio + [False] * len(answer))

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

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """items: dicts with `record` (Record) and `audio` (fbank [1024,128] or features [32,768])."""
        records: list[Record] = [item["record"] for item in items]
        batch: dict[str, Any] = self.pad([self.encode(r) for r in records], self.padding_side)
        batch["audio"] = torch.stack([item["audio"] for item in items])
        batch["ids"] = [r.id for r in records]
        if self.with_prompt_batch:
            prompts = self.pad([self.encode(r, with_answer=False) for r in records], "left")
            batch.update({f"prompt_{k}": v for k, v in prompts.items() if k != "labels"})
            batch["references"] = [r.output for r in records]
        return batch
