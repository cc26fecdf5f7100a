"""A lexicon's file: reading and writing the lexicon JSON (entries, the words left out and why,
the curated overrides it was built with, its provenance), the override file and the stoplist, each
bad entry reported by name. `interleave.shard.lexicon` derives the entries from WordNet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nltk.corpus.reader.wordnet import WordNetCorpusReader

from interleave.errors import InterleaveError
from interleave.files import write_text_atomic
from interleave.shard.lexicon import DEFAULT_SOURCE_ROOTS
from interleave.shard.rules import (
    DEFAULT_ROOTS,
    DEFAULT_STOPLIST,
    GROUP_ABOUT,
    SOURCE_LEXFILES,
    Entry,
    Skipped,
    lexicon_counts,
    norm,
)

OVERRIDE_KEYS = {"synset", "word", "synonyms", "hypernyms", "group", "skip", "note"}  # an override's keys


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InterleaveError(f"cannot read {what} {path}: {err.strerror or err}") from err
    except ValueError as err:
        raise InterleaveError(f"{path}: not valid JSON ({err})") from err


def read_stoplist(path: str | Path) -> tuple[str, ...]:
    """A stoplist file: one hypernym per line; blank lines and '#' comments ignored."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InterleaveError(f"cannot read stoplist {path}: {err}") from err
    words = tuple(dict.fromkeys(norm(line) for line in lines if line.strip() and not line.strip().startswith("#")))
    if not words:
        raise InterleaveError(f"stoplist {path} names no word")
    return words


