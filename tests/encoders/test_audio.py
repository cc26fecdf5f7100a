"""Tests for interleave.encoders.audio: LTU-exact fbank features and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torchaudio.compliance import kaldi

from interleave.encoders.audio import (
    NUM_MEL_BINS,
    SAMPLE_RATE,
    TARGET_FRAMES,
    fbank_from_waveform,
    load_fbank,
    load_waveform,
)
from interleave.errors import AudioError

PAD_VALUE = (0.0 + 5.081) / 4.4849
SHAPE = (TARGET_FRAMES, NUM_MEL_BINS)


def _signal(seconds: float, sample_rate: int = SAMPLE_RATE, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Seeded noise plus a tone, float32 ``[frames, channels]`` in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t)
    data = tone[:, None] + 0.1 * rng.standard_normal((n, channels))
    return data.astype(np.float32)


def _write(path: Path, data: np.ndarray, sample_rate: int = SAMPLE_RATE, **kwargs: str) -> Path:
    soundfile.write(path, data, sample_rate, **kwargs)
    return path


def _kaldi_fbank(waveform: torch.Tensor) -> torch.Tensor:
    """LTU's kaldi.fbank call on a mean-removed 16 kHz waveform, every frame kept."""
    return kaldi.fbank(
        (waveform - waveform.mean())[None],
        htk_compat=True,
        sample_frequency=16000,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )


def _ltu_reference(waveform: torch.Tensor) -> torch.Tensor:
    """LTU's feature code, written out: mean removal, kaldi fbank, pad/cut, normalise."""
    fbank = _kaldi_fbank(waveform)
    p = 1024 - fbank.shape[0]
    if p > 0:
        fbank = torch.nn.ZeroPad2d((0, 0, 0, p))(fbank)
    elif p < 0:
        fbank = fbank[0:1024, :]
    return (fbank + 5.081) / 4.4849


def _assert_ok(fbank: torch.Tensor) -> None:
    assert fbank.shape == SHAPE
    assert fbank.dtype == torch.float32
    assert torch.isfinite(fbank).all()


def _assert_audio_error(path: Path, reason: str) -> None:
    with pytest.raises(AudioError) as info:
        load_fbank(path)
    message = str(info.value)
    assert str(path) in message
    assert reason in message


# --- exactness -------------------------------------------------------------------------


def test_fbank_matches_direct_ltu_computation(tmp_path: Path) -> None:
    data = _signal(5.0)
    path = _write(tmp_path / "clip.wav", data, subtype="FLOAT")
    expected = _ltu_reference(torch.from_numpy(data[:, 0]))
    got = load_fbank(path)
    _assert_ok(got)
    assert torch.allclose(got, expected, atol=1e-6)


def test_fbank_from_waveform_matches_reference() -> None:
    waveform = torch.from_numpy(_signal(2.0, seed=3)[:, 0])
    assert torch.allclose(fbank_from_waveform(waveform), _ltu_reference(waveform), atol=1e-6)


# --- formats, rates, lengths -----------------------------------------------------------


def test_ogg_stereo_44k(tmp_path: Path) -> None:
    data = _signal(2.0, 44100, channels=2)
    path = _write(tmp_path / "clip.ogg", data, 44100, format="OGG", subtype="VORBIS")
    waveform = load_waveform(path)
    assert waveform.dim() == 1 and waveform.dtype == torch.float32
    assert abs(waveform.numel() - 2 * SAMPLE_RATE) <= 16
    _assert_ok(load_fbank(path))


def test_wav_8k_is_resampled(tmp_path: Path) -> None:
    path = _write(tmp_path / "clip.wav", _signal(2.0, 8000), 8000)
    assert load_waveform(path).numel() == 2 * SAMPLE_RATE
    _assert_ok(load_fbank(path))


def test_mp3(tmp_path: Path) -> None:
    if "MP3" not in soundfile.available_formats():
        pytest.skip("this libsndfile build cannot write MP3")
    path = _write(tmp_path / "clip.mp3", _signal(2.0, 22050), 22050, format="MP3", subtype="MPEG_LAYER_III")
    _assert_ok(load_fbank(path))


def test_flac(tmp_path: Path) -> None:
    data = _signal(2.0)
    path = _write(tmp_path / "clip.flac", data, subtype="PCM_16")
    _assert_ok(load_fbank(path))


