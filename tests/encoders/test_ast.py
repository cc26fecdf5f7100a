"""interleave.encoders.ast: the patch grid pooled over frequency, then time; its inputs are its feature
extractor's, with the checkpoint's own normalisation (which the fingerprint covers)."""

import torch

from interleave.encoders import build_encoder
from interleave.encoders.audio import load_waveform
from interleave.encoders.cache import fingerprint
from tests.helpers import built


def test_ast_pools_the_patch_grid_over_frequency_then_time(clips):
    encoder = built("ast:tiny", audio_tokens=4)
    inputs = encoder.load_inputs(clips[0])[None]
    hidden = encoder.model(input_values=inputs).last_hidden_state
    rows, cols = encoder.grid
    assert hidden.shape[1] == 2 + rows * cols and (rows, cols) == (8, 64)  # tiny: strides 16
    grid = hidden[:, 2:].reshape(1, rows, cols, 32).mean(dim=1)
    torch.testing.assert_close(encoder(inputs), grid.reshape(1, 4, 16, 32).mean(dim=2))


def test_ast_inputs_are_its_feature_extractors_with_the_checkpoints_normalisation(clips, tmp_path):
    from transformers import ASTFeatureExtractor

    encoder = built("ast:tiny")
    waveform = load_waveform(clips[1])
    expected = ASTFeatureExtractor()(waveform.numpy(), sampling_rate=16000, return_tensors="pt")["input_values"][0]
    torch.testing.assert_close(encoder.load_inputs(clips[1]), expected)
    # A checkpoint normalised otherwise (its preprocessor_config.json) gives other inputs and another fingerprint.
    encoder.model.save_pretrained(tmp_path / "ast")
    ASTFeatureExtractor(mean=0.0, std=1.0).save_pretrained(tmp_path / "ast")
    other = build_encoder("ast", path=str(tmp_path / "ast"))
    raw = (expected * (2 * 4.5689974)) + -4.2677393  # undo the default normalisation
    torch.testing.assert_close(other.load_inputs(clips[1]), raw / 2, rtol=1e-4, atol=1e-4)
    assert fingerprint(other) != fingerprint(encoder)
