"""Loading weight files (checkpoints, LTU's and CAV-MAE's state dicts) safely and with clear errors.

Everything goes through `torch.load(weights_only=True)`: tensors and plain containers only, so a
pickle that would run code is refused instead of run.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from interleave.errors import InterleaveError


def intact_checkpoints(folder: Path, exclude: Path | None = None) -> list[Path]:
    """The `.ckpt` files of `folder` that load, newest first (for the refusal message)."""
    found = []
    for path in sorted(folder.glob("*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True):
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        try:
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - any failure means "not usable", which is all we report
            continue
        found.append(path)
    return found


def load_weights(path: Path, map_location: Any = "cpu") -> Any:
    """`torch.load(weights_only=True)`, with the expected failures turned into InterleaveErrors that
    name the file: missing, refused (a pickle that would run code), or cut short (naming the intact
    checkpoints beside it)."""
    if not path.is_file():
        raise InterleaveError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err):
            detail = next((line.strip() for line in str(err).splitlines() if "GLOBAL" in line), "")
            raise InterleaveError(
                f"{path}: refused to load: it holds objects beyond tensors and plain values, which loading "
                f"would run as code ({detail[:200] or 'weights_only load failed'}); only load checkpoints you trust"
            ) from None
        raise InterleaveError(f"{path}: not a complete checkpoint ({err}); {_alternatives(path)}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise InterleaveError(
            f"{path}: not a complete checkpoint ({reason}); a kill during its save or a copy cut short leaves "
            f"such a file; {_alternatives(path)}"
        ) from None


def _alternatives(path: Path) -> str:
    intact = intact_checkpoints(path.parent, exclude=path)
    if not intact:
        return "no intact checkpoint lies beside it"
    return f"intact ones beside it, newest first: {', '.join(str(p) for p in intact[:3])}"
