"""interleave.shard.wordnet: opening a WordNet database (the tiny fixture of tests/wordnet_fixture.py)
and preparing Debian's, which lacks lexnames."""

from __future__ import annotations

from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.shard.wordnet import LEXNAMES, open_wordnet, prepare_wordnet
from tests.wordnet_fixture import write_wordnet


def test_open_wordnet_takes_nltk_data_or_database_folder(wordnet_dir: Path, wn) -> None:
    assert wn.get_version() == "3.0"
    direct = open_wordnet(wordnet_dir / "corpora" / "wordnet")
    assert [s.name() for s in direct.synsets("siren")] == ["siren.n.01", "siren.n.02", "siren.n.03"]
    assert wn.synset("alarm.n.01").hypernyms()[0].name() == "signal.n.01"


def test_open_wordnet_errors_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InterleaveError, match="WordNet folder not found"):
        open_wordnet(tmp_path / "nowhere")
    with pytest.raises(InterleaveError, match="no WordNet database in"):
        open_wordnet(tmp_path)
    debian = write_wordnet(tmp_path / "debian", lexnames=False)
    with pytest.raises(InterleaveError, match=r"lacks lexnames \(Debian's wordnet-base leaves lexnames out"):
        open_wordnet(debian)
    (debian / "verb.exc").unlink()
    with pytest.raises(InterleaveError, match="lacks lexnames, verb.exc"):
        open_wordnet(debian)


def test_prepare_wordnet_writes_lexnames_and_result_opens(tmp_path: Path) -> None:
    source = write_wordnet(tmp_path / "usr_share_wordnet", lexnames=False)
    out = prepare_wordnet(source, tmp_path / "nltk_data")
    assert out == tmp_path / "nltk_data" / "corpora" / "wordnet"
    lines = (out / "lexnames").read_text().splitlines()
    assert len(lines) == len(LEXNAMES) == 45
    assert lines[0] == "00\tadj.all\t3" and lines[3] == "03\tnoun.Tops\t1"
    assert lines[29] == "29\tverb.body\t2" and lines[44] == "44\tadj.ppl\t3"
    assert (out / "data.noun").read_bytes() == (source / "data.noun").read_bytes()
    wn = open_wordnet(tmp_path / "nltk_data")
    assert wn.get_version() == "3.0" and wn.synset("tick.n.01").lexname() == "noun.event"
    (source / "data.verb").unlink()
    with pytest.raises(InterleaveError, match="lacks data.verb"):
        prepare_wordnet(source, tmp_path / "other")
