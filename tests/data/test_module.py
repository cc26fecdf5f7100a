"""interleave.data.module: the record checks at set-up (error and skip modes), the data module's batches, audio
channel, validation split, workers, and the checkpointed position in the epoch."""

import json
import re
from pathlib import Path

import pytest
import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.data.checks import DataError
from interleave.data.collate import span_starts
from interleave.data.module import InterleavedDataModule
from interleave.spec import DataSpec
from tests.helpers import BAD_KINDS, bad_file, good, write_clip, write_jsonl


def dm_for(path: Path, tokenizer, **kw) -> InterleavedDataModule:
    dm = InterleavedDataModule(train_file=str(path), batch_size=2, max_length=128, **kw)
    dm.connect(DataSpec(tokenizer))
    return dm


def test_datamodule_batches(small_dataset, tokenizer):
    dm = InterleavedDataModule(
        train_file=str(small_dataset / "train.jsonl"), val_file=str(small_dataset / "val.jsonl"), batch_size=2
    )
    dm.connect(DataSpec(tokenizer))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape == (2, 1024, 128)
    assert batch["audio_mask"].sum(dim=1).tolist() == [NUM_AUDIO_TOKENS] * 2
    val = next(iter(dm.val_dataloader()))
    assert "prompt_input_ids" in val and len(val["references"]) == 2
    assert len(dm.train_set) == 4 and len(dm.val_set) == 2


def test_datamodule_audio_channel_reaches_every_set(small_dataset, tokenizer):
    import numpy as np
    import soundfile as sf

    from interleave.encoders.audio import load_fbank
    from interleave.errors import InterleaveError

    clip = small_dataset / "audio" / "c1.wav"
    left, sr = sf.read(clip, dtype="float32")
    sf.write(clip, np.stack([left, np.roll(left, 4000) * 0.5], axis=1), sr)  # r1 (training) is now stereo
    for channel in (None, "first", "mean"):
        dm = dm_for(
            small_dataset / "train.jsonl",
            tokenizer,
            val_file=str(small_dataset / "val.jsonl"),
            **({"audio_channel": channel} if channel else {}),
        )
        dm.setup(None)
        expected = channel or "first"  # LTU's choice is the default
        assert dm.audio_channel == expected and {d.channel for d in dm._sets()} == {expected}
        item = next(x for x in (dm.train_set[i] for i in range(len(dm.train_set))) if x["record"].id == "r1")
        assert torch.equal(item["audio"], load_fbank(clip, expected))
    assert not torch.allclose(load_fbank(clip, "first"), load_fbank(clip, "mean"), atol=1e-3)
    with pytest.raises(InterleaveError, match="audio_channel"):
        InterleavedDataModule(train_file="x.jsonl", audio_channel="left")


def test_datamodule_val_fraction_split_is_seeded(small_dataset, tokenizer):
    ids = []
    for _ in range(2):
        dm = dm_for(small_dataset / "train.jsonl", tokenizer, val_fraction=0.25)
        dm.setup("fit")
        ids.append(([r.id for r in dm.train_set.records], [r.id for r in dm.val_set.records]))
    assert ids[0] == ids[1] and len(ids[0][1]) == 1 and len(ids[0][0]) == 3


def test_datamodule_error_mode_stops_with_the_full_list(tmp_path, tokenizer):
    dm = dm_for(bad_file(tmp_path), tokenizer, check_audio_decode=True)
    with pytest.raises(DataError) as err:
        dm.setup("fit")
    assert len(err.value.problems) == 8
    assert all(f"bad.jsonl:{line}" in str(err.value) for line in BAD_KINDS)


