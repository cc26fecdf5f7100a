"""Provenance of a metrics file: code version, config and SHARD hashes, and the comparability check."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
from pathlib import Path

import pytest

from interleave import provenance as prov
from interleave.errors import InterleaveError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def fresh_code_version():
    prov.code_version.cache_clear()
    yield
    prov.code_version.cache_clear()


@pytest.mark.slow
def test_code_version_is_the_checkouts_commit():
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert prov.code_version() == head.stdout.strip()


def test_code_version_falls_back_to_the_installed_version(monkeypatch):
    def no_git(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs.get("timeout", 0))

    monkeypatch.setattr(prov.subprocess, "run", no_git)
    monkeypatch.setattr(prov.metadata, "version", lambda name: "0.1.0")
    assert prov.code_version() == "0.1.0"
    prov.code_version.cache_clear()

    def not_installed(name):
        raise prov.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(prov.metadata, "version", not_installed)
    assert prov.code_version() == "unknown"


@dataclasses.dataclass
class Sampling:
    temperature: float = 0.1


class Opaque:
    pass


def test_config_hash_is_canonical():
    model = {"learning_rate": 1e-4, "sampling": Sampling(), "path": Path("/x"), "_instantiator": "a"}
    data = {"batch_size": 4, "files": ["a", "b"]}
    digest = prov.config_hash(model, data)
    assert len(digest) == 64
    assert prov.config_hash(dict(reversed(model.items())), data) == digest  # key order does not matter
    assert prov.config_hash({**model, "_instantiator": "b"}, data) == digest  # private keys are left out
    assert prov.config_hash({**model, "learning_rate": 2e-4}, data) != digest
    assert prov.config_hash({**model, "sampling": Sampling(0.7)}, data) != digest
    assert prov.config_hash(model, None) != digest
    # no memory address in the hashed form: two equal opaque objects hash alike
    assert prov.config_hash({"x": Opaque()}) == prov.config_hash({"x": Opaque()})


def test_provenance_keys(tmp_path):
    shard = tmp_path / "shard.jsonl"
    shard.write_bytes(b'{"id": "identity/siren/0"}\n')
    found = prov.provenance(shard, "paper", {"lr": 1}, {"batch_size": 2})
    assert set(found) == set(prov.KEYS)
    assert found["shard_hash"] == hashlib.sha256(shard.read_bytes()).hexdigest()
    assert found["parser"] == "paper" and found["tokenization"] == prov.TOKENIZATION == "whole-string-v1"
    assert found["config_hash"] == prov.config_hash({"lr": 1}, {"batch_size": 2})


def test_recorded_shows_unknown_for_older_files():
    assert prov.recorded({"parser": "paper"}) == {
        "code_version": "unknown",
        "config_hash": "unknown",
        "shard_hash": "unknown",
        "parser": "paper",
        "tokenization": "unknown",
    }


def test_check_comparable():
    base = {"code_version": "1", "config_hash": "c", "shard_hash": "s", "parser": "paper", "tokenization": "t"}
    assert prov.check_comparable({"a": base, "b": {**base, "config_hash": "d"}}) == []  # settings may differ
    notes = prov.check_comparable(
        {"a": base, "b": {**base, "code_version": "2", "parser": "extended"}, "c": prov.recorded({})}
    )
    assert len(notes) == 2 and "code_version (a: 1; b: 2; c: unknown)" in notes[0] and "parser" in notes[1]
    assert prov.check_comparable({"a": base, "old": prov.recorded({})}) == []  # unknown never flags
    with pytest.raises(InterleaveError, match="runs a and b .*shard_hash s vs t"):
        prov.check_comparable({"a": base, "old": prov.recorded({}), "b": {**base, "shard_hash": "t"}})


def test_a_capped_evaluation_records_its_subset_and_a_full_one_writes_the_keys_it_always_wrote(tmp_path):
    shard = tmp_path / "shard.jsonl"
    shard.write_bytes(b'{"id": "identity/siren/0"}\n')
    assert set(prov.provenance(shard, "paper", {"lr": 1})) == set(prov.KEYS)  # no cap: no new key
    subset = "at most 2 queries per task, seed 0, r-v1"
    capped = prov.provenance(shard, "paper", {"lr": 1}, subset=subset)
    assert capped == {**prov.provenance(shard, "paper", {"lr": 1}), "shard_subset": subset}
    assert prov.recorded(capped)["shard_subset"] == capped["shard_subset"]
    assert "shard_subset" not in prov.recorded({"parser": "paper"})


def test_runs_on_different_parts_of_the_shard_are_refused():
    base = {"code_version": "1", "config_hash": "c", "shard_hash": "s", "parser": "paper", "tokenization": "t"}
    two = {**base, "shard_subset": "at most 2 queries per task, seed 0, r-v1"}
    assert prov.check_comparable({"a": two, "b": dict(two)}) == []  # the same subset: side by side
    assert prov.check_comparable({"a": base, "old": prov.recorded({})}) == []
    for other in (
        base,
        prov.recorded({}),
        {**two, "shard_subset": "at most 3 queries per task, seed 0, r-v1"},
        {**two, "shard_subset": "at most 2 queries per task, seed 1, r-v1"},
    ):
        # a file without `shard_subset` asked every query (older files too: the cap did not exist)
        with pytest.raises(
            InterleaveError,
            match=r"runs a and b were evaluated on different parts of the SHARD "
            r"\(a: at most 2 queries per task, seed 0, r-v1; b: ",
        ):
            prov.check_comparable({"a": two, "b": other})
