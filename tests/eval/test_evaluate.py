"""interleave.eval.evaluate: Table 1 prompts, the text control, rank-independent answers, stop requests,
the parser setting, the scoring mode, and the metrics (the `model` fixture: tests/test_generation.py)."""

import itertools
from dataclasses import replace

import pytest

from interleave.data.collate import Collator
from interleave.errors import InterleaveError
from interleave.eval.evaluate import (
    EvalInputs,
    EvalSettings,
    EvaluationStopped,
    answer_queries,
    condition_metrics,
    condition_queries,
    prompt_table,
    rank_share,
    relation_metrics,
    render_instruction,
)
from interleave.eval.query import Query
from interleave.eval.tasks import TASKS
from interleave.model.generation import Sampling
from tests.helpers import favouring, prediction, write_clip


def inputs(tokenizer) -> EvalInputs:
    """The run-dependent inputs of a test evaluation: the default template's left-padded collation."""
    return EvalInputs(Collator(tokenizer, padding_side="left", with_answer=False))


def query(task="synonym", candidate="alarm", truth="yes", qid="q", audio="a.wav", label="Siren", word="siren"):
    return Query(id=qid, task=task, label=label, word=word, candidate=candidate, truth=truth, audio=audio, where="t:1")


@pytest.fixture()
def queries(tmp_path):
    clips = [str(write_clip(tmp_path / f"c{i}.wav", freq=300.0 + 200 * i, seed=i)) for i in range(3)]
    out = []
    for i, (clip, task) in enumerate(itertools.product(clips, ["synonym", "hypernym", "identity"])):
        if task == "identity":
            out.append(query(task, None, None, f"q{i}", clip))
        else:
            out.append(query(task, "warning signal" if i % 2 else "drum", "yes" if i % 2 else "no", f"q{i}", clip))
    return out


def test_table1_prompts_for_each_condition():
    syn, hyp, ident = query("synonym", "alarm"), query("hypernym", "signal"), query("identity", None, None)
    table = prompt_table()
    assert render_instruction(syn, "interleaved", table) == "Is [AUDIO] similar to alarm?"
    assert render_instruction(syn, "noninterleaved", table) == (
        "Is the sound of the object in this audio signal similar to alarm?"
    )
    assert render_instruction(hyp, "interleaved", table) == "Is [AUDIO] a type of signal?"
    assert render_instruction(hyp, "noninterleaved", table) == (
        "Is the sound of the object in this audio signal a type of signal?"
    )
    assert render_instruction(ident, "interleaved", table) == "Can you list the labels based on [AUDIO] ?"
    assert render_instruction(ident, "noninterleaved", table) == "Can you list the labels based on this audio file?"
    # The text-only control: the word itself where the audio stood.
    assert render_instruction(syn, "text", table) == "Is siren similar to alarm?"
    assert render_instruction(hyp, "text", table) == "Is siren a type of signal?"


def test_prompts_are_configurable_and_unknown_tasks_refused():
    table = prompt_table({"synonym": {"interleaved": "Does [AUDIO] mean the same as {synonym}?"}})
    assert render_instruction(query(), "interleaved", table) == "Does [AUDIO] mean the same as alarm?"
    assert table["hypernym"] == dict(TASKS["hypernym"].prompts)
    with pytest.raises(ValueError, match="unknown task"):
        prompt_table({"antonym": {"interleaved": "x"}})


def test_text_control_asks_each_word_and_candidate_once_and_no_identity(queries):
    assert condition_queries(queries, "interleaved") == queries
    text = condition_queries(queries, "text")
    # The three clips share the word, so 9 questions about them come down to 4 distinct ones.
    assert [(q.task, q.candidate) for q in text] == [
        ("synonym", "drum"),
        ("hypernym", "warning signal"),
        ("synonym", "warning signal"),
        ("hypernym", "drum"),
    ]


