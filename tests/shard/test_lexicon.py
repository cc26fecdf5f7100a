"""interleave.shard.lexicon: sense choice, synonyms and hypernyms in WordNet order, what counts as
related, overrides, and the lexicon file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.shard.lexicon import (
    Entry,
    Skipped,
    build_lexicon,
    lexicon_entry,
    read_lexicon,
    read_overrides,
    write_lexicon,
)


def test_sense_choice_prefers_sound_and_device_senses(lexicon) -> None:
    entries, _ = lexicon
    assert entries["Siren"].synset == "siren.n.02"  # not siren.n.01, the sea nymph
    assert entries["Tick"].synset == "tick.n.02"  # not tick.n.01, the arachnid
    assert entries["Drum"].synset == "drum.n.01"
    assert entries["Dog"].synset == "dog.n.01"  # no sound sense: WordNet's first, not the pawl (a device)
    assert entries["Heart sounds, heartbeat"].synset == "heartbeat.n.01"
    assert entries["Heart sounds, heartbeat"].word == "heartbeat"


def test_two_synonyms_and_two_hypernyms_in_wordnet_order(lexicon) -> None:
    entries, _ = lexicon
    got = {label: (e.synonyms, e.hypernyms) for label, e in entries.items()}
    assert got == {
        "Siren": (("alarm siren", "wailer"), ("alarm", "signal")),
        "Tick": (("ticking", "ticktock"), ("sound", "happening")),  # "event" is on the stoplist
        "Drum": (("membranophone", "tympan"), ("percussion instrument", "musical instrument")),
        "Dog": (("domestic dog", "Canis familiaris"), ("canine", "carnivore")),
        "Heart sounds, heartbeat": (("pulse", "pulsation"), ("periodic event", "happening")),
        "Buzz": (("bombilation", "bombination"), ("sound", "happening")),
    }


def test_related_covers_every_sense_and_what_is_above(lexicon) -> None:
    entries, _ = lexicon
    tick, siren = entries["Tick"].related, entries["Siren"].related
    assert {"tick", "ticking", "sound", "happening", "arachnid", "animal", "entity"} <= tick
    assert {"sea nymph", "spiritual being", "alarm", "signal", "acoustic device", "device"} <= siren
    assert "sound" in entries["Heart sounds, heartbeat"].related  # the head of "heart sounds"
    assert "sound" in entries["Siren"].related  # a noun of siren.n.02's gloss
    assert "membranophone" not in tick and "canine" not in siren


def test_words_lacking_relations_are_skipped_with_reasons(lexicon) -> None:
    _, skipped = lexicon
    assert skipped == {
        "Whistle": "1 synonym(s) in whistle.n.01 (whistling), 2 needed",
        "Chirp tone": "no WordNet noun for 'chirp tone'",
    }


def test_overrides_win(wn) -> None:
    device = lexicon_entry(wn, "Siren", {"synset": "siren.n.03", "synonyms": ["klaxon", "hooter"], "note": "device sense"})
    assert isinstance(device, Entry)
    assert device.synset == "siren.n.03" and device.synonyms == ("klaxon", "hooter") and device.override == "device sense"
    assert device.hypernyms == ("acoustic device", "device")
    assert {"klaxon", "hooter", "sea nymph"} <= device.related
    chirp = lexicon_entry(wn, "Chirp tone", {"synonyms": ["chirp", "frequency sweep"], "hypernyms": ["signal", "sound"]})
    assert isinstance(chirp, Entry) and chirp.synset is None and chirp.word == "chirp tone"
    assert chirp.override == "curated: hypernyms, synonyms"
    assert {"communication", "happening"} <= chirp.related  # above the curated hypernyms' senses
    assert lexicon_entry(wn, "Dog", {"skip": "not a demo sound"}) == Skipped("Dog", "override: not a demo sound")
    assert lexicon_entry(wn, "Tick", {"synset": "tick.n.01"}) == Skipped("Tick", "0 synonym(s) in tick.n.01, 2 needed")
    with pytest.raises(InterleaveError, match="override for 'Siren': no WordNet synset 'siren.n.09'"):
        lexicon_entry(wn, "Siren", {"synset": "siren.n.09"})


def test_fewer_candidates_asked_for(wn) -> None:
    whistle = lexicon_entry(wn, "Whistle", n_synonyms=1, n_hypernyms=1)
    assert isinstance(whistle, Entry) and whistle.synonyms == ("whistling",) and whistle.hypernyms == ("sound",)


def test_unknown_sense_root_is_an_error(wn) -> None:
    with pytest.raises(InterleaveError, match="sense roots not in this WordNet: noize.n.01, gadget.n.01"):
        build_lexicon(wn, ["Siren"], roots=("sound.n.01", "noize.n.01"), source_roots=("gadget.n.01",))


def test_source_roots_only_keep_the_first_sense(wn) -> None:
    siren = lexicon_entry(wn, "Siren", roots=("sound.n.01",), source_roots=("acoustic_device.n.01",))
    assert isinstance(siren, Skipped) and "siren.n.01" in siren.reason  # the device sense is not searched for
    drum = lexicon_entry(wn, "Drum", roots=("sound.n.04",), source_roots=())
    assert isinstance(drum, Entry) and drum.synset == "drum.n.01"  # no sound sense: the first


def test_read_overrides_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps({
        "Siren": {"synset": "siren.n.03"},
        "Tick": {"synonym": ["ticking"]},
        "Drum": {"skip": "no", "synonyms": ["x"]},
        "Dog": {"hypernyms": "canine"},
        "Buzz": "skip",
    }))  # fmt: skip
    with pytest.raises(InterleaveError) as err:
        read_overrides(path)
    message = str(err.value)
    assert message.startswith(f"4 problem(s) in override file {path}")
    for text in ("'Tick': unknown key 'synonym'", "'Drum': 'skip' cannot be combined", "'Dog': 'hypernyms' must be a list", "'Buzz': expected an object"):
        assert text in message
    path.write_text(json.dumps({"Siren": {"synset": "siren.n.03", "note": "device"}}))
    assert read_overrides(path) == {"Siren": {"synset": "siren.n.03", "note": "device"}}


def test_lexicon_roundtrip_and_validation(tmp_path: Path, lexicon) -> None:
    entries, _ = lexicon
    path = write_lexicon(list(entries.values()), tmp_path / "lexicon.json", {"wordnet_version": "3.0"})
    assert read_lexicon(path) == list(entries.values())
    data = json.loads(path.read_text())
    data["entries"][1]["synonyms"] = "ticking"
    del data["entries"][2]["related"]
    path.write_text(json.dumps(data))
    with pytest.raises(InterleaveError) as err:
        read_lexicon(path)
    assert "entries[1] ('Tick'): 'synonyms' must be a list" in str(err.value)
    assert "entries[2] ('Drum'): 'related' must be a list" in str(err.value)
