"""Fixtures of the SHARD builder's tests: WordNet is the extract of real WordNet 3.0 shipped in
tests/fixtures/wordnet30 (tests/fixtures/wordnet30_extract.py made it from Debian's wordnet-base), never the
machine's, so the tests run on CI machines without WordNet; the lexicon built from it; a corpus of
clips with its clip index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interleave.shard.lexicon import build_lexicon
from interleave.shard.rules import Entry
from interleave.shard.wordnet import open_wordnet
from tests.helpers import copy_wordnet, touch_clip

# Labels whose WordNet 3.0 senses show the rules: a first sense that is food ("chicken"), the
# label as its own candidate ("footstep"), a parenthetical list, two labels sharing one sense
# ("Rock music", "Rock and roll"), words WordNet lacks or gives too few relations.
LABELS = ("Dog", "Drum", "Car", "Piano", "Wind", "Siren", "Tick", "Buzz", "Chirp tone", "Chicken, rooster",
          "Walk, footsteps", "Roaring cats (lions, tigers)", "Frog", "Rock music", "Rock and roll")  # fmt: skip


# --- WordNet and the lexicon built from it ----------------------------------------------


@pytest.fixture(scope="session")
def wordnet_dir(tmp_path_factory) -> Path:
    """An nltk data folder holding the extract under corpora/wordnet."""
    root = tmp_path_factory.mktemp("nltk_data")
    copy_wordnet(root / "corpora" / "wordnet")
    return root


@pytest.fixture(scope="session")
def wn(wordnet_dir):
    return open_wordnet(wordnet_dir)


@pytest.fixture(scope="session")
def lexicon(wn) -> tuple[dict[str, Entry], dict[str, str]]:
    entries, skipped = build_lexicon(wn, LABELS)
    return {e.label: e for e in entries}, {s.label: s.reason for s in skipped}


# --- clips --------------------------------------------------------------------------------


MIDS = {"Dog": "/m/0bt9lr", "Wind": "/m/03m9d0z"}  # named by mid in the index, as AudioSet does
CLIPS = {"Car": 5, "Drum": 4, "Dog": 4, "Piano": 4, "Wind": 4, "Siren": 4, "Buzz": 2, "Chirp tone": 4}


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """Clips and a JSONL clip index for the fixture's words, with multi-label, missing and unknown ones."""
    rows = []
    for label, count in CLIPS.items():
        for k in range(count):
            name = f"{label.split(',')[0].lower().replace(' ', '_')}_{k}.wav"
            touch_clip(tmp_path / "audio" / name)
            rows.append({"audio": f"audio/{name}", "labels": [MIDS.get(label, label)]})
    touch_clip(tmp_path / "audio" / "mix_0.wav")
    touch_clip(tmp_path / "audio" / "mix_1.wav")
    rows += [
        {"audio": "audio/mix_0.wav", "labels": ["Car", "/m/0bt9lr"]},
        {"audio": "audio/mix_1.wav", "labels": "Drum;Speech"},
    ]
    touch_clip(tmp_path / "audio" / "other.wav")
    rows += [{"audio": "audio/drum_9.wav", "labels": ["Drum"]}, {"audio": "audio/other.wav", "labels": ["Sirens"]}]
    (tmp_path / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path
