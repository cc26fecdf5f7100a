"""The contracts between the parts: what each side states for the other, so that neither imports the other.

`DataSpec` is the model's side of the model <-> data handshake: `AudioLLM.data_spec()` returns it
and `InterleavedDataModule.connect(spec)` takes it (the command line does both for every run:
`interleave.cli`, and `build_run` for the tools). The model and the data module both import this
module; neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from interleave import NUM_AUDIO_TOKENS
from interleave.encoders.audio import FBANK_SECONDS, load_fbank

AudioLoader = Callable[..., torch.Tensor]  # (path, channel) -> one clip's encoder inputs


@dataclass(frozen=True)
class DataSpec:
    """What the data side needs from the model (`AudioLLM.data_spec()`): the tokenizer, the audio
    positions per clip, the encoder's input loader `(path, channel) -> one clip's inputs` (CAV-MAE's
    fbank, AST's or Whisper's extractor) and the seconds of a clip it hears. Defaults: LTU's.
    A released family (`model.pretrained`) adds `clip_positions`, its clips' span lengths (variable:
    a span follows its clip's length), and `template`, its chat layout, which replaces the data's
    prompt template."""

    tokenizer: Any
    audio_tokens: int = NUM_AUDIO_TOKENS
    audio_loader: AudioLoader = load_fbank
    heard_seconds: float = FBANK_SECONDS
    clip_positions: Callable[[torch.Tensor], int] | None = None  # a clip's inputs -> its span length
    positions_for_samples: Callable[[int], int] | None = None  # a clip's 16-kHz sample count -> its span length
    template: Any = None  # a released family's ChatTemplate (interleave.data.chat); None: the data's own
