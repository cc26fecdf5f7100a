"""Training and SHARD evaluation at the paper's size: a 7B LLaMA-shaped model on one GPU, or a
released audio LLM's shape (`--model qwen2-audio-7b`, `--model af3-7b`).

The model is LTU's shape with random weights: a LLaMA-7B-shaped LLM (bf16, SDPA attention) with
LoRA r=8 on q_proj/v_proj, LTU's projector and the full-size CAV-MAE audio branch, frozen (as in
the paper configs, which load the LLM in bf16 and train under bf16-mixed). Training samples have
LTU's lengths: 32 audio positions and `--text-tokens` text tokens (108), the last
`--answer-tokens` of them labelled; the encoder runs on each sample's fbank at every step.

For each micro-batch (4 and, on a GPU, the largest that fits, found by doubling until out of
memory), with and without gradient checkpointing: tokens/s, MFU and peak memory over `--steps`
timed AdamW steps after one warm-up step. Then SHARD evaluation queries/s of the same model
(`interleave.eval.evaluate.answer_queries`, default mode, `--eval-queries` queries x 4 repeats,
cap `--cap`; random weights seldom write EOS, so answers run near the cap: a worst case).

MFU counts the work the step must do, not what checkpointing recomputes. LoRA leaves the base
weights frozen, so their weight gradients are never computed: per sample (T tokens, A labelled)

    FLOPs = 4 * N_body * T            (forward 2 N T + activation gradients 2 N T, frozen weights)
          + 6 * L * d * T^2           (causal attention scores and values: forward 2 L d T^2, backward 4 L d T^2)
          + 4 * V * d * A             (LM head on the labelled positions, forward + activation gradients)
          + 2 * N_enc * P             (frozen encoder forward, P = 512 patches)

with N_body the LLM's decoder weights, L layers, width d, vocabulary V; LoRA's and the
projector's own weight gradients (under 0.1 %) are left out. MFU = FLOPs / (seconds x peak),
the peak being the device's dense bf16 figure (`--peak-tflops`, known for A100/H100/H200).

The released shapes (`--model`): random weights of the released sizes, nothing downloaded.
`qwen2-audio-7b`: Qwen2-Audio-7B's tower (Whisper-large-v3's encoder, 32 layers of 1280), its
Linear projector, a Qwen-7B-shaped LLM (32 layers, width 4096, MLP 11008, vocabulary 156032).
`af3-7b`: Audio Flamingo 3's tower (the same size), its Linear -> GELU -> Linear projector and a
Qwen2.5-7B-shaped LLM (28 layers, width 3584, MLP 18944, 4 key/value heads, vocabulary 151672).
Each sample is a 10-s clip (250 audio positions, 25 per second) inside a chat prompt of
`--text-tokens` (128: LTU's 108 and the chat template's 20), the LLM and the frozen tower in bf16
(`llm_dtype: bfloat16`). The tower runs over the whole 30-s window it is given (the padding is
masked, but computed), so its FLOPs per clip replace CAV-MAE's patch term:

    2 * N_enc * F + 4 * L_enc * d_enc * F^2    (F = 1500 frames after the strided convolution)

Evaluation: answers/s of the SHARD evaluation on those shapes (10-s clips, the collator of the
model's own spec). Without a CUDA GPU a full-size run is skipped with a message (exit 0).

`--toy` runs the same code at toy sizes (a 2-layer LLM, the tiny encoder) on the CPU, as the
tests do. Writes bench/RESULTS.md (a toy run says so in its heading).

    .venv/bin/python bench/bench_gpu.py [--model ltu-7b|qwen2-audio-7b|af3-7b] [--toy] [--steps 5]
        [--batch-sizes 4 8] [--tokenizer SPEC]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.clips import sine_clips  # noqa: E402
from bench.results import write_section  # noqa: E402
from interleave import NUM_AUDIO_TOKENS  # noqa: E402
from interleave.data.collate import IGNORE_INDEX, Collator  # noqa: E402
from interleave.eval.evaluate import EvalInputs, answer_queries  # noqa: E402
from interleave.eval.query import Query  # noqa: E402
from interleave.eval.settings import EvalSettings  # noqa: E402
from interleave.model.generation import Sampling  # noqa: E402
from interleave.model.llm import load_tokenizer  # noqa: E402
from interleave.model.module import AudioLLM  # noqa: E402

LLAMA_7B = dict(
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=2048,
)
TOY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
)
QWEN_7B = dict(  # Qwen2-Audio-7B's language model (its text_config)
    model_type="qwen2",
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    vocab_size=156032,
    max_position_embeddings=8192,
)
QWEN25_7B = dict(  # Audio Flamingo 3's language model (Qwen2.5-7B)
    model_type="qwen2",
    hidden_size=3584,
    intermediate_size=18944,
    num_hidden_layers=28,
    num_attention_heads=28,
    num_key_value_heads=4,
    vocab_size=151672,
    max_position_embeddings=32768,
)
PEAK_BF16_TFLOPS = {"A100": 312.0, "H100": 989.0, "H200": 989.0}  # dense, SXM
PATCHES = 512  # CAV-MAE: a 1024 x 128 fbank in 16 x 16 patches
CLIP_SECONDS = 10.0  # the released shapes' clips: 250 positions


@dataclass(frozen=True)
class Shape:
    """A benchmarked model's shape: its LLM (a config dict; None: LLaMA-7B), encoder kind, projector
    kind and what it says of itself in the results."""

    llm: dict | None
    encoder: str
    toy_encoder: str
    projector: str
    text_tokens: int  # the default text positions per sample (the chat models' include their template's)
    title: str


MODELS = {
    "ltu-7b": Shape(None, "cavmae", "tiny", "ltu", 108, "LLaMA-7B-shaped LLM (bf16, SDPA), full-size CAV-MAE (frozen)"),
    "qwen2-audio-7b": Shape(
        QWEN_7B,
        "qwen2_audio:base",
        "qwen2_audio:tiny",
        "linear",
        128,
        "Qwen2-Audio-7B-shaped (Qwen-7B LLM, Whisper-large-v3-sized tower, Linear projector; bf16, SDPA; random weights)",
    ),
    "af3-7b": Shape(
        QWEN25_7B,
        "audioflamingo3:base",
        "audioflamingo3:tiny",
        "mlp",
        128,
        "Audio-Flamingo-3-shaped (Qwen2.5-7B LLM, Whisper-large-v3-sized tower, MLP projector; bf16, SDPA; "
        "random weights)",
    ),
}


@dataclass
class Run:
    batch: int
    checkpointing: bool
    seconds: float | None  # per step; None when out of memory
    tokens_per_s: float = 0.0
    mfu: float | None = None
    peak_gib: float | None = None


def build(
    tokenizer: str, toy: bool, checkpointing: bool, device: torch.device, tok: object, model_name: str = "ltu-7b"
) -> AudioLLM:
    """The benchmark's model; `tok` is the tokenizer `tokenizer` names, already loaded (for its ids).
    A released shape keeps its own vocabulary size (the LM head's cost) over the tokenizer's ids."""
    shape = MODELS[model_name]
    base = LLAMA_7B if shape.llm is None else shape.llm
    config = {
        **base,
        **(TOY if toy else {}),
        "vocab_size": len(tok) if toy or shape.llm is None else max(len(tok), shape.llm["vocab_size"]),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
        "attn_implementation": "sdpa",
    }
    model = AudioLLM(
        llm=None,
        llm_config=config,
        tokenizer=tokenizer,
        llm_dtype="float32" if toy else "bfloat16",
        encoder=shape.toy_encoder if toy else shape.encoder,
        projector=shape.projector,
        lora_r=8,
        lora_alpha=16,
        gradient_checkpointing=checkpointing,
    )
    if shape.llm is not None and not toy:  # the frozen tower in bf16, as llm_dtype loads a released one
        model.audio_encoder.to(torch.bfloat16)
    return model.to(device)


def audio_positions(model: AudioLLM) -> int:
    """Audio positions per sample: 32 for LTU, a 10-s clip's own count for a variable-length tower (250)."""
    if not model.audio_encoder.variable_length:
        return NUM_AUDIO_TOKENS
    return model.audio_encoder.positions_for_samples(int(CLIP_SECONDS * 16000))


def encoder_flops(model: AudioLLM) -> tuple[float, str]:
    """A clip's frozen-encoder forward FLOPs and the term that prints them: CAV-MAE's patches, or a
    Whisper-style tower's 30-s window (1500 frames after its strided convolution)."""
    encoder = model.audio_encoder
    n_enc = sum(p.numel() for p in encoder.parameters())
    if not encoder.variable_length:
        return 2.0 * n_enc * PATCHES, f"2*N_enc*P = 2*{n_enc:.3e}*{PATCHES}"
    config = encoder.model.config
    frames, layers, width = 1500, config.num_hidden_layers, config.hidden_size
    total = 2.0 * n_enc * frames + 4.0 * layers * width * frames * frames
    return total, f"2*N_enc*F + 4*L_enc*d_enc*F^2 = 2*{n_enc:.3e}*{frames} + 4*{layers}*{width}*{frames}^2"


def flops_per_sample(model: AudioLLM, text_tokens: int, answer_tokens: int) -> tuple[float, str]:
    """The formula of the module docstring, and the line that prints it with this model's numbers."""
    config = model.llm.get_base_model().config
    d, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    kv = config.num_key_value_heads * (d // config.num_attention_heads)
    n_body = layers * (2 * d * d + 2 * d * kv + 3 * d * config.intermediate_size)
    encoder, encoder_line = encoder_flops(model)
    t = text_tokens + audio_positions(model)
    total = 4 * n_body * t + 6 * layers * d * t * t + 4 * vocab * d * answer_tokens + encoder
    name = encoder_line.split(" = ")[0]
    line = (
        f"FLOPs/sample = 4*N_body*T + 6*L*d*T^2 + 4*V*d*A + {name} = 4*{n_body:.3e}*{t} + 6*{layers}*{d}*{t}^2 "
        f"+ 4*{vocab}*{d}*{answer_tokens} + {encoder_line.split(' = ')[1]} = {total:.4e}"
    )
    return float(total), line


CHAT_PREFIX = 16  # a chat model's positions before the clip: its system prompt and the user turn's start


def training_batch(model: AudioLLM, batch: int, text_tokens: int, answer_tokens: int, device: torch.device) -> dict:
    """LTU's layout at LTU's lengths: BOS, the 32 audio positions, then the text; the answer labelled.
    A released shape: a chat prompt's first positions, the 10-s clip's span, then the rest of the text."""
    gen = torch.Generator().manual_seed(batch)
    positions = audio_positions(model)
    start = min(CHAT_PREFIX, text_tokens // 2) if model.audio_encoder.variable_length else 1
    length = positions + text_tokens
    ids = torch.randint(3, len(model.tokenizer), (batch, length), generator=gen)
    audio_mask = torch.zeros(batch, length, dtype=torch.bool)
    audio_mask[:, start : start + positions] = True
    ids[audio_mask] = model.tokenizer.pad_token_id
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, -answer_tokens:] = ids[:, -answer_tokens:]
    if model.audio_encoder.variable_length:  # the tower's own inputs of 10-s clips of noise
        waves = torch.randn(batch, int(CLIP_SECONDS * 16000), generator=gen) * 0.1
        audio = torch.stack([model.audio_encoder.inputs_from_waveform(w) for w in waves])
    else:
        audio = torch.randn(batch, 1024, 128, generator=gen)
    out = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
        "audio_mask": audio_mask,
        "audio": audio,
    }
    return {k: v.to(device) for k, v in out.items()}


def train_steps(model: AudioLLM, batch: dict, steps: int, device: torch.device) -> float:
    """Seconds per AdamW step (bf16 autocast on a GPU, as bf16-mixed), after one warm-up step."""
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - start) / steps


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(
    model: AudioLLM,
    batch_size: int,
    checkpointing: bool,
    args: argparse.Namespace,
    device: torch.device,
    flops: float,
    peak: float | None,
) -> Run:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        batch = training_batch(model, batch_size, args.text_tokens, args.answer_tokens, device)
        seconds = train_steps(model, batch, args.steps, device)
    except torch.cuda.OutOfMemoryError:
        return Run(batch_size, checkpointing, None)
    tokens = batch_size * (args.text_tokens + audio_positions(model))
    mfu = flops * batch_size / seconds / (peak * 1e12) if peak else None
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return Run(batch_size, checkpointing, seconds, tokens / seconds, mfu, peak_gib)


