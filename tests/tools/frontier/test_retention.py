"""interleave frontier with retention texts (issue 39): the held-out text's perplexity at every α, α = 0
the start model's own figure and α = 1 the checkpoint's, retention against α = 0 in frontier.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from callbacks.shard_eval import ShardEvaluation
from interleave.cli import build_run
from interleave.eval.evaluate import Point
from interleave.tools.demo.cli import DEMO_TEXT
from interleave.tools.frontier.cli import Ask, alpha_folder, main, retention_section
from tests.helpers import shard_config

TAG = "val/retention/coriolanus/perplexity"


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["interleave"])


def perplexity(config: Path, state=None) -> float:
    """The config's model's (or with `state` loaded) retention figure, scored as the callback scores it."""
    run = build_run(["--config", str(config)])
    if state is not None:
        run.model.load_state_dict(state, strict=False)
    evaluation = next(c for c in run.trainer.callbacks if isinstance(c, ShardEvaluation))
    evaluation.retention.load(run.model)
    return evaluation.retention.score(run.model.eval(), Point(epoch=0))[TAG]


@pytest.mark.slow  # a frontier evaluated at three alphas
def test_retention_at_every_alpha(tmp_path, small_dataset, tiny_model_kwargs):
    entry = {"name": "coriolanus", "file": str(DEMO_TEXT), "tokens": 100}
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs, {"retention": [entry], "identity": False})
    model = build_run(["--config", str(config)]).model
    generator = torch.Generator().manual_seed(1)
    end = {k: 0.3 * torch.randn(v.shape, generator=generator) for k, v in model.trainable_parameters().items()}
    ckpt = tmp_path / "end.ckpt"
    torch.save({"state_dict": end, "hyper_parameters": dict(model.hparams), "global_step": 4}, ckpt)
    out = tmp_path / "frontier"
    args = ["--config", str(config), "--ckpt", str(ckpt), "--alphas", "0,0.5,1", "--out", str(out)]
    assert main([*args, "--bootstrap", "50"]) == 0
    found = {
        a: json.loads((alpha_folder(out, a) / "predictions" / "epoch=00.metrics.json").read_text())
        for a in (0.0, 0.5, 1.0)
    }
    assert found[0.0][TAG] == pytest.approx(perplexity(config), rel=1e-6)
    assert found[1.0][TAG] == pytest.approx(perplexity(config, end), rel=1e-6)
    assert found[0.0]["retention"]["coriolanus"]["tokens"] == 100
    markdown = (out / "frontier.md").read_text()
    assert "Language retention" in markdown and "| 0 | coriolanus |" in markdown
    assert "| 0 | coriolanus | " in markdown and " | 1.000 [1.000, 1.000] |" in markdown  # α = 0 against itself


def test_the_retention_section_is_appended_with_alpha_zero_against_itself(tmp_path):
    out = tmp_path / "frontier"
    for alpha, nll in ((0.0, [4.0, 6.0, 5.0]), (1.0, [6.0, 9.0, 8.0])):
        folder = alpha_folder(out, alpha) / "predictions"
        folder.mkdir(parents=True)
        entry = {"sha256": "s", "segment_nll": nll, "segment_tokens": [2, 3, 2]}
        (folder / "epoch=00.metrics.json").write_text(json.dumps({"retention": {"t": entry}}))
    (out / "frontier.md").write_text("table\n")
    ask = Ask(
        configs=["c.yaml"], ckpt=tmp_path / "x.ckpt", start=None, out=out, alphas=[0.0, 1.0], resamples=100, seed=0
    )
    retention_section([], ask)
    lines = (out / "frontier.md").read_text().splitlines()
    assert lines[0] == "table" and "Language retention" in lines[2]
    assert lines[-2] == "| 0 | t | 8.52 | 1.000 [1.000, 1.000] |"  # exp(15 / 7)
    assert lines[-1].startswith("| 1 | t | 26.73 | 0.319 [")  # exp(23 / 7), their ratio
