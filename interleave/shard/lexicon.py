"""The lexicon of a SHARD: each AudioSet word's WordNet sense, synonyms, hypernyms and related lemmas.

A lexicon can be stored as JSON, so that a SHARD is assembled without WordNet; curated overrides
replace WordNet's choice where it is wrong, each with its reason.
"""


from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nltk.corpus.reader.wordnet import Synset, WordNetCorpusReader, WordNetError

from interleave.errors import InterleaveError
from interleave.files import write_text_atomic

# --- the lexicon: words, their senses, synonyms and hypernyms ----------------------------

# Sense choice (see lexicon_entry): WordNet's first sense stays when its hypernym closure reaches
# DEFAULT_ROOTS or DEFAULT_SOURCE_ROOTS; otherwise the first sense reaching DEFAULT_ROOTS wins.
# Sources are only a reason to keep the first sense: searched for, "device" would turn "dog"
# into a pawl and "wind" into a wind instrument.
DEFAULT_ROOTS: tuple[str, ...] = (
    "sound.n.01",  # the auditory effect produced by a given cause
    "sound.n.02",  # the sensation of hearing (tone, noise as heard)
    "sound.n.03",  # mechanical vibrations
    "sound.n.04",  # an audible event (tick, whistle, buzz, beep, noise, ...)
    "noise.n.01",
    "signal.n.01",  # signals and alarms (siren as a warning signal)
)
DEFAULT_SOURCE_ROOTS: tuple[str, ...] = ("acoustic_device.n.01", "musical_instrument.n.01", "device.n.01")
# Hypernym candidates too generic to ask about; the walk goes through them without taking them.
DEFAULT_STOPLIST: tuple[str, ...] = (
    "entity", "physical entity", "abstraction", "abstract entity", "object", "physical object",
    "whole", "unit", "thing", "matter", "psychological feature", "attribute", "relation", "measure",
    "group", "grouping", "event", "act", "human action", "artifact", "artefact", "instrumentality",
    "causal agent", "cause",
)  # fmt: skip

_OVERRIDE_KEYS = {"synset", "word", "synonyms", "hypernyms", "skip", "note"}


@dataclass(frozen=True)
class Entry:
    """A word of the lexicon: its candidates and every WordNet lemma related to it under any sense.

    ``related`` (lower case, spaces) is what a negative candidate must avoid; ``override`` says
    why curated data replaced WordNet's choice, when it did.
    """

    label: str
    word: str
    synonyms: tuple[str, ...]
    hypernyms: tuple[str, ...]
    related: frozenset[str] = field(default_factory=frozenset)
    synset: str | None = None
    override: str | None = None

    def candidates(self, relation: str) -> tuple[str, ...]:
        return self.synonyms if relation == "synonym" else self.hypernyms


@dataclass(frozen=True)
class Skipped:
    """A word left out of a lexicon or a SHARD, and why."""

    label: str
    reason: str


def norm(text: str) -> str:
    """Comparison form of a lemma or candidate: lower case, underscores as spaces."""
    return " ".join(text.replace("_", " ").lower().split())


def alternatives(label: str) -> list[str]:
    """The comma-separated alternatives of an AudioSet display name: "Beep, bleep" -> ["beep", "bleep"]."""
    return [norm(a) for a in label.split(",") if a.strip()]


def _above(synset: Synset) -> list[Synset]:
    """The synsets directly above ``synset``: hypernyms and instance hypernyms."""
    return synset.hypernyms() + synset.instance_hypernyms()


def _closure(synset: Synset) -> list[Synset]:
    """``synset`` and every synset above it."""
    return [synset, *synset.closure(_above)]


def _related_lemmas(wn: WordNetCorpusReader, words: Iterable[str]) -> set[str]:
    """Every lemma of every noun sense of ``words`` and of everything above those senses."""
    related: set[str] = set()
    for word in words:
        related.add(norm(word))
        for synset in wn.synsets(word.replace(" ", "_"), pos="n"):
            related.update(norm(name) for above in _closure(synset) for name in above.lemma_names())
    return related


def _gloss_nouns(wn: WordNetCorpusReader, synset: Synset) -> set[str]:
    """Nouns (single words and two-word lemmas) of a synset's gloss, e.g. "tone" and "signal" for beep.n.01."""
    tokens = re.findall(r"[a-z][a-z'-]*", synset.definition().lower())
    found = set()
    for form in [*tokens, *(f"{a}_{b}" for a, b in zip(tokens, tokens[1:]))]:
        base = wn.morphy(form, "n")
        if base:
            found.add(norm(base))
    return found


