"""interleave.cli: the LightningCLI that `python train.py` runs: a run built from a config, its
subcommands, a user-facing error as one line, and `--ckpt_path` checked before Lightning reads it."""

import pytest
import torch
import yaml

from callbacks.reliability import PreemptionCheckpoint, ResumeRandomState, SafeCheckpointIO
from interleave.cli import InterleaveCLI, build_run, cli, main
from interleave.data import InterleavedDataModule
from interleave.model import AudioLLM
from tests.conftest import write_config


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    """LightningCLI also reads sys.argv; give it a clean one so pytest's own flags don't leak in."""
    monkeypatch.setattr("sys.argv", ["train.py"])


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


def test_bad_data_stops_with_a_clear_message(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    (small_dataset / "train.jsonl").write_text('{"id": "x", "audio": "audio/c0.wav", "instruction": "[AUDIO][AUDIO]", "output": "y"}\n')
    code = main(["fit", "--config", str(write_config(tmp_path, small_dataset, tiny_model_kwargs))])
    assert code == 2
    err = capsys.readouterr().err
    assert "train.jsonl:1 (id=x)" in err and "1 audio clip(s) but its prompt has 2 [AUDIO] placeholder(s)" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["fit", "validate"])
def test_ckpt_path_is_refused_by_name_before_the_run_is_built(command, tmp_path, small_dataset, tiny_model_kwargs,
                                                              capsys, monkeypatch):
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
def test_a_config_or_any_text_given_as_ckpt_path_is_one_line_naming_it(command, tmp_path, small_dataset,
                                                                        tiny_model_kwargs, capsys, monkeypatch):
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


def test_train_py_with_a_config_as_ckpt_path_prints_one_line_and_exits_2(tmp_path, small_dataset, tiny_model_kwargs):
    """The script itself, as a user runs it: `python train.py validate --config C --ckpt_path C`."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    done = subprocess.run([sys.executable, str(root / "train.py"), "validate", "--config", str(config),
                           f"--ckpt_path={config}"], capture_output=True, text=True, timeout=300, cwd=root,
                          env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: {config}: not a checkpoint: text (a config, a table or the like), not a file written by torch.save "
        "(a .ckpt from training, a .pt/.pth/.bin state dict)")
    assert "Traceback" not in done.stderr
