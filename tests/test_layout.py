"""The house rules of ARCHITECTURE.md, checked on the code itself: no import cycle (type-only imports
included), the runtime imports no tool, no callback and nothing of the SHARD builder, only the
builder's folder imports nltk, no import is hidden in a string, the folders keep their first levels
short, no module is over 500 lines, no citation of files the repository does not have, every module
with its test file, and ruff (format and lint) clean on the whole tree. The tests' own rules: helpers
shared by test files live in tests/helpers.py (no test file imports another), every test that starts a
training run, a process, a server or a build is marked `slow`, and every test file keeps a fast test.
(The module table and the docs: tests/test_docs.py.)"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PACKAGES, modules

REPO = Path(__file__).resolve().parents[1]
# The offline tools, the SHARD builder and the training entry's CLI: training and evaluation never import them.
OFFLINE = ("interleave.tools", "interleave.shard", "interleave.cli")
NLTK_FOLDER = "interleave/shard/"  # the only folder whose modules import nltk


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its code (functions and TYPE_CHECKING blocks
    included: a type-only cycle is a cycle too), with the packages that importing them runs (their __init__)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            modules_named = {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
            targets |= modules_named
            if not modules_named <= set(known):  # names of the package's own code, not only its modules
                targets.add(base)
    # Importing a.b.c runs a and a.b too, except the packages `name` itself lies in: they are
    # already being imported when `name` runs.
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    out = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known and (prefix not in own or i == len(parts)):
                out.add(prefix)
    out.discard(name)
    return out


GRAPH = {name: imports(name, path, modules()) for name, path in modules().items()}


def closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in GRAPH.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycle():
    cycles = sorted(name for name in GRAPH if name in closure(name))
    assert not cycles, f"modules that import themselves through others: {cycles}"


RUNTIME = sorted(name for name in GRAPH if not name.startswith(OFFLINE + ("callbacks",)))


@pytest.mark.parametrize("module", [*RUNTIME, "callbacks"])
def test_the_runtime_imports_no_tool_nor_the_shard_builder(module):
    """Nothing of the runtime (nor the callbacks) reaches back up to the tools, the builder or the CLI;
    the runtime's modules do not import the callbacks either."""
    above = OFFLINE if module.startswith("callbacks") else OFFLINE + ("callbacks",)
    offline = sorted(m for m in closure(module) | {module} if m.startswith(above))
    assert not offline, f"{module} imports what stands above it: {offline}"


def test_only_the_shard_builders_folder_imports_nltk():
    importers = []
    for path in modules().values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(n.split(".")[0] == "nltk" for n in names):
                importers.append(str(path.relative_to(REPO)))
    assert importers and all(p.startswith(NLTK_FOLDER) for p in importers), importers


