"""callbacks.ShardEvaluation through train.py: every epoch, before training, zero-shot, and DDP."""

import json
import os
from pathlib import Path

import pytest
import yaml

import train
from callbacks import ShardEvaluation
from interleave import provenance
from interleave.errors import InterleaveError
from interleave.eval.answers import parse_answer
from interleave.tools.report import cli as report
from interleave.tools.report.runs import rescore
from interleave.tools.saved_answers import read_predictions
from tests.helpers import ALL_TAGS, RELATIONS, expected_tags, run_dir, run_on_devices, shard_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


@pytest.mark.slow
def test_fit_evaluates_before_training_and_every_epoch(tmp_path, small_dataset, tiny_model_kwargs):
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs, max_steps=-1, max_epochs=2)
    train.cli(["fit", "--config", str(config)])
    predictions = run_dir(tmp_path) / "predictions"
    assert sorted(p.name for p in predictions.iterdir()) == [
        f"epoch={e:02d}.{kind}" for e in (0, 1, 2) for kind in ("jsonl", "metrics.json")
    ]

    for epoch in (0, 1, 2):
        metrics = json.loads((predictions / f"epoch={epoch:02d}.metrics.json").read_text())
        assert ALL_TAGS <= set(metrics), ALL_TAGS - set(metrics)
        assert metrics["epoch"] == epoch and metrics["layout"] == "interleaved"
        assert all(0.0 <= metrics[t] <= 1.0 for t in ALL_TAGS)
        # how many rows its predictions file holds, for readers to check it whole (issue 34)
        assert metrics["prediction_rows"] == len((predictions / f"epoch={epoch:02d}.jsonl").read_text().splitlines())
        assert "ckpt_path" not in metrics  # a fit's points are its own, epoch 00 before training
    # After an epoch the file also holds what validation logged besides SHARD.
    assert "val/loss" in json.loads((predictions / "epoch=01.metrics.json").read_text())

    rows = [json.loads(line) for line in (predictions / "epoch=01.jsonl").read_text().splitlines()]
    # Two audio layouts with 15 queries each; the text control asks each (word, candidate) once:
    # clips 0 and 2 share a word, so 2 words x 4 candidates.
    assert len(rows) == 15 + 15 + 8
    first = rows[0]
    assert set(first) == {"id", "task", "condition", "label", "candidate", "truth", "prompt", "answers", "parsed"}
    assert len(first["answers"]) == len(first["parsed"]) == 2
    syn = next(r for r in rows if r["task"] == "synonym" and r["condition"] == "text")
    assert syn["prompt"] == "Is sine wave similar to sinusoid?" and syn["parsed"][0] in ("yes", "no", None)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir(tmp_path)), size_guidance={"images": 0, "tensors": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert ALL_TAGS <= scalars, ALL_TAGS - scalars
    steps = [e.step for e in events.Scalars("val/shard/synonym/f1")]
    assert steps[0] == 0 and len(steps) == 3  # the epoch-0 point, then one per epoch
    assert "val/curves" in events.Tags()["images"]
    assert any("val/samples" in tag for tag in events.Tags()["tensors"])


@pytest.mark.slow
def test_every_n_epochs_and_no_point_before_training(tmp_path, small_dataset, tiny_model_kwargs):
    config = shard_config(
        tmp_path,
        small_dataset,
        tiny_model_kwargs,
        {"every_n_epochs": 2, "before_training": False, "text_control": False, "extra_layouts": [], "identity": False},
        max_steps=-1,
        max_epochs=2,
    )
    train.cli(["fit", "--config", str(config)])
    predictions = run_dir(tmp_path) / "predictions"
    assert sorted(p.name for p in predictions.iterdir()) == ["epoch=02.jsonl", "epoch=02.metrics.json"]
    metrics = json.loads((predictions / "epoch=02.metrics.json").read_text())
    assert expected_tags("val", identity=False) <= set(metrics)
    assert not any(k.startswith(("val/text/", "val/identity")) for k in metrics)


@pytest.mark.slow
def test_without_a_validation_set_it_runs_after_each_training_epoch(tmp_path, small_dataset, tiny_model_kwargs):
    config = shard_config(
        tmp_path,
        small_dataset,
        tiny_model_kwargs,
        {"text_control": False, "extra_layouts": []},
        max_steps=-1,
        max_epochs=2,
    )
    data = yaml.safe_load(config.read_text())
    del data["data"]["val_file"]
    config.write_text(yaml.safe_dump(data))
    train.cli(["fit", "--config", str(config)])
    predictions = run_dir(tmp_path) / "predictions"
    assert sorted(p.name for p in predictions.glob("*.metrics.json")) == [
        "epoch=00.metrics.json",
        "epoch=01.metrics.json",
        "epoch=02.metrics.json",
    ]
    assert expected_tags("val") <= set(json.loads((predictions / "epoch=02.metrics.json").read_text()))


@pytest.mark.slow
def test_mid_epoch_validations_do_not_add_points(tmp_path, small_dataset, tiny_model_kwargs):
    config = shard_config(
        tmp_path,
        small_dataset,
        tiny_model_kwargs,
        {"text_control": False, "extra_layouts": [], "before_training": False},
        max_steps=-1,
        max_epochs=1,
        val_check_interval=0.5,
    )
    run = train.cli(["fit", "--config", str(config)])
    assert run.trainer.fit_loop.epoch_loop.val_loop.batch_progress.total.completed > 1  # validated twice
    predictions = run_dir(tmp_path) / "predictions"
    assert sorted(p.name for p in predictions.glob("*.metrics.json")) == ["epoch=01.metrics.json"]


@pytest.mark.slow
@pytest.mark.parametrize("parser", [None, "extended"])
def test_validate_is_the_zero_shot_evaluation(tmp_path, small_dataset, tiny_model_kwargs, parser):
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs, {"parser": parser} if parser else None)
    run = train.cli(["validate", "--config", str(config)])
    assert ALL_TAGS <= set(run.trainer.callback_metrics)
    file = run_dir(tmp_path) / "predictions" / "epoch=00.metrics.json"
    metrics = json.loads(file.read_text())
    for tag in ALL_TAGS:
        assert metrics[tag] == pytest.approx(float(run.trainer.callback_metrics[tag]))
    # The metrics file records the parser (the paper's by default); the rows keep the raw answers,
    # parsed with it, so the report re-scores them to the very same figures.
    assert metrics["parser"] == (parser or "paper")
    for row in read_predictions(file.with_name("epoch=00.jsonl")):
        if row.task != "identity":
            assert row.parsed == [parse_answer(a, rules=metrics["parser"]) for a in row.answers]
    assert rescore(file, metrics, metrics["parser"]) == metrics
    # ...and what makes runs comparable: code version, settings, SHARD bytes, tokenization rule
    assert metrics["shard_hash"] == provenance.file_hash(small_dataset / "shard.jsonl")
    assert metrics["config_hash"] == provenance.config_hash(run.model.hparams, run.datamodule.hparams)
    assert metrics["code_version"] == provenance.code_version()
    assert metrics["tokenization"] == provenance.TOKENIZATION


