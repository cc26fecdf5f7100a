"""Tests for interleave.shard: the answer parser, the SHARD file, the WordNet lexicon and the builder.

WordNet comes from tests/wordnet_fixture.py (a tiny database written per session), never from
the machine, so the tests run on CI machines without WordNet.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.shard.answers import (
    AFFIRMATIVE_PHRASES,
    LEADING_NO,
    LEADING_YES,
    NEGATIVE_PHRASES,
    PAPER_AFFIRMATIVE_PHRASES,
    PAPER_NEGATIVE_PHRASES,
    PARSERS,
    parse_answer,
)
from interleave.shard.wordnet import LEXNAMES, open_wordnet, prepare_wordnet
from interleave.shard.lexicon import (
    Entry,
    Skipped,
    build_lexicon,
    lexicon_entry,
    norm,
    read_lexicon,
    read_overrides,
    write_lexicon,
)
from interleave.shard.format import Query, read_shard, write_shard
from interleave.shard.build import (
    assemble_queries,
    build_shard,
    negative_pool,
    read_clip_index,
    read_labels,
    report_path,
)
from interleave.shard.cli import main
from tests.conftest import write_clip
from tests.wordnet_fixture import LABELS, write_wordnet

REPO = Path(__file__).resolve().parents[1]
LABELS_CSV = REPO / "tests" / "data" / "audioset_class_labels_indices.csv"

# --- answer parsing -----------------------------------------------------------------------

# The paper's rules (the default): a leading yes/no, then no / not / does not / is not / n't, then yes / does.
PAPER_PARSE_CASES = [
    # rule 1: a leading yes or no decides
    ("Yes", "yes"),
    ("yes.", "yes"),
    ("YES!", "yes"),
    ("No", "no"),
    ("no.", "no"),
    ("NO!!", "no"),
    ("Yes, it is not only a siren but also an alarm.", "yes"),
    ("Yes, it isn't a dog; it is a siren.", "yes"),
    ("No, it does.", "no"),
    ("No, it is similar to a siren.", "no"),
    ("**Yes**", "yes"),
    ("**No**, it is a dog.", "no"),
    ("# Yes", "yes"),
    ("> no", "no"),
    ("`yes`", "yes"),
    ('"Yes," the model says.', "yes"),
    ("“No.”", "no"),
    ("Answer: yes", "yes"),
    ("**Response:** No", "no"),
    ("  \n Yes  ", "yes"),
    # rule 2: a negative phrase anywhere, even when an affirmative one is there too
    ("It doesn't.", "no"),
    ("It does not.", "no"),
    ("The sound is not similar to an alarm.", "no"),
    ("This is not a siren.", "no"),
    ("There is no siren here.", "no"),
    ("This isn't a siren.", "no"),
    ("It can't be a dog.", "no"),
    ("It can’t be a dog.", "no"),  # curly apostrophe
    ("It won't be.", "no"),
    ("I don't know.", "no"),
    ("The sound does not resemble a drum, but yes, it does ring.", "no"),
    ("Nope, it isn't.", "no"),
    ("Not at all.", "no"),
    ("Is it a drum? NO.", "no"),
    ("IT IS NOT", "no"),
    ("The audio contains a high-pitched tone that rises and falls, which is not typical of a dog "
     "barking; it resembles a siren or an alarm, and it is a type of warning signal.", "no"),
    ("It might be, but I'm not sure.", "no"),  # hedged
    # rule 3: an affirmative phrase anywhere
    ("It does.", "yes"),
    ("It DOES sound like one.", "yes"),
    ("The answer is yes", "yes"),
    ("I think so, yes.", "yes"),
    ("Well... yes, probably.", "yes"),
    ("The recording, which lasts ten seconds and has a steady high-pitched tone, does match the "
     "description of an alarm.", "yes"),
    # rule 4: nothing the paper names (the extended rules read several of these as yes or no)
    ("The sound is similar to a dog barking.", None),
    ("The siren is a type of warning signal.", None),
    ("It resembles a drum.", None),
    ("Sure.", None),
    ("Correct.", None),
    ("True.", None),
    ("Absolutely.", None),
    ("Indeed it is an alarm.", None),
    ("Nope.", None),
    ("False.", None),
    ("It is unlikely to be a siren.", None),
    ("It is neither a drum nor a bell.", None),
    ("The sound is different from a whistle.", None),
    ("Possibly.", None),
    ("", None),
    ("   \n\t", None),
    ("I know.", None),
    ("Nothing to say.", None),
    ("Let me note this.", None),
    ("Yesterday it rained.", None),
    ("The Nobel prize.", None),
    ("It is a siren.", None),
    ("Doesnt matter.", None),  # no apostrophe: no "n't"
]


@pytest.mark.parametrize("text, expected", PAPER_PARSE_CASES)
def test_parse_answer_paper_rules(text: str, expected: str | None) -> None:
    assert parse_answer(text, rules="paper") == expected
    assert parse_answer(text) == expected  # the paper's rules are the default


def test_paper_table_is_large_and_covers_all_outcomes() -> None:
    assert len(PAPER_PARSE_CASES) >= 40
    assert Counter(expected for _, expected in PAPER_PARSE_CASES).keys() == {"yes", "no", None}


def test_the_two_parsers_read_ltus_descriptive_answers_differently() -> None:
    answer = "The sound is similar to a dog barking."
    assert parse_answer(answer, rules="paper") is None
    assert parse_answer(answer, rules="extended") == "yes"
    assert parse_answer("It does.", rules="paper") == parse_answer("It does.", rules="extended") == "yes"
    assert parse_answer("It doesn't.", rules="paper") == parse_answer("It doesn't.", rules="extended") == "no"


def test_unknown_parser_rules_are_refused() -> None:
    assert PARSERS == ("paper", "extended")
    with pytest.raises(ValueError, match="'loose'.*paper, extended"):
        parse_answer("Yes", rules="loose")


def test_paper_docstring_states_its_phrases_and_that_they_are_examples() -> None:
    doc = " ".join(parse_answer.__doc__.split())
    for phrase in (*PAPER_NEGATIVE_PHRASES, *PAPER_AFFIRMATIVE_PHRASES, "n't"):
        assert phrase in doc, phrase
    assert '"e.g."' in doc and "leading-word rule" in doc


# The extended rules (rules="extended"), this project's earlier default.
PARSE_CASES = [
    # rule 1: a leading yes or no decides
    ("Yes.", "yes"),
    ("yes", "yes"),
    ("YES!", "yes"),
    ("No.", "no"),
    ("no", "no"),
    ("NO", "no"),
    ("Nope, it isn't.", "no"),
    ("Yeah, that's right.", "yes"),
    ("**Yes**", "yes"),
    ("**No**, it is a dog.", "no"),
    ("# Yes", "yes"),
    ('"Yes," the model says.', "yes"),
    ("Answer: yes", "yes"),
    ("**Response:** No", "no"),
    ("  \n Yes  ", "yes"),
    ("Yes, it is not only a siren but also an alarm.", "yes"),
    ("No, it is similar to a siren.", "no"),
    ("Correct, it is a type of signal.", "yes"),
    ("Absolutely.", "yes"),
    ("Definitely a drum.", "yes"),
    ("Indeed it is an alarm.", "yes"),
    ("Not at all.", "no"),
    ("False.", "no"),
    ("Incorrect", "no"),
    # rule 2: a negative phrase anywhere, even when an affirmative one is there too
    ("The sound is not a type of vehicle.", "no"),
    ("It might be, but I'm not sure.", "no"),
    ("The sound doesn't resemble a drum.", "no"),
    ("It does not sound like an alarm.", "no"),
    ("This isn't a siren.", "no"),
    ("It can’t be a dog.", "no"),
    ("The audio cannot be classified as a bird.", "no"),
    ("It is unlikely to be a siren.", "no"),
    ("The sound is different from a whistle.", "no"),
    ("These two are unrelated.", "no"),
    ("It is neither a drum nor a bell.", "no"),
    ("I have never heard that.", "no"),
    ("It is not similar to a whistle.", "no"),
    ("There is no siren here.", "no"),
    ("Is it a drum? NO.", "no"),
    # rule 3: an affirmative phrase anywhere
    ("The sound is similar to an alarm.", "yes"),
    ("The siren is a type of warning signal.", "yes"),
    ("A tick is a KIND OF sound.", "yes"),
    ("It does.", "yes"),
    ("It indeed resembles a drum.", "yes"),
    ("Notably, it resembles a whistle.", "yes"),
    ("The sound belongs to the category of signals.", "yes"),
    ("The answer is yes", "yes"),
    ("Of course it is.", "yes"),
    # rule 4: nothing matched
    ("", None),
    ("   \n\t", None),
    ("The weather is nice today.", None),
    ("Nothing to say.", None),
    ("I know.", None),
    ("Let me note this.", None),
    ("Yesterday it rained.", None),
    ("The Nobel prize.", None),
    ("My eyes hurt.", None),
    ("It is a siren.", None),
]


@pytest.mark.parametrize("text, expected", PARSE_CASES)
def test_parse_answer(text: str, expected: str | None) -> None:
    assert parse_answer(text, rules="extended") == expected


def test_parse_table_is_large_and_covers_all_outcomes() -> None:
    assert len(PARSE_CASES) >= 40
    assert Counter(expected for _, expected in PARSE_CASES).keys() == {"yes", "no", None}


def test_parse_docstring_states_every_word_and_phrase() -> None:
    doc = " ".join(parse_answer.__doc__.split())
    for phrase in (*LEADING_YES, *LEADING_NO, *NEGATIVE_PHRASES, *AFFIRMATIVE_PHRASES):
        assert phrase in doc, phrase


# --- the SHARD file -------------------------------------------------------------------------


def _line(**fields) -> str:
    base = {"id": "synonym/siren/0/alarm", "task": "synonym", "label": "Siren", "word": "siren",
            "candidate": "alarm", "truth": "yes", "audio": "a.wav"}  # fmt: skip
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not ...})


def test_write_read_roundtrip(tmp_path: Path) -> None:
    inside, outside = tmp_path / "shard" / "audio" / "s0.wav", tmp_path / "elsewhere" / "s1.wav"
    queries = [
        Query("identity/siren/0", "identity", "Siren", "siren", str(inside)),
        Query("synonym/siren/0/alarm", "synonym", "Siren", "siren", str(inside), "alarm", "yes"),
        Query("hypernym/siren/1/sound", "hypernym", "Siren", "siren", str(outside), "sound", "no"),
    ]
    path = write_shard(queries, tmp_path / "shard" / "shard.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows[0] == {"id": "identity/siren/0", "task": "identity", "label": "Siren", "word": "siren", "audio": "audio/s0.wav"}
    assert list(rows[1]) == ["id", "task", "label", "word", "candidate", "truth", "audio"]
    assert rows[2]["audio"] == str(outside)
    back = read_shard(path)
    assert [q.id for q in back] == [q.id for q in queries]
    assert [q.audio for q in back] == [str(inside), str(inside), str(outside)]
    assert back[1].candidate == "alarm" and back[1].truth == "yes" and back[0].candidate is None
    assert back[2].where == f"{path}:3"
    assert not (tmp_path / "shard" / "shard.jsonl.tmp").exists()


def test_read_shard_lists_every_problem_with_file_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        _line(),  # 1: fine
        "{not json",  # 2
        _line(id="x2", word=...),  # 3: missing field
        _line(id="x3", task="antonym"),  # 4
        _line(id="x4", truth="maybe"),  # 5
        _line(),  # 6: duplicate id
        json.dumps({"id": "i", "task": "identity", "label": "Siren", "word": "siren", "audio": "a.wav", "truth": "yes"}),  # 7
        "[1, 2]",  # 8
        "",  # 9: blank lines are allowed
        _line(id="x5", candidate=...),  # 10
        _line(id="x6", colour="red"),  # 11
    ]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InterleaveError) as err:
        read_shard(path)
    message = str(err.value)
    for number, text in [
        (2, "Expecting"), (3, "missing field 'word'"), (4, "task 'antonym'"), (5, "truth 'maybe'"),
        (6, "duplicate id 'synonym/siren/0/alarm' (first on line 1)"), (7, "identity query has no 'truth'"),
        (8, "expected a JSON object"), (10, "missing field 'candidate'"), (11, "unknown field 'colour'"),
    ]:  # fmt: skip
        assert f"{path}:{number}: " in message and text in message, (number, message)
    assert f"{path}:1:" not in message and f"{path}:9:" not in message
    assert message.startswith(f"9 problem(s) in SHARD file {path}")


def test_read_shard_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(InterleaveError, match="cannot read SHARD file"):
        read_shard(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InterleaveError, match="holds no queries"):
        read_shard(tmp_path / "empty.jsonl")


def test_write_shard_rejects_duplicate_ids(tmp_path: Path) -> None:
    query = Query("identity/siren/0", "identity", "Siren", "siren", str(tmp_path / "a.wav"))
    with pytest.raises(InterleaveError, match="duplicate query ids"):
        write_shard([query, query], tmp_path / "s.jsonl")


# --- WordNet --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wordnet_dir(tmp_path_factory) -> Path:
    """An nltk data folder holding the fixture under corpora/wordnet."""
    root = tmp_path_factory.mktemp("nltk_data")
    write_wordnet(root / "corpora" / "wordnet")
    return root


@pytest.fixture(scope="session")
def wn(wordnet_dir):
    return open_wordnet(wordnet_dir)


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
    assert wn.get_version() == "3.0" and wn.synset("tick.n.02").lexname() == "noun.event"
    (source / "data.verb").unlink()
    with pytest.raises(InterleaveError, match="lacks data.verb"):
        prepare_wordnet(source, tmp_path / "other")


# --- the lexicon ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lexicon(wn) -> tuple[dict[str, Entry], dict[str, str]]:
    entries, skipped = build_lexicon(wn, LABELS)
    return {e.label: e for e in entries}, {s.label: s.reason for s in skipped}


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


# --- clips ----------------------------------------------------------------------------------


def _touch(path: Path) -> str:
    """A short, real WAV: the builder decodes every clip it chooses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_clip(path, seconds=0.1)
    return str(path)


