"""interleave.data.records: the JSONL record contract (extra fields kept) and LTU's OpenAQA JSON through the adapter."""

import json

from interleave.data.records import (
    Problem,
    Record,
    from_openaqa,
    read_records,
    resolve_clips,
)
from tests.helpers import good, write_jsonl


def test_reads_jsonl_contract_and_keeps_extra_fields(small_dataset):
    path = write_jsonl(
        small_dataset / "x.jsonl", [{**good(0), "input": "", "task": "t", "dataset": "d", "original_instruction": "o"}]
    )
    (records, problems) = read_records(path)
    assert problems == []
    r = records[0]
    assert (r.id, r.audio, r.task, r.dataset, r.where) == ("g0", "audio/g0.wav", "t", "d", f"{path}:1")
    assert r.extra == {"original_instruction": "o"}


def test_openaqa_json_goes_through_the_adapter(tmp_path):
    items = [
        {
            "instruction": "What is the sound?",
            "input": "",
            "output": "Labels: Siren",
            "audio_id": "/data/a.wav",
            "dataset": "as_strong_train",
            "task": "cla_label",
        },
        {
            "instruction": "Describe it.",
            "output": "A car.",
            "audio_id": "b.flac",
            "dataset": "as_strong_train",
            "task": "open-ended question",
            "id": "q7",
        },
        {"instruction": 5, "output": "x", "audio_id": "c.wav"},
    ]
    path = tmp_path / "openaqa.json"
    path.write_text(json.dumps(items))
    records, problems = read_records(path)
    assert [r.audio for r in records] == ["/data/a.wav", "b.flac"]
    assert records[0].id == f"{path}[0]" and records[1].id == "q7"
    assert records[0].task == "cla_label" and records[1].dataset == "as_strong_train"
    assert [str(p) for p in problems] == [f"{path}[2]: field 'instruction' must be a string, got int"]


def test_a_byte_order_mark_is_accepted_in_jsonl_and_json(tmp_path):
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + (json.dumps(good(0)) + "\n" + json.dumps(good(1)) + "\n").encode())
    array = tmp_path / "bom.json"
    array.write_bytes(b"\xef\xbb\xbf" + json.dumps([good(2)]).encode())
    assert [[r.id for r in read_records(p)[0]] for p in (jsonl, array)] == [["g0", "g1"], ["g2"]]
    assert read_records(jsonl)[1] == read_records(array)[1] == []


def test_a_byte_that_is_not_utf8_is_reported_with_its_line_and_the_others_still_read(tmp_path):
    path = tmp_path / "latin1.jsonl"
    lines = [
        json.dumps(good(0)).encode(),
        json.dumps(good(1, "Qu'est-ce que [AUDIO] caf\u00e9?"), ensure_ascii=False).encode("latin-1"),
        json.dumps(good(2), ensure_ascii=False).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    records, problems = read_records(path)
    assert [r.id for r in records] == ["g0", "g2"]
    column = lines[1].index(bytes([0xE9])) + 1
    assert [str(p) for p in problems] == [f"{path}:2: not UTF-8: byte 0xe9 at byte {column} of the line"]


def test_an_empty_file_is_a_problem_not_zero_records(tmp_path):
    from interleave.data.records import EMPTY_FILE

    for name, content in (("empty.jsonl", ""), ("blank.jsonl", "\n  \n"), ("empty.json", "[]")):
        path = tmp_path / name
        path.write_text(content)
        assert read_records(path) == ([], [Problem(str(path), EMPTY_FILE)])


def test_a_line_separator_inside_a_string_does_not_cut_the_record(tmp_path):
    path = tmp_path / "ls.jsonl"
    path.write_text(json.dumps(good(0) | {"output": "a\u2028b\u0085c"}, ensure_ascii=False) + "\n", encoding="utf-8")
    records, problems = read_records(path)
    assert problems == [] and records[0].output == "a\u2028b\u0085c"


def test_audio_may_be_a_list_of_clips_in_either_format(tmp_path):
    path = write_jsonl(
        tmp_path / "x.jsonl",
        [
            {**good(0), "audio": ["a.wav", "b.wav"], "instruction": "Is [AUDIO] like [AUDIO]?"},
            {**good(1), "audio": []},
            {**good(2), "audio": ["a.wav", 3]},
        ],
    )
    records, problems = read_records(path)
    assert [r.clips for r in records] == [("a.wav", "b.wav"), ()]
    assert Record(id="x", audio="a.wav", instruction="?").clips == ("a.wav",)
    assert [p.where for p in problems] == [f"{path}:3"] and "item 1 must be a non-empty path" in problems[0].reason
    openaqa = from_openaqa(
        {"audio_id": ["x.wav", "y.wav"], "instruction": "[AUDIO] or [AUDIO]?", "output": "x"}, "f[0]"
    )
    assert openaqa.clips == ("x.wav", "y.wav")
    assert resolve_clips(openaqa, tmp_path) == [tmp_path / "x.wav", tmp_path / "y.wav"]


def test_not_a_file_says_what_a_path_is_without_opening_it(tmp_path):
    import os

    from interleave.data.records import NOT_FOUND, not_a_file

    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")  # opening it would wait for a writer: the call below returns at once
    assert not_a_file(tmp_path / "file") is None
    assert [
        not_a_file(p)
        for p in (
            tmp_path / "gone",
            tmp_path / "file" / "under",
            tmp_path / "folder",
            "/dev/zero",
            tmp_path / "fifo",
            "a\0b",
        )
    ] == [
        NOT_FOUND,
        NOT_FOUND,
        "is a directory",
        "is a character device",
        "is a FIFO (named pipe)",
        "is no valid path (it holds a NUL byte)",
    ]
