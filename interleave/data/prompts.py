"""Prompt templates and the `[AUDIO]` placeholder rule.

A prompt with `[AUDIO]` placeholders is interleaved: each clip's audio span goes where its
placeholder stands, in order. A prompt without one is non-interleaved (LTU's layout): the one
clip's span goes first, before BOS. Each placeholder and one adjacent space are removed before
tokenization (`remove_placeholders`). `clip_count_problem` says which clip and placeholder
counts go together: one clip with none or one placeholder, else as many placeholders as clips.
"""

from __future__ import annotations

from dataclasses import dataclass

from interleave import AUDIO_PLACEHOLDER
from interleave.errors import RecordError

# LTU's "alpaca_short" template (LTU's templates/alpaca_short.json).
ALPACA_SHORT = "### Instruction:\n{instruction}\n\n### Response:\n"
ALPACA_SHORT_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"


@dataclass(frozen=True)
class PromptTemplate:
    """Renders an instruction (and optional input) into the text the LLM sees before its answer."""

    prompt: str = ALPACA_SHORT
    prompt_with_input: str = ALPACA_SHORT_INPUT

    def key(self) -> list[str]:
        """What the rendered text depends on (the record index's key holds it)."""
        return [self.prompt, self.prompt_with_input]

    def render(self, instruction: str, input: str = "", clips: int = 1) -> str:
        """The prompt; `clips` is for a chat template's layout (`interleave.data.chat`): LTU's
        layout puts a record's clip before the prompt whatever its text."""
        if input:
            return self.prompt_with_input.format(instruction=instruction, input=input)
        return self.prompt.format(instruction=instruction)


def count_placeholders(text: str) -> int:
    return text.count(AUDIO_PLACEHOLDER)


def remove_placeholders(text: str) -> tuple[str, list[int]]:
    """The text the LLM reads and the character offsets where audio spans go.

    Each `[AUDIO]` is removed with one adjacent space: the one before it, else the one after it
    ("Is [AUDIO] similar" reads as "Is similar", the span at offset 2).
    """
    first, *rest = text.split(AUDIO_PLACEHOLDER)
    out, offsets = first, []
    for piece in rest:
        if out.endswith(" "):
            out = out[:-1]
        elif piece.startswith(" "):
            piece = piece[1:]
        offsets.append(len(out))
        out += piece
    return out, offsets


def clip_count_problem(clips: int, placeholders: int) -> str | None:
    """Why `clips` audio paths cannot fill a prompt with `placeholders` `[AUDIO]`s, or None.

    One clip goes with no placeholder (LTU's layout) or one; two or more need exactly as many
    placeholders, filled in order; no clip (an empty list) is never good. The reason says both counts.
    """
    if clips == 1 and placeholders <= 1:
        return None
    if clips >= 2 and placeholders == clips:
        return None
    return (
        f"the record has {clips} audio clip(s) but its prompt has {placeholders} {AUDIO_PLACEHOLDER} "
        "placeholder(s); give one clip with none or one placeholder, or as many placeholders as clips"
    )


def check_clip_count(clips: int, placeholders: int, where: str) -> None:
    """Raise RecordError (naming `where`) when `clip_count_problem` finds one."""
    if (reason := clip_count_problem(clips, placeholders)) is not None:
        raise RecordError(where, reason)