def test_labels_csv_maps_mids_to_display_names() -> None:
    labels = read_labels(LABELS_CSV)
    assert labels["/m/03kmc9"] == "Siren" and labels["/m/01jg02"] == "Heart sounds, heartbeat"
    assert len(labels) == 527


@pytest.mark.parametrize("form", ["json", "jsonl"])
def test_clip_index_sorts_out_clips(tmp_path: Path, form: str) -> None:
    labels = read_labels(LABELS_CSV)
    for name in ("a", "b", "c", "d", "e"):
        _touch(tmp_path / "clips" / f"{name}.wav")
    if form == "json":
        index = {"Siren": ["clips/a.wav", "clips/c.wav", "clips/gone.wav"], "/m/0bt9lr": ["clips/b.wav", "clips/c.wav"],
                 "Martian": ["clips/e.wav"]}  # fmt: skip
        (tmp_path / "index.json").write_text(json.dumps(index))
    else:
        rows = [{"audio": "clips/a.wav", "labels": ["Siren"]}, {"audio": "clips/b.wav", "labels": "/m/0bt9lr"},
                {"audio": "clips/c.wav", "labels": "Siren;/m/0bt9lr"}, {"audio": "clips/gone.wav", "labels": ["/m/03kmc9"]},
                {"audio": "clips/e.wav", "labels": ["Martian"]}]  # fmt: skip
        (tmp_path / "index.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    index = read_clip_index(tmp_path / "index.json", labels)
    assert index.by_label == {"Siren": [str(tmp_path / "clips" / "a.wav")], "Dog": [str(tmp_path / "clips" / "b.wav")]}
    assert index.multi_label == [{"audio": str(tmp_path / "clips" / "c.wav"), "labels": ["Siren", "Dog"]}]
    assert [m["audio"] for m in index.missing] == [str(tmp_path / "clips" / "gone.wav")]
    assert [u["label"] for u in index.unknown_labels] == ["Martian"]


def test_clip_index_errors_name_lines(tmp_path: Path) -> None:
    path = tmp_path / "index.jsonl"
    path.write_text('{"audio": "a.wav", "labels": ["Siren"]}\n{"audio": 3, "labels": []}\nnope\n')
    with pytest.raises(InterleaveError) as err:
        read_clip_index(path, {})
    assert f"{path}:2: 'audio' must be a non-empty string; 'labels' must be" in str(err.value)
    assert f"{path}:3: not valid JSON" in str(err.value)


# --- assembly and building ------------------------------------------------------------------

MIDS = {"Dog": "/m/0bt9lr", "Tick": "/m/07qjznt"}  # named by mid in the index, as AudioSet does
CLIPS = {"Siren": 5, "Tick": 4, "Drum": 4, "Dog": 4, "Heart sounds, heartbeat": 4, "Whistle": 4, "Buzz": 2, "Chirp tone": 4}


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """Clips and a JSONL clip index for the fixture's words, with multi-label, missing and unknown ones."""
    rows = []
    for label, count in CLIPS.items():
        for k in range(count):
            name = f"{label.split(',')[0].lower().replace(' ', '_')}_{k}.wav"
            _touch(tmp_path / "audio" / name)
            rows.append({"audio": f"audio/{name}", "labels": [MIDS.get(label, label)]})
    _touch(tmp_path / "audio" / "mix_0.wav")
    _touch(tmp_path / "audio" / "mix_1.wav")
    rows += [{"audio": "audio/mix_0.wav", "labels": ["Siren", "/m/0bt9lr"]}, {"audio": "audio/mix_1.wav", "labels": "Drum;Speech"}]
    _touch(tmp_path / "audio" / "other.wav")
    rows += [{"audio": "audio/tick_9.wav", "labels": ["Tick"]}, {"audio": "audio/other.wav", "labels": ["Sirens"]}]
    (tmp_path / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def _build(corpus: Path, wordnet_dir: Path, out: str = "shard.jsonl", **kwargs) -> dict:
    return build_shard(LABELS_CSV, corpus / "clips.jsonl", corpus / out, wordnet=wordnet_dir, **kwargs)


def test_build_writes_a_balanced_shard(corpus: Path, wordnet_dir: Path, wn) -> None:
    report = _build(corpus, wordnet_dir)
    queries = read_shard(corpus / "shard.jsonl")
    included = ["Heart sounds, heartbeat", "Dog", "Drum", "Siren", "Tick"]  # the labels CSV's order
    assert list(dict.fromkeys(q.label for q in queries)) == included
    identity = [q for q in queries if q.task == "identity"]
    assert Counter(q.label for q in identity) == {label: 4 for label in included}
    assert len({q.audio for q in identity}) == len(identity) == 20
    assert all(Path(q.audio).is_file() and Path(q.audio).is_relative_to(corpus / "audio") for q in queries)
    assert '"audio": "audio/' in (corpus / "shard.jsonl").read_text()
    assert len(queries) == 20 * (1 + 2 * 2 + 2 * 2)
    groups = Counter((q.label, q.audio, q.task, q.truth) for q in queries if q.task != "identity")
    assert set(groups.values()) == {2}  # per clip and relation: 2 yes and 2 no
    assert report["counts"]["synonym"] == {"yes": 40, "no": 40} and report["counts"]["hypernym"] == {"yes": 40, "no": 40}
    assert "mix" not in " ".join(q.audio for q in queries)


def test_negatives_are_other_words_candidates_unrelated_in_wordnet(corpus: Path, wordnet_dir: Path, wn, lexicon) -> None:
    _build(corpus, wordnet_dir)
    entries, _ = lexicon
    for query in read_shard(corpus / "shard.jsonl"):
        if query.task == "identity":
            continue
        own = entries[query.label].candidates(query.task)
        if query.truth == "yes":
            assert query.candidate in own
            continue
        others = {c for e in entries.values() if e.label != query.label for c in e.candidates(query.task)}
        assert query.candidate in others and query.candidate not in own
        for alternative in query.label.lower().split(", "):
            for sense in wn.synsets(alternative.replace(" ", "_"), pos="n"):
                lemmas = {norm(n) for s in [sense, *sense.closure(lambda s: s.hypernyms())] for n in s.lemma_names()}
                assert norm(query.candidate) not in lemmas, (query.id, sense)


def test_report_names_every_skipped_word_and_clip(corpus: Path, wordnet_dir: Path) -> None:
    report = _build(corpus, wordnet_dir)
    assert report == json.loads(report_path(corpus / "shard.jsonl").read_text())
    assert report_path(corpus / "shard.jsonl") == corpus / "shard.report.json"
    words = {w["label"]: w for w in report["words"]}
    assert words["Siren"] == {"label": "Siren", "status": "included", "word": "siren", "synset": "siren.n.02", "clips": 5}
    assert words["Whistle"]["reason"] == "1 synonym(s) in whistle.n.01 (whistling), 2 needed"
    assert words["Chirp tone"]["reason"] == "no WordNet noun for 'chirp tone'"
    assert words["Buzz"]["reason"] == "2 single-label clip(s), 4 needed (0 multi-label clip(s) not eligible)"
    assert {w["status"] for w in report["words"]} == {"included", "skipped"} and len(words) == len(CLIPS)
    assert [c["labels"] for c in report["multi_label_clips"]] == [["Siren", "Dog"], ["Drum", "Speech"]]
    assert [m["audio"] for m in report["missing_audio"]] == [str(corpus / "audio" / "tick_9.wav")]
    assert [u["label"] for u in report["unknown_labels"]] == ["Sirens"]
    counts = report["counts"]
    assert (counts["words_requested"], counts["words_included"], counts["words_skipped"]) == (8, 5, 3)
    assert (counts["clips_multi_label"], counts["clips_missing_audio"], counts["unknown_labels"]) == (2, 1, 1)
    params = report["parameters"]
    assert params["seed"] == 0 and params["wordnet_version"] == "3.0" and params["clips_per_word"] == 4


def test_unreadable_chosen_clips_are_replaced_or_their_word_left_out_and_all_are_reported(
        corpus: Path, wordnet_dir: Path, capsys) -> None:
    first = _build(corpus, wordnet_dir, "a.jsonl")
    chosen = sorted({q.audio for q in read_shard(corpus / "a.jsonl") if q.label in ("Siren", "Dog")})
    siren = next(a for a in chosen if "siren" in a)
    dog = next(a for a in chosen if "dog" in a)
    (corpus / siren).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(64)))  # Siren has a 5th clip
    (corpus / dog).write_bytes(b"")  # Dog has exactly 4
    code = main(["build", "--labels", str(LABELS_CSV), "--clips", str(corpus / "clips.jsonl"),
                 "--out", str(corpus / "b.jsonl"), "--wordnet", str(wordnet_dir)])
    err = capsys.readouterr().err
    assert code == 0 and "2 unreadable clips left out" in err
    assert f"unreadable {corpus / siren} (Siren): cannot decode audio" in err
    assert f"unreadable {corpus / dog} (Dog): file is empty (0 bytes)" in err
    report = json.loads(report_path(corpus / "b.jsonl").read_text())
    assert sorted(u["audio"] for u in report["unreadable_audio"]) == sorted(str(corpus / a) for a in (siren, dog))
    assert report["counts"]["clips_unreadable_audio"] == 2
    words = {w["label"]: w for w in report["words"]}
    assert words["Dog"] == {"label": "Dog", "status": "skipped", "reason": "3 readable single-label clip(s), 4 needed"}
    assert words["Siren"]["status"] == "included"
    audio = {q.audio for q in read_shard(corpus / "b.jsonl")}
    assert str(corpus / siren) not in audio and len({a for a in audio if "siren" in a}) == 4
    assert first["counts"]["words_included"] == report["counts"]["words_included"] + 1


