"""The documentation stays true to the repository: the MkDocs site builds offline with no warning
(a broken link or anchor fails `--strict`), the README stays short and its relative links resolve,
ARCHITECTURE.md's module table names every module and only files that exist, the docs cite
only test files the repository has, and every `python train.py` command they show is one that
tests/test_paper_configs.py resolves (DOC_COMMANDS in tests/helpers.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import DOC_COMMANDS, modules

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
# Markdown links and images: [text](target) and ![alt](target), the target up to a space or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.slow
def test_the_site_builds_strictly_and_offline(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "WARNING" not in run.stderr, run.stderr
    pages = {p.relative_to(site).as_posix() for p in site.rglob("index.html")}
    assert {f"{p.stem}/index.html" for p in DOCS if p.stem != "index"} | {"index.html"} <= pages
    html = "".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))
    assert "fonts.googleapis.com" not in html and "fonts.gstatic.com" not in html  # nothing fetched when read
    # The two included files arrive whole, not as the snippet line.
    architecture = (site / "architecture" / "index.html").read_text(encoding="utf-8")
    assert "--8&lt;--" not in architecture and "interleave/data/record_index.py" in architecture
    assert "Benchmarks" in (site / "results" / "index.html").read_text(encoding="utf-8")


def test_the_readme_is_short_and_its_links_resolve() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    targets = [t for t in LINK.findall(readme) if not re.match(r"[a-z]+://|#|mailto:", t)]
    assert targets, "the README links nowhere into the docs"
    missing = [t for t in targets if not (REPO / t.split("#", 1)[0]).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def architecture_paths() -> list[str]:
    """The first column of ARCHITECTURE.md's module table (rows that start with a path)."""
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("\n## Rooms\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)`", section, flags=re.M)


def test_the_module_table_matches_the_files() -> None:
    listed = architecture_paths()
    assert listed, "ARCHITECTURE.md has no module table"
    missing = [p for p in listed if not (REPO / p.rstrip("/")).exists()]
    assert not missing, f"ARCHITECTURE.md lists paths that do not exist: {missing}"
    unlisted = [
        str(p.relative_to(REPO))
        for p in modules().values()
        if p.stem not in ("__init__", "__main__")
        and str(p.relative_to(REPO)) not in listed
        and str(p.relative_to(REPO).parent) + "/" not in listed
    ]
    assert not unlisted, f"modules ARCHITECTURE.md's table does not name: {unlisted}"


def test_the_docs_cite_only_test_files_that_exist() -> None:
    cited = {
        m
        for doc in [REPO / "README.md", REPO / "ARCHITECTURE.md", *DOCS]
        for m in re.findall(r"`(tests/[\w/]+\.py)`", doc.read_text(encoding="utf-8"))
    }
    assert cited and not [path for path in sorted(cited) if not (REPO / path).is_file()]


# `python train.py` commands the docs show that DOC_COMMANDS does not run with --print_config, each with why:
# they need a checkpoint that only exists after a run (or a file the reader names), or run `predict`.
DOC_COMMANDS_NOT_RUN = {
    # the demo's checkpoint exists only after `make demo`; `predict` writes predictions, it prints no config
    "python train.py predict --config configs/demo.yaml --data.predict_file data/demo/heldout.jsonl "
    "--ckpt_path runs/demo/version_0/checkpoints/last.ckpt",
    # resuming needs the checkpoint of an earlier run
    "python train.py fit --config configs/demo.yaml --ckpt_path runs/demo/version_0/checkpoints/last.ckpt",
    # CKPT and FILE stand for the reader's own checkpoint and record file
    "python train.py validate --config configs/demo.yaml --ckpt_path CKPT",
    # a benchmark added on the command line or in a second config file (mmau.yaml, shown in docs/benchmarks.md);
    # tests/callbacks/test_benchmark_recordings.py runs both on a demo checkpoint
    "python train.py validate --config configs/demo.yaml --ckpt_path runs/demo/version_0/checkpoints/last.ckpt "
    "--trainer.callbacks.init_args.benchmarks='[{name: mmau_mini, file: data/mmau/mmau-test-mini.json, "
    "scorings: [ranked, generated], controls: [no_clip, silence]}]'",
    "python train.py validate --config configs/demo.yaml --config mmau.yaml "
    "--ckpt_path runs/demo/version_0/checkpoints/last.ckpt",
    "python train.py test --config configs/demo.yaml --data.test_file FILE --ckpt_path CKPT",
    "python train.py predict --config configs/demo.yaml --data.predict_file FILE --ckpt_path CKPT",
}
FENCE = re.compile(r"^ *(```|~~~)[^\n]*\n(.*?)^ *\1 *$", flags=re.M | re.S)


def documented_train_commands() -> dict[str, set[str]]:
    """Every `python train.py ...` line in a fenced code block of the README and the docs pages,
    its `\\` continuations joined, its trailing comment and whitespace dropped -> the files showing it."""
    found: dict[str, set[str]] = {}
    for doc in [REPO / "README.md", *DOCS]:
        for block in FENCE.finditer(doc.read_text(encoding="utf-8")):
            lines = re.sub(r"\\\n", " ", block.group(2)).splitlines()
            for line in lines:
                line = line.strip()
                if line.startswith("python train.py"):
                    command = " ".join(re.sub(r"\s+#.*$", "", line).split())
                    found.setdefault(command, set()).add(doc.name)
    return found


def test_every_train_command_in_the_docs_is_one_the_tests_resolve() -> None:
    found = documented_train_commands()
    assert len(found) >= 10, found  # the README's four rows, the demo, the overlays, ...
    assert not [c for c in found if "$" in c], "write commands in full: no shell variables"
    resolved = {" ".join(c.split()) for c in DOC_COMMANDS}
    # DOC_COMMANDS are run with --print_config added: a command showing it is that same check.
    unchecked = {
        c: where
        for c, where in found.items()
        if c.removesuffix(" --print_config") not in resolved and c not in DOC_COMMANDS_NOT_RUN
    }
    assert not unchecked, f"add these to DOC_COMMANDS in tests/helpers.py or fix the docs: {unchecked}"
    stale = sorted(DOC_COMMANDS_NOT_RUN - set(found))
    assert not stale, f"DOC_COMMANDS_NOT_RUN names commands the docs no longer show: {stale}"


def test_the_interleave_commands_listed_are_those_of_interleave_help() -> None:
    """The README's and getting-started's lists of the `interleave` subcommands (`data check`, `shard`,
    ...) name every command `interleave --help` lists, and only those; getting-started in its order."""
    from interleave.tools.command import COMMANDS

    def listed(doc: str, pattern: str) -> list[str]:
        found = re.search(pattern, " ".join((REPO / doc).read_text(encoding="utf-8").split()))
        assert found, f"{doc}: the list of `interleave` commands moved; update this test"
        return [
            code.split()[0] for code in re.findall(r"`([^`]+)`", found.group(1)) if not code.startswith("interleave")
        ]

    readme = listed("README.md", r"the offline tools in one command, `interleave` \((.*?)\)")
    started = listed("docs/getting-started.md", r"`interleave --help`: (.*?)\); after")
    assert sorted(readme) == sorted(COMMANDS), readme
    assert started == list(COMMANDS), started
