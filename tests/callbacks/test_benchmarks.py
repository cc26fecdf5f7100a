"""callbacks.benchmarks through train.py: benchmarks beside the SHARD (whose rows stay byte-identical),
a run with benchmarks only, bad items counted and named, the provenance, config errors, and DDP."""

import json
from pathlib import Path

import pytest
import yaml

import train
from callbacks import ShardEvaluation
from callbacks.benchmarks import benchmark_configs, summary
from interleave.errors import InterleaveError
from interleave.tools.report import cli as report
from tests.helpers import BENCH_PROMPTS, run_dir, run_on_devices, shard_config, write_bench


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def entry(folder: Path, **over) -> dict:
    return {
        "name": "mini",
        "file": str(write_bench(folder)),
        "scorings": ["ranked", "generated"],
        "controls": ["no_clip", "silence"],
        "prompts": BENCH_PROMPTS,
        **over,
    }


def bench_only(config: Path) -> None:
    """The config's callback without its SHARD file."""
    data = yaml.safe_load(config.read_text())
    callback = data["trainer"]["callbacks"][-1]["init_args"]
    del callback["shard_file"]
    config.write_text(yaml.safe_dump(data))


@pytest.mark.slow
def test_benchmarks_beside_the_shard_leave_its_rows_byte_identical(tmp_path, small_dataset, tiny_model_kwargs):
    runs = {}
    for name, extra in (("plain", {}), ("bench", {"benchmarks": [entry(small_dataset)]})):
        out = tmp_path / name
        out.mkdir()
        train.cli(["validate", "--config", str(shard_config(out, small_dataset, tiny_model_kwargs, extra))])
        runs[name] = run_dir(out) / "predictions"
    plain, bench = runs["plain"], runs["bench"]
    assert (bench / "epoch=00.jsonl").read_bytes() == (plain / "epoch=00.jsonl").read_bytes()
    before = json.loads((plain / "epoch=00.metrics.json").read_text())
    after = json.loads((bench / "epoch=00.metrics.json").read_text())
    assert {k: v for k, v in after.items() if not k.startswith("val/bench/")} == {
        **{k: v for k, v in before.items() if k not in ("config_hash",)},
        "config_hash": after["config_hash"],
        "benchmarks": after["benchmarks"],
        "bench_rows": after["bench_rows"],
    }
    assert not (plain / "epoch=00.bench.jsonl").exists()
    rows = [json.loads(line) for line in (bench / "epoch=00.bench.jsonl").read_text().splitlines()]
    assert after["bench_rows"] == len(rows) == 5 * 3 * 2  # items x (clip, no_clip, silence) x scorings
    for tag in (
        "ranked/accuracy",
        "generated/accuracy",
        "generated/no_choice",
        "no_clip/ranked/accuracy",
        "no_clip/ranked/agreement",
        "silence/generated/agreement",
        "ranked/category/sound_event/accuracy",
    ):
        assert 0.0 <= after[f"val/bench/mini/{tag}"] <= 1.0, tag
    assert report.main([str(run_dir(tmp_path / "bench")), "--out", str(tmp_path / "rep"), "--bootstrap", "50"]) == 0
    table = (tmp_path / "rep" / "report.md").read_text()
    assert "Multiple-choice benchmarks" in table and "| mini | ranked | no_clip | 5 |" in table
    header = after["benchmarks"]["mini"]
    assert header["sha256"] == __import__("hashlib").sha256(Path(header["file"]).read_bytes()).hexdigest()
    assert header["subset"] is None and header["items"] == 5 and header["bad_items"] == 0 and header["asked"] == 5


