"""The playground under load: N users at once, each asking M questions about its own clip.

Starts the page (`interleave.tools.playground`, Gradio's queue, the model one request at a time) on
127.0.0.1 with a tiny random model (a 2-layer LLaMA, the tiny encoder; `--config` serves another,
e.g. configs/demo.yaml), then `--users` gradio_client clients ask `--asks` questions each at the
same time (their own clip, prompt and seed; `--repeats` answers of at most `--max-new-tokens`
tokens per layout). Writes to bench/RESULTS.md: answers returned, errors, p50/p95 latency of one
ask as a user sees it (queueing included), and the resident memory of the process (server and
clients) before and after, against a stated bound on its growth.

    .venv/bin/python bench/bench_playground.py [--users 8] [--asks 10] [--config CONFIG]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from bench.clips import sine_clips  # noqa: E402
from bench.results import write_section  # noqa: E402

TINY_LLAMA = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
)
TINY_ENCODER = {"embed_dim": 32, "depth": 1, "shared_depth": 1, "num_heads": 4, "mlp_ratio": 1.0}
WORDS = ("loud", "a siren", "music", "a dog", "speech", "an engine", "rain", "a bell")
GROWTH_BOUND_MB = 200.0  # resident memory may grow this much over a run (caches, Gradio's files), no more


@dataclass
class Load:
    """What the users got: latencies of the asks that answered, and the errors of those that did not."""

    latencies: list[float] = field(default_factory=list)
    answers: int = 0
    errors: list[str] = field(default_factory=list)
    halfway: int = 0  # asks after which `halfway_mb` is measured
    halfway_mb: float = float("nan")  # resident memory then: growth after it is growth per ask, not a one-off
    lock: threading.Lock = field(default_factory=threading.Lock)


def tiny_config(folder: Path, tokenizer: str) -> Path:
    """A config of a tiny random model (what the tests serve) with two records to satisfy the data module."""
    from interleave.model.llm import load_tokenizer

    tok = load_tokenizer(tokenizer)
    clip = sine_clips(folder / "audio", 1, 1.0, 440.0, 0.0, "c{}.wav")[0]
    rows = "".join(
        f'{{"id": "r{i}", "audio": "{clip}", "instruction": "What is [AUDIO]?", "output": "A tone."}}\n'
        for i in range(2)
    )
    for split in ("train", "val"):
        (folder / f"{split}.jsonl").write_text(rows)
    llm = {
        **TINY_LLAMA,
        "vocab_size": len(tok),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    }
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_checkpointing": False,
            "default_root_dir": str(folder / "runs"),
        },
        "model": {
            "llm": None,
            "llm_config": llm,
            "tokenizer": tokenizer,
            "encoder": "tiny",
            "encoder_kwargs": TINY_ENCODER,
            "lora_r": 4,
            "lora_alpha": 8,
        },
        "data": {
            "train_file": str(folder / "train.jsonl"),
            "val_file": str(folder / "val.jsonl"),
            "batch_size": 2,
            "max_length": 256,
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def user(client: Any, index: int, clip: Path, asks: int, repeats: int, max_new_tokens: int, load: Load) -> None:
    """One user: its own client, clip, prompt and seeds, asking `asks` times in a row."""
    from gradio_client import handle_file

    from interleave.tools.playground.cli import CLIP_SLOTS

    files = [handle_file(str(clip))] + [None] * (CLIP_SLOTS - 1)
    for ask in range(asks):
        start = time.perf_counter()
        try:
            message, interleaved, _, _, details = client.predict(
                f"Is [AUDIO] {WORDS[index % len(WORDS)]}?",
                "",
                "free text",
                *files,
                False,
                1.0,
                0.95,
                500,
                1.1,
                max_new_tokens,
                repeats,
                1000 * index + ask,
                False,
                api_name="/ask",
            )
            answered = details.get("layouts", {}).get("interleaved", {}).get("answers")
            problem = None if answered else message
        except Exception as err:  # noqa: BLE001 - a failed ask is counted and named, the run goes on
            problem = f"{type(err).__name__}: {err}"
        seconds = time.perf_counter() - start
        with load.lock:
            if problem is None:
                load.answers += 1
                load.latencies.append(seconds)
            else:
                load.errors.append(problem[:200])
            if load.answers + len(load.errors) == load.halfway:
                load.halfway_mb = rss_mb()


def run(config: Path, users: int, asks: int, repeats: int, max_new_tokens: int, folder: Path) -> dict:
    """Serve `config`'s zero-shot model on 127.0.0.1, warm it with one ask, then `users` x `asks` at once
    (the clients are made before memory is first measured: its growth is the asks')."""
    from gradio_client import Client

    from interleave.tools.playground.ask import build_served
    from interleave.tools.playground.cli import build_page, launch

    served = build_served(str(config), "none", "cpu")
    port = free_port()
    page = launch(build_page(served), "127.0.0.1", port, block=False)
    url = f"http://127.0.0.1:{port}/"
    clips = sine_clips(folder / "clips", users, 2.0, 300.0, 250.0, "user{}.wav")
    try:
        clients = [Client(url, verbose=False) for _ in range(users)]
        user(
            clients[0], 0, clips[0], 1, repeats, max_new_tokens, Load()
        )  # warm-up: first-call allocations are not growth
        before = rss_mb()
        load = Load(halfway=users * asks // 2)
        start = time.perf_counter()
        threads = [
            threading.Thread(target=user, args=(clients[i], i, clips[i], asks, repeats, max_new_tokens, load))
            for i in range(users)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        after = rss_mb()
    finally:
        page.close()
    return {"load": load, "before": before, "after": after, "wall": wall, "serving": served.serving}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def section(result: dict, users: int, asks: int, repeats: int, max_new_tokens: int, model: str, bound: float) -> str:
    load: Load = result["load"]
    growth = result["after"] - result["before"]
    errors = "".join(f"\n    - {e}" for e in dict.fromkeys(load.errors))
    return (
        f"## Playground under load (bench_playground.py)\n\n"
        f"{users} gradio_client users at once x {asks} asks each on 127.0.0.1, {model} ({result['serving']}); "
        f"per ask {repeats} sampled answer(s) of at most {max_new_tokens} tokens in each layout; Gradio's queue, "
        f"the model one request at a time. Clients and server share this process and its CPUs; memory is "
        f"measured after the clients are made and one warm-up ask.\n\n"
        f"- answers returned: {load.answers}/{users * asks}\n"
        f"- errors: {len(load.errors)}{errors}\n"
        f"- latency of one ask as a user sees it (queueing included): p50 {percentile(load.latencies, 50):.2f} s, "
        f"p95 {percentile(load.latencies, 95):.2f} s; {load.answers / result['wall']:.2f} asks/s over "
        f"{result['wall']:.1f} s\n"
        f"- resident memory: {result['before']:.0f} MB before (after one warm-up ask), {result['after']:.0f} MB after: "
        f"{growth:+.0f} MB, bound {bound:.0f} MB: {'within' if growth <= bound else 'BEYOND'} it "
        f"({load.halfway_mb:.0f} MB after half the asks: {result['after'] - load.halfway_mb:+.0f} MB over the second "
        f"half)\n"
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--asks", type=int, default=10, help="asks per user")
    parser.add_argument("--repeats", type=int, default=2, help="answers per layout and ask")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--config", help="serve this config's model (default: a tiny random model)")
    parser.add_argument("--tokenizer", default="builtin:smollm2-135m-instruct", help="the tiny model's tokenizer")
    parser.add_argument("--growth-bound-mb", type=float, default=GROWTH_BOUND_MB)
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md as it is")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-playground-") as tmp:
        folder = Path(tmp)
        config = Path(args.config) if args.config else tiny_config(folder, args.tokenizer)
        model = f"the model of {args.config}" if args.config else "a tiny random model (2-layer LLaMA, tiny encoder)"
        result = run(config, args.users, args.asks, args.repeats, args.max_new_tokens, folder)
    body = section(result, args.users, args.asks, args.repeats, args.max_new_tokens, model, args.growth_bound_mb)
    print(body)
    if not args.no_write:
        write_section("bench_playground", body)
    return body


if __name__ == "__main__":
    text = main()
    sys.exit(0 if "errors: 0" in text and "within it" in text else 1)