def test_short_clip_is_padded_with_normalised_zero(tmp_path: Path) -> None:
    path = _write(tmp_path / "short.wav", _signal(3.0), subtype="FLOAT")
    fbank = load_fbank(path)
    _assert_ok(fbank)
    frames = 1 + (3 * SAMPLE_RATE - 400) // 160  # kaldi snip_edges frame count
    assert not torch.allclose(fbank[:frames], torch.full((frames, NUM_MEL_BINS), PAD_VALUE))
    assert torch.allclose(fbank[frames:], torch.full((TARGET_FRAMES - frames, NUM_MEL_BINS), PAD_VALUE))


def test_long_clip_is_cut_to_first_frames(tmp_path: Path) -> None:
    data = _signal(30.0)
    path = _write(tmp_path / "long.wav", data, subtype="FLOAT")
    waveform = torch.from_numpy(data[:, 0])
    full = _kaldi_fbank(waveform)
    assert full.shape[0] > TARGET_FRAMES
    fbank = load_fbank(path)
    _assert_ok(fbank)
    assert torch.allclose(fbank, (full[:TARGET_FRAMES] + 5.081) / 4.4849, atol=1e-6)


def test_clip_shorter_than_one_window_is_all_padding() -> None:
    fbank = fbank_from_waveform(torch.from_numpy(_signal(0.01)[:, 0]))  # 160 samples < 400
    assert torch.allclose(fbank, torch.full(SHAPE, PAD_VALUE))


def test_fbank_from_empty_waveform_raises() -> None:
    with pytest.raises(ValueError, match="zero samples"):
        fbank_from_waveform(torch.zeros(0))


def test_stereo_with_equal_channels_equals_mono(tmp_path: Path) -> None:
    mono = _signal(2.0)
    mono_path = _write(tmp_path / "mono.wav", mono, subtype="FLOAT")
    stereo_path = _write(tmp_path / "stereo.wav", np.concatenate([mono, mono], axis=1), subtype="FLOAT")
    for channel in ("first", "mean"):
        assert torch.allclose(load_fbank(stereo_path, channel), load_fbank(mono_path))


def test_channel_first_is_ltus_and_mean_averages(tmp_path: Path) -> None:
    stereo = _signal(2.0, channels=2)  # the noise differs between the channels
    stereo[:, 1] += 0.2 * np.sin(2 * np.pi * 3000.0 * np.arange(len(stereo)) / SAMPLE_RATE).astype(np.float32)
    path = _write(tmp_path / "stereo.wav", stereo, subtype="FLOAT")
    first = _write(tmp_path / "left.wav", stereo[:, :1], subtype="FLOAT")
    mean = _write(tmp_path / "mean.wav", stereo.mean(axis=1, keepdims=True), subtype="FLOAT")
    assert not torch.allclose(load_fbank(first), load_fbank(mean), atol=1e-3)  # the setting matters here
    assert torch.allclose(load_fbank(path), load_fbank(first), atol=1e-5)  # the default is LTU's first channel
    assert torch.allclose(load_fbank(path, channel="first"), load_fbank(first), atol=1e-5)
    assert torch.allclose(load_fbank(path, channel="mean"), load_fbank(mean), atol=1e-5)
    # LTU's own computation: torchaudio's [channels, samples], mean removed, kaldi.fbank reads channel 0
    ltu = torch.from_numpy(stereo.T.copy())
    reference = kaldi.fbank(
        ltu - ltu.mean(),
        htk_compat=True,
        sample_frequency=16000,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )
    assert torch.allclose(load_fbank(path)[: reference.shape[0]], (reference + 5.081) / 4.4849, atol=1e-4)
    with pytest.raises(ValueError, match="channel"):
        load_waveform(path, channel="left")


# --- bad files -------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    _assert_audio_error(tmp_path / "nope.wav", "not found")


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "dir.wav"
    path.mkdir()
    _assert_audio_error(path, "directory")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    _assert_audio_error(path, "empty")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    _assert_audio_error(path, "cannot decode audio")


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "text.wav"
    path.write_text("this is not audio\n" * 20)
    _assert_audio_error(path, "cannot decode audio")


def test_half_wav_reads_as_shorter_clip(tmp_path: Path) -> None:
    # libsndfile reads a WAV cut to half its bytes as a shorter clip (no error): the header's
    # data size is clamped to what is on disk. That audio is valid, so it loads.
    full = _write(tmp_path / "full.wav", _signal(2.0), subtype="PCM_16")
    half = tmp_path / "half.wav"
    half.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    waveform = load_waveform(half)
    assert 0 < waveform.numel() < 2 * SAMPLE_RATE
    _assert_ok(load_fbank(half))


