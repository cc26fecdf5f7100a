"""interleave.shard.pairs: the two-clip `pair` task, balanced, seeded, its "no" pairs unrelated in
WordNet, through `shard build --pairs N` into the SHARD file (fixtures in tests/shard/conftest.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from interleave.eval.format import read_shard
from interleave.eval.query import Query
from interleave.shard.build import build_shard
from interleave.shard.cli import main
from interleave.shard.lexicon import norm
from interleave.shard.pairs import pair_queries, unrelated
from tests.helpers import LABELS_CSV


def identity(label: str, clips: int) -> list[Query]:
    return [
        Query(f"identity/{label}/{k}", "identity", label, label.lower(), f"/c/{label}{k}.wav") for k in range(clips)
    ]


def test_pairs_are_balanced_seeded_and_unrelated_in_wordnet(lexicon) -> None:
    entries = [lexicon[0][label] for label in ("Dog", "Piano", "Drum", "Wind", "Car")]
    queries = [q for e in entries for q in identity(e.label, 4)]
    pairs = pair_queries(entries, queries, 12, seed=3)
    assert Counter(q.truth for q in pairs) == {"yes": 12, "no": 12}
    assert pairs == pair_queries(entries, queries, 12, seed=3)
    assert pairs != pair_queries(entries, queries, 12, seed=4)
    assert len({q.id for q in pairs}) == 24 and len({q.clips for q in pairs}) == 24
    by_label = {e.label: e for e in entries}
    for q in pairs:
        first, second = (Path(c).stem.rstrip("0123456789") for c in q.clips)
        assert first == q.label and q.audio != q.other_audio
        if q.truth == "yes":
            assert second == q.label and q.candidate == q.word
        else:
            other = by_label[second]
            assert q.candidate == other.word and unrelated(by_label[q.label], other)
            assert norm(other.word) not in by_label[q.label].related
    assert pair_queries(entries, queries, 0, seed=3) == []
    one_each = [q for e in entries for q in identity(e.label, 1)]
    assert pair_queries(entries, one_each, 5, seed=0) == []  # no word has two clips: no yes, so no no


def test_unrelated_is_false_for_a_word_wordnet_relates(lexicon) -> None:
    entries = lexicon[0]
    dog, piano = entries["Dog"], entries["Piano"]
    assert unrelated(dog, piano) and not unrelated(dog, dog)
    related = type(dog)(label="Puppy", word=sorted(dog.related)[0], synonyms=(), hypernyms=())
    assert not unrelated(dog, related)


def test_build_with_pairs_writes_them_to_the_shard_and_counts_them(corpus: Path, wordnet_dir: Path) -> None:
    assert (
        main(
            [
                "build",
                "--labels",
                str(LABELS_CSV),
                "--clips",
                str(corpus / "clips.jsonl"),
                "--out",
                str(corpus / "shard.jsonl"),
                "--wordnet",
                str(wordnet_dir),
                "--pairs",
                "6",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    queries = read_shard(corpus / "shard.jsonl")
    pairs = [q for q in queries if q.task == "pair"]
    assert Counter(q.truth for q in pairs) == {"yes": 6, "no": 6}
    assert '"other_audio": "audio/' in (corpus / "shard.jsonl").read_text()
    assert all(Path(c).is_file() for q in pairs for c in q.clips)
    identity_clips = {q.audio for q in queries if q.task == "identity"}
    assert {c for q in pairs for c in q.clips} <= identity_clips
    report = build_shard(
        LABELS_CSV, corpus / "clips.jsonl", corpus / "again.jsonl", wordnet=wordnet_dir, pairs=6, seed=1
    )
    assert report["counts"]["pair"] == {"yes": 6, "no": 6} and report["parameters"]["pairs"] == 6
    assert [q.clips for q in read_shard(corpus / "again.jsonl") if q.task == "pair"] == [q.clips for q in pairs]
