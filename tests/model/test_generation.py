"""interleave.model.generation: shared-prefill sampling equal to HF's generate and sampling chain, rows that
end leaving the batch, and the answer tokens and P(yes) of the scoring mode."""

import contextlib

import pytest
import torch

from interleave.data.collate import Collator
from interleave.model.generation import Sampling, sample_answers
from interleave.model.module import AudioLLM
from tests.helpers import YES_NO, editing_logits, favouring


def left_padded(model, instructions, with_audio=True):
    col = Collator(model.tokenizer, padding_side="left", with_answer=False)
    from interleave.data.records import Record

    rows = [
        col.encode(Record(id=str(i), audio="a", instruction=t), with_audio=with_audio)
        for i, t in enumerate(instructions)
    ]
    batch = col.pad(rows, "left")
    audio = (
        torch.randn(len(instructions), 1024, 128, generator=torch.Generator().manual_seed(1)) if with_audio else None
    )
    return batch, audio


@pytest.mark.parametrize("with_audio", [True, False])
def test_greedy_answers_equal_hf_generate(model, with_audio):
    texts = ["Is [AUDIO] similar to alarm?", "Is the sound of the object in this audio signal a type of drum, really?"]
    if not with_audio:
        texts = ["Is siren similar to alarm?", "Is a siren, the loud one, a type of signal?"]
    batch, audio = left_padded(model, texts, with_audio)
    greedy = Sampling(max_new_tokens=6, do_sample=False, repetition_penalty=1.0)
    ours = sample_answers(model, batch["input_ids"], batch["attention_mask"], batch["audio_mask"], audio, 2, greedy)
    hf = model.generate(
        batch["input_ids"], batch["attention_mask"], batch["audio_mask"], audio, max_new_tokens=6, do_sample=False
    )
    assert ours == [[t, t] for t in hf]


def test_repeats_share_one_prefill(model):
    batch, audio = left_padded(
        model, ["Is [AUDIO] a type of signal?", "Is [AUDIO] similar to drum?", "What is [AUDIO]?"]
    )
    calls = []
    layer = model.llm.get_base_model().model.layers[0]

    def record(module, args, kwargs, output):
        hidden = args[0] if args else kwargs["hidden_states"]
        calls.append(tuple(hidden.shape[:2]))

    handle = layer.register_forward_hook(record, with_kwargs=True)
    try:
        answers = sample_answers(
            model,
            batch["input_ids"],
            batch["attention_mask"],
            batch["audio_mask"],
            audio,
            4,
            Sampling(max_new_tokens=5),
        )
    finally:
        handle.remove()
    assert [len(a) for a in answers] == [4, 4, 4]
    prefills = [c for c in calls if c[1] > 1]
    assert prefills == [(3, batch["input_ids"].shape[1])]  # the prompts ran once, not once per repeat
    assert all(c[1] == 1 and c[0] <= 12 for c in calls[1:])  # then one token per live row and step


def test_rows_that_end_leave_the_batch_and_the_others_go_on_unchanged(model):
    batch, audio = left_padded(model, ["Is [AUDIO] a type of signal?", "Is [AUDIO] similar to drum?"])
    greedy = Sampling(max_new_tokens=6, do_sample=False, repetition_penalty=1.0)
    args = (batch["input_ids"], batch["attention_mask"], batch["audio_mask"], audio, 2, greedy)
    free = sample_answers(model, *args)
    eos, calls = model.tokenizer.eos_token_id, []

    def end_row_0_at_step_2(module, inputs, logits):  # the 1st row's answer ends after two tokens
        calls.append(logits.shape[0])
        if len(calls) == 2:
            logits = logits.clone()
            logits[0, -1, eos] = 1e4
        return logits

    handle = model.llm.get_base_model().lm_head.register_forward_hook(end_row_0_at_step_2)
    try:
        ended = sample_answers(model, *args)
    finally:
        handle.remove()
    assert calls[:3] == [2, 4, 3]  # prefill of 2 prompts, 4 rows, then 3 once row 0 has ended
    assert len(ended[0][0]) < len(free[0][0]) and free[0][0].startswith(ended[0][0])
    assert ended[0][1] == free[0][1] and ended[1] == free[1]


