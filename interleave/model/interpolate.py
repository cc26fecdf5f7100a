"""A model's weights between two points of a run (its start and a checkpoint), for `interleave frontier`.

At α the model is (1 − α)·start + α·end in what each part does:

- the LoRA adapter in its effect, module by module: ΔW(α) = (1 − α)·ΔW_start + α·ΔW_end, with
  ΔW = scaling·B·A (not factor by factor: interpolating A and B separately gives a quadratic path whose
  midpoint is neither model's direction). It is computed as the rank-(r_s + r_e) adapter
  A = [A_s; A_e], B = [(1 − α)·B_s, α·B_e], evaluated branch by branch: peft's own forward over two
  active adapters, the start's factors in the model's adapter and the end's in a second one
  (`END`), with scalings (1 − α)·s and α·s. So the frozen base weights are never written (no merge,
  no copy of the LLM's weights), the update keeps its own precision (merging it into a bf16 base
  weight would round most of its small entries away), and the ends are exact: at α = 0 the end's
  branch adds exactly zero to each output and the start's is computed as the model computes it
  (likewise at α = 1), so the answers are bit for bit those of the start model and of the checkpoint;
- every other trained weight (the projector; the encoder with `model.train_encoder`) linearly,
  (1 − α)·w_start + α·w_end, exact at both ends;
- frozen weights untouched.

Weights are the trainable state of `AudioLLM.trainable_parameters()` (what checkpoints hold).
α outside [0, 1] extrapolates along the same lines; the command warns about it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping

import torch
from torch import nn

from interleave.errors import InterleaveError

END = "frontier_end"  # the second adapter, holding the end's factors
_FACTOR = r"\.lora_(?:embedding_)?[AB]\.{}(?=\.|$)"  # a LoRA factor of one adapter, in a parameter's name

State = Mapping[str, torch.Tensor]


def lora_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The model's LoRA-wrapped modules (peft's `LoraLayer`s), by name."""
    from peft.tuners.lora import LoraLayer

    return {name: module for name, module in model.named_modules() if isinstance(module, LoraLayer)}


class Interpolation:
    """`model` (an `AudioLLM`) made to run at any α between the trainable states `start` and `end`
    (`set(alpha)`). Building it adds the second adapter to the model's LLM and loads both factor
    sets; the model's own adapter then holds the start's factors."""

    def __init__(self, model: nn.Module, start: State, end: State) -> None:
        trainable = model.trainable_parameters()
        for name, state in (("start", start), ("end", end)):
            if set(state) != set(trainable):
                lacking = sorted(set(trainable) - set(state)) or sorted(set(state) - set(trainable))
                raise InterleaveError(f"the {name} weights are not the model's trainable weights (e.g. {lacking[0]})")
        self.model = model
        self.adapter = model.llm.active_adapter
        config = model.llm.peft_config[self.adapter]
        if getattr(config, "use_dora", False):
            raise InterleaveError("the frontier interpolates plain LoRA adapters; this one uses DoRA")
        factor = re.compile(_FACTOR.format(re.escape(self.adapter)))
        self.factors = sorted(k for k in trainable if factor.search(k))
        self.linear = sorted(set(trainable) - set(self.factors))
        self.start = {k: start[k].detach().clone() for k in self.linear}
        self.end = {k: end[k].detach().clone() for k in self.linear}
        with torch.random.fork_rng(devices=[]):  # the new adapter's random init must not move anyone's stream
            model.llm.add_adapter(END, copy.deepcopy(config))
        self.layers = lora_layers(model)
        for layer in self.layers.values():  # peft adds modules in train mode: the twin's dropout takes its twin's mode
            for modules in (layer.lora_A, layer.lora_B, layer.lora_dropout):
                if END in modules:
                    modules[END].train(modules[self.adapter].training)
        self.scaling = {name: layer.scaling[self.adapter] for name, layer in self.layers.items()}
        params = dict(model.named_parameters())
        with torch.no_grad():
            for key in self.factors:
                mine = params[key]
                twin = params[factor.sub(lambda m: m.group(0).replace(self.adapter, END), key)]
                mine.copy_(start[key])
                twin.data = end[key].detach().to(device=mine.device, dtype=mine.dtype).clone()
        model.llm.base_model.set_adapter([self.adapter, END], inference_mode=True)
        self.alpha: float | None = None

    def set(self, alpha: float) -> None:
        """Make the model (1 − α)·start + α·end (see the module docstring)."""
        alpha = float(alpha)
        for name, layer in self.layers.items():
            layer.scaling[self.adapter] = self.scaling[name] * (1.0 - alpha)
            layer.scaling[END] = self.scaling[name] * alpha
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for key in self.linear:
                params[key].copy_((1.0 - alpha) * self.start[key] + alpha * self.end[key])
        self.alpha = alpha

    def delta_weights(self) -> dict[str, torch.Tensor]:
        """Each LoRA module's update ΔW(α) as the model now applies it (its adapters' scaled B·A, summed)."""
        return {
            name: sum(layer.get_delta_weight(a) for a in (self.adapter, END)) for name, layer in self.layers.items()
        }
