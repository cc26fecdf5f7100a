"""interleave.tools.frontier on a tiny run: the ends give the start model's and the checkpoint's very
answers, the outputs are written, a second invocation evaluates nothing, bad checkpoints and α's are
refused with one line and exit status 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from callbacks.shard_eval import ShardEvaluation, eval_inputs
from interleave.cli import build_run
from interleave.errors import InterleaveError
from interleave.eval import evaluate as shard_evaluate
from interleave.eval.evaluate import Point
from interleave.tools.frontier.cli import alpha_folder, default_out, main, parse_alphas
from interleave.tools.saved_answers import answer_rows
from tests.helpers import BENCH_PROMPTS, shard_config, sigint_as_in_a_terminal, write_bench

REPO = Path(__file__).resolve().parents[3]
SAMPLING = {"max_new_tokens": 3, "temperature": 1.0}  # a random model at T=1: the weights show in the answers


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["interleave"])


@pytest.fixture()
def config(tmp_path, small_dataset, tiny_model_kwargs) -> Path:
    return shard_config(tmp_path, small_dataset, tiny_model_kwargs, {"sampling": SAMPLING})


def trained(model, seed: int) -> dict[str, torch.Tensor]:
    """A trained-looking state of `model`: every trainable weight random, LoRA's B nonzero."""
    generator = torch.Generator().manual_seed(seed)
    return {k: 0.3 * torch.randn(v.shape, generator=generator) for k, v in model.trainable_parameters().items()}


def save_checkpoint(state, model, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "hyper_parameters": dict(model.hparams), "global_step": 4}, path)
    return path


def plain_answers(config: Path, state=None) -> dict[str, list[list[str]]]:
    """The run's own evaluation (epoch 0's seeds) of the config's model, or of it with `state` loaded."""
    run = build_run(["--config", str(config)])
    if state is not None:
        run.model.load_state_dict(state, strict=False)
    evaluation = next(c for c in run.trainer.callbacks if isinstance(c, ShardEvaluation))
    evaluation.setup(run.trainer, run.model, "validate")
    with torch.no_grad():
        evaluated = shard_evaluate.evaluate(
            run.model.eval(), evaluation.queries, evaluation.settings, eval_inputs(run.datamodule), {}, Point(epoch=0)
        )
    found: dict[str, list[list[str]]] = {}
    for row in evaluated.rows:
        found.setdefault(row.condition, []).append(row.answers)
    return found


def saved_answers(out: Path, alpha: float) -> dict[str, list[list[str]]]:
    rows = answer_rows(alpha_folder(out, alpha) / "predictions" / "epoch=00.jsonl")
    return {condition: [r.answers for r in found] for condition, found in rows.items()}


