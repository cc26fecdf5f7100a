"""callbacks.PaddingFraction: the share of padding in an epoch's batches, counted and logged."""

from types import SimpleNamespace

import pytest
import torch

from callbacks import PaddingFraction


def test_group_by_length_fit_logs_the_padding_fraction(tmp_path, small_dataset, tiny_model_kwargs, monkeypatch):
    import yaml

    import train
    from tests.conftest import write_config

    monkeypatch.setattr("sys.argv", ["train.py"])
    config = write_config(tmp_path, small_dataset, tiny_model_kwargs)
    data = yaml.safe_load(config.read_text())
    data["data"]["group_by_length"] = True
    data["trainer"]["callbacks"].append({"class_path": "callbacks.PaddingFraction"})
    config.write_text(yaml.safe_dump(data))
    run = train.cli(["fit", "--config", str(config)])
    fraction = float(run.trainer.callback_metrics["train/padding_fraction"])
    assert 0.0 <= fraction < 0.5


def test_padding_fraction_counts_every_batch_of_the_epoch_and_starts_again_at_the_next():
    logged = {}
    trainer = SimpleNamespace(strategy=SimpleNamespace(reduce=lambda counts, reduce_op: counts))
    module = SimpleNamespace(device=torch.device("cpu"), log=lambda name, value: logged.__setitem__(name, value))
    callback = PaddingFraction()
    for epoch, masks in enumerate(
        [
            [torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]), torch.tensor([[1, 1, 1], [1, 0, 0]])],  # 4 of 14 are padding
            [torch.tensor([[1, 1], [1, 1]])],  # none
        ]
    ):
        callback.on_train_epoch_start(trainer, module)
        for i, mask in enumerate(masks):
            callback.on_train_batch_end(trainer, module, None, {"attention_mask": mask}, i)
        callback.on_train_epoch_end(trainer, module)
        assert logged["train/padding_fraction"] == pytest.approx([4 / 14, 0.0][epoch])
    logged.clear()
    callback.on_train_epoch_start(trainer, module)
    callback.on_train_epoch_end(trainer, module)  # an epoch without batches logs nothing
    assert logged == {}
