"""Writing files so that a crash leaves the old file or the new one, never half of one.

Every whole-file write of the project goes through here: checkpoints, feature-cache entries,
SHARD and lexicon files, predictions and metrics files, reports, rejects and tool metadata.
The new content goes to a temporary sibling, is fsynced, and is renamed over the target.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary sibling of `path` for the caller to write (for writers that take a file name,
    such as safetensors' `save_file`); when the block ends without error it is fsynced and
    renamed over `path`, otherwise removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """`open(path, mode)` whose content replaces `path` only when the block ends without error."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Replace `path`'s content with `text` (UTF-8) atomically."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
