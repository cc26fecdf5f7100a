"""interleave.eval.benchmarks.items: MMAU's format read (JSON array, JSONL, several clips), every bad
item named by index and field, the fixed stratified subset, tag-safe names."""

import json

import pytest

from interleave.eval.benchmarks.items import (
    BenchmarkError,
    fixed_subset,
    looks_like_benchmark,
    read_benchmark,
    tag_name,
)
from tests.helpers import mmau_item, write_clip


@pytest.fixture()
def folder(tmp_path):
    for i in range(3):
        write_clip(tmp_path / "test-mini-audios" / f"c{i}.wav", freq=300.0 + 100 * i)
    return tmp_path


def test_a_json_array_in_mmau_format_is_read(folder):
    path = folder / "mmau-test-mini.json"
    path.write_text(json.dumps([mmau_item(i) for i in range(4)]))
    bench = read_benchmark(path)
    assert [it.id for it in bench.items] == ["id-0", "id-1", "id-2", "id-3"] and not bench.problems
    first = bench.items[0]
    assert first.clips == (str((folder / "test-mini-audios" / "c0.wav").resolve()),)
    assert first.answer_index == 2 and first.task == "sound" and first.sub_category == "" and first.index == 0
    assert len(bench.sha256) == 64 and looks_like_benchmark(path)


def test_jsonl_an_audio_root_and_several_clips(folder, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere")
    path = other / "bench.jsonl"
    two = mmau_item(1, audio_id=["test-mini-audios/c1.wav", "test-mini-audios/c2.wav"])
    path.write_text(json.dumps(mmau_item(0)) + "\n\n" + json.dumps(two) + "\n")
    bench = read_benchmark(path, audio_root=folder)
    assert [len(it.clips) for it in bench.items] == [1, 2]


def test_every_bad_item_is_named_by_index_and_field(folder):
    (folder / "broken.wav").write_bytes(b"not audio at all")
    bad = [
        mmau_item(0),  # good
        mmau_item(1, choices=["Car horn"]),  # one choice
        mmau_item(2, choices=[]),  # no choice
        mmau_item(3, choices=["Car horn", "Rain", "Car horn"]),  # duplicate choice
        mmau_item(4, answer="Thunder"),  # answer not among the choices
        mmau_item(5, audio_id="./test-mini-audios/missing.wav"),  # missing clip
        mmau_item(6, audio_id="broken.wav"),  # undecodable clip
        mmau_item(0, question="Again?"),  # an id seen before
        {k: v for k, v in mmau_item(8).items() if k != "question"},  # a missing field
        "not an object",
    ]
    path = folder / "bad.json"
    path.write_text(json.dumps(bad))
    from interleave.encoders.audio import load_fbank

    bench = read_benchmark(path, load=lambda p: load_fbank(str(p)))
    assert [it.index for it in bench.items] == [0]
    named = [(p.index, p.field) for p in bench.problems]
    assert named == [
        (1, "choices"),
        (2, "choices"),
        (3, "choices"),
        (4, "answer"),
        (5, "audio_id"),
        (6, "audio_id"),
        (7, "id"),
        (8, "question"),
        (9, "item"),
    ]
    reasons = {p.index: p.reason for p in bench.problems}
    assert "1 choice(s)" in reasons[1] and "0 choice(s)" in reasons[2] and "duplicate choice 'Car horn'" in reasons[3]
    assert "'Thunder' is not among" in reasons[4] and "not found" in reasons[5] and "unreadable" in reasons[6]
    assert "item 0's" in reasons[7] and reasons[8] == "missing"
    assert bench.bad_items == 9
    assert bench.problems[3].describe(path) == f"{path}: item 4 (answer): {reasons[4]}"


def test_unreadable_files_are_one_error(tmp_path):
    (tmp_path / "a.json").write_text('[{"id": 1,')
    with pytest.raises(BenchmarkError, match="not valid JSON"):
        read_benchmark(tmp_path / "a.json")
    (tmp_path / "b.jsonl").write_text("{}\n{oops\n")
    with pytest.raises(BenchmarkError, match="b.jsonl:2"):
        read_benchmark(tmp_path / "b.jsonl")
    (tmp_path / "c.json").write_text("[]")
    with pytest.raises(BenchmarkError, match="no item"):
        read_benchmark(tmp_path / "c.json")
    (tmp_path / "d.jsonl").write_text(json.dumps({"id": "x", "audio": "a.wav", "instruction": "hi"}) + "\n")
    assert not looks_like_benchmark(tmp_path / "d.jsonl") and not looks_like_benchmark(tmp_path / "a.json")


def test_the_fixed_subset_is_the_same_at_every_call_and_stratified(folder):
    items = [
        mmau_item(i, task=t, category=c)
        for i, (t, c) in enumerate([("sound", "A")] * 50 + [("music", "B")] * 30 + [("speech", "C")] * 20)
    ]
    path = folder / "big.json"
    path.write_text(json.dumps(items))
    bench = read_benchmark(path)
    first = fixed_subset(bench.items, 10, seed=3)
    assert first == fixed_subset(read_benchmark(path).items, 10, seed=3)  # the same items at every point
    assert [it.index for it in first] == sorted(it.index for it in first)  # in file order
    assert sorted(it.task for it in first) == ["music"] * 3 + ["sound"] * 5 + ["speech"] * 2
    assert fixed_subset(bench.items, 10, seed=4) != first
    assert len(fixed_subset(bench.items, 7, seed=0)) == 7
    assert fixed_subset(bench.items, None) == list(bench.items) == fixed_subset(bench.items, 1000)


def test_tag_names():
    assert tag_name("Sound Event Detection") == "sound_event_detection"
    assert tag_name("Speaker/Gender") == "speaker_gender"
    assert tag_name("") == "none"
