"""interleave.checkpoints: the one safe loader; a missing, cut-short or code-carrying file is refused by name."""

import os

import pytest
import torch

from interleave.checkpoints import intact_checkpoints, load_weights
from interleave.errors import InterleaveError
from tests.helpers import RunsCode


def save(path, value: float = 0.0):
    torch.save({"state_dict": {"w": torch.full((4096,), value)}, "global_step": 2}, path)
    return path


def test_an_intact_checkpoint_loads_its_tensors_and_plain_values(tmp_path):
    state = load_weights(save(tmp_path / "last.ckpt", 1.5))
    assert state["global_step"] == 2 and torch.equal(state["state_dict"]["w"], torch.full((4096,), 1.5))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(InterleaveError) as err:
        load_weights(tmp_path / "nope.ckpt")
    assert str(err.value) == f"{tmp_path / 'nope.ckpt'}: checkpoint not found"


def test_a_truncated_checkpoint_names_the_intact_ones_beside_it_newest_first(tmp_path):
    older, newer = save(tmp_path / "epoch=0-step=2.ckpt"), save(tmp_path / "epoch=1-step=4.ckpt")
    os.utime(older, (1_000_000, 1_000_000))
    os.utime(newer, (2_000_000, 2_000_000))
    last = tmp_path / "last.ckpt"
    last.write_bytes(newer.read_bytes()[: newer.stat().st_size // 2])  # what a kill mid-write leaves
    (tmp_path / "empty.ckpt").write_bytes(b"")  # broken too: never offered
    with pytest.raises(InterleaveError) as err:
        load_weights(last)
    message = str(err.value)
    assert message.startswith(f"{last}: not a complete checkpoint (")
    assert message.endswith(f"intact ones beside it, newest first: {newer}, {older}")
    assert intact_checkpoints(tmp_path) == [newer, older]
    alone = tmp_path / "alone" / "last.ckpt"
    alone.parent.mkdir()
    alone.write_bytes(last.read_bytes())
    with pytest.raises(InterleaveError, match="not a complete checkpoint .*no intact checkpoint lies beside it"):
        load_weights(alone)


def test_a_pickle_that_would_run_code_is_refused_and_not_run(tmp_path):
    marker, evil = tmp_path / "pwned", tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": RunsCode(str(marker))}, evil)
    with pytest.raises(InterleaveError) as err:
        load_weights(evil)
    assert str(err.value).startswith(f"{evil}: refused to load") and "only load checkpoints you trust" in str(err.value)
    assert intact_checkpoints(tmp_path) == []  # nor offered as an intact one
    assert not marker.exists()


TEXTS = [
    "seed_everything: 0\ntrainer:\n  max_steps: 4\nmodel:\n  lora_r: 8\n",  # a config where a checkpoint goes
    "id,audio,label\n1,a.wav,Siren\n2,b.wav,Dog\n",
    "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/sh\n",
    '{"state_dict": {"w": [1, 2]}}',
    "<!doctype html><html><body>checkpoint</body></html>",
    "[AUDIO] is loud\n",
    "ünïcödé ✓ text\n",
    "\x80 is not how text starts",
    "PK but not a zip",
    "",
]


def generated_files(folder, seed: int = 0, n: int = 400):
    """Seeded, varied files where a checkpoint goes: random bytes, text of many kinds, zip and pickle
    openings followed by junk, real checkpoints cut at random points or with bytes flipped."""
    import random

    rng = random.Random(seed)
    real = save(folder / "real.ckpt", 0.5).read_bytes()
    legacy_path = folder / "legacy.ckpt"
    torch.save({"state_dict": {"w": torch.ones(16)}}, legacy_path, _use_new_zipfile_serialization=False)
    legacy = legacy_path.read_bytes()
    alphabet = "abcdefghij:,;=-_ #\n\t{}[]<>\"'0123456789éü✓"
    for i in range(n):
        kind = i % 8
        size = rng.randint(0, 3000)
        if kind == 0:
            data = rng.randbytes(size)
        elif kind == 1:
            data = "".join(rng.choice(alphabet) for _ in range(size)).encode()
        elif kind == 2:
            data = (rng.choice(TEXTS) * rng.randint(1, 5)).encode()
        elif kind == 3:
            data = rng.choice([b"PK\x03\x04", b"PK\x05\x06", b"\x80\x02", b"\x80\x04\x95"]) + rng.randbytes(size)
        elif kind == 4:
            data = real[: rng.randint(0, len(real))]
        elif kind == 5:
            data = legacy[: rng.randint(0, len(legacy))]
        else:
            source = bytearray(real if kind == 6 else legacy)
            for _ in range(rng.randint(1, 8)):
                source[rng.randrange(len(source))] = rng.randrange(256)
            data = bytes(source)
        path = folder / f"f{i:03d}.{rng.choice(['ckpt', 'yaml', 'csv', 'pt', 'txt'])}"
        path.write_bytes(data)
        yield path


def test_no_file_makes_the_loader_raise_anything_but_its_own_error_naming_the_file(tmp_path):
    """Property-style: hundreds of seeded byte strings and text files give weights or the project's
    error, which names the file; never an IndexError, a RecursionError or any other raw exception."""
    outcomes = {"loaded": 0, "refused": 0}
    for path in generated_files(tmp_path):
        try:
            load_weights(path)
        except InterleaveError as err:
            assert str(err).startswith(f"{path}: "), str(err)
            assert "\n" not in str(err)
            outcomes["refused"] += 1
        else:
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 300 and outcomes["loaded"] >= 1  # a byte flipped in tensor data still loads


@pytest.mark.parametrize(
    "text, kind",
    [
        (TEXTS[0], "text (a config, a table or the like)"),
        (TEXTS[1], "text (a config, a table or the like)"),
        (TEXTS[2], "text (a config, a table or the like)"),
        (TEXTS[3], "text (JSON or the like)"),
        (TEXTS[4], "text (HTML or XML)"),
    ],
)
def test_text_where_a_checkpoint_goes_is_named_as_text_not_as_a_torn_checkpoint(tmp_path, text, kind):
    path = tmp_path / "x.ckpt"
    path.write_text(text)
    with pytest.raises(InterleaveError) as err:
        load_weights(path)
    assert str(err.value) == (
        f"{path}: not a checkpoint: {kind}, not a file written by torch.save "
        "(a .ckpt from training, a .pt/.pth/.bin state dict)"
    )
    assert "root" not in str(err.value).replace(str(path), "")  # says what it is, never what it holds


def test_directories_loops_pipes_and_dangling_links_are_named(tmp_path):
    loop, dangling, fifo = tmp_path / "loop.ckpt", tmp_path / "dangling.ckpt", tmp_path / "pipe.ckpt"
    loop.symlink_to(loop)
    dangling.symlink_to(tmp_path / "gone.ckpt")
    os.mkfifo(fifo)  # opened, it would wait for a writer: refused without waiting
    expected = {
        tmp_path: "a directory, not a checkpoint file",
        loop: "a symlink loop, not a checkpoint file",
        dangling: "checkpoint not found",
        fifo: "not a regular file (a device, pipe or socket), not a checkpoint file",
    }
    for path, words in expected.items():
        with pytest.raises(InterleaveError) as err:
            load_weights(path)
        assert str(err.value) == f"{path}: {words}"


def test_a_file_that_vanishes_or_shrinks_while_read_is_read_whole_or_refused(tmp_path, monkeypatch):
    path = save(tmp_path / "last.ckpt", 2.0)
    real_load = torch.load

    def vanishing(handle, **kwargs):
        path.unlink()  # deleted once opened: the open handle still reads the whole file
        return real_load(handle, **kwargs)

    monkeypatch.setattr("interleave.checkpoints.torch.load", vanishing)
    assert torch.equal(load_weights(path)["state_dict"]["w"], torch.full((4096,), 2.0))
    path = save(tmp_path / "last.ckpt", 2.0)

    def shrinking(handle, **kwargs):
        os.truncate(path, 300)  # cut while being read
        return real_load(handle, **kwargs)

    monkeypatch.setattr("interleave.checkpoints.torch.load", shrinking)
    with pytest.raises(InterleaveError, match=f"^{path}: not a complete checkpoint"):
        load_weights(path)
