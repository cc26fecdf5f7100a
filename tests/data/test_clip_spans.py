"""interleave.data.clip_spans: a record's span lengths from its clips' headers equal the counts the
encoder gives the loaded clips (Qwen2-Audio: at any sample rate, up to and past 30 s); a clip
whose header cannot be read counts as the longest span."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from interleave.data.clip_spans import ClipSpans, samples_at_16k
from interleave.data.records import Record
from interleave.encoders import build_encoder
from interleave.encoders.audio import load_waveform


@pytest.fixture(scope="module")
def tower():
    return build_encoder("qwen2_audio:tiny")


@pytest.mark.parametrize(
    "seconds, rate",
    [(0.3, 16000), (1.0, 16000), (2.55, 44100), (7.77, 22050), (10.0, 8000), (29.999, 16000), (31.0, 48000)],
)
def test_header_spans_are_the_loaded_clips_counts(tmp_path, tower, seconds, rate):
    path = tmp_path / "c.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
    assert samples_at_16k(path) == len(load_waveform(path))
    loaded = int(tower.positions(tower.load_inputs(path)[None])[0])
    record = Record(id="r", audio=("c.wav", str(path)), instruction="[AUDIO] and [AUDIO]")
    assert ClipSpans(tmp_path, tower.positions_for_samples)(record) == [loaded, loaded]


def test_an_unreadable_clip_counts_as_the_longest_span(tmp_path, tower):
    (tmp_path / "bad.wav").write_text("not audio")
    spans = ClipSpans(tmp_path, tower.positions_for_samples)(Record(id="r", audio="bad.wav", instruction="x"))
    assert spans == [tower.max_positions] == [750]
