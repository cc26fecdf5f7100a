"""interleave.checkpoints: the one safe loader; a missing, cut-short or code-carrying file is refused by name."""

import os

import pytest
import torch

from interleave.checkpoints import intact_checkpoints, load_weights
from interleave.errors import InterleaveError
from tests.callbacks.test_reliability import RunsCode


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
