"""The Audio Spectrogram Transformer (AST) from transformers, as an encoder kind (`model.encoder: ast`)."""

from __future__ import annotations

from typing import Any

import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders.audio import SAMPLE_RATE
from interleave.encoders.base import Encoder, extractor_settings, hf_folder, pool_frames


class ASTEncoder(Encoder):
    """The Audio Spectrogram Transformer (`transformers.ASTModel`).

    Inputs: `ASTFeatureExtractor`'s Kaldi fbank `[max_length, num_mel_bins]` (1024 x 128 for the
    AudioSet models), normalised with that checkpoint's mean and std. Pooling: the two special
    tokens are dropped, the patch grid (frequency rows x time columns) is averaged over frequency
    and its time columns pooled to `audio_tokens` with `pool_frames`, as LTU pools CAV-MAE.
    """

    kind = "ast"
    presets = {
        "base": {},  # ASTConfig's defaults: the AudioSet AST (768 wide, 12 layers, strides 10)
        "tiny": dict(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=4,
            intermediate_size=64,
            frequency_stride=16,
            time_stride=16,
        ),
    }

    def __init__(
        self,
        path: str | None = None,
        config: dict | None = None,
        audio_tokens: int = NUM_AUDIO_TOKENS,
        frozen: bool = True,
    ) -> None:
        from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

        super().__init__(audio_tokens, frozen)
        if path:
            folder = hf_folder(path, "AST")
            self.model = ASTModel.from_pretrained(folder)
            self.extractor = ASTFeatureExtractor.from_pretrained(folder)
        else:
            self.model = ASTModel(ASTConfig(**(config or {})))
            cfg = self.model.config
            self.extractor = ASTFeatureExtractor(num_mel_bins=cfg.num_mel_bins, max_length=cfg.max_length)
        cfg = self.model.config
        self.width = cfg.hidden_size
        self.grid = (
            (cfg.num_mel_bins - cfg.patch_size) // cfg.frequency_stride + 1,
            (cfg.max_length - cfg.patch_size) // cfg.time_stride + 1,
        )
        self._freeze()

    def inputs_from_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        values = self.extractor(waveform.numpy(), sampling_rate=SAMPLE_RATE, return_tensors="pt")["input_values"]
        return values[0].to(torch.float32)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_values=inputs).last_hidden_state[:, 2:]  # drop CLS and distillation tokens
        rows, cols = self.grid
        grid = hidden.reshape(hidden.shape[0], rows, cols, hidden.shape[-1])  # patches are frequency-major
        return pool_frames(grid.mean(dim=1), self.audio_tokens)

    def settings(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "features": extractor_settings(self.extractor),
            "tokens": self.audio_tokens,
            "pooling": "drop 2 special tokens; mean over frequency; adaptive average over time",
        }
