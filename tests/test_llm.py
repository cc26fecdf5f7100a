"""Where the LLM comes from, and its tokenizer's special tokens agreeing with the model."""

import logging
from types import SimpleNamespace

import pytest

from interleave.errors import InterleaveError
from interleave.llm import align_special_tokens, load_tokenizer, resolve
from tests.conftest import build_llama_tokenizer


def test_builtin_smollm2_tokenizer_ends_with_the_models_eos(caplog):
    """transformers' GGUF tokenizer says EOS = <|im_start|> (1); the GGUF and the model say <|im_end|> (2)."""
    from transformers import AutoConfig

    with caplog.at_level(logging.INFO):
        tok = load_tokenizer("builtin:smollm2-135m-instruct")
    folder, gguf = resolve("builtin:smollm2-135m-instruct")
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf)
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (1, 2, 2)
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (1, 2, 2)
    assert tok.eos_token == "<|im_end|>"
    assert "eos 1 ('<|im_start|>') -> 2 ('<|im_end|>')" in caplog.text


def test_a_mismatch_is_corrected_to_the_models_ids_and_logged():
    tok = build_llama_tokenizer()
    assert (tok.bos_token_id, tok.eos_token_id) == (1, 2)
    changes = align_special_tokens(tok, SimpleNamespace(bos_token_id=1, eos_token_id=0, pad_token_id=None), "m")
    assert tok.eos_token_id == 0 and tok.eos_token == "<unk>" and tok.bos_token_id == 1
    assert changes == ["eos 2 ('</s>') -> 0 ('<unk>')"]
    assert align_special_tokens(tok, SimpleNamespace(bos_token_id=1, eos_token_id=0), "m") == []  # now agrees


def test_several_end_tokens_accept_any_of_them():
    tok = build_llama_tokenizer()
    assert align_special_tokens(tok, SimpleNamespace(eos_token_id=[5, 2]), "m") == [] and tok.eos_token_id == 2
    align_special_tokens(tok, SimpleNamespace(eos_token_id=[7, 8]), "m")
    assert tok.eos_token_id == 7


def test_an_id_the_tokenizer_lacks_is_refused_naming_both():
    tok = build_llama_tokenizer()
    with pytest.raises(InterleaveError, match=r"vicuna: the model's eos token id is 32000, which its tokenizer "
                                              rf"\({len(tok)} tokens, eos = 2\) does not have"):
        align_special_tokens(tok, SimpleNamespace(eos_token_id=32000), "vicuna")


def test_the_model_aligns_a_random_weight_llms_tokenizer(tiny_model_kwargs, tiny_llama_config):
    from interleave.model import AudioLLM

    config = {**tiny_llama_config, "eos_token_id": 0}  # the tokenizer fixture says </s> = 2
    model = AudioLLM(**{**tiny_model_kwargs, "llm_config": config})
    assert model.tokenizer.eos_token_id == 0
