"""Turn audio files into LTU-exact log-mel filterbank (fbank) features.

The pipeline matches LTU's data loader: one channel at 16 kHz, mean removed, Kaldi fbank
(128 mel bins, 25 ms Hanning window, 10 ms shift, no dither), zero-padded or cut to 1024
frames, then normalised as ``(fbank + 5.081) / 4.4849``.
The channel of a multi-channel file is, by default, the first one, as in LTU (Kaldi's fbank reads
channel 0 of the waveform LTU loads); ``channel="mean"`` averages the channels instead.
Files are read with ``soundfile`` (libsndfile), so WAV, FLAC, OGG/Vorbis and MP3 work
without torchcodec. Every unusable file raises :class:`~interleave.errors.AudioError`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile
import torch
import torchaudio
from torchaudio.compliance import kaldi

from interleave.errors import AudioError

SAMPLE_RATE = 16000
TARGET_FRAMES = 1024
NUM_MEL_BINS = 128
NORM_MEAN = -5.081
NORM_STD = 4.4849
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
FBANK_SECONDS = ((TARGET_FRAMES - 1) * FRAME_SHIFT_MS + FRAME_LENGTH_MS) / 1000  # what 1024 frames read: 10.255 s

Channel = Literal["first", "mean"]
CHANNELS: tuple[str, ...] = ("first", "mean")
WaveformTransform = Callable[[torch.Tensor], torch.Tensor]  # 16 kHz waveform -> what the encoder reads instead


def _check_path(path: Path) -> None:
    """Raise AudioError unless ``path`` is an existing, non-empty regular file."""
    if not path.exists():
        raise AudioError(path, "file not found")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")


def _read_samples(path: Path) -> tuple[np.ndarray, int]:
    """Read all samples as float32 ``[frames, channels]`` plus the sample rate."""
    try:
        data, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(path, f"cannot decode audio ({exc})") from exc
    return data, int(sample_rate)


def _check_samples(path: Path, data: np.ndarray) -> None:
    """Raise AudioError for a clip with no samples or with NaN / infinite samples."""
    if data.shape[0] == 0:
        raise AudioError(path, "audio has zero samples")
    if np.isnan(data).any():
        raise AudioError(path, "audio contains NaN samples")
    if np.isinf(data).any():
        raise AudioError(path, "audio contains infinite samples")


def load_waveform(
    path: str | os.PathLike[str], channel: Channel = "first", transform: WaveformTransform | None = None
) -> torch.Tensor:
    """Load ``path`` as a 1-D float32 waveform at 16 kHz: of a multi-channel file, the first
    channel (``channel="first"``, LTU's choice) or the average of all channels (``"mean"``).
    ``transform``, when given, replaces that waveform (the SHARD probes' silence and noise)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel setting {channel!r}; choose one of {list(CHANNELS)}")
    path = Path(path)
    _check_path(path)
    data, sample_rate = _read_samples(path)
    _check_samples(path, data)
    samples = torch.from_numpy(data)
    waveform = (samples[:, 0] if channel == "first" else samples.mean(dim=1)).contiguous()
    if sample_rate != SAMPLE_RATE:
        waveform = torchaudio.functional.resample(waveform, sample_rate, SAMPLE_RATE)
    waveform = waveform.to(torch.float32).contiguous()
    return waveform if transform is None else transform(waveform)


MAX_KERNEL = 10**7  # read_head's bound on the resampling kernel (input x output phases): 40 MB of floats


def read_head(path: str | os.PathLike[str], seconds: float, channel: Channel = "first") -> tuple[torch.Tensor, float]:
    """The first ``seconds`` of ``path`` as ``load_waveform`` gives them (1-D float32 at 16 kHz), and
    the file's whole duration from its header, decoding only those seconds plus what resampling
    needs: a long recording costs what a short one does. For a file no longer than that, the
    waveform is ``load_waveform``'s; for a longer one, its head (so the mean that the fbank removes
    is the head's)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel setting {channel!r}; choose one of {list(CHANNELS)}")
    path = Path(path)
    _check_path(path)
    try:
        info = soundfile.info(str(path))
        rate, total = int(info.samplerate), int(info.frames)
        if (
            rate <= 0
            or (rate // math.gcd(rate, SAMPLE_RATE)) * (SAMPLE_RATE // math.gcd(rate, SAMPLE_RATE)) > MAX_KERNEL
        ):
            raise AudioError(
                path,
                f"its sample rate of {rate} Hz needs a resampling kernel too large to serve: "
                "convert it to 16, 22.05, 44.1 or 48 kHz first",
            )
        wanted = math.ceil(seconds * rate) + _resample_margin(rate)
        data, _ = soundfile.read(str(path), frames=wanted, dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, OSError, ValueError) as exc:
        raise AudioError(path, f"cannot decode audio ({exc})") from exc
    _check_samples(path, data)
    samples = torch.from_numpy(data)
    waveform = (samples[:, 0] if channel == "first" else samples.mean(dim=1)).contiguous()
    if rate != SAMPLE_RATE:
        waveform = torchaudio.functional.resample(waveform, rate, SAMPLE_RATE)
    return waveform[: math.ceil(seconds * SAMPLE_RATE)].to(torch.float32).contiguous(), total / rate


def _resample_margin(rate: int) -> int:
    """How many samples past a point torchaudio's resampling to 16 kHz reads (its sinc kernel: six
    zero crossings at 0.99 of the lower rate, strided by the reduced input rate); 0 at 16 kHz."""
    if rate == SAMPLE_RATE:
        return 0
    gcd = math.gcd(rate, SAMPLE_RATE)
    orig, base = rate // gcd, 0.99 * (min(rate, SAMPLE_RATE) // gcd)
    return orig + math.ceil(6 * orig / base) + 1


def _pad_or_cut(fbank: torch.Tensor, target_frames: int = TARGET_FRAMES) -> torch.Tensor:
    """Zero-pad at the end of the frame axis, or keep the first ``target_frames`` frames."""
    missing = target_frames - fbank.shape[0]
    if missing > 0:
        return torch.nn.ZeroPad2d((0, 0, 0, missing))(fbank)
    return fbank[:target_frames, :]


def fbank_from_waveform(waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """LTU fbank of a 1-D waveform: normalised float32 tensor ``[1024, 128]``.

    A clip shorter than one 25 ms window yields no frames and so is all padding;
    an empty waveform raises ValueError.
    """
    if waveform.dim() != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {tuple(waveform.shape)}")
    if waveform.numel() == 0:
        raise ValueError("waveform has zero samples")
    waveform = waveform.to(torch.float32)
    waveform = waveform - waveform.mean()
    window = int(sample_rate * FRAME_LENGTH_MS * 0.001)
    if waveform.numel() < window:
        fbank = waveform.new_zeros((0, NUM_MEL_BINS))
    else:
        fbank = kaldi.fbank(
            waveform[None],
            htk_compat=True,
            sample_frequency=sample_rate,
            use_energy=False,
            window_type="hanning",
            num_mel_bins=NUM_MEL_BINS,
            dither=0.0,
            frame_shift=FRAME_SHIFT_MS,
        )
    fbank = _pad_or_cut(fbank)
    return ((fbank - NORM_MEAN) / NORM_STD).to(torch.float32)


def load_fbank(
    path: str | os.PathLike[str], channel: Channel = "first", transform: WaveformTransform | None = None
) -> torch.Tensor:
    """Load ``path`` and return its LTU fbank, float32 ``[1024, 128]`` (``channel``: see load_waveform;
    ``transform``, when given, replaces the waveform before the fbank: the SHARD probes' silence and noise).

    Finite samples can still overflow the power spectrum (float WAVs may hold values up to 3e38);
    such a clip is refused here rather than turning into a NaN loss many steps later.
    """
    waveform = load_waveform(path, channel, transform)
    fbank = fbank_from_waveform(waveform, SAMPLE_RATE)
    if not torch.isfinite(fbank).all():
        raise AudioError(
            Path(path),
            f"its fbank is not finite (peak sample {waveform.abs().max().item():.3g}; "
            "expected about 1): re-encode or normalise the file",
        )
    return fbank