@pytest.mark.slow
def test_a_run_may_ask_benchmarks_alone_and_bad_items_are_counted(
    tmp_path, small_dataset, tiny_model_kwargs, capsys, monkeypatch
):
    said = []
    monkeypatch.setattr("callbacks.benchmarks.rank_zero_info", said.append)
    bad = write_bench(small_dataset, bad=True)
    config = shard_config(
        tmp_path,
        small_dataset,
        tiny_model_kwargs,
        {"benchmarks": [entry(small_dataset, file=str(bad), subset=3, scorings=["ranked"])]},
    )
    bench_only(config)
    train.cli(["validate", "--config", str(config)])
    predictions = run_dir(tmp_path) / "predictions"
    metrics = json.loads((predictions / "epoch=00.metrics.json").read_text())
    assert metrics["prediction_rows"] == 0 and "shard_hash" not in metrics
    assert not any(k.startswith("val/shard") for k in metrics)
    header = metrics["benchmarks"]["mini"]
    assert header["bad_items"] == 2 and header["items"] == 3 and "3 items, seed 0" in header["subset"]
    out = capsys.readouterr()
    text = out.out + out.err + "\n".join(said)
    assert "2 bad item(s) not evaluated" in text and "item 5 (choices): 1 choice(s)" in text
    assert "item 6 (id): id 'b1' is already item 1's" in text
    assert "[interleave] benchmarks epoch 0: bench/mini/ranked/accuracy=" in text
    assert report.main([str(run_dir(tmp_path)), "--out", str(tmp_path / "rep"), "--bootstrap", "0"]) == 0
    assert "| mini | ranked | clip | 3 |" in (tmp_path / "rep" / "report.md").read_text()


def test_items_a_run_cannot_ask_are_stated(small_dataset, tiny_model_kwargs, monkeypatch):
    import torch

    from callbacks.benchmarks import Benchmarks
    from interleave.data.collate import Collator
    from interleave.eval.benchmarks.evaluate import RunSettings
    from interleave.eval.evaluate import EvalInputs, Point
    from interleave.model.module import AudioLLM

    said = []
    monkeypatch.setattr("callbacks.benchmarks.rank_zero_info", said.append)
    items = json.loads(write_bench(small_dataset).read_text())
    items.append({**items[0], "id": "two", "audio_id": ["audio/c0.wav", "audio/c1.wav"]})
    path = small_dataset / "two.json"
    path.write_text(json.dumps(items))
    suite = Benchmarks([{"name": "m", "file": str(path), "prompts": BENCH_PROMPTS}])
    suite.load(10.0)
    torch.manual_seed(0)
    model = AudioLLM(**tiny_model_kwargs).eval()
    inputs = EvalInputs(Collator(model.tokenizer, padding_side="left", with_answer=False))
    suite.ask(model, RunSettings(repeats=1, batch_size=4), inputs, {}, Point())
    assert (
        said[-1]
        == "[interleave] benchmark m: 5 item(s) asked; not asked: 1 with more clips than the layout's prompt asks"
    )
    assert suite.header()["benchmarks"]["m"]["skipped"] == 1


def test_config_errors_are_one_line():
    with pytest.raises(InterleaveError, match="give a shard_file, benchmarks, retention, or some of them"):
        ShardEvaluation()
    with pytest.raises(InterleaveError, match=r"benchmarks\[0\]: unknown key\(s\) \['audio_dir'\]"):
        ShardEvaluation(benchmarks=[{"name": "a", "file": "x.json", "audio_dir": "y"}])
    with pytest.raises(InterleaveError, match=r"missing \['file'\]"):
        benchmark_configs([{"name": "a"}])
    with pytest.raises(InterleaveError, match="two entries with one name"):
        benchmark_configs([{"name": "a", "file": "x"}, {"name": "a", "file": "y"}])


def test_the_summary_names_the_headline_figures():
    metrics = {
        "val/bench/m/ranked/accuracy": 0.5,
        "val/bench/m/no_clip/ranked/accuracy": 0.25,
        "val/bench/m/ranked/category/x/accuracy": 1.0,
        "val/shard/synonym/f1": 0.1,
    }
    assert summary(metrics) == "bench/m/ranked/accuracy=0.500, bench/m/no_clip/ranked/accuracy=0.250"


@pytest.mark.slow
def test_ddp_two_ranks_give_the_figures_of_one(tmp_path, small_dataset, tiny_model_kwargs):
    results = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        out.mkdir()
        config = shard_config(out, small_dataset, tiny_model_kwargs, {"benchmarks": [entry(small_dataset)]})
        bench_only(config)
        run_on_devices("validate", config, devices, tmp_path)
        predictions = run_dir(out) / "predictions"
        metrics = json.loads((predictions / "epoch=00.metrics.json").read_text())
        results[devices] = (
            {k: v for k, v in metrics.items() if k.startswith("val/bench/")},
            (predictions / "epoch=00.bench.jsonl").read_text(),
        )
    assert results[1][0] and results[2][0] == results[1][0]
    assert results[2][1] == results[1][1]  # the very same rows


