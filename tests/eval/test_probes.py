"""interleave.eval.probes: each probe's inputs are what it says (silence, noise, swap), the placement
sweep's spans sit where stated, agreement on hand-made answers, and the cache on or off gives the same
answers (the `model` fixture: tests/test_generation.py)."""

from __future__ import annotations

import itertools

import pytest
import torch

from interleave.data.collate import Collator
from interleave.data.prompts import PromptTemplate, remove_placeholders
from interleave.data.records import Record
from interleave.encoders import build_encoder
from interleave.encoders.audio import load_waveform
from interleave.encoders.cache import FeatureCache, Variant
from interleave.errors import InterleaveError
from interleave.eval.evaluate import EvalInputs, EvalSettings, answer_queries, audio_features, render_instruction
from interleave.eval.predictions import Prediction
from interleave.eval.probes import (
    NO_MAJORITY,
    agreement,
    derangement,
    majority,
    noise_seed,
    silence,
    swapped_clips,
    variant,
    white_noise,
)
from interleave.eval.query import Query
from interleave.eval.tasks import END, START, prompt_table
from interleave.model.generation import Sampling
from tests.helpers import TINY_ENCODER, build_llama_tokenizer, build_tokenizer, write_clip


def rms(x: torch.Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt())


@pytest.fixture()
def clip(tmp_path):
    return str(write_clip(tmp_path / "c.wav", seconds=0.7, sr=22050, freq=500.0, seed=3))


@pytest.mark.parametrize("spec", ["cavmae", "ast", "whisper"])
def test_silence_is_the_encoders_own_feature_path_applied_to_zeros_of_the_clips_duration(clip, spec):
    encoder = build_encoder(f"{spec}:tiny", overrides=TINY_ENCODER if spec == "cavmae" else None)
    samples = load_waveform(clip).numel()
    assert samples == round(0.7 * 16000)  # the clip's duration, at 16 kHz
    inputs = encoder.load_inputs(clip, "first", silence)
    assert torch.equal(inputs, encoder.inputs_from_waveform(torch.zeros(samples)))
    assert not torch.equal(inputs, encoder.load_inputs(clip, "first"))


def test_noise_has_the_clips_rms_and_is_seeded_by_the_run_seed_and_the_clip(clip, tmp_path):
    waveform = load_waveform(clip)
    noisy = white_noise(0)(waveform)
    assert noisy.shape == waveform.shape
    assert rms(noisy) == pytest.approx(rms(waveform), rel=1e-5)
    assert torch.equal(noisy, white_noise(0)(waveform))  # seeded
    assert not torch.equal(noisy, white_noise(1)(waveform))  # another run seed, other noise
    other = load_waveform(write_clip(tmp_path / "o.wav", seconds=0.7, freq=900.0, seed=4))
    assert noise_seed(other, 0) != noise_seed(waveform, 0)  # another clip, other noise
    assert abs(float(torch.corrcoef(torch.stack([noisy, waveform]))[0, 1])) < 0.1  # white, not the clip
    assert torch.equal(white_noise(0)(torch.zeros(100)), torch.zeros(100))  # a silent clip stays silent
    assert variant("noise", 7).name == "noise/seed=7" and variant("silence", 7).name == "silence"
    assert variant("swap", 7) is None


def test_the_derangement_moves_every_word_and_is_seeded():
    words = [f"w{i}" for i in range(6)]
    maps = [derangement(words, seed) for seed in range(50)]
    for moved in maps:
        assert sorted(moved) == sorted(moved.values()) == words  # a permutation
        assert all(moved[w] != w for w in words)  # no fixed word
    assert derangement(words, 3) == maps[3]  # seeded
    assert len({tuple(m.values()) for m in maps}) > 10  # the seed matters
    assert derangement(["a", "b"], 0) == {"a": "b", "b": "a"}
    with pytest.raises(Exception, match="at least two words"):
        derangement(["a", "a"], 0)


def q(qid, task, word, audio, candidate=None, truth=None, other=None):
    return Query(qid, task, word.title(), word, audio, candidate, truth, other_audio=other)


