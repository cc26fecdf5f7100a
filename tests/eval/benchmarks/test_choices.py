"""interleave.eval.benchmarks.choices: MMAU's own rule on hand-written cases, the letter reading apart."""

import pytest

from interleave.eval.benchmarks.choices import LETTERS, correct, letter_of, majority, mmau_match, named_choice, words

CHOICES = ["Dog barking", "Cat meowing", "Car horn", "Dog growling"]


def test_words_are_lower_case_word_sets_without_punctuation():
    assert words("Dog, barking!  (loudly)") == {"dog", "barking", "loudly"}
    assert words("...") == set()


@pytest.mark.parametrize(
    "prediction, right",
    [
        ("dog barking", True),  # the answer's words
        ("The answer is: Dog barking.", True),  # other words that belong to no choice are fine
        ("barking", False),  # not every word of the answer
        ("dog barking or cat meowing", False),  # a wrong choice's word
        ("dog barking, not growling", False),  # 'growling' belongs only to a wrong choice
        ("Dog", False),  # 'dog' is shared with a wrong choice but 'barking' is missing
        ("", False),  # empty
        ("  !! ", False),  # no word at all
        ("B", False),  # a letter alone names nothing under MMAU's rule
        ("(A)", False),
    ],
)
def test_mmau_rule(prediction, right):
    assert mmau_match("Dog barking", prediction, CHOICES) is right


def test_words_shared_with_the_answer_are_not_wrong_words():
    # 'dog' is in a wrong choice too, but also in the answer: saying it is no fault.
    assert mmau_match("Dog growling", "a dog growling", CHOICES)
    assert not mmau_match("Dog growling", "a dog barking", CHOICES)


def test_named_choice_turns_the_rule_around_and_matches_it():
    for prediction in ["dog barking", "car horn!", "cat meowing", "the dog", "", "B", "dog barking car horn"]:
        named = named_choice(prediction, CHOICES)
        for answer in CHOICES:
            assert correct(named, answer, CHOICES) == mmau_match(answer, prediction, CHOICES), (prediction, answer)
    assert named_choice("the car horn", CHOICES) == 2
    assert named_choice("something else", CHOICES) is None


def test_letter_reading_is_a_separate_option():
    assert named_choice("B", CHOICES) is None
    for text in ["B", "(B)", "B.", "B)", "(B) Cat meowing", "B. cat", " b ".upper()]:
        assert named_choice(text, CHOICES, rule=LETTERS) == 1, text
    assert named_choice("A dog barking", CHOICES, rule=LETTERS) == 0  # read by words, not as the letter A
    assert named_choice("car horn", CHOICES, rule=LETTERS) == 2  # words still count
    assert letter_of("E", 4) is None  # past the choices
    with pytest.raises(ValueError, match="unknown choice rule"):
        named_choice("x", CHOICES, rule="fuzzy")


def test_majority_over_repeats_counts_no_choice_and_breaks_ties_by_first():
    assert majority([1, 2, 1, None]) == 1
    assert majority([None, None, 3]) is None
    assert majority([2, 1, 1, 2]) == 2