@pytest.mark.slow
def test_ddp_two_ranks_ask_the_whole_file_at_the_end_of_a_fit_as_one(tmp_path, small_dataset, tiny_model_kwargs):
    """No training step (so both fits end with the same weights): the whole files asked by two ranks
    are those of one process."""
    results = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        out.mkdir()
        bench = entry(small_dataset, subset=2, whole_at_end=True)
        config = shard_config(out, small_dataset, tiny_model_kwargs, {"benchmarks": [bench], "before_training": False})
        bench_only(config)
        run_on_devices("fit", config, devices, tmp_path, "--trainer.limit_train_batches=0", "--trainer.max_epochs=1")
        predictions = run_dir(out) / "predictions"
        whole = json.loads((predictions / "whole.metrics.json").read_text())
        results[devices] = (
            {k: v for k, v in whole.items() if k.startswith("val/bench/")},
            (predictions / "whole.bench.jsonl").read_text(),
        )
    assert results[1][0] and results[2][0] == results[1][0]
    assert results[2][1] == results[1][1]


@pytest.mark.slow
def test_the_whole_file_at_the_end_of_a_fit_has_its_own_tags_and_files_and_a_resume_does_not_repeat_it(
    tmp_path, small_dataset, tiny_model_kwargs, capsys, monkeypatch
):
    said = []
    monkeypatch.setattr("callbacks.benchmarks.rank_zero_info", said.append)
    callback = {
        "benchmarks": [entry(small_dataset, subset=2, scorings=["ranked"], whole_at_end=True)],
        "before_training": False,
    }
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs, callback, max_steps=-1, max_epochs=1)
    bench_only(config)
    train.cli(["fit", "--config", str(config)])
    predictions = run_dir(tmp_path) / "predictions"
    whole = json.loads((predictions / "whole.metrics.json").read_text())
    header = whole["benchmarks"]["mini"]
    assert header["items"] == header["asked"] == 5 and header["subset"] is None
    tags = {t for t in whole if t.startswith("val/bench/")}
    assert {"val/bench/mini/whole/ranked/accuracy", "val/bench/mini/whole/no_clip/ranked/accuracy"} <= tags
    assert all(t.startswith("val/bench/mini/whole/") for t in tags)
    rows = [json.loads(line) for line in (predictions / "whole.bench.jsonl").read_text().splitlines()]
    assert len(rows) == whole["bench_rows"] == 5 * 3  # every item x (clip, no_clip, silence), ranked
    # the per-epoch point asks its fixed subset, under its own tags
    (point,) = [json.loads(p.read_text()) for p in predictions.glob("epoch=*.metrics.json")]
    assert point["benchmarks"]["mini"]["items"] == 2 and not [t for t in point if "/whole/" in t]
    out = capsys.readouterr().out
    assert "[interleave] benchmarks, whole files at the end of the fit: bench/mini/whole/ranked/accuracy=" in out
    record = json.loads((tmp_path / "ckpt" / "last.whole.json").read_text())
    assert record["global_step"] == whole["global_step"] and record["file"] == str(predictions / "whole.metrics.json")

    # resumed from the checkpoint the fit ended with (a new version folder): the whole files are not asked again
    train.cli(["fit", "--config", str(config), f"--ckpt_path={tmp_path / 'ckpt' / 'last.ckpt'}"])
    assert "whole files at the end of the fit" not in capsys.readouterr().out
    assert said[-1] == (
        f"[interleave] benchmarks, whole files: already asked at step {whole['global_step']} "
        f"({tmp_path / 'ckpt' / 'last.whole.json'})"
    )
    assert not list((tmp_path / "runs" / "t").glob("version_1/predictions/whole.*"))


def test_whole_at_end_must_be_a_boolean():
    with pytest.raises(InterleaveError, match="whole_at_end must be true or false"):
        benchmark_configs([{"name": "m", "file": "f", "whole_at_end": "yes"}])


@pytest.mark.slow  # train.py's CLI
def test_a_benchmark_appended_as_a_second_callback_stops_the_run_with_one_line(
    tmp_path, small_dataset, tiny_model_kwargs, capsys
):
    from interleave.cli import main

    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs)
    added = (
        "--trainer.callbacks+={class_path: callbacks.ShardEvaluation, init_args: {benchmarks: [{name: m, file: x}]}}"
    )
    assert main(["validate", "--config", str(config), added]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: trainer.callbacks: two callbacks.ShardEvaluation in one run would write one point's files twice; "
        "give one (its benchmarks: --trainer.callbacks.init_args.benchmarks=[...] sets the last callback's, "
        "docs/benchmarks.md)"
    ]
