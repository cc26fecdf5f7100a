"""A benchmark item's prompt per prompt layout: its question and choices, overridable.

Templates take `{question}`, `{choices}` (one choice per line, as written) and `{lettered}` (one
per line, "(A) ..."). In the layouts that put the clip in the prompt (`interleaved` and the
placements `question_start` / `question_end`), `[AUDIO]` marks where each clip goes: by default
at the question's start (at its end for `question_end`). LTU's `noninterleaved` layout puts its one clip
before the whole prompt: it holds no placeholder. An item with k clips needs exactly k
placeholders in the rendered prompt (a question may write its own `[AUDIO]`s: MMAU-Pro style);
one the layout cannot ask (LTU's layout and several clips; too few placeholders) is skipped and
counted (`asks`).

The no-clip control (`no_clip`) is the question and choices as the main layout writes them with
every placeholder removed (`interleave.data.prompts.remove_placeholders`): no audio span at all,
MMAU's no-audio baseline.
"""

from __future__ import annotations

from collections.abc import Mapping

from interleave import AUDIO_PLACEHOLDER
from interleave.data.prompts import count_placeholders, remove_placeholders
from interleave.eval.benchmarks.items import BenchmarkItem

INSTRUCTION = "Answer with one of the choices."
A = AUDIO_PLACEHOLDER
PROMPTS: dict[str, str] = {  # the registry's benchmark prompt per layout
    "interleaved": f"{A} {{question}}\nChoices:\n{{choices}}\n{INSTRUCTION}",
    "question_start": f"{A} {{question}}\nChoices:\n{{choices}}\n{INSTRUCTION}",
    "question_end": f"{{question}} {A}\nChoices:\n{{choices}}\n{INSTRUCTION}",
    "noninterleaved": f"{{question}}\nChoices:\n{{choices}}\n{INSTRUCTION}",
}
AUDIO_FIRST = "noninterleaved"  # LTU's layout: one clip, before the whole prompt


def prompt_templates(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The benchmark prompt of every layout with `overrides` ({layout: template}) applied; a
    template that names a field other than question/choices/lettered, or puts a placeholder in
    LTU's layout, is refused."""
    table = {**PROMPTS, **(overrides or {})}
    for layout, template in table.items():
        try:
            template.format(question="", choices="", lettered="")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"benchmark prompt for {layout!r}: {template!r} names a field other than "
                f"{{question}}, {{choices}}, {{lettered}} ({err})"
            ) from None
        if layout == AUDIO_FIRST and AUDIO_PLACEHOLDER in template:
            raise ValueError(
                f"benchmark prompt for {layout!r}: LTU's layout puts the clip before the prompt; "
                f"its template holds no {AUDIO_PLACEHOLDER}"
            )
    return table


def render(item: BenchmarkItem, template: str) -> str:
    """The instruction of `item` under `template` (`{question}`, `{choices}`, `{lettered}`)."""
    lettered = "\n".join(f"({chr(ord('A') + i)}) {c}" for i, c in enumerate(item.choices))
    return template.format(question=item.question, choices="\n".join(item.choices), lettered=lettered)


def asks(item: BenchmarkItem, layout: str, instruction: str) -> bool:
    """Whether `layout` can ask `item` with this rendered `instruction`: LTU's layout one clip and
    no placeholder, the others exactly one placeholder per clip."""
    if layout == AUDIO_FIRST:
        return len(item.clips) == 1 and count_placeholders(instruction) == 0
    return count_placeholders(instruction) == len(item.clips)


def no_clip(instruction: str) -> str:
    """The instruction without any clip: every placeholder removed with one adjacent space."""
    return remove_placeholders(instruction)[0]
