import pytest

from interleave.errors import RecordError
from interleave.prompts import ALPACA_SHORT, PromptTemplate, remove_placeholders


def test_alpaca_short_is_ltus_template():
    assert ALPACA_SHORT == "### Instruction:\n{instruction}\n\n### Response:\n"
    assert PromptTemplate().render("Hi") == "### Instruction:\nHi\n\n### Response:\n"
    assert PromptTemplate().render("Hi", "ctx") == "### Instruction:\nHi\n\n### Input:\nctx\n\n### Response:\n"


def test_custom_template():
    template = PromptTemplate(prompt="USER: {instruction}\nASSISTANT:", prompt_with_input="USER: {instruction} {input}\nASSISTANT:")
    assert template.render("Is [AUDIO] loud?") == "USER: Is [AUDIO] loud?\nASSISTANT:"


@pytest.mark.parametrize("text, clean, offsets", [
    ("Is [AUDIO] a car?", "Is a car?", [2]),  # the space before goes
    ("[AUDIO] is loud", "is loud", [0]),  # none before: the space after goes
    ("Describe:\n[AUDIO]\nNow", "Describe:\n\nNow", [10]),  # no adjacent space: only the placeholder
    ("list the labels based on [AUDIO] ?", "list the labels based on ?", [24]),  # Table 1's identity prompt
    ("sir[AUDIO]en", "siren", [3]),  # inside a word
    ("no audio here", "no audio here", []),
])
def test_placeholder_removed_with_one_adjacent_space(text, clean, offsets):
    assert remove_placeholders(text, "x") == (clean, offsets)


def test_two_placeholders_are_an_error_naming_the_record():
    with pytest.raises(RecordError, match=r"data.jsonl:7 \(id=a\).*2 \[AUDIO\]"):
        remove_placeholders("[AUDIO] and [AUDIO]", "data.jsonl:7 (id=a)")
