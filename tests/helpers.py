"""The tests' shared helpers, in one module: what more than one test file uses (fixtures are in
conftest.py, which imports from here). No test file imports from another test file
(tests/test_layout.py checks it)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import yaml

if TYPE_CHECKING:  # torch and the package load in the helpers that use them: a test file pays for what it uses
    import torch

    from interleave.encoders.cache import FeatureCache
    from interleave.eval.predictions import Prediction
    from interleave.model.module import AudioLLM

REPO = Path(__file__).resolve().parents[1]


# --- Tokenizers of each kind, the tiny LLaMA and encoder, clips, JSONL files, a tiny run's config ------------------


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


# --- Records, good and bad -----------------------------------------------------------------------------------------


def good(i: int, instruction: str = "What is [AUDIO]?") -> dict:
    return {"id": f"g{i}", "audio": f"audio/g{i}.wav", "instruction": instruction, "output": "Labels: Siren"}


BAD_KINDS = {
    2: "malformed JSON",
    3: "missing field 'audio'",
    4: "1 audio clip(s) but its prompt has 2 [AUDIO] placeholder(s)",
    5: "audio file not found",
    6: "leaving no room for the answer",
    7: "duplicate id 'g0'",
    8: "unreadable audio",
    9: "field 'output' must be a string",
}


def bad_file(root: Path) -> Path:
    for i in (0, 8):
        write_clip(root / "audio" / f"g{i}.wav")
    (root / "audio" / "g8.wav").write_bytes(b"not audio at all")  # exists but undecodable
    rows = [
        good(0),
        '{"id": "broken", "audio": ',
        {"id": "g2", "instruction": "What is [AUDIO]?", "output": "x"},
        good(3, "Is [AUDIO] like [AUDIO]?"),
        good(4),
        good(0, "Is [AUDIO] " + "very " * 400 + "long?") | {"id": "g5"},
        good(0),
        good(8),
        good(0) | {"id": "g9", "output": 3},
    ]
    (root / "audio" / "g5.wav").write_bytes((root / "audio" / "g0.wav").read_bytes())
    return write_jsonl(root / "bad.jsonl", rows)


# --- The record index ----------------------------------------------------------------------------------------------


def mixed_file(root, n: int = 300, seed: int = 0):
    """The bad file's every kind of problem, then `n` varied records: interleaved, LTU layout, a
    placeholder inside a word, two placeholders, non-ASCII text, answers of every length,
    duplicate ids, a missing clip, prompts too long for max_length=128."""
    path = bad_file(root)
    rows = [line for line in path.read_text().splitlines()]
    rng = random.Random(seed)
    words = "Is it the a dog's siren car 12 café vehicle loud quiet very\nlong Labels: Yes, no.".split(" ")
    for i in range(n):
        kind = rng.random()
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        instruction = (
            f"{text} [AUDIO] {rng.choice(words)}?"
            if kind < 0.4
            else f"[AUDIO]{text}"
            if kind < 0.5
            else "Is it a vehi[AUDIO]cle?"
            if kind < 0.55
            else "[AUDIO] or [AUDIO]"
            if kind < 0.58
            else "very " * 120 + "[AUDIO]"
            if kind < 0.6
            else text
        )
        rows.append(
            {
                "id": f"m{i % (n - 10)}",
                "audio": "audio/g0.wav" if i % 13 else "audio/none.wav",
                "instruction": instruction,
                "output": " ".join(rng.choice(words) for _ in range(rng.randint(0, 40))),
            }
        )
    clips = ["audio/g0.wav", "audio/g5.wav", "audio/none.wav"]
    for i in range(n // 5):  # issue 19: lists of clips, good and bad counts, a missing second clip
        audio = [rng.choice(clips[:2]) if rng.random() < 0.9 else clips[2] for _ in range(rng.randint(0, 3))]
        instruction = " and ".join(["[AUDIO]"] * rng.choice([len(audio), len(audio), max(0, len(audio) - 1), 2]))
        rows.append({"id": f"c{i}", "audio": audio, "instruction": f"Are {instruction} the same?", "output": "Yes"})
    return write_jsonl(path, rows)


def direct(path, collator, decode=False):
    from interleave.data.checks import load_checked
    from interleave.encoders.audio import load_fbank

    split = []
    records, problems = load_checked(path, path.parent, collator, load_fbank if decode else None, split)
    return records, problems, split


def header_end(index: Path) -> int:
    """Where the header of a record index ends (its columns start at the next aligned byte)."""
    import struct

    from interleave.data.record_index import MAGIC, PREFIX

    size = struct.unpack("<Q", index.read_bytes()[len(MAGIC) : len(MAGIC) + 8])[0]
    return len(MAGIC) + PREFIX.size + size


def damage(index: Path, how: str) -> None:
    """Issue 34's three damaged indexes: cut to the header and 16 bytes, 1000 bytes cut off its end,
    4000 bytes of its middle overwritten with random bytes."""
    data = bytearray(index.read_bytes())
    if how == "header+16":
        data = data[: header_end(index) + 16]
    elif how == "end cut":
        data = data[:-1000]
    else:
        middle = len(data) // 2
        data[middle - 2000 : middle + 2000] = random.Random(34).randbytes(4000)
    index.write_bytes(bytes(data))


# --- Encoders and the feature cache --------------------------------------------------------------------------------


def built(spec: str, **kwargs):
    """The encoder of a registry spec, with seeded random weights."""
    import torch

    from interleave.encoders import build_encoder

    torch.manual_seed(0)
    return build_encoder(spec, **kwargs)


def own_features(enc, clip, variant=None) -> torch.Tensor:
    """The encoder's own output for one clip (or its probe variant), outside any cache."""
    import torch

    with torch.no_grad():
        return enc(enc.load_inputs(clip, "first", None if variant is None else variant.transform)[None])[0]


