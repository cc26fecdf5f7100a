"""interleave.eval.format: the SHARD file written and read back, every problem named with file:line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.eval.format import read_shard, shard_counts, write_shard
from interleave.eval.query import Query


def _line(**fields) -> str:
    base = {"id": "synonym/siren/0/alarm", "task": "synonym", "label": "Siren", "word": "siren",
            "candidate": "alarm", "truth": "yes", "audio": "a.wav"}  # fmt: skip
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_write_read_roundtrip(tmp_path: Path) -> None:
    inside, outside = tmp_path / "shard" / "audio" / "s0.wav", tmp_path / "elsewhere" / "s1.wav"
    queries = [
        Query("identity/siren/0", "identity", "Siren", "siren", str(inside)),
        Query("synonym/siren/0/alarm", "synonym", "Siren", "siren", str(inside), "alarm", "yes"),
        Query("hypernym/siren/1/sound", "hypernym", "Siren", "siren", str(outside), "sound", "no"),
    ]
    path = write_shard(queries, tmp_path / "shard" / "shard.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0] == {
        "id": "identity/siren/0",
        "task": "identity",
        "label": "Siren",
        "word": "siren",
        "audio": "audio/s0.wav",
    }
    assert list(rows[1]) == ["id", "task", "label", "word", "candidate", "truth", "audio"]
    assert rows[2]["audio"] == str(outside)
    back = read_shard(path)
    assert [q.id for q in back] == [q.id for q in queries]
    assert [q.audio for q in back] == [str(inside), str(inside), str(outside)]
    assert back[1].candidate == "alarm" and back[1].truth == "yes" and back[0].candidate is None
    assert back[2].where == f"{path}:3"
    assert not (tmp_path / "shard" / "shard.jsonl.tmp").exists()


def test_read_shard_lists_every_problem_with_file_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        _line(),  # 1: fine
        "{not json",  # 2
        _line(id="x2", word=...),  # 3: missing field
        _line(id="x3", task="antonym"),  # 4
        _line(id="x4", truth="maybe"),  # 5
        _line(),  # 6: duplicate id
        json.dumps(
            {"id": "i", "task": "identity", "label": "Siren", "word": "siren", "audio": "a.wav", "truth": "yes"}
        ),  # 7
        "[1, 2]",  # 8
        "",  # 9: blank lines are allowed
        _line(id="x5", candidate=...),  # 10
        _line(id="x6", colour="red"),  # 11
    ]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InterleaveError) as err:
        read_shard(path)
    message = str(err.value)
    for number, text in [
        (2, "Expecting"), (3, "missing field 'word'"), (4, "task 'antonym'"), (5, "truth 'maybe'"),
        (6, "duplicate id 'synonym/siren/0/alarm' (first on line 1)"), (7, "identity query has no 'truth'"),
        (8, "expected a JSON object"), (10, "missing field 'candidate'"), (11, "unknown field 'colour'"),
    ]:  # fmt: skip
        assert f"{path}:{number}: " in message and text in message, (number, message)
    assert f"{path}:1:" not in message and f"{path}:9:" not in message
    assert message.startswith(f"9 problem(s) in SHARD file {path}")


def test_read_shard_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(InterleaveError, match="cannot read SHARD file"):
        read_shard(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InterleaveError, match="holds no queries"):
        read_shard(tmp_path / "empty.jsonl")


def test_write_shard_rejects_duplicate_ids(tmp_path: Path) -> None:
    query = Query("identity/siren/0", "identity", "Siren", "siren", str(tmp_path / "a.wav"))
    with pytest.raises(InterleaveError, match="duplicate query ids"):
        write_shard([query, query], tmp_path / "s.jsonl")


def test_a_pair_query_round_trips_with_its_second_clip_and_faults_are_named(tmp_path) -> None:
    """Issue 19: `other_audio` is a pair query's second clip, stored relative like `audio`."""
    (tmp_path / "audio").mkdir()
    first, second = str(tmp_path / "audio" / "a.wav"), str(tmp_path / "audio" / "b.wav")
    query = Query("pair/yes/0/siren/siren", "pair", "Siren", "siren", first, "siren", "yes", other_audio=second)
    path = write_shard([query], tmp_path / "s.jsonl")
    assert '"other_audio": "audio/b.wav"' in path.read_text()
    (read,) = read_shard(path)
    assert read.clips == (first, second) and read.candidate == "siren" and read.truth == "yes"
    assert shard_counts([read])["pair"] == {"yes": 1, "no": 0} and shard_counts([read])["clips"] == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "p", "task": "pair", "label": "S", "word": "s", "candidate": "s", "truth": "yes", "audio": "a.wav"}\n'
        '{"id": "s", "task": "synonym", "label": "S", "word": "s", "candidate": "x", "truth": "no", '
        '"audio": "a.wav", "other_audio": "b.wav"}\n'
    )
    with pytest.raises(InterleaveError) as err:
        read_shard(bad)
    assert "bad.jsonl:1: a pair query needs 'other_audio'" in str(err.value)
    assert "bad.jsonl:2: a synonym query has no 'other_audio'" in str(err.value)
