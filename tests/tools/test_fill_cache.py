"""interleave.tools.fill_cache: `interleave cache --config CONFIG` fills a run's feature cache ahead of time."""

import pytest
import yaml

from interleave.tools.fill_cache import main as cache_main
from tests.callbacks.test_shard_eval import write_shard
from tests.test_cache import cache_config


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def test_cache_command_fills_the_cache_for_a_run(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    config = cache_config(tmp_path, small_dataset, tiny_model_kwargs, feature_cache=str(tmp_path / "cache"))
    data = yaml.safe_load(open(config))
    data["trainer"]["callbacks"].append({"class_path": "callbacks.ShardEvaluation",
                                         "init_args": {"shard_file": str(write_shard(small_dataset))}})
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
