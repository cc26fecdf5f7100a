"""The encoder kinds from transformers (AST, Whisper's encoder) and the registry the config picks from.

`model.encoder` is `KIND[:SIZE]`: `cavmae` (the default; sizes `cavmae`, `small`, `tiny`; the bare
`small` and `tiny` still mean CAV-MAE), `ast` (sizes `base`, `tiny`) or `whisper` (`base`,
`tiny`). A size is a random-weight architecture (`tiny`: the tests' size, not OpenAI's
whisper-tiny); `model.encoder_kwargs` overrides its fields (CAV-MAE's constructor arguments, or
the HF config's fields). `model.encoder_path` is a local Hugging Face folder (`save_pretrained`
of an `ASTModel`/`ASTForAudioClassification`, or of a Whisper model, with its
`preprocessor_config.json`): weights, config and feature settings all come from it.

Each kind uses the input features its checkpoint was trained with and meets `encoder.Encoder`'s
contract (see there). To add a kind: one subclass of `Encoder` here, with its sizes (`presets`),
and one line in `ENCODERS`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders.audio import SAMPLE_RATE
from interleave.encoders.cavmae import PRESETS as CAVMAE_PRESETS
from interleave.encoders.cavmae import CavMaeEncoder, Encoder, pool_frames
from interleave.errors import InterleaveError


def _json_settings(extractor: Any) -> dict[str, Any]:
    """A feature extractor's settings, without derived arrays (Whisper's mel filters follow from the rest)."""
    return {k: v for k, v in extractor.to_dict().items() if not isinstance(v, np.ndarray)}


def _from_folder(path: str, what: str) -> Path:
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise InterleaveError(f"model.encoder_path: {folder} is not a Hugging Face {what} folder (no config.json)")
    if not (folder / "preprocessor_config.json").is_file():
        raise InterleaveError(f"model.encoder_path: {folder} has no preprocessor_config.json, so the "
                              f"{what}'s input features are unknown (save its feature extractor there too)")
    return folder


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
        "tiny": dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                     frequency_stride=16, time_stride=16),
    }

    def __init__(self, path: str | None = None, config: dict | None = None,
                 audio_tokens: int = NUM_AUDIO_TOKENS, frozen: bool = True) -> None:
        from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

        super().__init__(audio_tokens, frozen)
        if path:
            folder = _from_folder(path, "AST")
            self.model = ASTModel.from_pretrained(folder)
            self.extractor = ASTFeatureExtractor.from_pretrained(folder)
        else:
            self.model = ASTModel(ASTConfig(**(config or {})))
            cfg = self.model.config
            self.extractor = ASTFeatureExtractor(num_mel_bins=cfg.num_mel_bins, max_length=cfg.max_length)
        cfg = self.model.config
        self.width = cfg.hidden_size
        self.grid = ((cfg.num_mel_bins - cfg.patch_size) // cfg.frequency_stride + 1,
                     (cfg.max_length - cfg.patch_size) // cfg.time_stride + 1)
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
        return {"kind": self.kind, "features": _json_settings(self.extractor), "tokens": self.audio_tokens,
                "pooling": "drop 2 special tokens; mean over frequency; adaptive average over time"}


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
        "tiny": dict(d_model=32, encoder_layers=1, encoder_attention_heads=4, encoder_ffn_dim=64,
                     decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64),
    }

    def __init__(self, path: str | None = None, config: dict | None = None,
                 audio_tokens: int = NUM_AUDIO_TOKENS, frozen: bool = True) -> None:
        from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        super().__init__(audio_tokens, frozen)
        if path:
            folder = _from_folder(path, "Whisper")
            self.model = WhisperModel.from_pretrained(folder).get_encoder()  # the decoder is dropped here
            self.extractor = WhisperFeatureExtractor.from_pretrained(folder)
        else:
            cfg = WhisperConfig(**(config or {}))
            self.model = WhisperEncoder(cfg)
            self.extractor = WhisperFeatureExtractor(feature_size=cfg.num_mel_bins)
        self.width = self.model.config.d_model
        self._freeze()

    def inputs_from_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        out = self.extractor(waveform.numpy(), sampling_rate=SAMPLE_RATE, return_tensors="pt",
                             return_attention_mask=True)
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
        return {"kind": self.kind, "features": _json_settings(self.extractor), "tokens": self.audio_tokens,
                "pooling": "frames covering the clip only; adaptive average over time"}


def cavmae(path: str | None = None, config: dict | None = None,
           audio_tokens: int = NUM_AUDIO_TOKENS, frozen: bool = True) -> CavMaeEncoder:
    """CAV-MAE (`interleave.encoders.cavmae.CavMaeEncoder`) with the registry's arguments."""
    if path:
        raise InterleaveError("model.encoder_path is for ast and whisper; CAV-MAE's weights come from "
                              "model.encoder_checkpoint or model.ltu_checkpoint")
    return CavMaeEncoder(**(config or {}), audio_tokens=audio_tokens, frozen=frozen)


# kind -> (its sizes, its constructor(path, config, audio_tokens, frozen))
ENCODERS: dict[str, tuple[dict[str, dict], Callable[..., Encoder]]] = {
    "cavmae": (CAVMAE_PRESETS, cavmae),
    "ast": (ASTEncoder.presets, ASTEncoder),
    "whisper": (WhisperAudioEncoder.presets, WhisperAudioEncoder),
}
DEFAULT_SIZE = {"cavmae": "cavmae", "ast": "base", "whisper": "base"}


def _check_fields(kind: str, config: dict) -> None:
    """HF configs accept any keyword silently; a misspelt or another kind's field is refused here."""
    from transformers import ASTConfig, WhisperConfig

    known = set((ASTConfig if kind == "ast" else WhisperConfig)().to_dict())
    unknown = sorted(set(config) - known)
    if unknown:
        raise InterleaveError(f"model.encoder_kwargs: {unknown} are not fields of the {kind} encoder's config "
                              "(left from another encoder kind?)")


def parse_spec(spec: str) -> tuple[str, str]:
    """`KIND[:SIZE]` -> (kind, size); the bare CAV-MAE sizes `small` and `tiny` keep their old meaning."""
    kind, _, size = spec.partition(":")
    if not size and kind in CAVMAE_PRESETS and kind != "cavmae":
        kind, size = "cavmae", kind
    if kind not in ENCODERS:
        raise InterleaveError(f"unknown model.encoder {spec!r}: write KIND[:SIZE], KIND one of {sorted(ENCODERS)}")
    size = size or DEFAULT_SIZE[kind]
    if size not in ENCODERS[kind][0]:
        raise InterleaveError(f"unknown size {size!r} for encoder {kind!r}; choose one of {sorted(ENCODERS[kind][0])}")
    return kind, size


def build_encoder(spec: str = "cavmae", path: str | None = None, overrides: dict | None = None,
                  audio_tokens: int = NUM_AUDIO_TOKENS, frozen: bool = True) -> Encoder:
    """The encoder `model.encoder` names: from `path` (a local HF folder) or random weights of the size
    with `overrides` (random weights come from the caller's seed)."""
    kind, size = parse_spec(spec)
    if path and overrides:
        raise InterleaveError("set model.encoder_path or model.encoder_kwargs, not both: "
                              "the folder's config decides the size")
    config = None if path else {**ENCODERS[kind][0][size], **(overrides or {})}
    if kind != "cavmae" and config:
        _check_fields(kind, config)
    return ENCODERS[kind][1](path=path, config=config, audio_tokens=audio_tokens, frozen=frozen)
