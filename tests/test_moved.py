"""interleave.moved: `python -m` on a command that moved exits 2 naming its replacement; the commands
that remain, and programs importing the package, are untouched, and nothing runs on import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from interleave.moved import MOVED, moved_message
from interleave.tools.command import COMMANDS

REPO = Path(__file__).resolve().parents[1]


def python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(MOVED))
def test_a_moved_command_fails_loudly_with_its_replacement(module):
    done = python("-m", module, "check", "data/train.jsonl")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == moved_message(module) + "\n"
    assert f"`python -m {module}`" in done.stderr and f"`{MOVED[module]}`" in done.stderr


def test_each_replacement_is_an_interleave_command():
    for replacement in MOVED.values():
        program, name = replacement.split()[:2]
        assert program == "interleave" and name in COMMANDS, replacement


@pytest.mark.slow
def test_the_commands_that_remain_still_run():
    for module in ("interleave.shard", "interleave.tools", "interleave.tools.demo"):
        done = python("-m", module, "--help")
        assert done.returncode == 0 and "usage:" in done.stdout, (module, done.stderr[-1000:])


@pytest.mark.slow
def test_importing_the_package_is_never_refused():
    code = "import interleave.data, interleave.cache, interleave.report; print('ok')"
    for argv in (["-c", code], ["-X", "dev", "-c", code]):
        done = python(*argv)
        assert done.returncode == 0 and done.stdout == "ok\n", done.stderr[-1000:]


def test_the_package_runs_no_check_of_its_own_arguments_on_import():
    """The stubs act only as `python -m`'s main module: the package's import reads no `sys.argv`."""
    source = (REPO / "interleave" / "__init__.py").read_text(encoding="utf-8")
    assert "argv" not in source and "refuse" not in source
    assert moved_message("interleave.tools.report") is None and moved_message(None) is None
