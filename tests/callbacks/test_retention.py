"""callbacks.retention through train.py: the held-out text's perplexity at every point of a fit (epoch 0
the base LLM's), the same selection everywhere and under DDP with 2 processes, its metrics-file entry,
the "language" chart, and config errors in one line."""

import json

import pytest
import yaml

import train
from callbacks import ShardEvaluation
from callbacks.curves import closing_table, curves_figure, forgetting_layout
from callbacks.retention import Retention, retention_configs, summary
from interleave.errors import InterleaveError
from interleave.tools.demo.cli import DEMO_TEXT
from tests.helpers import run_cli, run_dir, run_on_devices, shard_config

TAG = "val/retention/coriolanus/perplexity"
ENTRY = {"name": "coriolanus", "file": str(DEMO_TEXT), "tokens": 150, "batch_size": 3}


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def retention_only(config) -> None:
    """The config's callback without its SHARD file: retention alone."""
    data = yaml.safe_load(config.read_text())
    del data["trainer"]["callbacks"][-1]["init_args"]["shard_file"]
    config.write_text(yaml.safe_dump(data))


@pytest.mark.slow
def test_every_point_of_a_fit_scores_the_same_tokens_and_epoch_0_is_the_base_llm(
    tmp_path, small_dataset, tiny_model_kwargs
):
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs, {"retention": [ENTRY]})
    train.cli(["fit", "--config", str(config), "--trainer.max_epochs=2", "--trainer.max_steps=-1"])
    predictions = run_dir(tmp_path) / "predictions"
    points = [json.loads((predictions / f"epoch={e:02d}.metrics.json").read_text()) for e in (0, 1, 2)]
    for point in points:
        entry = point["retention"]["coriolanus"]
        assert sum(entry["segment_tokens"]) == entry["tokens"] == 150
        assert entry["segment_tokens"] == points[0]["retention"]["coriolanus"]["segment_tokens"]
        assert entry["sha256"] == points[0]["retention"]["coriolanus"]["sha256"]
        assert point[TAG] > 1 and "val/text/retention/coriolanus/perplexity" not in point
    assert points[2][TAG] != points[0][TAG]  # training moved it
    assert (run_dir(tmp_path) / "curves.png").is_file()
    assert "val/shard/synonym/f1" in points[0]  # the SHARD still asked beside it


@pytest.mark.slow
def test_ddp_two_ranks_give_the_figures_of_one(tmp_path, small_dataset, tiny_model_kwargs):
    found = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        out.mkdir()
        config = shard_config(out, small_dataset, tiny_model_kwargs, {"retention": [ENTRY]})
        retention_only(config)
        run_on_devices("validate", config, devices, tmp_path)
        found[devices] = json.loads((run_dir(out) / "predictions" / "epoch=00.metrics.json").read_text())
    one, two = found[1]["retention"]["coriolanus"], found[2]["retention"]["coriolanus"]
    assert two["segment_tokens"] == one["segment_tokens"]
    assert two["segment_nll"] == pytest.approx(one["segment_nll"], rel=1e-5)
    assert found[2][TAG] == pytest.approx(found[1][TAG], rel=1e-5)


def test_config_errors_are_one_line():
    with pytest.raises(InterleaveError, match=r"retention\[0\]: unknown key\(s\) \['token'\]"):
        retention_configs([{"name": "a", "file": "f", "token": 3}])
    with pytest.raises(InterleaveError, match=r"retention\[0\]: missing \['file'\]"):
        retention_configs([{"name": "a"}])
    with pytest.raises(InterleaveError, match="two entries with one name"):
        retention_configs([{"name": "a", "file": "f"}, {"name": "a", "file": "g"}])
    with pytest.raises(InterleaveError, match="^ShardEvaluation: retention"):
        ShardEvaluation(retention=[{"name": "a", "file": "f", "tokens": -1}])
    assert ShardEvaluation(retention=[{"name": "a", "file": "f"}]).retention  # no SHARD needed


