"""Lightning callbacks of interleave."""

from callbacks.padding import PaddingFraction
from callbacks.predictions import WritePredictions
from callbacks.reliability import PreemptionCheckpoint, ResumeRandomState, SafeCheckpointIO
from callbacks.run_summary import RunSummary
from callbacks.shard_eval import ShardEvaluation

__all__ = [
    "PaddingFraction",
    "PreemptionCheckpoint",
    "ResumeRandomState",
    "RunSummary",
    "SafeCheckpointIO",
    "ShardEvaluation",
    "WritePredictions",
]
