"""A record's span lengths from its clips' headers, for a family whose span follows the clip (`ClipSpans`).

Qwen2-Audio gives a clip as many audio positions as its duration makes (25 per second). Where no
clip is loaded (the record checks, the record index's lengths for length grouping, `data check`),
each clip's duration is read from its file's header, never decoded: its sample count at 16 kHz
as `interleave.encoders.audio.load_waveform` resamples it (`ceil(frames * 16000 / rate)`), turned
into positions by the encoder (`Encoder.positions_for_samples`). A clip whose header cannot be
read counts as the longest span (the audio check names the file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import soundfile

from interleave.data.records import Record, resolve_clips
from interleave.encoders.audio import SAMPLE_RATE

LONGEST = 1 << 40  # samples: the span of a clip whose header cannot be read (the encoder caps it)


def samples_at_16k(path: Path) -> int:
    """A clip's sample count at 16 kHz from its header, as `load_waveform` resamples it."""
    info = soundfile.info(str(path))
    frames, rate = int(info.frames), int(info.samplerate)
    return frames if rate == SAMPLE_RATE else -(-frames * SAMPLE_RATE // rate)


@dataclass(frozen=True)
class ClipSpans:
    """Each clip's span length of a record, from its header.

    Args:
        audio_root: where the record's relative clip paths are.
        positions_for_samples: the encoder's positions of a clip of that many 16-kHz samples.
    """

    audio_root: Path | None
    positions_for_samples: Callable[[int], int]

    def __call__(self, record: Record) -> list[int]:
        spans = []
        for path in resolve_clips(record, self.audio_root):
            try:
                samples = samples_at_16k(path)
            except (OSError, RuntimeError, ValueError, soundfile.LibsndfileError):
                samples = LONGEST
            spans.append(self.positions_for_samples(samples))
        return spans
