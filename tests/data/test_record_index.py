"""interleave.data.record_index: the index gives the records, problems, split notes, lengths and batches of
reading the file directly; it is reused while nothing changed and rebuilt when the file, the
tokenizer, max_length or the audio span's length changed; one process builds it while the others wait."""

import json
import multiprocessing
import os
import pickle
import random
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from interleave.data.audio_records import AudioRecords
from interleave.data.collate import Collator
from interleave.data.module import InterleavedDataModule
from interleave.data.record_index import index_path, open_index
from interleave.data.sampler import TrainingSampler
from interleave.errors import InterleaveError
from interleave.spec import DataSpec
from tests.helpers import damage, direct, good, header_end, mixed_file, write_clip, write_jsonl


def test_the_index_gives_what_reading_the_file_gives(tmp_path, any_tokenizer):
    path = mixed_file(tmp_path)
    collator = Collator(any_tokenizer, max_length=128)
    records, problems, split = direct(path, collator)
    index = open_index(path, collator)
    indexed_split = []
    indexed, indexed_problems = index.checked(path.parent, None, indexed_split)
    assert list(indexed) == records and [r.where for r in indexed] == [r.where for r in records]
    assert indexed_problems == problems and indexed_split == split
    assert indexed.lengths().tolist() == [len(collator.encode(r).input_ids) for r in records]
    kinds = {p.reason.split(":")[0].split(" (")[0] for p in problems}
    assert {"malformed JSON", "audio file not found", "missing field 'audio'"} <= kinds and split
    assert any("duplicate id 'm" in p.reason for p in problems) and any("leaving no room" in p.reason for p in problems)
    assert any("audio clip(s) but" in p.reason for p in problems) and any(len(r.clips) == 3 for r in records)


def test_the_data_module_batches_equal_those_of_the_records_read_directly(tmp_path, tokenizer, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the rejects file
    path = mixed_file(tmp_path, n=50)
    dm = InterleavedDataModule(
        train_file=str(path),
        batch_size=3,
        max_length=128,
        group_by_length=True,
        on_bad_record="skip",
        check_audio_decode=True,
        seed=4,
    )
    dm.connect(DataSpec(tokenizer))
    dm.setup("fit")
    collator = dm.collator()
    records, problems, _ = direct(path, collator, decode=True)
    assert dm.rejected == problems
    lengths = [len(collator.encode(r).input_ids) for r in records]
    sampler = TrainingSampler(len(records), 3, lengths, seed=4)
    plain = DataLoader(AudioRecords(records, path.parent), batch_size=3, sampler=sampler, collate_fn=collator)
    for ours, theirs in zip(dm.train_dataloader(), plain, strict=True):
        assert ours["ids"] == theirs["ids"]
        assert all(torch.equal(ours[k], theirs[k]) for k in ("input_ids", "labels", "audio_mask", "audio"))


def test_reused_until_the_file_the_tokenizer_max_length_or_audio_tokens_change(
    tmp_path, tokenizer, llama_tokenizer, monkeypatch
):
    import interleave.data.record_index as record_index

    builds = []
    real_build = record_index.build
    monkeypatch.setattr(record_index, "build", lambda *a, **k: builds.append(a[0]) or real_build(*a, **k))
    write_clip(tmp_path / "audio" / "g0.wav")
    path = write_jsonl(tmp_path / "t.jsonl", [good(i) | {"audio": "audio/g0.wav"} for i in range(5)])
    collator = Collator(tokenizer, max_length=128)
    first = open_index(path, collator)
    assert len(builds) == 1 and index_path(path, collator).parent == tmp_path
    open_index(path, collator)
    assert len(builds) == 1  # reused

    stat = path.stat()
    path.write_text(path.read_text().replace("g4", "g5"))  # same size, and the same time below: only the hash sees it
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert [r.id for r in open_index(path, collator).checked(tmp_path)[0]][-1] == "g5"
    assert len(builds) == 2

    open_index(path, Collator(tokenizer, max_length=64))
    open_index(path, Collator(llama_tokenizer, max_length=128))
    assert len(builds) == 4
    assert (
        open_index(path, Collator(tokenizer, max_length=128, train_on_prompt=True)) and len(builds) == 4
    )  # labels only
    eight = Collator(tokenizer, max_length=128, audio_tokens=8)  # another encoder's span: other lengths
    assert open_index(path, eight).checked(tmp_path)[0].lengths().tolist() == [
        len(collator.encode(r).input_ids) - 24 for r in open_index(path, collator).checked(tmp_path)[0]
    ]
    assert len(builds) == 5

    index_path(path, collator).write_bytes(b"torn")
    assert len(open_index(path, collator).checked(tmp_path)[0]) == 5 and len(builds) == 6
    assert first.rows == 5


def test_index_dir_and_an_unwritable_folder(tmp_path, tokenizer):
    write_clip(tmp_path / "audio" / "g0.wav")
    path = write_jsonl(tmp_path / "data" / "t.jsonl", [good(0)])
    collator = Collator(tokenizer, max_length=128)
    open_index(path, collator, tmp_path / "indexes")
    assert index_path(path, collator, tmp_path / "indexes").is_file()
    assert not list((tmp_path / "data").glob("*.index"))
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InterleaveError, match="set data.index_dir"):
        open_index(path, collator, tmp_path / "a-file" / "indexes")


