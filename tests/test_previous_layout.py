"""A run saved before the package moved into folders (issue 35) still loads: its `config.yaml`, as
LightningCLI wrote it then (tests/fixtures/previous_layout/config.yaml: `interleave.data.InterleavedDataModule`,
`callbacks.ShardEvaluation`, `callbacks.WritePredictions`, ...), is validated with `train.py`, reported with
`interleave report` and measured with `interleave frontier`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

import train
from interleave.cli import build_run
from interleave.tools.command import main as interleave
from tests.helpers import write_shard

SAVED = Path(__file__).resolve().parent / "fixtures" / "previous_layout" / "config.yaml"


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


@pytest.fixture()
def saved_config(tmp_path, small_dataset, tokenizer_dir) -> Path:
    """The saved config, its folders pointing at this test's data (the small dataset and its SHARD)."""
    write_shard(small_dataset)
    text = (
        SAVED.read_text(encoding="utf-8").replace("TOKENIZERDIR", str(tokenizer_dir)).replace("RUNDIR", str(tmp_path))
    )
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def class_paths(tree) -> list[str]:
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in ([v] if k == "class_path" else class_paths(v))]
    return [p for v in tree for p in class_paths(v)] if isinstance(tree, list) else []


def test_the_fixture_names_the_previous_class_paths():
    named = class_paths(yaml.safe_load(SAVED.read_text(encoding="utf-8")))
    assert {
        "interleave.data.InterleavedDataModule",
        "callbacks.ShardEvaluation",
        "callbacks.WritePredictions",
        "callbacks.RunSummary",
        "callbacks.PaddingFraction",
    } <= set(named)


@pytest.mark.slow
def test_validate_report_and_frontier_read_a_run_saved_by_the_previous_layout(saved_config, tmp_path, capsys):
    train.cli(["validate", "--config", str(saved_config)])
    (run,) = sorted((tmp_path / "runs" / "t").glob("version_*"))
    metrics = json.loads((run / "predictions" / "epoch=00.metrics.json").read_text())
    assert "val/shard/synonym/f1" in metrics

    assert interleave(["report", str(run), "--out", str(tmp_path / "report"), "--bootstrap", "20"]) == 0
    assert (tmp_path / "report" / "report.md").is_file()

    # The tools build a run as `train.py fit` would, without a subcommand, from the saved config.yaml as
    # it is: the keys only a subcommand takes (which LightningCLI saves too) are accepted and not used.
    config = saved_config
    assert {"optimizer", "lr_scheduler", "ckpt_path", "weights_only"} <= set(yaml.safe_load(config.read_text()))
    model = build_run(["--config", str(config)]).model
    generator = torch.Generator().manual_seed(1)
    state = {k: 0.3 * torch.randn(v.shape, generator=generator) for k, v in model.trainable_parameters().items()}
    ckpt = tmp_path / "end.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": dict(model.hparams), "global_step": 4}, ckpt)
    out = tmp_path / "frontier"
    assert (
        interleave(
            [
                "frontier",
                "--config",
                str(config),
                "--ckpt",
                str(ckpt),
                "--alphas",
                "0,1",
                "--out",
                str(out),
                "--bootstrap",
                "20",
            ]
        )
        == 0
    ), capsys.readouterr().err
    assert (out / "frontier.md").is_file()
