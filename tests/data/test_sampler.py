"""interleave.data.sampler: the seeded, length-grouped, per-rank and resumable training order."""

import random

import pytest
import torch


def padding_fraction(order, lengths, batch_size):
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    padded = sum(max(lengths[j] for j in b) * len(b) for b in batches)
    return 1 - sum(lengths) / padded


def test_length_grouped_sampler_cuts_padding_and_still_shuffles():
    from interleave.data.sampler import TrainingSampler

    rng = random.Random(0)
    lengths = [rng.randint(40, 400) for _ in range(1000)]
    sampler = TrainingSampler(1000, batch_size=8, lengths=lengths, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(first) == sorted(second) == list(range(1000))  # every record once per epoch
    assert first != second
    shuffled = list(range(1000))
    rng.shuffle(shuffled)
    assert padding_fraction(shuffled, lengths, 8) > 0.3
    assert padding_fraction(first, lengths, 8) < 0.05


@pytest.mark.parametrize("lengths", [None, "grouped"])
def test_training_sampler_splits_ranks_keeps_grouping_and_skips_done_batches(lengths):
    from interleave.data.sampler import TrainingSampler

    rng = random.Random(0)
    sizes = [rng.randint(40, 400) for _ in range(1001)]
    lengths = sizes if lengths else None
    ranks = [TrainingSampler(1001, 8, lengths, num_replicas=2, rank=r, seed=3) for r in range(2)]
    for sampler in ranks:
        sampler.set_epoch(2)
    orders = [list(s) for s in ranks]
    assert len(orders[0]) == len(orders[1]) == len(ranks[0]) == 501  # padded like DistributedSampler
    assert set(orders[0]) | set(orders[1]) == set(range(1001))
    assert len(set(orders[0]) & set(orders[1])) <= 1  # only the repeat that evens out the ranks
    if lengths:  # each rank's batches are grouped, and the two ranks of one step have similar lengths
        assert padding_fraction(orders[0], sizes, 8) < 0.05
        step_max = [[max(sizes[j] for j in o[i : i + 8]) for i in range(0, 496, 8)] for o in orders]
        assert max(abs(a - b) for a, b in zip(*step_max)) < 30
    # unaffected by the global RNG
    torch.manual_seed(123)
    assert list(ranks[0]) == orders[0]
    # a resume in epoch 2 after 5 batches continues where the rank stood; other epochs are whole
    ranks[0].resume_from(epoch=2, batches_done=5)
    assert list(ranks[0]) == orders[0][40:]
    ranks[0].set_epoch(3)
    assert len(list(ranks[0])) == 501


def test_lengths_from_an_index_array_give_the_order_of_a_list_with_ties_kept_in_place():
    import numpy as np

    from interleave.data.sampler import TrainingSampler

    rng = random.Random(2)
    lengths = [rng.randint(40, 45) for _ in range(3001)]  # many ties: the sort must be stable
    as_list = TrainingSampler(3001, 4, lengths, num_replicas=2, rank=1, seed=9)
    as_array = TrainingSampler(3001, 4, np.asarray(lengths, np.int32), num_replicas=2, rank=1, seed=9)
    order = list(as_list)
    assert order == list(as_array)
    # the reference rule: each run of 50 steps sorted longest first by a stable sort, steps shuffled
    generator = torch.Generator().manual_seed(9)
    perm = torch.randperm(3001, generator=generator).tolist()
    runs = [sorted(perm[i : i + 400], key=lambda j: -lengths[j]) for i in range(0, 3001, 400)]
    steps = [run[i : i + 8] for run in runs for i in range(0, len(run), 8)]
    expected = [j for s in torch.randperm(len(steps), generator=generator).tolist() for j in steps[s]]
    expected = (expected * 2)[:3002]
    assert order == expected[1:3002:2]