def test_answers_do_not_depend_on_how_chunks_are_spread_over_ranks(model, queries, tokenizer):
    settings = EvalSettings(Sampling(max_new_tokens=4, temperature=1.0), repeats=3, batch_size=2, seed=7)
    alone = answer_queries(model, queries, "interleaved", settings, inputs(tokenizer), {}, epoch=1)
    ranks = [
        answer_queries(model, queries, "interleaved", settings, inputs(tokenizer), {}, epoch=1, rank=r, world_size=2)
        for r in range(2)
    ]
    spread = sorted(ranks[0] + ranks[1], key=lambda row: row.index)
    assert [r.id for r in spread] == [q.id for q in queries]  # each query exactly once
    assert spread == alone
    assert {r.id for r in ranks[0]}.isdisjoint(r.id for r in ranks[1])
    # Sampling at temperature 1 does vary with the seed, so the equality above is not trivial.
    other = answer_queries(model, queries, "interleaved", replace(settings, seed=8), inputs(tokenizer), {}, epoch=1)
    assert [r.answers for r in other] != [r.answers for r in alone]


def test_a_stop_request_ends_the_answers_between_chunks_and_every_rank_asks_equally_often(model, queries, tokenizer):
    settings = EvalSettings(Sampling(max_new_tokens=2), repeats=1, batch_size=2)
    chunks = (len(queries) + 1) // 2
    assert chunks % 2 == 1  # rank 1 has one chunk fewer, and must still ask as often as rank 0
    asked = {}
    for rank in (0, 1):
        asked[rank] = 0

        def never(rank=rank) -> bool:
            asked[rank] += 1
            return False

        answer_queries(
            model, queries, "interleaved", settings, inputs(tokenizer), {}, rank=rank, world_size=2, stop=never
        )
    assert asked[0] == asked[1] == (chunks + 1) // 2

    calls = []
    with pytest.raises(EvaluationStopped, match=f"stopped after 4 of {len(queries)} queries"):
        answer_queries(
            model,
            queries,
            "interleaved",
            settings,
            inputs(tokenizer),
            {},
            stop=lambda: calls.append(1) or len(calls) > 2,
        )


def test_progress_is_called_with_the_queries_of_each_chunk_and_sums_to_this_ranks_share(model, queries, tokenizer):
    settings = EvalSettings(Sampling(max_new_tokens=2), repeats=1, batch_size=4)
    calls = []
    answer_queries(model, queries, "interleaved", settings, inputs(tokenizer), {}, progress=calls.append)
    assert calls == [4, 4, 1] and sum(calls) == len(queries) == rank_share(len(queries), 4)
    shares = []
    for rank in (0, 1):
        calls = []
        rows = answer_queries(
            model, queries, "text", settings, inputs(tokenizer), {}, rank=rank, world_size=2, progress=calls.append
        )
        assert sum(calls) == len(rows) == rank_share(len(queries), 4, rank, 2)
        shares.append(sum(calls))
    assert shares == [5, 4]


def test_text_condition_runs_without_audio(model, queries, tokenizer):
    settings = EvalSettings(Sampling(max_new_tokens=3), repeats=2, batch_size=4)
    shard = [q for q in queries if q.task != "identity"]
    rows = answer_queries(model, shard, "text", settings, inputs(tokenizer), {})
    assert [r.prompt for r in rows][:2] == ["Is siren similar to drum?", "Is siren a type of warning signal?"]
    assert all(len(r.answers) == 2 for r in rows)


def test_the_parser_setting_reaches_the_rows(model, queries, tokenizer, monkeypatch):
    """`EvalSettings.parser` picks parse_answer's rules ("paper" by default); the raw answers stay in the rows."""
    import interleave.eval.evaluate as evaluation

    canned = ["The sound is similar to a dog barking.", "It doesn't.", "Yes."]
    monkeypatch.setattr(
        evaluation, "sample_answers", lambda *args, **kwargs: [list(canned) for _ in range(len(args[1]))]
    )
    shard = [q for q in queries if q.task != "identity"]
    settings = EvalSettings(repeats=3)
    assert settings.parser == "paper"
    for parser, parsed in (("paper", [None, "no", "yes"]), ("extended", ["yes", "no", "yes"])):
        rows = answer_queries(model, shard, "text", replace(settings, parser=parser), inputs(tokenizer), {})
        assert rows and all(r.answers == canned and r.parsed == parsed for r in rows)
    with pytest.raises(InterleaveError, match="paper, extended"):  # refused with the settings, before any work
        replace(settings, parser="loose")


