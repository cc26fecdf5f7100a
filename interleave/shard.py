"""SHARD, the Synonym and Hypernym Audio Reasoning Dataset: its file, its answer parser, its builder.

A SHARD file is JSONL, one query per line (the contract other code reads through
:func:`read_shard`)::

    {"id": "synonym/siren/2/alarm", "task": "synonym", "label": "Siren", "word": "siren",
     "candidate": "alarm", "truth": "yes", "audio": "audio/siren_2.wav"}

``task`` is ``synonym``, ``hypernym`` or ``identity``; identity queries have no ``candidate`` and
no ``truth`` (the answer is ``label``); ``word`` is the plain-text word that replaces the audio
in the text-only control; ``audio`` is relative to the file's folder when the clip lies under it,
else absolute.

Building one (paper, section 3): each AudioSet word gets ``n_synonyms`` synonyms and
``n_hypernyms`` hypernyms from WordNet (a *lexicon*, which can be stored as JSON so that a SHARD
is assembled without WordNet) and a few clips holding only that sound; every clip gives one
identity query and, per relation, one "yes" query per candidate balanced by one "no" query whose
candidate belongs to another word and that WordNet confirms is no synonym or hypernym of this
word under any sense. Everything is seeded: same inputs and seed, byte-identical file.

Command line::

    python -m interleave.shard wordnet --from /usr/share/wordnet --out DIR
    python -m interleave.shard lexicon --words FILE --out LEXICON [--wordnet DIR] [--overrides JSON]
    python -m interleave.shard build --labels CSV --clips INDEX --out FILE [--wordnet DIR | --lexicon FILE] ...
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import sys
import warnings
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nltk.corpus.reader.wordnet import Synset, WordNetCorpusReader, WordNetError

from interleave.audio import load_fbank
from interleave.errors import AudioError, InterleaveError
from interleave.files import write_text_atomic

TASKS = ("identity", "synonym", "hypernym")
RELATIONS = ("synonym", "hypernym")
ANSWERS = ("yes", "no")

# --- answer parsing ---------------------------------------------------------------------

PARSERS = ("paper", "extended")  # parse_answer's rule sets; "paper" is the default everywhere

# The paper's rules ("paper"): the phrases its section on answer parsing names.
PAPER_LEADING_YES = ("yes",)
PAPER_LEADING_NO = ("no",)
PAPER_NEGATIVE_PHRASES = ("no", "not", "does not", "is not")  # and any word ending in "n't"
PAPER_AFFIRMATIVE_PHRASES = ("yes", "does")

# The wider rules ("extended"), this project's earlier default.
LEADING_YES = ("yes", "yeah", "yep", "yup", "correct", "true", "absolutely", "certainly", "definitely", "indeed", "sure")
LEADING_NO = ("no", "nope", "nah", "not", "false", "incorrect", "wrong", "never", "neither")
NEGATIVE_PHRASES = (
    "no", "not", "nope", "none", "nor", "neither", "never", "cannot", "does not", "is not", "are not",
    "unlikely", "different from", "differs", "dissimilar", "unrelated", "incorrect",
)  # fmt: skip
AFFIRMATIVE_PHRASES = (
    "yes", "yeah", "yep", "yup", "does", "indeed", "correct", "true", "certainly", "definitely",
    "absolutely", "of course", "a type of", "a kind of", "a form of", "a sort of", "is similar",
    "are similar", "similar to", "resembles", "same as", "synonym", "synonymous", "belongs to",
    "classified as", "falls under",
)  # fmt: skip

_LEAD = re.compile(r"""^[\s"'`*#_>“”‘’]*(?:(?:answer|response)\s*:[\s"'`*#_>“”‘’]*)?""", re.IGNORECASE)
_FIRST_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?", re.IGNORECASE)


def _phrase_pattern(phrases: Iterable[str], extra: str = "") -> re.Pattern[str]:
    """Whole-word, case-insensitive alternation of ``phrases`` (spaces match any whitespace)."""
    body = "|".join(r"\s+".join(map(re.escape, p.split())) for p in sorted(phrases, key=len, reverse=True))
    if extra:
        body += "|" + extra
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


_NEGATIVE = _phrase_pattern(NEGATIVE_PHRASES, extra=r"\w+n't")
_AFFIRMATIVE = _phrase_pattern(AFFIRMATIVE_PHRASES)

# rules name -> (leading yes words, leading no words, negative pattern, affirmative pattern)
_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...], re.Pattern[str], re.Pattern[str]]] = {
    "paper": (PAPER_LEADING_YES, PAPER_LEADING_NO, _phrase_pattern(PAPER_NEGATIVE_PHRASES, extra=r"\w+n't"),
              _phrase_pattern(PAPER_AFFIRMATIVE_PHRASES)),
    "extended": (LEADING_YES, LEADING_NO, _NEGATIVE, _AFFIRMATIVE),
}


