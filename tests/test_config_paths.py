"""interleave.config_paths: the `paths:` block merges key by key over several configs, as the
rest of a config does, instead of the last config's block replacing the others; every config file
is read strictly (malformed YAML or a key given twice: one error naming the file, line and column)."""

from __future__ import annotations

import pytest
from jsonargparse import ActionConfigFile, ArgumentParser

from interleave.config_paths import ConfigFileError, add_paths_argument, install_yaml_check, read_yaml, yaml_fault


def parser() -> ArgumentParser:
    """A parser as train.py's: omegaconf+ mode, several --config, the paths block, two values using it."""
    install_yaml_check()
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


@pytest.mark.parametrize(
    "text,fault",
    [
        ("a: 1\nb: 2\na: 3\n", "f.yaml:3:1: a is given twice (first at line 1)"),
        ("model:\n  lora_r: 4\n  lora_r: 8\n", "f.yaml:3:3: model.lora_r is given twice (first at line 2)"),
        (
            "conditions: {demo: {}, demo: {overrides: {model.lora_r: 4}}}\n",
            "f.yaml:1:24: conditions.demo is given twice",
        ),
        ("cbs:\n  - {x: 1}\n  - init_args: {p: 1, q: 2, p: 3}\n", "f.yaml:3:29: cbs[1].init_args.p is given twice"),
        ("a:\n  b: 1\n c: [\n", "f.yaml:3:2: not valid YAML: while parsing a block mapping, did not find expected key"),
        (
            "a: 1\n---\nb: 2\n",
            "f.yaml:2:1: not valid YAML: expected a single document in the stream, but found another",
        ),
    ],
)
def test_a_key_given_twice_or_malformed_yaml_is_named_with_its_line_and_column(text, fault):
    assert yaml_fault(text, "f.yaml").startswith(fault)


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: {a: 2}\nc: [{a: 1}, {a: 2}]\n",  # the same key in different mappings
        "base: &b {x: 1, y: 2}\nrow:\n  <<: *b\n  x: 3\n",  # a merge key, overridden: YAML's own override
        "a: &n [*n]\n",  # an alias of its own node: walked once
        "'1': a\n1: b\n",  # a string and a number: two keys
        "",
    ],
)
def test_yaml_without_repeated_keys_passes(text):
    assert yaml_fault(text, "f.yaml") is None


def test_read_yaml_reads_a_checked_file_or_names_its_fault(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("a: [1, 2]\n")
    assert read_yaml(path) == {"a": [1, 2]}
    path.write_text("a: 1\na: 2\n")
    with pytest.raises(
        ConfigFileError, match=rf"^{path}:2:1: a is given twice \(first at line 1\); YAML would keep only"
    ):
        read_yaml(path)
    with pytest.raises(ConfigFileError, match="nope.yaml: cannot read it"):
        read_yaml(tmp_path / "nope.yaml")


def test_every_config_file_jsonargparse_reads_is_checked_and_named_as_given(configs, tmp_path, monkeypatch):
    """Issue 34: a config (or one overlay of several) giving a key twice was read as its last value."""
    row, overlay = configs
    overlay.write_text("paths:\n  whisper: W\n  data: data/b\n  whisper: X\n")
    with pytest.raises(ConfigFileError) as err:
        parser().parse_args(["--config", str(row), "--config", str(overlay), "--paths.llm=L"])
    assert str(err.value).startswith(f"{overlay}:4:3: paths.whisper is given twice (first at line 2)")
    monkeypatch.chdir(tmp_path)  # named as the user gave it
    (tmp_path / "bad.yaml").write_text("logs: [\n")
    with pytest.raises(ConfigFileError, match=r"^bad.yaml:2:1: not valid YAML"):
        parser().parse_args(["--config", "bad.yaml"])


def test_a_config_file_named_inside_a_config_is_checked_too(tmp_path):
    from jsonargparse import ActionParser

    inner = ArgumentParser(parser_mode="omegaconf+", exit_on_error=False)
    inner.add_argument("--x", type=int, default=0)
    outer = parser()
    outer.add_argument("--inner", action=ActionParser(parser=inner))
    sub = tmp_path / "inner.yaml"
    sub.write_text("x: 1\nx: 2\n")
    with pytest.raises(ConfigFileError, match=r"inner.yaml:2:1: x is given twice"):
        outer.parse_args(["--inner", str(sub)])


def test_a_value_typed_on_the_command_line_keeps_jsonargparses_handling():
    cfg = parser().parse_args(["--logs", "a: 1\na: 2", "--paths", '{"llm": "L"}'])  # a string, not a config
    assert cfg.logs == "a: 1\na: 2" and cfg.paths == {"llm": "L"}
