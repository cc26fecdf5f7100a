"""Lightning callbacks of interleave."""

from callbacks.predictions import WritePredictions
from callbacks.run_summary import RunSummary

__all__ = ["RunSummary", "WritePredictions"]
