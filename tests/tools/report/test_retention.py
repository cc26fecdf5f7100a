"""interleave.tools.report.retention: a large LoRA update raises the held-out text's perplexity and the
report's retention falls below 1 with a paired interval over segments that excludes 1; the study's
mean over seeds; points that scored different selections get a note."""

import csv
import json
import shutil

import pytest

from callbacks.retention import Retention
from interleave.eval.evaluate import Point
from interleave.eval.retention import saved_texts
from interleave.tools.demo.cli import DEMO_TEXT
from interleave.tools.report import cli as report
from tests.helpers import answer_set, fit_base_to_text, large_lora_update, write_answered_point


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tokenizer_dir, tiny_llama_config):
    """A run whose epoch 00 is the (text-fitted) base LLM and whose epoch 01 has a large LoRA update,
    built once for the module."""
    import torch

    from interleave.model.module import AudioLLM
    from tests.helpers import TINY_ENCODER

    torch.manual_seed(0)
    model = AudioLLM(
        llm=None, llm_config=tiny_llama_config, tokenizer=str(tokenizer_dir), encoder="tiny",
        encoder_kwargs=TINY_ENCODER, lora_r=4, lora_alpha=8,
    ).eval()  # fmt: skip
    run = tmp_path_factory.mktemp("scored") / "runs" / "damaged" / "version_0"
    retention = Retention([{"name": "coriolanus", "file": str(DEMO_TEXT), "tokens": 200}])
    retention.load(model)
    fit_base_to_text(model, retention.selections[0].segments, steps=20)
    for epoch in (0, 1):
        if epoch:
            large_lora_update(model)
        metrics = retention.score(model, Point(epoch=epoch, rank=0, world_size=1))
        write_answered_point(run, epoch, answer_set(epoch), **metrics, **retention.header())
    return run


@pytest.fixture()
def damaged_run(tmp_path, scored):
    run = tmp_path / "runs" / "damaged" / "version_0"
    shutil.copytree(scored, run)
    return run


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_large_update_shows_retention_below_one_with_an_interval_excluding_one(tmp_path, damaged_run, capsys):
    out = tmp_path / "out"
    assert report.main([str(damaged_run), "--out", str(out), "--bootstrap", "300"]) == 0
    (row,) = read_csv(out / "retention.csv")
    before, after = float(row["Perplexity first"]), float(row["Perplexity last"])
    assert after > 1.5 * before
    assert float(row["Retention"]) == pytest.approx(before / after)
    assert float(row["lo"]) < float(row["Retention"]) < float(row["hi"]) < 1
    markdown = (out / "report.md").read_text()
    assert "Language retention" in markdown and "| coriolanus | 00 → 01 |" in markdown


def test_the_study_reports_the_mean_over_seeds(tmp_path, damaged_run):
    study = tmp_path / "study"
    for seed in (0, 1):
        shutil.copytree(damaged_run, study / "replay" / f"seed={seed}")
    out = tmp_path / "out"
    assert report.main(["--study", str(study), "--out", str(out), "--bootstrap", "200"]) == 0
    (row,) = read_csv(out / "retention.csv")
    assert row["Study condition"] == "replay" and float(row["Retention"]) < float(row["hi"]) < 1
    assert "Language retention" in (out / "report.md").read_text()


def test_points_that_scored_different_selections_get_a_note(tmp_path, damaged_run):
    file = damaged_run / "predictions" / "epoch=01.metrics.json"
    data = json.loads(file.read_text())
    data["retention"]["coriolanus"]["sha256"] = "0" * 64
    file.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert report.main([str(damaged_run), "--out", str(out)]) == 0
    assert "epochs 00 and 01 scored different selections" in (out / "report.md").read_text()
    assert not (out / "retention.csv").exists()


def test_a_malformed_entry_names_the_file():
    from interleave.errors import InterleaveError

    with pytest.raises(InterleaveError, match=r"f\.json: retention 'x' is malformed"):
        saved_texts({"retention": {"x": {"sha256": "a", "segment_nll": [1.0], "segment_tokens": []}}}, "f.json")
