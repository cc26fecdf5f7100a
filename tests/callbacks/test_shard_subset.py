"""ShardEvaluation's `max_queries_per_task` through train.py: the same subset at every evaluated point
and on every DDP rank, recorded in the metrics file, refused beside a run on another part of the SHARD;
a bad value refused naming the flag; the documented quick validate sets it on the demo's callback."""

from __future__ import annotations

import json
import logging
import shlex
from pathlib import Path

import pytest
import yaml

import train
from callbacks import ShardEvaluation
from interleave import provenance
from interleave.errors import InterleaveError
from interleave.eval.format import read_shard
from interleave.eval.query import query_id
from interleave.eval.settings import SUBSET_RULE, capped_queries
from interleave.tools.report import cli as report
from interleave.tools.report.table import rows
from tests.helpers import DOC_COMMANDS, run_dir, run_on_devices, write_config, write_jsonl

REPO = Path(__file__).resolve().parents[2]
QUICK = (
    "python train.py validate --config configs/demo.yaml --trainer.limit_val_batches=2 "
    "--trainer.callbacks.init_args.max_queries_per_task=2"
)
SUBSET = f"at most 2 queries per task, seed 0, {SUBSET_RULE}"


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def write_shard(folder: Path) -> Path:
    """30 queries in the builder's id layout: 2 words x 3 clips, each an identity query and a yes and a
    no per relation (the small dataset's clips: c0, c2, c4 are Sine wave's, c1, c3, c5 Siren's)."""
    rows = []
    for i in range(6):
        label, word, k = ("Sine wave", "sine wave", i // 2) if i % 2 == 0 else ("Siren", "siren", i // 2)
        audio = f"audio/c{i}.wav"
        rows.append(
            {"id": query_id("identity", label, k), "task": "identity", "label": label, "word": word, "audio": audio}
        )
        for relation, yes, no in (("synonym", "sinusoid", "drum"), ("hypernym", "signal", "animal")):
            for candidate, truth in ((yes, "yes"), (no, "no")):
                rows.append(
                    {
                        "id": query_id(relation, label, k, candidate),
                        "task": relation,
                        "label": label,
                        "word": word,
                        "candidate": candidate,
                        "truth": truth,
                        "audio": audio,
                    }
                )
    return write_jsonl(folder / "shard.jsonl", rows)


def config_with(out: Path, data_dir: Path, model_kwargs: dict, cap: int | None, name: str = "t", **trainer) -> Path:
    """The small test config (its run folder `out/runs/<name>/version_0`) with a ShardEvaluation capped at `cap`."""
    path = write_config(out, data_dir, model_kwargs, **trainer)
    config = yaml.safe_load(path.read_text())
    config["trainer"]["logger"]["init_args"]["name"] = name  # the report labels a run `<name>/version_0`
    args = {
        "shard_file": str(write_shard(data_dir)),
        "repeats": 1,
        "batch_size": 2,
        "sampling": {"max_new_tokens": 2},
        "probes": ["swap"],
        **({} if cap is None else {"max_queries_per_task": cap}),
    }
    config["trainer"]["callbacks"].append({"class_path": "callbacks.ShardEvaluation", "init_args": args})
    path.write_text(yaml.safe_dump(config))
    return path


def point(run: Path, epoch: int) -> tuple[dict, list[dict]]:
    stem = run / "predictions" / f"epoch={epoch:02d}"
    rows = [json.loads(line) for line in Path(f"{stem}.jsonl").read_text().splitlines()]
    return json.loads(Path(f"{stem}.metrics.json").read_text()), rows


@pytest.mark.slow
def test_a_capped_fit_asks_the_same_subset_at_every_point_and_records_it(
    tmp_path, small_dataset, tiny_model_kwargs, caplog
):
    config = config_with(tmp_path, small_dataset, tiny_model_kwargs, 2, max_steps=-1, max_epochs=1)
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="lightning.pytorch"):
            train.cli(["fit", "--config", str(config)])
    finally:
        logger.removeHandler(caplog.handler)
    assert any(m.startswith(f"[interleave] SHARD: 6 of 30 queries ({SUBSET}) x 1 repeats") for m in caplog.messages)
    chosen = [q.id for q in capped_queries(read_shard(small_dataset / "shard.jsonl"), 2)]
    assert len(chosen) == 6
    asked = {}
    for epoch in (0, 1):
        metrics, rows = point(run_dir(tmp_path), epoch)
        assert metrics["shard_subset"] == SUBSET
        assert metrics["shard_hash"] == provenance.file_hash(small_dataset / "shard.jsonl")  # the file's, as ever
        asked[epoch] = {c: [r["id"] for r in rows if r["condition"] == c] for c in ("interleaved", "swap")}
        assert asked[epoch]["interleaved"] == asked[epoch]["swap"] == chosen
    assert asked[0] == asked[1]


