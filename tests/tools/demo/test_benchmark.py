"""interleave.tools.demo.benchmark: the demo's benchmark.json is MMAU's format, about its held-out clips,
every item good, seeded."""

import json

from interleave.eval.benchmarks.items import read_benchmark
from interleave.tools.demo.benchmark import BENCHMARK_FILE, CATEGORIES, benchmark_items
from interleave.tools.demo.cli import DEMO_CLASSES, make_demo_data


def test_the_demo_writes_a_good_mmau_format_benchmark_about_its_heldout_clips(tmp_path):
    summary = make_demo_data(tmp_path, train_per_class=1, heldout_per_class=2, seed=0)
    bench = read_benchmark(tmp_path / BENCHMARK_FILE)
    assert not bench.problems and len(bench.items) == summary["benchmark_items"] == 2 * len(DEMO_CLASSES)
    raw = json.loads((tmp_path / BENCHMARK_FILE).read_text())
    assert set(raw[0]) == {
        "id",
        "audio_id",
        "question",
        "choices",
        "answer",
        "dataset",
        "task",
        "split",
        "category",
        "sub-category",
        "difficulty",
    }
    for item in bench.items:
        assert len(item.choices) == 4 and item.answer in item.choices and "/heldout/" in item.clips[0]
    assert {item.category for item in bench.items} == set(CATEGORIES.values())
    assert "benchmark.json" in (tmp_path / "README.txt").read_text()


def test_the_items_are_seeded_and_every_class_has_its_category():
    assert set(CATEGORIES) == set(DEMO_CLASSES)
    assert (
        benchmark_items(DEMO_CLASSES, 4, 0)
        == benchmark_items(DEMO_CLASSES, 4, 0)
        != benchmark_items(DEMO_CLASSES, 4, 1)
    )
    assert len(benchmark_items(DEMO_CLASSES, 1, 0)) == len(DEMO_CLASSES)
