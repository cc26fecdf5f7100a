import pytest
import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.collate import IGNORE_INDEX, Collator
from interleave.errors import RecordError
from interleave.records import Record
from tests.conftest import build_tokenizer


def rec(instruction: str, output: str = "Labels: Siren", id: str = "r1", input: str = "") -> Record:
    return Record(id=id, audio="a.wav", instruction=instruction, output=output, input=input, where="f.jsonl:1")


def tokens(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def item(record):
    return {"record": record, "audio": torch.zeros(1024, 128)}


def test_interleaved_span_sits_at_the_placeholder(tokenizer):
    col = Collator(tokenizer)
    enc = col.encode(rec("Is [AUDIO] a type of vehicle?"))
    pre = [tokenizer.bos_token_id] + tokens(tokenizer, "### Instruction:\nIs ")
    post = tokens(tokenizer, " a type of vehicle?\n\n### Response:\n")
    answer = tokens(tokenizer, "Labels: Siren") + [tokenizer.eos_token_id]
    assert enc.input_ids == pre + [col.pad_id] * NUM_AUDIO_TOKENS + post + answer
    assert enc.audio_mask == [False] * len(pre) + [True] * NUM_AUDIO_TOKENS + [False] * (len(post) + len(answer))
    # labels: -100 on the prompt (audio included), the answer and EOS are targets
    assert enc.labels == [IGNORE_INDEX] * (len(pre) + NUM_AUDIO_TOKENS + len(post)) + answer


def test_placeholder_text_never_reaches_the_tokenizer(tokenizer):
    seen = []

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __call__(self, text, **kw):
            seen.append(text)
            return self.inner(text, **kw)

    Collator(Spy(tokenizer)).encode(rec("Is [AUDIO] a type of vehicle?"))
    assert seen and not any("[AUDIO]" in t for t in seen[1:])  # seen[0] is the BOS probe "a"


def test_non_interleaved_span_comes_first_before_bos(tokenizer):
    col = Collator(tokenizer)
    enc = col.encode(rec("What sound is this?"))
    assert enc.audio_mask[:NUM_AUDIO_TOKENS] == [True] * NUM_AUDIO_TOKENS
    assert not any(enc.audio_mask[NUM_AUDIO_TOKENS:])
    assert enc.input_ids[NUM_AUDIO_TOKENS] == tokenizer.bos_token_id
    assert enc.input_ids[NUM_AUDIO_TOKENS + 1 :][: len(tokens(tokenizer, "### Instruction:"))] == tokens(tokenizer, "### Instruction:")


def test_bos_follows_the_tokenizer():
    no_bos = build_tokenizer(add_bos=False)
    enc = Collator(no_bos).encode(rec("Is [AUDIO] loud?"))
    assert enc.input_ids[0] != no_bos.bos_token_id
    enc = Collator(no_bos, add_bos=True).encode(rec("Is [AUDIO] loud?"))
    assert enc.input_ids[0] == no_bos.bos_token_id


def test_placeholder_in_input_field_and_two_placeholders_error(tokenizer):
    col = Collator(tokenizer)
    enc = col.encode(rec("Describe it.", input="[AUDIO]"))
    assert sum(enc.audio_mask) == NUM_AUDIO_TOKENS and not enc.audio_mask[0]
    with pytest.raises(RecordError, match=r"f.jsonl:1 \(id=r1\).*2 \[AUDIO\] placeholders"):
        col.encode(rec("Is [AUDIO] like [AUDIO]?"))


def test_train_on_prompt_keeps_audio_masked(tokenizer):
    enc = Collator(tokenizer, train_on_prompt=True).encode(rec("Is [AUDIO] a car?"))
    for label, is_audio, tok in zip(enc.labels, enc.audio_mask, enc.input_ids):
        assert label == (IGNORE_INDEX if is_audio else tok)


def test_right_padding_batch_contract(tokenizer):
    col = Collator(tokenizer, padding_side="right")
    batch = col([item(rec("Is [AUDIO] a car?", id="a")), item(rec("Name it.", output="Labels: A much longer answer here", id="b"))])
    B, L = batch["input_ids"].shape
    assert B == 2 and batch["labels"].shape == (B, L) and batch["audio_mask"].dtype == torch.bool
    assert batch["audio_mask"].sum(dim=1).tolist() == [NUM_AUDIO_TOKENS] * 2
    assert batch["audio"].shape == (2, 1024, 128) and batch["ids"] == ["a", "b"]
    short = batch["attention_mask"][0]
    n = int(short.sum())
    assert short[:n].all() and not short[n:].any()  # padding on the right
    assert (batch["labels"][0, n:] == IGNORE_INDEX).all() and (batch["input_ids"][0, n:] == col.pad_id).all()
    assert not batch["audio_mask"][0, n:].any()


def test_left_padding_for_generation(tokenizer):
    col = Collator(tokenizer, padding_side="left", with_answer=False)
    batch = col([item(rec("Is [AUDIO] a car?")), item(rec("Can you list the labels based on this audio file, please?"))])
    first = batch["attention_mask"][0]
    n = int(first.sum())
    assert not first[: len(first) - n].any() and first[len(first) - n :].all()  # padding on the left
    assert (batch["labels"] == IGNORE_INDEX).all()  # no answer tokens
    # the row ends with the prompt's last token, ready for generation
    last = tokens(tokenizer, "\n\n### Response:\n")[-1]
    assert batch["input_ids"][:, -1].tolist() == [last, last]


def test_eval_batch_carries_prompt_only_copy(tokenizer):
    col = Collator(tokenizer, with_prompt_batch=True)
    batch = col([item(rec("Is [AUDIO] a car?")), item(rec("Name it."))])
    assert batch["references"] == ["Labels: Siren", "Labels: Siren"]
    assert batch["prompt_audio_mask"].sum(dim=1).tolist() == [NUM_AUDIO_TOKENS] * 2
    assert batch["prompt_input_ids"].shape[1] < batch["input_ids"].shape[1]


def test_truncation_cuts_the_answer_never_the_audio(tokenizer):
    full = Collator(tokenizer).encode(rec("Is [AUDIO] a car?", output="Labels: Siren; Drum; Tick; Whistle"))
    prompt_len = full.labels.index(next(l for l in full.labels if l != IGNORE_INDEX))
    col = Collator(tokenizer, max_length=prompt_len + 2)
    enc = col.encode(rec("Is [AUDIO] a car?", output="Labels: Siren; Drum; Tick; Whistle"))
    assert len(enc.input_ids) == prompt_len + 2
    assert sum(enc.audio_mask) == NUM_AUDIO_TOKENS
    assert sum(l != IGNORE_INDEX for l in enc.labels) == 2


def test_record_that_cannot_fit_is_rejected_with_reason(tokenizer):
    long = "Is [AUDIO] " + "very " * 200 + "loud?"
    with pytest.raises(RecordError, match=r"leaving no room for the answer within max_length=64"):
        Collator(tokenizer, max_length=64).encode(rec(long))
    with pytest.raises(RecordError, match=r"more than max_length=64"):
        Collator(tokenizer, max_length=64, with_answer=False).encode(rec(long))
    # exactly full prompt: no room for a single answer token is a rejection, not an empty row
    prompt = Collator(tokenizer, with_answer=False).encode(rec("Is [AUDIO] a car?"))
    with pytest.raises(RecordError):
        Collator(tokenizer, max_length=len(prompt.input_ids)).encode(rec("Is [AUDIO] a car?"))


def test_max_length_must_hold_the_audio_span(tokenizer):
    with pytest.raises(ValueError, match="audio span"):
        Collator(tokenizer, max_length=NUM_AUDIO_TOKENS)


def test_real_smollm2_tokenizer():
    from interleave.llm import load_tokenizer

    tok = load_tokenizer("builtin:smollm2-135m-instruct")
    col = Collator(tok)
    enc = col.encode(rec("Is [AUDIO] a type of vehicle?"))
    assert sum(enc.audio_mask) == NUM_AUDIO_TOKENS
    start = enc.audio_mask.index(True)
    assert tok.decode(enc.input_ids[:start]) == "### Instruction:\nIs "
    text_after = tok.decode([t for t, a in zip(enc.input_ids[start:], enc.audio_mask[start:]) if not a])
    assert text_after.startswith(" a type of vehicle?\n\n### Response:\nLabels: Siren")
    assert enc.input_ids[-1] == tok.eos_token_id