def test_swap_gives_every_clip_a_clip_of_another_word_and_keeps_the_question():
    queries = [q(f"s{w}{k}", "synonym", w, f"{w}{k}.wav", "x", "yes") for w in ("dog", "cat", "cow") for k in range(2)]
    queries += [q("p", "pair", "dog", "dog0.wav", "cat", "no", other="cat1.wav")]
    word_of = {f"{w}{k}.wav": w for w in ("dog", "cat", "cow") for k in range(2)}
    swap = swapped_clips(queries, seed=5)
    for query in queries:
        for clip, new in zip(query.clips, swap(query)):
            assert word_of[new] != word_of[clip]  # never a clip of its own word
    assert swap(queries[0]) == swapped_clips(queries, seed=5)(queries[0])
    assert {swap(x)[0] for x in queries[:6]} == set(word_of)  # every clip is used once: a bijection of clips
    table = prompt_table()
    assert render_instruction(queries[0], "swap", table) == render_instruction(queries[0], "interleaved", table)
    assert render_instruction(queries[0], "swap", table, main="noninterleaved").startswith("Is the sound of")


# ---- the placement sweep ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["bytelevel", "llama"])
def test_placement_spans_sit_at_the_questions_start_and_end_with_the_whole_string_rule(kind):
    tok = build_tokenizer() if kind == "bytelevel" else build_llama_tokenizer("legacy")
    table = prompt_table()
    hyp = q("h", "hypernym", "siren", "a.wav", "signal", "yes")
    assert render_instruction(hyp, START, table) == "[AUDIO] Is this sound a type of signal?"
    assert render_instruction(hyp, END, table) == "Is this sound a type of signal? [AUDIO]"
    for layout, question in ((START, "Is this sound a type of signal?"), (END, "Is this sound a type of signal?")):
        instruction = render_instruction(hyp, layout, table)
        enc = Collator(tok, with_answer=False).encode(Record(id="h", audio="a.wav", instruction=instruction))
        prompt, (offset,) = remove_placeholders(PromptTemplate().render(instruction))
        assert prompt == PromptTemplate().render(question)  # the placeholder and one space gone
        ids = [t for t, a in zip(enc.input_ids, enc.audio_mask) if not a]
        assert ids == tok(prompt)["input_ids"]  # the whole string's tokens
        (start,) = enc.spans
        before = tok.decode(enc.input_ids[:start], skip_special_tokens=True)
        after = tok.decode(enc.input_ids[start + 32 :], skip_special_tokens=True)
        if layout == START:  # right after the template's "### Instruction:\n", before the question
            assert offset == len("### Instruction:\n")
            assert before.strip() == "### Instruction:" and after.strip().startswith("Is this sound")
        else:  # right after the question, before the template's response part
            assert offset == len(PromptTemplate().render(question).split("\n\n")[0])
            assert before.strip().endswith("a type of signal?") and after.strip() == "### Response:"


def test_the_placement_prompts_are_overridable_like_table_1s():
    table = prompt_table({"synonym": {END: "Does this mean {synonym}? [AUDIO]"}})
    syn = q("s", "synonym", "siren", "a.wav", "alarm", "yes")
    assert render_instruction(syn, END, table) == "Does this mean alarm? [AUDIO]"
    assert render_instruction(syn, START, table) == "[AUDIO] Is this sound similar to alarm?"


# ---- agreement ---------------------------------------------------------------------------------


def row(qid, task, parsed, condition="interleaved"):
    truth = None if task == "identity" else "yes"
    return Prediction(
        qid, task, condition, "Siren", None if truth is None else "alarm", truth, "p", ["x"] * len(parsed), parsed
    )


def test_agreement_is_the_share_of_queries_with_the_real_clips_majority_verdict():
    real = [
        row("a", "synonym", ["yes", "yes", "no", "yes"]),
        row("b", "synonym", ["no", "no", "no", "yes"]),
        row("c", "synonym", ["yes", "no", "yes", "no"]),
        row("d", "synonym", [None, None, None, "yes"]),
        row("i", "identity", [True, True, False, True]),
        row("j", "identity", [False, False, False, True]),
    ]
    probe = [
        row("a", "synonym", ["yes", "no", "yes", "yes"], "silence"),  # yes = yes
        row("b", "synonym", ["yes", "yes", "yes", "no"], "silence"),  # yes != no
        row("c", "synonym", ["no", "no", "yes", "yes"], "silence"),  # no majority either way: agree
        row("d", "synonym", ["no", "no", "no", None], "silence"),  # no != unparsed
        row("i", "identity", [False, False, False, False], "silence"),  # wrong != right
        row("j", "identity", [False, True, False, False], "silence"),
    ]  # wrong = wrong
    assert [majority(r) for r in real] == ["yes", "no", NO_MAJORITY, None, True, False]
    assert agreement(real, probe) == {"synonym": 2 / 4, "identity": 1 / 2}
    assert agreement(real, real) == {"synonym": 1.0, "identity": 1.0}
    assert agreement(real, probe[:1]) == {"synonym": 1.0}  # only the queries the probe asked