def test_build_is_deterministic_and_seeded(corpus: Path, wordnet_dir: Path) -> None:
    _build(corpus, wordnet_dir, "a.jsonl", seed=3)
    _build(corpus, wordnet_dir, "b.jsonl", seed=3)
    _build(corpus, wordnet_dir, "c.jsonl", seed=4)
    a, b, c = ((corpus / f"{n}.jsonl").read_bytes() for n in "abc")
    assert a == b and a != c


def test_build_from_a_stored_lexicon_needs_no_wordnet(corpus: Path, wordnet_dir: Path) -> None:
    _build(corpus, wordnet_dir, "a.jsonl", lexicon_out=corpus / "lexicon.json")
    report = build_shard(LABELS_CSV, corpus / "clips.jsonl", corpus / "b.jsonl", lexicon=corpus / "lexicon.json")
    assert (corpus / "a.jsonl").read_bytes() == (corpus / "b.jsonl").read_bytes()
    assert {w["label"]: w.get("reason") for w in report["words"]}["Whistle"] == f"not in lexicon {corpus / 'lexicon.json'}"


def test_build_with_words_and_overrides(corpus: Path, wordnet_dir: Path) -> None:
    (corpus / "words.txt").write_text("Siren\n/m/07qjznt\n\n# a comment\nDrum\nChirp tone\n")
    (corpus / "overrides.json").write_text(json.dumps({"Chirp tone": {"synonyms": ["chirp", "frequency sweep"], "hypernyms": ["signal", "sound"]}}))
    report = _build(corpus, wordnet_dir, words=corpus / "words.txt", overrides=corpus / "overrides.json")
    assert [w["label"] for w in report["words"] if w["status"] == "included"] == ["Siren", "Tick", "Drum", "Chirp tone"]
    assert report["words"][3]["override"] == "curated: hypernyms, synonyms"
    (corpus / "words.txt").write_text("Siren\nSirens\n")
    with pytest.raises(InterleaveError, match=r"words.txt:2: 'Sirens' is no AudioSet display name or mid"):
        _build(corpus, wordnet_dir, words=corpus / "words.txt")


