"""LTU compatibility: load LTU's released checkpoint, or CAV-MAE's audio encoder alone.

LTU saves one PyTorch state dict with its LoRA weights, the audio encoder and the projector, named
as its forked PEFT/LLaMA code laid them out:

    base_model.model.model.audio_encoder.<CAV-MAE name>       -> AudioLLM.audio_encoder.<same>
    base_model.model.model.audio_proj.1.{weight,bias}         -> AudioLLM.audio_proj.1.<same>
    base_model.model.<path>.lora_{A,B}.weight                 -> AudioLLM.llm.base_model.model.<path>.lora_{A,B}.default.weight

The LLaMA/Vicuna weights themselves come from `model.llm` (a local HF folder). Files are read
with `torch.load(weights_only=True)`: a pickle that would run code is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from interleave.checkpoints import load_weights
from interleave.errors import InterleaveError

LTU_ENCODER = "base_model.model.model.audio_encoder."
LTU_PROJECTOR = "base_model.model.model.audio_proj.1."
_LTU_LORA = re.compile(r"^base_model\.model\.(?P<path>.+)\.(?P<which>lora_[AB])\.weight$")
# CAV-MAE's own checkpoints: the audio branch at the top level, under DataParallel's `module.`,
# or inside LTU's layout.
ENCODER_PREFIXES = ("", "module.", "audio_encoder.", LTU_ENCODER)


@dataclass
class LoadReport:
    """What a checkpoint gave the model: matched keys per part, and what it lacked or had extra."""

    path: str
    matched: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = ", ".join(f"{part} {n}" for part, n in self.matched.items())
        extra = f"; first unexpected: {self.unexpected[:3]}" if self.unexpected else ""
        return (
            f"{self.path}: {sum(self.matched.values())} keys matched ({parts}), {len(self.missing)} missing, "
            f"{len(self.unexpected)} unexpected{extra}"
        )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict (name -> tensor) from a file, loaded safely (`interleave.checkpoints.load_weights`)."""
    obj = load_weights(Path(path))
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InterleaveError(f"{path}: expected a state dict (name -> tensor)")
    return obj


def _copy(target: dict[str, torch.Tensor], key: str, value: torch.Tensor, source: str, where: str) -> None:
    own = target[key]
    if own.shape != value.shape:
        raise InterleaveError(
            f"{where}: {source} has shape {list(value.shape)}, the model expects {list(own.shape)} "
            f"(check model.encoder, model.lora_r and the LLM's hidden size)"
        )
    with torch.no_grad():
        own.copy_(value.to(own.dtype))


def load_ltu_checkpoint(model: Any, path: str | Path) -> LoadReport:
    """Load LTU's LoRA, encoder and projector weights into `model` (an AudioLLM built with LTU's
    settings on the matching LLaMA). Raises, listing them, if any weight the model needs is absent."""
    if model.audio_encoder.kind != "cavmae":
        raise InterleaveError(
            f"model.ltu_checkpoint {path} is LTU's CAV-MAE model; model.encoder is {model.audio_encoder.kind!r}"
        )
    state = read_state_dict(path)
    report = LoadReport(str(path))
    params = dict(model.named_parameters())
    params.update(dict(model.named_buffers()))
    wanted = {k for k in params if k.startswith(("audio_encoder.", "audio_proj.")) or ".lora_" in k}
    wanted -= {k for k in wanted if k.startswith("audio_proj.0.")}  # LayerNorm without affine: no weights
    seen: set[str] = set()
    for source, value in state.items():
        if source.startswith(LTU_ENCODER):
            key, part = "audio_encoder." + source[len(LTU_ENCODER) :], "encoder"
        elif source.startswith(LTU_PROJECTOR):
            key, part = "audio_proj.1." + source[len(LTU_PROJECTOR) :], "projector"
        elif match := _LTU_LORA.match(source):
            key, part = f"llm.base_model.model.{match['path']}.{match['which']}.default.weight", "lora"
        else:
            report.unexpected.append(source)
            continue
        if key not in wanted:
            report.unexpected.append(source)
            continue
        _copy(params, key, value, source, str(path))
        seen.add(key)
        report.matched[part] = report.matched.get(part, 0) + 1
    report.missing = sorted(wanted - seen)
    if report.missing:
        listed = ", ".join(report.missing[:6]) + (
            f" and {len(report.missing) - 6} more" if len(report.missing) > 6 else ""
        )
        raise InterleaveError(
            f"{path} lacks {len(report.missing)} weight(s) the model needs: {listed}. Is it LTU's checkpoint, and does "
            f"the model match it (model.encoder=cavmae, LoRA r={model.hparams.lora_r} on "
            f"{model.hparams.lora_target_modules or 'q_proj, v_proj'})?"
        )
    return report


def load_encoder_checkpoint(model: Any, path: str | Path) -> LoadReport:
    """Load CAV-MAE's audio branch alone (CAV-MAE's own checkpoint or LTU's) into `model.audio_encoder`."""
    from interleave.encoders.cavmae import load_cavmae_state_dict

    if model.audio_encoder.kind != "cavmae":
        raise InterleaveError(
            f"model.encoder_checkpoint {path} holds CAV-MAE weights but model.encoder is "
            f"{model.audio_encoder.kind!r}; give an {model.audio_encoder.kind} model's folder as "
            "model.encoder_path instead"
        )
    state = read_state_dict(path)
    probe = "blocks_a.0.attn.qkv.weight"
    prefix = next((p for p in ENCODER_PREFIXES if p + probe in state), None)
    if prefix is None:
        raise InterleaveError(
            f"{path}: no CAV-MAE audio branch found (looked for '{probe}' under prefixes {list(ENCODER_PREFIXES)})"
        )
    try:
        loaded, _ = load_cavmae_state_dict(model.audio_encoder, state, prefix)
    except (KeyError, ValueError) as err:
        raise InterleaveError(f"{path}: {err.args[0]}") from None
    report = LoadReport(str(path), {"encoder": len(loaded)})
    report.unexpected = sorted(k for k in state if not (k.startswith(prefix) and k[len(prefix) :] in set(loaded)))
    return report
