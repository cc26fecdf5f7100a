"""The projector kinds: encoder features [.., width] -> LLM embeddings [.., hidden] (`model.projector`).

`ltu` (the default): LTU's LayerNorm without affine weights, then a Linear (`audio_proj.1`, as LTU
names it). `linear`: one Linear (`audio_proj.0`), Qwen2-Audio's `multi_modal_projector`. `mlp`:
Linear -> GELU -> Linear (`audio_proj.0`, `audio_proj.2`; the second Linear keeps the LLM's width),
Audio Flamingo 3's `multi_modal_projector`. `model.pretrained` loads a family's released weights
into its kind. The projector always trains.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

ProjectorKind = Literal["ltu", "linear", "mlp"]
PROJECTORS: tuple[str, ...] = ("ltu", "linear", "mlp")


def build_projector(kind: ProjectorKind, width: int, hidden: int) -> nn.Sequential:
    """The projector of `kind` from an encoder of `width` to an LLM of `hidden` (random weights)."""
    if kind == "ltu":
        return nn.Sequential(nn.LayerNorm(width, elementwise_affine=False), nn.Linear(width, hidden))
    if kind == "linear":
        return nn.Sequential(nn.Linear(width, hidden))
    if kind == "mlp":  # transformers' ACT2FN["gelu"] is the exact GELU, as nn.GELU()
        return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, hidden))
    raise ValueError(f"unknown model.projector {kind!r}; choose one of {list(PROJECTORS)}")


def linear_layer(projector: nn.Sequential) -> nn.Linear:
    """The projector's Linear (its last layer in every kind): its weights' dtype is the projector's."""
    layer = projector[-1]
    assert isinstance(layer, nn.Linear)
    return layer


def projector_dtype(projector: nn.Sequential) -> torch.dtype:
    return linear_layer(projector).weight.dtype
