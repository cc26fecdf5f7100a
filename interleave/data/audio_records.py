"""Records with their audio, as a torch `Dataset`: each item a record and its clips' encoder inputs
(or cached features), what the data module's loaders batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from interleave.data.collate import Collator
from interleave.data.record_index import (
    IndexedRecords,
)
from interleave.data.records import Record, resolve_clips
from interleave.encoders.audio import Channel, load_fbank
from interleave.encoders.cache import FeatureCache
from interleave.errors import InterleaveError
from interleave.spec import AudioLoader


class AudioRecords(Dataset):
    """Records with their audio: each item is {"record": Record, "audio": the encoder's inputs}
    (CAV-MAE's fbank [1024, 128] by default), or {"record": Record, "audio_features": the cached
    encoder features [audio_tokens, D]} when a feature cache is given (filled beforehand); a record
    with several clips gives a list of those, one per clip in placeholder order.
    `records` is a list, or `IndexedRecords` read lazily from the file through its index.
    `channel` picks the audio channel of multi-channel files (see `interleave.encoders.audio.load_waveform`);
    `load_inputs(path, channel)` is the model encoder's input loader (`DataSpec.audio_loader`)."""

    def __init__(
        self,
        records: Sequence[Record],
        audio_root: str | Path,
        cache: FeatureCache | None = None,
        channel: Channel = "first",
        load_inputs: AudioLoader = load_fbank,
    ) -> None:
        self.records = records
        self.audio_root = Path(audio_root)
        self.cache = cache
        self.channel = channel
        self.load_inputs = load_inputs

    def __len__(self) -> int:
        return len(self.records)

    def paths(self) -> list[Path]:
        """The audio files of the records, every clip of each, each file once."""
        if isinstance(self.records, IndexedRecords):
            return self.records.audio_paths(self.audio_root)
        return list(dict.fromkeys(path for r in self.records for path in resolve_clips(r, self.audio_root)))

    def lengths(self, collator: Collator) -> Sequence[int]:
        """Each record's token length as `collator` encodes it (stored in the index when there is one)."""
        if isinstance(self.records, IndexedRecords):
            return self.records.lengths()
        return [len(collator.encode(r).input_ids) for r in self.records]

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        clips = [self._clip(record, path) for path in resolve_clips(record, self.audio_root)]
        return {
            "record": record,
            "audio" if self.cache is None else "audio_features": clips[0] if len(clips) == 1 else clips,
        }

    def _clip(self, record: Record, path: Path) -> torch.Tensor:
        """One clip's encoder inputs, or its cached features."""
        if self.cache is None:
            return self.load_inputs(path, self.channel)
        features = self.cache.lookup(path)
        if features is None:
            raise InterleaveError(
                f"{record.describe()}: no usable cached features for {path} in {self.cache.folder} "
                "(changed or damaged since set-up); rerun to rebuild them"
            )
        return features
