"""Data set-up at scale: `InterleavedDataModule(group_by_length=True)` set-up plus the first
training batch on a 1M-record JSONL, the first run (no record index yet) and a later run (the
index reused), each in a fresh process, with the memory the records take.

The records are LTU-like: short instructions (closed-ended templates and open-ended questions,
half of them interleaved with `[AUDIO]`), answers of 5 to 60 words, over a few hundred 1-second
clips on local disk. The tokenizer is the demo's SmolLM2 (`builtin:smollm2-135m-instruct`); its
loading is timed apart, since the model loads it before the data module's set-up. Memory: the
process's resident set after the first batch minus before set-up, and its peak over the same span.
Also checks, on a sample of records, that the index's lengths are the collator's.
Targets (2 CPU cores): first run <= 90 s, later run <= 20 s, <= 1 GB for the records.

    .venv/bin/python bench/bench_data.py [--records 1000000] [--clips 300] [--folder DIR] [--no-results]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.clips import sine_clips  # noqa: E402
from bench.results import write_section  # noqa: E402

TOKENIZER = "builtin:smollm2-135m-instruct"
SOUNDS = (
    "dog barking siren car engine rain thunder speech music guitar piano drum bird chirping wind "
    "water running door slam footsteps baby crying applause laughter telephone ringing alarm clock "
    "train horn helicopter motorcycle cat meowing cough sneeze typing keyboard vacuum cleaner"
).split()
COMMON = (
    "the a an is it of in and to with this that there can be heard sound sounds audio clip from while "
    "some one two several loud quiet soft high low pitch rhythm near far background foreground "
    "person people man woman child playing making noise like similar indoor outdoor street room "
    "busy calm short long repeated continuous sudden gentle harsh distant close small large"
).split()
CLOSED = [
    "What is the sound in [AUDIO]?",
    "Classify the sound events in [AUDIO].",
    "What can be inferred from [AUDIO]?",
    "Write an audio caption describing the sound.",
    "What sound events can you hear?",
    "Is [AUDIO] a type of {s}?",
    "Does [AUDIO] contain a {s}?",
    "Describe [AUDIO] in one sentence.",
    "What is the mood of the audio?",
    "Where could this audio have been recorded?",
]


_rare = random.Random(7)
RARE = ["".join(_rare.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(_rare.randint(3, 10))) for _ in range(50_000)]


def word(rng: random.Random) -> str:
    """Common words, sound names, and one word in 20 from a long tail of 50,000 rare ones."""
    pick = rng.random()
    if pick < 0.6:
        return rng.choice(COMMON)
    if pick < 0.95:
        return rng.choice(SOUNDS)
    return rng.choice(RARE)


def write_records(path: Path, records: int, clips: int, seed: int = 0) -> None:
    """`records` LTU-like records over `clips` clip names, written in blocks (a few seconds per million)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        block = []
        for i in range(records):
            if rng.random() < 0.5:
                instruction = rng.choice(CLOSED).format(s=rng.choice(SOUNDS))
            else:
                question = " ".join(word(rng) for _ in range(rng.randint(3, 9)))
                where = rng.choice(("Is {q} in [AUDIO]?", "What {q}?", "Why is [AUDIO] {q}?", "How {q}?"))
                instruction = where.format(q=question)
            answer = " ".join(word(rng) for _ in range(rng.randint(5, 60))).capitalize() + "."
            block.append(
                json.dumps(
                    {
                        "id": f"r{i}",
                        "audio": f"clips/c{i % clips:04d}.wav",
                        "instruction": instruction,
                        "output": answer,
                        "task": "open-ended",
                        "dataset": "bench",
                    }
                )
            )
            if len(block) == 50_000:
                out.write("\n".join(block) + "\n")
                block = []
        if block:
            out.write("\n".join(block) + "\n")