def read_overrides(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a curated override file {label: {...}} (or a lexicon holding one under "overrides")."""
    path = Path(path)
    data = _read_json(path, "override file")
    if isinstance(data, dict) and "entries" in data and isinstance(data.get("overrides"), dict):
        data = data["overrides"]
    if not isinstance(data, dict):
        raise InterleaveError(f"{path}: an override file is a JSON object {{label: {{...}}}}")
    problems = []
    for label, spec in data.items():
        if not isinstance(spec, dict):
            problems.append(f"{label!r}: expected an object")
            continue
        problems += [f"{label!r}: unknown key {k!r}" for k in spec if k not in OVERRIDE_KEYS]
        for key in ("synset", "word", "skip", "note"):
            if key in spec and (not isinstance(spec[key], str) or not spec[key].strip()):
                problems.append(f"{label!r}: {key!r} must be a non-empty string")
        for key in ("synonyms", "hypernyms"):
            value = spec.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                problems.append(f"{label!r}: {key!r} must be a list of non-empty strings")
        if "skip" in spec and spec.keys() - {"skip", "note"}:
            problems.append(f"{label!r}: 'skip' cannot be combined with {sorted(spec.keys() - {'skip', 'note'})}")
    if problems:
        raise InterleaveError(f"{len(problems)} problem(s) in override file {path}:\n  " + "\n  ".join(problems))
    return {label: dict(spec) for label, spec in data.items()}


LEXICON_ABOUT = (
    "SHARD lexicon: per AudioSet label, the plain-text word, its group (anthrophony, biophony, geophony), "
    "its WordNet sense (synset, lexicographer file, gloss), synonyms (lemmas of the sense) and hypernyms "
    "(lemmas of the synsets above it): the positive candidates, under the quality rules (no candidate "
    "naming the label, no stoplisted hypernym; 'rejected' lists what the rules refused); and 'related', "
    "every WordNet lemma of every noun sense of the word (and of a multi-word name's head and of the "
    "candidates) and of all synsets above them, plus the nouns of the chosen sense's gloss; a negative "
    "candidate must avoid these. 'override' says why curated data replaced WordNet's automatic choice; "
    "'overrides' holds that data; 'skipped' lists every label left out and why; 'counts' sums them up."
)


def lexicon_meta(
    wn: WordNetCorpusReader,
    n_synonyms: int,
    n_hypernyms: int,
    overrides: Mapping[str, Any],
    stoplist: Sequence[str] = DEFAULT_STOPLIST,
) -> dict[str, Any]:
    """What a lexicon file states about how it was made."""
    return {
        "about": LEXICON_ABOUT,
        "wordnet_version": wn.get_version(),
        "n_synonyms": n_synonyms,
        "n_hypernyms": n_hypernyms,
        "roots": list(DEFAULT_ROOTS),
        "source_roots": list(DEFAULT_SOURCE_ROOTS),
        "source_lexfiles": list(SOURCE_LEXFILES),
        "stoplist": list(stoplist),
        "groups": dict(GROUP_ABOUT),
        "overrides": dict(overrides),
    }


def entry_to_json(entry: Entry) -> dict[str, Any]:
    obj: dict[str, Any] = {"label": entry.label, "word": entry.word, "group": entry.group, "synset": entry.synset}
    obj.update(lexname=entry.lexname, gloss=entry.gloss)
    obj["synonyms"], obj["hypernyms"] = list(entry.synonyms), list(entry.hypernyms)
    if entry.override:
        obj["override"] = entry.override
    if entry.rejected:
        obj["rejected"] = list(entry.rejected)
    obj["related"] = sorted(entry.related)
    return obj


def json_text(obj: Any, indent: str = "") -> str:
    """JSON with one key per line but lists of plain values on one line, so data files stay readable."""
    inner = indent + " "
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {json_text(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[\n" + ",\n".join(inner + json_text(v, inner) for v in obj) + f"\n{indent}]"
    return json.dumps(obj, ensure_ascii=False)


def write_lexicon(
    entries: Sequence[Entry], path: str | Path, meta: Mapping[str, Any] | None = None, skipped: Sequence[Skipped] = ()
) -> Path:
    """Write a lexicon JSON: ``meta`` (WordNet version, parameters, notes), counts, the entries
    and the labels skipped with their reasons."""
    path = Path(path)
    body = {
        **(meta or {}),
        "counts": lexicon_counts(entries, skipped),
        "entries": [entry_to_json(e) for e in entries],
        "skipped": [{"label": s.label, "reason": s.reason} for s in skipped],
    }
    write_text_atomic(path, json_text(body) + "\n")
    return path


def read_skipped(path: str | Path) -> list[Skipped]:
    """The labels a lexicon file skips, with its reasons (none for an older file)."""
    data = _read_json(Path(path), "lexicon")
    rows = data.get("skipped", []) if isinstance(data, dict) else []
    return [Skipped(r["label"], r["reason"]) for r in rows if isinstance(r, dict) and {"label", "reason"} <= r.keys()]


def read_lexicon(path: str | Path) -> list[Entry]:
    """Read a lexicon JSON written by :func:`write_lexicon`; every bad entry is reported."""
    path = Path(path)
    data = _read_json(path, "lexicon")
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise InterleaveError(f"{path}: a lexicon is a JSON object with a list under 'entries'")
    entries, problems, labels = [], [], set()
    for index, obj in enumerate(data["entries"]):
        where = f"{path}: entries[{index}]"
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected an object")
            continue
        where += f" ({obj.get('label')!r})"
        faults = [
            f"{k!r} must be a non-empty string"
            for k in ("label", "word")
            if not isinstance(obj.get(k), str) or not obj[k].strip()
        ]
        for key in ("synonyms", "hypernyms", "related"):
            value = obj.get(key)
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                faults.append(f"{key!r} must be a list of non-empty strings")
        if not faults and obj["label"] in labels:
            faults.append("duplicate label")
        if faults:
            problems.append(f"{where}: " + "; ".join(faults))
            continue
        labels.add(obj["label"])
        entries.append(
            Entry(
                label=obj["label"],
                word=obj["word"],
                synonyms=tuple(obj["synonyms"]),
                hypernyms=tuple(obj["hypernyms"]),
                related=frozenset(norm(r) for r in obj["related"])
                | {norm(c) for c in obj["synonyms"] + obj["hypernyms"]},
                synset=obj.get("synset"),
                override=obj.get("override"),
                group=obj.get("group"),
                gloss=obj.get("gloss"),
                lexname=obj.get("lexname"),
                rejected=tuple(obj.get("rejected", ())),
            )
        )
    if problems:
        raise InterleaveError(f"{len(problems)} problem(s) in lexicon {path}:\n  " + "\n  ".join(problems))
    return entries
