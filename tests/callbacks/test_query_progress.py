"""The evaluation's progress as the trainer shows its own (callbacks/query_progress.py)."""


def test_query_progress_follows_the_trainers_bar_and_only_rank_zero_shows_it(monkeypatch):
    import io
    from types import SimpleNamespace

    import rich.progress
    from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar
    from rich.console import Console

    from callbacks.query_progress import query_progress
    from interleave.progress import Progress

    rich_bar = RichProgressBar()
    rich_bar.progress = rich.progress.Progress(console=Console(file=io.StringIO()))
    rich_bar.progress.start()  # the trainer's bar, live
    with query_progress(
        SimpleNamespace(progress_bar_callback=rich_bar, is_global_zero=True), 15, "[interleave] SHARD"
    ) as task:
        task(10)
        (shown,) = rich_bar.progress.tasks
        assert (shown.description, shown.total, shown.completed) == ("SHARD", 15, 10)
    assert rich_bar.progress.tasks == []  # removed when done
    rich_bar.progress.stop()  # a bar the trainer stopped (after a fit) is not drawn into again
    with query_progress(SimpleNamespace(progress_bar_callback=rich_bar, is_global_zero=True), 15, "SHARD") as bar:
        assert isinstance(bar, Progress) and rich_bar.progress.tasks == []

    terminal = io.StringIO()
    terminal.isatty = lambda: True
    monkeypatch.setattr("sys.stdout", terminal)
    tqdm_trainer = SimpleNamespace(progress_bar_callback=TQDMProgressBar(), is_global_zero=True)
    with query_progress(tqdm_trainer, 15, "[interleave] SHARD") as bar:
        bar(15)
        assert bar.bar is not None and bar.file is terminal  # beside the trainer's tqdm bars, on its stream
    lines = []
    monkeypatch.setattr("callbacks.query_progress.rank_zero_info", lines.append)
    for callback in (None, TQDMProgressBar(refresh_rate=0)):  # no bar: plain lines, through rank_zero_info
        with query_progress(SimpleNamespace(progress_bar_callback=callback, is_global_zero=True), 15, "SHARD") as bar:
            bar(15)
        assert bar.bar is None and lines.pop().startswith("SHARD: done 15/15 queries (100%), ")
    with query_progress(SimpleNamespace(progress_bar_callback=None, is_global_zero=False), 15, "SHARD") as bar:
        bar(15)
    assert lines == []  # other ranks: nothing