def test_the_language_chart_and_panel_and_the_summary():
    lines = {"coriolanus": TAG}
    charts = forgetting_layout({"interleaved": "val"}, {"synonym"}, language=lines)["forgetting"]
    assert charts["language"] == ["Multiline", [TAG]]
    history = [{"epoch": 0, "metrics": {TAG: 40.0}}, {"epoch": 1, "metrics": {TAG: 55.0}}]
    figure = curves_figure(history, {"interleaved": "val"}, language=lines)
    panel = figure.axes[-1]
    assert panel.get_title().startswith("language") and panel.get_ylim()[1] > 50
    assert closing_table(history, {}, lines).endswith("language: coriolanus perplexity  epoch 0 40.00, epoch 1 55.00")
    assert summary({TAG: 41.234, "val/shard/synonym/f1": 0.5}) == "retention/coriolanus/perplexity=41.23"


def write_text_choices(folder, extra=()) -> str:
    """A small text multiple-choice file in the benchmark format, without audio_id."""
    items = [
        {"id": "t0", "question": "Which one is a colour?", "choices": ["red", "table"], "answer": "red"},
        {"id": "t1", "question": "Which one can swim?", "choices": ["stone", "fish", "cloud"], "answer": "fish"},
        {"id": "t2", "question": "Which one is a number?", "choices": ["seven", "river"], "answer": "seven"},
        *extra,
    ]
    path = folder / "text_mc.json"
    path.write_text(json.dumps(items))
    return str(path)


def test_text_multiple_choice_is_asked_without_audio_by_both_scorings(model, tmp_path):
    from interleave.data.collate import Collator
    from interleave.eval.benchmarks.evaluate import RunSettings
    from interleave.eval.benchmarks.prompts import PROMPTS, no_clip, render
    from interleave.eval.benchmarks.ranked import Question, choice_loglikelihoods, ranked_choice
    from interleave.eval.evaluate import EvalInputs, Point
    from interleave.model.generation import Sampling

    bad = {"id": "a0", "audio_id": "x.wav", "question": "q?", "choices": ["a", "b"], "answer": "a"}
    entry = {"name": "mc", "file": write_text_choices(tmp_path, [bad]), "kind": "choice"}
    retention = Retention([{**entry, "scorings": ["ranked", "generated"]}])
    retention.load(model)
    assert [i.id for i in retention.items["mc"]] == ["t0", "t1", "t2"]  # the item with a clip is bad, named
    collator = Collator(model.tokenizer, padding_side="left", with_answer=False)
    run = RunSettings(repeats=2, sampling=Sampling(max_new_tokens=3), batch_size=2)
    metrics = retention.score(model, Point(), run, EvalInputs(collator))
    assert set(metrics) == {
        "val/retention/mc/ranked/accuracy",
        "val/retention/mc/generated/accuracy",
        "val/retention/mc/generated/no_choice",
    }
    questions = [Question(no_clip(render(i, PROMPTS["interleaved"])), i.choices, ()) for i in retention.items["mc"]]
    scores = choice_loglikelihoods(model, collator, questions, None)
    right = [i.choices[ranked_choice(s)] == i.answer for i, s in zip(retention.items["mc"], scores)]
    assert metrics["val/retention/mc/ranked/accuracy"] == pytest.approx(sum(right) / 3)
    header = retention.header()["retention"]["mc"]
    assert header["kind"] == "choice" and header["items"] == 3 and header["bad_items"] == 1 and header["asked"] == 3
    assert retention.charts() == {
        "language mc accuracy": ["val/retention/mc/ranked/accuracy", "val/retention/mc/generated/accuracy"]
    }


def test_a_text_choice_entry_is_checked(tmp_path):
    with pytest.raises(InterleaveError, match=r"retention\[0\]: unknown key\(s\) \['tokens'\]"):
        retention_configs([{"name": "a", "file": "f", "kind": "choice", "tokens": 5}])
    with pytest.raises(InterleaveError, match=r"retention\[0\]: kind must be perplexity or choice"):
        retention_configs([{"name": "a", "file": "f", "kind": "quiz"}])
    with pytest.raises(InterleaveError, match="scorings must be some of"):
        retention_configs([{"name": "a", "file": "f", "kind": "choice", "scorings": ["guess"]}])


@pytest.mark.slow
def test_a_bad_text_stops_the_run_with_one_line_naming_the_file(tmp_path, small_dataset, tiny_model_kwargs):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs, {"retention": [{**ENTRY, "file": str(empty)}]})
    done = run_cli(["validate", "--config", str(config)], tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == f"error: {empty}: the retention text is empty"
