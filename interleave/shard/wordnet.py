"""WordNet 3.0 offline: Debian's database laid out for nltk's reader, opened without a download.
"""


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
