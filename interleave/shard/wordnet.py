"""WordNet 3.0 offline: Debian's database laid out for nltk's reader, opened without a download."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from nltk.corpus.reader.wordnet import WordNetCorpusReader, WordNetError

from interleave.errors import InterleaveError
from interleave.files import write_text_atomic

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
                f"`interleave shard wordnet --from {root} --out DIR`)"
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
        "(for Debian's /usr/share/wordnet, first run `interleave shard wordnet --from /usr/share/wordnet --out DIR`)"
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


def _header(path: Path) -> str:
    """The licence lines (each starting with two spaces) at the top of a WordNet database file."""
    lines = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.startswith("  "):
                break
            lines.append(line)
    return "".join(lines)


def _with_earlier_senses(wn: WordNetCorpusReader, wanted: set) -> set:
    """``wanted`` closed under hypernyms and, so that nltk names each synset as WordNet does (by its
    first lemma's sense number), under the earlier senses of every synset's first lemma."""
    todo, out = list(wanted), set()
    while todo:
        synset = todo.pop()
        if synset in out:
            continue
        out.add(synset)
        todo += synset.hypernyms() + synset.instance_hypernyms()
        senses = wn.synsets(synset.lemma_names()[0], pos="n")
        todo += senses[: senses.index(synset)] if synset in senses else []
    return out


def extract_wordnet(
    wn: WordNetCorpusReader, names: list[str], words: list[str], source: str | Path, dest: str | Path
) -> Path:
    """Write a small WordNet 3.0 database holding the noun synsets ``names`` and every noun sense
    of ``words``, with all synsets above them (hypernym and instance-hypernym links only), their
    lemmas, glosses and lexicographer files, and WordNet's licence. nltk reads it and names
    every synset as in the full WordNet. ``source`` is the full database (for its licence text
    and noun.exc)."""
    src = _wordnet_dir(Path(source))
    wanted = {wn.synset(n) for n in names} | {s for w in words for s in wn.synsets(w.replace(" ", "_"), pos="n")}
    synsets = sorted(_with_earlier_senses(wn, wanted), key=lambda s: s.offset())
    header = _header(src / "data.noun")
    lexfile = {name: i for i, name in enumerate(LEXNAMES)}

    def line(synset, offsets: dict) -> str:
        lemmas = " ".join(f"{n} 0" for n in synset.lemma_names())
        ups = [("@", u) for u in sorted(synset.hypernyms())] + [("@i", u) for u in sorted(synset.instance_hypernyms())]
        pointers = "".join(f" {sym} {offsets.get(u.name(), 0):08d} n 0000" for sym, u in ups)
        return (
            f"{offsets.get(synset.name(), 0):08d} {lexfile[synset.lexname()]:02d} n {len(synset.lemma_names()):02x} "
            f"{lemmas} {len(ups):03d}{pointers} | {synset.definition()}  \n"
        )

    offsets, position = {}, len(header.encode("utf-8"))
    for synset in synsets:  # offsets are fixed-width, so placeholder lines measure right
        offsets[synset.name()] = position
        position += len(line(synset, {}).encode("utf-8"))
    senses: dict[str, list] = {}
    for synset in synsets:
        for name in synset.lemma_names():
            senses.setdefault(name.lower(), [])
    for lemma in senses:
        senses[lemma] = [s for s in wn.synsets(lemma, pos="n") if s in set(synsets)]
    index = "".join(
        f"{lemma} n {len(found)} 1 @ {len(found)} 0 {' '.join(f'{offsets[s.name()]:08d}' for s in found)}  \n"
        for lemma, found in sorted(senses.items())
        if found
    )
    exceptions = [ln for ln in (src / "noun.exc").read_text(encoding="utf-8").splitlines() if ln.split()[-1] in senses]
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "data.noun": header + "".join(line(s, offsets) for s in synsets),
        "index.noun": header + index,
        "noun.exc": "".join(f"{ln}\n" for ln in exceptions),
        "lexnames": lexnames_text(),
        "data.adj": _header(src / "data.adj") or header,
    }
    for pos in ("verb", "adv"):
        files[f"data.{pos}"] = header
    for pos in ("verb", "adj", "adv"):
        files[f"index.{pos}"], files[f"{pos}.exc"] = header, ""
    for name, text in files.items():
        write_text_atomic(out / name, text)
    return out
