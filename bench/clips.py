"""Sine-tone clips for the benchmarks: real files on local disk, cheap to write, distinct pitches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000


def sine_clips(folder: Path, n: int, seconds: float, first_hz: float, step_hz: float, name: str) -> list[Path]:
    """`n` clips `name.format(i)` in `folder` (clip i at `first_hz + i * step_hz`, amplitude 0.3);
    a clip already there is kept, so a rerun of a benchmark writes nothing again."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    paths = []
    for i in range(n):
        path = folder / name.format(i)
        if not path.exists():
            sf.write(path, (0.3 * np.sin(2 * np.pi * (first_hz + step_hz * i) * t)).astype(np.float32), SAMPLE_RATE)
        paths.append(path)
    return paths
