"""interleave.files: the one atomic writer; a write replaces the whole file or leaves the old one, and
never leaves its temporary sibling behind."""

from pathlib import Path

import pytest

from interleave.files import atomic_open, atomic_path, write_text_atomic


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p != path)


def test_write_text_atomic_replaces_the_content_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "new" / "folder" / "metrics.json"  # the folders are made
    write_text_atomic(target, "a first, longer content")
    write_text_atomic(target, "second — ü")
    assert target.read_text(encoding="utf-8") == "second — ü"
    assert siblings(target) == []


def test_atomic_open_writes_text_or_bytes(tmp_path):
    target = tmp_path / "rejects.jsonl"
    with atomic_open(target, "w", encoding="utf-8") as handle:
        handle.write('{"id": "a"}\n')
    assert target.read_text(encoding="utf-8") == '{"id": "a"}\n'
    with atomic_open(target, "wb") as handle:
        handle.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01" and siblings(target) == []


def test_atomic_path_hands_out_a_temporary_sibling_renamed_over_the_target_at_the_end(tmp_path):
    target = tmp_path / "projector.safetensors"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(f"{target.name}.tmp-")
        tmp.write_bytes(b"new")
        assert target.read_text() == "old"  # untouched until the block ends
    assert target.read_bytes() == b"new" and siblings(target) == []


@pytest.mark.parametrize("writer", ["atomic_open", "atomic_path"])
def test_an_error_inside_the_block_leaves_the_old_file_and_no_temporary_sibling(writer, tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="killed mid-write"):
        if writer == "atomic_open":
            with atomic_open(target) as handle:
                handle.write("half of the new")
                raise RuntimeError("killed mid-write")
        else:
            with atomic_path(target) as tmp:
                tmp.write_text("half of the new")
                raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and siblings(target) == []


def test_a_text_that_cannot_be_written_leaves_the_old_file(tmp_path):
    target = tmp_path / "shard.jsonl"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "new \ud800")  # a lone surrogate has no UTF-8
    assert target.read_text() == "old" and siblings(target) == []
