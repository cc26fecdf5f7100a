"""interleave.shard.build: the labels CSV and the clip index, assembling balanced queries, and building
a SHARD with its report (the corpus and WordNet fixtures are in tests/shard/conftest.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.shard.build import (
    assemble_queries,
    build_shard,
    negative_pool,
    read_clip_index,
    read_labels,
    report_path,
)
from interleave.shard.cli import main
from interleave.shard.format import read_shard
from interleave.shard.lexicon import norm
from tests.shard.conftest import CLIPS, LABELS_CSV, _touch


# --- clips ----------------------------------------------------------------------------------


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


def test_progress_counts_words_and_decoded_clips(corpus: Path, wordnet_dir: Path, capsys) -> None:
    first = _build(corpus, wordnet_dir, "a.jsonl")
    err = capsys.readouterr().err
    with_clips = sum(1 for w in first["words"] if "single-label clip(s)" not in w.get("reason", ""))
    words = [line for line in err.splitlines() if line.startswith("[interleave] shard build: WordNet: ")]
    assert words == [f"[interleave] shard build: WordNet: done {with_clips}/{with_clips} words (100%), " + words[-1].split(", ", 1)[1]]
    decoded = [line for line in err.splitlines() if line.startswith("[interleave] shard build: decoding: ")]
    assert decoded == [decoded[-1]]  # a short build in a log: the last line only
    assert decoded[-1].startswith("[interleave] shard build: decoding: done 20/20 clips (100%), ")  # 5 words x 4 clips
    chosen = sorted({q.audio for q in read_shard(corpus / "a.jsonl") if q.label == "Siren"})
    (corpus / chosen[0]).write_bytes(b"")  # Siren has a 5th clip: a second round decodes it
    _build(corpus, wordnet_dir, "b.jsonl")
    assert "[interleave] shard build: decoding: done 21/21 clips (100%), " in capsys.readouterr().err
