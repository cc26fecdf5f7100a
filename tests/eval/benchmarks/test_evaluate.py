"""interleave.eval.benchmarks.evaluate: both scorings with the clip and under every control, the tags,
the agreement, items a layout cannot ask, and the ranks' shares making up one process's figures."""

import json

import pytest

from interleave.data.collate import Collator
from interleave.errors import InterleaveError
from interleave.eval.benchmarks.evaluate import (
    CLIP,
    GENERATED,
    RANKED,
    BenchmarkConfig,
    RunSettings,
    ask,
    benchmark_metrics,
    prompt_limit,
    swap_table,
)
from interleave.eval.benchmarks.items import read_benchmark
from interleave.eval.evaluate import EvalInputs, Point
from interleave.eval.tasks import parse_tag
from interleave.model.generation import Sampling
from tests.helpers import write_clip


@pytest.fixture()
def bench(tmp_path):
    for i in range(3):
        write_clip(tmp_path / "audios" / f"c{i}.wav", freq=300.0 + 300 * i, seed=i)
    items = [
        {
            "id": f"i{k}",
            "audio_id": f"audios/c{k % 3}.wav",
            "question": f"What sound is this, number {k}?",
            "choices": ["Siren", "Drum", "Sine wave"],
            "answer": ["Siren", "Drum", "Sine wave"][k % 3],
            "task": "sound",
            "category": ["Sound Event", "Counting"][k % 2],
            "sub-category": None,
        }
        for k in range(5)
    ]
    items.append(
        {
            "id": "pair",
            "audio_id": ["audios/c0.wav", "audios/c1.wav"],
            "question": "Which is louder?",
            "choices": ["first", "second"],
            "answer": "first",
        }
    )
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(items))
    return read_benchmark(path)


def config(**over):
    args = {
        "name": "mini",
        "file": "unused",
        "scorings": (RANKED, GENERATED),
        "controls": ("no_clip", "silence", "noise", "swap"),
    }
    return BenchmarkConfig(**{**args, **over})


RUN = RunSettings(sampling=Sampling(max_new_tokens=3), repeats=2, batch_size=2)


def test_both_scorings_under_every_control(model, bench):
    inputs = EvalInputs(Collator(model.tokenizer, padding_side="left", with_answer=False))
    rows, metrics, counts = ask(model, config(), bench.items, RUN, inputs, {})
    assert counts == {
        "asked": 5,
        "skipped": 1,
        "too_long": 0,
        "no_swap": 0,
    }  # the two-clip item: one placeholder in the prompt
    kinds = {(r.condition, r.scoring) for r in rows}
    assert kinds == {(c, s) for c in (CLIP, "no_clip", "silence", "noise", "swap") for s in (RANKED, GENERATED)}
    assert len(rows) == 5 * 5 * 2
    for r in rows:
        assert (r.condition == "no_clip") == ("[AUDIO]" not in r.prompt)
        assert r.correct == (r.chosen == r.answer)
        if r.scoring == RANKED:
            assert len(r.scores) == 3 and r.chosen == max(range(3), key=lambda i: (r.scores[i], -i))
        else:
            assert len(r.answers) == len(r.named) == 2
    for tag in [
        "val/bench/mini/ranked/accuracy",
        "val/bench/mini/generated/accuracy",
        "val/bench/mini/generated/no_choice",
        "val/bench/mini/ranked/category/sound_event/accuracy",
        "val/bench/mini/ranked/category/counting/accuracy",
        "val/bench/mini/no_clip/ranked/accuracy",
        "val/bench/mini/no_clip/ranked/agreement",
        "val/bench/mini/swap/generated/agreement",
        "val/bench/mini/noise/generated/no_choice",
    ]:
        assert 0.0 <= metrics[tag] <= 1.0, tag
        assert parse_tag(tag) is None  # never read as a SHARD tag
    assert all(t.startswith("val/bench/mini/") for t in metrics)
    line = json.loads(rows[0].to_json())
    assert set(line) == {
        "benchmark",
        "condition",
        "scoring",
        "id",
        "prompt",
        "choices",
        "answer",
        "chosen",
        "correct",
        "category",
        "sub_category",
        "scores",
    }


