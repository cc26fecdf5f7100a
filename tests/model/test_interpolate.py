"""interleave.model.interpolate: the adapter is interpolated in its effect (the merged low-rank update equals
the one computed from the factors), the projector linearly, frozen weights never change, and both
ends are the start and the end model bit for bit."""

from __future__ import annotations

import pytest
import torch

from interleave.errors import InterleaveError
from interleave.model.interpolate import END, Interpolation, lora_layers
from interleave.model.module import AudioLLM


def random_state(model: AudioLLM, seed: int) -> dict[str, torch.Tensor]:
    """A trained-looking state: every trainable weight random (LoRA's B nonzero)."""
    generator = torch.Generator().manual_seed(seed)
    return {k: 0.1 * torch.randn(v.shape, generator=generator) for k, v in model.trainable_parameters().items()}


@pytest.fixture()
def model(tiny_model_kwargs):
    torch.manual_seed(0)
    return AudioLLM(**tiny_model_kwargs).eval()


def frozen(model: AudioLLM, trainable: set[str]) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters() if k not in trainable and END not in k}


def applied_update(layer: torch.nn.Module) -> torch.Tensor:
    """ΔW as the module applies it: its output on the identity minus its base layer's, transposed."""
    eye = torch.eye(layer.base_layer.in_features)
    with torch.no_grad():
        return (layer(eye) - layer.base_layer(eye)).T


def factor_update(state: dict[str, torch.Tensor], name: str, scaling: float) -> torch.Tensor:
    return scaling * state[f"{name}.lora_B.default.weight"] @ state[f"{name}.lora_A.default.weight"]


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
def test_the_update_is_interpolated_in_its_effect_the_projector_linearly_the_frozen_weights_untouched(model, alpha):
    trainable = set(model.trainable_parameters())
    untouched = frozen(model, trainable)
    start, end = random_state(model, 1), random_state(model, 2)
    scaling = model.hparams.lora_alpha / model.hparams.lora_r
    interpolation = Interpolation(model, start, end)
    interpolation.set(alpha)
    layers = lora_layers(model)
    assert layers and set(interpolation.delta_weights()) == set(layers)
    for name, layer in layers.items():
        reference = (1 - alpha) * factor_update(start, name, scaling) + alpha * factor_update(end, name, scaling)
        torch.testing.assert_close(applied_update(layer), reference, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(interpolation.delta_weights()[name], reference, rtol=1e-5, atol=1e-6)
        # ...which is not what interpolating the factors one by one gives
        mixed = {k: (1 - alpha) * start[k] + alpha * end[k] for k in start}
        if 0 < alpha < 1:
            assert not torch.allclose(applied_update(layer), factor_update(mixed, name, scaling), atol=1e-4)
    for key in ("audio_proj.1.weight", "audio_proj.1.bias"):
        torch.testing.assert_close(model.state_dict()[key], (1 - alpha) * start[key] + alpha * end[key])
    assert frozen(model, trainable).keys() == untouched.keys()
    assert all(torch.equal(v, untouched[k]) for k, v in frozen(model, trainable).items())


def test_the_ends_are_the_start_and_the_end_model_bit_for_bit(model, tiny_model_kwargs):
    start, end = random_state(model, 1), random_state(model, 2)
    torch.manual_seed(0)
    plain = AudioLLM(**tiny_model_kwargs).eval()
    ids = torch.randint(3, 50, (2, 12), generator=torch.Generator().manual_seed(3))
    interpolation = Interpolation(model, start, end)
    for alpha, state in ((0.0, start), (1.0, end)):
        plain.load_state_dict(state, strict=False)
        interpolation.set(alpha)
        with torch.no_grad():
            assert torch.equal(model.llm(input_ids=ids).logits, plain.llm(input_ids=ids).logits)
            features = torch.randn(
                2, model.audio_tokens, model.audio_encoder.width, generator=torch.Generator().manual_seed(4)
            )
            assert torch.equal(model.audio_embeddings(features=features), plain.audio_embeddings(features=features))
    interpolation.set(0.5)
    with torch.no_grad():
        assert not torch.equal(model.llm(input_ids=ids).logits, plain.llm(input_ids=ids).logits)


def test_a_fresh_adapter_as_start_has_no_effect_at_zero(model):
    start = {k: v.detach().clone() for k, v in model.trainable_parameters().items()}  # LoRA's B is zero
    interpolation = Interpolation(model, start, random_state(model, 2))
    interpolation.set(0.0)
    assert all(float(d.abs().max()) == 0.0 for d in interpolation.delta_weights().values())


def test_weights_that_are_not_the_models_trainable_ones_are_refused(model):
    state = random_state(model, 1)
    with pytest.raises(InterleaveError, match="the end weights are not the model's trainable weights"):
        Interpolation(model, state, {k: v for k, v in state.items() if "audio_proj" not in k})
