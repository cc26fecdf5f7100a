"""A run saved before the package moved into folders (issue 35) still loads: its `config.yaml`, as
LightningCLI wrote it then (tests/fixtures/previous_layout/config.yaml: `interleave.data.InterleavedDataModule`,
`callbacks.ShardEvaluation`, `callbacks.WritePredictions`, ...), is validated with `train.py`, reported with
`interleave report` and measured with `interleave frontier`. A checkpoint written by the code of that time
(tests/fixtures/previous_layout/epoch=0-step=2.ckpt: this config's fit of one epoch at c376854, before issue 35's
typed seams) resumes a fit: what ShardEvaluation kept in it is plain data that `torch.load(weights_only=True)` reads."""

from __future__ import annotations

import csv
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
SAVED_CKPT = SAVED.parent / "epoch=0-step=2.ckpt"  # 80 kB: projector, LoRA, optimizer, loops, callbacks' state


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


def placed(tree, folders: dict[str, str]):
    """The checkpoint's tree with its folders' placeholders (RUNDIR, TOKENIZERDIR) replaced, as in the config."""
    if isinstance(tree, dict):
        return {key: placed(value, folders) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(placed(value, folders) for value in tree)
    if isinstance(tree, str):
        for name, folder in folders.items():
            tree = tree.replace(name, folder)
    return tree


@pytest.mark.slow  # a Lightning fit resumed from the saved checkpoint
def test_a_fit_resumes_from_a_checkpoint_saved_before_the_typed_seams(saved_config, tmp_path, tokenizer_dir):
    kept = torch.load(SAVED_CKPT, weights_only=True)
    history = kept["callbacks"]["ShardEvaluation"]["history"]
    assert [point["epoch"] for point in history] == [0]  # saved at the epoch's last step, before its evaluation
    ckpt = tmp_path / "saved.ckpt"
    torch.save(placed(kept, {"RUNDIR": str(tmp_path), "TOKENIZERDIR": str(tokenizer_dir)}), ckpt)
    fit = ["fit", "--config", str(saved_config), "--trainer.max_steps", "-1", "--trainer.max_epochs", "2"]
    train.cli([*fit, "--ckpt_path", str(ckpt)])
    (run,) = sorted((tmp_path / "runs" / "t").glob("version_*"))
    # The point kept in the checkpoint (epoch 0) is not evaluated again, and the curves carry it on.
    assert "epoch=00.jsonl" not in {p.name for p in (run / "predictions").iterdir()}
    assert (run / "predictions" / "epoch=02.metrics.json").is_file()
    curves = list(csv.DictReader((run / "curves.csv").open(encoding="utf-8")))
    epochs = sorted({int(row["epoch"]) for row in curves})
    assert epochs[0] == 0 and epochs[-1] == 2
    tag = "val/shard/synonym/f1"
    saved = {point["epoch"]: point["metrics"][tag] for point in history}
    main = [row for row in curves if row["condition"] == "interleaved" and int(row["epoch"]) == 0]
    assert {int(row["epoch"]): float(row["synonym_f1"]) for row in main} == saved
    # What the new code keeps is plain data again, read with weights_only=True (saved at the last step,
    # before epoch 2's evaluation, as the fixture was).
    again = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["callbacks"]["ShardEvaluation"]
    assert again == {"history": history}