def copy_entry(cache: FeatureCache, source, target, source_variant: str = "", target_variant: str = "") -> Path:
    """Copy one entry file over another's, as a sync tool or a hand fix can; the target entry's path."""
    entry = cache.entry(target, target_variant)
    shutil.copyfile(cache.entry(source, source_variant), entry)
    return entry


def two_clip_dataset(folder: Path) -> tuple[Path, Path]:
    """A siren (the training record) and a drum (the validation record): (drum, siren)."""
    drum = write_clip(folder / "audio" / "drum.wav", freq=80.0, seed=1)
    siren = write_clip(folder / "audio" / "siren.wav", freq=1500.0, seed=2)
    for name, clip, label in (("train", siren, "Siren"), ("val", drum, "Drum")):
        write_jsonl(
            folder / f"{name}.jsonl",
            [
                {
                    "id": name,
                    "audio": f"audio/{clip.name}",
                    "output": f"Labels: {label}",
                    "instruction": "What sound is [AUDIO]?",
                    "task": "cla_label",
                }
            ],
        )
    return drum, siren


def cache_config(tmp_path, data_dir, model_kwargs, **data) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_config(tmp_path, data_dir, model_kwargs)
    config = yaml.safe_load(path.read_text())
    config["data"].update(data)
    path.write_text(yaml.safe_dump(config))
    return str(path)


# --- LLMs: the architectures of each family, LTU's checkpoint, an LM head steered to an answer ---------------------


TINY = dict(
    hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=512
)


ARCHITECTURES = {
    # LLaMA-1 / Vicuna: multi-head attention, SentencePiece BPE with BOS.
    "llama-1": ("llama-legacy", dict(model_type="llama", num_key_value_heads=4, bos_token_id=1, eos_token_id=2)),
    # Llama 3: grouped-query attention, byte-level BPE with BOS.
    "llama-3": (
        "bytelevel",
        dict(
            model_type="llama",
            num_key_value_heads=2,
            rope_theta=500000.0,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
        ),
    ),
    # Qwen2: grouped-query attention, biased q/k/v, byte-level BPE without BOS.
    "qwen2": (
        "qwen2",
        dict(model_type="qwen2", num_key_value_heads=2, bos_token_id=None, eos_token_id=2, pad_token_id=0),
    ),
    # Mistral: grouped-query attention, sliding window, SentencePiece (Metaspace) with BOS.
    "mistral": (
        "llama-metaspace",
        dict(model_type="mistral", num_key_value_heads=2, sliding_window=64, bos_token_id=1, eos_token_id=2),
    ),
}


def architecture_kwargs(name: str, tmp_path) -> tuple[dict, dict]:
    kind, fields = ARCHITECTURES[name]
    tokenizer = build_tokenizer_kind(kind)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    config = {**TINY, **fields, "vocab_size": len(tokenizer)}
    return config, dict(
        llm=None,
        llm_config=config,
        tokenizer=str(tmp_path / "tokenizer"),
        encoder="tiny",
        encoder_kwargs=TINY_ENCODER,
        lora_r=4,
        lora_alpha=8,
        learning_rate=1e-2,
        warmup_steps=1,
        val_max_new_tokens=4,
    )


def ltu_state_dict(model: AudioLLM, seed: int = 1) -> dict[str, torch.Tensor]:
    """Random weights for everything LTU's checkpoint holds, under LTU's exact key names."""
    import torch

    from interleave.model.ltu import LTU_ENCODER, LTU_PROJECTOR

    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, value in model.audio_encoder.state_dict().items():
        state[LTU_ENCODER + name] = torch.randn(value.shape, generator=gen)
    for name in ("weight", "bias"):
        state[LTU_PROJECTOR + name] = torch.randn(model.audio_proj[1].state_dict()[name].shape, generator=gen)
    for name, value in model.llm.named_parameters():
        if ".lora_" in name:  # base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight
            state[name.replace(".default.weight", ".weight")] = torch.randn(value.shape, generator=gen)
    return state


