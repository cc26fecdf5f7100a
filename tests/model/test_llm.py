"""Where the LLM comes from, and its tokenizer's special tokens agreeing with the model."""

import logging
from types import SimpleNamespace

import pytest

from interleave.errors import InterleaveError
from interleave.model.llm import align_special_tokens, load_tokenizer, resolve
from tests.helpers import ARCHITECTURES, TINY, architecture_kwargs, build_llama_tokenizer


@pytest.mark.slow  # the real SmolLM2's GGUF converted
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


@pytest.mark.slow  # the real SmolLM2's GGUF converted
def test_a_gguf_is_converted_once_into_the_cache_and_loads_as_the_gguf_itself(monkeypatch):
    """The converted folder holds the GGUF's weights bit for bit and a tokenizer with the same
    definition (so record indexes keep their keys) and ids; a second load reads the folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from interleave.model import llm

    spec = "builtin:smollm2-135m-instruct"
    folder, gguf = resolve(spec)
    loaded, tok = llm.load_llm(spec), load_tokenizer(spec)  # converts unless the cache holds it (`make setup` fills it)
    ready = llm.converted(folder, gguf)  # the float32 weights load_llm read
    assert (
        ready is not None and (ready / "converted.json").is_file() and ready.parent.parent == llm.cache_root() / "gguf"
    )
    assert ready.parent.name.startswith("SmolLM2-135M-Instruct.Q4_1-") and ready.name == "float32"
    assert (ready / "model.safetensors").is_file() and llm.prepare(spec) == [ready.parent / "tokenizer", ready]

    reference = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
    mine, theirs = loaded.state_dict(), reference.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in theirs)
    direct = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    assert tok.backend_tokenizer.to_str() == direct.backend_tokenizer.to_str()
    for text in ["### Instruction:\nIs [AUDIO] a siren?", "Labels: Heart sounds, heartbeat", "naïve café 123"]:
        assert tok(text)["input_ids"] == direct(text)["input_ids"]

    def refuse(*args, **kwargs):
        raise AssertionError("a second load converted the GGUF again")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", refuse)
    assert llm.converted(folder, gguf) == ready  # found, not converted


@pytest.mark.slow  # the real SmolLM2's GGUF converted
def test_the_tokenizer_is_converted_without_the_weights(tmp_path, monkeypatch):
    """load_tokenizer converts only the tokenizer (and the config it checks against): a large GGUF's
    weights are converted by load_llm, once, at the dtype it asks."""
    from transformers import AutoModelForCausalLM

    from interleave.model import llm

    def refuse(*args, **kwargs):
        raise AssertionError("the tokenizer's conversion loaded the weights")

    monkeypatch.setenv(llm.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", refuse)
    tok = load_tokenizer("builtin:smollm2-135m-instruct")
    (folder,) = (tmp_path / "cache" / "gguf").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["tokenizer"]  # no weights, no leftover temporary folder
    assert (folder / "tokenizer" / "config.json").is_file() and (tok.eos_token_id, tok.pad_token_id) == (2, 2)
    with pytest.raises(llm.InterleaveError, match="part must be"):
        llm.converted(*resolve("builtin:smollm2-135m-instruct"), "int8")


def test_a_cache_that_cannot_be_written_falls_back_to_the_gguf_with_a_warning(tmp_path, monkeypatch):
    from interleave.model import llm

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(llm.CACHE_ENV, str(blocker))
    folder, gguf = resolve("builtin:smollm2-135m-instruct")
    with pytest.warns(UserWarning, match="no conversion cache"):
        assert llm.converted(folder, gguf) is None
    with pytest.warns(UserWarning, match="reading the GGUF directly"):
        assert llm._source("builtin:smollm2-135m-instruct", "float32") == (folder, gguf)  # load_llm then reads the GGUF


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
    with pytest.raises(
        InterleaveError,
        match=r"vicuna: the model's eos token id is 32000, which its tokenizer "
        rf"\({len(tok)} tokens, eos = 2\) does not have",
    ):
        align_special_tokens(tok, SimpleNamespace(eos_token_id=32000), "vicuna")


def test_the_model_aligns_a_random_weight_llms_tokenizer(tiny_model_kwargs, tiny_llama_config):
    from interleave.model.module import AudioLLM

    config = {**tiny_llama_config, "eos_token_id": 0}  # the tokenizer fixture says </s> = 2
    model = AudioLLM(**{**tiny_model_kwargs, "llm_config": config})
    assert model.tokenizer.eos_token_id == 0


# ---- any Hugging Face causal LM: the architectures tested, on tiny random configs --------------


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_each_architecture_fits_generates_greedily_and_exports(name, tmp_path, small_dataset, monkeypatch):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    import train
    from interleave.model.llm import load_llm
    from interleave.model.module import AudioLLM
    from interleave.tools.export import export
    from tests.helpers import write_config

    monkeypatch.setattr("sys.argv", ["train.py"])
    config, kwargs = architecture_kwargs(name, tmp_path)
    run = train.cli(["fit", "--config", str(write_config(tmp_path, small_dataset, kwargs, max_steps=2))])
    model = run.model.eval()
    assert run.trainer.global_step == 2
    assert model.llm.get_base_model().config.model_type == config["model_type"]
    lora = {n for n in model.trainable_parameters() if "lora_" in n}
    assert lora and {n.split(".")[-4] for n in lora} == {"q_proj", "v_proj"}  # the architecture's default
    if config["num_key_value_heads"] < config["num_attention_heads"]:
        k_proj = model.llm.get_base_model().get_decoder().layers[0].self_attn.k_proj
        assert k_proj.out_features == TINY["hidden_size"] // 2  # grouped-query attention
    assert any(not torch.equal(p, torch.zeros_like(p)) for n, p in model.named_parameters() if "lora_B" in n)

    # Greedy generation: batched and left-padded equals one clip at a time, and repeats itself.
    batch = next(iter(run.datamodule.val_dataloader()))
    together = model.generate_batch(batch, max_new_tokens=5, do_sample=False)
    alone = [
        model.generate_batch(
            {k: (v[i : i + 1] if hasattr(v, "shape") else v[i : i + 1]) for k, v in batch.items()},
            max_new_tokens=5,
            do_sample=False,
        )[0]
        for i in range(len(batch["ids"]))
    ]
    assert together == alone == model.generate_batch(batch, max_new_tokens=5, do_sample=False)

    # Export, then rebuild the LLM from its config with the peft adapter: the same logits.
    checkpoint = tmp_path / "ckpt" / "last.ckpt"
    out = export(checkpoint, tmp_path / "export")
    peft_model = PeftModel.from_pretrained(load_llm(config=config, seed=0), out / "lora").eval()
    ids = batch["input_ids"][:1, :12].clone()
    with torch.no_grad():
        torch.testing.assert_close(peft_model(input_ids=ids).logits, model.llm(input_ids=ids).logits)
    assert torch.equal(load_file(out / "projector.safetensors")["audio_proj.1.weight"], model.audio_proj[1].weight)
    # And the checkpoint reloads onto the same model: the same logits for the whole batch, audio included.
    reloaded = AudioLLM.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(batch).logits, model(batch).logits)


def test_lora_targets_default_to_the_architectures_and_can_be_overridden(tiny_model_kwargs, tiny_llama_config):
    from interleave.model.llm import llm_config, lora_targets
    from interleave.model.module import AudioLLM

    assert lora_targets(llm_config({"model_type": "qwen2"})) == ["q_proj", "v_proj"]
    assert lora_targets(llm_config({"model_type": "gpt2"})) == ["c_attn"]
    assert lora_targets(llm_config({}), ["q_proj", "k_proj", "v_proj", "o_proj"]) == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
    ]
    model = AudioLLM(**{**tiny_model_kwargs, "lora_target_modules": ["k_proj", "o_proj"]})
    names = {n.split(".")[-4] for n in model.trainable_parameters() if "lora_" in n}
    assert names == {"k_proj", "o_proj"}
    with pytest.raises(InterleaveError, match="unknown model_type 'nope'"):
        llm_config({"model_type": "nope"})


def test_an_architecture_without_a_default_asks_for_target_modules():
    from interleave.model.llm import lora_targets

    with pytest.raises(InterleaveError, match="set model.lora_target_modules"):
        lora_targets(SimpleNamespace(model_type="something-new"))