def test_wav_header_only_has_no_samples(tmp_path: Path) -> None:
    # A WAV cut right after its 44-byte header claims data but has none: zero samples.
    full = _write(tmp_path / "full.wav", _signal(1.0), subtype="PCM_16")
    path = tmp_path / "header_only.wav"
    path.write_bytes(full.read_bytes()[:44])
    _assert_audio_error(path, "zero samples")


def test_wav_with_truncated_header(tmp_path: Path) -> None:
    full = _write(tmp_path / "full.wav", _signal(1.0), subtype="PCM_16")
    path = tmp_path / "cut_header.wav"
    path.write_bytes(full.read_bytes()[:20])
    _assert_audio_error(path, "cannot decode audio")


def test_truncated_flac_cannot_be_decoded(tmp_path: Path) -> None:
    # Unlike WAV, a FLAC cut in half fails in the decoder ("lost sync"): that must be an AudioError.
    full = _write(tmp_path / "full.flac", _signal(2.0), subtype="PCM_16")
    path = tmp_path / "half.flac"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    _assert_audio_error(path, "cannot decode audio")


def test_zero_samples(tmp_path: Path) -> None:
    path = _write(tmp_path / "zero.wav", np.zeros((0, 1), dtype=np.float32))
    _assert_audio_error(path, "zero samples")


def test_nan_samples(tmp_path: Path) -> None:
    data = _signal(1.0)
    data[100, 0] = np.nan
    path = _write(tmp_path / "nan.wav", data, subtype="FLOAT")
    _assert_audio_error(path, "NaN")


def test_inf_samples(tmp_path: Path) -> None:
    data = _signal(1.0)
    data[100, 0] = np.inf
    path = _write(tmp_path / "inf.wav", data, subtype="FLOAT")
    _assert_audio_error(path, "infinite")


def test_finite_samples_whose_fbank_overflows(tmp_path: Path) -> None:
    loud = (np.random.default_rng(0).standard_normal((16000, 1)) * 3e38).clip(-3.3e38, 3.3e38).astype(np.float32)
    path = _write(tmp_path / "loud.wav", loud, subtype="FLOAT")
    assert np.isfinite(soundfile.read(path)[0]).all()
    _assert_audio_error(path, "fbank is not finite")


def test_loud_but_representable_float_wav_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path / "hot.wav", _signal(1.0) * 1000, subtype="FLOAT")
    assert torch.isfinite(load_fbank(path)).all()


@pytest.mark.parametrize("rate", [16000, 8000, 44100])
def test_read_head_decodes_only_what_the_encoder_hears_of_a_10_minute_recording(
    tmp_path: Path, rate: int, monkeypatch
) -> None:
    """Issue 28: the playground's bounded decoding. Of a real 10-minute recording only the first
    10.255 s (plus the resampling kernel's reach) are read, and they are load_waveform's samples;
    a clip no longer than that is load_waveform's whole waveform."""
    from interleave.encoders.audio import FBANK_SECONDS, read_head

    rng = np.random.default_rng(rate)
    t = np.arange(600 * rate) / rate
    long = tmp_path / "ten_minutes.wav"
    soundfile.write(
        long, (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.shape)).astype(np.float32), rate
    )
    reads = []
    real_read = soundfile.read
    monkeypatch.setattr(soundfile, "read", lambda *a, **k: reads.append(k.get("frames")) or real_read(*a, **k))
    head, seconds = read_head(long, FBANK_SECONDS)
    assert seconds == 600.0 and head.shape == (164080,) and reads and 0 < reads[0] < 11 * rate
    monkeypatch.setattr(soundfile, "read", real_read)
    torch.testing.assert_close(head, load_waveform(long)[:164080], rtol=0, atol=1e-6)
    short = tmp_path / "short.wav"
    soundfile.write(short, (0.3 * np.sin(2 * np.pi * 440 * t[: 3 * rate])).astype(np.float32), rate)
    assert torch.equal(read_head(short, FBANK_SECONDS)[0], load_waveform(short))


def test_read_head_refuses_a_sample_rate_whose_resampling_would_fill_the_memory(tmp_path: Path) -> None:
    from interleave.encoders.audio import read_head

    odd = tmp_path / "odd.wav"
    soundfile.write(odd, np.zeros(44101, dtype=np.float32), 44101)  # coprime with 16 kHz: a 2.8 GB kernel
    with pytest.raises(AudioError, match="sample rate of 44101 Hz needs a resampling kernel too large"):
        read_head(odd, 10.0)
