"""Fixtures of the encoder tests."""

import pytest

from tests.helpers import write_clip


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three clips of 0.5, 1.5 and 2.5 s, each a tone of its own."""
    folder = tmp_path_factory.mktemp("clips")
    return [str(write_clip(folder / f"c{i}.wav", seconds=0.5 + i, freq=300.0 + 200 * i, seed=i)) for i in range(3)]
