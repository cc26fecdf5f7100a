"""interleave: train and evaluate LTU-style audio LLMs with interleaved prompts.

The runtime's folders: `data` (records to batches), `encoders` (audio to features), `model` (the
LightningModule and generation), `eval` (the SHARD evaluation); `spec` holds the contracts between
them; `errors`, `files`, `progress`, `provenance`, `checkpoints` and `labels` serve every floor;
`cli` and `config_paths` are the training entry's. Offline: `tools` (the `interleave` command) and
`shard` (the SHARD builder). ARCHITECTURE.md has the floor plan.
"""

import os

from interleave.errors import AudioError, InterleaveError, RecordError

# `python -m interleave.cache` and the other commands that moved find their stubs in interleave/moved/.
__path__.append(os.path.join(os.path.dirname(__file__), "moved"))

AUDIO_PLACEHOLDER = "[AUDIO]"
NUM_AUDIO_TOKENS = 32  # LTU's audio positions per clip: the default of `model.audio_tokens`

__all__ = ["AUDIO_PLACEHOLDER", "NUM_AUDIO_TOKENS", "AudioError", "InterleaveError", "RecordError"]
