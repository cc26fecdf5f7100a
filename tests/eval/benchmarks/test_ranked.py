"""interleave.eval.benchmarks.ranked: batched, left-padded, shared-prefix choice log-likelihoods equal
to a reference computed one choice at a time with the LLM's own forward pass."""

import pytest
import torch

from interleave.data.collate import Collator
from interleave.eval.benchmarks.ranked import (
    SUM,
    TOKEN_MEAN,
    Question,
    _shared,
    choice_loglikelihoods,
    choice_rows,
    ranked_choice,
    scored_positions,
)

QUESTIONS = [
    Question("[AUDIO] What is heard?\nChoices:\ndog\ncat\nAnswer with one of the choices.", ("dog", "cat"), ("a.wav",)),
    Question(
        "Is it a siren, a drum, or something else entirely, the long question?",
        ("Siren", "Drum", "Tick tock sound"),
        ("b.wav",),
    ),
    Question("Is [AUDIO] louder than [AUDIO]?", ("Yes, the first one", "No"), ("a.wav", "b.wav")),
]


def reference(model, collator, question, features, norm):
    """One choice at a time: its whole row through the LLM's own forward pass, no padding, no cache."""
    out = []
    for row in choice_rows(collator, question):
        ids = torch.tensor([row.input_ids])
        with torch.no_grad():
            embeds = model.merge_embeddings(ids, torch.tensor([row.audio_mask]), features=features)
            logprobs = torch.log_softmax(model.llm(inputs_embeds=embeds).logits[0].float(), dim=-1)
        positions = scored_positions(row, model.tokenizer.eos_token_id)
        total = sum(float(logprobs[j - 1, row.input_ids[j]]) for j in positions)
        out.append(total / len(positions) if norm == TOKEN_MEAN else total)
    return out


@pytest.mark.parametrize("norm", [TOKEN_MEAN, SUM])
@pytest.mark.parametrize("share_prefix", [True, False])
def test_batched_scores_equal_one_choice_at_a_time(model, norm, share_prefix):
    collator = Collator(model.tokenizer, padding_side="left", with_answer=False)
    width = model.audio_encoder.width
    clips = {
        "a.wav": torch.randn(model.audio_tokens, width, generator=torch.Generator().manual_seed(1)),
        "b.wav": torch.randn(model.audio_tokens, width, generator=torch.Generator().manual_seed(2)),
    }
    features = torch.stack([clips[c] for q in QUESTIONS for c in q.clips])
    calls = []
    layer = model.llm.get_base_model().model.layers[0]
    handle = layer.register_forward_hook(
        lambda m, args, kwargs, out: calls.append(tuple((args[0] if args else kwargs["hidden_states"]).shape[:2])),
        with_kwargs=True,
    )
    try:
        got = choice_loglikelihoods(model, collator, QUESTIONS, features, norm=norm, share_prefix=share_prefix)
    finally:
        handle.remove()
    if share_prefix:  # one prefill per question, then the choices' own tokens only
        assert [c[0] for c in calls] == [3, 7] and calls[1][1] < 16
    else:
        assert [c[0] for c in calls] == [7] and calls[0][1] > 32
    want = [reference(model, collator, q, torch.stack([clips[c] for c in q.clips]), norm) for q in QUESTIONS]
    assert [len(g) for g in got] == [2, 3, 2]
    for g, w in zip(got, want):
        assert g == pytest.approx(w, abs=1e-5)


def test_text_only_questions_need_no_features(model):
    collator = Collator(model.tokenizer, padding_side="left", with_answer=False)
    question = Question("What does a dog say?", ("woof", "meow"))
    got = choice_loglikelihoods(model, collator, [question, question])
    assert got[0] == pytest.approx(reference(model, collator, question, None, TOKEN_MEAN), abs=1e-5)
    assert got[0] == pytest.approx(got[1], abs=1e-6)


def test_sharing_stops_where_the_tokens_differ(model):
    collator = Collator(model.tokenizer, padding_side="left", with_answer=False)
    rows = choice_rows(collator, Question("Say it:", ("dog", "cat")))
    first = min(scored_positions(r, None)[0] for r in rows)
    shared = _shared(rows, first)
    assert shared <= first
    assert all(r.input_ids[:shared] == rows[0].input_ids[:shared] for r in rows)


def test_the_highest_score_wins_the_first_of_equal_ones():
    assert ranked_choice([-3.0, -1.0, -2.0]) == 1
    assert ranked_choice([-1.0, -1.0]) == 0
