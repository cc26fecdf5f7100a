"""interleave.data.mixture: what each epoch draws from a weighted mixture of record files (`data.train_files`),
and the data module training on one: proportions, draws without replacement, seeded and resumable
order, disjoint ranks, each file's bad records named and counted, the draws in the metrics file."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from interleave.data.checks import DataError
from interleave.data.mixture import MixturePlan, MixtureSampler, Source, mixture_sources, parse_sources, split_counts
from interleave.data.module import InterleavedDataModule
from interleave.errors import InterleaveError
from interleave.spec import DataSpec
from tests.helpers import write_clip, write_jsonl

WEIGHTS = (0.5, 0.3, 0.2)


def plan_of(sizes, weights=WEIGHTS, epoch_records=None, seed=0) -> MixturePlan:
    sources = [Source(f"s{i}.jsonl", w, f"s{i}") for i, w in enumerate(weights)]
    return MixturePlan(sources, sizes, epoch_records, seed)


def source_of(plan: MixturePlan, index: int) -> int:
    return int(np.searchsorted(plan.offsets, index, side="right")) - 1


def test_each_epochs_counts_add_up_and_average_to_the_weights_within_a_binomial_bound():
    """N = 7 records a epoch: N w = 3.5, 2.1, 1.4. Each count is floor(N w) or one more, the total
    exactly N; the extra record is a Bernoulli(fractional part) draw per epoch, so over E = 2000
    epochs the mean count is within 4 standard deviations, 4 sqrt(f (1 - f) / E), of N w."""
    plan, epochs = plan_of([40, 40, 40], epoch_records=7), 2000
    counts = np.array([plan.counts(e) for e in range(epochs)])
    assert (counts.sum(axis=1) == 7).all()
    expected = 7 * np.array(WEIGHTS)
    assert (np.abs(counts - expected) < 1).all()
    fractions = expected - np.floor(expected)
    bound = 4 * np.sqrt(fractions * (1 - fractions) / epochs)
    assert (np.abs(counts.mean(axis=0) - expected) <= bound).all(), (counts.mean(axis=0), expected, bound)
    assert split_counts(10, [1, 1], 0.3) in ([5, 5],)  # no remainder: exact
    assert sum(split_counts(1000, [3, 1e-9, 2], 0.999)) == 1000


def test_the_drawn_records_sources_match_the_weights_by_a_chi_square_test():
    """The source of each epoch's first record (after the shuffle), over 3000 epochs of 30 draws from
    sources of 10, 50 and 200 records (proportions unlike the weights): a chi-square statistic of
    2 degrees of freedom below 13.82 (p > 0.001 at the fixed seed), and the fraction of all draws
    per source equal to the weights exactly up to the rounding (within 1/30)."""
    plan = plan_of([10, 50, 200], epoch_records=30, seed=4)
    sampler = MixtureSampler(plan, batch_size=4)
    first, whole = Counter(), Counter()
    for epoch in range(3000):
        sampler.set_epoch(epoch)
        order = list(sampler)
        first[source_of(plan, order[0])] += 1
        if epoch < 200:
            whole.update(source_of(plan, i) for i in order)
    expected = 3000 * np.array(WEIGHTS)
    chi2 = sum((first[i] - expected[i]) ** 2 / expected[i] for i in range(3))
    assert chi2 < 13.82, (first, chi2)
    shares = np.array([whole[i] for i in range(3)]) / (200 * 30)
    assert (np.abs(shares - np.array(WEIGHTS)) < 1 / 30).all()


def test_a_source_is_drawn_without_replacement_until_it_runs_out_then_repeats_evenly():
    """A 10-record replay source weighted to 24 draws an epoch runs through its passes: after m draws
    every record has been drawn floor(m/10) or ceil(m/10) times; a 100-record source drawn 76 an
    epoch repeats nothing within an epoch, and nothing until all 100 have been drawn."""
    plan = plan_of([100, 10], weights=(0.76, 0.24), epoch_records=100, seed=1)
    big: Counter = Counter()
    small: Counter = Counter()
    for epoch in range(5):
        draws = plan.draw(epoch)
        assert plan.counts(epoch) == [76, 24]
        mine = [int(i) for i in draws if i < 100]
        assert len(set(mine)) == len(mine)  # no repeat within the epoch
        big.update(mine)
        small.update(int(i) - 100 for i in draws if i >= 100)
        m_big, m_small = 76 * (epoch + 1), 24 * (epoch + 1)
        assert set(big.values()) <= {m_big // 100, -(-m_big // 100)} and len(big) == min(100, m_big)
        assert set(small.values()) <= {m_small // 10, -(-m_small // 10)} and len(small) == 10
    assert sorted(plan.stream(0, 0, 100).tolist()) == list(range(100))  # one pass: a permutation


def test_the_order_depends_on_the_seed_and_epoch_only_and_resumes_mid_epoch():
    """A fresh plan asked for epoch 5 first draws what one that went through epochs 0-4 draws; the
    global RNG changes nothing; another seed another order; a resume after 3 batches of epoch 5
    continues where the unbroken rank stood, length grouping included."""
    rng = np.random.default_rng(0)
    sizes = [120, 30, 50]
    lengths = rng.integers(40, 400, sum(sizes))

    def rank(seed=0, rank=0):
        sampler = MixtureSampler(plan_of(sizes, seed=seed), 4, lengths, num_replicas=2, rank=rank)
        sampler.set_epoch(5)
        return sampler

    walked = plan_of(sizes)
    for epoch in range(5):
        walked.draw(epoch)
    assert np.array_equal(walked.draw(5), plan_of(sizes).draw(5))
    unbroken = list(rank())
    torch.manual_seed(123)
    np.random.seed(7)
    assert list(rank()) == unbroken
    assert list(rank(seed=1)) != unbroken
    resumed = rank()
    resumed.resume_from(epoch=5, batches_done=3)
    assert list(resumed) == unbroken[12:]
    batches = [unbroken[i : i + 4] for i in range(0, len(unbroken), 4)]
    padded = sum(max(lengths[j] for j in b) * len(b) for b in batches)
    assert 1 - sum(lengths[j] for j in unbroken) / padded < 0.05  # grouped by length as one file is


def test_two_ranks_draw_disjoint_records_that_make_up_the_epoch():
    plan = plan_of([60, 40], weights=(0.6, 0.4), seed=2)  # epoch 0: exactly 60 and 40, each record once
    orders = []
    for r in range(2):
        sampler = MixtureSampler(plan, 5, num_replicas=2, rank=r)
        sampler.set_epoch(0)
        orders.append(list(sampler))
    assert len(orders[0]) == len(orders[1]) == 50
    assert not set(orders[0]) & set(orders[1])
    assert sorted(orders[0] + orders[1]) == list(range(100))
    plan = plan_of([7, 40], weights=(0.5, 0.5), epoch_records=40, seed=2)  # source 0 wraps: positions split
    split = [MixtureSampler(plan, 5, num_replicas=2, rank=r) for r in range(2)]
    for sampler in split:
        sampler.set_epoch(3)
    assert Counter(list(split[0]) + list(split[1])) == Counter(plan.draw(3).tolist())


def test_the_settings_are_checked_with_clear_errors():
    assert [s.name for s in parse_sources([{"path": "d/a.jsonl", "weight": 2}, {"path": "e/b.json", "weight": 1}])] == [
        "a",
        "b",
    ]
    for value, message in [
        ([], r"^data.train_files: an empty list; give at least one \{path: FILE, weight: W\}"),
        ("a.jsonl", "expected a list"),
        ([{"path": "a.jsonl"}], r"expected \{path: FILE, weight: W\}"),
        ([{"path": "a.jsonl", "weight": 0}], r"\[0\].weight: expected a finite number > 0"),
        ([{"path": "a.jsonl", "weight": float("nan")}], r"\[0\].weight: expected a finite number > 0, got nan"),
        (
            [{"path": "a.jsonl", "weight": 1}, {"path": "a.jsonl", "weight": 2}],
            r"^data.train_files\[1\]: a.jsonl is listed again \(as data.train_files\[0\]\) under the same name 'a'",
        ),
        ([{"path": "a.jsonl", "weight": 1, "share": 2}], "unknown key 'share'"),
        (
            [{"path": "x/a.jsonl", "weight": 1}, {"path": "y/a.jsonl", "weight": 1}],
            r"\[1\]: y/a.jsonl and x/a.jsonl \(data.train_files\[0\]\) are both named 'a'.*own `name:`",
        ),
    ]:
        with pytest.raises(InterleaveError, match=message):
            parse_sources(value)
    sources = [{"path": "a.jsonl", "weight": 1}]
    with pytest.raises(InterleaveError, match="train_files .* and data.train_file .* are both given"):
        InterleavedDataModule(train_file="b.jsonl", train_files=sources)
    with pytest.raises(InterleaveError, match="with data.train_files give a data.val_file"):
        InterleavedDataModule(train_files=sources, val_fraction=0.1)
    with pytest.raises(InterleaveError, match="epoch_records .* needs data.train_files"):
        mixture_sources(None, 10, "a.jsonl", False)
    with pytest.raises(InterleaveError, match="epoch_records: expected an integer >= 1"):
        plan_of([3, 3, 3], epoch_records=0)
    # left unset, the mixture's settings are no hyper-parameters: a one-file run's config hash is unchanged
    assert not {"train_files", "epoch_records"} & set(InterleavedDataModule(train_file="a.jsonl").hparams)
    assert {"train_files", "epoch_records"} <= set(InterleavedDataModule(train_files=sources, epoch_records=4).hparams)


def two_sources(root: Path, bad_line: bool = False) -> list[dict]:
    for i in range(6):
        write_clip(root / "audio" / f"c{i}.wav", freq=300.0 + 200 * i, seed=i)
    rows = [
        {
            "id": f"{name}{i}",
            "audio": f"audio/c{i % 6}.wav",
            "instruction": "What sound is [AUDIO]?",
            "output": f"Labels: {name} {i}",
        }
        for name, n in (("a", 8), ("b", 4))
        for i in range(n)
    ]
    write_jsonl(root / "a.jsonl", rows[:8])
    b = rows[8:]
    if bad_line:
        b.insert(1, '{"id": "broken", "audio": ')  # line 2 of b.jsonl
    write_jsonl(root / "b.jsonl", b)
    return [{"path": str(root / "a.jsonl"), "weight": 0.75}, {"path": str(root / "b.jsonl"), "weight": 0.25}]


def mixed_module(sources, tokenizer, **kw) -> InterleavedDataModule:
    dm = InterleavedDataModule(train_files=sources, batch_size=2, max_length=128, **kw)
    dm.connect(DataSpec(tokenizer))
    return dm


def test_the_data_module_draws_by_weight_and_resumes_its_mixture_mid_epoch(tmp_path, tokenizer):
    sources = two_sources(tmp_path)

    def loader(position, weights=(0.75, 0.25)):
        dm = mixed_module(
            [{**s, "weight": w} for s, w in zip(sources, weights)], tokenizer, epoch_records=8, group_by_length=True
        )
        dm.setup("fit")
        if position:
            dm.load_state_dict({"train_position": {**position, "mixture": plan.describe()}})
        return dm.train_dataloader(), dm

    _, dm = loader(None)
    plan = dm.mixture
    assert dm.drawn(0) == {"a": 6, "b": 2} and len(dm.train_set) == 12
    assert [p.name for p in dm.train_set.paths()] == [f"c{i}.wav" for i in range(6)]
    dm.train_set.cache = "store"  # the run's feature cache reaches every file's records
    assert [part.cache for part in dm.train_set.parts] == ["store", "store"]
    assert list(dm.hparams.train_files) == sources
    position = {"epoch": 2, "batches_done": 1, "batch_size": 2, "world_size": 1}
    whole = [b["ids"] for b in loader({**position, "epoch": 5})[0]]  # epoch 0, not the resumed one: whole
    assert len(whole) == 4 and Counter(i[0] for b in whole for i in b) == {"a": 6, "b": 2}
    unbroken, _ = loader(None)
    unbroken.sampler.set_epoch(2)
    unbroken = [b["ids"] for b in unbroken]
    resumed, _ = loader(position)
    resumed.sampler.set_epoch(2)
    assert [b["ids"] for b in resumed] == unbroken[1:]
    with pytest.warns(UserWarning, match="another mixture of training files .* epoch 2 starts again"):
        other, _ = loader(position, weights=(0.5, 0.5))
    other.sampler.set_epoch(2)
    assert len(list(other)) == 4


def test_a_missing_source_names_the_command_that_writes_it(tmp_path):
    sources = [{"path": str(tmp_path / "a.jsonl"), "weight": 1}, {"path": str(tmp_path / "replay.jsonl"), "weight": 1}]
    (tmp_path / "a.jsonl").write_text("")
    dm = InterleavedDataModule(train_files=sources, written_by="interleave demo data/demo")
    with pytest.raises(
        InterleaveError, match=r"replay\.jsonl does not exist: write it with `interleave demo data/demo`"
    ):
        dm.prepare_data()


def test_a_bad_record_in_one_source_is_named_with_its_file_and_line_and_counted_for_that_source(
    tmp_path, tokenizer, monkeypatch
):
    sources = two_sources(tmp_path, bad_line=True)
    with pytest.raises(DataError, match=r"b\.jsonl:2: malformed JSON") as err:
        mixed_module(sources, tokenizer).setup("fit")
    assert len(err.value.problems) == 1
    monkeypatch.chdir(tmp_path)
    dm = mixed_module(sources, tokenizer, on_bad_record="skip")
    with pytest.warns(UserWarning, match="skipped 1 bad record"):
        dm.setup("fit")
    assert dm.rejected_by_source == {"a": 0, "b": 1}
    assert dm.mixture.sizes == [8, 4] and dm.mixture.epoch_length == 12
    (reject,) = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert reject["where"] == f"{tmp_path / 'b.jsonl'}:2"
    assert {dm.train_set[i]["record"].id for i in range(12)} == {f"a{i}" for i in range(8)} | {
        f"b{i}" for i in range(4)
    }


@pytest.mark.slow
def test_a_fit_on_a_mixture_logs_and_writes_the_records_drawn_per_source(
    tmp_path, small_dataset, tiny_model_kwargs, capsys
):
    import train
    from tests.helpers import run_dir, shard_config

    config_path = shard_config(
        tmp_path,
        small_dataset,
        tiny_model_kwargs,
        {"extra_layouts": [], "text_control": False},
        max_steps=-1,
        max_epochs=1,
    )
    config = yaml.safe_load(config_path.read_text())
    train_file = config["data"].pop("train_file")
    config["data"]["train_files"] = [
        {"path": train_file, "weight": 3},
        {"path": str(small_dataset / "val.jsonl"), "weight": 1, "name": "replay"},
    ]
    config["data"]["epoch_records"] = 8
    config_path.write_text(yaml.safe_dump(config))
    train.cli(["fit", "--config", str(config_path)])
    out = capsys.readouterr().out
    assert "[interleave] epoch 0 draws 8 records: 6 from train, 2 from replay" in out
    metrics = json.loads((run_dir(tmp_path) / "predictions" / "epoch=01.metrics.json").read_text())
    assert metrics["data/drawn/train"] == 6 and metrics["data/drawn/replay"] == 2
    assert not any(
        k.startswith("data/")
        for k in json.loads((run_dir(tmp_path) / "predictions" / "epoch=00.metrics.json").read_text())
    )  # before training: no draws


def test_a_pass_asked_again_after_later_ones_is_rebuilt_the_same():
    """Only the last two passes of a source are kept; asking for an older one rebuilds the chain."""
    plan = plan_of([10, 7], weights=(0.3, 0.7), epoch_records=9, seed=5)
    first = [plan.draw(e).tolist() for e in range(12)]
    assert len(plan._passes[1]) <= 2
    assert [plan.draw(e).tolist() for e in (3, 0, 11, 5)] == [first[e] for e in (3, 0, 11, 5)]
    fresh = plan_of([10, 7], weights=(0.3, 0.7), epoch_records=9, seed=5)
    assert fresh.draw(11).tolist() == first[11]


def test_one_file_listed_twice_under_two_names_is_two_sources_and_the_set_up_log_says_so(tmp_path, tokenizer, caplog):
    """Issue 34: a file listed twice with two names is accepted (each entry its own source), and the
    set-up log says so: the epoch counts the file's records twice (16 records an epoch from 8)."""
    import logging

    a = two_sources(tmp_path)[0]
    dm = mixed_module([{**a, "weight": 1}, {**a, "weight": 1, "name": "again"}], tokenizer)
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    assert dm.mixture.epoch_length == 16 and dm.drawn(0) == {"a": 8, "again": 8}
    notes = [line.strip() for line in caplog.text.splitlines() if "note:" in line]
    assert notes == [
        f"note: {a['path']} is listed 2 times (a, again): each entry is a source of its own, so "
        "epoch 0 draws 16 records from its 8; the epoch length counts its records 2 times"
    ]
    two = mixed_module(two_sources(tmp_path / "two"), tokenizer)  # two files: no note
    with caplog.at_level(logging.INFO):
        caplog.clear()
        two.setup("fit")
    assert "mixture of 2 record files" in caplog.text and "note:" not in caplog.text
