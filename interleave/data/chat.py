"""A chat model's own prompt layout, rendered by its released chat template (`ChatTemplate`).

A released family (`model.pretrained`) brings its chat template; the record becomes one user turn
of it and the rendered text, up to the assistant's turn, is the prompt. The template writes each
clip where the family puts it (Qwen2-Audio: `Audio k: <|audio_bos|><|AUDIO|><|audio_eos|>\\n`,
with its default system prompt before the turn), and the family's audio token becomes the
`[AUDIO]` placeholder the collator fills with the clip's span. A record with `[AUDIO]`
placeholders is interleaved: the user turn is the text pieces with a clip at each placeholder, in
order. A record without one puts its clips where the family's native layout puts them: in the
user turn before the text (the "non-interleaved" condition for a chat model). The record's
`input`, when given, follows the instruction on a new line.

A template that writes one audio token per turn before the text, wherever the audio items stand
(Audio Flamingo 3's: one `<sound>`, the turn's texts joined after it), cannot say where a mid-text
clip goes nor hold two: for such a family (`clips_inline`) a record with placeholders is rendered
as the turn's text with the audio token standing at each placeholder, and a record of several
clips without one writes each clip's token on its own line before the text. One clip without a
placeholder goes through the template's own audio item (its native layout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from interleave import AUDIO_PLACEHOLDER


@dataclass(frozen=True)
class ChatTemplate:
    """Renders a record's instruction (and input) as one user turn of a chat template.

    Args:
        template: the family's Jinja chat template, as released.
        audio_token: the token the template writes where a clip goes (Qwen2-Audio's `<|AUDIO|>`).
        clips_inline: the template writes one audio token per turn before the text (Audio
            Flamingo 3's): mid-text and several clips are written into the turn's text instead.
    """

    template: str
    audio_token: str
    clips_inline: bool = False
    _compiled: list = field(default_factory=list, repr=False, compare=False)  # the Jinja template, once

    def key(self) -> list[str]:
        """What the rendered text depends on (the record index's key holds it)."""
        return [self.template, self.audio_token, *(["clips inline"] if self.clips_inline else [])]

    def render(self, instruction: str, input: str = "", clips: int = 1) -> str:
        """The prompt, each clip's place marked `[AUDIO]`; `clips` places the clips of a record
        without placeholders (0: a text-only prompt)."""
        text = f"{instruction}\n{input}" if input else instruction
        pieces = text.split(AUDIO_PLACEHOLDER)
        content: list[dict[str, Any]] | str = []
        if self.clips_inline and (len(pieces) > 1 or clips > 1):
            content = text if len(pieces) > 1 else f"{AUDIO_PLACEHOLDER}\n" * clips + text
        elif len(pieces) == 1:
            content += [{"type": "audio", "audio": ""}] * clips
            content.append({"type": "text", "text": text})
        else:
            for k, piece in enumerate(pieces):
                if k:
                    content.append({"type": "audio", "audio": ""})
                if piece:
                    content.append({"type": "text", "text": piece})
        rendered = self._template().render(messages=[{"role": "user", "content": content}], add_generation_prompt=True)
        return rendered.replace(self.audio_token, AUDIO_PLACEHOLDER)

    def _template(self) -> Any:
        if not self._compiled:
            from jinja2.exceptions import TemplateError
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            def raise_exception(message: str) -> None:
                raise TemplateError(message)

            # transformers' own environment for chat templates (apply_chat_template)
            env = ImmutableSandboxedEnvironment(
                trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
            )
            env.globals["raise_exception"] = raise_exception
            self._compiled.append(env.from_string(self.template))
        return self._compiled[0]

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers: the compiled template is not sent
        return {
            "template": self.template,
            "audio_token": self.audio_token,
            "clips_inline": self.clips_inline,
            "_compiled": [],
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)
