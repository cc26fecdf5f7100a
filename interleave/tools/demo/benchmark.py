"""The demo's multiple-choice benchmark in MMAU's format (`benchmark.json`), about its held-out clips.

One item per held-out clip (up to `BENCHMARK_CLIPS_PER_CLASS` per class): "Which sound class is
heard in the clip?", the clip's class and three other classes as the choices in a seeded order,
the class as the answer; `category` groups the classes (tones, noises, signals and rhythms). A JSON
array of MMAU's fields (`id`, `audio_id` relative to the file, `question`, `choices`, `answer`,
`dataset`, `task`, `split`, `category`, `sub-category`, `difficulty`), so `configs/demo.yaml`
evaluates it as a run evaluates MMAU test-mini (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interleave.eval.query import slug
from interleave.files import write_text_atomic

BENCHMARK_FILE = "benchmark.json"
BENCHMARK_CLIPS_PER_CLASS = 2
QUESTION = "Which sound class is heard in the clip?"
CATEGORIES = {
    "Sine wave": "Tones",
    "Beep, bleep": "Tones",
    "Dial tone": "Tones",
    "Chirp tone": "Tones",
    "Whistle": "Tones",
    "White noise": "Noises",
    "Pink noise": "Noises",
    "Buzz": "Noises",
    "Siren": "Signals and rhythms",
    "Tick": "Signals and rhythms",
    "Drum": "Signals and rhythms",
    "Heart sounds, heartbeat": "Signals and rhythms",
}


def benchmark_items(classes: Sequence[str], heldout_per_class: int, seed: int) -> list[dict[str, Any]]:
    """The items, class by class: the clip's class and three other classes, in a seeded order."""
    rng = random.Random(f"demo/{seed}/benchmark")
    items = []
    for label in classes:
        for k in range(min(BENCHMARK_CLIPS_PER_CLASS, heldout_per_class)):
            choices = [label, *rng.sample([c for c in classes if c != label], 3)]
            rng.shuffle(choices)
            items.append(
                {
                    "id": f"demo-{slug(label)}-{k}",
                    "audio_id": f"./audio/heldout/{slug(label)}_{k}.wav",
                    "question": QUESTION,
                    "choices": choices,
                    "answer": label,
                    "dataset": "demo",
                    "task": "sound",
                    "split": "demo",
                    "category": CATEGORIES.get(label, "Other"),
                    "sub-category": None,
                    "difficulty": "easy",
                }
            )
    return items


def write_benchmark(out_dir: Path, classes: Sequence[str], heldout_per_class: int, seed: int) -> int:
    """Write `benchmark.json` into the demo folder; return its number of items."""
    items = benchmark_items(classes, heldout_per_class, seed)
    write_text_atomic(out_dir / BENCHMARK_FILE, json.dumps(items, indent=2, ensure_ascii=False) + "\n")
    return len(items)
