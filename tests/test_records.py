"""interleave.records: the JSONL record contract (extra fields kept) and LTU's OpenAQA JSON through the adapter."""

import json

from interleave.records import read_records
from tests.conftest import write_jsonl


def good(i: int, instruction: str = "What is [AUDIO]?") -> dict:
    return {"id": f"g{i}", "audio": f"audio/g{i}.wav", "instruction": instruction, "output": "Labels: Siren"}


def test_reads_jsonl_contract_and_keeps_extra_fields(small_dataset):
    path = write_jsonl(small_dataset / "x.jsonl", [{**good(0), "input": "", "task": "t", "dataset": "d", "original_instruction": "o"}])
    (records, problems) = read_records(path)
    assert problems == []
    r = records[0]
    assert (r.id, r.audio, r.task, r.dataset, r.where) == ("g0", "audio/g0.wav", "t", "d", f"{path}:1")
    assert r.extra == {"original_instruction": "o"}


def test_openaqa_json_goes_through_the_adapter(tmp_path):
    items = [
        {"instruction": "What is the sound?", "input": "", "output": "Labels: Siren", "audio_id": "/data/a.wav",
         "dataset": "as_strong_train", "task": "cla_label"},
        {"instruction": "Describe it.", "output": "A car.", "audio_id": "b.flac", "dataset": "as_strong_train", "task": "open-ended question", "id": "q7"},
        {"instruction": 5, "output": "x", "audio_id": "c.wav"},
    ]
    path = tmp_path / "openaqa.json"
    path.write_text(json.dumps(items))
    records, problems = read_records(path)
    assert [r.audio for r in records] == ["/data/a.wav", "b.flac"]
    assert records[0].id == f"{path}[0]" and records[1].id == "q7"
    assert records[0].task == "cla_label" and records[1].dataset == "as_strong_train"
    assert [str(p) for p in problems] == [f"{path}[2]: field 'instruction' must be a string, got int"]
