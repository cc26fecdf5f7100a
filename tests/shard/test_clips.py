"""A SHARD's clips: the labels CSV and the clip index (interleave/shard/clips.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.shard.build import (
    read_clip_index,
    read_labels,
)
from tests.helpers import LABELS_CSV, touch_clip


def test_labels_csv_maps_mids_to_display_names() -> None:
    labels = read_labels(LABELS_CSV)
    assert labels["/m/03kmc9"] == "Siren" and labels["/m/01jg02"] == "Heart sounds, heartbeat"
    assert labels["/m/0cdnk"] == "Roaring cats (lions, tigers)"
    assert len(labels) == 527


@pytest.mark.parametrize("form", ["json", "jsonl"])
def test_clip_index_sorts_out_clips(tmp_path: Path, form: str) -> None:
    labels = read_labels(LABELS_CSV)
    for name in ("a", "b", "c", "d", "e"):
        touch_clip(tmp_path / "clips" / f"{name}.wav")
    if form == "json":
        index = {"Siren": ["clips/a.wav", "clips/c.wav", "clips/gone.wav"], "/m/0bt9lr": ["clips/b.wav", "clips/c.wav"],
                 "Martian": ["clips/e.wav"]}  # fmt: skip
        (tmp_path / "index.json").write_text(json.dumps(index))
    else:
        rows = [{"audio": "clips/a.wav", "labels": ["Siren"]}, {"audio": "clips/b.wav", "labels": "/m/0bt9lr"},
                {"audio": "clips/c.wav", "labels": "Siren;/m/0bt9lr"}, {"audio": "clips/gone.wav", "labels": ["/m/03kmc9"]},
                {"audio": "clips/e.wav", "labels": ["Martian"]}]  # fmt: skip
        (tmp_path / "index.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    index = read_clip_index(tmp_path / "index.json", labels)
    assert index.by_label == {"Siren": [str(tmp_path / "clips" / "a.wav")], "Dog": [str(tmp_path / "clips" / "b.wav")]}
    assert index.multi_label == [{"audio": str(tmp_path / "clips" / "c.wav"), "labels": ["Siren", "Dog"]}]
    assert [m["audio"] for m in index.missing] == [str(tmp_path / "clips" / "gone.wav")]
    assert [u["label"] for u in index.unknown_labels] == ["Martian"]


def test_clip_index_errors_name_lines(tmp_path: Path) -> None:
    path = tmp_path / "index.jsonl"
    path.write_text('{"audio": "a.wav", "labels": ["Siren"]}\n{"audio": 3, "labels": []}\nnope\n')
    with pytest.raises(InterleaveError) as err:
        read_clip_index(path, {})
    assert f"{path}:2: 'audio' must be a non-empty string; 'labels' must be" in str(err.value)
    assert f"{path}:3: not valid JSON" in str(err.value)