def test_words_with_too_few_negatives_are_skipped(corpus: Path, wordnet_dir: Path) -> None:
    (corpus / "words.txt").write_text("Siren\nTick\nDrum\n")
    assert _build(corpus, wordnet_dir, words=corpus / "words.txt")["counts"]["words_included"] == 3
    (corpus / "words.txt").write_text("Siren\nTick\n")
    with pytest.raises(InterleaveError, match="no word could be included"):
        _build(corpus, wordnet_dir, words=corpus / "words.txt")
    reasons = {w["label"]: w["reason"] for w in json.loads((corpus / "shard.report.json").read_text())["words"]}
    assert reasons == {
        "Siren": "1 unrelated hypernym candidate(s) among the other words, 2 needed",  # tick's "sound" is related
        "Tick": "0 unrelated synonym candidate(s) among the other words, 2 needed",  # once Siren is gone
    }


def test_assemble_queries_checks_clips_and_pools(lexicon) -> None:
    entries, _ = lexicon
    siren, tick = entries["Siren"], entries["Tick"]
    with pytest.raises(InterleaveError, match="no clips for 'Siren'"):
        assemble_queries([siren, tick], {"Tick": ["/t.wav"]}, seed=0)
    with pytest.raises(InterleaveError, match="'Siren': 0 unrelated synonym candidate"):
        assemble_queries([siren], {"Siren": ["/s.wav"]}, seed=0)
    assert negative_pool(siren, [siren, tick], "hypernym") == ["happening"]  # "sound" is in siren.n.02's gloss
    drum = entries["Drum"]
    clips = {"Siren": ["/s1.wav", "/s0.wav"], "Tick": ["/t.wav"], "Drum": ["/d.wav"]}
    queries = assemble_queries([siren, tick, drum], clips, seed=0, clips_per_word=4)
    assert [q.id for q in queries if q.task == "identity"] == ["identity/siren/0", "identity/siren/1", "identity/tick/0", "identity/drum/0"]
    assert queries[0].audio == "/s0.wav"  # clips are sorted
    with pytest.raises(InterleaveError, match="clips_per_word must be at least 1"):
        assemble_queries([siren, tick, drum], clips, seed=0, clips_per_word=0)


