"""A checkpoint's trained state that fits a config's model: the one check before loading a training
checkpoint into a model built from a config (`interleave playground`, `interleave frontier`).

`fitting_state(model, checkpoint, path)` takes what `interleave.checkpoints.load_weights` read from
`path` and returns its `state_dict` once every tensor fits the model, else raises `CheckpointMismatch`
naming the file, what does not fit and the model settings that differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from interleave.errors import InterleaveError
from interleave.model.pretrained import released_mismatch


class CheckpointMismatch(InterleaveError):
    """A training checkpoint that does not fit the config's model (or is no training checkpoint)."""


_OPTIMIZER_SETTINGS = ("learning_rate", "warmup_steps", "weight_decay", "lr_schedule")
_SCALING_SETTINGS = ("lora_alpha", "lora_r")  # the adapter's scaling is lora_alpha / lora_r


def fitting_state(model: Any, checkpoint: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a training checkpoint (`load_weights`' result, read from `path`) once every
    tensor is checked to fit `model` (an `AudioLLM` the config built): same names and shapes, every
    trainable weight present, the same LoRA scaling (`lora_alpha`, `lora_r`) where the checkpoint
    states its settings, the same released folder (`model.pretrained`) where either has one; else
    a CheckpointMismatch naming the file, what does not fit and the
    model settings that differ. The playground and `interleave frontier` check their checkpoints with it."""
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointMismatch(f"{path}: not a training checkpoint (it holds no state_dict)")
    own = model.state_dict()
    unknown = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in state
        if k in own and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    missing = sorted(set(model.trainable_parameters()) - set(state))
    saved = checkpoint.get("hyper_parameters") or {}
    saved = saved if isinstance(saved, dict) else {}
    differ = [
        f"{k}: {v!r} here, {saved[k]!r} in the checkpoint"
        for k, v in dict(model.hparams).items()
        if k in saved and saved[k] != v and k not in _OPTIMIZER_SETTINGS
    ]
    # Weights of the right shapes still mean something else under another scaling (lora_alpha / r).
    scaling = [k for k in _SCALING_SETTINGS if k in saved and saved[k] != model.hparams.get(k)]
    if (released := released_mismatch(getattr(model, "released", None), checkpoint)) is not None:
        raise CheckpointMismatch(f"{str(path).strip()} {released}")
    if unknown or shapes or missing or scaling:
        problems = (
            ([f"{len(shapes)} weight(s) of another shape, e.g. {shapes[0]}"] if shapes else [])
            + ([f"{len(unknown)} weight(s) the model lacks, e.g. {unknown[0]}"] if unknown else [])
            + ([f"{len(missing)} trainable weight(s) missing, e.g. {missing[0]}"] if missing else [])
            + (
                [f"its LoRA update was trained at another scale ({', '.join(scaling)})"]
                if scaling and not shapes
                else []
            )
        )
        raise CheckpointMismatch(
            f"{str(path).strip()} does not fit the config's model: {'; '.join(problems)}"
            + (f" (model settings that differ: {'; '.join(differ[:4])})" if differ else "")
        )
    return state
