"""Fixtures of the benchmark tests: the tiny model the ranked scoring reads."""

from tests.model.test_generation import model  # noqa: F401  (the tiny AudioLLM)
