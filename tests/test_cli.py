"""interleave.cli: the LightningCLI that `python train.py` runs: a run built from a config, its
subcommands, a user-facing error as one line, and `--ckpt_path` checked before Lightning reads it."""

import pytest
import torch
import yaml

from callbacks.reliability import PreemptionCheckpoint, ResumeRandomState, SafeCheckpointIO
from interleave.cli import InterleaveCLI, build_run, cli, main
from interleave.data.module import InterleavedDataModule
from interleave.model.module import AudioLLM
from tests.helpers import write_config


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """LightningCLI also reads sys.argv; give it a clean one so pytest's own flags don't leak in."""
    monkeypatch.setattr("sys.argv", ["train.py"])


@pytest.mark.slow
def test_cli_builds_the_run_a_config_describes(tmp_path, small_dataset, tiny_model_kwargs):
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    run = cli(["--config", str(config), "--model.learning_rate=0.5", "--data.batch_size=1"], run=False)
    assert type(run.model) is AudioLLM and type(run.datamodule) is InterleavedDataModule
    assert run.model.hparams.learning_rate == 0.5 and run.datamodule.hparams.batch_size == 1
    assert run.trainer.max_steps == 4 and run.trainer.global_step == 0  # built, not run
    # every run gets atomic weights-only checkpoints, a checkpoint on SIGTERM and exact resumes
    assert type(run.trainer.strategy.checkpoint_io) is SafeCheckpointIO
    assert sum(isinstance(c, PreemptionCheckpoint) for c in run.trainer.callbacks) == 1
    assert sum(isinstance(c, ResumeRandomState) for c in run.trainer.callbacks) == 1
    assert run.datamodule.spec == run.model.data_spec()  # connected once, by the command line


@pytest.mark.slow
def test_build_run_builds_what_train_py_builds_connected_and_not_run(tmp_path, small_dataset, tiny_model_kwargs):
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    args = ["--config", str(config), "--data.max_length=96", "--model.audio_tokens=8"]
    run, cli_run = build_run(args), cli(args, run=False)
    assert run.datamodule.hparams == cli_run.datamodule.hparams and run.model.hparams == cli_run.model.hparams
    spec = run.datamodule.spec
    assert spec.tokenizer is run.model.tokenizer and spec.audio_tokens == 8
    assert spec.audio_loader == run.model.audio_encoder.load_inputs
    collator = run.datamodule.collator()
    assert (collator.max_length, collator.audio_tokens) == (96, 8)
    assert run.trainer.global_step == 0 and run.datamodule.train_set is None  # nothing set up or run