def test_prompts_longer_than_the_benchmarks_max_length_are_counted_not_asked(model, bench):
    inputs = EvalInputs(Collator(model.tokenizer, padding_side="left", with_answer=False))
    rows, metrics, counts = ask(model, config(controls=(), max_length=40), bench.items, RUN, inputs, {})
    assert counts["too_long"] == 5 and counts["asked"] == 0 and not rows and not metrics
    assert inputs.collator.max_length == 512  # the run's collator is left as it was


def test_the_runs_training_max_length_does_not_bound_the_questions(model, bench):
    """A run that trains on short records (the demo's data.max_length is 128) still asks longer
    questions: by default a benchmark's prompts may take the LLM's context less the answer's room."""
    inputs = EvalInputs(Collator(model.tokenizer, padding_side="left", with_answer=False, max_length=40))
    _, _, counts = ask(model, config(controls=()), bench.items, RUN, inputs, {})
    assert counts["too_long"] == 0 and counts["asked"] == 5
    context = model.llm.config.max_position_embeddings
    assert prompt_limit(model, config(), RUN, 40) == context - RUN.sampling.max_new_tokens
    assert prompt_limit(model, config(), RUN, 4096) == 4096  # never less than the run's
    assert prompt_limit(model, config(max_length=64), RUN, 4096) == 64
    with pytest.raises(InterleaveError, match="max_length must be a whole number"):
        config(max_length=0)


def test_agreement_is_measured_against_the_clips_choice(bench):
    from interleave.eval.benchmarks.evaluate import BenchmarkRow

    def row(condition, chosen, item_id):
        return BenchmarkRow("b", condition, RANKED, item_id, "p", ["a", "b"], 0, chosen, chosen == 0)

    rows = {
        (CLIP, RANKED): [row(CLIP, 0, "x"), row(CLIP, 1, "y")],
        ("silence", RANKED): [row("silence", 0, "x"), row("silence", 0, "y")],
    }
    metrics = benchmark_metrics(config(name="b"), rows)
    assert metrics["val/bench/b/ranked/accuracy"] == 0.5
    assert metrics["val/bench/b/silence/ranked/accuracy"] == 1.0
    assert metrics["val/bench/b/silence/ranked/agreement"] == 0.5


def test_two_ranks_make_up_one_processs_rows(model, bench):
    inputs = EvalInputs(Collator(model.tokenizer, padding_side="left", with_answer=False))
    one, metrics, _ = ask(model, config(controls=("no_clip",)), bench.items, RUN, inputs, {})
    shares = [
        ask(model, config(controls=("no_clip",)), bench.items, RUN, inputs, {}, Point(0, rank, 2))[0] for rank in (0, 1)
    ]
    assert len(shares[0]) + len(shares[1]) == len(one)
    merged = {}
    for r in sorted(shares[0] + shares[1], key=lambda r: r.index):
        merged.setdefault((r.condition, r.scoring), []).append(r)
    assert [r for part in merged.values() for r in part] == one
    assert benchmark_metrics(config(controls=("no_clip",)), merged) == metrics


def test_swap_takes_another_items_clips_with_as_many_clips(bench):
    table = swap_table(bench.items, seed=0)
    assert set(table) == {f"i{k}" for k in range(5)}  # the pair is alone with two clips
    assert all(table[it.id] != it.clips for it in bench.items if it.id in table)
    assert table == swap_table(bench.items, seed=0) != swap_table(bench.items, seed=5)


def test_configs_are_checked():
    with pytest.raises(InterleaveError, match="scorings"):
        config(scorings=("guess",))
    with pytest.raises(InterleaveError, match="controls"):
        config(controls=("static",))
    with pytest.raises(InterleaveError, match="name"):
        config(name="a/b")
    with pytest.raises(InterleaveError, match="subset"):
        config(subset=0)
    with pytest.raises(InterleaveError, match="rule"):
        config(rule="fuzzy")
    with pytest.raises(InterleaveError, match="names a field"):
        config(prompts={"interleaved": "{nope}"})


def test_every_rank_asks_stop_as_often_and_answers_its_own_chunks():
    from interleave.eval.benchmarks.evaluate import _rounds

    rounds = {rank: _rounds(5, 2, Point(0, rank, 2)) for rank in (0, 1)}
    assert len(rounds[0]) == len(rounds[1]) == 2  # 3 chunks over 2 ranks: two rounds each, one empty on rank 1
    assert rounds[0] == [range(0, 2), range(4, 5)] and rounds[1] == [range(2, 4), None]
    assert _rounds(0, 2, Point()) == []