def parse_answer(text: str, rules: str = "paper") -> str | None:
    """Map a generated answer to "yes", "no" or None (unparsed) with whole-word regular expressions.

    All matching is case-insensitive and on whole words (so "know", "note", "nothing", "Nobel"
    and "yesterday" match neither "no" nor "yes"); curly apostrophes count as "'". Both rule sets
    (``rules``, one of :data:`PARSERS`; another name raises ValueError) first strip leading
    whitespace, quotes, markdown (``*``, ``#``, ``_``, ``>``, backticks) and a leading "Answer:"
    or "Response:" label, then apply their rules in order, the first that applies winning.

    ``rules="paper"`` (the default), the paper's parser:

    1. A leading word yes gives "yes", a leading word no gives "no".
    2. Otherwise a negative phrase anywhere gives "no": no, not, does not, is not, and any word
       ending in "n't" (doesn't, isn't, can't, ...).
    3. Otherwise an affirmative phrase anywhere gives "yes": yes, does.
    4. Otherwise (empty text included) None.

    The paper says negative phrases "e.g." no, does not, is not map to No and affirmative ones
    "e.g." yes, does map to Yes: it gives examples, not its full lists, and does not state the
    leading-word rule (1) nor that negation wins over affirmation. Those readings, the exact lists
    above and the "n't" contractions are this project's. So "The sound is similar to a dog
    barking." is unparsed (None), which counts as not-yes.

    ``rules="extended"``, this project's earlier, wider rules (they read LTU's descriptive
    answers as yes more often, e.g. anything "similar to" or "a type of"):

    1. A leading yes or no decides. After stripping leading whitespace, quotes, markdown
       (``*``, ``#``, ``_``, ``>``, backticks) and a leading "Answer:" or "Response:" label, a
       first word among yes, yeah, yep, yup, correct, true, absolutely, certainly, definitely,
       indeed, sure gives "yes"; among no, nope, nah, not, false, incorrect, wrong, never,
       neither gives "no".
    2. Otherwise a negative phrase anywhere gives "no" (negation wins over affirmation):
       no, not, nope, none, nor, neither, never, cannot, does not, is not, are not, unlikely,
       different from, differs, dissimilar, unrelated, incorrect, and any word ending in "n't"
       (doesn't, isn't, can't, ...).
    3. Otherwise an affirmative phrase anywhere gives "yes": yes, yeah, yep, yup, does, indeed,
       correct, true, certainly, definitely, absolutely, of course, a type of, a kind of,
       a form of, a sort of, is similar, are similar, similar to, resembles, same as, synonym,
       synonymous, belongs to, classified as, falls under.
    4. Otherwise (empty text included) None.
    """
    if rules not in _RULES:
        raise ValueError(f"unknown answer parser rules {rules!r}; expected one of {', '.join(PARSERS)}")
    leading_yes, leading_no, negative, affirmative = _RULES[rules]
    text = text.replace("’", "'").replace("‘", "'")
    rest = text[_LEAD.match(text).end() :]
    first = _FIRST_WORD.match(rest)
    if first:
        word = first.group(0).lower()
        if word in leading_yes:
            return "yes"
        if word in leading_no:
            return "no"
    if negative.search(text):
        return "no"
    if affirmative.search(text):
        return "yes"
    return None


# --- the SHARD file ---------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One SHARD query; ``audio`` is absolute once read, ``where`` is "file:line" for messages."""

    id: str
    task: str
    label: str
    word: str
    audio: str
    candidate: str | None = None
    truth: str | None = None
    where: str = ""


_QUERY_KEYS = ("id", "task", "label", "word", "candidate", "truth", "audio")


