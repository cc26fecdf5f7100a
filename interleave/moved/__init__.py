"""Commands that moved: `python -m interleave.data` and the like, which earlier versions documented,
stop with the command that replaced them instead of running a runtime module that does nothing.

`interleave/__init__.py` calls `refuse_moved_command()`, so the check runs before Python even looks
for the module: it covers the runtime modules that remain (`interleave.data`, `interleave.cache`)
and the ones that moved to `interleave/tools/` alike. It acts only while Python is locating the
module of `python -m` (then `sys.argv[0]` is `-m`), never when a program imports the package.
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


_TAKES_VALUE = ("-X", "-W", "--check-hash-based-pycs")  # interpreter options whose value is the next word


def module_run(orig_argv: list[str]) -> str | None:
    """The module `python [options] -m MODULE ...` runs, from the interpreter's own arguments."""
    words = iter(orig_argv[1:])
    for arg in words:
        if arg == "-m":
            return next(words, None)
        if arg.startswith("-m"):
            return arg[2:]
        if arg in _TAKES_VALUE:
            next(words, None)
        elif arg in ("-c", "-") or not arg.startswith("-"):  # a program or a script: no module
            return None
    return None


def moved_message(module: str | None) -> str | None:
    """The error for `python -m module` when it is a command that moved, else None."""
    if module not in MOVED:
        return None
    return (f"error: `python -m {module}` is no longer a command; use `{MOVED[module]}` "
            "(`interleave --help` lists the commands)")


def refuse_moved_command() -> None:
    """Exit with status 2 and the new command when Python is starting `python -m` on a moved command."""
    if sys.argv[:1] != ["-m"]:
        return
    message = moved_message(module_run(list(getattr(sys, "orig_argv", []))))
    if message is not None:
        print(message, file=sys.stderr)
        raise SystemExit(2)
