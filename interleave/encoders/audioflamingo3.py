"""Audio Flamingo 3's audio tower from transformers, as an encoder kind (`model.encoder: audioflamingo3`).

The tower is the released model's own (`AudioFlamingo3Encoder`: Qwen2-Audio's design, Whisper-large-v3's
convolutions and transformer, an average pool of 2, a LayerNorm, the padding masked), run as
`AudioFlamingo3ForConditionalGeneration` runs it. AF3 hears long clips in windows: a clip is cut
into 30-s windows (up to 20, ten minutes; the rest is cut off as the processor cuts it), each
window is turned into Whisper's 128-bin log-mel padded to 30 s on its own, the tower reads each
window with its padding masked, and a clip's windows are joined into ONE span: 25 positions per
second of clip (a 34-s clip: 750 + 100 = 850). Nothing is pooled further: the released LLM reads
the tower's own rate.
"""

from __future__ import annotations

from typing import Any

import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders.audio import SAMPLE_RATE
from interleave.encoders.base import Encoder, extractor_settings
from interleave.encoders.qwen2_audio import load_tower, output_lengths

MODEL_TYPE = "audioflamingo3"
WINDOW_SECONDS = 30  # the feature extractor's chunk length: one window
MAX_WINDOWS = 20  # the processor's max_audio_len of 600 s


class AudioFlamingo3Tower(Encoder):
    """Audio Flamingo 3's audio tower (`transformers.models.audioflamingo3.AudioFlamingo3Encoder`).

    Inputs: a clip's windows, time-major and joined: `[windows * 3000, 129]`, each 3000-frame block
    one window's `WhisperFeatureExtractor` log-mel (128 bins, the window padded to 30 s) with its
    frame mask as the last column (1 on the frames that cover the window's audio). Clips of
    different lengths stack by padding whole windows of zeros, which the mask leaves unread.
    Output: `[B, max positions, width]`, a clip's first `positions(inputs)` rows its own span (its
    windows' positions one after another, 25 per second of clip); the rest is padding.

    Args:
        path: a released Audio Flamingo 3 folder (`model.pretrained` sets it): the tower's weights
            are read from its safetensors where they lie, its feature extractor from its processor files.
        config: `AudioFlamingo3EncoderConfig` fields for random weights (a size of `presets`).
        audio_tokens: unused by this kind (a clip's span follows its length); kept for the registry.
        frozen: no gradient and always in eval mode.
    """

    kind = MODEL_TYPE
    heard_seconds = float(WINDOW_SECONDS * MAX_WINDOWS)  # 20 windows of 30 s
    variable_length = True
    presets = {
        # AF3's tower (random weights; the released one comes from model.pretrained).
        "base": dict(
            num_mel_bins=128, hidden_size=1280, num_hidden_layers=32, num_attention_heads=20, intermediate_size=5120
        ),
        "tiny": dict(
            num_mel_bins=128, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64
        ),
    }

    def __init__(
        self,
        path: str | None = None,
        config: dict | None = None,
        audio_tokens: int = NUM_AUDIO_TOKENS,
        frozen: bool = True,
    ) -> None:
        from transformers import AudioFlamingo3EncoderConfig
        from transformers.models.audioflamingo3.modeling_audioflamingo3 import AudioFlamingo3Encoder

        super().__init__(audio_tokens, frozen)
        self.model, self.extractor = load_tower(
            AudioFlamingo3Encoder, AudioFlamingo3EncoderConfig, MODEL_TYPE, path, config
        )
        self.width = self.model.config.hidden_size
        self.window_samples = int(self.extractor.chunk_length * SAMPLE_RATE)
        self.window_frames = int(self.extractor.nb_max_frames)  # 3000
        self.window_positions = int(output_lengths(torch.tensor(self.window_frames))[1])  # 750
        self.max_positions = MAX_WINDOWS * self.window_positions
        self._freeze()

    def windows(self, samples: int) -> list[int]:
        """The sample count of each window of a clip of `samples` 16-kHz samples (the processor's cut)."""
        count = min(max(1, -(-samples // self.window_samples)), MAX_WINDOWS)
        kept = min(samples, count * self.window_samples)
        return [min(self.window_samples, kept - k * self.window_samples) for k in range(count)]

    def inputs_from_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        wave = waveform.numpy()
        chunks, start = [], 0
        for size in self.windows(len(wave)):
            chunks.append(wave[start : start + size])
            start += size
        out = self.extractor(
            chunks, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True, padding="max_length"
        )
        mels, mask = out["input_features"], out["attention_mask"]  # [W, 128, 3000], [W, 3000]
        joined = torch.cat([mels, mask[:, None].to(mels.dtype)], dim=1)  # [W, 129, 3000]
        return joined.transpose(1, 2).reshape(-1, joined.shape[1]).to(torch.float32)  # [W * 3000, 129]

    def _window_frames(self, inputs: torch.Tensor) -> torch.Tensor:
        """Each clip's windows' frame counts [B, W] from the mask column."""
        mask = inputs[..., -1]
        return mask.reshape(len(inputs), -1, self.window_frames).sum(dim=2).round().long()

    def positions_for_samples(self, samples: int) -> int:
        """A clip's count of positions from its length: each window's frame mask covers
        ceil(window samples / hop) frames; the windows' positions add up."""
        frames = torch.tensor([-(-n // self.extractor.hop_length) for n in self.windows(samples)])
        return int(output_lengths(frames)[1].sum())

    def positions(self, inputs: torch.Tensor) -> torch.Tensor:
        """Each clip's count of audio positions: its windows' positions added (0 for an empty window)."""
        frames = self._window_frames(inputs)
        return torch.where(frames > 0, output_lengths(frames)[1], 0).sum(dim=1)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        frames = self._window_frames(inputs)  # [B, W]
        windows = inputs.reshape(len(inputs), frames.shape[1], self.window_frames, -1)
        used = frames > 0
        heard = windows[used]  # [N, 3000, 129]: the windows that hold audio, clip by clip
        mels, mask = heard[..., :-1].transpose(1, 2), heard[..., -1]
        dtype = self.model.conv1.weight.dtype
        out = self.model(mels.to(dtype), input_features_mask=mask.round().long()).last_hidden_state
        counts = torch.where(used, output_lengths(frames)[1], 0)  # [B, W]
        # each clip's windows in order, their valid rows one after another
        rows, k = [], 0
        for clip in range(len(inputs)):
            pieces = []
            for n in counts[clip][used[clip]].tolist():
                pieces.append(out[k, :n])
                k += 1
            rows.append(torch.cat(pieces) if pieces else out.new_zeros(0, self.width))
        longest = max(1, max(len(r) for r in rows))
        return torch.stack([torch.nn.functional.pad(r, (0, 0, 0, longest - len(r))) for r in rows])

    def settings(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "features": extractor_settings(self.extractor),
            "positions": "25 per second of clip in 30-s windows (up to 20) joined into one span, padding masked",
        }
