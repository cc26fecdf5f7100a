"""interleave.encoders.base: the contract every kind meets (a frozen encoder stays frozen, `audio_tokens`
at least 1, inputs that are not finite refused by name) on the smallest kind there is, and
`pool_frames`, the pooling of every kind but CAV-MAE at 32."""

import pytest
import torch
from torch import nn

from interleave.encoders.base import Encoder, pool_frames
from interleave.errors import AudioError
from tests.helpers import write_clip


class Linear(Encoder):
    """The smallest kind: the waveform as 8 frames of 4 samples, one linear map, `pool_frames`."""

    kind = "linear"

    def __init__(self, audio_tokens: int = 4, frozen: bool = True) -> None:
        super().__init__(audio_tokens, frozen)
        self.proj = nn.Linear(4, 3)
        self.width = 3
        self._freeze()

    def inputs_from_waveform(self, waveform: torch.Tensor) -> torch.Tensor:
        return waveform[:32].reshape(8, 4)

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        return pool_frames(self.proj(inputs), self.audio_tokens)

    def settings(self) -> dict:
        return {"kind": self.kind, "tokens": self.audio_tokens}


def test_a_frozen_encoder_stays_in_eval_mode_and_builds_no_graph():
    encoder = Linear()
    encoder.train()
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    out = encoder(torch.randn(2, 8, 4))
    assert out.shape == (2, 4, 3) and not out.requires_grad
    trained = Linear(frozen=False).train()
    assert trained.training and trained(torch.randn(2, 8, 4)).requires_grad


def test_audio_tokens_must_be_at_least_one():
    with pytest.raises(ValueError, match="audio_tokens must be at least 1"):
        Linear(audio_tokens=0)


def test_inputs_that_are_not_finite_are_refused_by_name(tmp_path):
    clip = write_clip(tmp_path / "c.wav")
    encoder = Linear()
    assert encoder.load_inputs(clip).shape == (8, 4)
    with pytest.raises(AudioError, match=r"c\.wav: its linear input features are not finite"):
        encoder.load_inputs(clip, transform=lambda waveform: waveform * float("inf"))


def test_pool_frames_averages_equal_spans_and_repeats_frames_when_there_are_fewer_than_tokens():
    frames = torch.arange(2 * 8 * 3, dtype=torch.float32).reshape(2, 8, 3)
    torch.testing.assert_close(pool_frames(frames, 4), frames.reshape(2, 4, 2, 3).mean(dim=2))  # pairs at 2k frames
    torch.testing.assert_close(pool_frames(frames, 1), frames.mean(dim=1, keepdim=True))
    torch.testing.assert_close(pool_frames(frames[:, :2], 4), frames[:, [0, 0, 1, 1]])