@pytest.mark.slow
def test_validate_test_and_print_config(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    config = str(write_config(tmp_path, small_dataset, tiny_model_kwargs))
    with pytest.raises(SystemExit) as exit_:
        cli(["fit", "--config", config, "--model.learning_rate=0.5", "--print_config"])
    assert exit_.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["learning_rate"] == 0.5
    run = cli(["validate", "--config", config])
    metrics = run.trainer.callback_metrics
    assert "val/loss" in metrics and "val/label_accuracy" in metrics
    run = cli(["test", "--config", config, "--data.test_file", str(small_dataset / "val.jsonl")])
    assert "test/loss" in run.trainer.callback_metrics


@pytest.mark.slow  # a fit, stopped by the data check
def test_bad_data_stops_with_a_clear_message(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    (small_dataset / "train.jsonl").write_text(
        '{"id": "x", "audio": "audio/c0.wav", "instruction": "[AUDIO][AUDIO]", "output": "y"}\n'
    )
    code = main(["fit", "--config", str(write_config(tmp_path, small_dataset, tiny_model_kwargs))])
    assert code == 2
    err = capsys.readouterr().err
    assert (
        "train.jsonl:1 (id=x)" in err
        and "1 audio clip(s) but its prompt has 2 [AUDIO] placeholder(s)" in err
        and "Traceback" not in err
    )


@pytest.mark.parametrize("command", ["fit", "validate"])
def test_ckpt_path_is_refused_by_name_before_the_run_is_built(
    command, tmp_path, small_dataset, tiny_model_kwargs, capsys, monkeypatch
):
    config = str(write_config(tmp_path, small_dataset, tiny_model_kwargs))
    built = []
    monkeypatch.setattr(InterleaveCLI, "instantiate_classes", lambda self: built.append(self))
    missing = tmp_path / "nope.ckpt"
    assert main([command, "--config", config, f"--ckpt_path={missing}"]) == 2
    assert capsys.readouterr().err == f"error: {missing}: checkpoint not found\n"
    folder = tmp_path / "ckpt"
    folder.mkdir()
    intact, cut = folder / "epoch=0-step=2.ckpt", folder / "last.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(4096)}}, intact)
    cut.write_bytes(intact.read_bytes()[:1000])  # what a kill mid-write leaves
    assert main([command, "--config", config, f"--ckpt_path={cut}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cut}: not a complete checkpoint") and err.count("\n") == 1
    assert err.rstrip().endswith(f"intact ones beside it, newest first: {intact}")
    assert built == []  # refused before the model, the data module and the trainer were built


@pytest.mark.parametrize("command", ["fit", "validate"])
def test_a_config_or_any_text_given_as_ckpt_path_is_one_line_naming_it(
    command, tmp_path, small_dataset, tiny_model_kwargs, capsys, monkeypatch
):
    """Issue 28: `--ckpt_path configs/demo.yaml` is an easy slip; it, a table and a passwd-style file
    are named as text, not a torch traceback (torch's weights-only unpickler raised IndexError)."""
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    monkeypatch.setattr(InterleaveCLI, "instantiate_classes", lambda self: pytest.fail("built the run"))
    table, passwd = tmp_path / "labels.csv", tmp_path / "passwd"
    table.write_text("id,label\n1,Siren\n")
    passwd.write_text("user:x:0:0:user:/home/user:/bin/sh\n")
    for slip in (config, table, passwd, tmp_path):
        assert main([command, "--config", str(config), f"--ckpt_path={slip}"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {slip}: ") and err.count("\n") == 1 and "Traceback" not in err
        assert ("a directory" if slip == tmp_path else "not a checkpoint: text") in err


@pytest.mark.slow
def test_train_py_with_a_config_as_ckpt_path_prints_one_line_and_exits_2(tmp_path, small_dataset, tiny_model_kwargs):
    """The script itself, as a user runs it: `python train.py validate --config C --ckpt_path C`."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    done = subprocess.run(
        [sys.executable, str(root / "train.py"), "validate", "--config", str(config), f"--ckpt_path={config}"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {config}: not a checkpoint: text (a config, a table or the like), not a file written by torch.save "
        "(a .ckpt from training, a .pt/.pth/.bin state dict)"
    )
    assert "Traceback" not in done.stderr


# Issue 34: configs read strictly, bad data.train_files as one line, parse errors naming the
# subcommand's --help, Ctrl-C as one line and exit status 130.

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import lightning as L  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def train_py(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python train.py ARGS` as a user runs it, from the repository."""
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_a_key_given_twice_in_a_config_is_one_line_naming_the_file_line_and_key(
    tmp_path, small_dataset, tiny_model_kwargs, capsys
):
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("model:\n  lora_r: 4\n  lora_alpha: 8\n  lora_r: 8\n")
    assert main(["validate", "--config", str(config), "--config", str(overlay)]) == 2
    assert capsys.readouterr().err == (
        f"error: {overlay}:4:3: model.lora_r is given twice (first at line 2); YAML "
        "would keep only the last one: remove or rename one of them\n"
    )
    text = config.read_text()
    config.write_text(text + "seed_everything: 1\n")  # the first config itself (write_config sets it at the top)
    assert main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {config}:") and "seed_everything is given twice" in err and err.count("\n") == 1


@pytest.mark.slow
def test_train_py_with_a_duplicate_key_or_malformed_yaml_prints_one_line_no_usage(
    tmp_path, small_dataset, tiny_model_kwargs
):
    """Issue 34: a malformed config was reported after 76 lines of usage, without naming the file."""
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  lora_r: 4\n   lora_alpha: 8\n")
    done = train_py("validate", "--config", str(config), "--config", str(bad))
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr == (f"error: {bad}:3:14: not valid YAML: mapping values are not allowed in this context\n")
    assert done.stdout == ""


@pytest.mark.parametrize(
    "value,message",
    [
        ("[{path: TRAIN, weight: -0.5}]", "data.train_files[0].weight: expected a finite number > 0, got -0.5"),
        ("[{path: TRAIN, weight: 0}]", "data.train_files[0].weight: expected a finite number > 0, got 0"),
        ("[{path: TRAIN, weight: .nan}]", "data.train_files[0].weight: expected a finite number > 0, got nan"),
        ("[{path: TRAIN, weight: .inf}]", "data.train_files[0].weight: expected a finite number > 0, got inf"),
        (
            "[{path: TRAIN, weight: 0}, {path: VAL, weight: 0}]",
            "data.train_files[0].weight: expected a finite number > 0, got 0",
        ),
        (
            "[]",
            "data.train_files: an empty list; give at least one {path: FILE, weight: W} (or leave it unset and give "
            "data.train_file)",
        ),
        (
            "[{path: TRAIN, weight: 1}, {path: TRAIN, weight: 1}]",
            "data.train_files[1]: TRAIN is listed again (as data.train_files[0]) under the same name 'train'; to draw from "
            "it as two sources give each entry its own `name:`",
        ),
    ],
    ids=["negative", "zero", "nan", "inf", "all-zero", "empty", "one-file-twice"],
)
def test_each_bad_train_files_value_is_one_error_line_and_exit_2(
    value, message, tmp_path, small_dataset, tiny_model_kwargs, capsys
):
    """Issue 34: each was an 87-line traceback (jsonargparse's ValueError around the project's error)."""
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    train, val = str(small_dataset / "train.jsonl"), str(small_dataset / "val.jsonl")
    mixture = tmp_path / "m.yaml"
    mixture.write_text(
        f"data:\n  train_file: null\n  train_files: {value.replace('TRAIN', train).replace('VAL', val)}\n"
    )
    assert main(["validate", "--config", str(config), "--config", str(mixture)]) == 2
    err = capsys.readouterr().err
    assert error_lines(err) == [f"error: {message.replace('TRAIN', train)}"] and "Traceback" not in err


@pytest.mark.slow
def test_train_py_with_the_issues_bad_train_files_prints_one_line_and_exits_2(tmp_path):
    """The issue's repro as written: `python train.py validate --config configs/demo.yaml --config m.yaml`."""
    mixture = tmp_path / "m.yaml"
    mixture.write_text(
        "data:\n  init_args:\n    train_file: null\n    train_files:\n"
        "      - {path: data/demo/train.jsonl, weight: -0.5}\n"
    )
    done = train_py("validate", "--config", "configs/demo.yaml", "--config", str(mixture))
    assert done.returncode == 2, done.stderr[-3000:]
    assert error_lines(done.stderr) == ["error: data.train_files[0].weight: expected a finite number > 0, got -0.5"]
    assert done.stderr.rstrip("\n").splitlines()[-1].startswith("error:") and "Traceback" not in done.stderr


def test_a_parse_error_is_one_line_naming_the_subcommands_help(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    config = str(write_config(tmp_path, small_dataset, tiny_model_kwargs))
    with pytest.raises(SystemExit) as exit_:
        main(["validate", "--config", config, "--bogus"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "error: unrecognized arguments: --bogus (`python train.py validate --help` lists the options)\n"
    )
    with pytest.raises(SystemExit):
        main(["fit", "--config", config, "--model.lora_r=abc"])
    assert capsys.readouterr().err == (
        "error: model.lora_r: expected int, got 'abc' (`python train.py fit --help` lists the options)\n"
    )


@pytest.mark.parametrize(
    "flag, line",
    [
        (
            "--data.batch_size=x",
            "data.init_args.batch_size (interleave.data.InterleavedDataModule): expected int, got 'x'",
        ),
        ("--trainer.max_epochs=z", "trainer.max_epochs: expected int or null, got 'z'"),
        (
            "--trainer.callbacks.init_args.max_queries_per_task=2.5",
            "trainer.callbacks.init_args.max_queries_per_task (callbacks.ShardEvaluation): expected int or null, got '2.5'",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_named_with_what_was_expected(flag, line, capsys):
    """jsonargparse explains a bad value through every Union it tried (a few hundred characters for a
    callback's argument); the line names the flag, its class, the types it takes and the value."""
    with pytest.raises(SystemExit) as exit_:
        main(["validate", "--config", str(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"), flag])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f"error: {line} (`python train.py validate --help` lists the options)\n"


class InterruptAt(L.Callback):
    """Ctrl-C at a training step, as Lightning sees a SIGINT there (a KeyboardInterrupt in its loop)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


@pytest.mark.slow  # a fit, interrupted
def test_ctrl_c_in_fit_is_one_line_naming_the_kept_checkpoint_and_exit_130(
    tmp_path, small_dataset, tiny_model_kwargs, capsys
):
    """Lightning catches the interrupt, tears the run down and calls exit(1), saving nothing; main
    says instead where the run stopped and which checkpoint it saved before (every 2 steps here,
    an epoch of 2 steps)."""
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs, max_steps=8)
    handler = signal.getsignal(signal.SIGINT)
    for step, epoch, kept in ((3, 1, "the newest checkpoint is kept"), (1, 0, "no checkpoint had been saved yet")):
        interrupt = tmp_path / f"interrupt{step}.yaml"
        interrupt.write_text(
            yaml.safe_dump(
                {
                    "trainer": {
                        "callbacks": [
                            *yaml.safe_load(config.read_text())["trainer"]["callbacks"],
                            {"class_path": "tests.test_cli.InterruptAt", "init_args": {"step": step}},
                        ]
                    }
                }
            )
        )
        for old in (tmp_path / "ckpt").glob("*.ckpt"):
            old.unlink()
        assert main(["fit", "--config", str(config), "--config", str(interrupt)]) == 130
        err = capsys.readouterr().err
        assert signal.getsignal(signal.SIGINT) == handler  # Lightning's SIG_IGN undone
        (line,) = [line for line in err.splitlines() if line.strip()]  # Lightning's own line dropped
        assert line.startswith(f"interrupted: python train.py fit; stopped at epoch {epoch}, step {step}; {kept}")
        if step == 3:
            saved = tmp_path / "ckpt" / "last.ckpt"
            assert line.endswith(f": {saved} (resume with --ckpt_path={saved})")
            assert torch.load(saved, weights_only=True)["global_step"] == 2  # intact