@pytest.mark.slow
def test_a_capped_run_is_reported_alone_and_refused_beside_a_full_one(tmp_path, small_dataset, tiny_model_kwargs):
    runs = {}
    for name, cap in (("capped", 2), ("also_capped", 2), ("full", None), ("capped_more", 1)):
        out = tmp_path / name
        out.mkdir()
        train.cli(["validate", "--config", str(config_with(out, small_dataset, tiny_model_kwargs, cap, name))])
        runs[name] = out / "runs" / name / "version_0"
    metrics, _ = point(runs["full"], 0)
    assert "shard_subset" not in metrics  # a full evaluation writes the keys it always wrote
    assert len(rows([runs["capped"], runs["also_capped"]])) == 4  # the same subset: side by side
    for other in ("full", "capped_more"):
        with pytest.raises(InterleaveError, match="evaluated on different parts of the SHARD"):
            rows([runs["capped"], runs[other]])
    assert report.main([str(runs["capped"]), str(runs["full"]), "--out", str(tmp_path / "r")]) == 2


@pytest.mark.slow
def test_ddp_ranks_ask_the_subset_one_process_asks(tmp_path, small_dataset, tiny_model_kwargs):
    found = {}
    for devices in (1, 2):
        out = tmp_path / f"d{devices}"
        out.mkdir()
        config = config_with(out, small_dataset, tiny_model_kwargs, 3)
        run_on_devices("validate", config, devices, tmp_path)
        metrics, rows = point(run_dir(out), 0)
        assert metrics["shard_subset"] == f"at most 3 queries per task, seed 0, {SUBSET_RULE}"
        keys = [(r["condition"], r["id"]) for r in rows]
        assert len(keys) == len(set(keys))  # each query of the subset answered once
        found[devices] = rows
    chosen = [q.id for q in capped_queries(read_shard(small_dataset / "shard.jsonl"), 3)]
    assert [r["id"] for r in found[1] if r["condition"] == "interleaved"] == chosen
    assert found[2] == found[1]


@pytest.mark.parametrize("cap", [0, -1, 2.5, True])
def test_the_callback_refuses_a_cap_that_is_not_a_whole_number_of_at_least_1(cap):
    with pytest.raises(InterleaveError, match="ShardEvaluation: .*max_queries_per_task must be a whole number"):
        ShardEvaluation("shard.jsonl", max_queries_per_task=cap)


@pytest.mark.slow
def test_a_bad_cap_is_one_error_naming_the_flag(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    config = str(config_with(tmp_path, small_dataset, tiny_model_kwargs, None))
    flag = "--trainer.callbacks.init_args.max_queries_per_task"
    # Out of range: the constructor's error; jsonargparse raises it wrapped (as the cause of its own),
    # and `train.main` prints such an error as one `error:` line (interleave.errors.report_errors).
    with pytest.raises(Exception) as raised:
        train.cli(["validate", "--config", config, f"{flag}=0"])
    causes, err = [], raised.value
    while err is not None:
        causes.append(err)
        err = err.__cause__
    assert any(isinstance(e, InterleaveError) and "max_queries_per_task" in str(e) for e in causes), causes
    # Not a whole number: refused by the command line's parser, naming the key, before anything is built.
    with pytest.raises(SystemExit) as done:
        train.cli(["validate", "--config", config, f"{flag}=2.5"])
    assert done.value.code == 2 and "max_queries_per_task" in capsys.readouterr().err


@pytest.mark.slow
def test_the_documented_quick_validate_caps_the_demos_shard_evaluation(monkeypatch, capsys):
    assert QUICK in DOC_COMMANDS
    for doc in ("docs/getting-started.md", "docs/evaluation.md"):
        assert QUICK in (REPO / doc).read_text(encoding="utf-8"), doc
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as done:
        train.cli([*shlex.split(QUICK)[2:], "--print_config"])
    assert done.value.code == 0
    config = yaml.safe_load(capsys.readouterr().out)
    callbacks = config["trainer"]["callbacks"]
    (shard,) = [c for c in callbacks if c["class_path"] == "callbacks.ShardEvaluation"]
    assert shard["init_args"]["max_queries_per_task"] == 2 and shard["init_args"]["probes"] == ["silence", "swap"]
    assert all("max_queries_per_task" not in c.get("init_args", {}) for c in callbacks if c is not shard)
    # the command line reads the number as a float, 2.0, which Lightning takes as 2 batches (1 would be 1.0: all)
    assert config["trainer"]["limit_val_batches"] == 2.0
    from lightning.pytorch.trainer.setup import _determine_batch_limits

    assert _determine_batch_limits(2.0, "limit_val_batches") == 2 and _determine_batch_limits(1.0, "x") == 1.0
