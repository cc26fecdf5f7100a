import pytest
import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.data.collate import IGNORE_INDEX, Collator, span_starts
from interleave.data.prompts import PromptTemplate, remove_placeholders
from interleave.data.records import Record
from interleave.errors import InterleaveError, RecordError
from tests.helpers import build_tokenizer


def rec(instruction: str, output: str = "Labels: Siren", id: str = "r1", input: str = "") -> Record:
    return Record(id=id, audio="a.wav", instruction=instruction, output=output, input=input, where="f.jsonl:1")


def tokens(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def item(record):
    return {"record": record, "audio": torch.zeros(1024, 128)}


def text_part(enc):
    """(text token ids, labels of those tokens, index of the first audio position among them)."""
    ids = [t for t, a in zip(enc.input_ids, enc.audio_mask) if not a]
    labels = [l for l, a in zip(enc.labels, enc.audio_mask) if not a]
    return ids, labels, (enc.audio_mask.index(True) if any(enc.audio_mask) else None)


def whole(tokenizer, text):
    """LTU's tokenize(): the whole string, BOS as the tokenizer adds it."""
    return tokenizer(text)["input_ids"]


INSTRUCTIONS = {  # where the placeholder stands
    "middle": "Is [AUDIO] similar to a siren?",
    "end": "What is the sound in [AUDIO]",
    "start": "[AUDIO] is it a type of alarm?",
    "table1-identity": "Can you list the labels based on [AUDIO] ?",
    "ltu-layout": "What is the sound in the audio?",
}


@pytest.mark.parametrize("where", INSTRUCTIONS)
@pytest.mark.parametrize("train_on_prompt", [False, True])
def test_text_tokens_are_the_whole_strings_tokens(any_tokenizer, where, train_on_prompt):
    """LTU's rule for every tokenizer kind: tokenize(prompt + answer) as one string, EOS appended,
    labels from len(tokenize(prompt)); interleaved, the whole string reads without `[AUDIO]` and
    one adjacent space, and the audio span sits at that character offset."""
    tok = any_tokenizer
    record = rec(INSTRUCTIONS[where], output="Yes")
    enc = Collator(tok, train_on_prompt=train_on_prompt).encode(record)
    prompt, offsets = remove_placeholders(PromptTemplate().render(record.instruction))
    ids, labels, start = text_part(enc)
    assert ids == whole(tok, prompt + "Yes") + [tok.eos_token_id]
    n_prompt = len(whole(tok, prompt))
    if train_on_prompt:
        assert labels == ids
    else:
        assert labels == [IGNORE_INDEX] * n_prompt + ids[n_prompt:]
    assert sum(enc.audio_mask) == NUM_AUDIO_TOKENS and enc.splits == 0
    assert all(l == IGNORE_INDEX for l, a in zip(enc.labels, enc.audio_mask) if a)
    if not offsets:  # LTU's layout: the span before everything, BOS included
        assert start == 0
    else:  # the span right where the placeholder's word boundary is
        assert tok.decode(ids[:start], skip_special_tokens=True).rstrip() == prompt[: offsets[0]].rstrip()
        assert enc.audio_mask[start : start + NUM_AUDIO_TOKENS] == [True] * NUM_AUDIO_TOKENS
    generation = Collator(tok, with_answer=False).encode(record)
    assert text_part(generation)[0] == whole(tok, prompt)
    assert generation.audio_mask.index(True) == start


def test_sentencepiece_gets_no_lone_word_markers(llama_tokenizer):
    """The defect of tokenizing pieces: `Is ` + audio + ` similar` gave `'▁'` tokens and every
    answer a `'▁Yes'` that LTU never trained on. Whole-string: `Is`, audio, `▁similar`, and `Yes`."""
    tok = llama_tokenizer
    enc = Collator(tok).encode(rec("Is [AUDIO] similar to a siren?", output="Yes"))
    pieces = tok.convert_ids_to_tokens(enc.input_ids)
    start = enc.audio_mask.index(True)
    assert "▁" not in pieces
    assert pieces[start - 2 : start] == ["I", "s"] and pieces[start + NUM_AUDIO_TOKENS] == "▁similar"
    answer = [p for p, l in zip(pieces, enc.labels) if l != IGNORE_INDEX]
    assert answer == ["Yes", "</s>"]
    ltu = Collator(tok).encode(rec("What is the sound in the audio?", output="Yes"))
    assert [p for p, l in zip(tok.convert_ids_to_tokens(ltu.input_ids), ltu.labels) if l != IGNORE_INDEX] == [
        "Yes",
        "</s>",
    ]


@pytest.mark.parametrize("kind", ["bytelevel", "smollm2"])
def test_a_placeholder_inside_a_word_splits_that_token_alone(kind):
    from interleave.model.llm import load_tokenizer

    tok = build_tokenizer() if kind == "bytelevel" else load_tokenizer("builtin:smollm2-135m-instruct")
    record = rec("Is it a type of vehi[AUDIO]cle?", output="Yes")
    enc = Collator(tok).encode(record)
    prompt, (offset,) = remove_placeholders(PromptTemplate().render(record.instruction))
    ids, _, start = text_part(enc)
    assert enc.splits == 1
    assert tok.decode(ids[:start], skip_special_tokens=True) == prompt[:offset]  # "... of vehi"
    assert tok.decode(ids[start:], skip_special_tokens=True).startswith("cle?\n\n### Response:\nYes")
    # exactly one token of the whole string (the straddling one) was replaced; the rest are unchanged
    full, ids = whole(tok, prompt + "Yes"), ids[:-1]  # without EOS
    same_start = next(i for i, (a, b) in enumerate(zip(full, ids)) if a != b)
    same_end = next(i for i, (a, b) in enumerate(zip(full[::-1], ids[::-1])) if a != b)
    assert same_start + same_end == len(full) - 1 and len(ids) > len(full)


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
    assert enc.input_ids[NUM_AUDIO_TOKENS + 1 :][: len(tokens(tokenizer, "### Instruction:"))] == tokens(
        tokenizer, "### Instruction:"
    )


def test_bos_follows_the_tokenizer():
    no_bos = build_tokenizer(add_bos=False)
    enc = Collator(no_bos).encode(rec("Is [AUDIO] loud?"))
    assert enc.input_ids[0] != no_bos.bos_token_id
    enc = Collator(no_bos, add_bos=True).encode(rec("Is [AUDIO] loud?"))
    assert enc.input_ids[0] == no_bos.bos_token_id


def test_placeholder_in_input_field_and_two_placeholders_for_one_clip_error(tokenizer):
    col = Collator(tokenizer)
    enc = col.encode(rec("Describe it.", input="[AUDIO]"))
    assert sum(enc.audio_mask) == NUM_AUDIO_TOKENS and not enc.audio_mask[0]
    with pytest.raises(RecordError, match=r"f.jsonl:1 \(id=r1\).*1 audio clip\(s\).*2 \[AUDIO\] placeholder"):
        col.encode(rec("Is [AUDIO] like [AUDIO]?"))


def test_train_on_prompt_keeps_audio_masked(tokenizer):
    enc = Collator(tokenizer, train_on_prompt=True).encode(rec("Is [AUDIO] a car?"))
    for label, is_audio, tok in zip(enc.labels, enc.audio_mask, enc.input_ids):
        assert label == (IGNORE_INDEX if is_audio else tok)


def test_right_padding_batch_contract(tokenizer):
    col = Collator(tokenizer, padding_side="right")
    batch = col(
        [
            item(rec("Is [AUDIO] a car?", id="a")),
            item(rec("Name it.", output="Labels: A much longer answer here", id="b")),
        ]
    )
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
    batch = col(
        [item(rec("Is [AUDIO] a car?")), item(rec("Can you list the labels based on this audio file, please?"))]
    )
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


def test_real_smollm2_tokenizer_and_its_end_token():
    from interleave.model.llm import load_tokenizer

    tok = load_tokenizer("builtin:smollm2-135m-instruct")
    col = Collator(tok)
    enc = col.encode(rec("Is [AUDIO] a type of vehicle?"))
    assert sum(enc.audio_mask) == NUM_AUDIO_TOKENS
    start = enc.audio_mask.index(True)
    assert tok.decode(enc.input_ids[:start]) == "### Instruction:\nIs"
    text_after = tok.decode([t for t, a in zip(enc.input_ids[start:], enc.audio_mask[start:]) if not a])
    assert text_after.startswith(" a type of vehicle?\n\n### Response:\nLabels: Siren")
    # SmolLM2's answers end with <|im_end|> (id 2), as its GGUF and config say, not <|im_start|>
    assert tok.convert_ids_to_tokens(enc.input_ids[-1]) == "<|im_end|>" and enc.labels[-1] == 2


@pytest.mark.parametrize("audio_tokens", [1, 8, 50])
def test_the_audio_span_has_the_models_length(audio_tokens):
    tok = build_tokenizer()
    collator = Collator(tok, max_length=256, audio_tokens=audio_tokens)
    batch = collator(
        [
            {"record": rec("Is [AUDIO] a siren?"), "audio": torch.zeros(3)},
            {"record": rec("What is this?", id="r2"), "audio": torch.zeros(3)},
        ]
    )
    assert batch["audio_mask"].sum(dim=1).tolist() == [audio_tokens, audio_tokens]
    assert (batch["labels"][batch["audio_mask"]] == IGNORE_INDEX).all()
    default = Collator(tok, max_length=256).encode(rec("Is [AUDIO] a siren?"))
    encoded = collator.encode(rec("Is [AUDIO] a siren?"))
    # The text tokens are the same; only the span's length differs.
    assert [t for t, a in zip(encoded.input_ids, encoded.audio_mask) if not a] == [
        t for t, a in zip(default.input_ids, default.audio_mask) if not a
    ]
    assert len(encoded.input_ids) - len(default.input_ids) == audio_tokens - NUM_AUDIO_TOKENS


def test_a_prompt_that_fits_8_audio_positions_may_not_fit_32():
    tok = build_tokenizer()
    record = rec("Is [AUDIO] a siren, a whistle, a beep, a drum, a dial tone or a heartbeat?" + " Tell me." * 8)
    need = len(Collator(tok, max_length=256, with_answer=False, audio_tokens=8).encode(record).input_ids)
    assert sum(Collator(tok, max_length=need, with_answer=False, audio_tokens=8).encode(record).audio_mask) == 8
    with pytest.raises(RecordError, match="32 audio"):
        Collator(tok, max_length=need, with_answer=False).encode(record)


# ---- several clips in one prompt (issue 19) ---------------------------------------------------


def clips_rec(instruction: str, audio, output: str = "Yes", id: str = "m1") -> Record:
    return Record(id=id, audio=audio, instruction=instruction, output=output, where="m.jsonl:3")


def test_every_span_sits_on_the_whole_strings_tokens(any_tokenizer):
    """Two and three placeholders: the text tokens are still the whole string's, each span at its
    own placeholder's offset, labels from len(tokenize(prompt))."""
    tok = any_tokenizer
    for instruction, n in (
        ("Is [AUDIO] the same kind of sound as [AUDIO]?", 2),
        ("Do [AUDIO], [AUDIO] and [AUDIO] belong to one class?", 3),
    ):
        record = clips_rec(instruction, tuple(f"c{i}.wav" for i in range(n)))
        enc = Collator(tok).encode(record)
        prompt, offsets = remove_placeholders(PromptTemplate().render(instruction))
        ids = [t for t, a in zip(enc.input_ids, enc.audio_mask) if not a]
        assert ids == whole(tok, prompt + "Yes") + [tok.eos_token_id]
        assert sum(enc.audio_mask) == n * NUM_AUDIO_TOKENS and len(enc.spans) == n
        for _k, (start, offset) in enumerate(zip(enc.spans, offsets)):
            assert enc.audio_mask[start : start + NUM_AUDIO_TOKENS] == [True] * NUM_AUDIO_TOKENS
            before = [t for t, a in zip(enc.input_ids[:start], enc.audio_mask[:start]) if not a]
            assert tok.decode(before, skip_special_tokens=True).rstrip() == prompt[:offset].rstrip()
        n_prompt = len(whole(tok, prompt))
        labels = [l for l, a in zip(enc.labels, enc.audio_mask) if not a]
        assert labels == [IGNORE_INDEX] * n_prompt + ids[n_prompt:]


def test_two_clip_tokens_with_spans_marked(llama_tokenizer):
    """The legacy LLaMA tokenizer: `I s <audio×32> ▁the ... ▁a s <audio×32> ?`, each span where its
    placeholder stood, no lone `▁` beside either."""
    tok = llama_tokenizer
    enc = Collator(tok).encode(clips_rec("Is [AUDIO] the same kind of sound as [AUDIO]?", ("a.wav", "b.wav")))
    pieces = tok.convert_ids_to_tokens(enc.input_ids)
    first, second = enc.spans
    assert pieces[first - 2 : first] == ["I", "s"] and pieces[first + NUM_AUDIO_TOKENS] == "▁the"
    assert pieces[second - 2 : second] == ["▁a", "s"] and pieces[second + NUM_AUDIO_TOKENS] == "?"


@pytest.mark.parametrize(
    "audio, instruction, counts",
    [
        (("a.wav", "b.wav"), "Is [AUDIO] loud?", (2, 1)),
        (("a.wav", "b.wav"), "Are these the same?", (2, 0)),
        ("a.wav", "Is [AUDIO] like [AUDIO]?", (1, 2)),
        ((), "Is [AUDIO] loud?", (0, 1)),
        ((), "Is it loud?", (0, 0)),
        (("a.wav", "b.wav", "c.wav"), "Is [AUDIO] like [AUDIO]?", (3, 2)),
    ],
)
def test_every_bad_clip_and_placeholder_combination_is_named_with_both_counts(tokenizer, audio, instruction, counts):
    clips, placeholders = counts
    with pytest.raises(RecordError, match=rf"m.jsonl:3 \(id=m1\).*{clips} audio clip\(s\).*{placeholders} \[AUDIO\]"):
        Collator(tokenizer).encode(clips_rec(instruction, audio))


def test_one_clip_in_a_list_keeps_both_one_clip_layouts(tokenizer):
    col = Collator(tokenizer)
    for instruction in ("Is [AUDIO] loud?", "What is it?"):
        assert col.encode(clips_rec(instruction, ("a.wav",))) == col.encode(clips_rec(instruction, "a.wav"))


def test_max_length_counts_every_span_and_truncation_never_cuts_one(tokenizer):
    record = clips_rec("Is [AUDIO] like [AUDIO]?", ("a.wav", "b.wav"), output="Yes " * 200)
    fits_one = len(Collator(tokenizer, with_answer=False).encode(clips_rec("Is [AUDIO] like?", "a.wav")).input_ids)
    with pytest.raises(RecordError, match=rf"\({2 * NUM_AUDIO_TOKENS} audio\)"):
        Collator(tokenizer, max_length=fits_one + 8).encode(record)
    prompt_len = len(Collator(tokenizer, with_answer=False).encode(record).input_ids)
    enc = Collator(tokenizer, max_length=prompt_len + 3).encode(record)
    assert len(enc.input_ids) == prompt_len + 3 and sum(enc.audio_mask) == 2 * NUM_AUDIO_TOKENS
    for start in enc.spans:
        assert enc.audio_mask[start : start + NUM_AUDIO_TOKENS] == [True] * NUM_AUDIO_TOKENS


@pytest.mark.parametrize("side", ["right", "left"])
def test_a_batch_stacks_every_clip_with_its_row_and_position(tokenizer, side):
    records = [
        clips_rec("Is [AUDIO] like [AUDIO]?", ("a.wav", "b.wav"), id="two"),
        clips_rec("Is [AUDIO] loud?", "c.wav", id="one"),
        clips_rec("What is it?", "d.wav", id="ltu"),
    ]
    clips = [
        [torch.full((1024, 128), 1.0), torch.full((1024, 128), 2.0)],
        torch.full((1024, 128), 3.0),
        torch.full((1024, 128), 4.0),
    ]
    col = Collator(tokenizer, padding_side=side, with_prompt_batch=True)
    batch = col([{"record": r, "audio": a} for r, a in zip(records, clips)])
    assert [float(a[0, 0]) for a in batch["audio"]] == [1.0, 2.0, 3.0, 4.0]
    assert not {"audio_rows", "audio_positions", "prompt_audio_rows", "prompt_audio_positions"} & set(batch)
    for prefix, with_answer in (("", True), ("prompt_", False)):
        mask = batch[f"{prefix}audio_mask"]
        shift = [
            mask.shape[1] - len(col.encode(r, with_answer=with_answer).input_ids) if side == "left" or prefix else 0
            for r in records
        ]
        expected = [
            (row, start + shift[row])
            for row, r in enumerate(records)
            for start in col.encode(r, with_answer=with_answer).spans
        ]
        assert span_starts(mask, NUM_AUDIO_TOKENS) == expected  # the k-th clip's span, as masked_scatter fills it
        assert [row for row, _ in expected] == [0, 0, 1, 2]
        for row, start in expected:
            assert mask[row, start : start + NUM_AUDIO_TOKENS].all()
        assert mask.sum(1).tolist() == [2 * NUM_AUDIO_TOKENS, NUM_AUDIO_TOKENS, NUM_AUDIO_TOKENS]
    with pytest.raises(RecordError, match=r"id=two.*1 clip\(s\) of audio given for 2 span"):
        col([{"record": records[0], "audio": clips[1]}])


def test_cached_features_travel_under_their_own_key(tokenizer):
    records = [clips_rec("Is [AUDIO] loud?", "c.wav", id="one"), clips_rec("What is it?", "d.wav", id="ltu")]
    features = [torch.full((NUM_AUDIO_TOKENS, 8), 1.0), torch.full((NUM_AUDIO_TOKENS, 8), 2.0)]
    col = Collator(tokenizer)
    batch = col([{"record": r, "audio_features": f} for r, f in zip(records, features)])
    assert "audio" not in batch and batch["audio_features"].shape == (2, NUM_AUDIO_TOKENS, 8)
    with pytest.raises(InterleaveError, match="one of"):
        col(
            [
                {"record": records[0], "audio_features": features[0]},
                {"record": records[1], "audio": torch.zeros(1024, 128)},
            ]
        )
