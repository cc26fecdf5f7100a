"""interleave.eval.settings: `EvalSettings`, built by keyword only, and from a run's `ShardEvaluation` options in
one place (`EvalSettings.of_options`); the quick check's subset is tests/eval/test_subset.py's."""

import pytest

from callbacks.shard_eval import ShardEvaluation
from interleave.errors import InterleaveError
from interleave.eval.settings import EvalSettings
from interleave.model.generation import Sampling


def test_settings_are_built_by_keyword_only():
    with pytest.raises(TypeError):
        EvalSettings(Sampling())  # type: ignore[misc]
    assert EvalSettings(sampling=Sampling(max_new_tokens=3)).sampling.max_new_tokens == 3


def test_the_options_make_the_conditions_main_layout_first_each_once():
    settings = EvalSettings.of_options(
        layout="noninterleaved",
        extra_layouts=["interleaved", "noninterleaved"],
        probes=["silence", "question_end", "silence"],
        repeats=2,
        seed=5,
    )
    assert settings.conditions == ("noninterleaved", "interleaved", "text", "silence", "question_end")
    assert settings.probes == ("silence", "question_end") and (settings.repeats, settings.seed) == (2, 5)
    assert EvalSettings.of_options(text_control=False).conditions == ("interleaved",)
    assert EvalSettings.of_options() == EvalSettings()  # the options' defaults are the settings' own


def test_the_callback_keeps_the_settings_its_options_make():
    options = dict(
        layout="interleaved",
        extra_layouts=["noninterleaved"],
        repeats=3,
        batch_size=2,
        sampling=Sampling(max_new_tokens=5),
        prompts={"synonym": {"interleaved": "Does [AUDIO] mean {synonym}?"}},
        seed=1,
        scoring=True,
        parser="extended",
        full_answers=True,
        probes=["noise"],
        max_queries_per_task=7,
    )
    assert ShardEvaluation("shard.jsonl", **options).settings == EvalSettings.of_options(**options)


def test_a_bad_option_is_refused_naming_the_callback():
    with pytest.raises(InterleaveError, match="ShardEvaluation: SHARD evaluation: unknown condition"):
        ShardEvaluation("shard.jsonl", extra_layouts=["interleavd"])
