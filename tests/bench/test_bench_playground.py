"""bench/bench_playground.py at a tiny size: two users at once, two asks each, every ask answered,
the figures it writes named (answers, errors, latency, memory against its bound)."""

from __future__ import annotations

import pytest

pytest.importorskip("gradio", reason='the playground extra: pip install -e ".[playground]"')

from bench import bench_playground  # noqa: E402


def test_a_tiny_run_answers_every_ask_and_reports_latency_and_memory(tokenizer_dir, capsys):
    body = bench_playground.main(
        [
            "--users",
            "2",
            "--asks",
            "2",
            "--repeats",
            "1",
            "--max-new-tokens",
            "2",
            "--tokenizer",
            str(tokenizer_dir),
            "--no-write",
        ]
    )
    assert "2 gradio_client users at once x 2 asks each on 127.0.0.1" in body
    assert "- answers returned: 4/4\n" in body and "- errors: 0\n" in body
    assert "p50 " in body and "p95 " in body and "asks/s" in body
    assert "MB before (after one warm-up ask)" in body and "bound 200 MB" in body and "over the second half" in body
    assert body in capsys.readouterr().out


def test_percentiles_and_the_section_say_what_went_wrong():
    assert bench_playground.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    load = bench_playground.Load(
        latencies=[1.0], answers=1, errors=["ValueError: queue full", "ValueError: queue full"]
    )
    result = {"load": load, "before": 100.0, "after": 400.0, "wall": 2.0, "serving": "the zero-shot model"}
    body = bench_playground.section(result, 1, 3, 1, 2, "a model", 200.0)
    assert "- answers returned: 1/3\n" in body and "- errors: 2\n    - ValueError: queue full\n" in body
    assert "+300 MB, bound 200 MB: BEYOND it (nan MB after half the asks" in body