def test_datamodule_skip_mode_writes_rejects(tmp_path, tokenizer, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dm = dm_for(bad_file(tmp_path), tokenizer, on_bad_record="skip", check_audio_decode=True)
    with pytest.warns(UserWarning, match="skipped 8 bad record"):
        dm.setup("fit")
    assert [r.id for r in dm.train_set.records] == ["g0"]
    rejects = [json.loads(l) for l in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 8 and all(set(r) == {"where", "reason"} for r in rejects)


def test_workers_load_audio(small_dataset, tokenizer):
    dm = dm_for(small_dataset / "train.jsonl", tokenizer, num_workers=2)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert sum(len(b["ids"]) for b in batches) == 4
    assert all(torch.isfinite(b["audio"]).all() for b in batches)


def test_a_checkpointed_position_resumes_the_epoch_or_restarts_it_when_the_batch_size_changed(small_dataset, tokenizer):
    def loader(batch_size: int, position: dict):
        dm = InterleavedDataModule(train_file=str(small_dataset / "train.jsonl"), batch_size=batch_size)
        dm.connect(DataSpec(tokenizer))
        dm.setup("fit")
        dm.load_state_dict({"train_position": position})
        return dm.train_dataloader()

    position = {"epoch": 0, "batches_done": 1, "batch_size": 2, "world_size": 1}
    whole = [b["ids"] for b in loader(2, {**position, "epoch": 5})]  # another epoch: nothing skipped
    assert len(whole) == 2
    assert [b["ids"] for b in loader(2, position)] == whole[1:]
    with pytest.warns(UserWarning, match="batch size 1 on 1 process.*not 2 on 1: epoch 0 starts again"):
        assert len(list(loader(1, position))) == 4


@pytest.mark.parametrize("mode", ["error", "skip"])
def test_an_empty_record_file_stops_set_up_in_either_mode(tmp_path, tokenizer, mode):
    path = tmp_path / "train.jsonl"
    path.write_text("")
    with pytest.raises(DataError, match="train.jsonl: the file holds no records"):
        dm_for(path, tokenizer, on_bad_record=mode).setup("fit")


def test_a_missing_record_file_names_the_command_that_writes_it(small_dataset, tmp_path):
    from interleave.errors import InterleaveError

    missing = tmp_path / "demo" / "train.jsonl"
    with pytest.raises(InterleaveError, match=f"{missing} does not exist: write it with `interleave demo DIR`"):
        InterleavedDataModule(
            train_file=str(missing), val_file=str(small_dataset / "val.jsonl"), written_by="interleave demo DIR"
        ).prepare_data()
    InterleavedDataModule(train_file=str(missing)).prepare_data()  # without it, set-up names the file as before
    module = InterleavedDataModule(train_file=str(small_dataset / "train.jsonl"), written_by="interleave demo DIR")
    module.prepare_data()  # the files are there
    assert "written_by" not in module.hparams  # changes no result: not a hyper-parameter, not in the config hash


def test_set_up_reuses_the_record_index_and_groups_by_the_collators_lengths(small_dataset, tokenizer):
    dm = dm_for(small_dataset / "train.jsonl", tokenizer, group_by_length=True, index_dir=str(small_dataset / "idx"))
    dm.setup("fit")
    built = list((small_dataset / "idx").glob("train.jsonl.*.index"))
    assert len(built) == 1 and not list(small_dataset.glob("*.index"))
    stamp = built[0].stat().st_mtime_ns
    dm.setup("fit")
    assert built[0].stat().st_mtime_ns == stamp
    dm.train_dataloader()
    collator = dm.collator()
    assert dm.train_sampler.lengths.tolist() == [len(collator.encode(r).input_ids) for r in dm.train_set.records]


@pytest.mark.parametrize("local_rank", [0, 1])
def test_under_ddp_the_first_process_of_a_node_builds_the_index_before_the_others_open_it(
    small_dataset, tokenizer, monkeypatch, local_rank
):
    from types import SimpleNamespace

    import interleave.data.module as data

    events = []
    real_open = data.open_index
    monkeypatch.setattr(data, "open_index", lambda *a, **k: events.append("open") or real_open(*a, **k))
    strategy = SimpleNamespace(barrier=lambda name: events.append(name))
    trainer = SimpleNamespace(world_size=2, local_rank=local_rank, strategy=strategy)
    dm = dm_for(small_dataset / "train.jsonl", tokenizer)
    monkeypatch.setattr(type(dm), "trainer", property(lambda self: trainer), raising=False)
    index = dm._index(str(small_dataset / "train.jsonl"))
    assert index.rows == 4
    assert events == (["open", "record_index"] if local_rank == 0 else ["record_index", "open"])


# ---- several clips in one prompt (issue 19) ---------------------------------------------------

CLIP_COMBINATIONS = {  # line -> (audio, instruction, the counts its reason must name)
    2: (["audio/g0.wav", "audio/g1.wav"], "Is [AUDIO] loud?", (2, 1)),
    3: (["audio/g0.wav", "audio/g1.wav"], "Are these the same?", (2, 0)),
    4: ("audio/g0.wav", "Is [AUDIO] like [AUDIO]?", (1, 2)),
    5: ([], "Is [AUDIO] loud?", (0, 1)),
    6: ([], "Is it loud?", (0, 0)),
}


def clip_file(root: Path) -> Path:
    for i in range(3):
        write_clip(root / "audio" / f"g{i}.wav", seed=i)
    rows = [good(0, "Is [AUDIO] like [AUDIO]?") | {"audio": ["audio/g0.wav", "audio/g1.wav"]}]
    rows += [
        good(line) | {"audio": audio, "instruction": instruction}
        for line, (audio, instruction, _) in CLIP_COMBINATIONS.items()
    ]
    rows.append(good(7, "Is [AUDIO] like [AUDIO]?") | {"audio": ["audio/g2.wav", "audio/missing.wav"]})
    return write_jsonl(root / "clips.jsonl", rows)


def named_both_counts(problems, path):
    for line, (_, _, (clips, placeholders)) in CLIP_COMBINATIONS.items():
        problem = next(p for p in problems if p.where.startswith(f"{path}:{line} "))
        assert f"{clips} audio clip(s)" in problem.reason and f"{placeholders} [AUDIO] placeholder(s)" in problem.reason


def test_every_bad_clip_combination_is_named_by_the_checker_and_by_set_up(tmp_path, tokenizer, monkeypatch):
    from interleave.data.checks import check_records
    from interleave.data.collate import Collator
    from interleave.data.records import read_records

    path = clip_file(tmp_path)
    records, _ = read_records(path)
    for collator in (None, Collator(tokenizer, max_length=128)):
        problems = check_records(records, tmp_path, collator)
        named_both_counts(problems, path)
        assert [p.where for p in problems][-1].startswith(f"{path}:7 ") and "missing.wav" in problems[-1].reason
        assert len(problems) == 6
    with pytest.raises(DataError) as err:
        dm_for(path, tokenizer).setup("fit")  # through the record index
    named_both_counts(err.value.problems, path)
    assert len(err.value.problems) == 6
    monkeypatch.chdir(tmp_path)
    dm = dm_for(path, tokenizer, on_bad_record="skip")
    with pytest.warns(UserWarning, match="skipped 6 bad record"):
        dm.setup("fit")
    assert [r.id for r in dm.train_set.records] == ["g0"]
    item = dm.train_set[0]
    assert isinstance(item["audio"], list) and len(item["audio"]) == 2
    assert not torch.equal(item["audio"][0], item["audio"][1])
    assert {p.name for p in dm.train_set.paths()} == {"g0.wav", "g1.wav"}
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape == (2, 1024, 128) and [
        row for row, _ in span_starts(batch["audio_mask"], NUM_AUDIO_TOKENS)
    ] == [0, 0]


def test_a_record_file_that_is_a_fifo_or_a_directory_stops_set_up_naming_it(tmp_path, small_dataset, tiny_model_kwargs):
    """`data.train_file` naming a FIFO waited forever at set-up (its first bytes were read to tell
    JSONL from a JSON array); a directory was read as a file. Both are one error naming the path."""
    import os

    from interleave.cli import build_run
    from interleave.errors import InterleaveError
    from tests.helpers import write_config

    os.mkfifo(tmp_path / "pipe.jsonl")
    (tmp_path / "folder.jsonl").mkdir()
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    for name, kind in (("pipe.jsonl", "is a FIFO (named pipe)"), ("folder.jsonl", "is a directory")):
        run = build_run(["--config", str(config), f"--data.train_file={tmp_path / name}"])
        with pytest.raises(InterleaveError, match=f"^{re.escape(f'{tmp_path / name}: {kind}, not a record file')}$"):
            run.datamodule.check_file(tmp_path / name)