def _choose_sense(wn: WordNetCorpusReader, alts: list[str], roots: set[str], source_roots: set[str]) -> Synset | None:
    """WordNet's first sense if it reaches ``roots`` or ``source_roots``, else the first reaching ``roots``, else the first."""
    senses = [synset for alt in alts for synset in wn.synsets(alt.replace(" ", "_"), pos="n")]
    if not senses:
        return None
    if (roots | source_roots) & {s.name() for s in _closure(senses[0])}:
        return senses[0]
    return next((sense for sense in senses if roots & {s.name() for s in _closure(sense)}), senses[0])


def _matched_word(synset: Synset | None, alts: list[str]) -> str:
    """The alternative that is a lemma of ``synset`` (WordNet's spelling), else the first alternative."""
    if synset is not None:
        names = {norm(n): n.replace("_", " ") for n in synset.lemma_names()}
        for alt in alts:
            if alt in names:
                return names[alt]
    return alts[0]


def _hypernym_lemmas(synset: Synset, exclude: set[str], stop: set[str]) -> list[str]:
    """First lemma of each synset above ``synset``, breadth first, minus ``exclude`` and ``stop``."""
    out: list[str] = []
    seen, queue = {synset}, deque([synset])
    while queue:
        for above in _above(queue.popleft()):
            if above in seen:
                continue
            seen.add(above)
            queue.append(above)
            name = above.lemma_names()[0].replace("_", " ")
            if norm(name) not in stop and norm(name) not in exclude:
                exclude.add(norm(name))
                out.append(name)
    return out


def lexicon_entry(
    wn: WordNetCorpusReader,
    label: str,
    override: Mapping[str, Any] | None = None,
    *,
    n_synonyms: int = 2,
    n_hypernyms: int = 2,
    roots: Sequence[str] = DEFAULT_ROOTS,
    source_roots: Sequence[str] = DEFAULT_SOURCE_ROOTS,
    stoplist: Sequence[str] = DEFAULT_STOPLIST,
) -> Entry | Skipped:
    """The lexicon entry of one AudioSet label, or why it cannot have one.

    Each comma-separated alternative of the label is tried as a WordNet noun (alternatives in
    order, senses in WordNet's order). The sense is WordNet's first if its hypernym closure
    reaches ``roots`` (sounds) or ``source_roots`` (devices, instruments); otherwise the first
    sense reaching ``roots`` ("siren" is a warning signal, not a sea nymph; "tick" a sound, not
    an arachnid); otherwise WordNet's first ("dog"). Synonyms are the sense's other lemmas (neither the word
    nor another alternative), in WordNet's order; hypernyms the first lemma of each synset above
    it, breadth first, minus ``stoplist``. An ``override`` ({"synset"}, {"synonyms",
    "hypernyms"}, {"word"}, {"skip": reason}, with an optional "note") wins over each automatic
    choice it names.

    ``related`` holds every lemma of every noun sense, and of all synsets above it, of: each
    alternative, the head (last word) of a multi-word alternative ("heart sounds" is a kind of
    "sound"), and each curated candidate; plus the nouns of the chosen sense's gloss (beep.n.01
    is "a short high tone produced as a signal": neither "tone" nor "signal" may be a negative).
    """
    override = dict(override or {})
    note = override.get("note")
    if "skip" in override:
        return Skipped(label, f"override: {override['skip']}")
    alts = alternatives(label)
    if not alts:
        return Skipped(label, "empty label")
    if "synset" in override:
        try:
            synset: Synset | None = wn.synset(override["synset"])
        except (WordNetError, ValueError) as err:
            raise InterleaveError(f"override for {label!r}: no WordNet synset {override['synset']!r} ({err})") from err
    else:
        synset = _choose_sense(wn, alts, set(roots), set(source_roots))
    curated = [c for key in ("synonyms", "hypernyms") for c in override.get(key, [])]
    if synset is None and not ("synonyms" in override and "hypernyms" in override):
        return Skipped(label, "no WordNet noun for " + " or ".join(repr(a) for a in alts))
    word = override.get("word") or _matched_word(synset, alts)
    exclude = {norm(word), *alts}
    if "synonyms" in override:
        synonyms = list(override["synonyms"])
    else:
        synonyms = []
        for name in synset.lemma_names():
            if norm(name) not in exclude:
                exclude.add(norm(name))
                synonyms.append(name.replace("_", " "))
    if "hypernyms" in override:
        hypernyms = list(override["hypernyms"])
    else:
        hypernyms = _hypernym_lemmas(synset, exclude | {norm(s) for s in synonyms}, {norm(s) for s in stoplist})
    where = f"{synset.name()}" if synset is not None else "the override"
    short = []
    for relation, found, needed in (("synonym", synonyms, n_synonyms), ("hypernym", hypernyms, n_hypernyms)):
        if len(found) < needed:
            listed = f" ({', '.join(found)})" if found else ""
            short.append(f"{len(found)} {relation}(s) in {where}{listed}, {needed} needed")
    if short:
        return Skipped(label, "; ".join(short))
    heads = [alt.split()[-1] for alt in alts if " " in alt]
    related = _related_lemmas(wn, [*alts, word, *heads, *curated])
    if synset is not None:
        related.update(norm(n) for above in _closure(synset) for n in above.lemma_names())
        related.update(_gloss_nouns(wn, synset))
    reason = None
    if override.keys() - {"note"}:
        reason = note or "curated: " + ", ".join(sorted(override.keys() - {"note"}))
    return Entry(
        label=label,
        word=word,
        synonyms=tuple(synonyms[:n_synonyms]),
        hypernyms=tuple(hypernyms[:n_hypernyms]),
        related=frozenset(related | {norm(c) for c in (*synonyms, *hypernyms)}),
        synset=synset.name() if synset is not None else None,
        override=reason,
    )


