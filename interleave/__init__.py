"""interleave: train and evaluate LTU-style audio LLMs with interleaved prompts."""

from interleave.errors import AudioError, InterleaveError, RecordError
from interleave.moved import refuse_moved_command

refuse_moved_command()  # `python -m interleave.data` and other commands that moved: say where to

AUDIO_PLACEHOLDER = "[AUDIO]"
NUM_AUDIO_TOKENS = 32  # LTU's audio positions per clip: the default of `model.audio_tokens`

__all__ = ["AUDIO_PLACEHOLDER", "NUM_AUDIO_TOKENS", "AudioError", "InterleaveError", "RecordError"]
