"""interleave.data.checks: every problem of a record file named with file:line (or OpenAQA's [index]) and
its reason, the good records kept; `DataError` lists them all."""

import json

from interleave.data.checks import DataError, check_records, load_checked
from interleave.data.collate import Collator
from interleave.data.records import read_records
from interleave.encoders.audio import load_fbank
from tests.helpers import BAD_KINDS, bad_file, write_clip


def test_every_problem_of_a_file_is_named_and_the_good_records_are_kept(tmp_path, tokenizer):
    path = bad_file(tmp_path)
    records, problems = load_checked(path, None, Collator(tokenizer, max_length=128), load=load_fbank)
    assert [r.id for r in records] == ["g0"]
    for line, reason in BAD_KINDS.items():
        assert any(p.where.startswith(f"{path}:{line}") and reason in p.reason for p in problems), (line, reason)
    parsed, _ = read_records(path)  # without a collator or a loader: what parsing and the files alone show
    assert not any("leaving no room" in p.reason or "unreadable" in p.reason for p in check_records(parsed, tmp_path))
    error = DataError(problems)
    assert error.problems == problems and str(error).startswith(f"{len(problems)} bad record(s)")
    assert all(str(p) in str(error) for p in problems)


def test_the_openaqa_adapter_reads_clip_lists_and_names_bad_combinations(tmp_path, tokenizer):
    for i in range(2):
        write_clip(tmp_path / "audio" / f"g{i}.wav", seed=i)
    items = [
        {"audio_id": ["audio/g0.wav", "audio/g1.wav"], "instruction": "Is [AUDIO] like [AUDIO]?", "output": "Yes"},
        {"audio_id": ["audio/g0.wav", "audio/g1.wav"], "instruction": "Is it loud?", "output": "No"},
        {"audio_id": [], "instruction": "Is [AUDIO] loud?", "output": "No"},
    ]
    path = tmp_path / "openaqa.json"
    path.write_text(json.dumps(items))
    records, problems = load_checked(path, None, Collator(tokenizer, max_length=128))
    assert [r.clips for r in records] == [("audio/g0.wav", "audio/g1.wav")]
    assert [p.where.split(" ")[0] for p in problems] == [f"{path}[1]", f"{path}[2]"]
    assert "2 audio clip(s)" in problems[0].reason and "0 [AUDIO] placeholder(s)" in problems[0].reason
    assert "0 audio clip(s)" in problems[1].reason and "1 [AUDIO] placeholder(s)" in problems[1].reason
