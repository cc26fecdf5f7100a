"""Qwen2-Audio's audio tower from transformers, as an encoder kind (`model.encoder: qwen2_audio`).

The tower is the released model's own (`Qwen2AudioEncoder`: Whisper-large-v3's convolutions and
transformer, an average pool of 2, a LayerNorm), run as `Qwen2AudioForConditionalGeneration` runs
it: on the 128-bin log-mel of the clip padded to 30 s, with the padding masked out of attention.
It is not pooled to a fixed count: a clip gives as many positions as the tower's frame rate makes
of it, 25 per second (a 10-s clip 250, at most 750 for 30 s; longer clips are cut at 30 s by the
feature extractor), which is what the released LLM was trained to read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders.audio import SAMPLE_RATE
from interleave.encoders.base import Encoder, extractor_settings
from interleave.errors import InterleaveError

MODEL_TYPE = "qwen2_audio"


def folder_config(path: str | Path, what: str = "model.encoder_path", model_type: str = MODEL_TYPE) -> Any:
    """The config of a released folder of `model_type` (Qwen2-Audio's by default); any other folder
    is refused by name."""
    from transformers import AutoConfig

    folder = Path(path).expanduser()
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise InterleaveError(f"{what}: {folder} is not a Hugging Face model folder (no config.json)")
    try:
        found = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, AttributeError) as err:
        raise InterleaveError(f"{what}: {config_file} is not a JSON object ({err})") from None
    if found != model_type:
        raise InterleaveError(f"{what}: {folder} holds a {found!r} model, not a {model_type!r} one")
    return AutoConfig.from_pretrained(folder)


def load_tower(tower_class: type, config_class: type, model_type: str, path: str | None, config: dict | None) -> tuple:
    """(tower, its Whisper feature extractor) of a released folder of `model_type` (the tower's
    weights under `audio_tower.`, read in place; the folder's extractor settings), or, without a
    folder, a random-weight tower of `config` with a default extractor of its mel bins. Qwen2-Audio's
    and Audio Flamingo 3's towers are of one design and load alike."""
    from transformers import WhisperFeatureExtractor

    if not path:
        tower = tower_class(config_class(**(config or {})))
        return tower, WhisperFeatureExtractor(feature_size=tower.config.num_mel_bins)
    folder = Path(path).expanduser()
    full = folder_config(path, model_type=model_type)
    tower = tower_class.from_pretrained(folder, config=full.audio_config, key_mapping={r"^audio_tower\.": ""})
    try:
        extractor = WhisperFeatureExtractor.from_pretrained(folder)
    except OSError as err:
        raise InterleaveError(
            f"model.pretrained: {path} has no feature extractor settings "
            f"(preprocessor_config.json or processor_config.json): {err}"
        ) from None
    return tower, extractor


def output_lengths(mel_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(frames after the strided convolution, positions after the pool) of clips of `mel_frames`
    log-mel frames: `Qwen2AudioEncoder._get_feat_extract_output_lengths`' arithmetic."""
    frames = (mel_frames - 1) // 2 + 1
    return frames, (frames - 2) // 2 + 1


class Qwen2AudioTower(Encoder):
    """Qwen2-Audio's audio tower (`transformers.models.qwen2_audio.Qwen2AudioEncoder`).

    Inputs: `WhisperFeatureExtractor`'s 128-bin log-mel `[128, 3000]` (the clip padded to 30 s,
    longer clips cut there) with one more row, the extractor's frame mask (1 on the clip's frames):
    `[129, 3000]`. Output: `[B, 750, width]`, of which a clip's first `positions(inputs)` rows are
    its own (25 per second of clip); the rest is padding that no span reads. The tower attends only
    to the frames that cover the clip, as the released model does, so a clip encoded alone equals
    the same clip beside a longer one.

    Args:
        path: a released Qwen2-Audio folder (`model.pretrained` sets it): the tower's weights are
            read from its safetensors where they lie, its feature extractor from its processor files.
        config: `Qwen2AudioEncoderConfig` fields for random weights (a size of `presets`).
        audio_tokens: unused by this kind (a clip's span follows its length); kept for the registry.
        frozen: no gradient and always in eval mode.
    """

    kind = MODEL_TYPE
    heard_seconds = 30.0  # the extractor pads or cuts every clip to 30 s
    variable_length = True
    presets = {
        # Qwen2-Audio-7B's tower (random weights; the released one comes from model.pretrained).
        "base": dict(
            num_mel_bins=128, d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120
        ),
        "tiny": dict(num_mel_bins=128, d_model=32, encoder_layers=1, encoder_attention_heads=4, encoder_ffn_dim=64),
    }

    def __init__(
        self,
        path: str | None = None,
        config: dict | None = None,
        audio_tokens: int = NUM_AUDIO_TOKENS,
        frozen: bool = True,
    ) -> None:
        from transformers import Qwen2AudioEncoderConfig
        from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

        super().__init__(audio_tokens, frozen)
        self.model, self.extractor = load_tower(Qwen2AudioEncoder, Qwen2AudioEncoderConfig, MODEL_TYPE, path, config)
        self.width = self.model.config.d_model
        self.max_positions = output_lengths(torch.tensor(self.extractor.nb_max_frames))[1].item()
        self._freeze()

    def inputs_from_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        out = self.extractor(
            waveform.numpy(),
            sampling_rate=SAMPLE_RATE,
            return_tensors="pt",
            return_attention_mask=True,
            padding="max_length",
        )
        mels, mask = out["input_features"][0], out["attention_mask"][0]
        return torch.cat([mels, mask[None].to(mels.dtype)]).to(torch.float32)

    def positions_for_samples(self, samples: int) -> int:
        """A clip's count of positions from its length: the extractor's frame mask covers
        ceil(samples / hop) frames, at most 3000 (30 s)."""
        frames = min(-(-samples // self.extractor.hop_length), self.extractor.nb_max_frames)
        return int(output_lengths(torch.tensor(frames))[1])

    def positions(self, inputs: torch.Tensor) -> torch.Tensor:
        """Each clip's count of audio positions, from its frame mask (the last row of its inputs)."""
        return output_lengths(inputs[:, -1].sum(dim=1).round().long())[1]

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        mels, mel_mask = inputs[:, :-1], inputs[:, -1]
        frames, _ = output_lengths(mel_mask.sum(dim=1).round().long())
        width = mels.shape[-1] // 2  # frames after the strided convolution: 1500 for 30 s
        keep = torch.arange(width, device=inputs.device)[None] < frames[:, None]
        mask = create_bidirectional_mask(
            config=self.model.config,
            attention_mask=keep.long(),
            inputs_embeds=torch.zeros(len(keep), width, 1, device=inputs.device, dtype=self.model.conv1.weight.dtype),
        )
        return self.model(mels.to(self.model.conv1.weight.dtype), attention_mask=mask).last_hidden_state

    def settings(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "features": extractor_settings(self.extractor),
            "positions": "25 per second of clip (the tower's own rate), padding masked",
        }
