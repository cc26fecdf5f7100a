"""interleave.shard.lexicon: sense choice (sounds and their sources only), synonyms and hypernyms in
WordNet order under the quality rules, what counts as related, overrides, the lexicon file, and the
shipped AudioSet lexicon checked against the shipped WordNet 3.0 extract."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.eval.query import slug
from interleave.shard.build import SHIPPED_LEXICON
from interleave.shard.clips import read_labels
from interleave.shard.lexicon import Skipped, build_lexicon, lexicon_entry
from interleave.shard.lexicon_file import read_lexicon, read_overrides, read_skipped, read_stoplist
from interleave.shard.rules import DEFAULT_STOPLIST, GROUPS, Entry, entry_problems, norm, resolve_conflicts
from tests.helpers import LABELS_CSV


def test_sense_is_a_sound_or_its_source(lexicon, wn) -> None:
    entries, skipped = lexicon
    assert entries["Dog"].synset == "dog.n.01"  # the animal, WordNet's first sense; not the pawl
    assert entries["Drum"].synset == "drum.n.01" and entries["Wind"].synset == "wind.n.01"
    assert entries["Roaring cats (lions, tigers)"].synset == "lion.n.01"  # the parenthetical's names
    assert "siren.n.03" in skipped["Siren"]  # the warning signal, not the sea nymph (siren.n.01)
    assert "tick.n.01" in skipped["Tick"]  # the sound (WordNet 3.0's first sense), not the arachnid
    assert "chicken.n.02" in skipped["Chicken, rooster"]  # the bird, never chicken.n.01, the meat
    rub = lexicon_entry(wn, "Rub", n_synonyms=1, n_hypernyms=1)
    assert isinstance(rub, Entry) and rub.synset == "rub.n.02"  # the act, not hang-up.n.02 (an obstacle)
    cough = lexicon_entry(wn, "Cough")  # WordNet has cough only as a state: skipped, not guessed
    assert cough == Skipped("Cough", "no sense is a sound or its source: cough.n.01 (noun.state)")
    assert lexicon_entry(wn, "Chirp tone") == Skipped("Chirp tone", "no WordNet noun for 'chirp tone'")


def test_candidates_in_wordnet_order_under_the_rules(lexicon) -> None:
    entries, _ = lexicon
    got = {label: (e.synonyms, e.hypernyms, e.group) for label, e in entries.items()}
    assert got == {
        "Dog": (("domestic dog", "Canis familiaris"), ("canine", "domestic animal"), "biophony"),
        "Drum": (("membranophone", "tympan"), ("percussion instrument", "musical instrument"), "anthrophony"),
        "Car": (("auto", "automobile"), ("motor vehicle", "self-propelled vehicle"), "anthrophony"),
        "Piano": (("pianoforte", "forte-piano"), ("keyboard instrument", "percussion instrument"), "anthrophony"),
        "Wind": (("air current", "current of air"), ("weather", "atmospheric phenomenon"), "geophony"),
        "Roaring cats (lions, tigers)": (("king of beasts", "Panthera leo"), ("big cat", "feline"), "biophony"),
        "Frog": (("toad", "toad frog"), ("amphibian", "vertebrate"), "biophony"),
        "Rock music": (("rock 'n' roll", "rock-and-roll"), ("popular music", "music genre"), "anthrophony"),
        "Rock and roll": (("rock 'n' roll", "rock music"), ("popular music", "music genre"), "anthrophony"),
    }
    dog = entries["Dog"]
    assert dog.lexname == "noun.animal" and dog.gloss.startswith("a member of the genus Canis")
    assert "synonym 'dog': names the label" in dog.rejected and "hypernym 'organism': stoplisted" in dog.rejected
    assert "hypernym 'phenomenon': stoplisted" in entries["Wind"].rejected


def test_the_label_is_never_its_own_candidate(lexicon, wn) -> None:
    _, skipped = lexicon
    assert "synonym 'footstep': names the label" in skipped["Walk, footsteps"]  # "footsteps", lemmatized
    assert "hypernym 'sound': stoplisted" in skipped["Walk, footsteps"]
    with pytest.raises(InterleaveError, match="override for 'Walk, footsteps': synonym 'footstep': names the label"):
        lexicon_entry(wn, "Walk, footsteps", {"synset": "footfall.n.01", "synonyms": ["footstep", "step"]})


def test_overrides_are_wordnet_lemmas_under_the_same_rules(wn) -> None:
    frog = lexicon_entry(wn, "Frog", {"synonyms": ["anuran", "batrachian"], "note": "toads are another animal"})
    assert (
        isinstance(frog, Entry)
        and frog.synonyms == ("anuran", "batrachian")
        and frog.override == "toads are another animal"
    )
    cat = lexicon_entry(wn, "Cat", {"synset": "domestic_cat.n.01"})
    assert (
        isinstance(cat, Entry) and cat.synonyms == ("domestic cat", "house cat") and cat.override == "curated: synset"
    )
    assert cat.hypernyms == ("true cat", "domestic animal") and "hypernym 'cat': names the label" in cat.rejected
    with pytest.raises(InterleaveError, match="synonym 'toadstool': no lemma of frog.n.01"):
        lexicon_entry(wn, "Frog", {"synonyms": ["anuran", "toadstool"]})
    with pytest.raises(InterleaveError, match="hypernym 'reptile': no lemma of the synsets above frog.n.01"):
        lexicon_entry(wn, "Frog", {"hypernyms": ["amphibian", "reptile"]})
    with pytest.raises(InterleaveError, match="hypernym 'organism': stoplisted"):
        lexicon_entry(wn, "Frog", {"hypernyms": ["amphibian", "organism"]})
    with pytest.raises(InterleaveError, match="group 'music' is none of anthrophony, biophony, geophony"):
        lexicon_entry(wn, "Frog", {"group": "music"})
    with pytest.raises(InterleaveError, match="no WordNet synset 'frog.n.09'"):
        lexicon_entry(wn, "Frog", {"synset": "frog.n.09"})
    assert lexicon_entry(wn, "Dog", {"skip": "not a demo sound"}) == Skipped("Dog", "override: not a demo sound")
    drip = lexicon_entry(wn, "Drip", {"synset": "drip.n.01", "group": "geophony"})
    assert isinstance(drip, Entry) and drip.group == "geophony" and drip.synonyms == ("trickle", "dribble")


def test_stoplist_is_configurable(wn, tmp_path: Path) -> None:
    path = tmp_path / "stop.txt"
    path.write_text("# mine\nCanine\n\norganism\nliving_thing\n")
    assert read_stoplist(path) == ("canine", "organism", "living thing")
    dog = lexicon_entry(wn, "Dog", stoplist=read_stoplist(path))
    assert isinstance(dog, Entry) and dog.hypernyms == ("canid", "domestic animal")  # canine.n.02's next lemma
    path.write_text("# nothing\n")
    with pytest.raises(InterleaveError, match="names no word"):
        read_stoplist(path)


def test_related_covers_every_sense_and_what_is_above(lexicon) -> None:
    entries, _ = lexicon
    dog = entries["Dog"].related
    assert {"dog", "canine", "domestic animal", "pawl", "frump", "organism", "entity"} <= dog  # every sense of "dog"
    assert "sea nymph" not in dog and "membranophone" not in dog


def test_two_labels_with_one_sense_keep_the_first(lexicon) -> None:
    entries, _ = lexicon
    kept, skipped = resolve_conflicts([entries["Rock music"], entries["Dog"], entries["Rock and roll"]])
    assert [e.label for e in kept] == ["Rock music", "Dog"]
    assert skipped == [Skipped("Rock and roll", "same sense rock_'n'_roll.n.01 as 'Rock music', which keeps it")]


def test_fewer_candidates_asked_for(wn) -> None:
    cat = lexicon_entry(wn, "Cat", n_synonyms=1, n_hypernyms=1)
    assert isinstance(cat, Entry) and cat.synonyms == ("true cat",) and cat.hypernyms == ("feline",)


def test_unknown_sense_root_is_an_error(wn) -> None:
    with pytest.raises(InterleaveError, match="sense roots not in this WordNet: noize.n.01, widgit.n.01"):
        build_lexicon(wn, ["Siren"], roots=("sound.n.01", "noize.n.01"), source_roots=("widgit.n.01",))


# --- the shipped AudioSet lexicon -----------------------------------------------------------


SHIPPED = json.loads(SHIPPED_LEXICON.read_text(encoding="utf-8"))


def test_shipped_lexicon_accounts_for_every_audioset_label() -> None:
    labels = list(dict.fromkeys(read_labels(LABELS_CSV).values()))
    entries, skipped = read_lexicon(SHIPPED_LEXICON), read_skipped(SHIPPED_LEXICON)
    assert sorted(e.label for e in entries) + sorted(s.label for s in skipped) != []
    assert Counter([*(e.label for e in entries), *(s.label for s in skipped)]) == Counter(labels)  # each exactly once
    assert all(s.reason for s in skipped)
    counts = SHIPPED["counts"]
    assert counts["words"] == len(entries) >= 78 and counts["skipped"] == len(skipped) == 527 - len(entries)
    per_group = Counter(e.group for e in entries)
    assert counts["per_group"] == {g: per_group[g] for g in GROUPS}
    assert (
        per_group["anthrophony"] >= 20 and per_group["biophony"] >= 20
    )  # geophony: see the SHARD counts in docs/shard.md
    assert sum(counts["skipped_per_reason"].values()) == len(skipped)
    assert SHIPPED["wordnet_version"] == "3.0" and SHIPPED["stoplist"] == list(DEFAULT_STOPLIST)


def test_shipped_lexicon_names_only_wordnet_candidates(wn) -> None:
    """Every entry, overridden or not: a WordNet 3.0 synset, synonyms among its lemmas, hypernyms
    among the lemmas of the synsets above it; gloss and lexicographer file as WordNet says."""
    up = lambda s: s.hypernyms() + s.instance_hypernyms()  # noqa: E731
    for entry in read_lexicon(SHIPPED_LEXICON):
        synset = wn.synset(entry.synset)
        assert (entry.gloss, entry.lexname) == (synset.definition(), synset.lexname()), entry.label
        assert {norm(s) for s in entry.synonyms} <= {norm(n) for n in synset.lemma_names()}, entry.label
        above = {norm(n) for s in synset.closure(up) for n in s.lemma_names()}
        assert {norm(h) for h in entry.hypernyms} <= above, entry.label
        assert len(entry.synonyms) == len(entry.hypernyms) == 2, entry.label


def test_shipped_lexicon_passes_the_quality_rules(wn) -> None:
    entries = read_lexicon(SHIPPED_LEXICON)
    lemmatize = lambda form: wn._morphy(form.replace(" ", "_"), "n")  # noqa: E731
    for entry in entries:
        assert entry_problems(entry, lemmatize=lemmatize) == [], entry.label
        assert entry.group in GROUPS and (entry.override is None) == (entry.label not in SHIPPED["overrides"])
    for key in ("synset", "label"):  # ids unique across the whole lexicon
        values = [slug(getattr(e, key)) for e in entries]
        assert len(values) == len(set(values)), key
    assert all(spec.get("note") or spec.get("skip") for spec in SHIPPED["overrides"].values())


def test_shipped_lexicon_is_what_wordnet_and_its_overrides_give(wn) -> None:
    """Rebuilt from the extract with the file's overrides, every entry and skip comes back the same
    (``related`` aside: the extract lacks the full WordNet's other senses of gloss words)."""
    labels = list(dict.fromkeys(read_labels(LABELS_CSV).values()))
    entries, skipped = build_lexicon(wn, labels, read_overrides(SHIPPED_LEXICON))
    entries, conflicts = resolve_conflicts(entries)
    skipped = sorted([*skipped, *conflicts], key=lambda s: labels.index(s.label))
    fields = lambda e: (e.label, e.word, e.group, e.synset, e.synonyms, e.hypernyms, e.override, e.rejected)  # noqa: E731
    assert [fields(e) for e in entries] == [fields(e) for e in read_lexicon(SHIPPED_LEXICON)]
    assert skipped == read_skipped(SHIPPED_LEXICON)


def test_the_docs_give_the_shipped_lexicons_counts() -> None:
    """docs/shard.md states the shipped lexicon's counts; they must be the file's."""
    page = " ".join((Path(__file__).resolve().parents[2] / "docs" / "shard.md").read_text(encoding="utf-8").split())
    counts, per_group = SHIPPED["counts"], SHIPPED["counts"]["per_group"]
    assert f"**{counts['words']} words: {per_group['anthrophony']} anthrophony**" in page
    assert f"**{per_group['biophony']} biophony**" in page and f"**{per_group['geophony']} geophony**" in page
    reasons = counts["skipped_per_reason"]
    said = (
        f"Of the other {counts['skipped']} labels, {reasons['too few synonyms']} have too few synonyms, "
        f"{reasons['no WordNet noun']} no WordNet noun, {reasons['too few hypernyms']} too few hypernyms, "
        f"{reasons['no sound-related sense']} no sound-related sense, {reasons['curated skip']} were skipped by review"
    )
    assert said in page