@contextlib.contextmanager
def favouring(model, answer: str):
    """An LM head that prefers one answer's first tokens by a wide margin, so the answer is known."""
    from interleave.model.generation import answer_token_ids

    yes_ids = answer_token_ids(model.tokenizer, ("Yes", "yes", "YES"))
    no_ids = answer_token_ids(model.tokenizer, ("No", "no", "NO"))
    assert set(yes_ids).isdisjoint(no_ids)

    def edit(logits):
        logits[..., yes_ids] = 20.0 if answer == "yes" else -20.0
        logits[..., no_ids] = -20.0 if answer == "yes" else 20.0

    with editing_logits(model, edit):
        yield


@contextlib.contextmanager
def editing_logits(model, edit):
    """The LM head's logits changed in place by `edit` (on a copy) while the block runs."""

    def hook(module, inputs, logits):
        logits = logits.clone()
        edit(logits)
        return logits

    handle = model.llm.get_base_model().lm_head.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


YES_NO = "Yes, it is. No, it is not. The sound does not. Answer: no. Is it? It does."


# --- Predictions ---------------------------------------------------------------------------------------------------


BASE = {
    "id": "q",
    "task": "synonym",
    "condition": "interleaved",
    "label": "Siren",
    "candidate": None,
    "truth": None,
    "prompt": "",
    "answers": [],
    "parsed": [],
}


def prediction(**fields) -> Prediction:
    """A row with the fields a test names, the others blank (for metrics and resampling tests)."""
    from interleave.eval.predictions import Prediction

    return Prediction(**{**BASE, **fields})


# --- SHARD files and runs of the tiny model evaluated on them; a checkpoint that runs code -------------------------


RELATIONS = ("synonym", "hypernym")


METRICS = ("accuracy", "precision", "recall", "f1", "unparsed")


def write_shard(folder: Path) -> Path:
    """15 queries (an odd number) over the small dataset's clips, in the SHARD file contract."""
    rows = []
    for i, (label, word) in enumerate([("Sine wave", "sine wave"), ("Siren", "siren"), ("Sine wave", "sine wave")]):
        audio = f"audio/c{i}.wav"
        rows.append({"id": f"identity/{i}", "task": "identity", "label": label, "word": word, "audio": audio})
        for relation, yes, no in (("synonym", "sinusoid", "drum"), ("hypernym", "signal", "animal")):
            for candidate, truth in ((yes, "yes"), (no, "no")):
                rows.append(
                    {
                        "id": f"{relation}/{i}/{candidate}",
                        "task": relation,
                        "label": label,
                        "word": word,
                        "candidate": candidate,
                        "truth": truth,
                        "audio": audio,
                    }
                )
    return write_jsonl(folder / "shard.jsonl", rows)


def shard_config(tmp_path, data_dir, model_kwargs, callback_args=None, **trainer):
    path = write_config(tmp_path, data_dir, model_kwargs, **trainer)
    config = yaml.safe_load(path.read_text())
    args = {
        "shard_file": str(write_shard(data_dir)),
        "repeats": 2,
        "batch_size": 2,
        "sampling": {"max_new_tokens": 3},
        "extra_layouts": ["noninterleaved"],
        **(callback_args or {}),
    }
    config["trainer"]["callbacks"].append({"class_path": "callbacks.ShardEvaluation", "init_args": args})
    path.write_text(yaml.safe_dump(config))
    return path


def run_dir(tmp_path) -> Path:
    (version,) = sorted((tmp_path / "runs" / "t").glob("version_*"))
    return version


def expected_tags(prefix: str, identity: bool = True) -> set[str]:
    tags = {f"{prefix}/shard/{r}/{m}" for r in RELATIONS for m in METRICS}
    return tags | ({f"{prefix}/identity/accuracy"} if identity else set())


