"""Tiny, offline fixtures: tokenizers of the three kinds the LLMs use, trained in milliseconds
(byte-level BPE as SmolLM2, Llama 3 and Qwen2; LLaMA-1/Vicuna's SentencePiece BPE in its legacy
and Metaspace forms), a random-weight LLaMA config, a tiny encoder, small audio/record files, and
the config of a tiny training run (`write_config`), where every test of a run starts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

CORPUS = [
    "### Instruction:\nWhat sound is this?\n\n### Response:\nLabels: Siren",
    "Is the sound a type of vehicle? Yes, it is. No, it is not.",
    "Can you list the labels based on this audio file? Labels: Drum; Tick; Sine wave; White noise",
    "Listen and name the sound. Beep, bleep. Dial tone. Whistle. Heart sounds, heartbeat. Buzz.",
    "### Input:\nthe quick brown fox jumps over the lazy dog 0123456789",
]

TINY_LLAMA = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
)
TINY_ENCODER = {"embed_dim": 32, "depth": 1, "shared_depth": 1, "num_heads": 4, "mlp_ratio": 1.0}


def build_tokenizer(add_bos: bool = True):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


LLAMA_CORPUS = CORPUS + [
    "Is it similar to a siren? Yes. Is it a type of alarm? No, it is not. It does. It doesn't.",
    "What is the sound in the audio? The sound is similar to a dog barking in the distance.",
]


def build_llama_tokenizer(form: str = "legacy"):
    """A LLaMA-style SentencePiece BPE tokenizer, as transformers converts LLaMA-1/Vicuna's:
    `<unk>`, `<s>`, `</s>` first, 256 byte-fallback tokens `<0x00>`..`<0xFF>` (a newline is
    `<0x0A>`), merges only inside a word (`▁` starts a word), BOS added, no pad token.

    `legacy` (LLaMA-1, Vicuna): the normalizer prepends `▁` and turns spaces into `▁`.
    `metaspace`: a Metaspace pre-tokenizer with `prepend_scheme="first"` instead.
    """
    import json

    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if form not in ("legacy", "metaspace"):
        raise ValueError(form)
    learner = Tokenizer(models.BPE(unk_token="<unk>"))
    learner.pre_tokenizer = pre_tokenizers.Sequence(
        [  # newlines alone, words start at "▁": no merge across
            pre_tokenizers.Split(Regex("\n"), "isolated"),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        ]
    )
    learner.train_from_iterator(
        LLAMA_CORPUS * 4, trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"])
    )
    learned = json.loads(learner.to_str())["model"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2} | {f"<0x{b:02X}>": 3 + b for b in range(256)}
    for piece in sorted(learned["vocab"], key=learned["vocab"].get):
        if piece not in vocab and "\n" not in piece:
            vocab[piece] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in learned["merges"]]
    merges = [m for m in merges if "\n" not in "".join(m)]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    if form == "legacy":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


# Qwen2's pre-tokenizer split (its tokenizer.json), then byte-level BPE without the ByteLevel regex.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def build_qwen2_tokenizer():
    """A Qwen2-style byte-level BPE tokenizer: Qwen2's regex split, no BOS, `<|endoftext|>` as pad."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")


TOKENIZER_KINDS = ("bytelevel", "llama-legacy", "llama-metaspace", "qwen2")


def build_tokenizer_kind(kind: str):
    if kind == "qwen2":
        return build_qwen2_tokenizer()
    return build_tokenizer() if kind == "bytelevel" else build_llama_tokenizer(kind.removeprefix("llama-"))


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


def write_clip(path: Path, seconds: float = 1.0, sr: int = 16000, freq: float = 440.0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), sr)
    return path


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


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


def write_config(tmp_path: Path, data_dir: Path, model_kwargs: dict, **trainer) -> Path:
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": 4,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "default_root_dir": str(tmp_path / "runs"),
            "logger": {
                "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                "init_args": {"save_dir": str(tmp_path / "runs"), "name": "t"},
            },
            "callbacks": [
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {
                        "dirpath": str(tmp_path / "ckpt"),
                        "save_last": True,
                        "every_n_train_steps": 2,
                        "save_top_k": -1,
                    },
                },
                {"class_path": "callbacks.RunSummary"},
                {
                    "class_path": "callbacks.WritePredictions",
                    "init_args": {"path": str(tmp_path / "predictions.jsonl")},
                },
            ],
            **trainer,
        },
        "model": model_kwargs,
        "data": {
            "train_file": str(data_dir / "train.jsonl"),
            "val_file": str(data_dir / "val.jsonl"),
            "batch_size": 2,
            "max_length": 128,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture()
def tiny_ltu(tmp_path, tiny_model_kwargs) -> Path:
    """A tiny checkpoint in LTU's exact key naming, for the tiny model with the paper's LoRA r=8."""
    import torch

    from interleave.model.module import AudioLLM
    from tests.model.test_ltu import ltu_state_dict

    path = tmp_path / "ltu.bin"
    torch.save(ltu_state_dict(AudioLLM(**{**tiny_model_kwargs, "lora_r": 8, "lora_alpha": 16})), path)
    return path
