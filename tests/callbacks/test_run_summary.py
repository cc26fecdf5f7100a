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
