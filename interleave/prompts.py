"""Prompt templates and the `[AUDIO]` placeholder rule.

A prompt with one `[AUDIO]` is interleaved: the audio span goes where the placeholder stands.
A prompt without one is non-interleaved (LTU's layout): the audio span goes first, before BOS.
The placeholder and one adjacent space are removed before tokenization (`remove_placeholders`).
Two or more placeholders are an error until multi-clip prompts are designed.
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

    def render(self, instruction: str, input: str = "") -> str:
        if input:
            return self.prompt_with_input.format(instruction=instruction, input=input)
        return self.prompt.format(instruction=instruction)


def count_placeholders(text: str) -> int:
    return text.count(AUDIO_PLACEHOLDER)


def remove_placeholders(text: str, where: str) -> tuple[str, list[int]]:
    """The text the LLM reads and the character offsets where audio spans go.

    Each `[AUDIO]` is removed with one adjacent space: the one before it, else the one after it
    ("Is [AUDIO] similar" reads as "Is similar", the span at offset 2). `where` names the record
    (file:line and id) for the error raised on two or more placeholders.
    """
    n = count_placeholders(text)
    if n > 1:
        raise RecordError(where, f"prompt has {n} {AUDIO_PLACEHOLDER} placeholders; at most 1 is allowed")
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
