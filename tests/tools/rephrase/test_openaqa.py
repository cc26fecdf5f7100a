"""interleave.tools.rephrase.openaqa: streaming OpenAQA's JSON array or JSONL, the seeded selection that keeps the
task mix, the sources table, and bounded memory on a 100k-record file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.tools.rephrase.openaqa import SOURCES, allocate, iter_objects, load_sources, select
from tests.helpers import mixed_input, write_json

REPO = Path(__file__).resolve().parents[3]


def test_selection_is_seeded_and_keeps_the_task_mix(tmp_path):
    path = write_json(tmp_path / "in.json", mixed_input())
    items, counts = select(path, 100, seed=7, sources=SOURCES)
    assert counts == {"open-ended": 600, "label": 300, "acoustic": 100}
    assert Counter(item.kind for item in items) == {"open-ended": 60, "label": 30, "acoustic": 10}
    assert [i.position for i in items] == sorted(i.position for i in items)
    again, _ = select(path, 100, seed=7, sources=SOURCES)
    assert [i.id for i in again] == [i.id for i in items]
    other, _ = select(path, 100, seed=8, sources=SOURCES)
    assert {i.id for i in other} != {i.id for i in items}
    assert all(i.record.dataset in {"as_strong_train", "as_20k"} for i in items)
    assert not any(i.record.task == "open-ended question" and i.record.dataset == "as_20k" for i in items)
    everything, _ = select(path, 10_000, seed=7, sources=SOURCES)
    assert len(everything) == 1000


def test_allocate_largest_remainder():
    assert allocate({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}
    assert sum(allocate({"a": 7, "b": 5, "c": 3}, 10).values()) == 10
    assert allocate({"a": 2, "b": 0}, 5) == {"a": 2, "b": 0}


def test_sources_table_is_overridable(tmp_path):
    table = tmp_path / "sources.json"
    table.write_text(json.dumps({"label": {"tasks": ["cla_label"], "datasets": ["vggsound_train"]}}))
    sources = load_sources(table)
    items, counts = select(write_json(tmp_path / "in.json", mixed_input()), 50, 0, sources)
    assert counts == {"label": 100} and len(items) == 50
    assert {i.record.dataset for i in items} == {"vggsound_train"}
    table.write_text(json.dumps({"speech": {"tasks": [], "datasets": []}}))
    with pytest.raises(InterleaveError, match="unknown kind 'speech'"):
        load_sources(table)


def test_jsonl_input_and_array_input_agree(tmp_path):
    objs = mixed_input(20, 10, 10, 0)
    arr = write_json(tmp_path / "in.json", objs)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps(o) for o in objs) + "\n\n")
    assert [o for _, _, o in iter_objects(arr)] == objs == [o for _, _, o in iter_objects(jsonl)]
    assert [i.id for i in select(arr, 15, 3, SOURCES)[0]] == [i.id for i in select(jsonl, 15, 3, SOURCES)[0]]


def test_malformed_input_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[\n {"a": 1},\n {"a": 2,,}\n]')
    with pytest.raises(InterleaveError, match=r"bad.json:3: malformed JSON"):
        list(iter_objects(bad))
    cut = tmp_path / "cut.json"
    cut.write_text('[\n {"a": 1},\n {"a": 2')
    with pytest.raises(InterleaveError, match=r"cut.json:3: malformed JSON"):
        list(iter_objects(cut))
    lines = tmp_path / "bad.jsonl"
    lines.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(InterleaveError, match=r"bad.jsonl:2: malformed JSON"):
        list(iter_objects(lines))


# Peak resident memory from /proc (ru_maxrss would carry the pytest parent's peak across exec).
MEASURE = """
import json, re, sys
from interleave.tools.rephrase.openaqa import SOURCES, select
hwm = lambda: int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
base = hwm()
items, counts = select(sys.argv[1], 30, seed=1, sources=SOURCES)
peak = hwm()
data = json.load(open(sys.argv[1]))  # the contrast: loading the array whole
loaded = hwm()
print(json.dumps({"growth_bytes": (peak - base) * 1024, "load_growth_bytes": (loaded - base) * 1024,
                  "counts": counts, "kinds": [i.kind for i in items]}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
def test_streaming_100k_records_in_bounded_memory(tmp_path):
    """A 100k-record OpenAQA-shaped array (LTU's json.dump(indent=1) layout) is selected from in a
    fresh process whose peak resident memory grows by far less than the file's size."""
    path = tmp_path / "big.json"
    kinds = [
        ("open-ended question", "as_strong_train"),
        ("cla_label", "as_20k"),
        ("cla_label_des", "as_strong_train"),
        ("open-ended question", "vggsound_train"),
    ]
    record = (
        ' {{\n  "instruction": "What can be heard in the audio clip? ({i})",\n  "input": "",\n'
        '  "audio_id": "/data/sls/audioset/dave_version/audio/{i:011d}.flac",\n  "dataset": "{d}",\n'
        '  "task": "{t}",\n  "output": "A dog barks twice while a car passes by in the distance. ({i})"\n }}'
    )
    with path.open("w") as f:
        f.write(
            "[\n" + ",\n".join(record.format(i=i, t=kinds[i % 4][0], d=kinds[i % 4][1]) for i in range(100_000)) + "\n]"
        )
    size = path.stat().st_size
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        check=True,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["counts"] == {"open-ended": 25_000, "label": 25_000, "acoustic": 25_000}
    assert Counter(result["kinds"]) == {"open-ended": 10, "label": 10, "acoustic": 10}
    assert size > 20_000_000 and result["growth_bytes"] < size / 10, (size, result)
    assert result["load_growth_bytes"] > size, result  # the measure does see a whole-file load
