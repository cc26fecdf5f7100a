"""interleave.shard.wordnet: opening a WordNet database (the shipped extract of WordNet 3.0),
preparing Debian's, which lacks lexnames, and extracting a small database nltk reads like the whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.shard.wordnet import LEXNAMES, extract_wordnet, open_wordnet, prepare_wordnet
from tests.helpers import DEBIAN_WORDNET, WORDNET, copy_wordnet


def test_open_wordnet_takes_nltk_data_or_database_folder(wordnet_dir: Path, wn) -> None:
    assert wn.get_version() == "3.0"
    direct = open_wordnet(wordnet_dir / "corpora" / "wordnet")
    assert [s.name() for s in direct.synsets("siren")] == [
        "siren.n.01",
        "enchantress.n.01",
        "siren.n.03",
        "siren.n.04",
        "siren.n.05",
    ]
    assert wn.synset("siren.n.03").definition() == "a warning signal that is a loud wailing sound"
    # WordNet 3.0: tick.n.01 is the sound, the arachnid comes second, "ticktock" is a hyponym
    assert wn.synset("tick.n.01").lexname() == "noun.event" and wn.synset("tick.n.02").lexname() == "noun.animal"
    assert wn.synset("ticktock.n.01").hypernyms() == [wn.synset("tick.n.01")]
    assert sorted(s.name() for s in wn.synset("dog.n.01").hypernyms()) == ["canine.n.02", "domestic_animal.n.01"]


def test_open_wordnet_errors_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InterleaveError, match="WordNet folder not found"):
        open_wordnet(tmp_path / "nowhere")
    with pytest.raises(InterleaveError, match="no WordNet database in"):
        open_wordnet(tmp_path)
    debian = copy_wordnet(tmp_path / "debian", lexnames=False)
    with pytest.raises(InterleaveError, match=r"lacks lexnames \(Debian's wordnet-base leaves lexnames out"):
        open_wordnet(debian)
    (debian / "verb.exc").unlink()
    with pytest.raises(InterleaveError, match="lacks lexnames, verb.exc"):
        open_wordnet(debian)


def test_prepare_wordnet_writes_lexnames_and_result_opens(tmp_path: Path) -> None:
    source = copy_wordnet(tmp_path / "usr_share_wordnet", lexnames=False)
    out = prepare_wordnet(source, tmp_path / "nltk_data")
    assert out == tmp_path / "nltk_data" / "corpora" / "wordnet"
    lines = (out / "lexnames").read_text().splitlines()
    assert len(lines) == len(LEXNAMES) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1"
    assert lines[29] == "29\tverb.body\t2" and lines[44] == "44\tadj.ppl\t3"
    assert (out / "lexnames").read_text() == (WORDNET / "lexnames").read_text()
    assert (out / "data.noun").read_bytes() == (source / "data.noun").read_bytes()
    wn = open_wordnet(tmp_path / "nltk_data")
    assert wn.get_version() == "3.0" and wn.synset("tick.n.01").lexname() == "noun.event"
    (source / "data.verb").unlink()
    with pytest.raises(InterleaveError, match="lacks data.verb"):
        prepare_wordnet(source, tmp_path / "other")


def _same(full, part, names: list[str]) -> None:
    """Each synset reads the same from both: lemmas, gloss, lexicographer file, everything above."""
    up = lambda s: s.hypernyms() + s.instance_hypernyms()  # noqa: E731
    for name in names:
        a, b = full.synset(name), part.synset(name)
        assert (a.lemma_names(), a.definition(), a.lexname()) == (b.lemma_names(), b.definition(), b.lexname()), name
        assert {s.name() for s in a.closure(up)} == {s.name() for s in b.closure(up)}, name


def test_extract_keeps_names_lemmas_and_hypernyms(tmp_path: Path, wn) -> None:
    out = extract_wordnet(wn, ["tick.n.02", "chicken.n.02"], ["siren"], WORDNET, tmp_path / "small")
    small = open_wordnet(out)
    # tick.n.02 keeps its name because tick.n.01, the earlier sense, comes along
    _same(
        wn, small, ["tick.n.01", "tick.n.02", "chicken.n.01", "chicken.n.02", "siren.n.01", "siren.n.04", "animal.n.01"]
    )
    assert [s.name() for s in small.synsets("siren")] == [s.name() for s in wn.synsets("siren")]
    assert small.get_version() == "3.0" and "dog.n.01" not in {s.name() for s in small.all_synsets("n")}
    assert (out / "data.noun").read_text().startswith("  1 This software and database is being provided")
    assert len(list(small.all_synsets("n"))) < len(list(wn.all_synsets("n")))


@pytest.mark.skipif(not (DEBIAN_WORDNET / "data.noun").is_file(), reason="Debian's wordnet-base is not installed")
def test_shipped_extract_reads_as_debians_wordnet(tmp_path: Path, wn) -> None:
    full = open_wordnet(prepare_wordnet(DEBIAN_WORDNET, tmp_path / "nltk_data"))
    names = sorted(s.name() for s in wn.all_synsets("n"))
    _same(full, wn, names)
    for lemma in ("siren", "tick", "dog", "chicken", "drum", "wind"):
        assert [s.name() for s in full.synsets(lemma, pos="n")] == [s.name() for s in wn.synsets(lemma, pos="n")]
