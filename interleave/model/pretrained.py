"""A released audio LLM's folder as the framework's three parts (`model.pretrained`).

`model.pretrained` is a local Hugging Face folder as a hub download leaves it (config, safetensors
shards, processor, tokenizer, chat template in `chat_template.jinja`, `chat_template.json` or
`tokenizer_config.json`). Its `config.json`'s `model_type` names the family; the family says which
encoder kind reads its tower, which projector kind its projector is, where the LLM's weights lie
in the folder, and the turn-end token its answers end with. The frozen weights are read where they
lie (the LLM by a key mapping of its names, no split-out copy) and never enter a checkpoint; the
projector's released weights are its start. Supported: Qwen2-Audio (`qwen2_audio`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interleave import NUM_AUDIO_TOKENS
from interleave.data.chat import ChatTemplate
from interleave.errors import InterleaveError

DEFAULT_LLM = "builtin:smollm2-135m-instruct"  # AudioLLM's default model.llm


@dataclass(frozen=True)
class Family:
    """What a released family's folder holds, in the framework's terms."""

    encoder: str  # the encoder kind that reads its tower (`interleave.encoders`)
    projector: str  # the projector kind (`interleave.model.projector`)
    projector_prefix: str  # the projector Linear's weight names in the folder, up to `weight`/`bias`
    llm_keys: dict[str, str]  # the LLM's weight names in the folder -> a causal LM's (regex -> replacement)
    audio_token: str  # the token the chat template writes where a clip goes
    turn_end: str  # the token every answer ends with
    llm_in_class: str  # the LLM's module path in the released transformers class (export's names)
    projector_in_class: str  # the projector's module path there, up to its Linear


FAMILIES = {
    "qwen2_audio": Family(
        encoder="qwen2_audio",
        projector="linear",
        projector_prefix="multi_modal_projector.linear.",
        llm_keys={r"^language_model\.model\.": "model.", r"^language_model\.lm_head\.": "lm_head."},
        audio_token="<|AUDIO|>",
        turn_end="<|im_end|>",
        llm_in_class="model.language_model",
        projector_in_class="model.multi_modal_projector.linear",
    ),
}
TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json", "tokenizer_config.json")


@dataclass(frozen=True)
class Released:
    """A released folder: where it is, its family's name and rules, and its full config."""

    folder: Path
    name: str
    family: Family
    config: Any

    def chat_template(self) -> ChatTemplate:
        """The family's prompt layout: the folder's chat template."""
        return ChatTemplate(read_chat_template(self.folder), self.family.audio_token)

    def identity(self) -> dict[str, Any]:
        """What identifies the folder's weights, cheaply: its path, its config's digest and each
        weight file's name, size and a digest of its first and last MiB (other weights of the same
        architecture differ there; reading whole shards would take minutes). A checkpoint records it;
        a checkpoint of another folder is refused."""
        files = sorted(p for p in self.folder.glob("*.safetensors"))
        digest = hashlib.sha256((self.folder / "config.json").read_bytes()).hexdigest()
        return {
            "folder": str(self.folder),
            "family": self.name,
            "config_sha256": digest,
            "weights": [[p.name, p.stat().st_size, _ends_digest(p)] for p in files],
        }


