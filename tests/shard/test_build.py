"""interleave.shard.build: the labels CSV and the clip index, assembling balanced queries, and building
a SHARD with its report (the corpus and WordNet fixtures are in tests/shard/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.eval.format import read_shard
from interleave.shard.build import (
    SHIPPED_LEXICON,
    assemble_queries,
    build_shard,
    negative_pool,
    read_labels,
    report_path,
)
from interleave.shard.cli import main
from interleave.shard.lexicon import norm
from interleave.shard.lexicon_file import read_lexicon
from interleave.shard.rules import Entry
from tests.helpers import LABELS_CSV, REPO, WORDNET, touch_clip

# --- assembly and building ------------------------------------------------------------------

INCLUDED = ["Dog", "Piano", "Drum", "Wind", "Car"]  # the corpus's words that qualify, in the labels CSV's order


def _build(corpus: Path, wordnet_dir: Path | None, out: str = "shard.jsonl", **kwargs) -> dict:
    return build_shard(LABELS_CSV, corpus / "clips.jsonl", corpus / out, wordnet=wordnet_dir, **kwargs)


def test_build_writes_a_balanced_shard(corpus: Path, wordnet_dir: Path, wn) -> None:
    report = _build(corpus, wordnet_dir)
    queries = read_shard(corpus / "shard.jsonl")
    assert list(dict.fromkeys(q.label for q in queries)) == INCLUDED
    identity = [q for q in queries if q.task == "identity"]
    assert Counter(q.label for q in identity) == {label: 4 for label in INCLUDED}
    assert len({q.audio for q in identity}) == len(identity) == 20
    assert all(Path(q.audio).is_file() and Path(q.audio).is_relative_to(corpus / "audio") for q in queries)
    assert '"audio": "audio/' in (corpus / "shard.jsonl").read_text()
    assert len(queries) == 20 * (1 + 2 * 2 + 2 * 2)
    groups = Counter((q.label, q.audio, q.task, q.truth) for q in queries if q.task != "identity")
    assert set(groups.values()) == {2}  # per clip and relation: 2 yes and 2 no
    assert report["counts"]["synonym"] == {"yes": 40, "no": 40} and report["counts"]["hypernym"] == {
        "yes": 40,
        "no": 40,
    }
    assert "mix" not in " ".join(q.audio for q in queries)


def test_negatives_are_other_words_candidates_unrelated_in_wordnet(
    corpus: Path, wordnet_dir: Path, wn, lexicon
) -> None:
    _build(corpus, wordnet_dir)
    entries, _ = lexicon
    for query in read_shard(corpus / "shard.jsonl"):
        if query.task == "identity":
            continue
        own = entries[query.label].candidates(query.task)
        if query.truth == "yes":
            assert query.candidate in own
            continue
        others = {
            c
            for e in entries.values()
            if e.label in INCLUDED and e.label != query.label
            for c in e.candidates(query.task)
        }
        assert query.candidate in others and query.candidate not in own
        for alternative in query.label.lower().split(", "):
            for sense in wn.synsets(alternative.replace(" ", "_"), pos="n"):
                lemmas = {norm(n) for s in [sense, *sense.closure(lambda s: s.hypernyms())] for n in s.lemma_names()}
                assert norm(query.candidate) not in lemmas, (query.id, sense)


def test_negative_pool_gives_one_candidate_per_id() -> None:
    """Ids are relation/label/clip/slug(candidate): "rock'n'roll" and "rock 'n' roll" would collide."""
    rock = Entry("Rock music", "rock music", ("rock 'n' roll", "rock-and-roll"), ("popular music", "music genre"))
    other = Entry("Other", "other", ("rock'n'roll", "Rock-and-Roll", "rock and roll!", "tympan"), ("a", "b"))
    assert negative_pool(rock, [rock, other], "synonym") == ["tympan"]  # the rest share an id with rock's own
    third = Entry("Third", "third", ("rock and roll", "kettle"), ("c", "d"))
    assert negative_pool(third, [third, other, rock], "synonym") == ["rock'n'roll", "tympan"]  # one per id


def test_report_names_every_label_and_clip(corpus: Path, wordnet_dir: Path) -> None:
    report = _build(corpus, wordnet_dir)
    assert report == json.loads(report_path(corpus / "shard.jsonl").read_text())
    assert report_path(corpus / "shard.jsonl") == corpus / "shard.report.json"
    words = {w["label"]: w for w in report["words"]}
    assert len(words) == len(report["words"]) == 527  # every label of the CSV, included or skipped with its reason
    assert words["Car"] == {"label": "Car", "status": "included", "word": "car", "synset": "car.n.01", "clips": 5}
    assert words["Siren"]["reason"].startswith(
        "0 synonym(s) in siren.n.03, 2 needed [refused: synonym 'siren': names the label"
    )
    assert words["Chirp tone"]["reason"] == "no WordNet noun for 'chirp tone'"
    assert words["Buzz"]["reason"] == "2 single-label clip(s), 4 needed (0 multi-label clip(s) not eligible)"
    assert words["Speech"]["reason"] == "0 single-label clip(s), 4 needed (1 multi-label clip(s) not eligible)"
    assert {w["status"] for w in report["words"]} == {"included", "skipped"}
    assert all(w["reason"] for w in report["words"] if w["status"] == "skipped")
    assert [c["labels"] for c in report["multi_label_clips"]] == [["Car", "Dog"], ["Drum", "Speech"]]
    assert [m["audio"] for m in report["missing_audio"]] == [str(corpus / "audio" / "drum_9.wav")]
    assert [u["label"] for u in report["unknown_labels"]] == ["Sirens"]
    counts = report["counts"]
    assert (counts["words_requested"], counts["words_included"], counts["words_skipped"]) == (527, 5, 522)
    assert (counts["clips_multi_label"], counts["clips_missing_audio"], counts["unknown_labels"]) == (2, 1, 1)
    params = report["parameters"]
    assert params["seed"] == 0 and params["wordnet_version"] == "3.0" and params["clips_per_word"] == 4


def test_unreadable_chosen_clips_are_replaced_or_their_word_left_out_and_all_are_reported(
    corpus: Path, wordnet_dir: Path, capsys
) -> None:
    first = _build(corpus, wordnet_dir, "a.jsonl")
    chosen = sorted({q.audio for q in read_shard(corpus / "a.jsonl") if q.label in ("Car", "Dog")})
    car = next(a for a in chosen if "car" in a)
    dog = next(a for a in chosen if "dog" in a)
    (corpus / car).write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(64)))  # Car has a 5th clip
    (corpus / dog).write_bytes(b"")  # Dog has exactly 4
    code = main(
        [
            "build",
            "--labels",
            str(LABELS_CSV),
            "--clips",
            str(corpus / "clips.jsonl"),
            "--out",
            str(corpus / "b.jsonl"),
            "--wordnet",
            str(wordnet_dir),
        ]
    )
    err = capsys.readouterr().err
    assert code == 0 and "2 unreadable clips left out" in err
    assert f"unreadable {corpus / car} (Car): cannot decode audio" in err
    assert f"unreadable {corpus / dog} (Dog): file is empty (0 bytes)" in err
    report = json.loads(report_path(corpus / "b.jsonl").read_text())
    assert sorted(u["audio"] for u in report["unreadable_audio"]) == sorted(str(corpus / a) for a in (car, dog))
    assert report["counts"]["clips_unreadable_audio"] == 2
    words = {w["label"]: w for w in report["words"]}
    assert words["Dog"] == {"label": "Dog", "status": "skipped", "reason": "3 readable single-label clip(s), 4 needed"}
    assert words["Car"]["status"] == "included"
    audio = {q.audio for q in read_shard(corpus / "b.jsonl")}
    assert str(corpus / car) not in audio and len({a for a in audio if "/car_" in a}) == 4
    assert first["counts"]["words_included"] == report["counts"]["words_included"] + 1


def test_build_is_deterministic_and_seeded(corpus: Path, wordnet_dir: Path) -> None:
    _build(corpus, wordnet_dir, "a.jsonl", seed=3)
    _build(corpus, wordnet_dir, "b.jsonl", seed=3)
    _build(corpus, wordnet_dir, "c.jsonl", seed=4)
    a, b, c = ((corpus / f"{n}.jsonl").read_bytes() for n in "abc")
    assert a == b and a != c


@pytest.mark.slow
def test_build_is_byte_identical_under_any_hash_seed(corpus: Path) -> None:
    """nltk lists a synset's hypernyms in set order: dog.n.01 has two (canine, domestic animal),
    piano.n.01 three; under Python's string hashing with seeds 0 and 1 nltk gives Dog's in
    opposite orders, with 1 and 2 Piano's, so an unsorted walk flips their pairs and the negatives
    drawn from them."""
    outputs = []
    for hash_seed in ("0", "1", "2"):
        out = corpus / f"seed{hash_seed}.jsonl"
        lexicon = corpus / f"seed{hash_seed}.lexicon.json"
        subprocess.run(
            [sys.executable, "-m", "interleave.shard", "build", "--labels", str(LABELS_CSV), "--clips", str(corpus / "clips.jsonl"),
             "--out", str(out), "--wordnet", str(WORDNET), "--seed", "3", "--lexicon-out", str(lexicon)],
            cwd=REPO, env={**os.environ, "PYTHONHASHSEED": hash_seed}, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        outputs.append((out.read_bytes(), lexicon.read_bytes()))
    assert {o[0] for o in outputs} == {outputs[0][0]} and {o[1] for o in outputs} == {outputs[0][1]}
    assert '"hypernyms": ["canine", "domestic animal"]' in outputs[0][1].decode()


def test_build_uses_the_shipped_lexicon_by_default(corpus: Path) -> None:
    report = build_shard(LABELS_CSV, corpus / "clips.jsonl", corpus / "s.jsonl")  # no WordNet needed
    assert report["parameters"]["lexicon"] == str(SHIPPED_LEXICON) and "wordnet" not in report["parameters"]
    words = {w["label"]: w for w in report["words"]}
    shipped = {e.label: e for e in read_lexicon(SHIPPED_LEXICON)}
    assert [w["label"] for w in report["words"] if w["status"] == "included"] == INCLUDED
    assert words["Dog"]["synset"] == shipped["Dog"].synset == "dog.n.01"
    assert words["Siren"]["reason"].startswith("lexicon: 0 synonym(s) in siren.n.03")  # the shipped file's own reason


@pytest.mark.slow  # a SHARD built over all 527 AudioSet labels, twice
def test_every_audioset_label_builds_with_one_clip_each(tmp_path: Path, wordnet_dir: Path) -> None:
    labels = read_labels(LABELS_CSV)
    index = {}
    for k, name in enumerate(dict.fromkeys(labels.values())):
        index[name] = [touch_clip(tmp_path / "audio" / f"{k:03d}.wav")]
    (tmp_path / "clips.json").write_text(json.dumps(index))
    for source in ({}, {"wordnet": wordnet_dir}):  # the shipped lexicon, then WordNet afresh
        report = build_shard(LABELS_CSV, tmp_path / "clips.json", tmp_path / "s.jsonl", clips_per_word=1, **source)
        queries = read_shard(tmp_path / "s.jsonl")  # refuses duplicate ids
        words = report["words"]
        assert [w["label"] for w in words] == list(index) and len(words) == 527
        included = [w["label"] for w in words if w["status"] == "included"]
        assert all(w["reason"] for w in words if w["status"] == "skipped")
        assert {q.label for q in queries} == set(included) and len(queries) == len(included) * 9
        assert len(included) >= (
            78 if not source else 60
        )  # the shipped lexicon's curated words, or WordNet's own picks
    reasons = {w["label"]: w.get("reason") for w in words}
    assert reasons["Rock and roll"] == "same sense rock_'n'_roll.n.01 as 'Rock music', which keeps it"


def test_build_from_a_stored_lexicon_needs_no_wordnet(corpus: Path, wordnet_dir: Path) -> None:
    _build(corpus, wordnet_dir, "a.jsonl", lexicon_out=corpus / "lexicon.json")
    report = build_shard(LABELS_CSV, corpus / "clips.jsonl", corpus / "b.jsonl", lexicon=corpus / "lexicon.json")
    assert (corpus / "a.jsonl").read_bytes() == (corpus / "b.jsonl").read_bytes()
    reasons = {w["label"]: w.get("reason") for w in report["words"]}
    assert reasons["Chirp tone"] == "lexicon: no WordNet noun for 'chirp tone'"
    assert reasons["Buzz"] == "2 single-label clip(s), 4 needed (0 multi-label clip(s) not eligible)"
    data = json.loads((corpus / "lexicon.json").read_text())
    data["entries"][0]["hypernyms"] = ["sound", "dog"]  # a hand-edited entry is held to the same rules
    (corpus / "lexicon.json").write_text(json.dumps(data))
    report = build_shard(LABELS_CSV, corpus / "clips.jsonl", corpus / "c.jsonl", lexicon=corpus / "lexicon.json")
    assert {w["label"]: w.get("reason") for w in report["words"]}[data["entries"][0]["label"]] == (
        "lexicon entry breaks the rules: hypernym 'sound': stoplisted; hypernym 'dog': names the label"
    )


def test_build_with_words_and_overrides(corpus: Path, wordnet_dir: Path) -> None:
    (corpus / "words.txt").write_text("Car\n/m/0bt9lr\n\n# a comment\nDrum\nChirp tone\nWind\n")
    overrides = {"Dog": {"hypernyms": ["canine", "carnivore"], "note": "'domestic animal' is true of too many sounds"}}
    (corpus / "overrides.json").write_text(json.dumps(overrides))
    report = _build(corpus, wordnet_dir, words=corpus / "words.txt", overrides=corpus / "overrides.json")
    assert [w["label"] for w in report["words"] if w["status"] == "included"] == ["Car", "Dog", "Drum", "Wind"]
    assert report["words"][1]["override"] == "'domestic animal' is true of too many sounds"
    (corpus / "words.txt").write_text("Car\nSirens\n")
    with pytest.raises(InterleaveError, match=r"words.txt:2: 'Sirens' is no AudioSet display name or mid"):
        _build(corpus, wordnet_dir, words=corpus / "words.txt")


def test_words_with_too_few_negatives_are_skipped(corpus: Path, wordnet_dir: Path) -> None:
    (corpus / "words.txt").write_text("Drum\nPiano\nCar\n")
    assert _build(corpus, wordnet_dir, words=corpus / "words.txt")["counts"]["words_included"] == 3
    (corpus / "words.txt").write_text("Drum\nPiano\n")
    with pytest.raises(InterleaveError, match="no word could be included"):
        _build(corpus, wordnet_dir, words=corpus / "words.txt")
    reasons = {w["label"]: w["reason"] for w in json.loads((corpus / "shard.report.json").read_text())["words"]}
    assert (
        reasons
        == {
            "Piano": "0 unrelated hypernym candidate(s) among the other words, 2 needed",  # Drum's are above the piano too
            "Drum": "1 unrelated hypernym candidate(s) among the other words, 2 needed",  # "percussion instrument" is its own
        }
    )


def test_assemble_queries_checks_clips_and_pools(lexicon) -> None:
    entries, _ = lexicon
    car, drum, dog = entries["Car"], entries["Drum"], entries["Dog"]
    with pytest.raises(InterleaveError, match="no clips for 'Car'"):
        assemble_queries([car, drum], {"Drum": ["/d.wav"]}, seed=0)
    with pytest.raises(InterleaveError, match="'Car': 0 unrelated synonym candidate"):
        assemble_queries([car], {"Car": ["/c.wav"]}, seed=0)
    assert negative_pool(car, [car, drum], "hypernym") == ["musical instrument", "percussion instrument"]
    clips = {"Car": ["/c1.wav", "/c0.wav"], "Drum": ["/d.wav"], "Dog": ["/g.wav"]}
    queries = assemble_queries([car, drum, dog], clips, seed=0, clips_per_word=4)
    assert [q.id for q in queries if q.task == "identity"] == [
        "identity/car/0",
        "identity/car/1",
        "identity/drum/0",
        "identity/dog/0",
    ]
    assert queries[0].audio == "/c0.wav"  # clips are sorted
    with pytest.raises(InterleaveError, match="clips_per_word must be at least 1"):
        assemble_queries([car, drum, dog], clips, seed=0, clips_per_word=0)


def test_progress_counts_words_and_decoded_clips(corpus: Path, wordnet_dir: Path, capsys) -> None:
    first = _build(corpus, wordnet_dir, "a.jsonl")
    err = capsys.readouterr().err
    with_clips = sum(1 for w in first["words"] if "single-label clip(s)" not in w.get("reason", ""))
    words = [line for line in err.splitlines() if line.startswith("[interleave] shard build: WordNet: ")]
    assert words == [
        f"[interleave] shard build: WordNet: done {with_clips}/{with_clips} words (100%), "
        + words[-1].split(", ", 1)[1]
    ]
    decoded = [line for line in err.splitlines() if line.startswith("[interleave] shard build: decoding: ")]
    assert decoded == [decoded[-1]]  # a short build in a log: the last line only
    assert decoded[-1].startswith("[interleave] shard build: decoding: done 20/20 clips (100%), ")  # 5 words x 4 clips
    chosen = sorted({q.audio for q in read_shard(corpus / "a.jsonl") if q.label == "Car"})
    (corpus / chosen[0]).write_bytes(b"")  # Car has a 5th clip: a second round decodes it
    _build(corpus, wordnet_dir, "b.jsonl")
    assert "[interleave] shard build: decoding: done 21/21 clips (100%), " in capsys.readouterr().err
