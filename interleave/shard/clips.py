"""A SHARD's clips: AudioSet's labels CSV and the clip index (which clip holds which sound), read
and checked; clips with several labels, unknown labels and missing files are listed, not used.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interleave.errors import InterleaveError

# The reviewed lexicon of AudioSet's labels (WordNet 3.0 with curated overrides), used by default.
SHIPPED_LEXICON = Path(__file__).with_name("audioset_lexicon.json")


def read_labels(path: str | Path) -> dict[str, str]:
    """AudioSet's labels CSV (``index,mid,display_name``) as {mid: display_name}."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InterleaveError(f"cannot read labels CSV {path}: {err}") from err
    if not rows or not {"mid", "display_name"} <= set(header):
        raise InterleaveError(f"{path}: expected a CSV with header index,mid,display_name and at least one row")
    labels, problems = {}, []
    for number, row in enumerate(rows, start=2):
        mid, name = (row.get("mid") or "").strip(), (row.get("display_name") or "").strip()
        if not mid or not name:
            problems.append(f"{path}:{number}: empty mid or display_name")
        else:
            labels[mid] = name
    if problems:
        raise InterleaveError(f"{len(problems)} problem(s) in labels CSV {path}:\n  " + "\n  ".join(problems))
    return labels


@dataclass
class ClipIndex:
    """Clips of an index, sorted out: usable single-label clips per display name, and the rest."""

    by_label: dict[str, list[str]]
    multi_label: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    unknown_labels: list[dict[str, str]] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)


def _index_rows(path: Path, text: str) -> list[tuple[str, str, list[str]]]:
    """(where, audio, labels) of a clip index, either {label: [audio, ...]} JSON or JSONL rows."""
    try:
        whole = json.loads(text)
    except ValueError:
        whole = None
    if isinstance(whole, dict) and all(isinstance(v, list) for v in whole.values()):
        rows, problems = [], []
        for label, paths in whole.items():
            for i, audio in enumerate(paths):
                if isinstance(audio, str) and audio.strip():
                    rows.append((f"{path}: {label}[{i}]", audio, [label]))
                else:
                    problems.append(f"{path}: {label}[{i}]: audio must be a non-empty string")
        if problems:
            raise InterleaveError(f"{len(problems)} problem(s) in clip index {path}:\n  " + "\n  ".join(problems))
        return rows
    rows, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except ValueError as err:
            problems.append(f"{where}: not valid JSON ({err})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object with 'audio' and 'labels'")
            continue
        audio, labels = obj.get("audio"), obj.get("labels")
        if isinstance(labels, str):
            labels = [part for part in labels.split(";")]
        faults = []
        if not isinstance(audio, str) or not audio.strip():
            faults.append("'audio' must be a non-empty string")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x.strip() for x in labels):
            faults.append("'labels' must be a non-empty list of strings (or one string with ';' separators)")
        if faults:
            problems.append(f"{where}: " + "; ".join(faults))
            continue
        rows.append((where, audio, [x.strip() for x in labels]))
    if problems:
        raise InterleaveError(f"{len(problems)} problem(s) in clip index {path}:\n  " + "\n  ".join(problems))
    return rows


def read_clip_index(path: str | Path, labels: Mapping[str, str]) -> ClipIndex:
    """Read a clip index; keep clips carrying exactly one known label whose audio exists.

    ``labels`` maps mids to display names (see :func:`read_labels`); an index may name a label
    by either. Relative audio paths start at the index's folder. Multi-label clips, missing
    audio and unknown labels are returned for the report, not used.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InterleaveError(f"cannot read clip index {path}: {err}") from err
    names = set(labels.values())
    folder = os.path.abspath(path.parent)
    clips: dict[str, dict[str, Any]] = {}
    index = ClipIndex(by_label={})
    for where, audio, tokens in _index_rows(path, text):
        resolved = audio if os.path.isabs(audio) else os.path.normpath(os.path.join(folder, audio))
        clip = clips.setdefault(resolved, {"where": where, "labels": []})
        for token in tokens:
            name = token if token in names else labels.get(token)
            if name is None:
                index.unknown_labels.append({"where": where, "label": token})
                name = token
            if name not in clip["labels"]:
                clip["labels"].append(name)
    for audio in sorted(clips):
        clip = clips[audio]
        if len(clip["labels"]) > 1:
            index.multi_label.append({"audio": audio, "labels": clip["labels"]})
            continue
        label = clip["labels"][0]
        if label not in names:
            continue  # already listed among unknown labels
        if not os.path.isfile(audio):
            index.missing.append({"where": clip["where"], "audio": audio, "label": label})
            continue
        index.by_label.setdefault(label, []).append(audio)
    return index
