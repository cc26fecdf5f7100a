"""The wheel holds every subpackage and data file: built, installed into a fresh virtual
environment without the source tree, and every tool run from another folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("data check", "shard build", "rephrase", "cache", "report", "export", "demo", "playground")


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with only the built wheel of interleave; its dependencies are read from the
    test's own environment through a path entry (not a site dir, so the editable install's
    finder there stays inactive)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # what the wheel is built from, so the build leaves the checkout alone
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("interleave", "callbacks"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(root / "dist"),
            str(source),
        ],
        check=True,
        cwd=root,
        capture_output=True,
    )
    (wheel,) = (root / "dist").glob("interleave-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_pyproject_names_every_package_folder_and_every_data_file():
    """What the wheel below carries, read off the tree: every folder of code is a package that
    `packages.find` includes, and every file beside the code that is not Python matches a
    `package-data` pattern of its own package."""
    import fnmatch
    import tomllib

    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = setuptools["packages"]["find"]["include"]
    data = setuptools["package-data"]
    unpackaged, uncarried = [], []
    for package in ("interleave", "callbacks"):
        for path in sorted((REPO / package).rglob("*")):
            if "__pycache__" in path.parts or path.is_dir():
                continue
            dotted = ".".join(path.parent.relative_to(REPO).parts)
            if path.suffix == ".py":
                if not (path.parent / "__init__.py").is_file() or not any(fnmatch.fnmatch(dotted, p) for p in include):
                    unpackaged.append(str(path.relative_to(REPO)))
            elif not any(fnmatch.fnmatch(path.name, p) for p in data.get(dotted, ())):
                uncarried.append(str(path.relative_to(REPO)))
    assert not unpackaged, f"modules the wheel leaves out: {unpackaged}"
    assert not uncarried, f"data files the wheel leaves out: {uncarried}"
    assert data, "the demo and AudioSet lexicons are package data"


@pytest.mark.slow
def test_the_wheel_installs_the_packages_not_the_source_tree(installed, tmp_path):
    code = "import interleave, interleave.shard, interleave.tools, callbacks; print(interleave.__file__, callbacks.__file__)"
    out = run(installed, str(installed / "bin" / "python"), "-c", code, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert all(str(installed) in path for path in out.stdout.split()), out.stdout
    assert str(REPO) not in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_answers_help_from_another_folder(installed, tmp_path, tool):
    out = run(installed, str(installed / "bin" / "interleave"), *tool.split(), "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "usage:" in out.stdout


# Every `python -m interleave.tools.NAME` that docs/getting-started.md promises (the command modules before
# issue 35 moved the tools into one sub-package per command), the builder's and the command's own.
PYTHON_M = (
    "interleave.tools",
    "interleave.shard",
    *(
        f"interleave.tools.{name}"
        for name in (
            "dataset",
            "fill_cache",
            "export",
            "report",
            "frontier",
            "study",
            "playground",
            "rephrase",
            "demo",
            "command",
        )
    ),
)


@pytest.mark.slow
def test_python_m_works_for_the_tools_too(installed, tmp_path):
    python = str(installed / "bin" / "python")
    for module in PYTHON_M:
        out = run(
            installed, python, "-m", module, *(["check"] if module.endswith("dataset") else []), "--help", cwd=tmp_path
        )
        assert out.returncode == 0 and "usage:" in out.stdout, (module, out.stderr)


@pytest.mark.slow
def test_the_commands_that_moved_say_where_to_from_the_wheel(installed, tmp_path):
    from interleave.moved import MOVED, moved_message

    python = str(installed / "bin" / "python")
    for module in MOVED:
        out = run(installed, python, "-m", module, "check", "x", cwd=tmp_path)
        assert out.returncode == 2 and out.stderr == moved_message(module) + "\n", (module, out.stderr)


@pytest.mark.slow
def test_the_paths_a_module_computes_from_its_own_place_follow_it(installed, tmp_path):
    """The demo lexicon beside its module, the shipped AudioSet lexicon, and the study's train.py (the
    checkout's: an installed wheel has none, and the study says so rather than running another)."""
    code = (
        "import pathlib, sysconfig; from interleave.tools.demo.cli import DEMO_LEXICON; "
        "from interleave.shard.build import SHIPPED_LEXICON; from interleave.tools.study.cli import TRAIN_PY; "
        "print(DEMO_LEXICON.is_file(), SHIPPED_LEXICON.is_file(), "
        "TRAIN_PY.parent == pathlib.Path(sysconfig.get_paths()['purelib']).resolve())"
    )
    out = run(installed, str(installed / "bin" / "python"), "-c", code, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.split() == ["True", "True", "True"], out.stdout + out.stderr


@pytest.mark.slow
def test_the_demo_data_synthesis_runs_from_the_wheel(installed, tmp_path):
    """It needs the demo lexicon, a JSON file shipped inside the package."""
    out = run(
        installed,
        str(installed / "bin" / "interleave"),
        "demo",
        "demo_data",
        "--train-per-class",
        "1",
        "--heldout-per-class",
        "1",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "demo_data" / "shard.jsonl").is_file() and (tmp_path / "demo_data" / "train.jsonl").is_file()
