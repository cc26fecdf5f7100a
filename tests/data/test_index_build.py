"""Writing a record index: its builder in several processes and its key (interleave/data/index_build.py)."""

from interleave.data import index_build
from interleave.data.collate import Collator
from interleave.data.record_index import index_path
from tests.helpers import direct, mixed_file


def test_a_build_in_several_processes_equals_one_in_a_single_process(tmp_path, tokenizer):
    import numpy as np

    from interleave.data.record_index import RecordIndex, build, settings

    path = mixed_file(tmp_path, n=400, seed=5)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n", 7))
    collator = Collator(tokenizer, max_length=128)
    built = []
    for processes in (1, 3):
        build(path, collator, tmp_path / f"{processes}.index", processes)
        built.append(RecordIndex.load(tmp_path / f"{processes}.index", path, settings(collator)))
    one, three = built
    assert one.header == three.header and one.rows > 400
    assert all(np.array_equal(one.columns[name], three.columns[name]) for name in one.columns)
    assert one.checked(tmp_path)[1] == three.checked(tmp_path)[1] == direct(path, collator)[1]


def test_a_builder_that_fails_or_dies_stops_the_build_naming_it_and_leaves_no_process(tmp_path, tokenizer, monkeypatch):
    """The builders are forked processes reaped by the build itself: a builder's error is raised in the
    parent as it is; a builder that dies (killed, out of memory) is one line naming the file; neither
    leaves a process or an index behind."""
    import os

    import psutil
    import pytest

    from interleave.errors import InterleaveError

    path = mixed_file(tmp_path, n=60, seed=1)
    collator = Collator(tokenizer, max_length=128)
    real_run = index_build._Builder.run

    def failing(self, start, end, *args):
        if start > 0:
            raise ValueError("the second part failed")
        return real_run(self, start, end, *args)

    monkeypatch.setattr(index_build._Builder, "run", failing)
    with pytest.raises(ValueError, match="the second part failed"):
        index_build.build(path, collator, tmp_path / "a.index", 2)

    def dying(self, start, end, *args):
        os._exit(9) if start > 0 else real_run(self, start, end, *args)

    monkeypatch.setattr(index_build._Builder, "run", dying)
    with pytest.raises(InterleaveError, match=rf"builder of {path} ended without its part \(exit code 9\)"):
        index_build.build(path, collator, tmp_path / "b.index", 2)
    assert not psutil.Process().children() and not list(tmp_path.glob("*.index*"))


def test_the_index_key_follows_the_rule_code(tmp_path, tokenizer, monkeypatch):

    collator = Collator(tokenizer, max_length=128)
    rule = tmp_path / "token_count.py"
    rule.write_bytes(index_build.RULE_FILES[3].read_bytes())
    monkeypatch.setattr(index_build, "RULE_FILES", [*index_build.RULE_FILES[:3], rule, *index_build.RULE_FILES[4:]])
    index_build.rules_hash.cache_clear()
    try:
        before = index_path(tmp_path / "x.jsonl", collator)
        rule.write_text(rule.read_text() + "# a changed rule\n")
        index_build.rules_hash.cache_clear()
        assert index_path(tmp_path / "x.jsonl", collator) != before  # no version to bump by hand
    finally:
        index_build.rules_hash.cache_clear()
