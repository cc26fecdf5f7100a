"""Tests for interleave.tools.demo: the synthetic AudioSet-labelled demo data set, its SHARD, determinism,
ensure_demo_data and the command line (the clips' sounds: tests/tools/demo/test_sounds.py)."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile

from interleave import AUDIO_PLACEHOLDER
from interleave.data.records import read_records, resolve_clips
from interleave.encoders.audio import NUM_MEL_BINS, SAMPLE_RATE, TARGET_FRAMES, load_fbank
from interleave.errors import InterleaveError
from interleave.eval.format import RELATIONS, read_shard
from interleave.eval.query import slug
from interleave.shard.build import negative_pool
from interleave.shard.lexicon_file import read_lexicon, read_skipped
from interleave.shard.rules import DEFAULT_STOPLIST, entry_problems, norm
from interleave.shard.wordnet import open_wordnet
from interleave.tools.demo import cli as demo
from interleave.tools.demo.cli import (
    DEMO_CLASSES,
    DEMO_LEXICON,
    SHARD_CLIPS_PER_WORD,
    ensure_demo_data,
    make_demo_data,
)
from interleave.tools.demo.sounds import SYNTHESIZERS

REPO = Path(__file__).resolve().parents[3]
# AudioSet's label list (class_labels_indices.csv, CC BY 4.0), kept beside the tests.
LABELS_CSV = REPO / "tests" / "fixtures" / "audioset_class_labels_indices.csv"


FILES = (
    "train.jsonl",
    "heldout.jsonl",
    "shard.jsonl",
    "shard.report.json",
    "benchmark.json",
    "classes.txt",
    "README.txt",
    ".complete",
    "replay.jsonl",
    "retention.txt",
)


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _wavs(root: Path) -> list[Path]:
    return sorted((root / "audio").rglob("*.wav"))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    """A small demo data set: 3 train and 1 held-out clip per class."""
    root = tmp_path_factory.mktemp("demo_small")
    return root, make_demo_data(root, train_per_class=3, heldout_per_class=1, seed=0)


# --- files and records -----------------------------------------------------------------


def test_demo_classes_are_exact_audioset_labels() -> None:
    with LABELS_CSV.open(newline="", encoding="utf-8") as handle:
        names = {row["display_name"] for row in csv.DictReader(handle)}
    assert len(DEMO_CLASSES) >= 8
    assert len(set(DEMO_CLASSES)) == len(DEMO_CLASSES)
    assert [c for c in DEMO_CLASSES if c not in names] == []
    assert tuple(SYNTHESIZERS) == DEMO_CLASSES
    assert len({slug(c) for c in DEMO_CLASSES}) == len(DEMO_CLASSES)


def test_files_and_summary(small) -> None:
    root, summary = small
    for name in FILES:
        assert (root / name).is_file(), name
    assert (root / "classes.txt").read_text(encoding="utf-8").splitlines() == list(DEMO_CLASSES)
    readme = (root / "README.txt").read_text(encoding="utf-8")
    assert "synthetic" in readme.lower() and "seed=0" in readme
    assert json.loads((root / ".complete").read_text())["classes"] == list(DEMO_CLASSES)
    n = len(DEMO_CLASSES)
    assert summary["train_clips"] == 3 * n and summary["heldout_clips"] == n
    assert (
        summary["clips"] == 4 * n and summary["records"] == 8 * n + demo.PAIR_RECORDS["train"]
    )  # heldout: 1 clip a class, no pair
    assert len(list((root / "audio" / "train").glob("*.wav"))) == 3 * n
    assert len(list((root / "audio" / "heldout").glob("*.wav"))) == n


@pytest.mark.parametrize("split, per_class", [("train", 3), ("heldout", 1)])
def test_records_two_layouts_per_clip(small, split: str, per_class: int) -> None:
    root, _ = small
    records, problems = read_records(root / f"{split}.jsonl")
    assert problems == []
    pairs = [r for r in records if r.task == "pair"]
    records = [r for r in records if r.task != "pair"]
    assert len(pairs) == (demo.PAIR_RECORDS[split] if per_class >= 2 else 0)
    assert len(records) == 2 * per_class * len(DEMO_CLASSES)
    by_audio: dict[str, list] = defaultdict(list)
    for record in records:
        by_audio[record.audio].append(record)
        assert record.task == "cla_label" and record.dataset == "demo"
        assert record.id.startswith(f"{split}-")
        assert not Path(record.audio).is_absolute() and record.audio.startswith(f"audio/{split}/")
        assert all(path.is_file() for path in resolve_clips(record, root))
    labels = set()
    for audio, pair in by_audio.items():
        assert len(pair) == 2, audio
        counts = sorted(r.instruction.count(AUDIO_PLACEHOLDER) for r in pair)
        assert counts == [0, 1], [r.instruction for r in pair]
        outputs = {r.output for r in pair}
        assert len(outputs) == 1
        label = outputs.pop().removeprefix("Labels: ")
        assert label in DEMO_CLASSES
        assert Path(audio).name.startswith(slug(label) + "_")
        assert {r.id[-2:] for r in pair} == {"-i", "-n"}
        labels.add(label)
    assert labels == set(DEMO_CLASSES)


def test_ids_unique_across_files(small) -> None:
    root, _ = small
    ids = [r.id for name in ("train.jsonl", "heldout.jsonl") for r in read_records(root / name)[0]]
    assert len(ids) == len(set(ids))


def test_clips_are_valid_distinct_audio(small) -> None:
    root, _ = small
    digests = set()
    for path in _wavs(root):
        info = soundfile.info(path)
        assert info.samplerate == SAMPLE_RATE and info.channels == 1 and info.subtype == "PCM_16", path
        assert 2.0 <= info.duration <= 4.0, (path, info.duration)
        data, _ = soundfile.read(path, dtype="float32")
        assert np.isfinite(data).all()
        peak, rms = float(np.abs(data).max()), float(np.sqrt(np.mean(data**2)))
        assert 0.29 <= peak <= 0.91 and rms > 1e-3, (path, peak, rms)
        digests.add(hashlib.sha256(data.tobytes()).hexdigest())
    assert len(digests) == len(_wavs(root)) == 4 * len(DEMO_CLASSES)
    fbank = load_fbank(_wavs(root)[0])
    assert fbank.shape == (TARGET_FRAMES, NUM_MEL_BINS)
    assert bool(fbank.isfinite().all()) and float(fbank.std()) > 0.1


def test_rejects_empty_split(tmp_path: Path) -> None:
    with pytest.raises(InterleaveError, match="at least one clip"):
        make_demo_data(tmp_path, train_per_class=0)


# --- the demo SHARD --------------------------------------------------------------------


@pytest.fixture(scope="module")
def wn():
    """The shipped extract of WordNet 3.0 (tests/fixtures/wordnet30)."""
    return open_wordnet(REPO / "tests" / "fixtures" / "wordnet30")


def test_demo_lexicon_follows_the_shipped_lexicons_rules(wn) -> None:
    """The demo's words pass the same quality rules as interleave/shard/audioset_lexicon.json: WordNet
    3.0 lemmas only (checked against the shipped extract), no label as its own candidate, no stoplisted
    hypernym; a class WordNet cannot serve is skipped with its reason and gets identity queries only."""
    entries, skipped = read_lexicon(DEMO_LEXICON), read_skipped(DEMO_LEXICON)
    assert sorted([*(e.label for e in entries), *(s.label for s in skipped)]) == sorted(DEMO_CLASSES)
    meta = json.loads(DEMO_LEXICON.read_text(encoding="utf-8"))
    assert meta["wordnet_version"] == "3.0" and meta["stoplist"] == list(DEFAULT_STOPLIST)
    assert all(spec.get("note") for spec in meta["overrides"].values())  # every curated entry says why
    up = lambda s: s.hypernyms() + s.instance_hypernyms()  # noqa: E731
    for entry in entries:
        assert entry_problems(entry) == [], entry.label
        synset = wn.synset(entry.synset)
        assert {norm(c) for c in entry.synonyms} <= {norm(n) for n in synset.lemma_names()}, entry.label
        assert {norm(c) for c in entry.hypernyms} <= {norm(n) for s in synset.closure(up) for n in s.lemma_names()}
        assert (entry.override is not None) == (entry.label in meta["overrides"]), entry.label
        for relation in RELATIONS:
            assert len(negative_pool(entry, entries, relation)) >= 2, (entry.label, relation)
    by_label = {e.label: e for e in entries}
    assert by_label["Drum"].synset == "drum.n.01" and by_label["Drum"].override is None
    reasons = {s.label: s.reason for s in skipped}
    assert reasons["Beep, bleep"].startswith("0 synonym(s) in beep.n.01")  # "bleep" names the label
    assert (
        "hypernym 'sound': stoplisted" in reasons["Tick"] and reasons["Dial tone"] == "no WordNet noun for 'dial tone'"
    )


def test_demo_shard_is_written_and_balanced(small) -> None:
    root, summary = small
    queries = read_shard(root / "shard.jsonl")
    entries = read_lexicon(DEMO_LEXICON)
    assert summary["shard_queries"] == len(queries) == len(DEMO_CLASSES) + len(entries) * 2 * 4
    heldout = {str(p) for p in (root / "audio" / "heldout").glob("*.wav")}
    identity = [q for q in queries if q.task == "identity"]
    assert sorted(q.audio for q in identity) == sorted(heldout)  # one identity query per clip, every class
    assert {q.audio for q in queries} == heldout and all(Path(q.audio).is_file() for q in queries)
    assert '"audio": "audio/heldout/' in (root / "shard.jsonl").read_text(encoding="utf-8")
    assert {q.label for q in queries if q.task != "identity"} == {e.label for e in entries}
    for relation in RELATIONS:
        truths = [q.truth for q in queries if q.task == relation]
        assert truths.count("yes") == truths.count("no") == 2 * len(entries), relation
    for query in identity:
        assert Path(query.audio).name.startswith(slug(query.label) + "_")
    report = json.loads((root / "shard.report.json").read_text(encoding="utf-8"))
    assert report["counts"]["queries"] == len(queries) and report["counts"]["synonym"] == {
        "yes": 2 * len(entries),
        "no": 2 * len(entries),
    }
    assert [w["label"] for w in report["words"]] == list(DEMO_CLASSES)
    assert {w["status"] for w in report["words"] if w["label"] not in {e.label for e in entries}} == {"identity only"}
    assert "shard.jsonl" in (root / "README.txt").read_text(encoding="utf-8")


def test_demo_shard_takes_at_most_clips_per_word(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(demo, "SHARD_CLIPS_PER_WORD", 2)
    summary = make_demo_data(tmp_path, train_per_class=1, heldout_per_class=3, seed=0)
    queries = read_shard(tmp_path / "shard.jsonl")
    pairs = [q for q in queries if q.task == "pair"]
    assert len(pairs) == 2 * demo.SHARD_PAIRS
    assert (
        summary["shard_queries"]
        == len(queries)
        == 2 * (len(DEMO_CLASSES) + len(read_lexicon(DEMO_LEXICON)) * 8) + len(pairs)
    )
    assert len({q.audio for q in queries if q.task != "pair"}) == 2 * len(DEMO_CLASSES)
    assert SHARD_CLIPS_PER_WORD == 1  # what `make demo` evaluates, to keep its evaluation to minutes


# --- determinism -----------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    make_demo_data(tmp_path / "a", 2, 1, seed=7)
    make_demo_data(tmp_path / "b", 2, 1, seed=7)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) == len(FILES) + 3 * len(DEMO_CLASSES)
    assert [k for k in a if a[k] != b[k]] == []


def test_other_seed_gives_other_clips(tmp_path: Path) -> None:
    make_demo_data(tmp_path / "a", 2, 1, seed=7)
    make_demo_data(tmp_path / "b", 2, 1, seed=8)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    wavs = [k for k in a if k.endswith(".wav")]
    assert wavs and all(a[k] != b[k] for k in wavs)
    assert a[".complete"] != b[".complete"]


def test_clip_does_not_depend_on_clip_count(tmp_path: Path) -> None:
    make_demo_data(tmp_path / "a", 1, 1, seed=3)
    make_demo_data(tmp_path / "b", 2, 1, seed=3)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    shared = [k for k in a if k.endswith(".wav")]
    assert all(a[k] == b[k] for k in shared)


# --- ensure_demo_data ------------------------------------------------------------------


def _stamp(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_ensure_generates_once(tmp_path: Path, capsys) -> None:
    root = tmp_path / "demo"
    assert ensure_demo_data(root, train_per_class=2, heldout_per_class=1) == root
    err = capsys.readouterr().err
    n = len(DEMO_CLASSES)
    assert f"[interleave] wrote demo data: {3 * n} clips, {6 * n + demo.PAIR_RECORDS['train']} records -> {root}" in err
    before = _stamp(root)
    assert ensure_demo_data(root, train_per_class=2, heldout_per_class=1) == root
    assert capsys.readouterr().err == ""
    assert _stamp(root) == before


def test_ensure_regenerates_on_changed_params(tmp_path: Path, capsys) -> None:
    root = tmp_path / "demo"
    ensure_demo_data(root, train_per_class=2, heldout_per_class=1, seed=0)
    old = _tree(root)
    ensure_demo_data(root, train_per_class=1, heldout_per_class=1, seed=0)
    assert "wrote demo data" in capsys.readouterr().err
    assert not (root / "audio" / "train" / "siren_1.wav").exists()  # stale clips are gone
    assert len(_wavs(root)) == 2 * len(DEMO_CLASSES)
    assert json.loads((root / ".complete").read_text())["train_per_class"] == 1
    ensure_demo_data(root, train_per_class=1, heldout_per_class=1, seed=5)
    assert "wrote demo data" in capsys.readouterr().err
    assert _tree(root)["audio/train/siren_0.wav"] != old["audio/train/siren_0.wav"]


@pytest.mark.parametrize("damage", ["no_marker", "bad_marker", "no_jsonl"])
def test_ensure_regenerates_incomplete_dir(tmp_path: Path, capsys, damage: str) -> None:
    root = tmp_path / "demo"
    ensure_demo_data(root, train_per_class=1, heldout_per_class=1)
    good = _tree(root)
    capsys.readouterr()
    if damage == "no_marker":  # a crash before the marker was written
        (root / ".complete").unlink()
        (root / "heldout.jsonl").write_text("half a line", encoding="utf-8")
    elif damage == "bad_marker":
        (root / ".complete").write_text("{not json", encoding="utf-8")
    else:
        (root / "train.jsonl").unlink()
    ensure_demo_data(root, train_per_class=1, heldout_per_class=1)
    assert "wrote demo data" in capsys.readouterr().err
    assert _tree(root) == good


def test_ensure_force_regenerates(tmp_path: Path, capsys) -> None:
    root = tmp_path / "demo"
    ensure_demo_data(root, train_per_class=1, heldout_per_class=1)
    capsys.readouterr()
    ensure_demo_data(root, train_per_class=1, heldout_per_class=1, force=True)
    assert "wrote demo data" in capsys.readouterr().err


# --- command line ----------------------------------------------------------------------


@pytest.mark.slow
def test_cli_writes_data(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    cmd = [
        sys.executable,
        "-m",
        "interleave.tools.demo",
        str(out),
        "--train-per-class",
        "2",
        "--heldout-per-class",
        "1",
    ]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (
        summary["clips"] == 3 * len(DEMO_CLASSES)
        and summary["records"] == 6 * len(DEMO_CLASSES) + demo.PAIR_RECORDS["train"]
    )
    assert "wrote demo data" in result.stderr
    for name in FILES:
        assert (out / name).is_file(), name
    assert len(_wavs(out)) == 3 * len(DEMO_CLASSES)


@pytest.mark.slow
def test_cli_rejects_bad_count(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "interleave.tools.demo", str(tmp_path / "x"), "--train-per-class", "0"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "at least one clip" in result.stderr


# --- two clips in one prompt (issue 19) ---------------------------------------------------


def test_two_clip_records_and_pair_queries_are_balanced_and_seeded(tmp_path: Path) -> None:
    summary = make_demo_data(tmp_path, train_per_class=2, heldout_per_class=3, seed=0)
    for split in ("train", "heldout"):
        records, problems = read_records(tmp_path / f"{split}.jsonl")
        assert problems == []
        pairs = [r for r in records if r.task == "pair"]
        assert len(pairs) == demo.PAIR_RECORDS[split] and all(r.instruction == demo.PAIR_PROMPT for r in pairs)
        assert [r.output for r in pairs].count("Yes") == [r.output for r in pairs].count("No") == len(pairs) // 2
        for r in pairs:
            first, second = (Path(c).name.rsplit("_", 1)[0] for c in r.clips)
            assert (first == second) == (r.output == "Yes") and r.clips[0] != r.clips[1]
            assert all((tmp_path / c).is_file() for c in r.clips)
    assert summary["train_records"] == 2 * 2 * len(DEMO_CLASSES) + demo.PAIR_RECORDS["train"]
    queries = [q for q in read_shard(tmp_path / "shard.jsonl") if q.task == "pair"]
    assert [q.truth for q in queries].count("yes") == [q.truth for q in queries].count("no") == demo.SHARD_PAIRS
    assert {q.label for q in queries} <= {e.label for e in read_lexicon(DEMO_LEXICON)}
    again = tmp_path / "again"
    make_demo_data(again, train_per_class=2, heldout_per_class=3, seed=0)
    assert (again / "train.jsonl").read_bytes() == (tmp_path / "train.jsonl").read_bytes()
    other = tmp_path / "other"
    make_demo_data(other, train_per_class=2, heldout_per_class=3, seed=1)
    assert (other / "train.jsonl").read_text().splitlines()[-32:] != (
        tmp_path / "train.jsonl"
    ).read_text().splitlines()[-32:]


# --- the yes/no replay records (issue 27) -------------------------------------------------


def test_replay_records_are_yes_no_about_the_training_clips_balanced_and_seeded(small, tmp_path: Path) -> None:
    root, summary = small
    records, problems = read_records(root / demo.REPLAY_FILE)
    assert problems == [] and len(records) == summary["replay_records"] == 3 * len(DEMO_CLASSES)
    outputs = [r.output for r in records]
    assert outputs.count("Yes") == outputs.count("No") == len(records) // 2
    words = {label: demo.alternatives(label)[0] for label in DEMO_CLASSES}
    train_clips = {str(p.relative_to(root)) for p in (root / "audio" / "train").glob("*.wav")}
    for record in records:
        assert record.audio in train_clips and record.instruction.count(AUDIO_PLACEHOLDER) == 1
        label = next(c for c in DEMO_CLASSES if record.audio.startswith(f"audio/train/{slug(c)}_"))
        asked = next(w for w in words.values() if f" {w} " in f" {record.instruction.replace('?', ' ')} ")
        assert (asked == words[label]) == (record.output == "Yes")
    assert {r.id for r in records}.isdisjoint(
        r.id for f in ("train", "heldout") for r in read_records(root / f"{f}.jsonl")[0]
    )
    again = make_demo_data(tmp_path / "again", train_per_class=3, heldout_per_class=1, seed=0)
    assert (tmp_path / "again" / demo.REPLAY_FILE).read_bytes() == (root / demo.REPLAY_FILE).read_bytes()
    assert again["replay_records"] == summary["replay_records"]
    make_demo_data(tmp_path / "other", train_per_class=3, heldout_per_class=1, seed=1)
    assert (tmp_path / "other" / demo.REPLAY_FILE).read_bytes() != (root / demo.REPLAY_FILE).read_bytes()


def test_the_replay_file_is_additional_the_other_files_are_the_same_bytes_without_it(
    small, tmp_path: Path, monkeypatch
) -> None:
    root, _ = small
    monkeypatch.setattr(demo, "_replay_records", lambda per_class, seed: [])
    make_demo_data(tmp_path, train_per_class=3, heldout_per_class=1, seed=0)
    without = {k: v for k, v in _tree(tmp_path).items() if k != demo.REPLAY_FILE}
    assert without == {k: v for k, v in _tree(root).items() if k != demo.REPLAY_FILE}
    (tmp_path / demo.REPLAY_FILE).unlink()  # a data set written before the replay file existed is written again
    monkeypatch.undo()
    ensure_demo_data(tmp_path, train_per_class=3, heldout_per_class=1, seed=0)
    assert (tmp_path / demo.REPLAY_FILE).read_bytes() == (root / demo.REPLAY_FILE).read_bytes()
