import pytest

from interleave.data.prompts import (
    ALPACA_SHORT,
    PromptTemplate,
    check_clip_count,
    clip_count_problem,
    remove_placeholders,
)
from interleave.errors import RecordError


def test_alpaca_short_is_ltus_template():
    assert ALPACA_SHORT == "### Instruction:\n{instruction}\n\n### Response:\n"
    assert PromptTemplate().render("Hi") == "### Instruction:\nHi\n\n### Response:\n"
    assert PromptTemplate().render("Hi", "ctx") == "### Instruction:\nHi\n\n### Input:\nctx\n\n### Response:\n"


def test_custom_template():
    template = PromptTemplate(
        prompt="USER: {instruction}\nASSISTANT:", prompt_with_input="USER: {instruction} {input}\nASSISTANT:"
    )
    assert template.render("Is [AUDIO] loud?") == "USER: Is [AUDIO] loud?\nASSISTANT:"


@pytest.mark.parametrize(
    "text, clean, offsets",
    [
        ("Is [AUDIO] a car?", "Is a car?", [2]),  # the space before goes
        ("[AUDIO] is loud", "is loud", [0]),  # none before: the space after goes
        ("Describe:\n[AUDIO]\nNow", "Describe:\n\nNow", [10]),  # no adjacent space: only the placeholder
        ("list the labels based on [AUDIO] ?", "list the labels based on ?", [24]),  # Table 1's identity prompt
        ("sir[AUDIO]en", "siren", [3]),  # inside a word
        ("no audio here", "no audio here", []),
    ],
)
def test_placeholder_removed_with_one_adjacent_space(text, clean, offsets):
    assert remove_placeholders(text) == (clean, offsets)


def test_two_placeholders_give_two_offsets():
    assert remove_placeholders("Is [AUDIO] like [AUDIO]?") == ("Is like?", [2, 7])


@pytest.mark.parametrize(
    "clips, placeholders, good",
    [
        (1, 0, True),
        (1, 1, True),
        (2, 2, True),
        (3, 3, True),
        (2, 1, False),
        (2, 0, False),
        (1, 2, False),
        (0, 0, False),
        (0, 1, False),
        (3, 2, False),
    ],
)
def test_clip_count_problem_names_both_counts(clips, placeholders, good):
    reason = clip_count_problem(clips, placeholders)
    assert (reason is None) == good
    if not good:
        assert f"{clips} audio clip(s)" in reason and f"{placeholders} [AUDIO] placeholder(s)" in reason
        with pytest.raises(RecordError, match=r"data.jsonl:7 \(id=a\)"):
            check_clip_count(clips, placeholders, "data.jsonl:7 (id=a)")