ALL_TAGS = expected_tags("val") | expected_tags("val/noninterleaved") | expected_tags("val/text", identity=False)


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def run_on_devices(command: str, config: Path, devices: int, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    """`train.py COMMAND --config CONFIG` on `devices` CPU processes (DDP for more than one) and the
    `extra` flags; a run that fails fails the test with its stderr's end."""
    strategy = "--trainer.strategy=ddp" if devices > 1 else "--trainer.strategy=auto"
    done = run_cli([command, "--config", str(config), *extra, f"--trainer.devices={devices}", strategy], cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


class RunsCode:
    """A pickled object that runs a shell command when unpickled: what a safe loader must refuse."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# --- The paper's configs and the docs' commands --------------------------------------------------------------------


PAPER = REPO / "configs" / "paper"


# DOC_COMMANDS: every `python train.py` command in a fenced code block of README.md and docs/*.md, exactly as a
# user types it; tests/test_paper_configs.py resolves each with --print_config, tests/test_docs.py checks that the
# docs show no other (apart from its DOC_COMMANDS_NOT_RUN).
_ROW_PATHS = (
    "--paths.llm=/models/vicuna-7b --paths.ltu_checkpoint=/models/ltu_ori_paper.bin "
    "--paths.shard=/data/shard/shard.jsonl --paths.val=/data/val.jsonl"
)


_OVERLAY_PATHS = "--paths.llm=/models/vicuna-7b --paths.shard=/data/shard/shard.jsonl --paths.val=/data/val.jsonl"


_ROW1 = "python train.py validate --config configs/paper/base.yaml --config configs/paper/ltu_noninterleaved.yaml"


_ROW2 = "python train.py validate --config configs/paper/base.yaml --config configs/paper/ltu_interleaved.yaml"


_ROW3 = (
    "python train.py fit --config configs/paper/base.yaml --config configs/paper/finetune.yaml "
    "--config configs/paper/ft_small.yaml"
)


_ROW4 = (
    "python train.py fit --config configs/paper/base.yaml --config configs/paper/finetune.yaml "
    "--config configs/paper/ft_large.yaml"
)


DOC_COMMANDS = [
    "python train.py fit --config configs/demo.yaml",
    "python train.py fit --config configs/demo.yaml --model.learning_rate 1e-3 --trainer.max_epochs 3",
    # the quick check: 2 held-out batches, at most 2 SHARD queries per task (ShardEvaluation is the demo's last callback)
    "python train.py validate --config configs/demo.yaml --trainer.limit_val_batches=2 "
    "--trainer.callbacks.init_args.max_queries_per_task=2",
    "python train.py fit --config configs/demo.yaml --config configs/models/whisper.yaml --paths.whisper=/models/whisper-tiny",
    "python train.py fit --config configs/demo.yaml --config configs/models/ast.yaml --paths.ast=/models/ast",
    "python train.py fit --config configs/demo.yaml --config configs/models/qwen2_audio.yaml "
    "--paths.qwen2_audio=/models/Qwen2-Audio-7B-Instruct",
    "python train.py fit --config configs/demo.yaml --config configs/models/qwen2_audio.yaml "
    "--paths.qwen2_audio=/models/Qwen2-Audio-7B-Instruct --ckpt_path last",
    f"{_ROW4} --config configs/models/qwen2_audio.yaml --paths.qwen2_audio=/models/Qwen2-Audio-7B-Instruct "
    "--paths.shard=/data/shard/shard.jsonl --paths.val=/data/val.jsonl --paths.train=/data/interleaved_1m.jsonl",
    "python train.py fit --config configs/demo.yaml --config configs/models/audio_flamingo3.yaml "
    "--paths.audio_flamingo3=/models/audio-flamingo-3-hf",
    f"{_ROW1} {_ROW_PATHS}",
    f"{_ROW2} {_ROW_PATHS}",
    f"{_ROW3} {_ROW_PATHS} --paths.train=/data/interleaved_40k.jsonl",
    f"{_ROW4} {_ROW_PATHS} --paths.train=/data/interleaved_1m.jsonl",
    # a model overlay after each row (it sets model.ltu_checkpoint: null, so --paths.ltu_checkpoint is not needed)
    f"{_ROW4} --config configs/models/whisper.yaml --paths.whisper=/models/whisper-large-v3 {_OVERLAY_PATHS} "
    "--paths.train=/data/interleaved_1m.jsonl",
    f"{_ROW4} --config configs/models/ast.yaml --paths.ast=/models/ast-finetuned-audioset-10-10-0.4593 "
    f"{_OVERLAY_PATHS} --paths.train=/data/interleaved_1m.jsonl",
    f"{_ROW3} --config configs/models/llm.yaml --paths.llm=/models/Qwen2-7B-Instruct "
    "--paths.encoder_checkpoint=/models/cav-mae-scale++.pth --paths.shard=/data/shard/shard.jsonl "
    "--paths.val=/data/val.jsonl --paths.train=/data/interleaved_40k.jsonl",
    f"{_ROW1} --config configs/models/whisper.yaml --paths.whisper=/models/whisper-large-v3 {_OVERLAY_PATHS}",
    f"{_ROW2} --config configs/models/ast.yaml --paths.ast=/models/ast-finetuned-audioset-10-10-0.4593 {_OVERLAY_PATHS}",
    # scale overlays
    f"{_ROW3} --config configs/scale/fsdp_13b.yaml {_ROW_PATHS} --paths.train=/data/interleaved_40k.jsonl",
    f"{_ROW4} --config configs/scale/multinode_ddp.yaml {_ROW_PATHS} --paths.train=/data/interleaved_1m.jsonl",
]


def paths_args(
    root: Path, ltu: Path | str = "/models/ltu.bin", llm: str = "/models/vicuna-7b", train_file: bool = True
) -> list[str]:
    """The paths the docs' commands pass (runs/paper is the configs' own)."""
    return [
        f"--paths.llm={llm}",
        f"--paths.ltu_checkpoint={ltu}",
        f"--paths.shard={root}/shard.jsonl",
        f"--paths.val={root}/val.jsonl",
        *([f"--paths.train={root}/train.jsonl"] if train_file else []),
    ]


def tiny_overrides(tokenizer_dir, tiny_llama_config) -> list[str]:
    """The LLM swapped for a tiny random LLaMA (same family), a tiny encoder, one CPU process."""
    return [
        "--model.llm=null",
        f"--model.llm_config={json.dumps(tiny_llama_config)}",
        f"--model.tokenizer={tokenizer_dir}",
        "--model.encoder=tiny",
        f"--model.encoder_kwargs={json.dumps(TINY_ENCODER)}",
        "--model.llm_dtype=float32",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.strategy=auto",
        "--trainer.precision=32-true",
        "--data.num_workers=0",
    ]


# --- The packages' modules -----------------------------------------------------------------------------------------


PACKAGES = ("interleave", "callbacks")


def modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the two packages (a package is its __init__)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


# --- The SHARD builder: the WordNet extract and short clips --------------------------------------------------------


LABELS_CSV = REPO / "tests" / "fixtures" / "audioset_class_labels_indices.csv"


WORDNET = REPO / "tests" / "fixtures" / "wordnet30"


DEBIAN_WORDNET = Path("/usr/share/wordnet")  # apt-get install wordnet-base; tests using it skip without it


def copy_wordnet(dest: Path, lexnames: bool = True) -> Path:
    """A copy of the shipped extract in ``dest``; without ``lexnames`` it is laid out like Debian's."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in WORDNET.iterdir():
        if path.suffix != ".txt" and (lexnames or path.name != "lexnames"):
            shutil.copyfile(path, dest / path.name)
    return dest


def touch_clip(path: Path) -> str:
    """A short, real WAV: the builder decodes every clip it chooses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_clip(path, seconds=0.1)
    return str(path)


# --- The report: saved points and answers --------------------------------------------------------------------------


# Paper, Table 2, first row (LTU baseline, non-interleaved).
TABLE2_ROW1 = {
    "val/identity/accuracy": 0.4845,
    "val/shard/synonym/accuracy": 0.5950,
    "val/shard/synonym/precision": 0.9645,
    "val/shard/synonym/recall": 0.1831,
    "val/shard/synonym/f1": 0.3078,
    "val/shard/hypernym/accuracy": 0.7640,
    "val/shard/hypernym/precision": 0.9890,
    "val/shard/hypernym/recall": 0.5276,
    "val/shard/hypernym/f1": 0.6881,
}


def shard(prefix: str, syn: float, hyp: float) -> dict[str, float]:
    """The five metrics of both relations under `prefix`, e.g. 'val/text/'."""
    from interleave.eval.tasks import VERDICT_METRICS

    out = {}
    for rel, base in (("synonym", syn), ("hypernym", hyp)):
        for i, name in enumerate(VERDICT_METRICS):
            out[f"{prefix}shard/{rel}/{name}"] = round(base + i / 100, 4)
    return out


def write_point(run: Path, epoch: int, metrics: dict) -> Path:
    folder = run / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / f"epoch={epoch:02d}.metrics.json"
    file.write_text(json.dumps({"epoch": epoch, "global_step": 48 * epoch, **metrics}))
    return file


def table_lines(markdown: str) -> list[list[str]]:
    """The body rows of the first Markdown table (Table 2; the forgetting summary may follow) as lists of cells."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("| ")), len(lines))
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[start + 2 : end]]


