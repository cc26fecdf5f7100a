"""bench/bench_eval.py: the queries it draws, and equal work: its LTU-style loop writes the very
answers of the evaluator (same sampler, same random streams), whose two modes agree on every verdict."""

from __future__ import annotations

import pytest
import torch

from bench import bench_eval
from interleave.data.collate import Collator
from interleave.eval.evaluate import EvalInputs
from interleave.eval.query import Query
from interleave.eval.settings import EvalSettings
from interleave.model.generation import Sampling
from interleave.model.module import AudioLLM
from tests.helpers import write_clip


def shard(tmp_path, n_clips=3) -> list[Query]:
    queries = []
    for i in range(n_clips):
        clip = str(write_clip(tmp_path / f"c{i}.wav", freq=300.0 + 200 * i, seed=i))
        queries.append(Query(id=f"identity/{i}", task="identity", label="Siren", word="siren", audio=clip, where="t"))
        for task, candidate in (("synonym", "alarm"), ("hypernym", "signal"), ("synonym", "drum")):
            queries.append(
                Query(
                    id=f"{task}/{i}/{candidate}",
                    task=task,
                    label="Siren",
                    word="siren",
                    candidate=candidate,
                    truth="yes" if candidate != "drum" else "no",
                    audio=clip,
                    where="t",
                )
            )
        queries.append(
            Query(
                id=f"pair/{i}",
                task="pair",
                label="Siren",
                word="siren",
                candidate="siren",
                truth="yes",
                audio=clip,
                other_audio=clip,
                where="t",
            )
        )
    return queries


def test_queries_are_drawn_with_a_fixed_seed_from_every_task(tmp_path):
    queries = shard(tmp_path)
    drawn = bench_eval.draw_queries(queries, 4)
    assert len(drawn) == 4 and {q.task for q in drawn} == {"synonym", "hypernym", "identity", "pair"}
    assert drawn == bench_eval.draw_queries(queries, 4)
    assert [q.id for q in bench_eval.draw_queries(queries, 4, seed=1)] != [q.id for q in drawn]
    assert len(bench_eval.draw_queries(queries, 100)) == len(queries)


@pytest.mark.slow  # the benchmark's two loops run
def test_the_ltu_style_loop_writes_the_evaluators_answers_and_both_modes_agree(tmp_path, tiny_model_kwargs):
    torch.manual_seed(0)
    model = AudioLLM(**tiny_model_kwargs).eval()
    queries = bench_eval.draw_queries(shard(tmp_path), 6)
    assert any(q.task == "pair" for q in queries)  # two clips through the LTU-style loop too
    base = EvalSettings(sampling=Sampling(temperature=1.0), repeats=2, batch_size=4)
    inputs = EvalInputs(Collator(model.tokenizer, padding_side="left", with_answer=False))
    result = bench_eval.measure(model, queries, base, inputs, cap=6)
    total = len(queries) * 2
    assert len(result["ltu"].answers) == len(result["full"].answers) == total
    assert result["same_answers"] == total and result["ltu"].answers == result["full"].answers
    assert result["same_verdicts"] == total
    assert result["tokens_ltu"] == result["tokens_full"] > 0
    steps = {rows: bench_eval.decode_step_seconds(model, rows, context=8, steps=2) for rows in (1, 8)}
    assert all(seconds > 0 for seconds in steps.values())
    body = bench_eval.section([result], len(queries), 2, 4, {"synonym": 2, "hypernym": 2, "identity": 2}, steps)
    assert "\n    full answers: " in body and "\n    default mode: " in body
    assert f"Verdicts identical in both modes: {total}/{total}" in body
    longest = max(bench_eval.answer_tokens(model, a) for a in result["ltu"].answers)
    assert (
        f"Longest answer: {longest} tokens." in body and "at 1 row, " in body and "in a batch of 8 than alone" in body
    )
    assert f"The longest answer alone takes about {longest} x " in body


def test_the_benchmark_case_times_both_scorings_on_the_same_items(tmp_path, tiny_model_kwargs):
    import json

    torch.manual_seed(0)
    model = AudioLLM(**tiny_model_kwargs).eval()
    names = ["Siren", "Drum", "Tick", "Buzz"]
    items = [
        {
            "id": f"i{i}",
            "audio_id": str(write_clip(tmp_path / f"c{i}.wav", freq=300.0 + 100 * i, seed=i)),
            "question": "Which sound?",
            "choices": names,
            "answer": names[i % 4],
        }
        for i in range(3)
    ]
    (tmp_path / "benchmark.json").write_text(json.dumps(items))
    r = bench_eval.benchmark_case(model, tmp_path, n=3, repeats=2, batch_size=2, cap=3)
    assert r["items"] == 3 and 0 <= r["same"] <= 3 and 0 <= r["no_choice"] <= 3
    assert set(r["sides"]) == {"ranked", "generated"} and all(s[0] > 0 for s in r["sides"].values())
    text = bench_eval.benchmark_section(r, 2, 2, 3)
    assert "| ranked |" in text and "| generated |" in text and "pick the same choice" in text


@pytest.mark.parametrize("family", ["qwen2_audio", "audioflamingo3"])
def test_the_released_case_gives_transformers_generates_answers(tmp_path, family):
    """bench_eval --qwen2-audio / --released: the evaluator on a released Qwen2-Audio or Audio
    Flamingo 3 (model.pretrained) answers exactly as transformers' released class's generate does
    one query at a time (AF3's interleaved prompts written inline)."""
    from tests.helpers import save_tiny_audioflamingo3, save_tiny_qwen2_audio

    save = save_tiny_qwen2_audio if family == "qwen2_audio" else save_tiny_audioflamingo3
    folder = save(tmp_path / family)
    queries = shard(tmp_path)
    body, ours, theirs = bench_eval.released_section(folder, queries, batch_size=4, cap=6)
    assert len(ours.answers) == len(theirs.answers) == len(queries)
    assert ours.answers == theirs.answers
    assert f"Answers identical on both sides: {len(queries)}/{len(queries)}." in body