def rows_for(truth_and_parsed):
    return [prediction(task="synonym", truth=t, parsed=list(p)) for t, p in truth_and_parsed]


def test_relation_metrics_equal_hand_computed():
    # tp=3 (yes/yes), fp=1 (no->yes), fn=2 (yes->no) + 1 yes->unparsed, tn=2 + 1 no->unparsed
    rows = rows_for(
        [("yes", ["yes", "yes", "no"]), ("yes", ["yes", None, "no"]), ("no", ["yes", "no", "no"]), ("no", [None])]
    )
    m = relation_metrics(rows)
    tp, fp, fn, tn = 3, 1, 3, 3
    assert m["accuracy"] == pytest.approx((tp + tn) / 10)
    assert m["precision"] == pytest.approx(tp / (tp + fp))
    assert m["recall"] == pytest.approx(tp / (tp + fn))
    assert m["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert m["unparsed"] == pytest.approx(2 / 10)


def test_table2_ltu_baseline_synonym_f1():
    # Counts whose precision and recall are the paper's Table 2 LTU non-interleaved synonym
    # values (96.45 % and 18.31 %): F1 must come out as the paper's 30.78 %.
    tp, fp, fn = 3530, 130, 15749
    assert round(100 * tp / (tp + fp), 2) == 96.45 and round(100 * tp / (tp + fn), 2) == 18.31
    rows = rows_for([("yes", ["yes"] * tp), ("no", ["yes"] * fp), ("yes", ["no"] * fn), ("no", ["no"] * 100)])
    m = relation_metrics(rows)
    assert round(100 * m["precision"], 2) == 96.45
    assert round(100 * m["recall"], 2) == 18.31
    assert round(100 * m["f1"], 2) == 30.78


def test_precision_without_any_yes_is_zero_not_nan():
    m = relation_metrics(rows_for([("yes", ["no", None]), ("no", ["no"])]))
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["accuracy"] == pytest.approx(1 / 3)


def test_condition_metrics_use_the_design_tags():
    rows = [
        prediction(task="synonym", truth="yes", parsed=["yes"]),
        prediction(task="hypernym", truth="no", parsed=["yes"]),
        prediction(task="identity", truth=None, parsed=[True, False, False, True]),
    ]
    m = condition_metrics(rows, "val")
    for relation in ("synonym", "hypernym"):
        for name in ("accuracy", "precision", "recall", "f1", "unparsed"):
            assert f"val/shard/{relation}/{name}" in m
    assert m["val/identity/accuracy"] == 0.5
    assert set(condition_metrics(rows, "val/text")) == {k.replace("val/", "val/text/", 1) for k in m}


def test_batch_size_does_not_change_greedy_answers(model, queries, tokenizer):
    def run(batch_size):
        settings = EvalSettings(Sampling(max_new_tokens=5, do_sample=False), repeats=2, batch_size=batch_size)
        return answer_queries(model, queries, "noninterleaved", settings, inputs(tokenizer), {})

    one, many = run(1), run(16)
    assert [r.answers for r in one] == [r.answers for r in many]
    assert all(r.answers[0] == r.answers[1] for r in one)  # greedy repeats agree


def test_scoring_mode_reads_the_yes_no_probabilities(model, queries, tokenizer):
    shard = [q for q in queries if q.task != "identity"]
    settings = EvalSettings(Sampling(max_new_tokens=2), repeats=1, batch_size=4, scoring=True)
    share_yes = sum(q.truth == "yes" for q in shard) / len(shard)

    def scored(answer):
        with favouring(model, answer):
            rows = answer_queries(model, shard, "interleaved", settings, inputs(tokenizer), {})
        return rows, condition_metrics(rows, "val")

    rows, metrics = scored("yes")
    assert all(r.p_yes > 0.999 for r in rows)
    assert metrics["val/shard/synonym/scored_accuracy"] == pytest.approx(
        sum(r.truth == "yes" for r in rows if r.task == "synonym") / sum(r.task == "synonym" for r in rows)
    )
    rows, metrics = scored("no")
    assert all(r.p_yes < 0.001 for r in rows)
    assert metrics["val/shard/synonym/scored_f1"] == 0.0 and metrics["val/shard/hypernym/scored_f1"] == 0.0
    assert 0 < share_yes < 1


# ---- the two-clip pair task (issue 19) ---------------------------------------------------------


def pair(truth="yes", qid="p", audio="a.wav", other="b.wav", candidate="siren"):
    return Query(
        id=qid,
        task="pair",
        label="Siren",
        word="siren",
        candidate=candidate,
        truth=truth,
        audio=audio,
        other_audio=other,
        where="t:2",
    )


def test_pair_prompts_text_control_overrides_and_no_ltu_layout(queries):
    table = prompt_table()
    assert render_instruction(pair(), "interleaved", table) == "Is [AUDIO] the same kind of sound as [AUDIO]?"
    assert render_instruction(pair("no", candidate="drum"), "text", table) == "Is siren the same kind of sound as drum?"
    custom = prompt_table({"pair": {"interleaved": "Do [AUDIO] and [AUDIO] belong to the same class?"}})
    assert render_instruction(pair(candidate="dog"), "text", custom) == "Do siren and dog belong to the same class?"
    asked = queries + [pair(qid="p1"), pair(qid="p2", audio="c.wav"), pair("no", "p3", candidate="drum")]
    assert condition_queries(asked, "noninterleaved") == queries
    assert [q.id for q in condition_queries(asked, "interleaved")][-3:] == ["p1", "p2", "p3"]
    assert [q.id for q in condition_queries(asked, "text") if q.task == "pair"] == ["p1", "p3"]  # one per word pair


def test_pair_queries_are_answered_with_both_clips_and_scored_like_the_relations(model, queries, tokenizer):
    clips = sorted({q.audio for q in queries})
    pairs = [
        pair("yes", "p0", clips[0], clips[1]),
        pair("no", "p1", clips[2], clips[0], "drum"),
        pair("yes", "p2", clips[1], clips[0]),
    ]
    settings = EvalSettings(Sampling(max_new_tokens=3, do_sample=False), repeats=1, batch_size=2)
    features = {}
    rows = answer_queries(model, queries[:2] + pairs, "interleaved", settings, inputs(tokenizer), features)
    assert set(features) == set(clips)  # each clip encoded once, the pairs' second clips included
    assert [r.prompt for r in rows][2:] == ["Is [AUDIO] the same kind of sound as [AUDIO]?"] * 3
    alone = [answer_queries(model, [p], "interleaved", settings, inputs(tokenizer), {})[0].answers for p in pairs]
    assert [r.answers for r in rows[2:]] == alone  # a pair beside one-clip queries: as asked alone
    text = answer_queries(model, condition_queries(pairs, "text"), "text", settings, inputs(tokenizer), {})
    assert [r.prompt for r in text] == [
        "Is siren the same kind of sound as siren?",
        "Is siren the same kind of sound as drum?",
    ]
    metrics = condition_metrics(rows, "val")
    assert {f"val/shard/pair/{m}" for m in ("accuracy", "precision", "recall", "f1", "unparsed")} <= set(metrics)
    hand = relation_metrics([r for r in rows if r.task == "pair"])
    assert metrics["val/shard/pair/accuracy"] == hand["accuracy"]