@pytest.mark.slow
def test_a_checkpoint_validated_on_its_own_is_filed_under_its_epochs_not_before_training(
    tmp_path, small_dataset, tiny_model_kwargs, capsys
):
    """Issue 34: `train.py validate --ckpt_path X` with no fit filed X's point as epoch=00, which the
    report's forgetting summary calls "before training". It is now filed under the epochs X's weights
    were trained, and its metrics file names X."""
    config = shard_config(
        tmp_path,
        small_dataset,
        tiny_model_kwargs,
        {"text_control": False, "extra_layouts": []},
        max_steps=-1,
        max_epochs=1,
    )
    train.cli(["fit", "--config", str(config)])
    ckpt = tmp_path / "ckpt" / "last.ckpt"  # saved after the one epoch's last step (2 batches)
    train.cli(["validate", "--config", str(config), f"--ckpt_path={ckpt}"])
    fitted, validated = sorted((tmp_path / "runs" / "t").glob("version_*"))
    assert sorted(p.name for p in (fitted / "predictions").glob("*.metrics.json")) == [
        "epoch=00.metrics.json",
        "epoch=01.metrics.json",
    ]
    assert sorted(p.name for p in (validated / "predictions").iterdir()) == ["epoch=01.jsonl", "epoch=01.metrics.json"]
    metrics = json.loads((validated / "predictions" / "epoch=01.metrics.json").read_text())
    assert (metrics["epoch"], metrics["ckpt_path"], metrics["ckpt_global_step"], metrics["seed_epoch"]) == (
        1,
        str(ckpt),
        2,
        0,
    )
    assert metrics["prediction_rows"] == len((validated / "predictions" / "epoch=01.jsonl").read_text().splitlines())
    capsys.readouterr()
    assert report.main([str(tmp_path / "runs" / "t"), "--out", str(tmp_path / "out"), "--bootstrap", "0"]) == 0
    markdown = capsys.readouterr().out
    assert [line.split(" | ")[:3] for line in markdown.splitlines() if line.startswith("| t/")] == [
        ["| t/version_0", "interleaved", "01"],
        ["| t/version_1", "interleaved", "01"],  # Table 2
        ["| t/version_0", "interleaved", "00 → 01"],
    ]  # the forgetting summary: the fit alone
    assert (
        f"t/version_1: epoch 01 is the checkpoint {ckpt} (global step 2) evaluated on its own "
        "(train.py validate --ckpt_path), its answers drawn with the seeds of epoch 00"
    ) in markdown


