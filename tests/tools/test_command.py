"""interleave.tools.command: the `interleave` dispatcher lists every tool and hands its arguments on."""

import pytest

from interleave.tools.command import COMMANDS, main


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["interleave"])


def test_help_lists_every_command_and_where_training_is(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (_, about) in COMMANDS.items():
        assert f"  {name} " in out and about in out, name
    assert "python train.py fit|validate|test|predict --config CONFIG" in out


def test_no_command_prints_the_usage_on_stderr_and_exits_2(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("usage: interleave COMMAND")


def test_an_unknown_command_exits_2_naming_it(capsys):
    assert main(["frobnicate", "--help"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: unknown command 'frobnicate'") and "commands:" in captured.err
    assert captured.out == ""


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_reaches_its_tool(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert f"usage: interleave {name}" in capsys.readouterr().out


def test_cache_reaches_the_run_configs_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["cache", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out and "--data" in out and "--trainer" in out


@pytest.mark.slow
def test_running_the_module_runs_the_command():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-m", "interleave.tools.command", "--help"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "usage: interleave COMMAND" in done.stdout, done.stderr[-1000:]


def test_a_subcommands_parse_error_names_its_own_help(capsys):
    """Issue 34: parse errors pointed at `interleave --help`; each names the subcommand's own."""
    import argparse

    plain = argparse.ArgumentParser.error
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith(
        "interleave report: error: unrecognized arguments: --bogus (`interleave report --help` lists the options)\n"
    )
    assert "`interleave --help`" not in err
    assert argparse.ArgumentParser.error is plain  # only inside the command


def test_a_config_option_a_tool_passes_on_names_the_tools_help_and_train_pys(
    tmp_path, small_dataset, tiny_model_kwargs, capsys
):
    from tests.helpers import write_config

    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    with pytest.raises(SystemExit) as exit_:
        main(["data", "check", "--config", str(config), str(small_dataset / "train.jsonl"), "--bogus"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "error: unrecognized arguments: --bogus (`interleave data check --help` lists "
        "its options, `python train.py fit --help` a config's)\n"
    )


def test_ctrl_c_while_a_tool_starts_is_one_line_and_exit_130(capsys, monkeypatch):
    def slow_import(name):
        raise KeyboardInterrupt

    monkeypatch.setattr("importlib.import_module", slow_import)
    assert main(["rephrase", "--input", "x"]) == 130
    # Still importing: the tool wrote nothing yet (what it keeps once running, it says itself: test_rephrase)
    assert capsys.readouterr().err == "interrupted: interleave rephrase; what it wrote before is kept as it was\n"
    assert main(["report", "runs"]) == 130
    assert capsys.readouterr().err == "interrupted: interleave report; what it wrote before is kept as it was\n"
