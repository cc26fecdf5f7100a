"""Whisper's encoder from transformers, as an encoder kind (`model.encoder: whisper`)."""

from __future__ import annotations

import math
from typing import Any

import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders.audio import SAMPLE_RATE
from interleave.encoders.base import Encoder, extractor_settings, hf_folder, pool_frames


class WhisperAudioEncoder(Encoder):
    """Whisper's encoder (`transformers.models.whisper.modeling_whisper.WhisperEncoder`).

    Inputs: `WhisperFeatureExtractor`'s log-mel `[num_mel_bins, 3000]` (the clip padded to 30 s,
    longer clips cut there) with one more row, the extractor's frame mask (1 on the frames that
    cover the clip): `[num_mel_bins + 1, 3000]`. Pooling: of the encoder's 1500 output frames
    (20 ms each) only those covering the clip, ceil(clip frames / 2), are pooled to
    `audio_tokens` with `pool_frames`, so 30 s of padding never dominates a short clip. (The encoder
    itself still attends over the whole padded 30 s, as Whisper was trained to.)
    """

    kind = "whisper"
    heard_seconds = 30.0  # the extractor pads or cuts every clip to 30 s
    presets = {
        # OpenAI's whisper-base encoder (random weights; a real one comes from model.encoder_path).
        "base": dict(d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048, num_mel_bins=80),
        "tiny": dict(
            d_model=32,
            encoder_layers=1,
            encoder_attention_heads=4,
            encoder_ffn_dim=64,
            decoder_layers=1,
            decoder_attention_heads=4,
            decoder_ffn_dim=64,
        ),
    }

    def __init__(
        self,
        path: str | None = None,
        config: dict | None = None,
        audio_tokens: int = NUM_AUDIO_TOKENS,
        frozen: bool = True,
    ) -> None:
        from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        super().__init__(audio_tokens, frozen)
        if path:
            folder = hf_folder(path, "Whisper")
            self.model = WhisperModel.from_pretrained(folder).get_encoder()  # the decoder is dropped here
            self.extractor = WhisperFeatureExtractor.from_pretrained(folder)
        else:
            cfg = WhisperConfig(**(config or {}))
            self.model = WhisperEncoder(cfg)
            self.extractor = WhisperFeatureExtractor(feature_size=cfg.num_mel_bins)
        self.width = self.model.config.d_model
        self._freeze()

    def inputs_from_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        out = self.extractor(
            waveform.numpy(), sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True
        )
        mels, mask = out["input_features"][0], out["attention_mask"][0]
        return torch.cat([mels, mask[None].to(mels.dtype)]).to(torch.float32)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        mels, mask = inputs[:, :-1], inputs[:, -1]
        frames = self.model(mels).last_hidden_state  # [B, 1500, D]
        stride = mels.shape[-1] / frames.shape[1]
        pooled = []
        for row, clip_frames in zip(frames, mask.sum(dim=1).tolist()):
            covered = min(frames.shape[1], max(1, math.ceil(clip_frames / stride)))
            pooled.append(pool_frames(row[None, :covered], self.audio_tokens)[0])
        return torch.stack(pooled)

    def settings(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "features": extractor_settings(self.extractor),
            "tokens": self.audio_tokens,
            "pooling": "frames covering the clip only; adaptive average over time",
        }