def test_an_unknown_parser_is_refused_at_construction():
    with pytest.raises(InterleaveError, match="parser must be one of paper, extended, got 'loose'"):
        ShardEvaluation("shard.jsonl", parser="loose")


@pytest.mark.slow  # a validate, stopped by the SHARD check
def test_missing_shard_audio_stops_before_any_work(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs)
    (small_dataset / "audio" / "c1.wav").unlink()
    assert train.main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "shard.jsonl" in err and "c1.wav" in err


PROBE_TAGS = (
    expected_tags("val/silence")
    | expected_tags("val/swap")
    | {f"val/{p}/shard/{r}/agreement" for p in ("silence", "swap") for r in RELATIONS}
    | {f"val/{p}/identity/agreement" for p in ("silence", "swap")}
)


@pytest.mark.slow
def test_ddp_two_ranks_give_the_metrics_of_one(tmp_path, small_dataset, tiny_model_kwargs):
    """15 queries on 2 ranks: each answered exactly once (no DistributedSampler padding), same metrics,
    the probes' (issue 26) agreement with the real clips included: it is computed after the gather."""
    results = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        out.mkdir()
        config = shard_config(out, small_dataset, tiny_model_kwargs, {"probes": ["silence", "swap"]})
        run_on_devices("validate", config, devices, tmp_path)
        predictions = run_dir(out) / "predictions"
        rows = [json.loads(line) for line in (predictions / "epoch=00.jsonl").read_text().splitlines()]
        keys = [(r["condition"], r["id"]) for r in rows]
        assert len(keys) == len(set(keys)) == 15 + 15 + 8 + 15 + 15
        assert {r["condition"] for r in rows} == {"interleaved", "noninterleaved", "text", "silence", "swap"}
        metrics = json.loads((predictions / "epoch=00.metrics.json").read_text())
        assert not any(t.endswith("/agreement") for t in metrics if not t.startswith(("val/silence/", "val/swap/")))
        results[devices] = ({t: metrics[t] for t in ALL_TAGS | PROBE_TAGS}, rows)
    assert results[2][0] == results[1][0]
    assert results[2][1] == results[1][1]  # the very same answers


