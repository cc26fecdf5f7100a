"""Lightning callbacks of interleave."""

from callbacks.run_summary import RunSummary

__all__ = ["RunSummary"]
