"""interleave.model.fitting: a training checkpoint's state is taken only when every tensor fits the
config's model (names, shapes, every trainable weight, the LoRA scaling); otherwise one
`CheckpointMismatch` (an `InterleaveError`, no tool's own error) names the file, what does not fit
and the settings that differ."""

from __future__ import annotations

import pytest
import torch

from interleave.errors import InterleaveError
from interleave.model.fitting import CheckpointMismatch, fitting_state
from interleave.model.module import AudioLLM


def checkpoint(model: AudioLLM, scale: float = 1.0, **hparams) -> dict:
    state = {k: v.detach().clone() * scale for k, v in model.trainable_parameters().items()}
    return {"state_dict": state, "hyper_parameters": {**dict(model.hparams), **hparams}}


@pytest.fixture()
def model(tiny_model_kwargs) -> AudioLLM:
    return AudioLLM(**tiny_model_kwargs)


def test_a_fitting_checkpoint_gives_its_state_whatever_its_optimizer_settings(model):
    saved = checkpoint(model, 2.0, learning_rate=0.5, warmup_steps=7)
    state = fitting_state(model, saved, "run/last.ckpt")
    assert state is saved["state_dict"] and set(state) == set(model.trainable_parameters())


def test_another_shape_another_scale_a_missing_weight_or_no_state_dict_is_refused_by_name(model, tiny_model_kwargs):
    other = AudioLLM(**{**tiny_model_kwargs, "lora_r": 2})
    with pytest.raises(
        CheckpointMismatch,
        match=r"^other.ckpt does not fit the config's model: .*another shape"
        r".*\(model settings that differ: lora_r: 4 here, 2 in the checkpoint",
    ):
        fitting_state(model, checkpoint(other), "other.ckpt")
    scaled = checkpoint(model, lora_alpha=2 * model.hparams["lora_alpha"])
    with pytest.raises(CheckpointMismatch, match=r"trained at another scale \(lora_alpha\)"):
        fitting_state(model, scaled, "scaled.ckpt")
    partial = checkpoint(model)
    partial["state_dict"].pop(next(iter(partial["state_dict"])))
    with pytest.raises(CheckpointMismatch, match=r"1 trainable weight\(s\) missing"):
        fitting_state(model, partial, "partial.ckpt")
    with pytest.raises(CheckpointMismatch, match=r"^weights.pt: not a training checkpoint \(it holds no state_dict\)"):
        fitting_state(model, {"encoder": torch.zeros(1)}, "weights.pt")
    assert issubclass(CheckpointMismatch, InterleaveError)  # one error line and exit status 2 in every tool
