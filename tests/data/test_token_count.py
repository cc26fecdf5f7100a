"""interleave.data.token_count: exact token counts of many texts (the cached word and piece paths and the
tokenizer's batch call), and audio offsets reported clean only where no token straddles them."""

import random
import re

import pytest
import regex

from interleave.data.collate import tokens_with_audio
from interleave.data.token_count import BYTE_LEVEL_PATTERN, TokenCounter, ascii_pattern, piece_pattern
from tests.helpers import CORPUS, build_tokenizer

WORDS = (
    "Is it the a dog's barks vehicle siren car 12 3.5 4,000 café naïve \u2028 tab\t x</s> <s> <pad> engine "
    "loud\nquiet \n\n ### Instruction: Response: don't I'll we've 'quoted' (paren) [AUDIO] ... -- ?! Labels:"
).split(" ")


def random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        joiner = rng.choice([" ", " ", " ", "  ", "\n", " \n", "\n "])
        texts.append(joiner.join(rng.choice(WORDS) for _ in range(rng.randint(1, 25))))
    return texts + ["", " ", "\n", "x", "  leading", "trailing  ", *CORPUS]


def llama3_style_tokenizer():
    """Byte-level BPE behind a Split regex, as Llama 3 and Qwen2 ship it."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    pattern = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
        r"|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


@pytest.fixture(scope="module", params=["bytelevel", "llama-legacy", "llama-metaspace", "split-regex"])
def each_tokenizer(request):
    from tests.helpers import build_tokenizer_kind

    return llama3_style_tokenizer() if request.param == "split-regex" else build_tokenizer_kind(request.param)


def test_counts_are_the_tokenizers_own(each_tokenizer):
    counter = TokenCounter(each_tokenizer)
    texts = random_texts(600)
    expected = [len(each_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert counter.count(texts, [None] * len(texts)) == expected
    assert counter.count(texts, [None] * len(texts)) == expected  # again, from the caches


def test_a_count_with_an_offset_is_given_only_where_no_token_is_split(each_tokenizer):
    counter = TokenCounter(each_tokenizer)
    rng = random.Random(1)
    texts = random_texts(400, seed=2)
    offsets = [rng.randint(0, len(t)) if t else 0 for t in texts]
    counted = counter.count(texts, offsets)
    clean = 0
    for text, offset, count in zip(texts, offsets, counted):
        ids, _, splits = tokens_with_audio(each_tokenizer, text, [offset])
        if count is not None:
            assert splits == 0 and count == len(ids), (text, offset)
            clean += 1
    assert clean > 200  # most offsets are decided without the exact path


def test_byte_level_tokenizers_take_the_cached_paths():
    assert piece_pattern(__import__("json").loads(build_tokenizer().backend_tokenizer.to_str())) == BYTE_LEVEL_PATTERN
    counter = TokenCounter(build_tokenizer())
    texts = ["What is the sound of dog?", "Is it a siren? Yes, it is."]
    assert counter.count(texts, [texts[0].index(" of"), None]) == [
        len(build_tokenizer()(t, add_special_tokens=False)["input_ids"]) for t in texts
    ]
    assert {"sound", "siren?"} <= set(counter._rest)  # words counted once, then summed
    assert counter.count(["Is it a type of vehicle?"], [20]) == [None]  # inside "vehicle": the exact path decides


def test_ascii_pattern_agrees_with_the_unicode_pattern_on_ascii():
    llama3 = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
        r"|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    texts = [t for t in random_texts(300, seed=3) if t.isascii()] + ["it's 1234567 x]y [z] a^b"]
    for pattern in (BYTE_LEVEL_PATTERN, llama3):
        plain = re.compile(ascii_pattern(pattern), re.ASCII)
        assert "\\p{" not in plain.pattern
        assert all(plain.findall(t) == regex.findall(pattern, t) for t in texts)


def test_a_prompt_ending_in_one_newline_and_its_answer_count_apart_as_together(each_tokenizer):
    counter = TokenCounter(each_tokenizer)
    prompts = ["### Instruction:\nWhat is it?\n\n### Response:\n", "Say:\n", "Two:\n\n", "x \n", "caf\u00e9:\n"]
    answers = random_texts(200, seed=4)
    joined = 0
    for prompt in prompts:
        for answer in answers:
            if counter.joins(prompt, answer):
                joined += 1
                whole = len(each_tokenizer(prompt + answer, add_special_tokens=False)["input_ids"])
                assert counter.count([prompt], [None])[0] + counter.count([answer], [None])[0] == whole, (
                    prompt,
                    answer,
                )
    assert joined > 300 if counter.words else joined == 0
