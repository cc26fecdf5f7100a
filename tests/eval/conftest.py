"""Fixtures of the evaluation's tests: the tiny model the evaluation answers with."""

from tests.model.test_generation import model  # noqa: F401  (the tiny AudioLLM, for test_evaluate.py and test_probes.py)
