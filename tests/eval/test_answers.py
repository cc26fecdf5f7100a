"""interleave.eval.answers: the paper's yes/no rules (the default) and the extended ones, each on a
large table of answers."""

from __future__ import annotations

from collections import Counter

import pytest

from interleave.eval.answers import (
    AFFIRMATIVE_PHRASES,
    LEADING_NO,
    LEADING_YES,
    NEGATIVE_PHRASES,
    PAPER_AFFIRMATIVE_PHRASES,
    PAPER_NEGATIVE_PHRASES,
    PARSERS,
    parse_answer,
)

# The paper's rules (the default): a leading yes/no, then no / not / does not / is not / n't, then yes / does.
PAPER_PARSE_CASES = [
    # rule 1: a leading yes or no decides
    ("Yes", "yes"),
    ("yes.", "yes"),
    ("YES!", "yes"),
    ("No", "no"),
    ("no.", "no"),
    ("NO!!", "no"),
    ("Yes, it is not only a siren but also an alarm.", "yes"),
    ("Yes, it isn't a dog; it is a siren.", "yes"),
    ("No, it does.", "no"),
    ("No, it is similar to a siren.", "no"),
    ("**Yes**", "yes"),
    ("**No**, it is a dog.", "no"),
    ("# Yes", "yes"),
    ("> no", "no"),
    ("`yes`", "yes"),
    ('"Yes," the model says.', "yes"),
    ("“No.”", "no"),
    ("Answer: yes", "yes"),
    ("**Response:** No", "no"),
    ("  \n Yes  ", "yes"),
    # rule 2: a negative phrase anywhere, even when an affirmative one is there too
    ("It doesn't.", "no"),
    ("It does not.", "no"),
    ("The sound is not similar to an alarm.", "no"),
    ("This is not a siren.", "no"),
    ("There is no siren here.", "no"),
    ("This isn't a siren.", "no"),
    ("It can't be a dog.", "no"),
    ("It can’t be a dog.", "no"),  # curly apostrophe
    ("It won't be.", "no"),
    ("I don't know.", "no"),
    ("The sound does not resemble a drum, but yes, it does ring.", "no"),
    ("Nope, it isn't.", "no"),
    ("Not at all.", "no"),
    ("Is it a drum? NO.", "no"),
    ("IT IS NOT", "no"),
    (
        "The audio contains a high-pitched tone that rises and falls, which is not typical of a dog "
        "barking; it resembles a siren or an alarm, and it is a type of warning signal.",
        "no",
    ),
    ("It might be, but I'm not sure.", "no"),  # hedged
    # rule 3: an affirmative phrase anywhere
    ("It does.", "yes"),
    ("It DOES sound like one.", "yes"),
    ("The answer is yes", "yes"),
    ("I think so, yes.", "yes"),
    ("Well... yes, probably.", "yes"),
    (
        "The recording, which lasts ten seconds and has a steady high-pitched tone, does match the "
        "description of an alarm.",
        "yes",
    ),
    # rule 4: nothing the paper names (the extended rules read several of these as yes or no)
    ("The sound is similar to a dog barking.", None),
    ("The siren is a type of warning signal.", None),
    ("It resembles a drum.", None),
    ("Sure.", None),
    ("Correct.", None),
    ("True.", None),
    ("Absolutely.", None),
    ("Indeed it is an alarm.", None),
    ("Nope.", None),
    ("False.", None),
    ("It is unlikely to be a siren.", None),
    ("It is neither a drum nor a bell.", None),
    ("The sound is different from a whistle.", None),
    ("Possibly.", None),
    ("", None),
    ("   \n\t", None),
    ("I know.", None),
    ("Nothing to say.", None),
    ("Let me note this.", None),
    ("Yesterday it rained.", None),
    ("The Nobel prize.", None),
    ("It is a siren.", None),
    ("Doesnt matter.", None),  # no apostrophe: no "n't"
]


@pytest.mark.parametrize("text, expected", PAPER_PARSE_CASES)
def test_parse_answer_paper_rules(text: str, expected: str | None) -> None:
    assert parse_answer(text, rules="paper") == expected
    assert parse_answer(text) == expected  # the paper's rules are the default


def test_paper_table_is_large_and_covers_all_outcomes() -> None:
    assert len(PAPER_PARSE_CASES) >= 40
    assert Counter(expected for _, expected in PAPER_PARSE_CASES).keys() == {"yes", "no", None}


def test_the_two_parsers_read_ltus_descriptive_answers_differently() -> None:
    answer = "The sound is similar to a dog barking."
    assert parse_answer(answer, rules="paper") is None
    assert parse_answer(answer, rules="extended") == "yes"
    assert parse_answer("It does.", rules="paper") == parse_answer("It does.", rules="extended") == "yes"
    assert parse_answer("It doesn't.", rules="paper") == parse_answer("It doesn't.", rules="extended") == "no"


def test_unknown_parser_rules_are_refused() -> None:
    assert PARSERS == ("paper", "extended")
    with pytest.raises(ValueError, match="'loose'.*paper, extended"):
        parse_answer("Yes", rules="loose")


def test_paper_docstring_states_its_phrases_and_that_they_are_examples() -> None:
    doc = " ".join(parse_answer.__doc__.split())
    for phrase in (*PAPER_NEGATIVE_PHRASES, *PAPER_AFFIRMATIVE_PHRASES, "n't"):
        assert phrase in doc, phrase
    assert '"e.g."' in doc and "leading-word rule" in doc


