import pytest

from interleave.errors import RecordError
from interleave.prompts import ALPACA_SHORT, PromptTemplate, split_at_placeholder


def test_alpaca_short_is_ltus_template():
    assert ALPACA_SHORT == "### Instruction:\n{instruction}\n\n### Response:\n"
    assert PromptTemplate().render("Hi") == "### Instruction:\nHi\n\n### Response:\n"
    assert PromptTemplate().render("Hi", "ctx") == "### Instruction:\nHi\n\n### Input:\nctx\n\n### Response:\n"


def test_custom_template():
    template = PromptTemplate(prompt="USER: {instruction}\nASSISTANT:", prompt_with_input="USER: {instruction} {input}\nASSISTANT:")
    assert template.render("Is [AUDIO] loud?") == "USER: Is [AUDIO] loud?\nASSISTANT:"


def test_split_rules():
    assert split_at_placeholder("Is [AUDIO] a car?", "x") == ("Is ", " a car?")
    assert split_at_placeholder("no audio here", "x") == ("no audio here", None)
    with pytest.raises(RecordError, match=r"data.jsonl:7 \(id=a\).*2 \[AUDIO\]"):
        split_at_placeholder("[AUDIO] and [AUDIO]", "data.jsonl:7 (id=a)")