def rss() -> tuple[int, int]:
    """(resident, peak resident) bytes of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def child(path: str) -> None:
    """One measured run: print a JSON line with the figures."""
    import gc

    from interleave.data.module import InterleavedDataModule
    from interleave.model.llm import load_tokenizer
    from interleave.spec import DataSpec

    started = time.perf_counter()
    tokenizer = load_tokenizer(TOKENIZER)
    tokenizer_s = time.perf_counter() - started
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
    before = rss()[0]
    started = time.perf_counter()
    from interleave.data.index_build import build_processes

    builders = build_processes(Path(path))
    dm = InterleavedDataModule(train_file=path, batch_size=4, group_by_length=True)
    dm.connect(DataSpec(tokenizer))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    seconds = time.perf_counter() - started
    after, peak = rss()
    import resource

    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the forked index builders
    sample = random.Random(1).sample(range(len(dm.train_set)), min(2000, len(dm.train_set)))
    collator = dm.collator()
    stored = dm.train_set.records.lengths()
    mismatches = int(sum(len(collator.encode(dm.train_set.records[i]).input_ids) != stored[i] for i in sample))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "tokenizer_s": tokenizer_s,
                "rss_mb": (after - before) / 2**20,
                "peak_mb": (peak - before) / 2**20,
                "builders_mb": children_mb,
                "builders": builders,
                "before_mb": before / 2**20,
                "records": len(dm.train_set),
                "rejected": len(dm.rejected),
                "batch": list(batch["input_ids"].shape),
                "sampled": len(sample),
                "mismatches": mismatches,
            }
        )
    )


def run_child(path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"measured run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--clips", type=int, default=300)
    parser.add_argument("--folder", type=Path, default=None, help="where the records go (default: a temporary folder)")
    parser.add_argument("--no-results", action="store_true", help="print, do not write bench/RESULTS.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bench_{args.records}.jsonl"
        started = time.perf_counter()
        write_records(path, args.records, args.clips)
        sine_clips(folder / "clips", args.clips, seconds=1, first_hz=200, step_hz=7, name="c{:04d}.wav")
        generated = time.perf_counter() - started
        for stale in folder.glob(f"{path.name}.*.index"):
            stale.unlink()
        first = run_child(path)
        later = run_child(path)
        load = os.getloadavg()
        size_mb = path.stat().st_size / 2**20
        index_mb = sum(p.stat().st_size for p in folder.glob(f"{path.name}.*.index")) / 2**20
    print(json.dumps({"first": first, "later": later, "generated_s": generated, "load": load}))
    if args.no_results:
        return
    body = f"""## Data set-up at scale: the record index

{args.records:,} LTU-like records ({size_mb:.0f} MB of JSONL: short instructions, half of them interleaved,
answers of 5-60 words) over {args.clips} one-second clips on local disk; the demo's SmolLM2 tokenizer;
`InterleavedDataModule(group_by_length=True).setup("fit")` plus the first training batch, each run in a
fresh process. Memory: resident set after the first batch minus before set-up (peak in brackets).

| run | set-up + first batch | memory for the records |
| --- | ---: | ---: |
| first (builds the index, {index_mb:.0f} MB beside the file) | {first["seconds"]:.1f} s | {first["rss_mb"]:.0f} MB ({first["peak_mb"]:.0f} MB peak) |
| later (index reused) | {later["seconds"]:.1f} s | {later["rss_mb"]:.0f} MB ({later["peak_mb"]:.0f} MB peak) |

The first run builds the index in {first["builders"]} forked processes (one per core, each a part of
the file); each peaked at {first["builders_mb"]:.0f} MB resident, the pages it shares with its parent
through fork included (the parent held {first["before_mb"]:.0f} MB before set-up: Python, torch,
transformers, the tokenizer).
Targets: first run <= 90 s, later run <= 20 s, <= 1 GB. Loading the tokenizer (before set-up, with the
model) took {later["tokenizer_s"]:.1f} s. Lengths from the index equal the collator's on
{later["sampled"]} sampled records: {later["sampled"] - later["mismatches"]} of {later["sampled"]}.
Load average while measured: {load[0]:.2f} (1 min), on a machine shared with other work."""
    print(body)
    write_section("bench_data", body)


if __name__ == "__main__":
    main()