@pytest.mark.slow
def test_a_batch_log_shows_each_conditions_queries_answered(tmp_path, small_dataset, tiny_model_kwargs, caplog):
    import logging

    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs)
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="lightning.pytorch"):
            train.cli(["validate", "--config", str(config)])
    finally:
        logger.removeHandler(caplog.handler)
    # the last line of each condition (a slow machine may log one every 10 s before it)
    progress = list(
        {m.split(":")[0]: m for m in caplog.messages if m.startswith("[interleave] SHARD epoch 0 ")}.values()
    )
    assert [m.split(": ", 1)[1].split(", ")[0] for m in progress] == [
        "done 15/15 queries (100%)",
        "done 15/15 queries (100%)",
        "done 8/8 queries (100%)",
    ]
    assert [m.split(":")[0] for m in progress] == [
        "[interleave] SHARD epoch 0 interleaved",
        "[interleave] SHARD epoch 0 noninterleaved",
        "[interleave] SHARD epoch 0 text",
    ]
    assert all("queries/s" in m for m in progress)


@pytest.mark.slow
def test_answers_stop_at_their_verdict_by_default_with_the_metrics_of_whole_answers(
    tmp_path, small_dataset, tiny_model_kwargs, tokenizer
):
    """The default mode against `full_answers: true`, same seeds: the same parsed verdicts, so the very
    same metrics; the stopped answers are marked `cut` and `report --parser` refuses another parser for them."""
    import torch

    from tests.helpers import YES_NO

    favoured = sorted(set(tokenizer(YES_NO, add_special_tokens=False)["input_ids"]))

    def talk_yes_no(module, inputs, output):  # every LM head of the run favours the words of yes/no answers
        if isinstance(module, torch.nn.Linear) and output.shape[-1] == len(tokenizer):
            output = output.clone()
            output[..., favoured] += 4.0
            return output

    def validate(name, **args):
        folder = tmp_path / name
        folder.mkdir()
        config = shard_config(
            folder,
            small_dataset,
            tiny_model_kwargs,
            {"sampling": {"max_new_tokens": 24, "temperature": 1.0}, "repeats": 4, "extra_layouts": [], **args},
        )
        train.cli(["validate", "--config", str(config)])
        file = run_dir(folder) / "predictions" / "epoch=00.metrics.json"
        return file, json.loads(file.read_text()), read_predictions(file.with_name("epoch=00.jsonl"))

    handle = torch.nn.modules.module.register_module_forward_hook(talk_yes_no)
    try:
        file, short, rows = validate("default")
        _, whole, full_rows = validate("full", full_answers=True)
    finally:
        handle.remove()
    shard_tags = [tag for tag in short if "/shard/" in tag or tag.endswith("identity/accuracy")]
    assert shard_tags and {tag: short[tag] for tag in shard_tags} == {tag: whole[tag] for tag in shard_tags}
    assert [r.parsed for r in rows] == [r.parsed for r in full_rows]
    assert not any(r.cut is not None for r in full_rows)
    cut = [(a, b) for r, f in zip(rows, full_rows) for a, b, c in zip(r.answers, f.answers, r.cut or []) if c]
    assert cut and all(b.startswith(a) and len(a) < len(b) for a, b in cut)
    assert all(r.task != "identity" for r in rows if r.cut is not None)  # identity answers run to the end
    with pytest.raises(InterleaveError, match="stopped at their verdict under the paper parser"):
        rescore(file, short, "extended")


GOLDEN = REPO / "tests" / "fixtures" / "shard_eval_golden"
UNSTABLE = ("code_version", "config_hash")  # depend on the commit and on the test's folder
# Added to the metrics file after the golden files were made, checked on their own below (the
# golden files stay the bytes written before issue 34): the number of rows of the predictions file.
ADDED = ("prediction_rows",)


