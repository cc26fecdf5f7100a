"""interleave: train and evaluate LTU-style audio LLMs with interleaved prompts."""

from interleave.errors import AudioError, InterleaveError, RecordError

AUDIO_PLACEHOLDER = "[AUDIO]"
NUM_AUDIO_TOKENS = 32  # LTU's audio positions per clip: the default of `model.audio_tokens`

__all__ = ["AUDIO_PLACEHOLDER", "NUM_AUDIO_TOKENS", "AudioError", "InterleaveError", "RecordError"]