# ---- through the evaluation, with the feature cache on and off ---------------------------------


@pytest.fixture()
def queries(tmp_path):
    clips = {
        w: [str(write_clip(tmp_path / f"{w}{k}.wav", freq=f + 150 * k, seed=k)) for k in range(2)]
        for w, f in (("siren", 900.0), ("drum", 200.0))
    }
    out = []
    for (w, paths), task in itertools.product(clips.items(), ["synonym", "identity"]):
        for k, path in enumerate(paths):
            out.append(q(f"{task}/{w}/{k}", task, w, path, *(("alarm", "yes") if task == "synonym" else ())))
    return out


@pytest.mark.parametrize("probe", ["silence", "noise", "swap"])
def test_probes_answer_the_same_with_the_cache_on_and_off_and_never_take_the_real_clips_features(
    model, queries, tmp_path, probe
):
    settings = EvalSettings(
        Sampling(max_new_tokens=3, temperature=1.0),
        repeats=2,
        batch_size=3,
        seed=2,
        conditions=("interleaved", probe),
        probes=(probe,),
    )
    collator = Collator(model.tokenizer, padding_side="left", with_answer=False)
    store = FeatureCache.of(tmp_path / "cache", model.audio_encoder)
    off = answer_queries(model, queries, probe, settings, EvalInputs(collator), {})
    features: dict[str, torch.Tensor] = {}
    on = answer_queries(model, queries, probe, settings, EvalInputs(collator, store), features)
    again = answer_queries(model, queries, probe, settings, EvalInputs(collator, store), {})  # read back from disk
    assert on == off == again
    assert [r.condition for r in on] == [probe] * len(queries)
    real = answer_queries(model, queries, "interleaved", settings, EvalInputs(collator), {})
    assert [r.answers for r in real] != [r.answers for r in on] or probe == "swap"
    clip = queries[0].audio
    if probe == "swap":  # a swapped clip is another real clip: the cache holds real clips only
        assert set(features) == {x.audio for x in queries}
    else:  # the probe's features live under their own key, on disk and in memory
        name = variant(probe, 2).name
        assert set(features) == {f"{name}:{x.audio}" for x in queries}
        assert store.get(clip) is None and store.get(clip, variant=name) is not None
        expected = model.audio_encoder(
            model.audio_encoder.load_inputs(clip, "first", variant(probe, 2).transform)[None]
        )
        assert torch.allclose(store.get(clip, variant=name), expected[0], atol=1e-6)
        assert store.entry(clip, name) != store.entry(clip) != store.entry(clip, "noise/seed=3")


def test_probes_are_refused_as_the_main_condition_or_when_not_asked():
    with pytest.raises(InterleaveError, match="cannot be the main condition"):
        EvalSettings(conditions=("silence", "interleaved"))
    with pytest.raises(InterleaveError, match=r"probe\(s\) \['interleaved'\] are not among"):
        EvalSettings(conditions=("interleaved", "silence"), probes=("interleaved", "silence"))
    with pytest.raises(InterleaveError, match="unknown condition"):
        EvalSettings(conditions=("interleaved", "silense"), probes=("silense",))


def test_variant_features_come_from_the_transformed_waveform(model, clip):
    cache: dict[str, torch.Tensor] = {}
    silent = audio_features(model, [clip], cache, variant=Variant("silence", silence))
    zeros = model.audio_encoder.inputs_from_waveform(torch.zeros(load_waveform(clip).numel()))
    assert torch.allclose(silent[0], model.audio_encoder(zeros[None])[0], atol=1e-6)
    real = audio_features(model, [clip], cache)
    assert set(cache) == {clip, f"silence:{clip}"} and not torch.allclose(real, silent)
