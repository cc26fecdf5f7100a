"""interleave.eval.benchmarks.prompts: a question and its choices per layout, overrides, clips, the no-clip control."""

import pytest

from interleave.data.collate import Collator
from interleave.data.records import Record
from interleave.eval.benchmarks.items import BenchmarkItem
from interleave.eval.benchmarks.prompts import asks, no_clip, prompt_templates, render


def item(clips=("a.wav",), question="What is heard?"):
    return BenchmarkItem(id="x", clips=clips, question=question, choices=("dog", "cat"), answer="cat", index=0)


def test_each_layout_states_the_question_then_the_choices_one_per_line():
    table = prompt_templates()
    text = render(item(), table["interleaved"])
    assert text == "[AUDIO] What is heard?\nChoices:\ndog\ncat\nAnswer with one of the choices."
    assert render(item(), table["noninterleaved"]).startswith("What is heard?\nChoices:\ndog\ncat")
    assert render(item(), table["question_end"]).startswith("What is heard? [AUDIO]\n")
    assert render(item(), "{question}\n{lettered}") == "What is heard?\n(A) dog\n(B) cat"


def test_overrides_and_refusals():
    table = prompt_templates({"interleaved": "Listen: [AUDIO]. {question} Pick: {choices}"})
    assert render(item(), table["interleaved"]) == "Listen: [AUDIO]. What is heard? Pick: dog\ncat"
    with pytest.raises(ValueError, match="names a field"):
        prompt_templates({"interleaved": "[AUDIO] {query}"})
    with pytest.raises(ValueError, match="LTU's layout"):
        prompt_templates({"noninterleaved": "[AUDIO] {question}"})


def test_items_with_more_clips_than_the_layout_asks_are_not_asked():
    table = prompt_templates()
    two = item(clips=("a.wav", "b.wav"))
    assert asks(item(), "interleaved", render(item(), table["interleaved"]))
    assert not asks(two, "interleaved", render(two, table["interleaved"]))
    assert not asks(two, "noninterleaved", render(two, table["noninterleaved"]))
    mmau_pro = item(clips=("a.wav", "b.wav"), question="Is [AUDIO] louder than [AUDIO]?")
    assert asks(mmau_pro, "interleaved", render(mmau_pro, "{question}\n{choices}"))


def test_the_no_clip_control_holds_no_audio_span(tokenizer):
    text = render(item(), prompt_templates()["interleaved"])
    bare = no_clip(text)
    assert bare == "What is heard?\nChoices:\ndog\ncat\nAnswer with one of the choices."
    encoded = Collator(tokenizer, with_answer=False).encode(
        Record(id="x", audio="a.wav", instruction=bare), with_audio=False
    )
    assert not any(encoded.audio_mask)
