"""The quality rules of a SHARD lexicon, without WordNet: a lexicon's word (`Entry`), how a label
parses into names, which lexicographer files a sound's sense may come from, which candidates are
uninformative, and the paper's three groups of sounds.

The lexicon (`interleave.shard.lexicon`) applies them while deriving entries from WordNet; the
builder and the tests apply them again to a stored lexicon, so a curated entry obeys the same rules.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from interleave.eval.query import slug

# WordNet's base forms of a word (nltk's morphy), when WordNet is at hand.
Lemmatizer = Callable[[str], Iterable[str]]

# Senses whose hypernym closure reaches one of these are sounds (chosen first).
DEFAULT_ROOTS: tuple[str, ...] = (
    "sound.n.01",  # the auditory effect produced by a given cause
    "sound.n.02",  # the sensation of hearing (tone, noise as heard)
    "sound.n.03",  # mechanical vibrations
    "sound.n.04",  # an audible event (tick, whistle, buzz, beep, noise, ...)
    "noise.n.01",
    "signal.n.01",  # signals and alarms (siren as a warning signal)
)
# Lexicographer files of a sound's *source* (an animal, a device, a phenomenon, an act, ...): a
# label without a sound sense takes its first sense from one of these. Food, states, feelings,
# cognition, time, quantities and the like never name what is heard.
SOURCE_LEXFILES: tuple[str, ...] = (
    "noun.animal", "noun.artifact", "noun.phenomenon", "noun.event", "noun.act", "noun.communication",
    "noun.person", "noun.object", "noun.substance", "noun.process", "noun.group", "noun.body",
)  # fmt: skip
# Hypernyms too generic to ask about (trivially true for any sound, or WordNet's top nodes); the
# hypernym walk goes through them without taking them.
DEFAULT_STOPLIST: tuple[str, ...] = (
    "entity", "physical entity", "abstraction", "abstract entity", "object", "physical object",
    "whole", "unit", "thing", "matter", "psychological feature", "attribute", "relation", "measure",
    "group", "grouping", "event", "act", "human action", "human activity", "artifact", "artefact",
    "instrumentality", "instrumentation", "causal agent", "cause", "causal agency",
    "happening", "occurrence", "occurrent", "natural event", "message", "content", "subject matter",
    "substance", "communication", "sound", "auditory sensation", "perception", "sensation",
    "sense experience", "sense impression", "cognition", "knowledge", "noesis", "phenomenon",
    "process", "physical process", "activity", "state", "living thing", "animate thing", "organism",
    "being", "property", "quality", "part", "portion", "component", "component part", "constituent",
    "device", "structure", "construction", "commodity", "trade good", "good", "system",
)  # fmt: skip
GROUPS: tuple[str, ...] = ("anthrophony", "biophony", "geophony")
GROUP_ABOUT = {
    "anthrophony": "sounds made by humans and their machines, instruments and devices",
    "biophony": "sounds made by animals",
    "geophony": "sounds of non-biological nature such as wind, water and thunder",
}
# Synsets whose closure marks a sense as an animal's (biophony) or nature's (geophony) sound.
ANIMAL_ROOTS: tuple[str, ...] = ("animal.n.01",)
NATURE_ROOTS: tuple[str, ...] = (
    "natural_phenomenon.n.01", "body_of_water.n.01", "atmospheric_phenomenon.n.01", "weather.n.01",
    "water.n.01", "water.n.06", "fire.n.01", "geological_phenomenon.n.01",
)  # fmt: skip


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
    group: str | None = None
    gloss: str | None = None
    lexname: str | None = None
    rejected: tuple[str, ...] = ()

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


def parse_label(label: str) -> tuple[list[str], list[str]]:
    """(names, qualifiers) of an AudioSet display name.

    Names are the comma-separated alternatives outside parentheses; a parenthetical is a list of
    more names when it holds a comma ("Roaring cats (lions, tigers)" -> roaring cats, lions,
    tigers), else a qualifier ("Rattle (instrument)"): part of the label but no name to look up.
    """
    names, qualifiers = [], []
    for inner in re.findall(r"\(([^()]*)\)", label):
        parts = [norm(p) for p in inner.split(",") if p.strip()]
        (names if len(parts) > 1 else qualifiers).extend(parts)
    outside = re.sub(r"\([^()]*\)", ",", label)
    if "(" in outside or ")" in outside:
        raise ValueError(f"unbalanced parentheses in label {label!r}")
    return [norm(p) for p in outside.split(",") if p.strip()] + names, qualifiers


def alternatives(label: str) -> list[str]:
    """The names of an AudioSet display name to look up: "Beep, bleep" -> ["beep", "bleep"]."""
    return parse_label(label)[0]


def _singulars(word: str) -> set[str]:
    """Plain English base forms of ``word`` (without WordNet): footsteps -> footstep, ashes -> ash,
    hissing -> hiss, snoring -> snore, running -> run, babbling -> babble."""
    out = {word}
    if word.endswith("ing") and len(word) > 5:
        stem = word[:-3]
        out |= {stem, stem + "e"} | ({stem[:-1]} if len(stem) > 2 and stem[-1] == stem[-2] else set())
    if word.endswith("ies") and len(word) > 4:
        out.add(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        out.add(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        out.add(word[:-1])
    return out


def forms(text: str, lemmatize: Lemmatizer | None = None) -> set[str]:
    """Comparison forms of a name or candidate: the whole, each word, and their singulars
    (plus WordNet's base forms when ``lemmatize`` maps a form to them)."""
    whole = norm(text).replace("-", " ")
    pieces = {whole, *whole.split()}
    out: set[str] = set()
    for piece in pieces:
        for form in _singulars(piece):
            out.add(form)
            out.update(norm(b) for b in (lemmatize(form) if lemmatize else ()))
    return out | {form.replace(" ", "") for form in out}


def label_forms(label: str, lemmatize: Lemmatizer | None = None) -> set[str]:
    """Every part of a label after lemmatization and case folding: names, qualifiers, their words."""
    names, qualifiers = parse_label(label)
    return set().union(*(forms(part, lemmatize) for part in names + qualifiers)) if names or qualifiers else set()


def whole_forms(text: str, lemmatize: Lemmatizer | None = None) -> set[str]:
    """Comparison forms of a whole candidate: case-folded, its singulars and WordNet base forms."""
    whole = norm(text).replace("-", " ")
    out = set(_singulars(whole))
    for form in list(out):
        out.update(norm(b) for b in (lemmatize(form) if lemmatize else ()))
    return out | {form.replace(" ", "") for form in out}  # "sea gull" is "seagull"


def candidate_problem(
    candidate: str,
    relation: str,
    label_parts: set[str],
    stoplist: Iterable[str],
    taken: Iterable[str] = (),
    lemmatize: Lemmatizer | None = None,
) -> str | None:
    """Why ``candidate`` may not be a ``relation`` candidate of a label, or None.

    The label as its own candidate (the candidate, lemmatized and case-folded, is a part of the
    label: "footstep" for "Walk, footsteps", "sound" for "Heart sounds, heartbeat"), a stoplisted
    hypernym, or the same form as a candidate already ``taken`` ("breakers" after "breaker").
    """
    mine = whole_forms(candidate, lemmatize)
    if mine & label_parts:
        return "names the label"
    if relation == "hypernym" and norm(candidate) in {norm(s) for s in stoplist}:
        return "stoplisted"
    if any(mine & whole_forms(t, lemmatize) for t in taken):
        return "same as another candidate"
    return None


def guess_group(closure_names: set[str], lexname: str | None) -> str:
    """The paper's group of a sense, from the synsets above it: animal -> biophony, natural
    phenomenon, water or weather -> geophony, else anthrophony (people, machines, instruments)."""
    if closure_names & set(ANIMAL_ROOTS) or lexname == "noun.animal":
        return "biophony"
    if closure_names & set(NATURE_ROOTS):
        return "geophony"
    return "anthrophony"


# --- a lexicon as a whole -------------------------------------------------------------------


def resolve_conflicts(entries: Sequence[Entry]) -> tuple[list[Entry], list[Skipped]]:
    """Keep the first of two entries sharing a sense or an id (slug of the label); skip the later,
    naming the one that keeps it. Found before any clip is decoded."""
    kept: list[Entry] = []
    skipped: list[Skipped] = []
    by_synset: dict[str, Entry] = {}
    by_slug: dict[str, Entry] = {}
    for entry in entries:
        first = by_synset.get(entry.synset or "") or by_slug.get(slug(entry.label))
        if first is not None:
            why = f"sense {entry.synset}" if first.synset == entry.synset else f"id {slug(entry.label)!r}"
            skipped.append(Skipped(entry.label, f"same {why} as {first.label!r}, which keeps it"))
            continue
        if entry.synset:
            by_synset[entry.synset] = entry
        by_slug[slug(entry.label)] = entry
        kept.append(entry)
    return kept, skipped


def entry_problems(
    entry: Entry, stoplist: Sequence[str] = DEFAULT_STOPLIST, lemmatize: Lemmatizer | None = None
) -> list[str]:
    """The quality rules a stored entry breaks (no WordNet needed; ``lemmatize`` adds WordNet's
    base forms): a candidate naming the label, a stoplisted hypernym, a repeated candidate, an
    unknown group."""
    problems = []
    parts = label_forms(entry.label, lemmatize) | {norm(entry.word)}
    taken: list[str] = []
    for relation in ("synonym", "hypernym"):
        for candidate in entry.candidates(relation):
            problem = candidate_problem(candidate, relation, parts, stoplist, taken, lemmatize)
            if problem is None and slug(candidate) in {slug(t) for t in taken}:
                problem = "same id as another candidate"
            if problem:
                problems.append(f"{relation} {candidate!r}: {problem}")
            taken.append(candidate)
    if entry.group is not None and entry.group not in GROUPS:
        problems.append(f"group {entry.group!r} is none of {', '.join(GROUPS)}")
    return problems


def lexicon_counts(entries: Sequence[Entry], skipped: Sequence[Skipped]) -> dict[str, Any]:
    """Words per group and labels skipped per reason (the reason's kind: its text before any detail)."""
    kinds = Counter(_reason_kind(s.reason) for s in skipped)
    return {
        "words": len(entries),
        "per_group": {g: sum(e.group == g for e in entries) for g in GROUPS},
        "skipped": len(skipped),
        "skipped_per_reason": dict(sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def _reason_kind(reason: str) -> str:
    """A skip reason without its particulars: "1 synonym(s) in x.n.01 (...)" -> "too few synonyms"."""
    if reason.startswith("override: same sense") or reason.startswith("same sense") or reason.startswith("same id"):
        return "same sense or id as another label"
    if reason.startswith("override"):
        return "curated skip"
    for kind, text in (
        ("no WordNet noun", "no WordNet noun"),
        ("no sense is a sound", "no sound-related sense"),
        ("synonym(s) in", "too few synonyms"),
        ("hypernym(s) in", "too few hypernyms"),
    ):
        if kind in reason:
            return text
    return reason.split(":")[0]
