"""Parsing a generated answer to SHARD's yes/no questions: yes, no or unparsed (None).

Two rule sets: `paper` (the default: the phrases the paper names) and `extended` (wider readings).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# --- answer parsing ---------------------------------------------------------------------

PARSERS = ("paper", "extended")  # parse_answer's rule sets; "paper" is the default everywhere

# The paper's rules ("paper"): the phrases its section on answer parsing names.
PAPER_LEADING_YES = ("yes",)
PAPER_LEADING_NO = ("no",)
PAPER_NEGATIVE_PHRASES = ("no", "not", "does not", "is not")  # and any word ending in "n't"
PAPER_AFFIRMATIVE_PHRASES = ("yes", "does")

# The wider rules ("extended"), this project's earlier default.
LEADING_YES = (
    "yes",
    "yeah",
    "yep",
    "yup",
    "correct",
    "true",
    "absolutely",
    "certainly",
    "definitely",
    "indeed",
    "sure",
)
LEADING_NO = ("no", "nope", "nah", "not", "false", "incorrect", "wrong", "never", "neither")
NEGATIVE_PHRASES = (
    "no", "not", "nope", "none", "nor", "neither", "never", "cannot", "does not", "is not", "are not",
    "unlikely", "different from", "differs", "dissimilar", "unrelated", "incorrect",
)  # fmt: skip
AFFIRMATIVE_PHRASES = (
    "yes", "yeah", "yep", "yup", "does", "indeed", "correct", "true", "certainly", "definitely",
    "absolutely", "of course", "a type of", "a kind of", "a form of", "a sort of", "is similar",
    "are similar", "similar to", "resembles", "same as", "synonym", "synonymous", "belongs to",
    "classified as", "falls under",
)  # fmt: skip

_LEAD = re.compile(r"""^[\s"'`*#_>“”‘’]*(?:(?:answer|response)\s*:[\s"'`*#_>“”‘’]*)?""", re.IGNORECASE)
_FIRST_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?", re.IGNORECASE)


def _phrase_pattern(phrases: Iterable[str], extra: str = "") -> re.Pattern[str]:
    """Whole-word, case-insensitive alternation of ``phrases`` (spaces match any whitespace)."""
    body = "|".join(r"\s+".join(map(re.escape, p.split())) for p in sorted(phrases, key=len, reverse=True))
    if extra:
        body += "|" + extra
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)


_NEGATIVE = _phrase_pattern(NEGATIVE_PHRASES, extra=r"\w+n't")
_AFFIRMATIVE = _phrase_pattern(AFFIRMATIVE_PHRASES)

# rules name -> (leading yes words, leading no words, negative pattern, affirmative pattern)
_RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...], re.Pattern[str], re.Pattern[str]]] = {
    "paper": (
        PAPER_LEADING_YES,
        PAPER_LEADING_NO,
        _phrase_pattern(PAPER_NEGATIVE_PHRASES, extra=r"\w+n't"),
        _phrase_pattern(PAPER_AFFIRMATIVE_PHRASES),
    ),
    "extended": (LEADING_YES, LEADING_NO, _NEGATIVE, _AFFIRMATIVE),
}


def _read(text: str, rules: str) -> tuple[tuple, str, str]:
    """What both `parse_answer` and `settled_answer` start from: the rule set, the text with curly
    apostrophes straightened, and the text after leading quotes, markdown and an "Answer:" label."""
    if rules not in _RULES:
        raise ValueError(f"unknown answer parser rules {rules!r}; expected one of {', '.join(PARSERS)}")
    text = text.replace("’", "'").replace("‘", "'")
    return _RULES[rules], text, text[_LEAD.match(text).end() :]


