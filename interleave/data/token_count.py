"""Exact token counts of many texts, fast: what `len(tokenizer(text, add_special_tokens=False))`
gives, for a million training records in seconds rather than minutes.

A byte-level BPE tokenizer (SmolLM2's, Llama 3's, Qwen2's) without a normalizer tokenizes each
piece of its pre-tokenizer's regex on its own, so a text's count is the sum of its pieces'
counts, and natural text repeats its pieces (words) endlessly. For texts of printable ASCII that
hold none of the tokenizer's added tokens, the pieces are cut here with the same regex and each
distinct piece is counted once by the tokenizer itself. Every other text, and every text of a
tokenizer of another kind (LLaMA's SentencePiece), goes through the tokenizer's own batch call.
Either way a character offset (where an audio span goes) is reported as clean when no token
straddles it; the caller takes the exact, slow path for the records where it is not.

`measure_records` is THE record check and length rule of the project (the record index stores its
results; `interleave.data.checks.check_records` and `interleave data check` call it): for each record, its
token length as `Collator.encode` gives it, or why the record is bad, the counts taken here
where they are surely exact and from `Collator.encode` everywhere else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import regex

from interleave import AUDIO_PLACEHOLDER
from interleave.data.collate import Collator
from interleave.data.prompts import clip_count_problem, count_placeholders, remove_placeholders
from interleave.data.records import Record
from interleave.errors import RecordError

# Printable ASCII, tab, newline and carriage return: where the regex module and the tokenizer's
# Oniguruma regex agree on every character class (\p{L}, \p{N}, \s).
_PLAIN = re.compile(r"[\t\n\r\x20-\x7e]*")
# tokenizers' ByteLevel pre-tokenizer with use_regex (GPT-2's pattern).
BYTE_LEVEL_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def piece_pattern(tokenizer_json: dict[str, Any]) -> str | None:
    """The regex whose matches the tokenizer's BPE sees one at a time, or None when its counts
    cannot be summed over pieces (a normalizer, no byte-level pre-tokenizer, another model)."""
    if tokenizer_json.get("model", {}).get("type") != "BPE" or tokenizer_json["model"].get("dropout"):
        return None
    normalizer = tokenizer_json.get("normalizer")
    if normalizer is not None and not (normalizer.get("type") == "Sequence" and not normalizer.get("normalizers")):
        return None
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    if not steps or steps[-1].get("type") != "ByteLevel" or steps[-1].get("add_prefix_space"):
        return None
    if len(steps) == 1:
        return BYTE_LEVEL_PATTERN if steps[0].get("use_regex", True) else None
    split = steps[0]
    if (
        len(steps) == 2
        and split.get("type") == "Split"
        and not steps[1].get("use_regex", True)
        and split.get("behavior") == "Isolated"
        and not split.get("invert")
        and "Regex" in split.get("pattern", {})
    ):
        return split["pattern"]["Regex"]
    return None


def ascii_pattern(pattern: str) -> str:
    """`pattern` for Python's `re` on printable ASCII: `\\p{L}` and `\\p{N}` spelled out, inside a
    character class or outside one (`re` lacks them; on such text they mean exactly this)."""
    out, i, depth = [], 0, 0
    spelled = {"L": "A-Za-z", "N": "0-9"}
    while i < len(pattern):
        if pattern.startswith(("\\p{L}", "\\p{N}"), i):
            letters = spelled[pattern[i + 3]]
            out.append(letters if depth else f"[{letters}]")
            i += 5
            continue
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[" and not depth:
            depth = 1
        elif char == "]" and depth and out and out[-1] not in ("[", "[^"):
            depth = 0
        out.append("[^" if char == "[" and pattern.startswith("[^", i) else char)
        i += 2 if char == "[" and pattern.startswith("[^", i) else 1
    return "".join(out)


class TokenCounter:
    """Counts (and clean audio offsets) of texts as the tokenizer encodes them without special tokens."""

    def __init__(self, tokenizer: Any) -> None:
        from tokenizers import Tokenizer

        config = tokenizer.backend_tokenizer.to_str()
        self.backend = Tokenizer.from_str(config)  # a copy: no truncation or padding left from other calls
        self.backend.no_truncation()
        self.backend.no_padding()
        described = json.loads(config)
        pattern = piece_pattern(described)
        plain = None if pattern is None else ascii_pattern(pattern)
        self.pieces = (
            None
            if pattern is None
            else (re.compile(plain, re.ASCII) if "\\p{" not in plain else regex.compile(pattern)).findall
        )
        # GPT-2's pattern never joins a piece across a single space that follows a non-space, so
        # with single spaces a text's count is its first word's plus each " word"'s.
        self.words = pattern == BYTE_LEVEL_PATTERN
        added = [t["content"] for t in described.get("added_tokens", [])]
        added += [t for t in (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token) if t]
        self.joinable = not any("\n" in a for a in added) and not any(
            t.get("lstrip") for t in described.get("added_tokens", [])
        )  # one that would take the newline
        self.added = re.compile("|".join(re.escape(a) for a in dict.fromkeys(added))).search if added else None
        self.prompts: dict[tuple[str, int | None], int | None] = {}  # (prompt, audio offset) -> count
        self._first: dict[str, int] = {}  # first word -> count
        self._rest: dict[str, int] = {}  # word w -> count of " " + w
        self._piece: dict[str, int] = {}

    def joins(self, prefix: str, text: str) -> bool:
        """Whether `prefix + text` surely counts as `prefix`'s count plus `text`'s: with GPT-2's
        pattern, a single newline after a non-space (a template's end) always ends a piece when no
        whitespace follows, and no added token holds a newline or strips one on its left."""
        return (
            self.words
            and self.joinable
            and len(prefix) > 1
            and prefix[-1] == "\n"
            and not prefix[-2].isspace()
            and not text[:1].isspace()
        )

    def _encode_counts(self, texts: list[str]) -> list[int]:
        return [len(e) for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def _plain(self, text: str) -> bool:
        return self.pieces is not None and _PLAIN.fullmatch(text) is not None and not (self.added and self.added(text))

    def count(self, texts: list[str], offsets: list[int | None]) -> list[int | None]:
        """For each text, its token count, or None when its offset (if not None) falls inside a token."""
        for cache in (self._first, self._rest, self._piece):
            if len(cache) > 2_000_000:
                cache.clear()
        out: list[int | None] = [None] * len(texts)
        by_words, by_pieces, slow = [], [], []
        first, rest = self._first, self._rest
        for i, (text, offset) in enumerate(zip(texts, offsets)):
            if not self._plain(text):
                slow.append(i)
            elif self.words and _single_spaced(text) and _word_boundary(text, offset):
                words = text.split(" ")
                try:
                    out[i] = first[words[0]] + sum(map(rest.__getitem__, words[1:]))
                except KeyError:
                    by_words.append((i, words))
            else:
                by_pieces.append(i)
        if by_words:
            heads = list({w[0] for _, w in by_words if w[0] not in first})
            tails = list({t for _, w in by_words for t in w[1:] if t not in rest})
            counts = self._encode_counts(heads + [" " + t for t in tails])
            first.update(zip(heads, counts))
            rest.update(zip(tails, counts[len(heads) :]))
            for i, words in by_words:
                out[i] = first[words[0]] + sum(map(rest.__getitem__, words[1:]))
        pieces = {}
        for i in by_pieces:
            text, offset = texts[i], offsets[i]
            found = self.pieces(text)
            if sum(map(len, found)) != len(text):  # a regex that leaves gaps: not this path
                slow.append(i)
            elif offset is None or offset <= 0 or offset >= len(text) or offset in _starts(found):
                pieces[i] = found
        missing = list({p for found in pieces.values() for p in found if p not in self._piece})
        self._piece.update(zip(missing, self._encode_counts(missing)))
        for i, found in pieces.items():
            out[i] = sum(map(self._piece.__getitem__, found))
        if slow:
            encodings = self.backend.encode_batch([texts[i] for i in slow], add_special_tokens=False)
            for i, encoding in zip(slow, encodings):
                out[i] = len(encoding) if _clean(encoding, offsets[i], len(texts[i])) else None
        return out


def _single_spaced(text: str) -> bool:
    """Words joined by single spaces, none ending in whitespace before a space."""
    return not (
        text.startswith(" ") or text.endswith(" ") or "  " in text or "\n " in text or "\t " in text or "\r " in text
    )


def _word_boundary(text: str, offset: int | None) -> bool:
    """Whether GPT-2's pattern surely starts a piece at `offset` of a single-spaced ASCII text:
    at a space, or after a letter where no letter follows (a run of letters, or a contraction,
    ends there)."""
    if offset is None or offset <= 0 or offset >= len(text):
        return True
    return text[offset] == " " or (text[offset - 1].isalpha() and not text[offset].isalpha())


def _starts(pieces: list[str]) -> set[int]:
    at, starts = 0, set()
    for piece in pieces:
        starts.add(at)
        at += len(piece)
    return starts


def _clean(encoding: Any, offset: int | None, length: int) -> bool:
    """Whether no token of `encoding` starts before `offset` and ends after it (the collator's
    split rule); False also where the offsets are unusual, so that the exact path decides."""
    if offset is None or offset <= 0 or len(encoding) == 0:
        return True
    if offset >= length:
        return encoding.token_to_chars(len(encoding) - 1)[1] <= offset
    j = encoding.char_to_token(offset)
    if j is None or encoding.token_to_chars(j)[0] != offset:
        return False
    return j == 0 or encoding.token_to_chars(j - 1)[1] <= offset


OK, SPLIT, BAD = 0, 1, 2  # a record's status: good, good with a text token split at an audio offset, bad


@dataclass
class Measured:
    """`measure_records`' results, one entry per record: token length (0 when bad or unmeasured),
    status (OK, SPLIT, BAD) and, for each bad record's position, the reason."""

    lengths: np.ndarray
    status: np.ndarray
    reasons: dict[int, str] = field(default_factory=dict)


def measure_records(
    records: Sequence[Record], collator: Collator | None, counter: TokenCounter | None = None
) -> Measured:
    """The one record check and length rule: each record's length `len(collator.encode(r).input_ids)`
    and status, or why it is bad (`RecordError`'s reason: a clip count that does not match the
    placeholders, a prompt that cannot fit `max_length`, ...). Without a collator only the clip
    count is checked. `counter` (made for the collator's tokenizer when None; pass one to keep its
    caches across calls) counts the single-clip records whose audio offset falls between tokens;
    every other record goes through `collator.encode`."""
    n = len(records)
    length, status, reasons = np.zeros(n, np.int32), np.zeros(n, np.uint8), {}
    if collator is None:
        for i, record in enumerate(records):
            if reason := clip_count_problem(len(record.clips), count_placeholders(record.instruction + record.input)):
                status[i], reasons[i] = BAD, reason
        return Measured(length, status, reasons)
    counter = counter or TokenCounter(collator.tokenizer)
    exact = _fast_lengths(records, collator, counter, length)
    for i in exact:
        try:
            encoded = collator.encode(records[i])
        except RecordError as err:
            status[i], reasons[i] = BAD, err.reason
            continue
        length[i] = len(encoded.input_ids)
        status[i] = SPLIT if encoded.splits else OK
    return Measured(length, status, reasons)


def _fast_lengths(
    records: Sequence[Record], collator: Collator, counter: TokenCounter, length: np.ndarray
) -> list[int]:
    """Fill `length` where the counter's counts are surely `encode`'s; return the other positions.
    A single clip with at most one placeholder is always a valid clip count, and a prompt that
    fits with room for an answer token is never a problem, so those records are good (OK)."""
    template, eos = collator.template, collator.tokenizer.eos_token
    cache = counter.prompts
    if len(cache) > 200_000:  # distinct prompts: a cache, not a table of them all
        cache.clear()
    exact, prompts, fulls, offsets, joined = [], [], [], [], []
    for i, record in enumerate(records):
        rendered = template.render(record.instruction, record.input)
        one = isinstance(record.audio, str) and rendered.count(AUDIO_PLACEHOLDER) <= 1  # else encode() checks it
        prompt, found = remove_placeholders(rendered) if one else ("", None)
        full = prompt + record.output
        if found is None or (eos is not None and eos in full):
            exact.append(i)
            prompts.append(None)
            fulls.append("")
            offsets.append(None)
            joined.append(False)
            continue
        offset = found[0] if found else None
        prompts.append((prompt, offset))
        joined.append(counter.joins(prompt, record.output))  # then the answer is counted alone
        fulls.append(record.output if joined[-1] else full)
        offsets.append(None if joined[-1] else offset)
    wanted = list(dict.fromkeys(p for p in prompts if p is not None and p not in cache))
    for key, count in zip(wanted, counter.count([p for p, _ in wanted], [o for _, o in wanted])):
        cache[key] = count
    full_counts = counter.count(fulls, offsets)
    exact_set, slow = set(exact), []
    bos, span, limit = int(collator.add_bos), collator.audio_tokens, collator.max_length
    for i in range(len(records)):
        if i not in exact_set:
            prompt_count, full_count = cache[prompts[i]], full_counts[i]
            spans = span if collator.clip_spans is None else sum(collator.record_spans(records[i], 1))
            if prompt_count is not None and full_count is not None and bos + prompt_count + spans < limit:
                full_count += prompt_count if joined[i] else 0
                length[i] = min(limit, bos + full_count + 1 + spans)  # + EOS
                continue
        slow.append(i)
    return slow
