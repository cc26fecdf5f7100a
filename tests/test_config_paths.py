"""interleave.config_paths: the `paths:` block merges key by key over several configs, as the
rest of a config does, instead of the last config's block replacing the others."""

from __future__ import annotations

import pytest
from jsonargparse import ActionConfigFile, ArgumentParser

from interleave.config_paths import add_paths_argument


def parser() -> ArgumentParser:
    """A parser as train.py's: omegaconf+ mode, several --config, the paths block, two values using it."""
    made = ArgumentParser(parser_mode="omegaconf+", exit_on_error=False)
    made.add_argument("--config", action=ActionConfigFile)
    add_paths_argument(made)
    made.add_argument("--logs", type=str, default="")
    made.add_argument("--encoder", type=str, default="")
    return made


@pytest.fixture()
def configs(tmp_path):
    row = tmp_path / "row.yaml"
    row.write_text("paths:\n  runs: runs/paper\n  data: data/a\n  llm: ???\nlogs: ${paths.runs}/${paths.llm}\n")
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("paths:\n  whisper: ???\n  data: data/b\nencoder: ${paths.whisper}\n")
    return row, overlay


def test_an_overlay_adds_its_paths_to_the_rows(configs):
    row, overlay = configs
    cfg = parser().parse_args(["--config", str(row), "--config", str(overlay), "--paths.llm=L", "--paths.whisper=W"])
    assert cfg.paths == {"runs": "runs/paper", "data": "data/b", "llm": "L", "whisper": "W"}  # the later data wins
    assert (cfg.logs, cfg.encoder) == ("runs/paper/L", "W")


def test_the_command_line_sets_one_path_or_several(configs):
    row, _ = configs
    cfg = parser().parse_args(["--config", str(row), "--paths", '{"llm": "L", "extra": "E"}', "--paths.runs=R"])
    assert cfg.paths == {"runs": "R", "data": "data/a", "llm": "L", "extra": "E"} and cfg.logs == "R/L"


def test_one_config_alone_and_no_config_parse_as_before(configs):
    row, _ = configs
    alone = parser().parse_args(["--config", str(row), "--paths.llm=L"]).paths
    assert alone == {"runs": "runs/paper", "data": "data/a", "llm": "L"}
    assert parser().parse_args([]).paths == {}


def test_a_path_left_unset_is_still_named(configs):
    from omegaconf.errors import InterpolationToMissingValueError

    row, overlay = configs
    with pytest.raises(InterpolationToMissingValueError, match="whisper"):
        parser().parse_args(["--config", str(row), "--config", str(overlay), "--paths.llm=L"])


def test_paths_hold_strings_only(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("paths:\n  llm:\n    nested: 1\n")
    with pytest.raises(Exception, match="paths"):
        parser().parse_args(["--config", str(bad)])