@pytest.mark.slow
def test_predictions_and_metrics_are_byte_identical_to_the_golden_files(tmp_path, small_dataset, tiny_model_kwargs):
    """Identity, yes/no and pair queries under the run's layout, LTU's layout and the text control,
    scored too: the predictions file and the metrics (less what names the commit or the folder) are
    the very bytes the evaluation wrote before the task registry and the typed rows (issue 25)."""
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs, {"scoring": True})
    shard = small_dataset / "shard.jsonl"
    pairs = [
        {
            "id": f"pair/{truth}/{i}",
            "task": "pair",
            "label": label,
            "word": word,
            "candidate": other,
            "truth": truth,
            "audio": f"audio/c{i}.wav",
            "other_audio": f"audio/c{j}.wav",
        }
        for i, j, label, word, other, truth in (
            (0, 2, "Sine wave", "sine wave", "sine wave", "yes"),
            (1, 0, "Siren", "siren", "sine wave", "no"),
        )
    ]
    shard.write_text(shard.read_text() + "".join(json.dumps(p) + "\n" for p in pairs))
    train.cli(["validate", "--config", str(config)])
    predictions = run_dir(tmp_path) / "predictions"
    metrics = json.loads((predictions / "epoch=00.metrics.json").read_text())
    stable = (
        json.dumps({k: v for k, v in metrics.items() if k not in UNSTABLE + ADDED}, indent=2, sort_keys=True) + "\n"
    )
    rows = (predictions / "epoch=00.jsonl").read_bytes()
    assert metrics["prediction_rows"] == rows.count(b"\n") == (GOLDEN / "epoch=00.jsonl").read_bytes().count(b"\n")
    if os.environ.get("INTERLEAVE_WRITE_GOLDEN"):  # only to regenerate them, with the code that defines them
        GOLDEN.mkdir(parents=True, exist_ok=True)
        (GOLDEN / "epoch=00.jsonl").write_bytes(rows)
        (GOLDEN / "metrics.json").write_text(stable)
    assert_golden_rows(rows, (GOLDEN / "epoch=00.jsonl").read_bytes())
    assert stable == (GOLDEN / "metrics.json").read_text()


def assert_golden_rows(rows: bytes, golden: bytes) -> None:
    """The predictions file is the golden one byte for byte; on a CPU whose float32 kernels round
    otherwise than the one that wrote it (seen: another AMD EPYC, `p_yes` differing by 6e-8), every
    row is still the same text field for field and only `p_yes` may differ, by float32 rounding."""
    if rows == golden:
        return
    ours, theirs = rows.decode().splitlines(), golden.decode().splitlines()
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs):
        mine, reference = json.loads(mine), json.loads(reference)
        assert {k: v for k, v in mine.items() if k != "p_yes"} == {k: v for k, v in reference.items() if k != "p_yes"}
        assert mine.keys() == reference.keys()
        if "p_yes" in reference:
            assert mine["p_yes"] == pytest.approx(reference["p_yes"], abs=1e-6)


@pytest.mark.slow
def test_a_released_qwen2_audio_is_evaluated_with_probes_and_ddp_gives_the_metrics_of_one(tmp_path, small_dataset):
    """model.pretrained (issue 36): SHARD, identity, the text control and the silence and swap probes
    run on a released Qwen2-Audio folder, in its chat layout; 2 DDP ranks give one rank's metrics and answers."""
    from tests.helpers import save_tiny_qwen2_audio

    folder = save_tiny_qwen2_audio(tmp_path / "qwen2-audio")
    kwargs = {"pretrained": str(folder), "llm": None, "lora_r": 4, "lora_alpha": 8, "val_max_new_tokens": 4}
    results = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        out.mkdir()
        config = shard_config(out, small_dataset, kwargs, {"probes": ["silence", "swap"]})
        run_on_devices("validate", config, devices, tmp_path, "--data.max_length=1024")
        predictions = run_dir(out) / "predictions"
        rows = [json.loads(line) for line in (predictions / "epoch=00.jsonl").read_text().splitlines()]
        assert {r["condition"] for r in rows} == {"interleaved", "noninterleaved", "text", "silence", "swap"}
        metrics = json.loads((predictions / "epoch=00.metrics.json").read_text())
        assert ALL_TAGS | PROBE_TAGS <= set(metrics)
        results[devices] = ({t: metrics[t] for t in ALL_TAGS | PROBE_TAGS}, rows)
    assert results[2] == results[1]