def _open_in_child(path, collator, queue):
    import interleave.data.record_index as record_index

    built = []
    real_build = record_index.build
    record_index.build = lambda *a, **k: built.append(1) or real_build(*a, **k)
    rows = open_index(path, collator).rows
    queue.put((len(built), rows))


def test_processes_starting_together_build_it_once(tmp_path, tokenizer):
    path = write_jsonl(tmp_path / "t.jsonl", [good(i) for i in range(2000)])
    collator = Collator(tokenizer, max_length=128)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_open_in_child, args=(path, collator, queue)) for _ in range(3)]
    for child in children:
        child.start()
    results = [queue.get(timeout=120) for _ in children]
    for child in children:
        child.join()
    assert sorted(results) == [(0, 2000), (0, 2000), (1, 2000)]


def test_records_are_read_lazily_survive_pickling_and_a_changed_file_is_named(tmp_path, tokenizer):
    write_clip(tmp_path / "audio" / "g0.wav")
    path = write_jsonl(tmp_path / "t.jsonl", [good(i) | {"audio": "audio/g0.wav"} for i in range(6)])
    records, _ = open_index(path, Collator(tokenizer, max_length=128)).checked(tmp_path)
    again = pickle.loads(pickle.dumps(records[2:]))  # what a spawned DataLoader worker receives
    assert [r.id for r in again] == ["g2", "g3", "g4", "g5"] and again[0].where == f"{path}:3"
    path.write_text("\n" * 200)
    with pytest.raises(InterleaveError, match=r"t.jsonl:3: the line differs from set-up"):
        records[2]


def test_a_bom_crlf_lines_a_non_utf8_line_and_an_empty_file_read_as_directly(tmp_path, tokenizer):
    import json

    write_clip(tmp_path / "audio" / "g0.wav")
    rows = [json.dumps(good(i) | {"audio": "audio/g0.wav"}).encode() for i in range(3)]
    rows[1] = rows[1].replace(b"What", b"Qu\xe9")
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(rows) + b"\r\n")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\xef\xbb\xbf\n")
    collator = Collator(tokenizer, max_length=128)
    for file in (path, empty):
        records, problems, _ = direct(file, collator)
        indexed, indexed_problems = open_index(file, collator).checked(tmp_path)
        assert list(indexed) == records and indexed_problems == problems and problems
    assert [r.id for r in records] == [] and [r.id for r in direct(path, collator)[0]] == ["g0", "g2"]


def test_the_decode_check_reads_each_clip_with_the_runs_loader_and_channel(tmp_path, tokenizer):
    from interleave.errors import AudioError

    for i in range(2):
        write_clip(tmp_path / "audio" / f"g{i}.wav", seed=i)
    path = write_jsonl(
        tmp_path / "two.jsonl",
        [
            {"id": f"g{i}", "audio": f"audio/g{i}.wav", "instruction": "What is [AUDIO]?", "output": "Labels: Siren"}
            for i in range(2)
        ],
    )
    seen = []

    def loader(clip, channel):  # an encoder whose inputs the second clip cannot give
        seen.append((Path(clip).name, channel))
        if Path(clip).name == "g1.wav":
            raise AudioError(clip, "too short for this encoder")
        return torch.zeros(4)

    for file in (path, tmp_path / "two.json"):  # through the index (JSONL) and read whole (OpenAQA's JSON)
        if file.suffix == ".json":
            file.write_text(
                json.dumps(
                    [
                        {"audio_id": f"audio/g{i}.wav", "instruction": "What is [AUDIO]?", "output": "Labels: Siren"}
                        for i in range(2)
                    ]
                )
            )
        dm = InterleavedDataModule(train_file=str(file), max_length=128, audio_channel="mean", check_audio_decode=True)
        dm.connect(DataSpec(tokenizer, audio_loader=loader))
        seen.clear()
        records, problems = dm.check_file(file)
        assert (
            len(records) == 1
            and len(problems) == 1
            and "unreadable audio: too short for this encoder" in problems[0].reason
        )
        assert sorted(seen) == [("g0.wav", "mean"), ("g1.wav", "mean")]
        assert dm.check_file(file, decode=False)[1] == []  # without decoding, only presence is checked


