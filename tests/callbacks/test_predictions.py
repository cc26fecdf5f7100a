"""callbacks.WritePredictions: what `train.py predict` generates, one JSON line per record, a file per rank."""

import json
from types import SimpleNamespace

import pytest

import train
from callbacks import WritePredictions
from tests.helpers import write_config


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


@pytest.mark.slow
def test_predict_writes_what_it_generates(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    config = str(write_config(tmp_path, small_dataset, tiny_model_kwargs))
    run = train.cli(["predict", "--config", config, "--data.predict_file", str(small_dataset / "val.jsonl")])
    predictions = [p for batch in run.trainer.predict_loop.predictions for p in batch]
    assert [p["id"] for p in predictions] == ["r4", "r5"]
    written = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [(w["id"], w["reference"]) for w in written] == [("r4", "Labels: Sine wave"), ("r5", "Labels: Siren")]
    assert [w["generated"] for w in written] == [p["generated"] for p in predictions]
    assert "[interleave] predictions:" in capsys.readouterr().out


def test_each_rank_writes_its_own_file_and_a_new_run_starts_it_again(tmp_path, capsys):
    one = SimpleNamespace(log_dir=str(tmp_path / "logs"), default_root_dir=str(tmp_path), world_size=1, global_rank=0)
    assert WritePredictions()._target(one) == tmp_path / "logs" / "predictions.jsonl"  # the run's log folder
    ddp = SimpleNamespace(log_dir=None, default_root_dir=str(tmp_path), world_size=2, global_rank=1)
    assert WritePredictions()._target(ddp) == tmp_path / "predictions.jsonl.rank1"
    writer = WritePredictions(str(tmp_path / "out" / "p.jsonl"))
    file = tmp_path / "out" / "p.jsonl.rank1"
    rows = [
        {"id": "a", "generated": "Labels: Sirène", "reference": "Labels: Siren"},
        {"id": "b", "generated": "", "reference": "Labels: Drum"},
    ]
    for _ in range(2):  # a second predict run replaces the first one's lines
        writer.on_predict_start(ddp, None)
        assert file.read_text() == ""
        writer.write_on_batch_end(ddp, None, rows[:1], None, None, 0)
        writer.write_on_batch_end(ddp, None, rows[1:], None, None, 1)
        writer.on_predict_end(ddp, None)
        lines = file.read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == rows and "Sirène" in lines[0]
        assert capsys.readouterr().out == f"[interleave] predictions: {file} (2 records)\n"


@pytest.mark.slow
def test_predict_answers_two_clip_records_as_generating_each_alone(tmp_path, small_dataset, tiny_model_kwargs):
    """Issue 19: a predict file with a two-clip record beside one-clip ones."""
    from interleave.data.audio_records import AudioRecords
    from interleave.data.collate import Collator
    from interleave.data.records import read_records

    two = {
        "id": "p0",
        "audio": ["audio/c4.wav", "audio/c1.wav"],
        "output": "No",
        "instruction": "Is [AUDIO] the same kind of sound as [AUDIO]?",
    }
    with open(small_dataset / "val.jsonl", "a") as out:
        out.write(json.dumps(two) + "\n")
    config = str(write_config(tmp_path, small_dataset, tiny_model_kwargs))
    run = train.cli(["predict", "--config", config, "--data.predict_file", str(small_dataset / "val.jsonl")])
    written = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert [w["id"] for w in written] == ["r4", "r5", "p0"]
    records, _ = read_records(small_dataset / "val.jsonl")
    model = run.model.eval()
    collator = Collator(model.tokenizer, padding_side="left", with_prompt_batch=True)
    for record, w in zip(records, written):
        batch = collator([AudioRecords([record], small_dataset)[0]])
        alone = model.generate_batch(batch, max_new_tokens=model.hparams.val_max_new_tokens, do_sample=False)
        assert w["generated"] == alone[0], record.id