@pytest.mark.slow  # a frontier of three alphas evaluated, then again
def test_the_ends_are_the_start_and_the_checkpoint_and_a_second_run_evaluates_nothing(
    config, tmp_path, monkeypatch, capsys
):
    model = build_run(["--config", str(config)]).model
    end = trained(model, 1)
    ckpt = save_checkpoint(end, model, tmp_path / "runs" / "t" / "version_0" / "checkpoints" / "end.ckpt")
    assert main(["--config", str(config), "--ckpt", str(ckpt), "--alphas", "1,0.5,1.5", "--bootstrap", "50"]) == 0
    err = capsys.readouterr().err
    assert "warning: alpha 1.5 outside [0, 1]" in err and "frontier alpha=0.5: " in err
    out = tmp_path / "runs" / "t" / "version_0" / "frontier" / "end"
    assert default_out(ckpt) == out
    assert all((out / name).is_file() for name in ("frontier.md", "frontier.csv", "frontier.png"))

    start_answers, end_answers = plain_answers(config), plain_answers(config, end)
    assert set(start_answers) == {"interleaved", "noninterleaved", "text"}
    assert saved_answers(out, 0.0) == start_answers  # alpha = 0: the model the config builds, answer for answer
    assert saved_answers(out, 1.0) == end_answers  # alpha = 1: the checkpoint's
    assert start_answers != end_answers  # (so the two comparisons can fail)
    assert saved_answers(out, 0.5) not in (start_answers, end_answers)

    table = list(csv.DictReader((out / "frontier.csv").open()))
    assert {float(r["alpha"]) for r in table} == {0.0, 0.5, 1.0, 1.5}
    at_start = [r for r in table if float(r["alpha"]) == 0.0]
    assert all(float(r["change"]) == 0.0 for r in at_start)
    assert all(float(r["ratio"]) == 1.0 for r in at_start if r["ratio"])
    metrics = json.loads((alpha_folder(out, 1.0) / "predictions" / "epoch=00.metrics.json").read_text())
    identity = next(
        r for r in table if float(r["alpha"]) == 1.0 and r["task"] == "identity" and r["condition"] == "interleaved"
    )
    assert float(identity["value"]) == pytest.approx(metrics["val/identity/accuracy"])
    assert metrics["alpha"] == 1.0 and metrics["checkpoint"] == str(ckpt)
    markdown = (out / "frontier.md").read_text()
    assert "1.5 (extrapolated)" in markdown and "| α | identity accuracy | retention |" in markdown

    # Resumable: nothing is evaluated again; a new alpha is the only one asked; another checkpoint, all of them
    calls = []
    real = shard_evaluate.evaluate
    monkeypatch.setattr(shard_evaluate, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    saved = {a: (alpha_folder(out, a) / "predictions" / "epoch=00.jsonl").stat().st_mtime_ns for a in (0.0, 0.5, 1.0)}
    assert main(["--config", str(config), "--ckpt", str(ckpt), "--alphas", "0,0.5,1,1.5", "--bootstrap", "0"]) == 0
    assert calls == [] and "every alpha already evaluated" in capsys.readouterr().out
    assert saved == {a: (alpha_folder(out, a) / "predictions" / "epoch=00.jsonl").stat().st_mtime_ns for a in saved}
    assert main(["--config", str(config), "--ckpt", str(ckpt), "--alphas", "0.25,1", "--bootstrap", "0"]) == 0
    assert len(calls) == 1 and (alpha_folder(out, 0.25) / "predictions" / "epoch=00.jsonl").is_file()
    other = save_checkpoint(trained(model, 2), model, tmp_path / "other.ckpt")
    assert (
        main(["--config", str(config), "--ckpt", str(other), "--out", str(out), "--alphas", "0", "--bootstrap", "0"])
        == 0
    )
    assert len(calls) == 2  # evaluated again: the saved answers were another checkpoint's


@pytest.mark.slow  # a frontier evaluated at two alphas
def test_a_start_checkpoint_is_alpha_zero(config, tmp_path):
    model = build_run(["--config", str(config)]).model
    start, end = trained(model, 3), trained(model, 4)
    first = save_checkpoint(start, model, tmp_path / "start.ckpt")
    last = save_checkpoint(end, model, tmp_path / "end.ckpt")
    out = tmp_path / "frontier"
    assert (
        main(
            [
                "--config",
                str(config),
                "--ckpt",
                str(last),
                "--start",
                str(first),
                "--alphas",
                "0",
                "--out",
                str(out),
                "--bootstrap",
                "0",
            ]
        )
        == 0
    )
    assert saved_answers(out, 0.0) == plain_answers(config, start)


@pytest.mark.slow  # a frontier evaluated, then again
def test_each_alpha_counts_its_rows_and_a_cut_alpha_is_asked_again(config, tmp_path, monkeypatch, capsys):
    """Issue 34: an α's metrics file states how many rows its answers hold; answers cut at a line
    boundary (an interrupted copy) are not taken as finished: that α is asked again."""
    model = build_run(["--config", str(config)]).model
    ckpt = save_checkpoint(trained(model, 5), model, tmp_path / "end.ckpt")
    out = tmp_path / "frontier"
    args = ["--config", str(config), "--ckpt", str(ckpt), "--alphas", "0", "--out", str(out), "--bootstrap", "0"]
    assert main(args) == 0
    answers = alpha_folder(out, 0.0) / "predictions" / "epoch=00.jsonl"
    whole = answers.read_text()
    metrics = json.loads(answers.with_name("epoch=00.metrics.json").read_text())
    assert metrics["prediction_rows"] == len(whole.splitlines()) > 20
    answers.write_text("".join(whole.splitlines(keepends=True)[:20]))
    capsys.readouterr()
    calls = []
    real = shard_evaluate.evaluate
    monkeypatch.setattr(shard_evaluate, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main(args) == 0
    assert len(calls) == 1 and answers.read_text() == whole
    assert (
        f"[interleave] frontier: {answers}: holds 20 answer rows, but its metrics file (epoch=00.metrics.json) says "
        f"the evaluation wrote {metrics['prediction_rows']}"
    ) in capsys.readouterr().err


@pytest.mark.slow  # a frontier evaluated at two alphas, then again
def test_the_configs_benchmarks_are_asked_at_every_alpha_beside_the_shard(tmp_path, small_dataset, tiny_model_kwargs):
    bench = {"name": "mini", "file": str(write_bench(small_dataset)), "prompts": BENCH_PROMPTS}
    bench |= {"scorings": ["ranked", "generated"], "controls": ["no_clip"]}
    config = shard_config(tmp_path, small_dataset, tiny_model_kwargs, {"sampling": SAMPLING, "benchmarks": [bench]})
    model = build_run(["--config", str(config)]).model
    ckpt = save_checkpoint(trained(model, 1), model, tmp_path / "end.ckpt")
    out = tmp_path / "frontier"
    args = ["--config", str(config), "--ckpt", str(ckpt), "--alphas", "0,1", "--out", str(out), "--bootstrap", "50"]
    assert main(args) == 0
    metrics = json.loads((alpha_folder(out, 1.0) / "predictions" / "epoch=00.metrics.json").read_text())
    assert metrics["benchmarks"]["mini"]["asked"] == 5 and metrics["bench_rows"] == 5 * 2 * 2
    assert len((alpha_folder(out, 1.0) / "predictions" / "epoch=00.bench.jsonl").read_text().splitlines()) == 20
    table = [r for r in csv.DictReader((out / "frontier.csv").open()) if r["task"].startswith("bench/")]
    assert {(r["alpha"], r["task"], r["condition"]) for r in table} == {
        (a, f"bench/mini/{s}", c) for a in ("0.0", "1.0") for s in ("ranked", "generated") for c in ("clip", "no_clip")
    }
    at_end = {(r["task"], r["condition"]): r for r in table if r["alpha"] == "1.0"}
    assert float(at_end[("bench/mini/ranked", "clip")]["value"]) == pytest.approx(
        metrics["val/bench/mini/ranked/accuracy"]
    )
    assert float(at_end[("bench/mini/generated", "no_clip")]["value"]) == pytest.approx(
        metrics["val/bench/mini/no_clip/generated/accuracy"]
    )
    assert all(float(r["change"]) == 0.0 for r in table if r["alpha"] == "0.0")
    markdown = (out / "frontier.md").read_text()
    assert "### mini, ranked" in markdown and "### mini, generated" in markdown
    # the same command again: every alpha is finished, benchmarks included
    assert main(args) == 0


def test_bad_checkpoints_are_refused_with_one_line_and_status_2(config, tmp_path, tiny_model_kwargs, capsys):
    from interleave.model.module import AudioLLM

    for ckpt, said in ((config, "not a checkpoint: text"), (tmp_path / "missing.ckpt", "checkpoint not found")):
        assert main(["--config", str(config), "--ckpt", str(ckpt)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {ckpt}: ") and said in err and len(err.strip().splitlines()) == 1
    other = AudioLLM(**{**tiny_model_kwargs, "lora_r": 2})
    wrong = save_checkpoint(trained(other, 1), other, tmp_path / "wrong.ckpt")
    assert main(["--config", str(config), "--ckpt", str(tmp_path / "wrong.ckpt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {wrong} does not fit the config's model") and len(err.strip().splitlines()) == 1


def test_a_config_without_shard_evaluation_is_refused(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    from tests.helpers import write_config

    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    model = build_run(["--config", str(config)]).model
    ckpt = save_checkpoint(trained(model, 1), model, tmp_path / "end.ckpt")
    assert main(["--config", str(config), "--ckpt", str(ckpt)]) == 2
    assert "the config asks no ShardEvaluation" in capsys.readouterr().err


def test_a_config_asking_benchmarks_only_is_refused(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    import yaml

    from tests.helpers import write_bench, write_config

    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    data = yaml.safe_load(config.read_text())
    entry = {"benchmarks": [{"name": "b", "file": str(write_bench(small_dataset))}]}
    data["trainer"]["callbacks"].append({"class_path": "callbacks.ShardEvaluation", "init_args": entry})
    config.write_text(yaml.safe_dump(data))
    model = build_run(["--config", str(config)]).model
    ckpt = save_checkpoint(trained(model, 1), model, tmp_path / "end.ckpt")
    assert main(["--config", str(config), "--ckpt", str(ckpt)]) == 2
    assert "asks benchmarks only (no shard_file)" in capsys.readouterr().err


def test_alphas_are_numbers_each_once_sorted_with_zero():
    assert parse_alphas("1, 0.5") == [0.0, 0.5, 1.0]
    assert parse_alphas("-0,0.25") == [0.0, 0.25]
    assert parse_alphas("-0.5,1.5") == [-0.5, 0.0, 1.5]  # extrapolation is allowed (the command warns)
    for text, said in (
        ("0.5,half", "'half' is not a number"),
        ("0,nan", "'nan' is not a finite number"),
        ("0.5,1,0.5", "0.5 given more than once"),
        ("", "'' is not a number"),
    ):
        with pytest.raises(InterleaveError, match=said):
            parse_alphas(text)


def test_bad_alphas_exit_2_before_anything_is_built(capsys):
    assert main(["--config", "nowhere.yaml", "--ckpt", "nowhere.ckpt", "--alphas", "0,x"]) == 2
    assert capsys.readouterr().err == "error: --alphas: 'x' is not a number (give e.g. 0,0.25,0.5,0.75,1)\n"


@pytest.mark.slow
def test_python_m_runs_the_command():
    done = subprocess.run(
        [sys.executable, "-m", "interleave.tools.frontier", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "usage: interleave frontier" in done.stdout, done.stderr[-1000:]


@pytest.mark.slow
def test_ctrl_c_is_one_line_and_keeps_the_finished_alphas(config, tmp_path, monkeypatch, capsys):
    """Issue 34: SIGINT printed a traceback. Interrupted after its first α, the frontier exits 130
    with one line naming the α's kept and their folder; their answers are whole, and the same
    command then asks only the others."""
    import os
    import signal
    import time

    model = build_run(["--config", str(config)]).model
    ckpt = save_checkpoint(trained(model, 1), model, tmp_path / "end.ckpt")
    out = tmp_path / "frontier"
    alphas = ",".join(f"{i / 100:g}" for i in range(101))  # a hundred and one α's: far past the interrupt
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "interleave.tools",
            "frontier",
            "--config",
            str(config),
            "--ckpt",
            str(ckpt),
            "--out",
            str(out),
            "--alphas",
            alphas,
            "--bootstrap",
            "0",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_in_a_terminal,  # the Ctrl-C tested reaches it however the suite was started
    )
    first = alpha_folder(out, 0.0) / "predictions" / "epoch=00.metrics.json"
    deadline = time.monotonic() + 240
    while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "the frontier ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)  # a loaded machine (CI) can be slow to stop
    assert proc.returncode == 130, err[-3000:]
    kept = sorted(
        float(p.name.removeprefix("alpha="))
        for p in out.glob("alpha=*")
        if (p / "predictions" / "epoch=00.metrics.json").is_file()
    )
    assert kept and kept == [i / 100 for i in range(len(kept))] and len(kept) < 101
    lines = [line for line in err.splitlines() if line.startswith(("interrupted:", "error:"))]
    assert lines == [
        f"interrupted: interleave frontier; the answers of alpha {', '.join(f'{a:g}' for a in kept)} "
        f"are kept in {out}/alpha=A/ (the same command asks only the others)"
    ]
    assert err.rstrip("\n").splitlines()[-1] == lines[0] and "Traceback" not in err
    for alpha in kept:  # whole: every condition's answers, read back and checked
        rows = answer_rows(alpha_folder(out, alpha) / "predictions" / "epoch=00.jsonl")
        assert set(rows) == {"interleaved", "noninterleaved", "text"} and all(rows.values())
    assert not (out / "frontier.md").exists()
    monkeypatch.setattr(shard_evaluate, "evaluate", lambda *a, **k: pytest.fail("asked a kept alpha again"))
    assert (
        main(
            [
                "--config",
                str(config),
                "--ckpt",
                str(ckpt),
                "--out",
                str(out),
                "--bootstrap",
                "0",
                "--alphas",
                ",".join(f"{a:g}" for a in kept),
            ]
        )
        == 0
    )
    assert "every alpha already evaluated" in capsys.readouterr().out


@pytest.mark.slow  # a fit, a validate, a frontier of two alphas and a report on a released model
@pytest.mark.parametrize("family", ["qwen2_audio", "audioflamingo3"])
def test_a_released_models_run_goes_fit_validate_frontier_report_through_the_overlay(
    tmp_path, small_dataset, monkeypatch, capsys, family
):
    """Issues 36 and 38: a run's config, then configs/models/qwen2_audio.yaml with --paths.qwen2_audio
    (or audio_flamingo3.yaml with --paths.audio_flamingo3; nothing else names the model), fits with SHARD, identity and the silence and swap probes, validates its
    checkpoint; the frontier's α = 0 answers are the fit's epoch-0 answers; the report reads the run;
    a checkpoint of this folder is refused on another released folder."""
    import yaml

    import train
    from interleave.tools.report.cli import main as report_main
    from tests.helpers import run_dir, save_tiny_audioflamingo3, save_tiny_qwen2_audio

    save, overlay_file, key = {
        "qwen2_audio": (save_tiny_qwen2_audio, "qwen2_audio.yaml", "qwen2_audio"),
        "audioflamingo3": (save_tiny_audioflamingo3, "audio_flamingo3.yaml", "audio_flamingo3"),
    }[family]
    monkeypatch.chdir(tmp_path)
    folder = save(tmp_path / family)
    kwargs = {"lora_r": 4, "lora_alpha": 8, "learning_rate": 1e-2, "warmup_steps": 1, "val_max_new_tokens": 4}
    probes = {"sampling": SAMPLING, "probes": ["silence", "swap"], "text_control": False}
    base = shard_config(tmp_path, small_dataset, kwargs, probes, max_steps=-1, max_epochs=1)
    config = yaml.safe_load(base.read_text())
    config["data"] = {"class_path": "interleave.data.InterleavedDataModule", "init_args": config["data"]}
    base.write_text(yaml.safe_dump(config))
    configs = ["--config", str(base), "--config", str(REPO / "configs" / "models" / overlay_file)]
    overlay = [*configs, f"--paths.{key}={folder}"]

    fitted = train.cli(["fit", *overlay])
    assert fitted.model.released.folder == folder and fitted.datamodule.hparams.max_length == 1024
    last = tmp_path / "ckpt" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["released"]["config_sha256"] and saved["global_step"] == 2
    assert all("lora_" in k or k.startswith("audio_proj.") for k in saved["state_dict"])  # no frozen weight
    run = run_dir(tmp_path)
    fit_rows = answer_rows(run / "predictions" / "epoch=00.jsonl")
    assert set(fit_rows) == {"interleaved", "noninterleaved", "silence", "swap"}
    assert (run / "predictions" / "epoch=01.metrics.json").is_file()

    train.cli(["validate", *overlay, f"--ckpt_path={last}"])
    validated = json.loads(sorted(run_dir_all(tmp_path)[-1].glob("predictions/*.metrics.json"))[-1].read_text())
    probed = {f"val/{p}/{t}/agreement" for p in ("silence", "swap") for t in ("identity", "shard/synonym")}
    assert "val/identity/accuracy" in validated and probed <= set(validated)
    assert validated["ckpt_path"] == str(last)

    out = tmp_path / "frontier"
    assert main([*overlay, "--ckpt", str(last), "--alphas", "0,1", "--bootstrap", "20", "--out", str(out)]) == 0
    assert all((out / name).is_file() for name in ("frontier.md", "frontier.csv", "frontier.png"))
    at_start = answer_rows(alpha_folder(out, 0.0) / "predictions" / "epoch=00.jsonl")
    assert {c: [r.answers for r in rows] for c, rows in at_start.items()} == {
        c: [r.answers for r in rows] for c, rows in fit_rows.items()
    }  # alpha = 0 is the released model the fit started from, answer for answer
    assert set(answer_rows(alpha_folder(out, 1.0) / "predictions" / "epoch=00.jsonl")) == set(fit_rows)

    assert report_main([str(run), "--out", str(tmp_path / "report"), "--bootstrap", "20"]) == 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "silence" in report and "swap" in report

    other = save(tmp_path / "other", seed=1)
    capsys.readouterr()
    assert main([*configs, f"--paths.{key}={other}", "--ckpt", str(last), "--out", str(tmp_path / "x")]) == 2
    assert "was trained on another released model" in capsys.readouterr().err


def run_dir_all(tmp_path: Path) -> list[Path]:
    """The run folders of the test's logger, oldest first."""
    return sorted((tmp_path / "runs" / "t").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