@pytest.mark.slow
def test_importing_the_runtime_leaves_nltk_the_builder_and_the_tools_out():
    code = (
        "import sys, interleave.model, interleave.data.module, interleave.eval.evaluate, interleave.encoders.cache, "
        "interleave.spec, callbacks; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'nltk' or m.startswith(('interleave.tools', "
        "'interleave.shard'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_import_is_hidden_in_a_string():
    """`importlib.import_module` / `__import__` only where the `interleave` command loads the one tool asked for."""
    found = sorted(
        str(p.relative_to(REPO))
        for p in modules().values()
        if re.search(r"\bimport_module\b|__import__", p.read_text(encoding="utf-8"))
    )
    assert found == ["interleave/tools/command.py"], found


def test_the_first_levels_stay_short():
    """At most 12 modules at the top of the runtime, at most 8 beside the tools' sub-packages (one per command),
    and no tool's sub-package imports another command's: what two commands share lives beside them."""
    top = sorted(p.name for p in (REPO / "interleave").glob("*.py"))
    tools = sorted(p.name for p in (REPO / "interleave" / "tools").glob("*.py"))
    assert len(top) <= 12 and len(tools) <= 8, (top, tools)
    commands = {p.parent.name for p in (REPO / "interleave" / "tools").glob("*/cli.py")}
    crossing = sorted(
        (name, m)
        for name in GRAPH
        if name.startswith("interleave.tools.")
        for m in GRAPH[name]
        if m.startswith("interleave.tools.") and (cmd := m.split(".")[2]) in commands and name.split(".")[2] != cmd
    )
    assert not crossing, f"commands that import another command: {crossing}"


def config_class_paths() -> list[str]:
    """Every `class_path` that a shipped config (configs/**/*.yaml) names."""
    import yaml

    def walk(tree):
        if isinstance(tree, dict):
            for key, value in tree.items():
                if key == "class_path":
                    yield value
                yield from walk(value)
        elif isinstance(tree, list):
            for value in tree:
                yield from walk(value)

    return sorted(
        {path for config in (REPO / "configs").rglob("*.yaml") for path in walk(yaml.safe_load(config.read_text()))}
    )


@pytest.mark.slow
def test_the_shipped_configs_load_neither_nltk_nor_a_tool():
    """A run from any shipped config imports train.py's CLI and the classes the config names: never
    the offline tools (the demo's data is written beforehand by `interleave demo`), the SHARD builder nor nltk."""
    named = config_class_paths()
    assert "interleave.data.InterleavedDataModule" in named and "callbacks.ShardEvaluation" in named
    code = (
        "import importlib, sys, train\n"
        f"for dotted in {named!r}:\n"
        "    module, _, name = dotted.rpartition('.')\n"
        "    getattr(importlib.import_module(module), name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'nltk' or m.startswith(('interleave.tools', "
        "'interleave.shard'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"the configs' classes import {out.stdout.strip()}"


def test_no_module_over_500_lines():
    long = {str(p.relative_to(REPO)): n for p in modules().values() if (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"split these rooms: {long}"


def test_nothing_cites_a_file_the_repository_does_not_have():
    files = [
        *REPO.glob("*.md"),
        *REPO.glob("*.py"),
        *(
            p
            for pkg in (*PACKAGES, "configs", "bench", "tests")
            for p in (REPO / pkg).rglob("*")
            if p.suffix in (".py", ".md", ".yaml")
        ),
    ]
    cites = [
        str(p.relative_to(REPO))
        for p in files
        if p != Path(__file__).resolve() and re.search(r"DESIGN\.md|\.\./shared", p.read_text(encoding="utf-8"))
    ]
    assert not cites


def mirror(name: str, path: Path) -> Path:
    """tests/<same folders>/test_<module>.py (interleave/eval/answers.py -> tests/eval/test_answers.py); a
    package's __init__ and __main__ have none, nor the stubs of interleave/moved/ (each the `__main__` of a
    command that moved: tests/test_moved.py runs them all)."""
    rel = path.relative_to(REPO)
    folders = rel.parts[1:-1] if rel.parts[0] == "interleave" else rel.parts[:-1]
    return REPO / "tests" / Path(*folders) / f"test_{path.stem}.py"


def test_every_module_has_its_test_file():
    lacking = [
        str(mirror(n, p).relative_to(REPO))
        for n, p in modules().items()
        if p.stem not in ("__init__", "__main__")
        and not n.startswith("interleave.moved.")
        and not mirror(n, p).is_file()
    ]
    assert not lacking, f"modules without their test file: {lacking}"


@pytest.mark.slow
@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["format", "lint"])
def test_ruff_finds_nothing_to_change(command):
    """The tree is as `ruff format .` and `ruff check .` leave it (pyproject.toml's [tool.ruff])."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.fail("ruff is not installed beside this Python: `make setup` installs the dev extra")
    done = subprocess.run([str(ruff), *command, "--no-cache", "."], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


# --- The tests' own rules ------------------------------------------------------------------------------------------

TESTS = REPO / "tests"
TEST_MODULES = sorted(p for p in TESTS.rglob("*.py") if "fixtures" not in p.relative_to(TESTS).parts)
# What starts a training run, a process, a server or a build, as the call is written: train.py's CLI (also
# as interleave.cli's `cli`), a Lightning Trainer or its fit/validate/predict/test, a subprocess, an HTTP
# server, the playground's launch. What the project's code starts on a test's behalf (a tool's run, a
# process) the fixture `fast_tests_start_no_run_and_no_process` in tests/conftest.py refuses as it runs.
STARTERS = (
    *(f"subprocess.{f}" for f in ("run", "Popen", "call", "check_call", "check_output")),
    "train.cli",
    "cli",
    "ThreadingHTTPServer",
    "HTTPServer",
    "launch",
)
RUNS = tuple(f".trainer.{stage}" for stage in ("fit", "validate", "predict", "test"))


def dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id if isinstance(node, ast.Name) else "?", *reversed(parts)])


def starts(node: ast.AST) -> str | None:
    """The first call in `node` that starts something, by name."""
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            name = dotted(call.func)
            if name in STARTERS or name.endswith(RUNS) or name.rpartition(".")[2] == "Trainer":
                return name
    return None


def uses(node: ast.AST) -> set[str]:
    """The names a function or class uses, with the fixtures a function asks for by its arguments."""
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        names |= {a.arg for a in node.args.args + node.args.kwonlyargs}
    return names


def starters(trees: list[ast.Module]) -> dict[str, str]:
    """Each top-level function, fixture or class of `trees` that starts something, directly or through
    another (by name), -> the chain that does."""
    table: dict[str, list[ast.AST]] = {}
    for tree in trees:
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                table.setdefault(node.name, []).append(node)
    why = {name: s for name, nodes in table.items() for node in nodes if (s := starts(node))}
    grown = True
    while grown:
        grown = False
        for name, nodes in table.items():
            hit = next((u for node in nodes for u in sorted(uses(node)) if u in why and u != name), None)
            if name not in why and hit:
                why[name], grown = f"{hit} -> {why[hit]}", True
    return why


def cases(tree: ast.Module):
    """(test function, the marks on it and on its class) of a test module."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            yield node, node.decorator_list
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                    yield item, item.decorator_list + node.decorator_list


def is_slow(tree: ast.Module, marks: list[ast.expr]) -> bool:
    module = [n.value for n in tree.body if isinstance(n, ast.Assign) and "pytestmark" in map(ast.unparse, n.targets)]
    return any(re.search(r"\bmark\.slow\b", ast.unparse(m)) for m in [*marks, *module])


def test_no_test_file_imports_another_only_the_helpers_module():
    """What two test files share lives in tests/helpers.py (fixtures in conftest.py), never in a test file."""
    found = []
    for path in TEST_MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ["." * node.level + (node.module or "")]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [
                f"{path.relative_to(REPO)}: {n}"
                for n in names
                if (n.startswith(".") or n.split(".")[0] == "tests") and n != "tests.helpers"
            ]
    assert not found, f"import shared helpers from tests.helpers: {found}"


def test_what_starts_a_run_a_process_a_server_or_a_build_is_marked_slow_and_each_file_keeps_a_fast_test():
    """`pytest -m "not slow"` (docs/development.md) leaves out every test that calls one of STARTERS,
    directly or through a helper, fixture or class of its file, tests/helpers.py or a conftest.py."""
    shared = [ast.parse(p.read_text(encoding="utf-8")) for p in TEST_MODULES if p.name in ("helpers.py", "conftest.py")]
    unmarked, without_fast, slow = [], [], 0
    for path in TEST_MODULES:
        if not path.name.startswith("test_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        why = starters([*shared, tree])
        fast = 0
        for test, marks in cases(tree):
            chain = starts(test) or next((f"{u} -> {why[u]}" for u in sorted(uses(test)) if u in why), None)
            if is_slow(tree, marks):
                slow += 1
            else:
                fast += 1
                if chain:
                    unmarked.append(f"{path.relative_to(REPO)}::{test.name} ({chain})")
        if not fast:
            without_fast.append(str(path.relative_to(REPO)))
    assert not unmarked, f"mark these @pytest.mark.slow: {unmarked}"
    assert not without_fast, f"test files with no fast test: {without_fast}"
    assert slow > 50  # the rule finds the runs it is for