def test_sampling_candidates_match_hfs_chain_over_the_whole_vocabulary():
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    sampling = Sampling(temperature=0.7, top_k=50, top_p=0.9, repetition_penalty=1.3)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3000, generator=gen) * 3
    history = torch.randint(0, 3000, (6, 40), generator=gen)
    hf = LogitsProcessorList(
        [
            RepetitionPenaltyLogitsProcessor(1.3),
            TemperatureLogitsWarper(0.7),
            TopKLogitsWarper(50),
            TopPLogitsWarper(0.9),
        ]
    )
    expected = torch.softmax(hf(history, logits.clone()), dim=-1)
    values, indices = sampling.candidates(history, logits.clone())
    ours = torch.zeros_like(expected).scatter(1, indices, torch.softmax(values, dim=-1))
    assert torch.allclose(ours, expected, atol=1e-6)
    assert (expected > 0).sum(dim=-1).max() < 50  # top-p did cut inside the top 50


def test_answer_tokens_are_read_as_they_follow_the_prompt(llama_tokenizer):
    """SentencePiece reads "Yes" alone as "▁Yes"; after "### Response:\n" the model writes "Yes"."""
    from interleave.data.prompts import PromptTemplate
    from interleave.model.generation import answer_token_ids

    tok = llama_tokenizer
    context = PromptTemplate().render("?")
    assert tok.convert_ids_to_tokens(answer_token_ids(tok, ("Yes",), context)) == ["Yes"]
    assert tok.convert_ids_to_tokens(answer_token_ids(tok, ("Yes",))) == ["▁Yes"]


def test_yes_probability_reads_the_first_answer_tokens_odds(model):
    from interleave.model.generation import yes_probability

    batch, audio = left_padded(model, ["Is [AUDIO] a type of signal?", "Is [AUDIO] similar to drum?"])
    args = (batch["input_ids"], batch["attention_mask"], batch["audio_mask"], audio)
    free = yes_probability(model, *args)
    assert len(free) == 2 and all(0.0 < p < 1.0 for p in free)

    def favour(answer):
        with favouring(model, answer):
            return yes_probability(model, *args)

    assert all(p > 0.999 for p in favour("yes")) and all(p < 0.001 for p in favour("no"))


@contextlib.contextmanager
def talking_in(model, text: str, boost: float = 4.0):
    """An LM head that favours the tokens of `text`, so that sampled answers of a random-weight
    model mix its words ("Yes", "No,", "not", ...) in varying orders, some settled early, some not."""
    ids = sorted(set(model.tokenizer(text, add_special_tokens=False)["input_ids"]))

    def edit(logits):
        logits[..., ids] += boost

    with editing_logits(model, edit):
        yield


def test_each_answer_draws_from_its_own_stream_whatever_is_answered_beside_it(model):
    prompts = ["Is [AUDIO] a type of signal?", "Is [AUDIO] similar to drum?", "What is [AUDIO]?"]
    batch, audio = left_padded(model, prompts)
    sampling = Sampling(max_new_tokens=8, temperature=1.0)
    seeds = list(range(100, 106))
    with talking_in(model, YES_NO, boost=1.0):
        together = sample_answers(
            model, batch["input_ids"], batch["attention_mask"], batch["audio_mask"], audio, 2, sampling, seeds=seeds
        )
        alone = [
            sample_answers(model, *left_padded_one(model, p, audio[i : i + 1]), 1, sampling, seeds=[seeds[2 * i + j]])[
                0
            ][0]
            for i, p in enumerate(prompts)
            for j in range(2)
        ]
        other_seeds = sample_answers(
            model,
            batch["input_ids"],
            batch["attention_mask"],
            batch["audio_mask"],
            audio,
            2,
            sampling,
            seeds=[s + 50 for s in seeds],
        )
    assert [a for answers in together for a in answers] == alone
    assert together != other_seeds  # the streams do decide the answers (temperature 1)
    with pytest.raises(ValueError, match="3 seeds for 6 answers"):
        sample_answers(
            model, batch["input_ids"], batch["attention_mask"], batch["audio_mask"], audio, 2, sampling, seeds=seeds[:3]
        )


def left_padded_one(model, instruction, audio):
    batch, _ = left_padded(model, [instruction])
    return batch["input_ids"], batch["attention_mask"], batch["audio_mask"], audio


