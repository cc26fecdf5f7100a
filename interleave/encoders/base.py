"""The audio encoder's contract (`Encoder`), the pooling every kind but CAV-MAE's uses (`pool_frames`),
and what the kinds from transformers (AST, Whisper) share: their folder and their extractor's settings.

Every encoder kind (`interleave.encoders.cavmae`, `.ast`, `.whisper`; the registry the config picks
from is the package, `interleave.encoders`) is one small subclass of `Encoder`; its docstring is the contract.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders import audio
from interleave.encoders.audio import Channel, WaveformTransform
from interleave.errors import AudioError, InterleaveError


class Encoder(nn.Module):
    """The contract of an audio encoder kind; adding a kind is one subclass of this, registered in
    `interleave.encoders.ENCODERS`.

    In: `load_inputs(path, channel)` turns one audio file into the input features the encoder's
    checkpoint was trained with, one fixed-shape CPU tensor per clip (the data loader calls it, so
    the batch's `audio` is `[B, *that shape]`); `inputs_from_waveform` does the same from a 16 kHz
    waveform. Out: `forward(inputs [B, ...])` gives pooled features `[B, audio_tokens, width]`;
    `width` is declared at construction (the projector is built for it) and `audio_tokens` is the
    model's setting. Fingerprint: `settings()` is everything besides the weights that decides the
    features (kind, feature-extraction settings, pooling, `audio_tokens`); the feature cache hashes
    it with the `state_dict()`. Frozen (`frozen=True`, after `_freeze()` at the end of `__init__`):
    no parameter requires grad and the module stays in eval mode whatever `.train()` is called
    with, so Lightning cannot switch it back; `forward` then builds no graph.
    """

    kind = ""
    heard_seconds = audio.FBANK_SECONDS  # how much of a clip its inputs hold (1024 fbank frames: 10.255 s)
    variable_length = False  # True: a clip's span is `positions(inputs)` long, not `audio_tokens`

    def __init__(self, audio_tokens: int = NUM_AUDIO_TOKENS, frozen: bool = True) -> None:
        super().__init__()
        if audio_tokens < 1:
            raise ValueError(f"audio_tokens must be at least 1, got {audio_tokens}")
        self.audio_tokens = audio_tokens
        self.frozen = frozen
        self.width = 0

    def _freeze(self) -> None:
        if self.frozen:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> Encoder:
        return super().train(False if self.frozen else mode)

    def inputs_from_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def load_inputs(
        self, path: str | os.PathLike[str], channel: Channel = "first", transform: WaveformTransform | None = None
    ) -> torch.Tensor:
        """One clip's input features; a file whose features are not finite is refused by name.
        `transform` replaces the clip's waveform before the features (the SHARD probes' silence, noise)."""
        waveform = audio.load_waveform(path, channel, transform)
        inputs = self.inputs_from_waveform(waveform)
        if not torch.isfinite(inputs).all():
            raise AudioError(
                Path(path),
                f"its {self.kind} input features are not finite "
                f"(peak sample {waveform.abs().max().item():.3g}; expected about 1)",
            )
        return inputs

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def positions_for_samples(self, samples: int) -> int:
        """The audio positions of a clip of `samples` 16-kHz samples, without loading it (its header
        says how long it is): `audio_tokens` for a fixed-length kind."""
        return self.audio_tokens

    def positions(self, inputs: torch.Tensor) -> torch.Tensor:
        """Each clip's count of audio positions [B] (long): `audio_tokens` for a fixed-length kind;
        a variable-length kind's `forward` gives `[B, max, width]`, a clip's first this many rows its own."""
        return torch.full((len(inputs),), self.audio_tokens, dtype=torch.long)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            return self.encode(inputs)

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError


def stack_clips(clips: list[torch.Tensor]) -> torch.Tensor:
    """The clips as one tensor [C, ...]; clips of different lengths along their first dimension
    (cached features [n, D], Audio Flamingo 3's windows [W * 3000, 129]) are padded with zeros to
    the longest (no span reads the padding, no mask covers it)."""
    if len({tuple(c.shape) for c in clips}) <= 1:
        return torch.stack(clips)
    longest = max(c.shape[0] for c in clips)
    return torch.stack([torch.nn.functional.pad(c, (0, 0, 0, longest - c.shape[0])) for c in clips])


def pool_frames(frames: torch.Tensor, audio_tokens: int) -> torch.Tensor:
    """The documented pooling of every kind but CAV-MAE at 32: [B, N, D] frames -> [B, audio_tokens, D],
    token i the mean of frames floor(i*N/k) .. ceil((i+1)*N/k) - 1 (adaptive average pooling; with
    N < k a frame is repeated). For N = 2k it is LTU's average of pairs."""
    return F.adaptive_avg_pool1d(frames.transpose(1, 2), audio_tokens).transpose(1, 2)


def extractor_settings(extractor: Any) -> dict[str, Any]:
    """A feature extractor's settings, without derived arrays (Whisper's mel filters follow from the rest)."""
    return {k: v for k, v in extractor.to_dict().items() if not isinstance(v, np.ndarray)}


def hf_folder(path: str, what: str) -> Path:
    """`model.encoder_path` as the Hugging Face folder of a `what` (AST, Whisper) with its feature settings."""
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise InterleaveError(f"model.encoder_path: {folder} is not a Hugging Face {what} folder (no config.json)")
    if not (folder / "preprocessor_config.json").is_file():
        raise InterleaveError(
            f"model.encoder_path: {folder} has no preprocessor_config.json, so the "
            f"{what}'s input features are unknown (save its feature extractor there too)"
        )
    return folder
