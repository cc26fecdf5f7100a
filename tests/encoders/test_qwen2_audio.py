"""interleave.encoders.qwen2_audio: the released tower as an encoder kind. Its features are the ones
`Qwen2AudioForConditionalGeneration` hands its projector (padding masked), a clip's count of
positions is the processor's, a clip encoded alone equals it in a padded batch, and a folder of
another family is refused by name."""

from __future__ import annotations

import pytest
import torch

from interleave.encoders import build_encoder
from interleave.encoders.qwen2_audio import Qwen2AudioTower
from interleave.errors import InterleaveError
from tests.helpers import clip, processor_inputs, save_tiny_qwen2_audio


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_qwen2_audio(tmp_path_factory.mktemp("qwen2_audio"))


def _inputs(encoder, waveforms):
    return torch.stack([encoder.inputs_from_waveform(torch.from_numpy(w)) for w in waveforms])


def test_features_are_what_the_released_model_projects(folder):
    from transformers import Qwen2AudioForConditionalGeneration

    waveforms = [clip(1.0, seed=1), clip(7.0, seed=2), clip(30.0, seed=3)]
    encoder = build_encoder("qwen2_audio", path=str(folder))
    full = Qwen2AudioForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    seen = []
    full.model.multi_modal_projector.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    with torch.no_grad():
        full(**processor_inputs(folder, [(["Hi ", w], None) for w in waveforms]))
    inputs = _inputs(encoder, waveforms)
    counts = encoder.positions(inputs)
    assert counts.tolist() == [25, 175, 750]
    ours = encoder(inputs)
    assert ours.shape == (3, 750, encoder.width)
    for row, theirs, n in zip(ours, seen[0], counts):
        assert (row[:n] - theirs[:n]).abs().max() <= 1e-5


@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.55, 10.0, 29.99, 45.0])
def test_positions_are_the_processors_count(folder, seconds):
    from transformers import AutoProcessor

    encoder = build_encoder("qwen2_audio", path=str(folder))
    audio_id = AutoProcessor.from_pretrained(folder).tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    expected = int((processor_inputs(folder, [(["Hi ", clip(seconds)], None)])["input_ids"] == audio_id).sum())
    assert encoder.positions(_inputs(encoder, [clip(seconds)])).tolist() == [expected]


def test_a_clip_alone_equals_it_in_a_padded_batch():
    torch.manual_seed(0)
    encoder = build_encoder("qwen2_audio:tiny")
    short, long = clip(1.2, seed=4), clip(9.0, seed=5)
    alone = encoder(_inputs(encoder, [short]))[0, :30]
    batched = encoder(_inputs(encoder, [long, short]))[1, :30]
    assert (alone - batched).abs().max() <= 1e-5
    # the mask is what makes them equal: the tower without it hears the padding
    unmasked = encoder.model(_inputs(encoder, [short])[:, :-1]).last_hidden_state[0, :30]
    assert (unmasked - alone).abs().max() > 1e-3


def test_a_folder_of_another_family_is_refused(tmp_path):
    from transformers import WhisperConfig

    WhisperConfig().save_pretrained(tmp_path)
    with pytest.raises(InterleaveError, match="holds a 'whisper' model, not a 'qwen2_audio' one"):
        Qwen2AudioTower(path=str(tmp_path))
    with pytest.raises(InterleaveError, match="no config.json"):
        Qwen2AudioTower(path=str(tmp_path / "missing"))


def test_unknown_fields_are_refused():
    with pytest.raises(InterleaveError, match="not fields of the qwen2_audio encoder's config"):
        build_encoder("qwen2_audio:tiny", overrides={"hidden_size": 8})
