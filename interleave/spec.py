"""The contracts between the parts: what each side states for the other, so that neither imports the other.

`DataSpec` is the model's side of the model <-> data handshake: `AudioLLM.data_spec()` returns it
and `InterleavedDataModule.connect(spec)` takes it (the command line does both for every run:
`interleave.cli`, and `build_run` for the tools). The model and the data module both import this
module; neither imports the other.

`Batch` is what the data side gives the model: the collated batch, its keys as ARCHITECTURE.md's
batch table lists them (`tests/test_spec.py` checks that they agree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypedDict

import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders.audio import FBANK_SECONDS, load_fbank

AudioLoader = Callable[..., torch.Tensor]  # (path, channel) -> one clip's encoder inputs


class _BatchKeys(TypedDict):
    """The keys every batch holds (`Batch`)."""

    input_ids: torch.Tensor  # [B, L] long; audio positions hold the pad id
    attention_mask: torch.Tensor  # [B, L] long; 1 on tokens and audio
    labels: torch.Tensor  # [B, L] long; -100 on audio, padding and the prompt unless train_on_prompt
    audio_mask: torch.Tensor  # [B, L] bool; True where the audio embeddings go
    ids: list[str]  # the records' ids


class Batch(_BatchKeys, total=False):
    """One collated batch (`interleave.data.collate.Collator`), as the model reads it: B rows of L
    positions, the C clips of the batch (C >= B) row by row and in placeholder order within a row.
    A batch holds `audio` (the encoder's inputs) or `audio_features` (cached encoder features),
    never both; the `prompt_*` copy and `references` only for validation and predict."""

    audio: torch.Tensor  # [C, ...] float: the clips as the encoder's inputs
    audio_features: torch.Tensor  # [C, audio_tokens, D] float: the clips' cached features
    prompt_input_ids: torch.Tensor  # [B, L'] long, left-padded, answer-free
    prompt_attention_mask: torch.Tensor  # [B, L'] long
    prompt_audio_mask: torch.Tensor  # [B, L'] bool
    references: list[str]  # the reference answers


@dataclass(frozen=True)
class DataSpec:
    """What the data side needs from the model (`AudioLLM.data_spec()`): the tokenizer, the audio
    positions per clip, the encoder's input loader `(path, channel) -> one clip's inputs` (CAV-MAE's
    fbank, AST's or Whisper's extractor) and the seconds of a clip it hears. Defaults: LTU's.
    A released family (`model.pretrained`) adds `clip_positions`, its clips' span lengths (variable:
    a span follows its clip's length), and `template`, its chat layout, which replaces the data's
    prompt template."""

    tokenizer: Any
    audio_tokens: int = NUM_AUDIO_TOKENS
    audio_loader: AudioLoader = load_fbank
    heard_seconds: float = FBANK_SECONDS
    clip_positions: Callable[[torch.Tensor], int] | None = None  # a clip's inputs -> its span length
    positions_for_samples: Callable[[int], int] | None = None  # a clip's 16-kHz sample count -> its span length
    template: Any = None  # a released family's ChatTemplate (interleave.data.chat); None: the data's own