def _slug(text: str) -> str:
    """Id form of a label or word: "Heart sounds, heartbeat" -> "heart_sounds_heartbeat"."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _query_from_json(line: str, where: str, folder: Path) -> Query:
    """Validate one line of a SHARD file; raises ValueError naming every fault of the line."""
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    faults = [f"unknown field {key!r}" for key in obj if key not in _QUERY_KEYS]
    for key in ("id", "task", "label", "word", "audio"):
        value = obj.get(key)
        if value is None:
            faults.append(f"missing field {key!r}")
        elif not isinstance(value, str) or not value.strip():
            faults.append(f"field {key!r} must be a non-empty string")
    task = obj.get("task")
    if isinstance(task, str) and task not in TASKS:
        faults.append(f"task {task!r} is none of {', '.join(TASKS)}")
    if task == "identity":
        faults += [f"an identity query has no {key!r}" for key in ("candidate", "truth") if key in obj]
    elif task in RELATIONS:
        candidate, truth = obj.get("candidate"), obj.get("truth")
        if not isinstance(candidate, str) or not candidate.strip():
            faults.append("missing field 'candidate'" if candidate is None else "field 'candidate' must be a non-empty string")
        if truth is None:
            faults.append("missing field 'truth'")
        elif truth not in ANSWERS:
            faults.append(f"truth {truth!r} is neither 'yes' nor 'no'")
    if faults:
        raise ValueError("; ".join(faults))
    audio = obj["audio"]
    absolute = audio if os.path.isabs(audio) else os.path.normpath(os.path.join(folder, audio))
    return Query(obj["id"], task, obj["label"], obj["word"], absolute, obj.get("candidate"), obj.get("truth"), where)


def read_shard(path: str | Path) -> list[Query]:
    """Read and validate a SHARD file; ``audio`` comes back absolute (resolved against the file's folder).

    Raises InterleaveError listing every malformed line, missing or bad field and duplicate id
    with file:line; nothing is dropped silently. Blank lines are allowed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InterleaveError(f"cannot read SHARD file {path}: {err}") from err
    folder = path.parent.absolute()
    queries: list[Query] = []
    first_line: dict[str, int] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            query = _query_from_json(line, where, folder)
        except ValueError as err:
            problems.append(f"{where}: {err}")
            continue
        if query.id in first_line:
            problems.append(f"{where}: duplicate id {query.id!r} (first on line {first_line[query.id]})")
            continue
        first_line[query.id] = number
        queries.append(query)
    if not queries and not problems:
        problems.append(f"{path}: holds no queries")
    if problems:
        raise InterleaveError(f"{len(problems)} problem(s) in SHARD file {path}:\n  " + "\n  ".join(problems))
    return queries


def _query_to_json(query: Query, folder: Path) -> str:
    audio = Path(query.audio)
    if audio.is_absolute() and audio.is_relative_to(folder):
        audio = audio.relative_to(folder)
    obj = {"id": query.id, "task": query.task, "label": query.label, "word": query.word}
    if query.task != "identity":
        obj["candidate"], obj["truth"] = query.candidate, query.truth
    obj["audio"] = audio.as_posix()
    return json.dumps(obj, ensure_ascii=False)


def write_shard(queries: Sequence[Query], path: str | Path) -> Path:
    """Write ``queries`` as a SHARD file atomically; audio under the file's folder is stored relative."""
    path = Path(path)
    ids = [q.id for q in queries]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise InterleaveError(f"cannot write {path}: duplicate query ids {dupes[:5]}")
    folder = Path(os.path.abspath(path.parent))
    write_text_atomic(path, "".join(_query_to_json(q, folder) + "\n" for q in queries))
    return path


def shard_counts(queries: Sequence[Query]) -> dict[str, Any]:
    """Query counts per task and truth, the numbers a SHARD report states."""
    counts: dict[str, Any] = {
        "queries": len(queries),
        "words": len({q.label for q in queries}),
        "clips": len({q.audio for q in queries}),
        "identity": sum(q.task == "identity" for q in queries),
    }
    for relation in RELATIONS:
        counts[relation] = {a: sum(q.task == relation and q.truth == a for q in queries) for a in ANSWERS}
    return counts


# --- WordNet ------------------------------------------------------------------------------

# The 45 lexicographer files of WordNet 3.0, numbered 00-44, as lexnames(5WN) lists them.
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
_POS_FILES = ("noun", "verb", "adj", "adv")
DATABASE_FILES: tuple[str, ...] = (
    *(f"index.{p}" for p in _POS_FILES),
    *(f"data.{p}" for p in _POS_FILES),
    *(f"{p}.exc" for p in _POS_FILES),
)
_OPTIONAL_FILES = ("index.sense", "cntlist.rev")


def lexnames_text() -> str:
    """The ``lexnames`` file Debian's wordnet-base leaves out: ``NN<TAB>name<TAB>category`` lines."""
    return "".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


class _OfflineWordNet(WordNetCorpusReader):
    """nltk's reader without its start-up map to nltk's own downloaded "wordnet" corpus.

    That map (for the multilingual OMW data, unused here) looks "corpora/wordnet" up on nltk's
    data path, so nltk would refuse any folder outside it and would read index.sense twice.
    """

    def map_wn(self, version: str = "wordnet") -> None:
        return None


def _wordnet_dir(folder: Path) -> Path:
    """The folder holding data.noun: ``folder`` itself, or its ``corpora/wordnet`` or ``wordnet``."""
    candidates = (folder, folder / "corpora" / "wordnet", folder / "wordnet")
    for candidate in candidates:
        if (candidate / "data.noun").is_file():
            return candidate
    if not folder.is_dir():
        raise InterleaveError(f"WordNet folder not found: {folder}")
    raise InterleaveError(f"no WordNet database in {folder}: no data.noun in {', '.join(map(str, candidates))}")


def open_wordnet(folder: str | Path) -> WordNetCorpusReader:
    """Open WordNet offline from an nltk data folder (holding ``corpora/wordnet/``) or the database folder."""
    root = _wordnet_dir(Path(folder))
    missing = [name for name in ("lexnames", *DATABASE_FILES) if not (root / name).is_file()]
    if missing:
        hint = ""
        if "lexnames" in missing:
            hint = (
                f" (Debian's wordnet-base leaves lexnames out: lay the folder out with "
                f"`python -m interleave.shard wordnet --from {root} --out DIR`)"
            )
        raise InterleaveError(f"WordNet folder {root} lacks {', '.join(missing)}{hint}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        try:
            return _OfflineWordNet(str(root), None)
        except (OSError, ValueError, AssertionError, IndexError, WordNetError) as err:
            raise InterleaveError(f"cannot read WordNet in {root}: {err}") from err


def find_wordnet() -> Path:
    """The first ``corpora/wordnet`` under $NLTK_DATA or nltk's data paths; InterleaveError if none."""
    import nltk.data

    bases = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    bases += [p for p in nltk.data.path if isinstance(p, str) and p not in bases]
    for base in bases:
        if (Path(base) / "corpora" / "wordnet" / "data.noun").is_file():
            return Path(base) / "corpora" / "wordnet"
    raise InterleaveError(
        "no WordNet found under $NLTK_DATA or nltk's data paths (" + ", ".join(bases) + "); pass --wordnet DIR "
        "(for Debian's /usr/share/wordnet, first run `python -m interleave.shard wordnet --from /usr/share/wordnet --out DIR`)"
    )


def prepare_wordnet(source: str | Path, dest: str | Path) -> Path:
    """Lay a WordNet database (e.g. Debian's /usr/share/wordnet) out as nltk data folder ``dest``.

    Copies the database files into ``dest/corpora/wordnet/`` and writes the ``lexnames`` file
    when the source lacks it; returns that folder, which :func:`open_wordnet` (given ``dest``
    or the folder) and ``NLTK_DATA=dest`` then accept.
    """
    src = _wordnet_dir(Path(source))
    missing = [name for name in DATABASE_FILES if not (src / name).is_file()]
    if missing:
        raise InterleaveError(f"WordNet source {src} lacks {', '.join(missing)}")
    out = Path(dest) / "corpora" / "wordnet"
    out.mkdir(parents=True, exist_ok=True)
    same = src.resolve() == out.resolve()
    for name in (*DATABASE_FILES, *_OPTIONAL_FILES):
        if not same and (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    if (src / "lexnames").is_file():
        if not same:
            shutil.copyfile(src / "lexnames", out / "lexnames")
    else:
        write_text_atomic(out / "lexnames", lexnames_text())
    return out


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
) -> tuple[list[Entry], list[Skipped]]:
    """Lexicon entries of ``labels`` (in order) and the labels that got none, with reasons."""
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


def _json_text(obj: Any, indent: str = "") -> str:
    """JSON with one key per line but lists of plain values on one line, so data files stay readable."""
    inner = indent + " "
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {_json_text(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[\n" + ",\n".join(inner + _json_text(v, inner) for v in obj) + f"\n{indent}]"
    return json.dumps(obj, ensure_ascii=False)


def write_lexicon(entries: Sequence[Entry], path: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """Write a lexicon JSON: ``meta`` (WordNet version, parameters, notes) and the entries."""
    path = Path(path)
    write_text_atomic(path, _json_text({**(meta or {}), "entries": [entry_to_json(e) for e in entries]}) + "\n")
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


# --- clips ------------------------------------------------------------------------------


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


# --- assembly ---------------------------------------------------------------------------


def negative_pool(entry: Entry, entries: Sequence[Entry], relation: str) -> list[str]:
    """Other words' ``relation`` candidates that WordNet does not relate to ``entry`` (sorted)."""
    pool = {}
    for other in entries:
        if other.label == entry.label:
            continue
        for candidate in other.candidates(relation):
            if norm(candidate) not in entry.related:
                pool.setdefault(norm(candidate), candidate)
    return [pool[key] for key in sorted(pool)]


def assemble_queries(
    entries: Sequence[Entry], clips_by_label: Mapping[str, Sequence[str | Path]], seed: int, clips_per_word: int = 4
) -> list[Query]:
    """SHARD queries of ``entries``: per word up to ``clips_per_word`` clips (seeded pick, sorted).

    Each clip gives one identity query and, per relation and positive candidate, a "yes" query
    and a "no" query whose candidate is drawn (seeded, without repeats within the clip) from the
    word's :func:`negative_pool`. Raises InterleaveError for a word without clips or with too
    small a pool (the builder skips such words first, with a reason).
    """
    if clips_per_word < 1:
        raise InterleaveError(f"clips_per_word must be at least 1, got {clips_per_word}")
    queries: list[Query] = []
    for entry in entries:
        clips = sorted(os.path.abspath(c) for c in clips_by_label.get(entry.label, ()))
        if not clips:
            raise InterleaveError(f"no clips for {entry.label!r}")
        pools = {relation: negative_pool(entry, entries, relation) for relation in RELATIONS}
        for relation, pool in pools.items():
            if len(pool) < len(entry.candidates(relation)):
                raise InterleaveError(
                    f"{entry.label!r}: {len(pool)} unrelated {relation} candidate(s) of other words for "
                    f"{len(entry.candidates(relation))} negative queries per clip"
                )
        rng = random.Random(f"shard/{seed}/clips/{entry.label}")
        chosen = sorted(rng.sample(clips, min(clips_per_word, len(clips))))
        name = _slug(entry.label)
        common = {"label": entry.label, "word": entry.word}
        for k, audio in enumerate(chosen):
            queries.append(Query(id=f"identity/{name}/{k}", task="identity", audio=audio, **common))
            for relation in RELATIONS:
                positives = entry.candidates(relation)
                negatives = random.Random(f"shard/{seed}/{relation}/{entry.label}/{k}").sample(pools[relation], len(positives))
                for positive, negative in zip(positives, negatives):
                    for candidate, truth in ((positive, "yes"), (negative, "no")):
                        query_id = f"{relation}/{name}/{k}/{_slug(candidate)}"
                        queries.append(Query(query_id, relation, audio=audio, candidate=candidate, truth=truth, **common))
    return queries


# --- building a SHARD -------------------------------------------------------------------


def report_path(shard: str | Path) -> Path:
    """Where a SHARD file's report goes: ``shard.jsonl`` -> ``shard.report.json``."""
    shard = Path(shard)
    return shard.with_name(shard.stem + ".report.json")


def write_report(path: str | Path, report: Mapping[str, Any]) -> Path:
    path = Path(path)
    write_text_atomic(path, _json_text(report) + "\n")
    return path


def _read_words(path: Path, labels: Mapping[str, str]) -> list[str]:
    """Display names, one per line (a mid is accepted); unknown names are errors with file:line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InterleaveError(f"cannot read word list {path}: {err}") from err
    names = set(labels.values())
    words, problems = [], []
    for number, line in enumerate(lines, start=1):
        token = line.strip()
        if not token or token.startswith("#"):
            continue
        name = token if token in names else labels.get(token)
        if name is None:
            problems.append(f"{path}:{number}: {token!r} is no AudioSet display name or mid")
        elif name not in words:
            words.append(name)
    if problems:
        raise InterleaveError(f"{len(problems)} problem(s) in word list {path}:\n  " + "\n  ".join(problems))
    return words


def _drop_poor_pools(entries: list[Entry]) -> tuple[list[Entry], list[Skipped]]:
    """Leave out words whose negative pools are too small, until every remaining one has enough."""
    skipped: list[Skipped] = []
    while True:
        poor = {}
        for entry in entries:
            for relation in RELATIONS:
                size, needed = len(negative_pool(entry, entries, relation)), len(entry.candidates(relation))
                if size < needed and entry.label not in poor:
                    poor[entry.label] = f"{size} unrelated {relation} candidate(s) among the other words, {needed} needed"
        if not poor:
            return entries, skipped
        skipped += [Skipped(label, reason) for label, reason in poor.items()]
        entries = [e for e in entries if e.label not in poor]


def audio_problem(path: str) -> str | None:
    """Why the evaluation could not use this clip (empty, undecodable, non-finite fbank), or None."""
    try:
        load_fbank(path)
    except AudioError as err:
        return err.reason
    return None


def readable_queries(
    entries: list[Entry], index: ClipIndex, seed: int, clips_per_word: int, problem: Callable[[str], str | None] = audio_problem
) -> tuple[list[Query], list[Entry], list[Skipped]]:
    """Assemble the queries, decoding each chosen clip; an unreadable one moves to ``index.unreadable``
    and the words are assembled again without it (a word short of clips, or of negatives, is left
    out). Only chosen clips are decoded, each once, so a large index costs no more than the SHARD."""
    verdicts: dict[str, str | None] = {}
    skipped: list[Skipped] = []
    while True:
        queries = assemble_queries(entries, index.by_label, seed, clips_per_word)
        chosen = {q.audio for q in queries}
        for audio in sorted(chosen - set(verdicts)):
            verdicts[audio] = problem(audio)
        bad = {audio for audio in chosen if verdicts[audio]}
        if not bad:
            return queries, entries, skipped
        for label, clips in index.by_label.items():
            for audio in [c for c in clips if os.path.abspath(c) in bad]:
                index.unreadable.append({"audio": audio, "label": label, "reason": verdicts[os.path.abspath(audio)]})
                clips.remove(audio)
        short = {e.label for e in entries if len(index.by_label.get(e.label, [])) < clips_per_word}
        skipped += [Skipped(label, f"{len(index.by_label.get(label, []))} readable single-label clip(s), "
                                   f"{clips_per_word} needed") for label in sorted(short)]
        entries, poor = _drop_poor_pools([e for e in entries if e.label not in short])
        skipped += poor


def _word_row(label: str, entry: Entry | None, reason: str | None, clips: int) -> dict[str, Any]:
    """One word's line in a SHARD report."""
    if entry is None:
        return {"label": label, "status": "skipped", "reason": reason}
    row = {"label": label, "status": "included", "word": entry.word, "synset": entry.synset, "clips": clips}
    return {**row, "override": entry.override} if entry.override else row


def _stored_entries(path: str | Path, labels: Sequence[str], n_synonyms: int, n_hypernyms: int) -> tuple[list[Entry], list[Skipped]]:
    """Entries of ``labels`` from a lexicon file, cut to the asked numbers of candidates."""
    stored = {e.label: e for e in read_lexicon(path)}
    entries, skipped = [], []
    for label in labels:
        entry = stored.get(label)
        if entry is None:
            skipped.append(Skipped(label, f"not in lexicon {path}"))
        elif len(entry.synonyms) < n_synonyms or len(entry.hypernyms) < n_hypernyms:
            skipped.append(Skipped(label, f"lexicon gives {len(entry.synonyms)} synonym(s) and {len(entry.hypernyms)} hypernym(s)"))
        else:
            entries.append(replace(entry, synonyms=entry.synonyms[:n_synonyms], hypernyms=entry.hypernyms[:n_hypernyms]))
    return entries, skipped


def build_shard(
    labels_csv: str | Path,
    clips: str | Path,
    out: str | Path,
    *,
    wordnet: str | Path | None = None,
    lexicon: str | Path | None = None,
    words: str | Path | None = None,
    overrides: str | Path | None = None,
    seed: int = 0,
    clips_per_word: int = 4,
    n_synonyms: int = 2,
    n_hypernyms: int = 2,
    lexicon_out: str | Path | None = None,
) -> dict[str, Any]:
    """Build a SHARD file from AudioSet labels, a clip index and WordNet (or a stored lexicon).

    Writes ``out``, its report (:func:`report_path`) and, if asked, the lexicon; returns the
    report. Words are those of ``words`` (display names or mids, one per line) or else every
    label with clips, in the labels CSV's order. A word needs ``clips_per_word`` single-label
    clips, ``n_synonyms`` synonyms, ``n_hypernyms`` hypernyms and enough unrelated negatives;
    otherwise it is skipped with its reason in the report. Raises InterleaveError (after
    writing the report) if no word is left.
    """
    if clips_per_word < 1 or n_synonyms < 1 or n_hypernyms < 1:
        raise InterleaveError("clips per word, synonyms and hypernyms must each be at least 1")
    if lexicon is not None and (wordnet is not None or overrides is not None):
        raise InterleaveError("a stored lexicon replaces WordNet: give either --lexicon or --wordnet/--overrides")
    labels = read_labels(labels_csv)
    index = read_clip_index(clips, labels)
    names = list(dict.fromkeys(labels.values()))
    requested = _read_words(Path(words), labels) if words is not None else [n for n in names if n in index.by_label]
    multi = Counter(label for clip in index.multi_label for label in clip["labels"])
    skipped: list[Skipped] = []
    with_clips = []
    for label in requested:
        found = len(index.by_label.get(label, []))
        if found >= clips_per_word:
            with_clips.append(label)
        else:
            reason = f"{found} single-label clip(s), {clips_per_word} needed ({multi[label]} multi-label clip(s) not eligible)"
            skipped.append(Skipped(label, reason))
    params: dict[str, Any] = {
        "labels": str(labels_csv), "clips": str(clips), "words": str(words) if words else None,
        "seed": seed, "clips_per_word": clips_per_word, "n_synonyms": n_synonyms, "n_hypernyms": n_hypernyms,
    }  # fmt: skip
    if lexicon is not None:
        entries, lacking = _stored_entries(lexicon, with_clips, n_synonyms, n_hypernyms)
        params["lexicon"] = str(lexicon)
    else:
        folder = Path(wordnet) if wordnet is not None else find_wordnet()
        wn = open_wordnet(folder)
        curated = read_overrides(overrides) if overrides is not None else {}
        unknown = [label for label in curated if label not in names]
        if unknown:
            raise InterleaveError(f"override file {overrides} names labels not in {labels_csv}: {', '.join(map(repr, unknown))}")
        entries, lacking = build_lexicon(wn, with_clips, curated, n_synonyms=n_synonyms, n_hypernyms=n_hypernyms)
        params.update(wordnet=str(folder), wordnet_version=wn.get_version(), overrides=str(overrides) if overrides else None)
        params.update(roots=list(DEFAULT_ROOTS), source_roots=list(DEFAULT_SOURCE_ROOTS), stoplist=list(DEFAULT_STOPLIST))
        if lexicon_out is not None:
            write_lexicon(entries, lexicon_out, lexicon_meta(wn, n_synonyms, n_hypernyms, curated))
    entries, poor = _drop_poor_pools(entries)
    queries, entries, unreadable = readable_queries(entries, index, seed, clips_per_word)
    skipped += lacking + poor + unreadable
    reasons = {s.label: s.reason for s in skipped}
    included = {e.label: e for e in entries}
    report = {
        "shard": str(out),
        "parameters": params,
        "counts": {
            **shard_counts(queries),
            "words_requested": len(requested),
            "words_included": len(entries),
            "words_skipped": len(skipped),
            "clips_single_label": sum(len(v) for v in index.by_label.values()),
            "clips_multi_label": len(index.multi_label),
            "clips_missing_audio": len(index.missing),
            "clips_unreadable_audio": len(index.unreadable),
            "unknown_labels": len(index.unknown_labels),
        },
        "words": [_word_row(w, included.get(w), reasons.get(w), len(index.by_label.get(w, []))) for w in requested],
        "multi_label_clips": index.multi_label,
        "missing_audio": index.missing,
        "unreadable_audio": index.unreadable,
        "unknown_labels": index.unknown_labels,
    }
    write_report(report_path(out), report)
    if not queries:
        raise InterleaveError(f"no word could be included in {out}; reasons in {report_path(out)}")
    write_shard(queries, out)
    return report


def _print_summary(report: Mapping[str, Any]) -> None:
    counts = report["counts"]
    print(
        f"[interleave] SHARD: {counts['words_included']} words ({counts['words_skipped']} skipped), "
        f"{counts['queries']} queries, {counts['clips_multi_label']} multi-label, "
        f"{counts['clips_missing_audio']} missing and {counts['clips_unreadable_audio']} unreadable clips left out "
        f"-> {report['shard']}",
        file=sys.stderr,
    )
    for clip in report["unreadable_audio"]:
        print(f"  unreadable {clip['audio']} ({clip['label']}): {clip['reason']}", file=sys.stderr)
    for word in report["words"]:
        if word["status"] == "skipped":
            print(f"  skipped {word['label']!r}: {word['reason']}", file=sys.stderr)


# --- command line -----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m interleave.shard {wordnet,lexicon,build} ...``."""
    parser = argparse.ArgumentParser(prog="python -m interleave.shard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("wordnet", help="lay a WordNet database (e.g. Debian's) out as an nltk data folder")
    prep.add_argument("--from", dest="source", type=Path, required=True, help="WordNet database folder, e.g. /usr/share/wordnet")
    prep.add_argument("--out", type=Path, required=True, help="nltk data folder to write (gets corpora/wordnet/)")

    lex = sub.add_parser("lexicon", help="write the lexicon (synonyms, hypernyms, related lemmas) of a word list")
    lex.add_argument("--words", type=Path, required=True, help="AudioSet display names, one per line")
    lex.add_argument("--out", type=Path, required=True)

    build = sub.add_parser("build", help="build a SHARD file from AudioSet labels, clips and WordNet")
    build.add_argument("--labels", type=Path, required=True, help="AudioSet class_labels_indices.csv")
    build.add_argument("--clips", type=Path, required=True, help="clip index: {label: [audio]} JSON or JSONL {audio, labels}")
    build.add_argument("--out", type=Path, required=True, help="SHARD file to write (the report goes beside it)")
    build.add_argument("--lexicon", type=Path, default=None, help="a stored lexicon to use instead of WordNet")
    build.add_argument("--words", type=Path, default=None, help="display names, one per line (default: every label with clips)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--clips-per-word", type=int, default=4)
    build.add_argument("--lexicon-out", type=Path, default=None, help="also write the lexicon used")
    for command in (lex, build):
        command.add_argument("--wordnet", type=Path, default=None, help="WordNet folder (default: $NLTK_DATA or nltk's data paths)")
        command.add_argument("--overrides", type=Path, default=None, help="curated override JSON {label: {...}}")
        command.add_argument("--synonyms", type=int, default=2, help="synonyms per word (default 2)")
        command.add_argument("--hypernyms", type=int, default=2, help="hypernyms per word (default 2)")
    args = parser.parse_args(argv)
    try:
        if args.command == "wordnet":
            out = prepare_wordnet(args.source, args.out)
            print(f"wrote {out}; use --wordnet {args.out} or NLTK_DATA={args.out}")
        elif args.command == "lexicon":
            _lexicon_command(args)
        else:
            report = build_shard(
                args.labels, args.clips, args.out, wordnet=args.wordnet, lexicon=args.lexicon, words=args.words,
                overrides=args.overrides, seed=args.seed, clips_per_word=args.clips_per_word,
                n_synonyms=args.synonyms, n_hypernyms=args.hypernyms, lexicon_out=args.lexicon_out,
            )  # fmt: skip
            _print_summary(report)
    except InterleaveError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _lexicon_command(args: argparse.Namespace) -> None:
    try:
        labels = [line.strip() for line in args.words.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise InterleaveError(f"cannot read word list {args.words}: {err}") from err
    labels = list(dict.fromkeys(label for label in labels if label and not label.startswith("#")))
    wn = open_wordnet(args.wordnet if args.wordnet is not None else find_wordnet())
    curated = read_overrides(args.overrides) if args.overrides is not None else {}
    entries, skipped = build_lexicon(wn, labels, curated, n_synonyms=args.synonyms, n_hypernyms=args.hypernyms)
    write_lexicon(entries, args.out, lexicon_meta(wn, args.synonyms, args.hypernyms, curated))
    print(f"[interleave] lexicon: {len(entries)} words ({len(skipped)} skipped) -> {args.out}", file=sys.stderr)
    for item in skipped:
        print(f"  skipped {item.label!r}: {item.reason}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
