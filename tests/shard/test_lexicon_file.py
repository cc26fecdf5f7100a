"""A lexicon's file: overrides read with every problem named, a lexicon written and read back
(interleave/shard/lexicon_file.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interleave.errors import InterleaveError
from interleave.shard.lexicon import Skipped
from interleave.shard.lexicon_file import read_lexicon, read_overrides, read_skipped, write_lexicon


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
    for text in (
        "'Tick': unknown key 'synonym'",
        "'Drum': 'skip' cannot be combined",
        "'Dog': 'hypernyms' must be a list",
        "'Buzz': expected an object",
    ):
        assert text in message
    path.write_text(json.dumps({"Siren": {"synset": "siren.n.03", "group": "anthrophony", "note": "device"}}))
    assert read_overrides(path) == {"Siren": {"synset": "siren.n.03", "group": "anthrophony", "note": "device"}}


def test_lexicon_roundtrip_and_validation(tmp_path: Path, lexicon) -> None:
    entries, skipped = lexicon
    gone = [Skipped(label, reason) for label, reason in skipped.items()]
    path = write_lexicon(list(entries.values()), tmp_path / "lexicon.json", {"wordnet_version": "3.0"}, gone)
    assert read_lexicon(path) == list(entries.values()) and read_skipped(path) == gone
    data = json.loads(path.read_text())
    assert data["counts"]["per_group"] == {"anthrophony": 5, "biophony": 3, "geophony": 1}
    assert data["counts"]["skipped_per_reason"] == {"too few synonyms": 3, "too few hypernyms": 2, "no WordNet noun": 1}
    data["entries"][1]["synonyms"] = "membranophone"
    del data["entries"][2]["related"]
    path.write_text(json.dumps(data))
    with pytest.raises(InterleaveError) as err:
        read_lexicon(path)
    assert "entries[1] ('Drum'): 'synonyms' must be a list" in str(err.value)
    assert "entries[2] ('Car'): 'related' must be a list" in str(err.value)