WORDS = ("Siren", "Dog", "Rain", "Heart sounds, heartbeat")


def answer_set(seed: int, condition: str = "interleaved", words=WORDS, clips: int = 3) -> list[dict]:
    """Saved answers in interleave.shard.build's id scheme, parsed at random (seeded)."""
    from interleave.eval.query import slug

    rng = random.Random(seed)
    out = []
    for label in words:
        for k in range(clips):
            out.append(
                {
                    "id": f"identity/{slug(label)}/{k}",
                    "task": "identity",
                    "condition": condition,
                    "label": label,
                    "candidate": None,
                    "truth": None,
                    "answers": ["a", "b"],
                    "parsed": [rng.random() < 0.5 for _ in range(2)],
                }
            )
            for relation in ("synonym", "hypernym"):
                for candidate, truth in (("alarm", "yes"), ("cat", "no")):
                    out.append(
                        {
                            "id": f"{relation}/{slug(label)}/{k}/{candidate}",
                            "task": relation,
                            "condition": condition,
                            "label": label,
                            "candidate": candidate,
                            "truth": truth,
                            "answers": ["x", "y"],
                            "parsed": [rng.choice(["yes", "no", None]) for _ in range(2)],
                        }
                    )
    return out


def write_answered_point(run: Path, epoch: int, answers: list[dict], **extra) -> Path:
    """A point whose metrics file holds what the evaluation computes from `answers` (+ `extra`)."""
    from interleave.eval.evaluate import condition_metrics

    metrics = {}
    for condition in dict.fromkeys(r["condition"] for r in answers):
        prefix = "val" if condition == "interleaved" else f"val/{condition}"
        metrics.update(condition_metrics([prediction(**r) for r in answers if r["condition"] == condition], prefix))
    file = write_point(run, epoch, {"layout": "interleaved", "prediction_rows": len(answers), **metrics, **extra})
    (run / "predictions" / f"epoch={epoch:02d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in answers))
    return file


# --- Bootstrap resampling drawn by hand ----------------------------------------------------------------------------


def reference_draws(words: list[str], clips: dict[str, list[str]], resamples: int, seed: int) -> list[Counter]:
    """Each resample's (word, clip) -> multiplicity, drawn by hand as the module states: numpy's
    default_rng(seed) draws W word indices per resample, then one uniform per clip of every drawn
    word, in order, picking clip floor(u * its word's clip count)."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(words), size=(resamples, len(words)))
    uniforms = iter(rng.random(int(sum(len(clips[words[w]]) for w in drawn.ravel()))))
    out = []
    for b in range(resamples):
        found: Counter = Counter()
        for w in drawn[b]:
            own = clips[words[w]]
            for _ in own:
                found[(words[w], own[int(next(uniforms) * len(own))])] += 1
        out.append(found)
    return out


def reference_seed_draws(seeds: int, resamples: int, seed: int) -> np.ndarray:
    """The seed level's draws as the module states them: default_rng((seed, 1)).integers(0, S, (resamples, S))."""
    return np.random.default_rng((seed, 1)).integers(0, seeds, size=(resamples, seeds))


# --- The rephrase tool: OpenAQA input ------------------------------------------------------------------------------


def openaqa(instruction, i, task="open-ended question", dataset="as_strong_train"):
    return {
        "instruction": instruction,
        "input": "",
        "audio_id": f"/data/audioset/{i:06d}.flac",
        "dataset": dataset,
        "task": task,
        "output": f"answer {i}",
    }


def write_json(path, objs):
    path.write_text(json.dumps(objs, indent=1))
    return path


def mixed_input(n_open=600, n_label=300, n_acoustic=100, n_other=200):
    objs, i = [], 0
    for n, task, dataset in (
        (n_open, "open-ended question", "as_strong_train"),
        (n_label // 2, "cla_label", "as_20k"),
        (n_label - n_label // 2, "cla_label", "as_strong_train"),
        (n_acoustic, "cla_label_des", "as_20k"),
        (n_other // 2, "open-ended question", "as_20k"),
        (n_other - n_other // 2, "cla_label", "vggsound_train"),
    ):
        for _ in range(n):
            objs.append(openaqa(f"What is the sound in the audio clip? #{i}", i, task, dataset))
            i += 1
    random.Random(0).shuffle(objs)
    return objs


SECRET = "sk-test-9f8e7d6c5b4a-SECRET"


# ---- benchmarks (issue 37) ---------------------------------------------------------------------

BENCH_PROMPTS = {"interleaved": "[AUDIO] {question} {choices}", "noninterleaved": "{question} {choices}"}


def mmau_item(i, task="sound", category="Sound Event Detection", **over):
    """An item in MMAU test-mini's format (its clip `./test-mini-audios/c{i % 3}.wav`)."""
    item = {
        "id": f"id-{i}",
        "audio_id": f"./test-mini-audios/c{i % 3}.wav",
        "question": f"What is heard in {i}?",
        "choices": ["Dog barking", "Cat meowing", "Car horn", "Rain"],
        "answer": "Car horn",
        "dataset": "x",
        "task": task,
        "split": "test-mini",
        "category": category,
        "sub-category": None,
        "difficulty": "easy",
    }
    return {**item, **over}


def write_bench(folder: Path, bad: bool = False) -> Path:
    """5 items in MMAU's format over the small dataset's clips (and, with `bad`, two bad items)."""
    names = ["Siren", "Sine wave"]
    items = [
        {
            "id": f"b{i}",
            "audio_id": f"./audio/c{i}.wav",
            "question": "What is it?",
            "choices": names,
            "answer": names[i % 2 == 0],
            "task": "sound",
            "category": ["Sound Event", "Music"][i % 2],
        }
        for i in range(5)
    ]
    if bad:
        items += [{**items[0], "id": "x1", "choices": ["Siren"]}, {**items[1], "id": "b1"}]
    path = folder / ("bad_bench.json" if bad else "bench.json")
    path.write_text(json.dumps(items))
    return path


# ---- a tiny released Qwen2-Audio (issue 36) ----------------------------------------------------
# `save_tiny_qwen2_audio(folder)` writes a random-weight Qwen2AudioForConditionalGeneration built from
# transformers' config classes, saved as the hub leaves the released one: its Qwen2AudioProcessor (a
# WhisperFeatureExtractor of 128 bins, a Qwen2-style tokenizer trained here with the family's special
# tokens) and the released chat template. `reference_logits` runs the transformers model itself.

QWEN2_AUDIO_RATE = 16000
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]

# Qwen2-Audio-7B-Instruct's chat template as released (its tokenizer_config.json / chat_template.json).
QWEN2_AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)

CHAT_CORPUS = CORPUS + [
    "system\nYou are a helpful assistant.\nuser\nAudio 1: Audio 2: What's that sound?\nassistant\n",
    "Is the first clip similar to the second one? Which one is louder? A dog barks, a siren wails.",
]

TINY_TOWER = dict(num_mel_bins=128, d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64)
TINY_QWEN2 = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    tie_word_embeddings=False,
)


def build_released_qwen2_tokenizer(special: list[str] = SPECIAL):
    """A Qwen2-style byte-level BPE tokenizer (Qwen2's split, no BOS) trained here, holding a released
    family's special tokens (`special`: the three chat tokens, then the family's own; Qwen2-Audio's by
    default, `AF3_SPECIAL` for Audio Flamingo 3); EOS `<|im_end|>`, pad `<|endoftext|>` as the released
    tokenizers have them."""
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
        vocab_size=500, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CHAT_CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", additional_special_tokens=special[3:]
    )


def save_tiny_qwen2_audio(folder: Path, seed: int = 0, template_in: str = "chat_template.jinja") -> Path:
    """Write a tiny random-weight Qwen2-Audio folder (config, safetensors, processor, tokenizer, chat
    template in `template_in`: `chat_template.jinja`, `chat_template.json` or `tokenizer_config.json`)."""
    import torch
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
        WhisperFeatureExtractor,
    )

    tokenizer = build_released_qwen2_tokenizer()
    config = Qwen2AudioConfig(
        audio_config=Qwen2AudioEncoderConfig(**TINY_TOWER),
        text_config=Qwen2Config(
            vocab_size=len(tokenizer),
            bos_token_id=None,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **TINY_QWEN2,
        ),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    extractor = WhisperFeatureExtractor(feature_size=128)
    processor = Qwen2AudioProcessor(
        feature_extractor=extractor, tokenizer=tokenizer, chat_template=QWEN2_AUDIO_CHAT_TEMPLATE
    )
    processor.save_pretrained(folder)
    _move_template(folder, template_in)
    return folder


def _move_template(folder: Path, where: str) -> None:
    """Keep the chat template in one of the three places a hub folder may hold it."""
    jinja, as_json = folder / "chat_template.jinja", folder / "chat_template.json"
    template = QWEN2_AUDIO_CHAT_TEMPLATE
    for path in (jinja, as_json):
        path.unlink(missing_ok=True)
    tok_config = folder / "tokenizer_config.json"
    fields = json.loads(tok_config.read_text())
    fields.pop("chat_template", None)
    if where == "chat_template.jinja":
        jinja.write_text(template)
    elif where == "chat_template.json":
        as_json.write_text(json.dumps({"chat_template": template}))
    elif where == "tokenizer_config.json":
        fields["chat_template"] = template
    else:
        raise ValueError(where)
    tok_config.write_text(json.dumps(fields, indent=2))


def clip(seconds: float, seed: int = 0, freq: float = 440.0) -> np.ndarray:
    """A 16 kHz float32 waveform: a tone with a little noise (no two seeds alike)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * QWEN2_AUDIO_RATE)) / QWEN2_AUDIO_RATE
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


def conversation(texts_and_clips: list) -> list[dict]:
    """A user turn: `texts_and_clips` in order (a str is text, anything else an audio item)."""
    content = [
        {"type": "text", "text": x} if isinstance(x, str) else {"type": "audio", "audio": x} for x in texts_and_clips
    ]
    return [{"role": "user", "content": content}]


def processor_inputs(folder: Path, batch: list[tuple[list, str | None]], side: str = "right") -> dict:
    """The processor's own inputs for one-turn conversations (each its items and an optional
    answer, written after the assistant's turn start and ended with `<|im_end|>`), padded on
    `side`; the waveforms are the audio items, in order."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    texts, audios = [], []
    for items, answer in batch:
        text = processor.apply_chat_template(conversation(items), add_generation_prompt=True, tokenize=False)
        texts.append(text if answer is None else f"{text}{answer}<|im_end|>")
        audios += [x for x in items if not isinstance(x, str)]
    processor.tokenizer.padding_side = side
    return processor(
        text=texts, audio=audios or None, sampling_rate=QWEN2_AUDIO_RATE, return_tensors="pt", padding=True
    )


def reference_logits(folder: Path, inputs: dict) -> torch.Tensor:
    """`Qwen2AudioForConditionalGeneration`'s logits (float32) on the processor's inputs."""
    import torch
    from transformers import Qwen2AudioForConditionalGeneration

    model = Qwen2AudioForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(**inputs).logits


# ---- a tiny released Audio Flamingo 3 (issue 38) -------------------------------------------------
# `save_tiny_audioflamingo3(folder)` writes a random-weight AudioFlamingo3ForConditionalGeneration
# built from transformers' config classes, saved as the hub leaves the released one
# (nvidia/audio-flamingo-3-hf): its AudioFlamingo3Processor (a WhisperFeatureExtractor of 128 bins,
# a Qwen2-style tokenizer trained here with `<sound>`), the hub's chat template in
# chat_template.jinja (transformers ships none for the family) and its generation settings.

AF3_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>"]

# The hub's processor chat template (its conversion script's): one `<sound>` per turn that holds
# an audio item, before the turn's texts joined, wherever the audio items stood.
AF3_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "{% for m in messages if m['content'] is not none %}"
    "<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}"
    "{{ m['content'] }}"
    "{% else %}"
    "{% set audio = namespace(found=False) %}"
    "{% set text_buf = namespace(v='') %}"
    "{% for c in m['content'] %}"
    "{% if c.get('type') == 'audio' or 'audio' in c %}"
    "{% set audio.found = True %}"
    "{% elif c.get('type') == 'text' or 'text' in c %}"
    "{% set text_buf.v = text_buf.v + c['text'] %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if audio.found %}{{ '<sound>' }}{% endif %}{{ text_buf.v }}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)
TINY_AF3_TOWER = dict(
    num_mel_bins=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64
)


def save_tiny_audioflamingo3(folder: Path, seed: int = 0, template: bool = True) -> Path:
    """Write a tiny random-weight Audio Flamingo 3 folder (config, safetensors, processor,
    tokenizer, generation settings; the chat template in chat_template.jinja unless `template`
    is False: a folder without one)."""
    import torch
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3EncoderConfig,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
        Qwen2Config,
        WhisperFeatureExtractor,
    )

    tokenizer = build_released_qwen2_tokenizer(AF3_SPECIAL)
    config = AudioFlamingo3Config(
        audio_config=AudioFlamingo3EncoderConfig(**TINY_AF3_TOWER),
        text_config=Qwen2Config(
            vocab_size=len(tokenizer),
            bos_token_id=None,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **TINY_QWEN2,
        ),
        audio_token_id=tokenizer.convert_tokens_to_ids("<sound>"),
    )
    torch.manual_seed(seed)
    model = AudioFlamingo3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor = AudioFlamingo3Processor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128, return_attention_mask=True),
        tokenizer=tokenizer,
        chat_template=AF3_CHAT_TEMPLATE,
    )
    processor.save_pretrained(folder)
    for name in ("chat_template.jinja", "chat_template.json"):
        (folder / name).unlink(missing_ok=True)
    fields = json.loads((folder / "tokenizer_config.json").read_text())
    fields.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(fields, indent=2))
    if template:
        (folder / "chat_template.jinja").write_text(AF3_CHAT_TEMPLATE)
    return folder