@pytest.mark.parametrize(
    "how, why",
    [
        ("header+16", "is cut short"),
        ("end cut", "is cut short"),
        ("middle overwritten", "is damaged: its checksum does not match its bytes"),
    ],
)
def test_a_damaged_index_is_named_rebuilt_and_never_trusted(tmp_path, tokenizer, monkeypatch, how, why):
    import interleave.data.record_index as record_index

    write_clip(tmp_path / "audio" / "g0.wav")
    rows = [good(i) | {"audio": "audio/g0.wav"} for i in range(500)] + ["{not json"]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    collator = Collator(tokenizer, max_length=128)
    index = open_index(path, collator)
    whole = index.path.read_bytes()
    assert len(whole) > header_end(index.path) + 10_000  # room for each damage below
    builds, log = [], []
    real_build = record_index.build
    monkeypatch.setattr(record_index, "build", lambda *a, **k: builds.append(a[0]) or real_build(*a, **k))

    damage(index.path, how)
    again = open_index(path, collator, log=log.append)
    records, problems = again.checked(tmp_path)
    assert again.rows == 500 and len(records) == 500
    assert [str(p) for p in problems] == [
        f"{path}:501: malformed JSON: Expecting property name enclosed in double quotes (column 2)"
    ]
    assert len(builds) == 1 and index.path.read_bytes() == whole  # rebuilt, as it was
    (named,) = [line for line in log if "rebuilding it" in line]
    assert named.startswith(f"[interleave] {path}: record index {index.path} {why}")
    assert open_index(path, collator) and len(builds) == 1  # and reused from then on


def test_an_index_corrupted_anywhere_never_gives_a_wrong_count_or_a_traceback(tmp_path, tokenizer):
    """200 seeded corruptions of a built index (cut at any byte, random bytes anywhere, a zeroed
    page): each is found and rebuilt (or changed nothing and is reused) with the same records."""
    write_clip(tmp_path / "audio" / "g0.wav")
    rows = [good(i) | {"audio": "audio/g0.wav" if i % 7 else "audio/none.wav"} for i in range(40)] + ["[1]", good(3)]
    path = write_jsonl(tmp_path / "t.jsonl", rows)
    collator = Collator(tokenizer, max_length=128)
    index = open_index(path, collator)
    whole = index.path.read_bytes()
    records, problems = index.checked(tmp_path)
    expected = ([r.id for r in records], problems)
    assert len(records) == 34 and len(problems) == 8
    rng = random.Random(34)
    kinds = []
    for _ in range(200):
        data = bytearray(whole)
        kind = rng.choice(["cut", "random bytes", "zeroed page"])
        if kind == "cut":
            data = data[: rng.randrange(len(data))]
        elif kind == "random bytes":
            at = rng.randrange(len(data))
            end = min(len(data), at + rng.randint(1, 64))
            data[at:end] = rng.randbytes(end - at)
        else:
            page = rng.choice([256, 512, 1024, 4096])
            at = rng.randrange(0, len(data), page)
            data[at : at + page] = bytes(len(data[at : at + page]))
        index.path.write_bytes(bytes(data))
        log = []
        again = open_index(path, collator, log=log.append)
        records, problems = again.checked(tmp_path)
        assert ([r.id for r in records], problems) == expected and again.rows == 41, kind
        rebuilt = [line for line in log if f"record index {index.path} " in line and "rebuilding it" in line]
        assert len(rebuilt) == (bytes(data) != whole), (kind, log)
        assert index.path.read_bytes() == whole
        kinds.append(kind)
        index.path.write_bytes(whole)
    assert set(kinds) == {"cut", "random bytes", "zeroed page"}
