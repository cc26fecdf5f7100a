"""LTU compatibility: LTU's checkpoint naming, CAV-MAE's encoder alone, safe loading, LTU parity."""

import os
import pickle

import pytest
import torch
import torch.nn.functional as F

from interleave import NUM_AUDIO_TOKENS
from interleave.data.collate import Collator
from interleave.data.records import Record
from interleave.errors import InterleaveError
from interleave.model.ltu import LTU_ENCODER, LTU_PROJECTOR, load_encoder_checkpoint
from interleave.model.module import AudioLLM
from tests.helpers import ltu_state_dict


def test_ltu_key_names_are_the_released_ones(tiny_model_kwargs):
    state = ltu_state_dict(AudioLLM(**tiny_model_kwargs))
    assert "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" in state
    assert "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight" in state
    assert "base_model.model.model.audio_proj.1.weight" in state
    assert "base_model.model.model.audio_encoder.blocks_a.0.attn.qkv.weight" in state
    assert "base_model.model.model.audio_encoder.patch_embed_a.proj.weight" in state


def test_ltu_checkpoint_loads_every_weight_with_nothing_missing_or_unexpected(tmp_path, tiny_model_kwargs, capsys):
    state = ltu_state_dict(AudioLLM(**tiny_model_kwargs))
    torch.save(state, tmp_path / "ltu.bin")
    model = AudioLLM(**tiny_model_kwargs, ltu_checkpoint=str(tmp_path / "ltu.bin"))
    own = dict(model.named_parameters())
    for name, value in state.items():
        if name.startswith(LTU_ENCODER):
            target = own["audio_encoder." + name[len(LTU_ENCODER) :]]
        elif name.startswith(LTU_PROJECTOR):
            target = own["audio_proj.1." + name[len(LTU_PROJECTOR) :]]
        else:
            target = own["llm." + name.replace(".weight", ".default.weight")]
        assert torch.equal(target, value), name
    (report,) = model.checkpoint_reports
    assert report.matched == {"encoder": 46, "projector": 2, "lora": 8}  # 2 layers x q,v x A,B
    assert sum(report.matched.values()) == len(state) and report.missing == [] and report.unexpected == []
    assert f"{len(state)} keys matched" in str(report) and "0 missing, 0 unexpected" in str(report)


def test_wrong_ltu_checkpoints_fail_with_a_clear_message(tmp_path, tiny_model_kwargs):
    state = ltu_state_dict(AudioLLM(**tiny_model_kwargs))
    lacking = {k: v for k, v in state.items() if "layers.1.self_attn.v_proj.lora_B" not in k}
    torch.save(lacking, tmp_path / "lacking.bin")
    with pytest.raises(
        InterleaveError, match=r"lacks 1 weight\(s\) the model needs: .*layers\.1\.self_attn\.v_proj\.lora_B"
    ):
        AudioLLM(**tiny_model_kwargs, ltu_checkpoint=str(tmp_path / "lacking.bin"))

    torch.save(state, tmp_path / "ltu.bin")
    with pytest.raises(InterleaveError, match=r"lora_A.weight has shape \[4, 64\], the model expects \[2, 64\]"):
        AudioLLM(**{**tiny_model_kwargs, "lora_r": 2}, ltu_checkpoint=str(tmp_path / "ltu.bin"))

    with pytest.raises(InterleaveError, match="checkpoint not found"):
        AudioLLM(**tiny_model_kwargs, ltu_checkpoint=str(tmp_path / "nope.bin"))


