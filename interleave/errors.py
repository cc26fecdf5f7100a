"""The project's exception types (expected, user-facing errors that name the input at fault) and
`report_errors`, the one place every command turns them into an `error:` line and exit status 2."""

from __future__ import annotations

import re
import sys
from typing import Any, Callable


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


def report_errors(body: Callable[[], Any], redact: Callable[[str], str] = str) -> int:
    """Run `body` and return its exit status (its result if an int, else 0); an expected,
    user-facing error is printed as one `error:` line instead, with exit status 2.

    Expected errors: an InterleaveError (its message names the input at fault), a config value
    left as `???` (omegaconf's missing value, named as the flag that sets it) and an interpolation
    (`${paths.x}`) that names nothing. `redact` cleans a
    message before it is printed (rephrase removes API keys).
    """
    from omegaconf.errors import InterpolationKeyError, InterpolationToMissingValueError, MissingMandatoryValue

    try:
        result = body()
    except InterleaveError as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)
        return 2
    except (MissingMandatoryValue, InterpolationToMissingValueError) as err:
        found = re.search(r"Missing mandatory value: (?:(?:fit|validate|test|predict)\.)?(\S+)", str(err))
        key = found.group(1) if found else str(err).splitlines()[0]
        print(f"error: the config leaves {key} to set (???): pass --{key}=... or edit the config", file=sys.stderr)
        return 2
    except InterpolationKeyError as err:  # `${paths.x}` that names nothing
        lines = str(err).splitlines()
        where = next((line.split(":", 1)[1].strip() for line in lines if "full_key" in line), "the config")
        hint = ""
        if ".data.init_args." in f".{where}":  # jsonargparse resolves a data block's ${...} only under a class_path
            hint = ("; a `data:` block that interpolates needs `class_path: interleave.data.InterleavedDataModule` "
                    "with its values under `init_args:`")
        print(f"error: {lines[0]} (at {where}){hint}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0
