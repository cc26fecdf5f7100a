"""callbacks.RunSummary: where a run's logs are, and its checkpoints with their sizes."""

from pathlib import Path
from types import SimpleNamespace

from lightning.pytorch.callbacks import ModelCheckpoint

from callbacks import RunSummary


def test_the_log_folder_at_fit_start_and_each_checkpoint_once_at_fit_end(tmp_path, capsys):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    best, last = folder / "epoch=0-step=2.ckpt", folder / "last.ckpt"
    best.write_bytes(bytes(2**20))
    last.write_bytes(bytes(2**19))
    checkpoint = ModelCheckpoint(dirpath=str(folder))
    checkpoint.best_model_path, checkpoint.last_model_path = str(best), str(last)
    log_dir = tmp_path / "runs" / "t" / "version_0"
    trainer = SimpleNamespace(log_dir=str(log_dir), is_global_zero=True, callbacks=[checkpoint])
    summary = RunSummary()
    summary.on_fit_start(trainer, None)
    summary.on_fit_end(trainer, None)
    assert capsys.readouterr().out.splitlines() == [
        f"[interleave] logs: {log_dir}  (view: tensorboard --logdir {Path(log_dir).parent})",
        f"[interleave] checkpoint: {best} (1.0 MiB)",
        f"[interleave] checkpoint: {last} (0.5 MiB)",
    ]
    checkpoint.best_model_path = str(last)  # the best checkpoint is the last one: named once
    summary.on_fit_end(trainer, None)
    assert capsys.readouterr().out == f"[interleave] checkpoint: {last} (0.5 MiB)\n"
    summary.on_fit_start(SimpleNamespace(log_dir=str(log_dir), is_global_zero=False, callbacks=[]), None)
    summary.on_fit_start(SimpleNamespace(log_dir=None, is_global_zero=True, callbacks=[]), None)
    assert capsys.readouterr().out == ""  # other ranks, and runs without a logger, print nothing


def test_a_mixtures_draws_per_source_are_printed_logged_and_left_for_the_metrics_file(capsys):
    import torch

    logged = []
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.append((metrics, step)))
    datamodule = SimpleNamespace(drawn=lambda epoch: {"labels": 333 - epoch, "replay": 83 + epoch})
    trainer = SimpleNamespace(
        datamodule=datamodule,
        current_epoch=1,
        global_step=52,
        is_global_zero=True,
        loggers=[logger],
        callback_metrics={"train/loss": torch.tensor(1.5)},
    )
    RunSummary().on_train_epoch_start(trainer, None)
    assert capsys.readouterr().out == "[interleave] epoch 1 draws 416 records: 332 from labels, 84 from replay\n"
    assert logged == [({"data/drawn/labels": 332.0, "data/drawn/replay": 84.0}, 52)]
    assert {k: float(v) for k, v in trainer.callback_metrics.items()} == {
        "train/loss": 1.5,
        "data/drawn/labels": 332.0,
        "data/drawn/replay": 84.0,
    }
    other_rank = SimpleNamespace(**{**vars(trainer), "is_global_zero": False, "callback_metrics": {}})
    RunSummary().on_train_epoch_start(other_rank, None)
    assert (
        capsys.readouterr().out == ""
        and len(logged) == 1
        and set(other_rank.callback_metrics) == {"data/drawn/labels", "data/drawn/replay"}
    )  # every rank holds them; rank 0 prints and logs
    for plain in (SimpleNamespace(drawn=lambda epoch: {}), None):  # one training file, or no data module
        quiet = SimpleNamespace(**{**vars(trainer), "datamodule": plain, "callback_metrics": {}})
        RunSummary().on_train_epoch_start(quiet, None)
        assert quiet.callback_metrics == {} and capsys.readouterr().out == ""
