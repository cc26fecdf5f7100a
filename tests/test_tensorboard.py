"""`tensorboard --logdir runs`, the README's command for the forgetting curves, starts on a fresh
install and serves a run's SHARD tags (the pinned TensorBoard once crashed at start-up, importing
the `pkg_resources` that current setuptools no longer has)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from lightning.pytorch.loggers import TensorBoardLogger

TAGS = ("val/shard/synonym/f1", "val/shard/hypernym/f1", "val/identity/accuracy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tensorboards_reader_finds_the_shard_tags_the_logger_wrote(tmp_path):
    """What the server below serves, read in this process by TensorBoard's own reader; importing its
    program (what `tensorboard` runs) must not need `pkg_resources`."""
    import tensorboard.program  # noqa: F401  (the start-up import that once failed)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path / "runs", name="demo")
    for step, value in ((0, 0.4), (48, 0.1)):
        logger.log_metrics({tag: value for tag in TAGS}, step=step)
    logger.finalize("success")
    (events,) = (tmp_path / "runs" / "demo").glob("version_0")
    reader = EventAccumulator(str(events)).Reload()
    assert set(TAGS) <= set(reader.Tags()["scalars"])
    assert [(e.step, round(e.value, 3)) for e in reader.Scalars(TAGS[0])] == [(0, 0.4), (48, 0.1)]


@pytest.mark.slow
def test_tensorboard_serves_the_shard_tags_of_a_run(tmp_path):
    logger = TensorBoardLogger(tmp_path / "runs", name="demo")  # as the configs log
    for step, value in ((0, 0.4), (48, 0.1)):
        logger.log_metrics({tag: value for tag in TAGS}, step=step)
    logger.finalize("success")

    port = free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen(
        [str(tensorboard), "--logdir", str(tmp_path / "runs"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline, tags = time.monotonic() + 90, {}
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=5) as reply:
                    tags = json.load(reply)
                if tags:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert server.poll() is None, server.stdout.read()  # it started and is still serving
        (run,) = tags
        assert set(TAGS) <= set(tags[run])
        query = urllib.parse.urlencode({"run": run, "tag": TAGS[0]})
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?{query}", timeout=5) as reply:
            points = json.load(reply)
        assert [(p[1], round(p[2], 3)) for p in points] == [(0, 0.4), (48, 0.1)]
    finally:
        server.terminate()
        server.wait(timeout=30)
