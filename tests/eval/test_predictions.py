"""interleave.eval.predictions: a prediction row's JSON is today's (same keys, same order, optional
keys omitted), and a saved row is read back with every fault named."""

from __future__ import annotations

import json

import pytest

from interleave.errors import InterleaveError
from interleave.eval.predictions import Prediction
from tests.helpers import prediction


def test_the_json_keeps_todays_keys_in_todays_order_and_omits_absent_ones():
    row = prediction(
        id="synonym/0/alarm",
        candidate="alarm",
        truth="yes",
        prompt="Is [AUDIO] similar to alarm?",
        answers=["Yes", "No…"],
        parsed=["yes", "no"],
        index=3,
        clips=("a.wav",),
    )
    assert row.to_json() == (
        '{"id": "synonym/0/alarm", "task": "synonym", "condition": "interleaved", "label": "Siren", '
        '"candidate": "alarm", "truth": "yes", "prompt": "Is [AUDIO] similar to alarm?", '
        '"answers": ["Yes", "No…"], "parsed": ["yes", "no"]}'
    )
    full = prediction(truth="no", answers=["No "], parsed=["no"], cut=[True], cut_parser="paper", p_yes=0.25)
    assert list(json.loads(full.to_json()))[-3:] == ["cut", "cut_parser", "p_yes"]
    assert Prediction.from_json(full.to_json(), "f:1") == full
    assert Prediction.from_json(row.to_json(), "f:1") == row  # index and clips are not compared (memory only)


@pytest.mark.parametrize(
    "line, fault",
    [
        ("[1]", "f:2: expected a JSON object"),
        ('{"task": "chorus"}', "f:2: task 'chorus' is none of"),
        ('{"task": "synonym", "condition": "", "answers": []}', "f:2: no condition"),
        ('{"task": "synonym", "condition": "text", "answers": "Yes"}', "answers must be a list of strings"),
        ('{"task": "pair", "condition": "text", "answers": [], "truth": "maybe"}', "truth 'maybe' is none of yes, no"),
        ('{"task": "identity", "condition": "text", "answers": []}', "an identity row needs its label"),
        (
            '{"task": "synonym", "condition": "text", "answers": ["a"], "truth": "no", "cut": [true]}',
            "'cut' should hold",
        ),
    ],
)
def test_a_bad_row_is_refused_with_its_place(line, fault):
    with pytest.raises(InterleaveError, match=fault.replace("(", r"\(")):
        Prediction.from_json(line, "f:2")


def test_parsed_values_are_checked_against_the_task():
    assert prediction(answers=["a"], parsed=["yes"]).parsed_problem() is None
    assert "yes/no/null" in prediction(answers=["a"], parsed=[True]).parsed_problem()
    assert "true/false" in prediction(task="identity", answers=["a"], parsed=["yes"]).parsed_problem()