def build_lexicon(
    wn: WordNetCorpusReader,
    labels: Sequence[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    n_synonyms: int = 2,
    n_hypernyms: int = 2,
    roots: Sequence[str] = DEFAULT_ROOTS,
    source_roots: Sequence[str] = DEFAULT_SOURCE_ROOTS,
    stoplist: Sequence[str] = DEFAULT_STOPLIST,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Entry], list[Skipped]]:
    """Lexicon entries of ``labels`` (in order) and the labels that got none, with reasons;
    ``progress`` is called with 1 after each label."""
    unknown = [r for r in (*roots, *source_roots) if not _has_synset(wn, r)]
    if unknown:
        raise InterleaveError(f"sense roots not in this WordNet: {', '.join(unknown)}")
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for label in labels:
        result = lexicon_entry(
            wn, label, (overrides or {}).get(label), n_synonyms=n_synonyms, n_hypernyms=n_hypernyms,
            roots=roots, source_roots=source_roots, stoplist=stoplist,
        )  # fmt: skip
        (entries if isinstance(result, Entry) else skipped).append(result)
        if progress is not None:
            progress(1)
    return entries, skipped


def _has_synset(wn: WordNetCorpusReader, name: str) -> bool:
    try:
        wn.synset(name)
    except (WordNetError, ValueError):
        return False
    return True


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InterleaveError(f"cannot read {what} {path}: {err.strerror or err}") from err
    except ValueError as err:
        raise InterleaveError(f"{path}: not valid JSON ({err})") from err


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
        problems += [f"{label!r}: unknown key {k!r}" for k in spec if k not in _OVERRIDE_KEYS]
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
    "SHARD lexicon: per AudioSet label, the plain-text word, its WordNet sense, synonyms and hypernyms "
    "(the positive candidates) and 'related', every WordNet lemma of every noun sense of the word "
    "(and of a multi-word name's head and of curated candidates) and of all synsets above them, plus the "
    "nouns of the chosen sense's gloss; a negative candidate must avoid these. "
    "'override' says why curated data replaced WordNet's automatic choice; 'overrides' holds that data."
)


def lexicon_meta(wn: WordNetCorpusReader, n_synonyms: int, n_hypernyms: int, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """What a lexicon file states about how it was made."""
    return {
        "about": LEXICON_ABOUT,
        "wordnet_version": wn.get_version(),
        "n_synonyms": n_synonyms,
        "n_hypernyms": n_hypernyms,
        "roots": list(DEFAULT_ROOTS),
        "source_roots": list(DEFAULT_SOURCE_ROOTS),
        "stoplist": list(DEFAULT_STOPLIST),
        "overrides": dict(overrides),
    }


def entry_to_json(entry: Entry) -> dict[str, Any]:
    obj: dict[str, Any] = {"label": entry.label, "word": entry.word, "synset": entry.synset}
    obj["synonyms"], obj["hypernyms"] = list(entry.synonyms), list(entry.hypernyms)
    if entry.override:
        obj["override"] = entry.override
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


def write_lexicon(entries: Sequence[Entry], path: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Write a lexicon JSON: ``meta`` (WordNet version, parameters, notes) and the entries."""
    path = Path(path)
    write_text_atomic(path, json_text({**(meta or {}), "entries": [entry_to_json(e) for e in entries]}) + "\n")
    return path


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
        faults = [f"{k!r} must be a non-empty string" for k in ("label", "word") if not isinstance(obj.get(k), str) or not obj[k].strip()]
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
                related=frozenset(norm(r) for r in obj["related"]) | {norm(c) for c in obj["synonyms"] + obj["hypernyms"]},
                synset=obj.get("synset"),
                override=obj.get("override"),
            )
        )
    if problems:
        raise InterleaveError(f"{len(problems)} problem(s) in lexicon {path}:\n  " + "\n  ".join(problems))
    return entries
