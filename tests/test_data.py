import json
import random
from pathlib import Path

import pytest
import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.tools.dataset import main as data_main
from interleave.data import DataError, InterleavedDataModule
from interleave.records import read_records
from tests.conftest import write_clip, write_jsonl


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


BAD_KINDS = {
    2: "malformed JSON",
    3: "missing field 'audio'",
    4: "2 [AUDIO] placeholders",
    5: "audio file not found",
    6: "leaving no room for the answer",
    7: "duplicate id 'g0'",
    8: "unreadable audio",
    9: "field 'output' must be a string",
}


def bad_file(root: Path) -> Path:
    for i in (0, 8):
        write_clip(root / "audio" / f"g{i}.wav")
    (root / "audio" / "g8.wav").write_bytes(b"not audio at all")  # exists but undecodable
    rows = [
        good(0),
        '{"id": "broken", "audio": ',
        {"id": "g2", "instruction": "What is [AUDIO]?", "output": "x"},
        good(3, "Is [AUDIO] like [AUDIO]?"),
        good(4),
        good(0, "Is [AUDIO] " + "very " * 400 + "long?") | {"id": "g5"},
        good(0),
        good(8),
        good(0) | {"id": "g9", "output": 3},
    ]
    (root / "audio" / "g5.wav").write_bytes((root / "audio" / "g0.wav").read_bytes())
    return write_jsonl(root / "bad.jsonl", rows)


def test_checker_reports_every_bad_kind_with_file_and_line(tmp_path, capsys, tokenizer_dir):
    path = bad_file(tmp_path)
    code = data_main(["check", str(path), "--decode", "--tokenizer", str(tokenizer_dir), "--max-length", "128"])
    out = capsys.readouterr().out
    assert code == 1
    for line, reason in BAD_KINDS.items():
        assert any(l.startswith(f"{path}:{line}") and reason in l for l in out.splitlines()), (line, reason, out)
    assert f"{path}: 9 record(s), 1 good, 8 bad" in out


def test_checker_passes_a_clean_file_and_without_decode_misses_only_decoding(tmp_path, capsys, tokenizer_dir):
    write_clip(tmp_path / "audio" / "g0.wav")
    path = write_jsonl(tmp_path / "ok.jsonl", [good(0)])
    assert data_main(["check", str(path), "--tokenizer", str(tokenizer_dir)]) == 0
    assert "1 record(s), 1 good, 0 bad" in capsys.readouterr().out
    bad = bad_file(tmp_path / "b")
    data_main(["check", str(bad), "--tokenizer", "none"])
    out = capsys.readouterr().out
    assert "unreadable audio" not in out and "lengths not checked" in out and "6 bad" in out  # neither decoding nor length checked


def test_checker_counts_records_whose_placeholder_splits_a_token(tmp_path, capsys, tokenizer_dir):
    write_clip(tmp_path / "audio" / "g0.wav")
    write_clip(tmp_path / "audio" / "g1.wav")
    path = write_jsonl(tmp_path / "ok.jsonl", [good(0), good(1, "Is it a type of vehi[AUDIO]cle?")])
    assert data_main(["check", str(path), "--tokenizer", str(tokenizer_dir)]) == 0  # a note, not a problem
    out = capsys.readouterr().out
    assert "2 record(s), 2 good, 0 bad" in out
    assert f"note: 1 good record(s) have a text token split where [AUDIO] stands" in out and f"{path}:2 (id=g1)" in out


def test_checker_missing_file_is_a_clear_error(tmp_path, capsys):
    assert data_main(["check", str(tmp_path / "nope.jsonl"), "--tokenizer", "none"]) == 1
    assert "cannot read file" in capsys.readouterr().out


def dm_for(path: Path, tokenizer, **kw) -> InterleavedDataModule:
    dm = InterleavedDataModule(train_file=str(path), batch_size=2, max_length=128, **kw)
    dm.tokenizer = tokenizer
    return dm


def test_datamodule_batches(small_dataset, tokenizer):
    dm = InterleavedDataModule(train_file=str(small_dataset / "train.jsonl"), val_file=str(small_dataset / "val.jsonl"), batch_size=2)
    dm.tokenizer = tokenizer
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

    from interleave.audio import load_fbank
    from interleave.errors import InterleaveError

    clip = small_dataset / "audio" / "c1.wav"
    left, sr = sf.read(clip, dtype="float32")
    sf.write(clip, np.stack([left, np.roll(left, 4000) * 0.5], axis=1), sr)  # r1 (training) is now stereo
    for channel in (None, "first", "mean"):
        dm = dm_for(small_dataset / "train.jsonl", tokenizer, val_file=str(small_dataset / "val.jsonl"),
                    **({"audio_channel": channel} if channel else {}))
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


