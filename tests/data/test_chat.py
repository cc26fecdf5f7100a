"""interleave.data.chat: a record rendered as one user turn of a released chat template gives the
text transformers' `apply_chat_template` renders for the same turn, the family's audio token
written `[AUDIO]`; clips go at the placeholders, else before the text; text-only has none."""

from __future__ import annotations

import pickle

import pytest

from interleave.data.chat import ChatTemplate
from tests.helpers import QWEN2_AUDIO_CHAT_TEMPLATE, build_released_qwen2_tokenizer

AUDIO = {"type": "audio", "audio": "x.wav"}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


@pytest.fixture(scope="module")
def tokenizer():
    return build_released_qwen2_tokenizer()


@pytest.mark.parametrize(
    "instruction, input, clips, content",
    [
        ("Is [AUDIO] like [AUDIO]?", "", 2, [text("Is "), AUDIO, text(" like "), AUDIO, text("?")]),
        ("[AUDIO] What is it?", "", 1, [AUDIO, text(" What is it?")]),
        ("What sound is this?", "", 1, [AUDIO, text("What sound is this?")]),
        ("Which one is louder?", "", 2, [AUDIO, AUDIO, text("Which one is louder?")]),
        ("What sound is this?", "Labels: Siren", 1, [AUDIO, text("What sound is this?\nLabels: Siren")]),
        ("Is a siren loud?", "", 0, [text("Is a siren loud?")]),
    ],
)
def test_render_is_apply_chat_template(tokenizer, instruction, input, clips, content):
    template = ChatTemplate(QWEN2_AUDIO_CHAT_TEMPLATE, "<|AUDIO|>")
    expected = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}],
        tokenize=False,
        add_generation_prompt=True,
        chat_template=QWEN2_AUDIO_CHAT_TEMPLATE,
    )
    rendered = template.render(instruction, input, clips=clips)
    assert rendered == expected.replace("<|AUDIO|>", "[AUDIO]")
    assert rendered.count("[AUDIO]") == clips
    assert rendered.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")


def test_a_template_travels_to_loader_workers():
    template = ChatTemplate(QWEN2_AUDIO_CHAT_TEMPLATE, "<|AUDIO|>")
    first = template.render("Hi [AUDIO]")
    copy = pickle.loads(pickle.dumps(template))
    assert copy == template and copy.render("Hi [AUDIO]") == first
    assert template.key() == [QWEN2_AUDIO_CHAT_TEMPLATE, "<|AUDIO|>"]