@pytest.mark.parametrize("rules", ["paper", "extended"])
def test_answers_stopped_at_their_verdict_have_the_whole_answers_verdicts(model, rules):
    """The acceptance test of the default mode: same seeds, the same parsed verdict for every answer."""
    from functools import partial

    from interleave.eval.answers import parse_answer, settled_answer

    prompts = [
        "Is [AUDIO] a type of signal?",
        "Is [AUDIO] similar to drum?",
        "Is [AUDIO] a type of alarm?",
        "Is [AUDIO] similar to a siren, really?",
    ]
    batch, audio = left_padded(model, prompts)
    args = (
        batch["input_ids"],
        batch["attention_mask"],
        batch["audio_mask"],
        audio,
        8,
        Sampling(max_new_tokens=40, temperature=1.0),
    )
    seeds = list(range(len(prompts) * 8))
    settle = [partial(settled_answer, rules=rules)] * len(prompts)
    with talking_in(model, YES_NO):
        whole = sample_answers(model, *args, seeds=seeds)
        cut: list[bool] = []
        short = sample_answers(model, *args, seeds=seeds, settle=settle, cut=cut)
    whole, short = [a for r in whole for a in r], [a for r in short for a in r]
    assert [parse_answer(a, rules) for a in short] == [parse_answer(a, rules) for a in whole]
    assert len(cut) == len(whole) and 0 < sum(cut) < len(cut)  # some stopped early, some ran on
    for text, full, stopped in zip(short, whole, cut):
        assert full.startswith(text) and (len(text) < len(full)) == stopped
        assert stopped == (settled_answer(text, rules) is not None and text != full)
    assert "no" in {parse_answer(a, rules) for a, c in zip(short, cut) if c}


@pytest.mark.slow  # the real SmolLM2 generating (minutes)
def test_the_demos_smollm2_stops_at_its_verdicts_with_the_whole_answers_verdicts():
    """The acceptance test on the real LLM the demo uses (SmolLM2-135M-Instruct, text prompts it
    answers with yes or no and an explanation): same seeds, the same verdicts, fewer tokens."""
    from functools import partial

    from interleave.eval.answers import parse_answer, settled_answer

    torch.manual_seed(0)
    model = AudioLLM(llm="builtin:smollm2-135m-instruct", encoder="tiny").eval()
    questions = [
        "Is a siren a type of alarm? Answer yes or no, then explain.",
        "Is a dog bark similar to a violin? Answer yes or no, then explain.",
        "Is a drum a type of percussion instrument? Answer yes or no, then explain.",
    ]
    batch, _ = left_padded(model, questions, with_audio=False)
    args = (batch["input_ids"], batch["attention_mask"], batch["audio_mask"], None, 4, Sampling(max_new_tokens=48))
    seeds = list(range(12))
    whole = [a for r in sample_answers(model, *args, seeds=seeds) for a in r]
    cut: list[bool] = []
    short = [
        a for r in sample_answers(model, *args, seeds=seeds, settle=[partial(settled_answer)] * 3, cut=cut) for a in r
    ]
    assert [parse_answer(a) for a in short] == [parse_answer(a) for a in whole]
    assert sum(cut) >= 6 and all(w.startswith(s) for s, w in zip(short, whole))
    assert sum(map(len, short)) < sum(map(len, whole)) / 2


def test_inverting_the_cdf_samples_hfs_distribution_and_never_a_cut_token():
    sampling = Sampling(temperature=0.7, top_k=50, top_p=0.9, repetition_penalty=1.3)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 300, generator=gen) * 3
    history = torch.randint(0, 300, (1, 10), generator=gen)
    values, indices = sampling.candidates(history, logits.clone())
    expected = torch.zeros(300).scatter(0, indices[0], torch.softmax(values[0], dim=-1))
    n = 40000
    uniform = torch.rand(n, dtype=torch.float64, generator=gen)
    tokens = sampling.next_tokens(history.expand(n, -1), logits.expand(n, -1).clone(), uniform)
    frequencies = torch.bincount(tokens, minlength=300).double() / n
    assert (frequencies - expected.double()).abs().max() < 0.01
    assert set(tokens.tolist()) <= set(torch.nonzero(expected).squeeze(1).tolist())
    edges = torch.tensor([0.0, 1.0 - 2**-53], dtype=torch.float64)  # the lowest and highest numbers a stream holds
    ends = sampling.next_tokens(history.expand(2, -1), logits.expand(2, -1).clone(), edges)
    assert expected[ends[0]] == expected.max() and expected[ends[1]] > 0
