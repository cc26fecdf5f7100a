"""interleave.encoders.audioflamingo3: AF3's released tower as an encoder kind. A clip is cut into
30-s windows joined into one span; its features are the ones `AudioFlamingo3ForConditionalGeneration`
hands its LLM's audio positions before the projector, its count of positions is the processor's
(25 per second: 34 s = 750 + 100), a clip encoded alone equals it beside a longer one, and the
header-based count (`positions_for_samples`) equals the loaded one."""

from __future__ import annotations

import pytest
import torch

from interleave.encoders import build_encoder
from interleave.encoders.audioflamingo3 import AudioFlamingo3Tower
from interleave.encoders.base import stack_clips
from interleave.errors import InterleaveError
from tests.helpers import af3_processor_inputs, clip, save_tiny_audioflamingo3


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_audioflamingo3(tmp_path_factory.mktemp("af3"))


def _inputs(encoder, waveforms):
    return stack_clips([encoder.inputs_from_waveform(torch.from_numpy(w)) for w in waveforms])


def test_features_are_what_the_released_model_projects(folder):
    from transformers import AudioFlamingo3ForConditionalGeneration

    waveforms = [clip(1.0, seed=1), clip(30.0, seed=2), clip(34.0, seed=3)]
    encoder = build_encoder("audioflamingo3", path=str(folder))
    full = AudioFlamingo3ForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    seen = []
    full.model.multi_modal_projector.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    with torch.no_grad():
        full(**af3_processor_inputs(folder, [(w, "Hi", None) for w in waveforms]))
    inputs = _inputs(encoder, waveforms)
    assert inputs.shape == (3, 2 * 3000, 129)  # the 34-s clip's two windows; the others padded with one empty
    counts = encoder.positions(inputs)
    assert counts.tolist() == [25, 750, 850]
    ours = encoder(inputs)
    assert ours.shape == (3, 850, encoder.width)
    # the released model's windows in order: clip 1's, clip 2's, clip 3's two (750 + 100 valid rows)
    theirs = [seen[0][0, :25], seen[0][1, :750], torch.cat([seen[0][2], seen[0][3, :100]])]
    for row, expected, n in zip(ours, theirs, counts):
        assert (row[:n] - expected).abs().max() <= 1e-5


@pytest.mark.parametrize("seconds", [0.3, 1.0, 10.0, 29.99, 30.0, 34.0, 61.7])
def test_positions_are_the_processors_count(folder, seconds):
    from transformers import AutoProcessor

    encoder = build_encoder("audioflamingo3", path=str(folder))
    audio_id = AutoProcessor.from_pretrained(folder).tokenizer.convert_tokens_to_ids("<sound>")
    expected = int((af3_processor_inputs(folder, [(clip(seconds), "Hi", None)])["input_ids"] == audio_id).sum())
    assert encoder.positions(_inputs(encoder, [clip(seconds)])).tolist() == [expected]
    assert encoder.positions_for_samples(len(clip(seconds))) == expected


def test_ten_minutes_at_most():
    encoder = build_encoder("audioflamingo3:tiny")
    assert encoder.windows(16000 * 700) == [480000] * 20
    assert encoder.positions_for_samples(16000 * 700) == encoder.max_positions == 15000


def test_a_clip_alone_equals_it_beside_a_longer_one():
    torch.manual_seed(0)
    encoder = build_encoder("audioflamingo3:tiny")
    short, long = clip(1.2, seed=4), clip(40.0, seed=5)
    alone = encoder(_inputs(encoder, [short]))[0, :30]
    batched = encoder(_inputs(encoder, [long, short]))[1, :30]
    assert (alone - batched).abs().max() <= 1e-5


def test_a_folder_of_another_family_is_refused(tmp_path):
    from transformers import WhisperConfig

    WhisperConfig().save_pretrained(tmp_path)
    with pytest.raises(InterleaveError, match="holds a 'whisper' model, not a 'audioflamingo3' one"):
        AudioFlamingo3Tower(path=str(tmp_path))


def test_unknown_fields_are_refused():
    with pytest.raises(InterleaveError, match="not fields of the audioflamingo3 encoder's config"):
        build_encoder("audioflamingo3:tiny", overrides={"d_model_typo": 8})


@pytest.mark.parametrize(("seconds", "rate"), [(1.0, 16000), (34.0, 44100), (61.7, 8000)])
def test_header_spans_are_the_loaded_clips_counts(tmp_path, seconds, rate):
    """Where no clip is loaded (the record checks, the index's lengths) the windows rule reads the
    header: the same count as the loaded clip's, past one window too."""
    import numpy as np
    import soundfile as sf

    from interleave.data.clip_spans import ClipSpans
    from interleave.data.records import Record

    encoder = build_encoder("audioflamingo3:tiny")
    path = tmp_path / "c.wav"
    rng = np.random.default_rng(0)
    sf.write(path, (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
    loaded = int(encoder.positions(encoder.load_inputs(path)[None])[0])
    record = Record(id="r", audio=str(path), instruction="What is it?")
    assert ClipSpans(tmp_path, encoder.positions_for_samples)(record) == [loaded]
    assert loaded == pytest.approx(25 * seconds, abs=1)


def test_the_feature_cache_keeps_each_clips_own_windows(tmp_path):
    """Clips of one and of two windows encoded in one batch of the cache: each entry its clip's own
    span (25 and 850 rows), equal to the clip encoded alone."""
    import soundfile as sf

    from interleave.encoders.cache import FeatureCache

    torch.manual_seed(0)
    encoder = build_encoder("audioflamingo3:tiny")
    paths = []
    for k, seconds in enumerate((1.0, 34.0)):
        sf.write(tmp_path / f"c{k}.wav", clip(seconds, seed=k), 16000)
        paths.append(str(tmp_path / f"c{k}.wav"))
    cache = FeatureCache.of(tmp_path / "cache", encoder)
    assert cache.ensure(encoder, paths, batch_size=2).built == 2
    assert [cache.get(p).shape[0] for p in paths] == [25, 850]
    alone = encoder(encoder.load_inputs(paths[1])[None])[0]
    assert (cache.get(paths[1]) - alone).abs().max() <= 1e-5