def eval_queries_per_s(model: AudioLLM, n: int, cap: int, device: torch.device) -> tuple[float, float]:
    """SHARD queries/s of `answer_queries` (default mode, 4 repeats, batches of 32), and the mean
    answer length in tokens: synthetic queries over a few synthetic clips (10-s clips for a
    variable-length tower), a third of each task."""
    model.eval()
    seconds = CLIP_SECONDS if model.audio_encoder.variable_length else 2
    with tempfile.TemporaryDirectory() as tmp:
        clips = [
            str(p) for p in sine_clips(Path(tmp), 4, seconds=seconds, first_hz=300, step_hz=150, name="clip{}.wav")
        ]
        queries = []
        for i in range(n):
            task = ("synonym", "hypernym", "identity")[i % 3]
            queries.append(
                Query(
                    id=f"q{i}",
                    task=task,
                    label="Siren",
                    word="siren",
                    candidate=None if task == "identity" else "alarm",
                    truth=None if task == "identity" else "yes",
                    audio=clips[i % len(clips)],
                    where=f"bench:{i}",
                )
            )
        settings = EvalSettings(sampling=Sampling(max_new_tokens=cap), repeats=4, batch_size=32)
        inputs = EvalInputs(Collator.of_spec(model.data_spec(), padding_side="left", with_answer=False))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            sync(device)
            start = time.perf_counter()
            rows = answer_queries(model, queries, "interleaved", settings, inputs, {})
            sync(device)
    seconds = time.perf_counter() - start
    answers = [a for r in rows for a in r.answers]
    tokens = sum(len(model.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers) / len(answers)
    return n / seconds, tokens


def batch_sizes(args: argparse.Namespace, device: torch.device) -> list[int] | None:
    """The micro-batches to try: given, or 4 then doubling until out of memory (None) on a GPU."""
    if args.batch_sizes:
        return list(args.batch_sizes)
    return None if device.type == "cuda" else [4, 8]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", choices=sorted(MODELS), default="ltu-7b", help="the shape: LTU's, or a released audio LLM's"
    )
    parser.add_argument("--toy", action="store_true", help="toy sizes on the CPU (what the tests run)")
    parser.add_argument("--tokenizer", default="builtin:smollm2-135m-instruct", help="tokenizer spec (model.tokenizer)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per setting")
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=None,
        help="micro-batches (default: 4 and doubling until out of memory on a GPU; 4 8 on the CPU)",
    )
    parser.add_argument("--text-tokens", type=int, default=None, help="default 108 (LTU), 128 (chat models)")
    parser.add_argument("--answer-tokens", type=int, default=40)
    parser.add_argument("--eval-queries", type=int, default=64)
    parser.add_argument("--cap", type=int, default=400, help="new-token cap of the SHARD evaluation")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (for MFU)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md as it is")
    args = parser.parse_args(argv)
    shape = MODELS[args.model]
    if args.text_tokens is None:
        args.text_tokens = shape.text_tokens
    if not args.toy and not torch.cuda.is_available():
        message = f"bench_gpu --model {args.model}: skipped, no CUDA GPU here (--toy runs the script at toy sizes)"
        print(message)
        return message

    load_start = os.getloadavg()[0]
    device = torch.device("cuda" if torch.cuda.is_available() and not args.toy else "cpu")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    runs: list[Run] = []
    formula = ""
    tok = load_tokenizer(args.tokenizer)
    for checkpointing in (False, True):
        model = build(args.tokenizer, args.toy, checkpointing, device, tok, args.model)
        positions = audio_positions(model)
        flops, formula = flops_per_sample(model, args.text_tokens, args.answer_tokens)
        sizes = batch_sizes(args, device)
        size = 4
        while True:
            run = measure(model, sizes.pop(0) if sizes is not None else size, checkpointing, args, device, flops, peak)
            runs.append(run)
            print(
                f"checkpointing={checkpointing} batch={run.batch}: "
                + (
                    f"{run.tokens_per_s:.0f} tokens/s, MFU {fmt(run.mfu, '{:.1%}')}, peak {fmt(run.peak_gib, '{:.1f} GiB')}"
                    if run.seconds
                    else "out of memory"
                ),
                flush=True,
            )
            size *= 2
            if (sizes is not None and not sizes) or run.seconds is None or size > 512:
                break
        if checkpointing:
            qps, mean_tokens = eval_queries_per_s(model, args.eval_queries, args.cap, device)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    body = section(runs, formula, name, peak, qps, mean_tokens, args, positions)
    body += f"\nLoad average (1 min) at the start and the end: {load_start:.2f}, {os.getloadavg()[0]:.2f}."
    print(body)
    if not args.no_write:
        write_section("bench_gpu" if args.model == "ltu-7b" else f"bench_gpu_{args.model}", body)
    return body


