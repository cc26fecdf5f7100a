"""interleave.encoders.whisper: only the encoder frames that cover the clip are pooled (30 s of padding
never dominates a short clip); a clip of 30 s or more pools all 1500."""

import torch

from interleave.encoders.base import pool_frames
from tests.helpers import built, write_clip


def test_whisper_pools_only_the_frames_that_cover_the_clip(clips):
    encoder = built("whisper:tiny", audio_tokens=8)
    inputs = encoder.load_inputs(clips[0])  # 0.5 s: 50 mel frames of 3000, 25 encoder frames of 1500
    assert inputs[-1].sum() == 50 and inputs[-1, :50].all()
    frames = encoder.model(inputs[None, :-1]).last_hidden_state
    assert frames.shape[1] == 1500
    torch.testing.assert_close(encoder(inputs[None]), pool_frames(frames[:, :25], 8))
    assert not torch.allclose(encoder(inputs[None]), pool_frames(frames, 8))


def test_whisper_a_clip_longer_than_30_s_pools_all_1500_frames(tmp_path):
    encoder = built("whisper:tiny", audio_tokens=4)
    inputs = encoder.load_inputs(write_clip(tmp_path / "long.wav", seconds=31.0))
    frames = encoder.model(inputs[None, :-1]).last_hidden_state
    torch.testing.assert_close(encoder(inputs[None]), pool_frames(frames, 4))
