"""interleave.tools.fill_cache: `interleave cache --config CONFIG` fills a run's feature cache ahead of time."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from interleave.cli import build_run
from interleave.encoders.cache import FeatureCache
from interleave.tools.fill_cache import main as cache_main
from tests.helpers import cache_config, copy_entry, own_features, two_clip_dataset, write_shard

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def test_cache_command_fills_the_cache_for_a_run(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    config = cache_config(tmp_path, small_dataset, tiny_model_kwargs, feature_cache=str(tmp_path / "cache"))
    data = yaml.safe_load(open(config))
    data["trainer"]["callbacks"].append(
        {"class_path": "callbacks.ShardEvaluation", "init_args": {"shard_file": str(write_shard(small_dataset))}}
    )
    open(config, "w").write(yaml.safe_dump(data))
    assert cache_main(["--config", config]) == 0
    out, err = capsys.readouterr()
    assert "0 cached, 6 computed, 0 damaged" in out  # 6 clips: train, val and SHARD
    assert "[interleave] feature cache: done 6/6 clips (100%), " in err and "clips/s" in err  # the progress
    assert cache_main(["--config", config]) == 0
    out, err = capsys.readouterr()
    assert "6 cached, 0 computed" in out
    assert "[interleave] feature cache: done 6/6 clips (100%), 6 already done, " in err
    assert cache_main(["--config", config, "--data.feature_cache=null"]) == 2
    assert "set data.feature_cache" in capsys.readouterr().err


def test_switching_the_audio_channel_never_reads_stale_features(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    config = cache_config(tmp_path, small_dataset, tiny_model_kwargs, feature_cache=str(tmp_path / "cache"))
    assert cache_main(["--config", config]) == 0
    assert "0 cached, 6 computed" in capsys.readouterr().out  # 6 clips: train and val
    assert cache_main(["--config", config, "--data.audio_channel=mean"]) == 0
    assert "0 cached, 6 computed" in capsys.readouterr().out  # another fingerprint: computed again
    assert cache_main(["--config", config, "--data.audio_channel=first"]) == 0
    assert "6 cached, 0 computed" in capsys.readouterr().out


def test_cache_command_refills_another_clips_entry_copied_over(tmp_path, tiny_model_kwargs, capsys):
    """Issue 34 (b): with the siren's entry copied over the drum's, `interleave cache` said
    `2 cached, 0 damaged` and the drum kept the siren's features."""
    drum, siren = two_clip_dataset(tmp_path / "data")
    config = cache_config(tmp_path, tmp_path / "data", tiny_model_kwargs, feature_cache=str(tmp_path / "cache"))
    assert cache_main(["--config", config]) == 0
    assert "0 cached, 2 computed, 0 damaged" in capsys.readouterr().out
    enc = build_run(["--config", config]).model.audio_encoder  # the run's own encoder, as the command built it
    cache = FeatureCache.of(tmp_path / "cache", enc)
    siren_bytes = cache.entry(siren).read_bytes()
    entry = copy_entry(cache, siren, drum)
    assert cache_main(["--config", config]) == 0
    out, err = capsys.readouterr()
    assert "1 cached, 0 computed, 1 damaged and rebuilt" in out
    damaged = [line for line in err.splitlines() if "damaged feature cache entry" in line]
    assert damaged == [
        f"[interleave] damaged feature cache entry rebuilt: {entry} (the entry of {drum}): "
        f"it holds the features of {siren}"
    ]
    assert torch.allclose(cache.get(drum), own_features(enc, drum), atol=1e-6)  # refilled from the drum itself
    assert cache.entry(siren).read_bytes() == siren_bytes  # the good entry is kept as it was
    assert cache_main(["--config", config]) == 0
    assert "2 cached, 0 computed, 0 damaged" in capsys.readouterr().out


@pytest.mark.slow
def test_cache_help_names_the_command():
    """Issue 34: `interleave cache --help` printed `usage: interleave [-c CONFIG]`."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from interleave.tools.command import main; "
            "sys.argv[0] = '/venv/bin/interleave'; sys.exit(main())",
            "cache",
            "--help",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: interleave cache [-c CONFIG]")
    assert "--config" in done.stdout and "--data" in done.stdout and "--trainer" in done.stdout