# The extended rules (rules="extended"), this project's earlier default.
PARSE_CASES = [
    # rule 1: a leading yes or no decides
    ("Yes.", "yes"),
    ("yes", "yes"),
    ("YES!", "yes"),
    ("No.", "no"),
    ("no", "no"),
    ("NO", "no"),
    ("Nope, it isn't.", "no"),
    ("Yeah, that's right.", "yes"),
    ("**Yes**", "yes"),
    ("**No**, it is a dog.", "no"),
    ("# Yes", "yes"),
    ('"Yes," the model says.', "yes"),
    ("Answer: yes", "yes"),
    ("**Response:** No", "no"),
    ("  \n Yes  ", "yes"),
    ("Yes, it is not only a siren but also an alarm.", "yes"),
    ("No, it is similar to a siren.", "no"),
    ("Correct, it is a type of signal.", "yes"),
    ("Absolutely.", "yes"),
    ("Definitely a drum.", "yes"),
    ("Indeed it is an alarm.", "yes"),
    ("Not at all.", "no"),
    ("False.", "no"),
    ("Incorrect", "no"),
    # rule 2: a negative phrase anywhere, even when an affirmative one is there too
    ("The sound is not a type of vehicle.", "no"),
    ("It might be, but I'm not sure.", "no"),
    ("The sound doesn't resemble a drum.", "no"),
    ("It does not sound like an alarm.", "no"),
    ("This isn't a siren.", "no"),
    ("It can’t be a dog.", "no"),
    ("The audio cannot be classified as a bird.", "no"),
    ("It is unlikely to be a siren.", "no"),
    ("The sound is different from a whistle.", "no"),
    ("These two are unrelated.", "no"),
    ("It is neither a drum nor a bell.", "no"),
    ("I have never heard that.", "no"),
    ("It is not similar to a whistle.", "no"),
    ("There is no siren here.", "no"),
    ("Is it a drum? NO.", "no"),
    # rule 3: an affirmative phrase anywhere
    ("The sound is similar to an alarm.", "yes"),
    ("The siren is a type of warning signal.", "yes"),
    ("A tick is a KIND OF sound.", "yes"),
    ("It does.", "yes"),
    ("It indeed resembles a drum.", "yes"),
    ("Notably, it resembles a whistle.", "yes"),
    ("The sound belongs to the category of signals.", "yes"),
    ("The answer is yes", "yes"),
    ("Of course it is.", "yes"),
    # rule 4: nothing matched
    ("", None),
    ("   \n\t", None),
    ("The weather is nice today.", None),
    ("Nothing to say.", None),
    ("I know.", None),
    ("Let me note this.", None),
    ("Yesterday it rained.", None),
    ("The Nobel prize.", None),
    ("My eyes hurt.", None),
    ("It is a siren.", None),
]


@pytest.mark.parametrize("text, expected", PARSE_CASES)
def test_parse_answer(text: str, expected: str | None) -> None:
    assert parse_answer(text, rules="extended") == expected


def test_parse_table_is_large_and_covers_all_outcomes() -> None:
    assert len(PARSE_CASES) >= 40
    assert Counter(expected for _, expected in PARSE_CASES).keys() == {"yes", "no", None}


def test_parse_docstring_states_every_word_and_phrase() -> None:
    doc = " ".join(parse_answer.__doc__.split())
    for phrase in (*LEADING_YES, *LEADING_NO, *NEGATIVE_PHRASES, *AFFIRMATIVE_PHRASES):
        assert phrase in doc, phrase


SETTLED_CASES = [
    ("Yes", None),
    ("Yes,", "yes"),
    ("yes.", "yes"),
    ("No", None),
    ("No ", "no"),
    ("**No**", "no"),
    ("no'", None),
    ("Answer", None),
    ("Answer ", None),
    ("Answer:", None),
    ("Answer: yes!", "yes"),
    ("Answers: yes!", None),
    ("The answer is not", None),
    ("The answer is not ", "no"),
    ('The answer is "No"', "no"),
    ("It doesn't.", "no"),
    ('The answer is "Yes".', None),
    ("Nothing ", None),
    ("Not", None),
    ("1. no ", "no"),
    ("", None),
    ('"', None),
]


@pytest.mark.parametrize("text, expected", SETTLED_CASES)
def test_settled_answer(text: str, expected: str | None) -> None:
    from interleave.eval.answers import settled_answer

    assert settled_answer(text) == expected


@pytest.mark.parametrize("rules", ["paper", "extended"])
def test_a_settled_verdict_is_the_verdict_of_every_continuation(rules: str) -> None:
    """For random answers built from the words the rules read, every prefix that `settled_answer`
    settles parses, continued by the rest of the answer, to what it said."""
    import random

    from interleave.eval.answers import settled_answer

    pieces = [
        "Yes",
        "yes",
        "No",
        "no",
        "not",
        "Not",
        "does",
        "n't",
        "'",
        "’",
        "s",
        "thing",
        "Answer",
        "Response",
        ":",
        " ",
        " ",
        ",",
        ".",
        "\n",
        "*",
        '"',
        "sure",
        "never",
        "similar to",
        "The sound",
        "it",
        "is",
        "1",
    ]
    rng, settled = random.Random(0), 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        for cut in range(len(text) + 1):
            verdict = settled_answer(text[:cut], rules)
            if verdict is not None:
                settled += 1
                assert parse_answer(text, rules) == verdict, (text, cut)
    assert settled > 1000  # the property was tested on many settled prefixes


def test_settled_answer_refuses_unknown_rules() -> None:
    from interleave.eval.answers import settled_answer

    with pytest.raises(ValueError, match="paper, extended"):
        settled_answer("Yes,", rules="loose")