def _ends_digest(path: Path, size: int = 1 << 20) -> str:
    """A digest of a file's first and last `size` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(size))
        handle.seek(max(0, path.stat().st_size - size))
        digest.update(handle.read(size))
    return digest.hexdigest()[:16]


RELEASED_KEY = "released"  # a checkpoint's record of the released folder it was trained on (`Released.identity`)


def released_mismatch(released: Released | None, checkpoint: dict[str, Any]) -> str | None:
    """Why a training checkpoint does not belong on the model of `released` (None: it does): trained
    on another released folder (another config or weights; the folder's path may differ), or on
    one where the model has none, or the other way round."""
    saved = checkpoint.get(RELEASED_KEY) if isinstance(checkpoint, dict) else None
    if released is None and saved is None:
        return None
    if released is None:
        return f"was trained on the released model in {saved.get('folder')}; this model has no model.pretrained"
    if saved is None:
        return f"was not trained on a released model; this model's is {released.folder}"
    ours = released.identity()
    if any(saved.get(k) != ours[k] for k in ("family", "config_sha256", "weights")):
        return (
            f"was trained on another released model ({saved.get('folder')}, config "
            f"{str(saved.get('config_sha256'))[:12]}) than {released.folder} (config {ours['config_sha256'][:12]})"
        )
    return None


def read_released(path: str | Path) -> Released:
    """The released folder at `path`; a missing folder or one of another family is refused by name."""
    from transformers import AutoConfig

    folder = Path(path).expanduser()
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise InterleaveError(f"model.pretrained: {folder} is not a Hugging Face model folder (no config.json)")
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, AttributeError) as err:
        raise InterleaveError(f"model.pretrained: {config_file} is not a JSON object ({err})") from None
    if model_type not in FAMILIES:
        raise InterleaveError(
            f"model.pretrained: {folder} holds a {model_type!r} model; the released families "
            f"supported are {sorted(FAMILIES)}"
        )
    if not list(folder.glob("*.safetensors")):
        raise InterleaveError(f"model.pretrained: {folder} has no .safetensors weights")
    return Released(folder, model_type, FAMILIES[model_type], AutoConfig.from_pretrained(folder))


# The model settings a released folder decides, at their defaults (AudioLLM's). A value that is what
# the folder decides is accepted too (`refuse_contradictions`); any other is refused.
DECIDED = {
    "llm": (None, DEFAULT_LLM),
    "llm_config": (None,),
    "tokenizer": (None,),
    "encoder": ("cavmae",),
    "encoder_kwargs": (None, {}),
    "encoder_path": (None,),
    "audio_tokens": (NUM_AUDIO_TOKENS,),
    "projector": ("ltu",),
    "encoder_checkpoint": (None,),
    "ltu_checkpoint": (None,),
}


def _same_folder(value: Any, folder: Path) -> bool:
    """Whether a setting names `folder` (another spelling of its path included)."""
    if not isinstance(value, str | Path):
        return False
    try:
        return Path(value).expanduser().resolve() == folder.resolve()
    except OSError:
        return False


def refuse_contradictions(given: dict[str, Any], released: Released | None = None) -> None:
    """`given`: the model's settings that a released folder decides (`DECIDED`); one set beside
    `model.pretrained` to anything but its default or what the folder itself decides (the folder as
    `model.llm`, `model.tokenizer` or `model.encoder_path`, the family's encoder and projector
    kinds) is refused by name."""
    agrees = {}
    if released is not None:
        agrees = {
            "llm": lambda v: _same_folder(v, released.folder),
            "tokenizer": lambda v: _same_folder(v, released.folder),
            "encoder_path": lambda v: _same_folder(v, released.folder),
            "encoder": lambda v: v == released.family.encoder,
            "projector": lambda v: v == released.family.projector,
        }
    clash = [
        name
        for name, value in given.items()
        if value not in DECIDED[name] and not (name in agrees and agrees[name](value))
    ]
    if clash:
        raise InterleaveError(
            f"model.pretrained sets the encoder, projector, LLM and tokenizer from its folder; "
            f"remove {', '.join(f'model.{k}' for k in clash)}"
        )


@dataclass(frozen=True)
class ReleasedParts:
    """The frozen parts read from a released folder."""

    tokenizer: Any
    encoder: Any  # interleave.encoders.base.Encoder
    llm: nn.Module


def open_released(
    path: str | Path, given: dict[str, Any], dtype: str, train_encoder: bool = False
) -> tuple[Released, ReleasedParts]:
    """The released folder at `path` and its tokenizer (EOS: the family's turn-end token), encoder
    and LLM at `dtype`, after refusing the settings of `given` that contradict it."""
    from interleave.encoders import build_encoder
    from interleave.model.llm import DTYPES, align_special_tokens, load_tokenizer

    released = read_released(path)
    refuse_contradictions(given, released)
    tokenizer = load_tokenizer(str(released.folder))
    encoder = build_encoder(released.family.encoder, str(released.folder), frozen=not train_encoder)
    llm = load_released_llm(released, DTYPES[dtype])
    align_special_tokens(tokenizer, llm.config, str(released.folder))
    turn_end = released.family.turn_end
    if tokenizer.convert_tokens_to_ids(turn_end) in (None, tokenizer.unk_token_id):
        raise InterleaveError(f"model.pretrained: {released.folder}'s tokenizer has no {turn_end} token")
    tokenizer.eos_token = turn_end  # answers end with the chat template's turn-end token
    return released, ReleasedParts(tokenizer, encoder, llm)


def load_released_llm(released: Released, dtype: torch.dtype) -> nn.Module:
    """The folder's language model as a causal LM of its own class, its weights read where they lie."""
    from transformers import AutoModelForCausalLM

    llm, info = AutoModelForCausalLM.from_pretrained(
        released.folder,
        config=released.config.text_config,
        dtype=dtype,
        key_mapping=released.family.llm_keys,
        output_loading_info=True,
    )
    if info["missing_keys"]:
        raise InterleaveError(
            f"model.pretrained: {released.folder} lacks the LLM's weights {sorted(info['missing_keys'])[:3]}"
        )
    return llm


def _weight_files(folder: Path) -> dict[str, Path]:
    """Weight name -> the safetensors file holding it (a sharded folder's index, else the one file)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return {k: folder / v for k, v in json.loads(index.read_text(encoding="utf-8"))["weight_map"].items()}
    from safetensors import safe_open

    out = {}
    for file in folder.glob("*.safetensors"):
        with safe_open(str(file), "pt") as handle:
            out.update(dict.fromkeys(handle.keys(), file))
    return out


def load_released_projector(released: Released, linear: nn.Linear) -> None:
    """Copy the folder's projector weights into `linear` (the projector kind's Linear)."""
    from safetensors import safe_open

    files = _weight_files(released.folder)
    with torch.no_grad():
        for part in ("weight", "bias"):
            name = released.family.projector_prefix + part
            if name not in files:
                raise InterleaveError(f"model.pretrained: {released.folder} has no projector weight {name}")
            with safe_open(str(files[name]), "pt") as handle:
                tensor = handle.get_tensor(name)
            target = getattr(linear, part)
            if tuple(tensor.shape) != tuple(target.shape):
                raise InterleaveError(
                    f"model.pretrained: {name} is {list(tensor.shape)}, the projector needs {list(target.shape)}"
                )
            target.copy_(tensor.to(target.dtype))


def read_chat_template(folder: Path) -> str:
    """The folder's chat template, from the first of `TEMPLATE_FILES` that holds one."""
    for name in TEMPLATE_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if name.endswith(".jinja"):
            return path.read_text(encoding="utf-8")
        template = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(template, str) and template:
            return template
    raise InterleaveError(f"model.pretrained: {folder} has no chat template (looked in {', '.join(TEMPLATE_FILES)})")


def released_adapter(model: Any, released: Released) -> tuple[Any, dict[str, torch.Tensor]]:
    """A trained model's LoRA adapter and projector as one peft adapter of the released transformers
    class (`Qwen2AudioForConditionalGeneration`): its config (LoRA on the LLM's modules alone, the
    projector a module to save) and its weights under the class's names, for
    `PeftModel.from_pretrained(released class, folder)`."""
    import copy
    import re

    from peft import get_peft_model_state_dict

    family = released.family
    config = copy.deepcopy(model.llm.peft_config["default"])
    if isinstance(config.target_modules, str):
        raise InterleaveError("export: LoRA target modules given as a pattern cannot be mapped onto the released class")
    targets = sorted(config.target_modules)
    config.target_modules = rf"{re.escape(family.llm_in_class)}\..*\.({'|'.join(map(re.escape, targets))})"
    config.modules_to_save = [family.projector_in_class.split(".")[-2]]
    config.base_model_name_or_path = str(released.folder)
    ours = "base_model.model.model."  # peft's names of the LLM's decoder in the trained model
    weights = {}
    for name, tensor in get_peft_model_state_dict(model.llm).items():
        if not name.startswith(ours):
            raise InterleaveError(f"export: {name} is not a weight of the LLM's decoder; it cannot be mapped")
        weights[f"base_model.model.{family.llm_in_class}.{name[len(ours) :]}"] = tensor.contiguous()
    projector = model.audio_proj[-1]
    for part in ("weight", "bias"):
        weights[f"base_model.model.{family.projector_in_class}.{part}"] = getattr(projector, part).detach().contiguous()
    return config, weights