def test_extra_keys_are_reported_not_fatal(tmp_path, tiny_model_kwargs):
    state = ltu_state_dict(AudioLLM(**tiny_model_kwargs))
    state["base_model.model.lm_head.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "ltu.bin")
    (report,) = AudioLLM(**tiny_model_kwargs, ltu_checkpoint=str(tmp_path / "ltu.bin")).checkpoint_reports
    assert report.unexpected == ["base_model.model.lm_head.weight"] and "1 unexpected" in str(report)


class RunsCode:
    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_runs_code_is_refused(tmp_path, tiny_model_kwargs):
    marker = tmp_path / "pwned"
    evil = RunsCode()
    evil.marker = marker
    RunsCode.marker = marker
    with open(tmp_path / "evil.bin", "wb") as handle:
        pickle.dump({"base_model.model.model.audio_proj.1.weight": evil}, handle)
    with pytest.raises(InterleaveError, match="refused to load"):
        AudioLLM(**tiny_model_kwargs, ltu_checkpoint=str(tmp_path / "evil.bin"))
    assert not marker.exists()


def test_cavmae_encoder_checkpoint_alone(tmp_path, tiny_model_kwargs):
    model = AudioLLM(**tiny_model_kwargs)
    gen = torch.Generator().manual_seed(3)
    audio = {f"module.{k}": torch.randn(v.shape, generator=gen) for k, v in model.audio_encoder.state_dict().items()}
    visual = {"module.blocks_v.0.attn.qkv.weight": torch.zeros(2), "module.patch_embed_v.proj.weight": torch.zeros(2)}
    torch.save({**audio, **visual}, tmp_path / "cav-mae.pth")
    loaded = AudioLLM(**tiny_model_kwargs, encoder_checkpoint=str(tmp_path / "cav-mae.pth"))
    for name, value in loaded.audio_encoder.state_dict().items():
        assert torch.equal(value, audio[f"module.{name}"]), name
    report = load_encoder_checkpoint(loaded, tmp_path / "cav-mae.pth")
    assert report.matched == {"encoder": len(audio)} and len(report.unexpected) == 2

    torch.save({k: v for k, v in audio.items() if "norm_a" not in k}, tmp_path / "partial.pth")
    with pytest.raises(InterleaveError, match="partial.pth: audio encoder weights missing .*norm_a"):
        AudioLLM(**tiny_model_kwargs, encoder_checkpoint=str(tmp_path / "partial.pth"))
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(InterleaveError, match="no CAV-MAE audio branch found"):
        AudioLLM(**tiny_model_kwargs, encoder_checkpoint=str(tmp_path / "other.pth"))
    whisper = {**tiny_model_kwargs, "encoder": "whisper:tiny", "encoder_kwargs": None}
    with pytest.raises(InterleaveError, match="holds CAV-MAE weights but model.encoder is 'whisper'"):
        AudioLLM(**whisper, encoder_checkpoint=str(tmp_path / "cav-mae.pth"))
    with pytest.raises(InterleaveError, match="is LTU's CAV-MAE model; model.encoder is 'whisper'"):
        AudioLLM(**whisper, ltu_checkpoint=str(tmp_path / "cav-mae.pth"))


def test_noninterleaved_layout_computes_what_ltu_computes(tmp_path, tiny_model_kwargs):
    """LTU's forward written plainly: encoder -> mean over frequency -> average time pairs -> /50
    -> LayerNorm -> Linear, placed before the embeddings of the whole prompt (BOS included),
    positions from 0, through the LoRA LLaMA."""
    torch.save(ltu_state_dict(AudioLLM(**tiny_model_kwargs), seed=5), tmp_path / "ltu.bin")
    model = AudioLLM(**tiny_model_kwargs, ltu_checkpoint=str(tmp_path / "ltu.bin"), lora_dropout=0.0).eval()
    record = Record(id="r", audio="a.wav", instruction="What is the sound in the audio?", output="Labels: Siren")
    batch = Collator(model.tokenizer)([{"record": record, "audio": torch.randn(1024, 128)}])
    assert batch["audio_mask"][0, :NUM_AUDIO_TOKENS].all() and batch["input_ids"][0, NUM_AUDIO_TOKENS] == 1  # BOS

    with torch.no_grad():
        ours = model(batch).logits

        enc = model.audio_encoder
        patches = enc.forward_features(batch["audio"])  # [1, 512, D], frequency-major
        pooled = patches.reshape(1, 8, 64, -1).mean(dim=1)  # [1, 64, D]
        pooled = (pooled[:, 0::2] + pooled[:, 1::2]) / 2 / 50  # [1, 32, D]
        proj = model.audio_proj[1]
        audio_embeds = F.linear(F.layer_norm(pooled, pooled.shape[-1:]), proj.weight, proj.bias)
        text_ids = batch["input_ids"][:, NUM_AUDIO_TOKENS:]
        text_embeds = model.llm.get_input_embeddings()(text_ids)
        embeds = torch.cat([audio_embeds, text_embeds], dim=1)
        positions = torch.arange(embeds.shape[1])[None]
        reference = model.llm(inputs_embeds=embeds, position_ids=positions).logits
    assert torch.allclose(ours, reference, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(ours[:, NUM_AUDIO_TOKENS:], model.llm(input_ids=text_ids).logits, atol=1e-3)


def test_interleaved_layout_computes_ltus_modules_with_the_audio_at_the_word_boundary(tmp_path, tiny_model_kwargs):
    """The interleaved forward written plainly: the whole prompt + answer tokenized as one string
    without `[AUDIO]` and its space, LTU's audio embeddings inserted at the word boundary after
    "Is", positions running on through the span, through the LoRA LLaMA."""
    torch.save(ltu_state_dict(AudioLLM(**tiny_model_kwargs), seed=6), tmp_path / "ltu.bin")
    model = AudioLLM(**tiny_model_kwargs, ltu_checkpoint=str(tmp_path / "ltu.bin"), lora_dropout=0.0).eval()
    tok = model.tokenizer
    record = Record(id="r", audio="a.wav", instruction="Is [AUDIO] similar to a siren?", output="Yes")
    batch = Collator(tok)([{"record": record, "audio": torch.randn(1024, 128)}])

    text = "### Instruction:\nIs similar to a siren?\n\n### Response:\nYes"
    ids = tok(text)["input_ids"] + [tok.eos_token_id]  # BOS as the tokenizer adds it
    k = len(tok("### Instruction:\nIs")["input_ids"])  # tokens before the word boundary
    assert batch["input_ids"][0, :k].tolist() == ids[:k]
    assert batch["input_ids"][0, k + NUM_AUDIO_TOKENS :].tolist() == ids[k:]
    assert batch["audio_mask"][0, k : k + NUM_AUDIO_TOKENS].all() and batch["audio_mask"].sum() == NUM_AUDIO_TOKENS

    with torch.no_grad():
        ours = model(batch).logits

        patches = model.audio_encoder.forward_features(batch["audio"])
        pooled = patches.reshape(1, 8, 64, -1).mean(dim=1)
        pooled = (pooled[:, 0::2] + pooled[:, 1::2]) / 2 / 50
        proj = model.audio_proj[1]
        audio_embeds = F.linear(F.layer_norm(pooled, pooled.shape[-1:]), proj.weight, proj.bias)
        text_embeds = model.llm.get_input_embeddings()(torch.tensor([ids]))
        embeds = torch.cat([text_embeds[:, :k], audio_embeds, text_embeds[:, k:]], dim=1)
        positions = torch.arange(embeds.shape[1])[None]
        reference = model.llm(inputs_embeds=embeds, position_ids=positions).logits
    assert torch.allclose(ours, reference, atol=1e-5, rtol=0)