def padding_fraction(order, lengths, batch_size):
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    padded = sum(max(lengths[j] for j in b) * len(b) for b in batches)
    return 1 - sum(lengths) / padded


def test_length_grouped_sampler_cuts_padding_and_still_shuffles():
    from interleave.sampler import TrainingSampler

    rng = random.Random(0)
    lengths = [rng.randint(40, 400) for _ in range(1000)]
    sampler = TrainingSampler(1000, batch_size=8, lengths=lengths, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(first) == sorted(second) == list(range(1000))  # every record once per epoch
    assert first != second
    shuffled = list(range(1000))
    rng.shuffle(shuffled)
    assert padding_fraction(shuffled, lengths, 8) > 0.3
    assert padding_fraction(first, lengths, 8) < 0.05


@pytest.mark.parametrize("lengths", [None, "grouped"])
def test_training_sampler_splits_ranks_keeps_grouping_and_skips_done_batches(lengths):
    from interleave.sampler import TrainingSampler

    rng = random.Random(0)
    sizes = [rng.randint(40, 400) for _ in range(1001)]
    lengths = sizes if lengths else None
    ranks = [TrainingSampler(1001, 8, lengths, num_replicas=2, rank=r, seed=3) for r in range(2)]
    for sampler in ranks:
        sampler.set_epoch(2)
    orders = [list(s) for s in ranks]
    assert len(orders[0]) == len(orders[1]) == len(ranks[0]) == 501  # padded like DistributedSampler
    assert set(orders[0]) | set(orders[1]) == set(range(1001))
    assert len(set(orders[0]) & set(orders[1])) <= 1  # only the repeat that evens out the ranks
    if lengths:  # each rank's batches are grouped, and the two ranks of one step have similar lengths
        assert padding_fraction(orders[0], sizes, 8) < 0.05
        step_max = [[max(sizes[j] for j in o[i : i + 8]) for i in range(0, 496, 8)] for o in orders]
        assert max(abs(a - b) for a, b in zip(*step_max)) < 30
    # unaffected by the global RNG
    torch.manual_seed(123)
    assert list(ranks[0]) == orders[0]
    # a resume in epoch 2 after 5 batches continues where the rank stood; other epochs are whole
    ranks[0].resume_from(epoch=2, batches_done=5)
    assert list(ranks[0]) == orders[0][40:]
    ranks[0].set_epoch(3)
    assert len(list(ranks[0])) == 501


def test_group_by_length_fit_logs_the_padding_fraction(tmp_path, small_dataset, tiny_model_kwargs, monkeypatch):
    import yaml

    import train
    from tests.test_train import write_config

    monkeypatch.setattr("sys.argv", ["train.py"])
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    data = yaml.safe_load(config.read_text())
    data["data"]["group_by_length"] = True
    data["trainer"]["callbacks"].append({"class_path": "callbacks.PaddingFraction"})
    config.write_text(yaml.safe_dump(data))
    run = train.cli(["fit", "--config", str(config)])
    fraction = float(run.trainer.callback_metrics["train/padding_fraction"])
    assert 0.0 <= fraction < 0.5


def test_a_checkpointed_position_resumes_the_epoch_or_restarts_it_when_the_batch_size_changed(small_dataset, tokenizer):
    def loader(batch_size: int, position: dict):
        dm = InterleavedDataModule(train_file=str(small_dataset / "train.jsonl"), batch_size=batch_size)
        dm.tokenizer = tokenizer
        dm.setup("fit")
        dm.load_state_dict({"train_position": position})
        return dm.train_dataloader()

    position = {"epoch": 0, "batches_done": 1, "batch_size": 2, "world_size": 1}
    whole = [b["ids"] for b in loader(2, {**position, "epoch": 5})]  # another epoch: nothing skipped
    assert len(whole) == 2
    assert [b["ids"] for b in loader(2, position)] == whole[1:]
    with pytest.warns(UserWarning, match="batch size 1 on 1 process.*not 2 on 1: epoch 0 starts again"):
        assert len(list(loader(1, position))) == 4
