"""The project's exception types (expected, user-facing errors that name the input at fault) and
`report_errors`, the one place every command turns them into one `error:` line, and an interrupt
(Ctrl-C) into one `interrupted:` line.

Exit statuses, one rule for every command (`python train.py ...`, `interleave ...`, `python -m ...`):

- **0**: done.
- **2**: bad input: a file, record, config, flag or value the user gave cannot be used. One line,
  `error: ...`, naming it (a config file's fault with its line and column), no traceback; a
  command-line mistake also gets its `--help` named.
- **130**: interrupted (Ctrl-C, SIGINT; 128 + 2, the shell's convention). One line,
  `interrupted: <what>; <what was kept>`: each command says what of its work survives (`data
  check`: the record index; `frontier`: the finished alphas; `train.py fit`: the last checkpoint).
- **1**: the run itself failed: an error that is not the input's (a bug, memory or disk exhausted, a
  library's own failure), with Python's traceback, which is what a bug report needs.

A command says what it is and what an interrupt keeps through `report_errors(what=..., kept=...)`;
the `interleave` command names the subcommand for the others (`running`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any

INPUT, INTERRUPTED = 2, 130  # the exit statuses of bad input and of an interrupt (1: the run failed)
KEPT = "what it wrote before is kept as it was"  # an interrupt's default note

# The command being run, as the user would type it, and what its interrupt keeps (`running`).
_COMMAND: ContextVar[tuple[str, str] | None] = ContextVar("interleave_command", default=None)


class InterleaveError(Exception):
    """Base class for errors caused by the user's input (files, records, configs), not by a bug."""


class AudioError(InterleaveError):
    """An audio file cannot be turned into features; names the file and the reason."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class RecordError(InterleaveError):
    """A training or evaluation record is unusable; names where it came from and why."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


@contextmanager
def running(what: str, kept: str | None = None) -> Iterator[None]:
    """Inside: the command being run is `what` (`interleave data`), whose interrupt keeps `kept`;
    `report_errors` and the command-line hints (`command_name`) use them."""
    token = _COMMAND.set((what, kept or KEPT))
    try:
        yield
    finally:
        _COMMAND.reset(token)


def running_command() -> str | None:
    """The command being run, as `running` named it (`interleave data`), or None outside one."""
    found = _COMMAND.get()
    return found[0] if found else None


def command_name() -> str:
    """The command being run (`running`), else the script's name (`train.py`)."""
    return running_command() or Path(sys.argv[0] if sys.argv and sys.argv[0] else "python").name


def interrupted(what: str | None = None, kept: str | Callable[[], str] | None = None) -> int:
    """Print the one `interrupted: <what>; <what was kept>` line; returns 130."""
    outer = _COMMAND.get()
    what = what or command_name()
    try:
        note = kept() if callable(kept) else kept
    except Exception as err:  # the note must not hide the interrupt behind a traceback
        note = f"(what was kept is unknown: {type(err).__name__}: {err})"
    print(f"interrupted: {what}; {note or (outer[1] if outer else KEPT)}", file=sys.stderr, flush=True)
    return INTERRUPTED


def expected_error(err: BaseException) -> BaseException | None:
    """The expected, user-facing error `err` is or wraps, else None. jsonargparse wraps an error raised
    while it builds a class (`data.train_files` refused in the data module's constructor) in a
    `ValueError` ("Does not validate against any of the Union subtypes") raised `from` it: such
    explicit causes of a ValueError or TypeError are followed, nothing else (a bug stays a bug)."""
    from omegaconf.errors import InterpolationKeyError, InterpolationToMissingValueError, MissingMandatoryValue

    kinds = (InterleaveError, MissingMandatoryValue, InterpolationToMissingValueError, InterpolationKeyError)
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, kinds):
            return err
        if not isinstance(err, (ValueError, TypeError)):
            return None
        err = err.__cause__
    return None


def report_errors(
    body: Callable[[], Any],
    redact: Callable[[str], str] = str,
    what: str | None = None,
    kept: str | Callable[[], str] | None = None,
) -> int:
    """Run `body` and return its exit status (its result if an int, else 0); an expected,
    user-facing error is printed as one `error:` line instead, with exit status 2, and an interrupt
    (Ctrl-C) as one `interrupted: <what>; <kept>` line, with exit status 130.

    Expected errors: an InterleaveError (its message names the input at fault), also when
    jsonargparse wraps it (`expected_error`), a config value left as `???` (omegaconf's missing
    value, named as the flag that sets it) and an interpolation (`${paths.x}`) that names nothing.
    `redact` cleans a message before it is printed (rephrase removes API keys). `what` names the
    command (default: the one `running` names, else the script); `kept` says what an interrupt
    leaves (a callable is asked then, so it can look at what was finished). Any other error is the
    run's own failure: it propagates (traceback, exit status 1).
    """
    outer = _COMMAND.get()
    try:
        with running(what, outer[1] if outer else None) if what is not None else nullcontext():
            result = body()
    except KeyboardInterrupt:
        return interrupted(what, kept)
    except SystemExit as exit_:
        if isinstance(exit_.__context__, KeyboardInterrupt):  # Lightning's fit turns Ctrl-C into exit(1)
            return interrupted(what, kept)
        raise
    except Exception as err:
        found = expected_error(err)
        if found is None:
            raise
        print(f"error: {redact(error_line(found))}", file=sys.stderr)
        return INPUT
    return result if isinstance(result, int) else 0


def error_line(err: BaseException) -> str:
    """The `error:` line's text for an expected error (`expected_error`)."""
    from omegaconf.errors import InterpolationKeyError, InterpolationToMissingValueError, MissingMandatoryValue

    if isinstance(err, (MissingMandatoryValue, InterpolationToMissingValueError)):
        found = re.search(r"Missing mandatory value: (?:(?:fit|validate|test|predict)\.)?(\S+)", str(err))
        key = found.group(1) if found else str(err).splitlines()[0]
        return f"the config leaves {key} to set (???): pass --{key}=... or edit the config"
    if isinstance(err, InterpolationKeyError):  # `${paths.x}` that names nothing
        lines = str(err).splitlines()
        where = next((line.split(":", 1)[1].strip() for line in lines if "full_key" in line), "the config")
        hint = ""
        if ".data.init_args." in f".{where}":  # jsonargparse resolves a data block's ${...} only under a class_path
            hint = (
                "; a `data:` block that interpolates needs `class_path: interleave.data.InterleavedDataModule` "
                "with its values under `init_args:`"
            )
        return f"{lines[0]} (at {where}){hint}"
    return str(err)