def af3_processor_inputs(folder: Path, batch: list[tuple[object, str, str | None]], side: str = "right") -> dict:
    """AF3's processor's own inputs for one-turn conversations, each (its one clip, the text, an
    optional answer written after the assistant's turn start and ended with `<|im_end|>`): the
    hub's chat template puts the clip's `<sound>` before the text; padded on `side`."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(folder)
    texts = []
    for wave, text, answer in batch:
        rendered = processor.apply_chat_template(conversation([wave, text]), add_generation_prompt=True, tokenize=False)
        texts.append(rendered if answer is None else f"{rendered}{answer}<|im_end|>")
    return processor(
        text=texts, audio=[wave for wave, _, _ in batch], sampling_rate=QWEN2_AUDIO_RATE, padding_side=side
    )


def fit_base_to_text(model, segments, steps: int = 40) -> None:
    """The tiny LLM's base weights trained a few steps on `segments` (`interleave.eval.retention`), so
    that its own language is better than chance and a large LoRA update can damage it (issue 39)."""
    import torch

    base = model.llm.get_base_model()
    weights = [p for n, p in base.named_parameters() if "lora_" not in n]
    for p in weights:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam(weights, lr=1e-2)
    width = max(len(s.ids) for s in segments)
    ids = torch.zeros((len(segments), width), dtype=torch.long)
    labels = torch.full_like(ids, -100)
    for row, s in enumerate(segments):
        ids[row, : len(s.ids)] = labels[row, : len(s.ids)] = torch.tensor(s.ids)
    with model.llm.disable_adapter():
        for _ in range(steps):
            optimizer.zero_grad()
            base(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss.backward()
            optimizer.step()
    for p in weights:
        p.requires_grad_(False)


def large_lora_update(model, scale: float = 3.0, seed: int = 1) -> None:
    """Every LoRA weight set to a seeded random draw times `scale`: an update that damages the LLM."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.llm.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * scale)


def sigint_as_in_a_terminal() -> None:
    """A test child's `preexec_fn`: SIGINT at its default, as a terminal's foreground job has it. A
    suite started in the background (`make test &`, a non-interactive shell) hands its children
    SIGINT ignored, Python keeps it ignored, and a Ctrl-C test would wait for a run to end."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
