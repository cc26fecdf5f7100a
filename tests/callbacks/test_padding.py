"""callbacks.PaddingFraction: the share of padding in an epoch's batches, counted and logged."""

from types import SimpleNamespace

import pytest
import torch

from callbacks import PaddingFraction
from interleave.data.module import InterleavedDataModule
from interleave.spec import DataSpec
from tests.helpers import write_clip, write_jsonl


def logged_epochs(callback: PaddingFraction, epochs: list[list[dict]]) -> list[dict]:
    """What the callback logs at the end of each epoch of `epochs` (lists of batches), as a one-process
    trainer would have it log."""
    logged = {}
    trainer = SimpleNamespace(strategy=SimpleNamespace(reduce=lambda counts, reduce_op: counts))
    module = SimpleNamespace(device=torch.device("cpu"), log=lambda name, value: logged.__setitem__(name, value))
    out = []
    for batches in epochs:
        logged.clear()
        callback.on_train_epoch_start(trainer, module)
        for i, batch in enumerate(batches):
            callback.on_train_batch_end(trainer, module, None, batch, i)
        callback.on_train_epoch_end(trainer, module)
        out.append(dict(logged))
    return out


def test_padding_fraction_counts_every_batch_of_the_epoch_and_starts_again_at_the_next():
    masks = [
        [torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]), torch.tensor([[1, 1, 1], [1, 0, 0]])],  # 4 of 14 are padding
        [torch.tensor([[1, 1], [1, 1]])],  # none
        [],  # an epoch without batches logs nothing
    ]
    logged = logged_epochs(PaddingFraction(), [[{"attention_mask": m} for m in epoch] for epoch in masks])
    assert logged == [{"train/padding_fraction": pytest.approx(4 / 14)}, {"train/padding_fraction": 0.0}, {}]


def test_the_data_modules_epoch_pads_nothing_grouped_by_length_and_what_its_order_gives_without(tmp_path, tokenizer):
    """Four short and four long records in turn. Grouped by length, every batch holds records of one length:
    no padding at all. Shuffled without grouping, the fraction is the one the sampler's order and the
    records' token lengths give: 1 - tokens / (batch size x longest of each batch)."""
    write_clip(tmp_path / "a.wav")
    rows = [
        {
            "id": f"r{i}",
            "audio": "a.wav",
            "instruction": "What is [AUDIO]?" if i % 2 else "Is [AUDIO] " + "very " * 20 + "loud?",
            "output": "Labels: Siren",
        }
        for i in range(8)
    ]
    write_jsonl(tmp_path / "train.jsonl", rows)
    fractions = {}
    for grouped in (True, False):
        dm = InterleavedDataModule(
            train_file=str(tmp_path / "train.jsonl"), batch_size=2, max_length=128, group_by_length=grouped, seed=1
        )
        dm.connect(DataSpec(tokenizer))
        dm.setup("fit")
        batches = list(dm.train_dataloader())
        (fractions[grouped],) = [e["train/padding_fraction"] for e in logged_epochs(PaddingFraction(), [batches])]
        lengths = dm.train_set.lengths(dm.collator())
        order = list(dm.train_sampler)
        assert len(set(lengths)) == 2 and len(order) == 8
    assert fractions[True] == 0.0
    pairs = [order[i : i + 2] for i in range(0, 8, 2)]  # the ungrouped epoch's
    expected = 1 - sum(lengths) / sum(2 * max(lengths[j] for j in pair) for pair in pairs)
    assert fractions[False] == pytest.approx(expected) and expected > 0.1  # the shuffle pairs short with long
