"""Training throughput with the feature cache vs recomputing the frozen encoder, and the padding
that length grouping removes, in one run.

Throughput: SmolLM2-135M-Instruct with the full-size CAV-MAE encoder (random frozen weights, the
paper's shape), LoRA r=8 + projector, AdamW, batches of `--batch-size` demo training records;
`--steps` timed steps each way after one warm-up step, fbank loading included when recomputing.
Padding: the share of padding tokens over one epoch of training batches, shuffled vs grouped by
length, on the demo records and on records with LTU-like answer lengths (12 to 400 tokens,
synthetic text). Writes the figures to bench/RESULTS.md (targets: >= 2x with the cache on CPU,
<= 10 % padding with grouping).

    .venv/bin/python bench/bench_train.py [--steps 6] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import write_section  # noqa: E402
from interleave.data.audio_records import AudioRecords  # noqa: E402
from interleave.data.collate import Collator  # noqa: E402
from interleave.data.records import Record, read_records  # noqa: E402
from interleave.data.sampler import TrainingSampler  # noqa: E402
from interleave.encoders.cache import FeatureCache, fingerprint  # noqa: E402
from interleave.model.module import AudioLLM  # noqa: E402
from interleave.tools.demo.cli import ensure_demo_data  # noqa: E402


def timed_steps(model: AudioLLM, loader: DataLoader, steps: int) -> float:
    """Seconds per sample over `steps` optimizer steps, after one warm-up step."""
    optimizer = torch.optim.AdamW(model.trainable_parameters().values(), lr=1e-4)
    batches = iter(loader)
    start, samples = 0.0, 0
    for step in range(steps + 1):
        if step == 1:
            start, samples = time.perf_counter(), 0
        batch = next(batches)
        loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        samples += len(batch["ids"])
    return samples / (time.perf_counter() - start)


def padding(lengths: list[int], order: list[int], batch_size: int) -> float:
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return 1 - sum(lengths) / sum(max(lengths[j] for j in b) * len(b) for b in batches)


def padding_rows(collator: Collator, records: list[Record], batch_size: int) -> tuple[float, float]:
    lengths = [len(collator.encode(r).input_ids) for r in records]
    shuffled = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0)).tolist()
    grouped = list(TrainingSampler(len(lengths), batch_size, lengths, seed=0))
    return padding(lengths, shuffled, batch_size), padding(lengths, grouped, batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()

    data = ensure_demo_data(Path("data/demo"))
    records, _ = read_records(data / "train.jsonl")
    torch.manual_seed(0)
    model = AudioLLM(llm="builtin:smollm2-135m-instruct", encoder="cavmae")
    collator = Collator(model.tokenizer, max_length=512)
    plain = AudioRecords(records, data)
    with tempfile.TemporaryDirectory() as folder:
        cache = FeatureCache(folder, fingerprint(model.audio_encoder))
        start = time.perf_counter()
        stats = cache.ensure(model.audio_encoder, plain.paths()[: (args.steps + 1) * args.batch_size])
        fill = (time.perf_counter() - start) / max(1, stats.built)
        cached = AudioRecords(records, data, cache)
        loader = dict(batch_size=args.batch_size, collate_fn=collator, shuffle=False)
        recompute = timed_steps(model, DataLoader(plain, **loader), args.steps)
        with_cache = timed_steps(model, DataLoader(cached, **loader), args.steps)

    rng = random.Random(0)
    words = "the a sound of dog barking engine siren loud soft high low pitch rhythm near far".split()
    ltu_like = [
        Record(
            id=str(i),
            audio="x.wav",
            instruction="What can be inferred from [AUDIO]?",
            output=" ".join(rng.choice(words) for _ in range(rng.randint(12, 400))),
        )
        for i in range(2000)
    ]
    demo_pad = padding_rows(collator, records, args.batch_size)
    ltu_pad = padding_rows(collator, ltu_like, args.batch_size)

    body = f"""## Training: feature cache vs recomputing the encoder; padding with length grouping

SmolLM2-135M-Instruct + full-size CAV-MAE (random frozen weights), LoRA r=8 + projector, AdamW,
batch {args.batch_size} demo training records, {args.steps} timed steps each way.

| training step input | samples/s |
| --- | ---: |
| fbank, encoder recomputed every step | {recompute:.2f} |
| cached features (memory-mapped safetensors) | {with_cache:.2f} |

Speed-up with the cache: **{with_cache / recompute:.1f}x** (target >= 2x on CPU). Filling the cache
cost {fill:.2f} s per clip, once.

| records (batch {args.batch_size}) | padding, shuffled | padding, grouped by length |
| --- | ---: | ---: |
| demo training set ({len(records)} records) | {100 * demo_pad[0]:.1f} % | {100 * demo_pad[1]:.1f} % |
| LTU-like answer lengths, 12-400 words (2000 synthetic records) | {100 * ltu_pad[0]:.1f} % | {100 * ltu_pad[1]:.1f} % |

Target: <= 10 % padding with grouping."""
    print(body)
    write_section("bench_train", body)


if __name__ == "__main__":
    main()
