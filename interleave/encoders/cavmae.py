"""CAV-MAE's audio branch and LTU's pooling, the default encoder kind (`model.encoder: cavmae`).

It meets `interleave.encoders.base.Encoder`'s contract, as AST and Whisper do (`interleave.encoders.ast`,
`.whisper`; the registry the config chooses from is the package, `interleave.encoders`). CAV-MAE:
fbank [B, 1024, 128] -> 16x16 patches (8 freq x 64 time = 512) -> ViT blocks -> [B, 512, D]
-> mean over frequency, average pairs in time -> [B, 32, D] / 50 (LTU's pooling; another
`audio_tokens` averages the 64 time columns into that many equal spans instead, see `pool_frames`).

Parameter names follow CAV-MAE (`patch_embed_a.proj`, `pos_embed_a`, `modality_a`, `blocks_a`,
`blocks_u`, `norm_a`) so CAV-MAE's and LTU's released weights load without renaming. Every block
carries CAV-MAE's three norm pairs (`norm1`, `norm1_a`, `norm1_v`, ...): the modality-specific
blocks use the plain ones, the shared blocks the `_a` ones; the `_v` ones exist only so the keys match.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders import audio
from interleave.encoders.audio import NUM_MEL_BINS, TARGET_FRAMES, Channel, WaveformTransform
from interleave.encoders.base import Encoder, pool_frames
from interleave.errors import InterleaveError

PATCH = 16
FREQ_PATCHES = NUM_MEL_BINS // PATCH  # 8
TIME_PATCHES = TARGET_FRAMES // PATCH  # 64
POOL_SCALE = 50.0  # LTU divides the pooled features by 50 before the projector

PRESETS: dict[str, dict] = {
    # CAV-MAE / LTU: ViT-Base, 11 audio-specific blocks + 1 shared block.
    "cavmae": dict(embed_dim=768, depth=11, shared_depth=1, num_heads=12, mlp_ratio=4.0),
    # The CPU demo: same structure, a fraction of the cost.
    "small": dict(embed_dim=192, depth=2, shared_depth=1, num_heads=3, mlp_ratio=4.0),
    # Unit tests.
    "tiny": dict(embed_dim=32, depth=1, shared_depth=1, num_heads=4, mlp_ratio=1.0),
}


def encoder_preset(name: str) -> dict:
    """Keyword arguments of a named encoder size (`cavmae`, `small`, `tiny`)."""
    if name not in PRESETS:
        raise ValueError(f"unknown encoder preset {name!r}; choose one of {sorted(PRESETS)}")
    return dict(PRESETS[name])


def sincos_pos_embed_2d(dim: int, rows: int, cols: int) -> torch.Tensor:
    """MAE's fixed 2-D sin-cos position embedding, [rows * cols, dim], row-major like the patches."""
    if dim % 4:
        raise ValueError(f"embed_dim must be divisible by 4 for the 2-D sin-cos embedding, got {dim}")
    grid_w, grid_h = np.meshgrid(np.arange(cols, dtype=np.float64), np.arange(rows, dtype=np.float64))

    def one_axis(positions: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4.0))
        angles = np.einsum("m,d->md", positions.reshape(-1), omega)
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    # MAE's order: the first half encodes the column (w), the second half the row (h).
    table = np.concatenate([one_axis(grid_w), one_axis(grid_h)], axis=1)
    return torch.from_numpy(table).float()


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm ViT block with CAV-MAE's per-modality LayerNorms."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.norm1_a, self.norm1_v = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2, self.norm2_a, self.norm2_v = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, modality: str | None = None) -> torch.Tensor:
        norm1, norm2 = {None: (self.norm1, self.norm2), "a": (self.norm1_a, self.norm2_a)}[modality]
        x = x + self.attn(norm1(x))
        return x + self.mlp(norm2(x))


