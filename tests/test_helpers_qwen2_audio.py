"""The tiny Qwen2-Audio the tests build (`tests.helpers_qwen2_audio`) is what the family releases:
its saved keys are the hub's, its processor expands each clip to 25 positions per second, and the
model is the composition tower -> projector -> LLM with the embeddings scattered at the audio
positions (the fact the framework's encoder kind, projector kind and LLM rest on)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import clip, processor_inputs, reference_logits, save_tiny_qwen2_audio


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_qwen2_audio(tmp_path_factory.mktemp("qwen2_audio"))


def test_saved_keys_are_the_released_layout(folder):
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as weights:
        prefixes = {".".join(key.split(".")[:2]) for key in weights.keys()}
    assert {
        "audio_tower.conv1",
        "multi_modal_projector.linear",
        "language_model.model",
        "language_model.lm_head",
    } <= prefixes
    assert all(p.split(".")[0] in ("audio_tower", "multi_modal_projector", "language_model") for p in prefixes)


@pytest.mark.parametrize("seconds", [0.5, 1.0, 7.3, 30.0, 31.0])
def test_positions_per_clip_are_25_per_second_up_to_30_s(folder, seconds):
    from transformers import AutoProcessor

    inputs = processor_inputs(folder, [(["Hi ", clip(seconds)], None)])
    audio_id = AutoProcessor.from_pretrained(folder).tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    frames = math.ceil(min(seconds, 30.0) * 100)  # mel frames of hop 160 that the extractor's mask keeps
    assert int(inputs["feature_attention_mask"].sum()) == min(frames, 3000)
    assert int((inputs["input_ids"] == audio_id).sum()) == ((frames - 1) // 2 + 1 - 2) // 2 + 1


def _composed_logits(folder, inputs) -> torch.Tensor:
    """tower (with its padding mask) -> projector -> language model, scattered at the audio ids."""
    from transformers import Qwen2AudioForConditionalGeneration
    from transformers.masking_utils import create_bidirectional_mask

    full = Qwen2AudioForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    tower, projector, llm = full.model.audio_tower, full.model.multi_modal_projector, full.model.language_model
    lengths = (inputs["feature_attention_mask"].sum(-1) - 1) // 2 + 1
    keep = torch.arange(1500)[None] < lengths[:, None]
    mask = create_bidirectional_mask(
        config=tower.config, inputs_embeds=torch.zeros(len(keep), 1500, 1), attention_mask=keep.long()
    )
    with torch.no_grad():
        frames = tower(inputs["input_features"], attention_mask=mask).last_hidden_state
        positions = (lengths - 2) // 2 + 1
        audio = projector(frames)[torch.arange(frames.shape[1])[None] < positions[:, None]]
        ids = inputs["input_ids"]
        embeds = llm.get_input_embeddings()(ids)
        embeds = embeds.masked_scatter((ids == full.config.audio_token_id)[..., None], audio)
        hidden = llm(inputs_embeds=embeds, attention_mask=inputs["attention_mask"]).last_hidden_state
        return full.lm_head(hidden)


def test_the_model_is_tower_projector_llm(folder):
    batch = [
        (["Is ", clip(1.0, seed=1), " like ", clip(2.6, seed=2), "?"], None),
        (["What is ", clip(7.0, seed=3)], "A tone."),
    ]
    inputs = processor_inputs(folder, batch)
    assert torch.equal(_composed_logits(folder, inputs), reference_logits(folder, inputs))
