"""The project's exception types: expected, user-facing errors that name the input at fault."""

from __future__ import annotations


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
