"""interleave.tools.demo.sounds: every class renders a plausible clip, and the classes are separable in
LTU's fbank features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from interleave.data.records import read_records
from interleave.encoders.audio import SAMPLE_RATE, load_fbank
from interleave.tools.demo.cli import DEMO_CLASSES, make_demo_data
from interleave.tools.demo.sounds import render_clip


@pytest.mark.parametrize("label", DEMO_CLASSES)
def test_every_class_renders_plausible_clip(label: str) -> None:
    clip = render_clip(label, np.random.default_rng(123))
    assert clip.dtype == np.float32 and clip.ndim == 1
    assert 2.0 * SAMPLE_RATE <= clip.size <= 4.0 * SAMPLE_RATE
    assert np.isfinite(clip).all() and 0.3 - 1e-6 <= np.abs(clip).max() <= 0.9 + 1e-6


# --- learnability ----------------------------------------------------------------------


def _features(path: Path) -> np.ndarray:
    """LTU fbank mean and std over the clip's real frames (the zero padding is dropped): 256-d."""
    frames = 1 + (soundfile.info(path).frames - 400) // 160  # kaldi: 25 ms window, 10 ms shift
    fbank = load_fbank(path).numpy()[:frames]
    return np.concatenate([fbank.mean(axis=0), fbank.std(axis=0)])


def _split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    records, problems = read_records(root / f"{split}.jsonl")
    assert problems == []
    # the labelling records; the two-clip pair records (answered yes/no) say nothing of one clip's class
    clips = {r.audio: DEMO_CLASSES.index(r.output.removeprefix("Labels: ")) for r in records if len(r.clips) == 1}
    assert len(clips) >= len(DEMO_CLASSES)
    feats = np.stack([_features(root / audio) for audio in clips])
    return feats, np.array(list(clips.values()))


@pytest.mark.slow  # the demo's clips synthesised and their fbanks computed
def test_classes_are_separable_in_ltu_features(tmp_path: Path) -> None:
    """Nearest class centroid on standardised fbank statistics beats chance (1/12) by far."""
    make_demo_data(tmp_path, train_per_class=8, heldout_per_class=4, seed=0)
    x_train, y_train = _split(tmp_path, "train")
    x_held, y_held = _split(tmp_path, "heldout")
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    x_train, x_held = (x_train - mean) / std, (x_held - mean) / std
    centroids = np.stack([x_train[y_train == c].mean(axis=0) for c in range(len(DEMO_CLASSES))])
    predicted = np.argmin(((x_held[:, None, :] - centroids[None]) ** 2).sum(axis=-1), axis=1)
    accuracy = float((predicted == y_held).mean())
    confused = [(DEMO_CLASSES[t], DEMO_CLASSES[p]) for t, p in zip(y_held, predicted) if t != p]
    assert accuracy >= 0.8, f"nearest-centroid accuracy {accuracy:.3f}; confusions: {confused}"