def parse_answer(text: str, rules: str = "paper") -> str | None:
    """Map a generated answer to "yes", "no" or None (unparsed) with whole-word regular expressions.

    All matching is case-insensitive and on whole words (so "know", "note", "nothing", "Nobel"
    and "yesterday" match neither "no" nor "yes"); curly apostrophes count as "'". Both rule sets
    (``rules``, one of :data:`PARSERS`; another name raises ValueError) first strip leading
    whitespace, quotes, markdown (``*``, ``#``, ``_``, ``>``, backticks) and a leading "Answer:"
    or "Response:" label, then apply their rules in order, the first that applies winning.

    ``rules="paper"`` (the default), the paper's parser:

    1. A leading word yes gives "yes", a leading word no gives "no".
    2. Otherwise a negative phrase anywhere gives "no": no, not, does not, is not, and any word
       ending in "n't" (doesn't, isn't, can't, ...).
    3. Otherwise an affirmative phrase anywhere gives "yes": yes, does.
    4. Otherwise (empty text included) None.

    The paper says negative phrases "e.g." no, does not, is not map to No and affirmative ones
    "e.g." yes, does map to Yes: it gives examples, not its full lists, and does not state the
    leading-word rule (1) nor that negation wins over affirmation. Those readings, the exact lists
    above and the "n't" contractions are this project's. So "The sound is similar to a dog
    barking." is unparsed (None), which counts as not-yes.

    ``rules="extended"``, this project's earlier, wider rules (they read LTU's descriptive
    answers as yes more often, e.g. anything "similar to" or "a type of"):

    1. A leading yes or no decides. After stripping leading whitespace, quotes, markdown
       (``*``, ``#``, ``_``, ``>``, backticks) and a leading "Answer:" or "Response:" label, a
       first word among yes, yeah, yep, yup, correct, true, absolutely, certainly, definitely,
       indeed, sure gives "yes"; among no, nope, nah, not, false, incorrect, wrong, never,
       neither gives "no".
    2. Otherwise a negative phrase anywhere gives "no" (negation wins over affirmation):
       no, not, nope, none, nor, neither, never, cannot, does not, is not, are not, unlikely,
       different from, differs, dissimilar, unrelated, incorrect, and any word ending in "n't"
       (doesn't, isn't, can't, ...).
    3. Otherwise an affirmative phrase anywhere gives "yes": yes, yeah, yep, yup, does, indeed,
       correct, true, certainly, definitely, absolutely, of course, a type of, a kind of,
       a form of, a sort of, is similar, are similar, similar to, resembles, same as, synonym,
       synonymous, belongs to, classified as, falls under.
    4. Otherwise (empty text included) None.
    """
    (leading_yes, leading_no, negative, affirmative), text, rest = _read(text, rules)
    first = _FIRST_WORD.match(rest)
    if first:
        word = first.group(0).lower()
        if word in leading_yes:
            return "yes"
        if word in leading_no:
            return "no"
    if negative.search(text):
        return "no"
    if affirmative.search(text):
        return "yes"
    return None


_CONFIRMED = {name: re.compile(rules[2].pattern + r"(?=[\s\S])", re.IGNORECASE) for name, rules in _RULES.items()}


def settled_answer(text: str, rules: str = "paper") -> str | None:
    """The value `parse_answer(text + rest, rules)` has for every `rest`, or None while some
    continuation could still change it: what lets the evaluation stop an answer at its verdict.

    Settled are a leading yes/no word already followed by a character that ends it ("Yes,",
    "No "), and, once the first word is known not to be one, a negative phrase already followed by
    a character (rule 2 wins over rule 3, so nothing after it can matter). A yes from rule 3 is
    never settled before the end: a later negative would turn it into no.
    """
    (leading_yes, leading_no, _, _), text, rest = _read(text, rules)
    if not rest:
        return None  # only quotes, markdown or a label so far: the first word is still to come
    first = _FIRST_WORD.match(rest)
    if first is not None:
        end, word = first.end(), first.group(0).lower()
        if end == len(rest) or (rest[end] == "'" and "'" not in word and end + 1 == len(rest)):
            return None  # the word may go on ("no" -> "nothing", "no'" -> "no's")
        if word in ("answer", "response") and not rest[end:].strip():
            return None  # "Answer" may still become the label "Answer:" that the parser skips
        if word in leading_yes:
            return "yes"
        if word in leading_no:
            return "no"
    return "no" if _CONFIRMED[rules].search(text) else None
