"""Which choice a generated answer names: MMAU's own rule, and a separate letter-aware reading.

MMAU's rule (its `evaluation.py`, `string_match`), the default, so that figures stay comparable
with published MMAU numbers: the answer, the prediction and every choice become sets of
lower-case words (`re.findall(r"\\b\\w+\\b", text.lower())`, punctuation dropped); a prediction
is correct when every word of the answer is in it and it holds no word that belongs only to a
wrong choice (words the answer shares with a wrong choice excluded; a choice with the answer's very
word set is not a wrong one); an empty prediction (no word) is wrong.

`named_choice` turns the rule around: the choice a prediction names is the one whose test it
passes (two choices pass only when their word sets are equal; the first is named), None when it
names none. So an item's verdict is `correct(named_choice(...))`, equal to MMAU's test of the
answer, and the choices named with and without the clip can be compared (agreement).

`letters` (never the default): a prediction that is a choice's letter — "B", "(B)", "B.",
"B)", "B:" or one starting "(B) " — names that choice (the first choice is A); any other
prediction is read by MMAU's rule.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

MMAU, LETTERS = "mmau", "letters"
RULES = (MMAU, LETTERS)
_LETTER = re.compile(r"^\s*(?:\(([A-Z])\)(?=\s|[.:]|$)|([A-Z])[.):]?\s*$|([A-Z])[.):]\s)")


def words(text: str) -> set[str]:
    """MMAU's word set of a text: its lower-case `\\b\\w+\\b` matches."""
    return set(re.findall(r"\b\w+\b", text.lower()))


def mmau_match(answer: str, prediction: str, choices: Sequence[str]) -> bool:
    """MMAU's `string_match`: the answer's words all in the prediction, none of a wrong choice's own."""
    predicted, wanted = words(prediction), words(answer)
    if not predicted:
        return False
    wrong: set[str] = set()
    for choice in choices:
        if (own := words(choice)) != wanted:
            wrong |= own - wanted
    return wanted <= predicted and predicted.isdisjoint(wrong)


def letter_of(prediction: str, count: int) -> int | None:
    """The choice index a letter answer names ("B", "(B)", "B." ...), None for any other answer
    or a letter past the `count` choices."""
    match = _LETTER.match(prediction)
    if match is None:
        return None
    index = ord(next(g for g in match.groups() if g)) - ord("A")
    return index if index < count else None


def named_choice(prediction: str, choices: Sequence[str], rule: str = MMAU) -> int | None:
    """The index of the choice `prediction` names under `rule` (`RULES`), None when it names none."""
    if rule not in RULES:
        raise ValueError(f"unknown choice rule {rule!r}; expected one of {RULES}")
    if rule == LETTERS and (index := letter_of(prediction, len(choices))) is not None:
        return index
    for index, choice in enumerate(choices):
        if mmau_match(choice, prediction, choices):
            return index
    return None


def correct(index: int | None, answer: str, choices: Sequence[str]) -> bool:
    """Whether naming choice `index` answers `answer` (its word set is the answer's: MMAU's test)."""
    return index is not None and words(choices[index]) == words(answer)


def majority(named: Sequence[int | None]) -> int | None:
    """The choice most repeats named (no choice, None, is a vote too); a tie goes to the one named first."""
    counts = Counter(named)
    best = max(counts.values())
    return next(choice for choice in named if counts[choice] == best)
