"""interleave.data.audio_records: records with their clips' encoder inputs, one per clip in order."""

import torch

from interleave.data.audio_records import AudioRecords
from interleave.data.records import from_dict
from tests.helpers import write_clip


def test_an_item_is_the_record_and_its_clips_inputs_in_placeholder_order(tmp_path):
    for i in range(2):
        write_clip(tmp_path / f"c{i}.wav", seconds=0.5, freq=300.0 + 200 * i, seed=i)
    one = from_dict({"id": "a", "audio": "c0.wav", "instruction": "What is [AUDIO]?", "output": "x"}, "f:1")
    two = from_dict(
        {"id": "b", "audio": ["c1.wav", "c0.wav"], "instruction": "[AUDIO] or [AUDIO]?", "output": "x"}, "f:2"
    )
    loaded = []

    def load(path, channel):
        loaded.append((path.name, channel))
        return torch.full((3,), float(path.stem[1]))

    records = AudioRecords([one, two], tmp_path, load_inputs=load)
    assert len(records) == 2 and records.paths() == [tmp_path / "c0.wav", tmp_path / "c1.wav"]
    first, second = records[0], records[1]
    assert first["record"] is one and torch.equal(first["audio"], torch.zeros(3))
    assert [float(c[0]) for c in second["audio"]] == [1.0, 0.0]  # c1 first, as its placeholder comes first
    assert loaded == [("c0.wav", "first"), ("c1.wav", "first"), ("c0.wav", "first")]
