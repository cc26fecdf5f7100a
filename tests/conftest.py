"""The tests' fixtures: tokenizers of each kind the LLMs use, trained in milliseconds (byte-level BPE as
SmolLM2, Llama 3 and Qwen2; LLaMA-1/Vicuna's SentencePiece BPE in its legacy and Metaspace forms), a
random-weight LLaMA config, the tiny AudioLLM, a small data set, LTU's checkpoint for the tiny model.
The helpers they are made with, and every other helper shared by test files, are in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import (
    REPO,
    TINY_ENCODER,
    TINY_LLAMA,
    TOKENIZER_KINDS,
    build_llama_tokenizer,
    build_tokenizer,
    build_tokenizer_kind,
    write_clip,
    write_jsonl,
)


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer(add_bos=True)


@pytest.fixture(scope="session")
def llama_tokenizer():
    return build_llama_tokenizer("legacy")


@pytest.fixture(scope="session", params=TOKENIZER_KINDS)
def any_tokenizer(request):
    """Each tokenizer kind in turn: byte-level BPE, LLaMA SentencePiece legacy and Metaspace, Qwen2's."""
    return build_tokenizer_kind(request.param)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, tokenizer) -> Path:
    path = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama_config(tokenizer) -> dict:
    return {**TINY_LLAMA, "vocab_size": len(tokenizer), "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}


@pytest.fixture()
def tiny_model_kwargs(tokenizer_dir, tiny_llama_config) -> dict:
    return dict(
        llm=None,
        llm_config=tiny_llama_config,
        tokenizer=str(tokenizer_dir),
        encoder="tiny",
        encoder_kwargs=TINY_ENCODER,
        lora_r=4,
        lora_alpha=8,
        learning_rate=1e-2,
        warmup_steps=1,
        val_max_new_tokens=4,
    )


@pytest.fixture()
def small_dataset(tmp_path) -> Path:
    """A folder with 6 clips of 2 'classes' and train/val JSONL in both layouts."""
    rows = []
    for i in range(6):
        label, freq = ("Sine wave", 440.0) if i % 2 == 0 else ("Siren", 1500.0)
        write_clip(tmp_path / "audio" / f"c{i}.wav", freq=freq, seed=i)
        instruction = "What sound is [AUDIO]?" if i % 3 else "What sound is this?"
        rows.append(
            {
                "id": f"r{i}",
                "audio": f"audio/c{i}.wav",
                "instruction": instruction,
                "output": f"Labels: {label}",
                "task": "cla_label",
                "dataset": "test",
            }
        )
    write_jsonl(tmp_path / "train.jsonl", rows[:4])
    write_jsonl(tmp_path / "val.jsonl", rows[4:])
    return tmp_path


@pytest.fixture()
def tiny_ltu(tmp_path, tiny_model_kwargs) -> Path:
    """A tiny checkpoint in LTU's exact key naming, for the tiny model with the paper's LoRA r=8."""
    import torch

    from interleave.model.module import AudioLLM
    from tests.helpers import ltu_state_dict

    path = tmp_path / "ltu.bin"
    torch.save(ltu_state_dict(AudioLLM(**{**tiny_model_kwargs, "lora_r": 8, "lora_alpha": 16})), path)
    return path


@pytest.fixture()
def model(tiny_model_kwargs):
    """The tiny AudioLLM (seeded random weights) in eval mode: what generation and evaluation answer with."""
    import torch

    from interleave.model.module import AudioLLM

    torch.manual_seed(0)
    return AudioLLM(**tiny_model_kwargs).eval()


@pytest.fixture(autouse=True)
def fast_tests_start_no_run_and_no_process(request, monkeypatch):
    """A test not marked `slow` starts no Lightning run (fit, validate, test, predict: through train.py's CLI,
    a tool or its own Trainer), and neither it nor the project's code starts a process but `git` (a run's
    provenance reads the commit with it; a library's own probe, such as jsonargparse's for its type stubs, is
    left alone): the fast tier's promise, checked as the tests run. tests/test_layout.py checks the marks."""
    if request.node.get_closest_marker("slow"):
        return
    import functools
    import os
    import subprocess
    import sys

    from lightning.pytorch import Trainer

    def refuse(what: str):
        pytest.fail(f"{what} in a test not marked slow: mark it @pytest.mark.slow (docs/development.md)")

    def stage(name: str):
        @functools.wraps(getattr(Trainer, name))  # its signature stays: LightningCLI reads its options from it
        def refused(*args, **kwargs):
            refuse(f"a Lightning {name} run")

        return refused

    for name in ("fit", "validate", "test", "predict"):
        monkeypatch.setattr(Trainer, name, stage(name))
    start = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        program = os.fsdecode(args if isinstance(args, str | bytes | os.PathLike) else args[0])
        caller = sys._getframe(1)
        while caller.f_code.co_filename == subprocess.__file__:  # subprocess.run and its kin
            caller = caller.f_back
        ours = Path(caller.f_code.co_filename).resolve().is_relative_to(REPO)
        if ours and Path(program.split()[0]).name != "git":
            refuse(f"a process ({program})")
        start(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