class CavMaeEncoder(Encoder):
    """CAV-MAE audio branch + LTU pooling: LTU fbank [B, 1024, 128] -> features [B, audio_tokens, embed_dim].

    Inputs are `interleave.encoders.audio.load_fbank`'s (LTU's Kaldi fbank and normalisation).
    Random init follows CAV-MAE (xavier-uniform linears and patch conv, N(0, 0.02) modality token).
    """

    kind = "cavmae"

    def __init__(
        self,
        embed_dim: int = 768,
        depth: int = 11,
        shared_depth: int = 1,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        frozen: bool = True,
        audio_tokens: int = NUM_AUDIO_TOKENS,
    ):
        super().__init__(audio_tokens, frozen)
        self.embed_dim = self.width = embed_dim
        self.patch_embed_a = PatchEmbed(embed_dim)
        self.pos_embed_a = nn.Parameter(
            sincos_pos_embed_2d(embed_dim, FREQ_PATCHES, TIME_PATCHES).unsqueeze(0), requires_grad=False
        )
        self.modality_a = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.blocks_a = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.blocks_u = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(shared_depth))
        self.norm_a = nn.LayerNorm(embed_dim)
        self._init_weights()
        self._freeze()

    def _init_weights(self) -> None:
        w = self.patch_embed_a.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed_a.proj.bias)
        nn.init.normal_(self.modality_a, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def inputs_from_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        return audio.fbank_from_waveform(waveform)

    def load_inputs(
        self, path: str | os.PathLike[str], channel: Channel = "first", transform: WaveformTransform | None = None
    ) -> torch.Tensor:
        return audio.load_fbank(path, channel, transform)

    def settings(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "frames": audio.TARGET_FRAMES,
            "mel_bins": audio.NUM_MEL_BINS,
            "norm": [audio.NORM_MEAN, audio.NORM_STD],
            "frame_ms": [audio.FRAME_LENGTH_MS, audio.FRAME_SHIFT_MS],
            "tokens": self.audio_tokens,
            "pool_scale": POOL_SCALE,
        }

    def forward_features(self, fbank: torch.Tensor) -> torch.Tensor:
        """fbank [B, 1024, 128] -> patch features [B, 512, D], freq-major like CAV-MAE."""
        if fbank.dim() != 3 or tuple(fbank.shape[1:]) != (TARGET_FRAMES, NUM_MEL_BINS):
            raise ValueError(f"expected fbank [B, {TARGET_FRAMES}, {NUM_MEL_BINS}], got {list(fbank.shape)}")
        x = self.patch_embed_a(fbank.unsqueeze(1).transpose(2, 3))  # [B, 1, 128 freq, 1024 time]
        x = x + self.pos_embed_a + self.modality_a
        for block in self.blocks_a:
            x = block(x)
        for block in self.blocks_u:
            x = block(x, "a")
        return self.norm_a(x)

    def encode(self, fbank: torch.Tensor) -> torch.Tensor:
        return pool_to_tokens(self.forward_features(fbank), self.audio_tokens)


def pool_to_tokens(features: torch.Tensor, audio_tokens: int = NUM_AUDIO_TOKENS) -> torch.Tensor:
    """LTU's pooling: [B, 512, D] -> mean over the 8 frequency rows, average time pairs -> [B, 32, D] / 50.

    Another `audio_tokens` pools the 64 time columns with `pool_frames` instead of pairs (still / 50).
    """
    b, n, d = features.shape
    if n != FREQ_PATCHES * TIME_PATCHES:
        raise ValueError(f"expected {FREQ_PATCHES * TIME_PATCHES} patches, got {n}")
    x = features.reshape(b, FREQ_PATCHES, TIME_PATCHES, d).mean(dim=1)
    x = F.avg_pool2d(x, (2, 1)) if audio_tokens == NUM_AUDIO_TOKENS else pool_frames(x, audio_tokens)
    return x / POOL_SCALE


def load_cavmae_state_dict(
    encoder: CavMaeEncoder, state_dict: dict[str, torch.Tensor], prefix: str = ""
) -> tuple[list[str], list[str]]:
    """Copy the audio-branch weights under `prefix` (e.g. `module.` in CAV-MAE's checkpoints) into `encoder`.

    Keys of other branches (visual, decoder) are ignored. Returns (loaded keys, missing keys);
    raises if a needed key is missing or a shape differs, naming the key.
    """
    own = encoder.state_dict()
    picked = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix) and k[len(prefix) :] in own}
    missing = sorted(set(own) - set(picked))
    if missing:
        raise KeyError(
            f"audio encoder weights missing under prefix {prefix!r}: {missing[:8]}"
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        )
    for key, value in picked.items():
        if value.shape != own[key].shape:
            raise ValueError(
                f"shape mismatch for {prefix}{key}: checkpoint {list(value.shape)}, encoder {list(own[key].shape)}"
            )
    encoder.load_state_dict(picked, strict=True)
    return sorted(picked), missing


def cavmae_encoder(
    path: str | None = None, config: dict | None = None, audio_tokens: int = NUM_AUDIO_TOKENS, frozen: bool = True
) -> CavMaeEncoder:
    """CAV-MAE (`interleave.encoders.cavmae.CavMaeEncoder`) with the registry's arguments."""
    if path:
        raise InterleaveError(
            "model.encoder_path is for ast and whisper; CAV-MAE's weights come from "
            "model.encoder_checkpoint or model.ltu_checkpoint"
        )
    return CavMaeEncoder(**(config or {}), audio_tokens=audio_tokens, frozen=frozen)
