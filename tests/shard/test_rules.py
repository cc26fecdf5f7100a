"""interleave.shard.rules: labels parsed into names, candidates compared with every part of the
label, the stoplist, groups, conflicts between entries and the counts of a lexicon, all without WordNet."""

from __future__ import annotations

import pytest

from interleave.shard.rules import (
    DEFAULT_STOPLIST,
    Entry,
    Skipped,
    alternatives,
    candidate_problem,
    entry_problems,
    guess_group,
    label_forms,
    lexicon_counts,
    parse_label,
    resolve_conflicts,
)


def test_parenthetical_lists_are_names_and_single_ones_qualifiers() -> None:
    assert parse_label("Roaring cats (lions, tigers)") == (["roaring cats", "lions", "tigers"], [])
    assert parse_label("Rattle (instrument)") == (["rattle"], ["instrument"])
    assert parse_label("Fire engine, fire truck (siren)") == (["fire engine", "fire truck"], ["siren"])
    assert alternatives("Beep, bleep") == ["beep", "bleep"]
    with pytest.raises(ValueError, match="unbalanced parentheses"):
        parse_label("Odd (label")


def test_label_forms_hold_every_part_lemmatized() -> None:
    parts = label_forms("Walk, footsteps")
    assert {"walk", "footsteps", "footstep"} <= parts
    assert {"heart sounds", "heart", "sound", "heartbeat"} <= label_forms("Heart sounds, heartbeat")
    assert {"hiss", "snore", "run", "babble"} <= label_forms("Hissing, snoring, running, babbling")
    assert "instrument" in label_forms("Rattle (instrument)")
    assert "goose" in label_forms("Geese", lemmatize=lambda form: ["goose"] if form == "geese" else [])


def test_candidate_problems() -> None:
    parts = label_forms("Walk, footsteps")
    assert candidate_problem("footstep", "synonym", parts, DEFAULT_STOPLIST) == "names the label"
    assert candidate_problem("Footsteps", "synonym", parts, DEFAULT_STOPLIST) == "names the label"
    assert (
        candidate_problem("sound", "hypernym", label_forms("Heart sounds, heartbeat"), DEFAULT_STOPLIST)
        == "names the label"
    )
    assert candidate_problem("happening", "hypernym", parts, DEFAULT_STOPLIST) == "stoplisted"
    assert candidate_problem("happening", "synonym", parts, DEFAULT_STOPLIST) is None  # the stoplist is for hypernyms
    assert candidate_problem("sea gull", "synonym", label_forms("Gull, seagull"), DEFAULT_STOPLIST) == "names the label"
    assert (
        candidate_problem("breakers", "synonym", parts, DEFAULT_STOPLIST, taken=["breaker"])
        == "same as another candidate"
    )
    assert candidate_problem("stride", "synonym", parts, DEFAULT_STOPLIST, taken=["breaker"]) is None
    for word in ("sound", "happening", "message", "entity", "event", "organism"):
        assert word in DEFAULT_STOPLIST


def test_groups() -> None:
    assert guess_group({"dog.n.01", "animal.n.01"}, "noun.animal") == "biophony"
    assert guess_group({"wind.n.01", "weather.n.01"}, "noun.phenomenon") == "geophony"
    assert guess_group({"drum.n.01", "device.n.01"}, "noun.artifact") == "anthrophony"


def _entry(label: str, synset: str, synonyms=("a", "b"), hypernyms=("c", "d"), group="anthrophony") -> Entry:
    return Entry(label, label.lower(), tuple(synonyms), tuple(hypernyms), synset=synset, group=group)


def test_conflicts_keep_the_first() -> None:
    entries = [_entry("Rock music", "rock.n.01"), _entry("Rock and roll", "rock.n.01"), _entry("Rock, music", "x.n.01")]
    kept, skipped = resolve_conflicts(entries)
    assert [e.label for e in kept] == ["Rock music"]
    assert skipped == [Skipped("Rock and roll", "same sense rock.n.01 as 'Rock music', which keeps it"),
                       Skipped("Rock, music", "same id 'rock_music' as 'Rock music', which keeps it")]  # fmt: skip


def test_entry_problems_need_no_wordnet() -> None:
    assert (
        entry_problems(_entry("Dog", "dog.n.01", ("domestic dog", "Canis familiaris"), ("canine", "domestic animal")))
        == []
    )
    bad = _entry(
        "Walk, footsteps", "f.n.01", ("footstep", "rock'n'roll"), ("rock 'n' roll", "happening"), group="music"
    )
    assert entry_problems(bad) == [
        "synonym 'footstep': names the label",
        "hypernym \"rock 'n' roll\": same as another candidate",
        "hypernym 'happening': stoplisted",
        "group 'music' is none of anthrophony, biophony, geophony",
    ]


def test_counts_per_group_and_reason() -> None:
    entries = [_entry("Dog", "d.n.01", group="biophony"), _entry("Wind", "w.n.01", group="geophony")]
    skipped = [Skipped("A", "no WordNet noun for 'a'"), Skipped("B", "1 synonym(s) in b.n.01 (x), 2 needed"),
               Skipped("C", "override: not a sound"), Skipped("D", "same sense d.n.01 as 'Dog', which keeps it")]  # fmt: skip
    assert lexicon_counts(entries, skipped) == {
        "words": 2,
        "per_group": {"anthrophony": 0, "biophony": 1, "geophony": 1},
        "skipped": 4,
        "skipped_per_reason": {"curated skip": 1, "no WordNet noun": 1, "same sense or id as another label": 1,
                               "too few synonyms": 1},
    }  # fmt: skip
