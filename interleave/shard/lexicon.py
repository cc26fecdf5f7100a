"""The lexicon of a SHARD: each AudioSet word's WordNet sense, synonyms, hypernyms and related lemmas.

A lexicon can be stored as JSON, so that a SHARD is assembled without WordNet (the package ships
one for AudioSet's labels, `audioset_lexicon.json`); curated overrides replace WordNet's choice
where it is wrong, each with its reason, and obey the quality rules of `interleave.shard.rules`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from nltk.corpus.reader.wordnet import Synset, WordNetCorpusReader, WordNetError

from interleave.errors import InterleaveError
from interleave.shard.rules import (
    DEFAULT_ROOTS,
    DEFAULT_STOPLIST,
    GROUPS,
    SOURCE_LEXFILES,
    Entry,
    Skipped,
    alternatives,
    candidate_problem,
    guess_group,
    label_forms,
    norm,
)

# --- the lexicon: words, their senses, synonyms and hypernyms ----------------------------

# Sources are only a reason to keep WordNet's first sense (see _choose_sense): searched for,
# "device" would turn "dog" into a pawl and "wind" into a wind instrument.
DEFAULT_SOURCE_ROOTS: tuple[str, ...] = ("acoustic_device.n.01", "musical_instrument.n.01", "device.n.01")


def _above(synset: Synset) -> list[Synset]:
    """The synsets directly above ``synset``: hypernyms and instance hypernyms, sorted by name.

    nltk returns them in the iteration order of a set of (pos, offset) tuples, which changes with
    PYTHONHASHSEED: unsorted, a synset with two hypernyms flips its hypernym pair between runs.
    """
    return sorted(synset.hypernyms() + synset.instance_hypernyms(), key=lambda s: s.name())


def _closure(synset: Synset) -> list[Synset]:
    """``synset`` and every synset above it."""
    return [synset, *synset.closure(_above)]


def _related_lemmas(wn: WordNetCorpusReader, words: Iterable[str]) -> set[str]:
    """Every lemma of every noun sense of ``words`` and of everything above those senses."""
    related: set[str] = set()
    for word in words:
        related.add(norm(word))
        for synset in _senses(wn, word):
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


def _senses(wn: WordNetCorpusReader, name: str) -> list[Synset]:
    return wn.synsets(name.replace(" ", "_"), pos="n")


def _choose_sense(
    wn: WordNetCorpusReader, alts: list[str], roots: set[str], source_roots: set[str], lexfiles: set[str]
) -> Synset | None:
    """The sense a label names: a sound or its source, never a food, a state or an abstraction.

    WordNet's first sense of the first name if it reaches ``roots`` (sounds) or ``source_roots``
    (devices, instruments) or is an animal; else the first sense (names in order, senses in
    WordNet's order) reaching ``roots``; else the first from a source's lexicographer file
    (``lexfiles``); else None.
    """
    senses = list(dict.fromkeys(synset for alt in alts for synset in _senses(wn, alt)))
    if not senses:
        return None
    first = _senses(wn, alts[0])[:1]
    if first and (
        (roots | source_roots) & {s.name() for s in _closure(first[0])} or first[0].lexname() == "noun.animal"
    ):
        return first[0]
    for sense in senses:
        if roots & {s.name() for s in _closure(sense)}:
            return sense
    return next((sense for sense in senses if sense.lexname() in lexfiles), None)


def _matched_word(synset: Synset | None, alts: list[str]) -> str:
    """The alternative that is a lemma of ``synset`` (WordNet's spelling), else the first alternative."""
    if synset is not None:
        names = {norm(n): n.replace("_", " ") for n in synset.lemma_names()}
        for alt in alts:
            if alt in names:
                return names[alt]
    return alts[0]


def _lemmatizer(wn: WordNetCorpusReader) -> Callable[[str], list[str]]:
    """WordNet's base forms of a noun ("geese" -> "goose"); the rules add plain English ones."""
    return lambda form: wn._morphy(form.replace(" ", "_"), "n")


def _pick(
    names: Iterable[str],
    relation: str,
    parts: set[str],
    stop: Sequence[str],
    taken: list[str],
    rejected: list[str],
    lemmatize: Callable[[str], list[str]],
    first_only: bool = False,
    others: Sequence[str] = (),
) -> None:
    """Append to ``taken`` the ``names`` that pass the quality rules against the label and
    ``others`` + ``taken`` (or only the first that does); record each one refused in ``rejected``."""
    for name in names:
        name = name.replace("_", " ")
        problem = candidate_problem(name, relation, parts, stop, [*others, *taken], lemmatize)
        if problem is None:
            taken.append(name)
            if first_only:
                return
        elif problem != "same as another candidate" or norm(name) not in {norm(t) for t in taken}:
            rejected.append(f"{relation} {name!r}: {problem}")


def _checked(
    curated: list[str],
    allowed: set[str],
    relation: str,
    label: str,
    where: str,
    parts: set[str],
    stop: Sequence[str],
    lemmatize: Callable[[str], list[str]],
) -> list[str]:
    """Curated candidates, each a WordNet lemma of ``allowed`` and passing the quality rules."""
    problems, taken = [], []
    for name in curated:
        problem = None if norm(name) in allowed else f"no lemma of {where}"
        problem = problem or candidate_problem(name, relation, parts, stop, taken, lemmatize)
        if problem:
            problems.append(f"{relation} {name!r}: {problem}")
        taken.append(name)
    if problems:
        raise InterleaveError(f"override for {label!r}: " + "; ".join(problems))
    return taken


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
    lexfiles: Sequence[str] = SOURCE_LEXFILES,
) -> Entry | Skipped:
    """The lexicon entry of one AudioSet label, or why it cannot have one.

    The label's names (:func:`interleave.shard.rules.parse_label`) are looked up as WordNet
    nouns and a sense chosen by :func:`_choose_sense` (skipped when none is a sound or its
    source). Synonyms are the sense's other lemmas in WordNet's order; hypernyms the first
    acceptable lemma of each synset above it, breadth first (parents sorted by name). A
    candidate naming a part of the label (lemmatized, case-folded), a stoplisted hypernym or a
    repeat is refused and recorded in ``rejected``. An ``override`` ({"synset"}, {"synonyms"},
    {"hypernyms"}, {"word"}, {"group"}, {"skip": reason}, with a "note" saying why) wins over
    each automatic choice it names; curated candidates must still be lemmas of the sense (synonyms)
    or of its hypernym closure (hypernyms) and pass the same rules.

    ``related`` holds every lemma of every noun sense, and of all synsets above it, of: each
    name, the head (last word) of a multi-word name ("heart sounds" is a kind of "sound"), and
    each candidate; plus the nouns of the chosen sense's gloss (beep.n.01 is "a short high tone
    produced as a signal": neither "tone" nor "signal" may be a negative).
    """
    override = dict(override or {})
    if "skip" in override:
        return Skipped(label, f"override: {override['skip']}")
    try:
        alts = alternatives(label)
    except ValueError as err:
        return Skipped(label, str(err))
    if not alts:
        return Skipped(label, "empty label")
    lemmatize = _lemmatizer(wn)
    parts = label_forms(label, lemmatize)
    if "synset" in override:
        try:
            synset: Synset | None = wn.synset(override["synset"])
        except (WordNetError, ValueError) as err:
            raise InterleaveError(f"override for {label!r}: no WordNet synset {override['synset']!r} ({err})") from err
    else:
        synset = _choose_sense(wn, alts, set(roots), set(source_roots), set(lexfiles))
    if synset is None:
        senses = list(dict.fromkeys(s for alt in alts for s in _senses(wn, alt)))
        if not senses:
            return Skipped(label, "no WordNet noun for " + " or ".join(repr(a) for a in alts))
        listed = ", ".join(f"{s.name()} ({s.lexname()})" for s in senses[:6])
        return Skipped(label, f"no sense is a sound or its source: {listed}")
    word = override.get("word") or _matched_word(synset, alts)
    parts |= {norm(word)}
    rejected: list[str] = []
    closure = _closure(synset)
    if "synonyms" in override:
        synonyms = _checked(
            override["synonyms"],
            {norm(n) for n in synset.lemma_names()},
            "synonym",
            label,
            synset.name(),
            parts,
            stoplist,
            lemmatize,
        )
    else:
        synonyms = []
        _pick(synset.lemma_names(), "synonym", parts, stoplist, synonyms, rejected, lemmatize)
    if "hypernyms" in override:
        above = {norm(n) for s in closure[1:] for n in s.lemma_names()}
        hypernyms = _checked(
            override["hypernyms"],
            above,
            "hypernym",
            label,
            f"the synsets above {synset.name()}",
            parts | {norm(s) for s in synonyms},
            stoplist,
            lemmatize,
        )
    else:
        hypernyms = []
        seen, queue = {synset}, deque([synset])
        while queue:
            for up in _above(queue.popleft()):
                if up not in seen:
                    seen.add(up)
                    queue.append(up)
                    _pick(
                        up.lemma_names(),
                        "hypernym",
                        parts,
                        stoplist,
                        hypernyms,
                        rejected,
                        lemmatize,
                        first_only=True,
                        others=synonyms,
                    )
    short = []
    for relation, found, needed in (("synonym", synonyms, n_synonyms), ("hypernym", hypernyms, n_hypernyms)):
        if len(found) < needed:
            listed = f" ({', '.join(found)})" if found else ""
            short.append(f"{len(found)} {relation}(s) in {synset.name()}{listed}, {needed} needed")
    if short:
        return Skipped(label, "; ".join(short) + (f" [refused: {'; '.join(rejected)}]" if rejected else ""))
    heads = [alt.split()[-1] for alt in alts if " " in alt]
    related = _related_lemmas(wn, [*alts, word, *heads, *synonyms, *hypernyms])
    related.update(norm(n) for above in closure for n in above.lemma_names())
    related.update(_gloss_nouns(wn, synset))
    group = override.get("group") or guess_group({s.name() for s in closure}, synset.lexname())
    if group not in GROUPS:
        raise InterleaveError(f"override for {label!r}: group {group!r} is none of {', '.join(GROUPS)}")
    reason = None
    if override.keys() - {"note"}:
        reason = override.get("note") or "curated: " + ", ".join(sorted(override.keys() - {"note"}))
    return Entry(
        label=label,
        word=word,
        synonyms=tuple(synonyms[:n_synonyms]),
        hypernyms=tuple(hypernyms[:n_hypernyms]),
        related=frozenset(related | {norm(c) for c in (*synonyms, *hypernyms)}),
        synset=synset.name(),
        override=reason,
        group=group,
        gloss=synset.definition(),
        lexname=synset.lexname(),
        rejected=tuple(rejected),
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
    lexfiles: Sequence[str] = SOURCE_LEXFILES,
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
            roots=roots, source_roots=source_roots, stoplist=stoplist, lexfiles=lexfiles,
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