# --- command line ---------------------------------------------------------------------------


def test_cli_build_and_wordnet(corpus: Path, wordnet_dir: Path, capsys) -> None:
    code = main(["build", "--labels", str(LABELS_CSV), "--clips", str(corpus / "clips.jsonl"), "--out", str(corpus / "s.jsonl"),
                 "--wordnet", str(wordnet_dir), "--seed", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0 and "[interleave] SHARD: 5 words (3 skipped), 180 queries" in err
    assert "skipped 'Chirp tone': no WordNet noun" in err
    assert len(read_shard(corpus / "s.jsonl")) == 180
    debian = write_wordnet(corpus / "debian", lexnames=False)
    assert main(["wordnet", "--from", str(debian), "--out", str(corpus / "nltk")]) == 0
    assert (corpus / "nltk" / "corpora" / "wordnet" / "lexnames").is_file()


@pytest.mark.parametrize("problem", ["missing_labels", "missing_clips", "no_lexnames", "both_sources"])
def test_cli_errors_exit_2_without_traceback(corpus: Path, wordnet_dir: Path, capsys, problem: str) -> None:
    labels, clips, wordnet = str(LABELS_CSV), str(corpus / "clips.jsonl"), ["--wordnet", str(wordnet_dir)]
    expected = {"missing_labels": "cannot read labels CSV", "missing_clips": "cannot read clip index",
                "no_lexnames": "lacks lexnames", "both_sources": "give either --lexicon or --wordnet"}[problem]  # fmt: skip
    if problem == "missing_labels":
        labels = str(corpus / "nope.csv")
    elif problem == "missing_clips":
        clips = str(corpus / "nope.jsonl")
    elif problem == "no_lexnames":
        wordnet = ["--wordnet", str(write_wordnet(corpus / "debian", lexnames=False))]
    else:
        wordnet += ["--lexicon", str(corpus / "lexicon.json")]
    code = main(["build", "--labels", labels, "--clips", clips, "--out", str(corpus / "s.jsonl"), *wordnet])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and expected in err and "Traceback" not in err
    assert not (corpus / "s.jsonl").exists()


def test_module_runs_as_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "interleave.shard", "wordnet", "--from", str(tmp_path / "none"), "--out", str(tmp_path / "o")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and result.stderr == f"error: WordNet folder not found: {tmp_path / 'none'}\n"
