"""Commands that moved: `python -m interleave.data` and the like, which earlier versions documented,
stop with the command that replaced them (exit status 2) instead of running something else.

Each old command module has a stub that calls `refuse` only when it is run with `python -m`:
`interleave/data/__main__.py` for the data package, and this folder's `cache.py`, `demo.py`,
`export.py`, `rephrase.py` and `report.py` for the modules that are gone, which Python finds as
`interleave.cache` and so on because `interleave/__init__.py` puts this folder on the package's
`__path__`. Nothing here runs when a program imports the package.
"""

from __future__ import annotations

import sys

# `python -m MODULE` -> the command that replaced it (the old READMEs' commands, from git history).
MOVED: dict[str, str] = {
    "interleave.data": "interleave data check FILE",
    "interleave.cache": "interleave cache --config CONFIG",
    "interleave.demo": "interleave demo DIR",
    "interleave.export": "interleave export CKPT OUT_DIR",
    "interleave.rephrase": "interleave rephrase ...",
    "interleave.report": "interleave report RUN_DIR...",
}


def moved_message(module: str | None) -> str | None:
    """The error for `python -m module` when it is a command that moved, else None."""
    if module not in MOVED:
        return None
    return (
        f"error: `python -m {module}` is no longer a command; use `{MOVED[module]}` "
        "(`interleave --help` lists the commands)"
    )


def refuse(module: str) -> None:
    """Exit with status 2 and the command that replaced `python -m module`."""
    print(moved_message(module), file=sys.stderr)
    raise SystemExit(2)
