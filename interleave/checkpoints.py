"""Loading weight files (checkpoints, LTU's and CAV-MAE's state dicts) safely and with clear errors.

Everything goes through `torch.load(weights_only=True)`: tensors and plain containers only, so a
pickle that would run code is refused instead of run. Whatever the path holds (any bytes, any text,
a directory, a symlink loop, a file that vanishes while read), `load_weights` returns the weights
or raises an InterleaveError that names the file and says what it is not: no other exception
leaves it, so every entry point shows one `error:` line.
"""

from __future__ import annotations

import errno
import os
import pickletools
import stat
import warnings
from pathlib import Path
from typing import IO, Any

import torch

from interleave.errors import InterleaveError

# How a file torch.load reads begins: a zip archive (torch.save's format since 1.6) or a pickle of
# protocol 2 or more (the legacy format: `\x80` then the protocol number).
ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
PICKLE_START = b"\x80"
SNIFF_BYTES = 4096  # what is read to tell text from binary


class NotLoaded(InterleaveError):
    """A weight file that did not load; `cut_short` when it looked like a checkpoint but broke."""

    def __init__(self, message: str, cut_short: bool = False) -> None:
        super().__init__(message)
        self.cut_short = cut_short


def intact_checkpoints(folder: Path, exclude: Path | None = None) -> list[Path]:
    """The `.ckpt` files of `folder` that load, newest first (for the refusal message)."""
    found = []
    try:
        paths = sorted(folder.glob("*.ckpt"), key=_mtime, reverse=True)
    except OSError:
        return []
    for path in paths:
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        try:
            _load(path, "cpu")
        except NotLoaded:  # any failure means "not usable", which is all we report
            continue
        found.append(path)
    return found


def load_weights(path: Path, map_location: Any = "cpu") -> Any:
    """`torch.load(weights_only=True)` of `path`, or an InterleaveError naming the file: missing,
    not a file, not a checkpoint (text, other bytes), refused (a pickle that would run code), or cut
    short (naming the intact checkpoints beside it)."""
    path = Path(path)
    try:
        return _load(path, map_location)
    except NotLoaded as err:
        if err.cut_short:
            raise InterleaveError(f"{err}; {_alternatives(path)}") from None
        raise InterleaveError(str(err)) from None


def _load(path: Path, map_location: Any) -> Any:
    """The weights of `path`; NotLoaded for every way it can fail. The file is opened once and read
    through that handle, so one that is deleted or replaced meanwhile is read whole or not at all."""
    try:  # O_NONBLOCK: a pipe is refused below instead of waiting for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise NotLoaded(f"{path}: {_unopenable(path, err)}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as err:
        os.close(fd)
        raise NotLoaded(f"{path}: {_unopenable(path, err)}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a device, pipe or socket)"
        raise NotLoaded(f"{path}: {kind}, not a checkpoint file")
    with os.fdopen(fd, "rb") as handle:
        try:
            head = handle.read(SNIFF_BYTES)
            handle.seek(0)
        except OSError as err:
            raise NotLoaded(
                f"{path}: cannot be read ({os.strerror(err.errno or errno.EIO)}), not a checkpoint"
            ) from None
        if not head:
            raise NotLoaded(
                f"{path}: not a complete checkpoint (the file is empty, 0 bytes); a kill during its save "
                "or a copy cut short leaves such a file",
                cut_short=True,
            )
        if not head.startswith(ZIP_STARTS + (PICKLE_START,)):
            raise NotLoaded(
                f"{path}: not a checkpoint: {_what_it_is(head)}, not a file written by torch.save "
                "(a .ckpt from training, a .pt/.pth/.bin state dict)"
            )
        return _torch_load(path, handle, map_location)


def _torch_load(path: Path, handle: IO[bytes], map_location: Any) -> Any:
    try:
        with warnings.catch_warnings():  # a junk pickle's "protocol 39" is said in the error, not as a warning
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(handle, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - whatever torch raises on a bad file becomes the one message
        text = str(err)
        detail = next((line.strip() for line in text.splitlines() if "GLOBAL" in line), "")
        if "Weights only load failed" in text and not detail and (called := _calls_code(handle)):
            detail = f"it calls {called}"
        if "Weights only load failed" in text and detail:
            raise NotLoaded(
                f"{path}: refused to load: it holds objects beyond tensors and plain values, which loading "
                f"would run as code ({detail[:200]}); only load checkpoints you trust"
            ) from None
        reason = text.splitlines()[0][:200] if text.strip() else type(err).__name__
        raise NotLoaded(
            f"{path}: not a complete checkpoint ({reason}); a kill during its save or a copy cut short "
            "leaves such a file",
            cut_short=True,
        ) from None


CODE_OPS = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "BUILD"}


def _calls_code(handle: IO[bytes]) -> str:
    """The first opcode of a plain pickle that would import or call something (read with pickletools,
    which parses and runs nothing), "" when it has none or cannot be parsed. torch's weights-only
    reader can stop at an opcode it does not support (protocol 4's FRAME) before it meets the GLOBAL,
    so its own message does not always say that the file would run code."""
    try:
        handle.seek(0)
        for op, arg, _ in pickletools.genops(handle):
            if op.name in CODE_OPS:
                return f"{op.name} {arg}" if arg is not None else op.name
    except Exception:  # noqa: BLE001 - junk or a torn pickle: not a call, the caller says cut short
        return ""
    return ""


def _unopenable(path: Path, err: OSError) -> str:
    if err.errno == errno.ENOENT:
        return "checkpoint not found"
    if err.errno == errno.EISDIR or path.is_dir():
        return "a directory, not a checkpoint file"
    if err.errno == errno.ELOOP:
        return "a symlink loop, not a checkpoint file"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "cannot be read (permission denied), so not loaded as a checkpoint"
    return f"cannot be opened ({os.strerror(err.errno) if err.errno else type(err).__name__}), not a checkpoint"


def _what_it_is(head: bytes) -> str:
    """What the first bytes of a file that is not a checkpoint look like (never its content)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # not a character cut at the sniff's end
            return "binary data of another kind"
        text = head[: err.start].decode("utf-8")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return "text (JSON or the like)"
    if stripped[:1] == "<":
        return "text (HTML or XML)"
    return "text (a config, a table or the like)"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _alternatives(path: Path) -> str:
    intact = intact_checkpoints(path.parent, exclude=path)
    if not intact:
        return "no intact checkpoint lies beside it"
    return f"intact ones beside it, newest first: {', '.join(str(p) for p in intact[:3])}"