def fmt(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def section(
    runs: list[Run],
    formula: str,
    device: str,
    peak: float | None,
    qps: float,
    mean_tokens: float,
    args: argparse.Namespace,
    positions: int = NUM_AUDIO_TOKENS,
) -> str:
    size = (
        f"toy sizes (2-layer LLM, tiny encoder) on the CPU, to check the script ({args.model}); not the paper's size"
        if args.toy
        else MODELS[args.model].title
    )
    lines = [
        f"## GPU benchmark: {size}",
        "",
        f"Device: {device}; peak {fmt(peak, '{:.0f} TFLOPS')} (dense bf16). LoRA r=8 on q/v + projector; "
        f"{args.text_tokens} text + {positions} audio tokens per sample, {args.answer_tokens} labelled; "
        f"AdamW, {args.steps} timed steps after one warm-up.",
        "",
        f"`{formula}`",
        "",
        "| micro-batch | gradient checkpointing | s/step | tokens/s | MFU | peak memory |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in runs:
        if r.seconds is None:
            lines.append(f"| {r.batch} | {'yes' if r.checkpointing else 'no'} | out of memory | | | |")
        else:
            lines.append(
                f"| {r.batch} | {'yes' if r.checkpointing else 'no'} | {r.seconds:.3f} | {r.tokens_per_s:.0f} | "
                f"{fmt(r.mfu, '{:.1%}')} | {fmt(r.peak_gib, '{:.1f} GiB')} |"
            )
    lines += [
        "",
        f"SHARD evaluation (default mode, {args.eval_queries} queries x 4 repeats, batches of 32, cap {args.cap}): "
        f"**{qps:.2f} queries/s** ({4 * qps:.2f} answers/s), mean answer {mean_tokens:.0f} tokens "
        "(random weights seldom end an answer).",
    ]
    if not args.toy:
        lines.append("Targets on an H100/H200: MFU >= 35 %; peak memory < 40 GB at micro-batch 4.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
