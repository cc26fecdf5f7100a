"""The on-disk feature cache: hit, miss, stale, damaged; cached runs equal uncached ones."""

import json
import logging
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

import train
from interleave.data.collate import span_starts
from interleave.encoders.audio import load_fbank
from interleave.encoders.cache import DamagedEntry, FeatureCache, fingerprint
from interleave.encoders.cavmae import CavMaeEncoder
from interleave.errors import InterleaveError
from interleave.eval import probes
from interleave.tools.fill_cache import main as cache_main
from tests.helpers import (
    TINY_ENCODER,
    cache_config,
    copy_entry,
    own_features,
    two_clip_dataset,
    write_clip,
)


@pytest.fixture(autouse=True)
def plain_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["train.py"])


def encoder(seed: int = 0) -> CavMaeEncoder:
    torch.manual_seed(seed)
    return CavMaeEncoder(**TINY_ENCODER)


@pytest.fixture()
def clips(tmp_path):
    return [write_clip(tmp_path / "clips" / f"c{i}.wav", freq=300.0 + 100 * i, seed=i) for i in range(3)]


def test_miss_then_hit_with_the_encoders_features(tmp_path, clips):
    enc = encoder()
    cache = FeatureCache(tmp_path / "cache", fingerprint(enc))
    first = cache.ensure(enc, clips)
    assert (first.hits, first.built, first.rebuilt) == (0, 3, 0)
    again = cache.ensure(enc, clips + clips)
    assert (again.hits, again.built, again.rebuilt) == (3, 0, 0)
    with torch.no_grad():
        direct = enc(torch.stack([load_fbank(c) for c in clips]))
    for clip, features in zip(clips, direct):
        assert torch.allclose(cache.get(clip), features, atol=1e-6)


def test_progress_counts_cached_clips_as_skipped_and_computed_ones_as_done(tmp_path, clips):
    from interleave.progress import Progress

    enc = encoder()
    cache = FeatureCache(tmp_path / "cache", fingerprint(enc))
    cache.ensure(enc, clips[:1])
    lines: list[str] = []
    with Progress(3, "clips", "cache", write=lines.append, tty=False, enabled=True, interval=0) as progress:
        cache.ensure(enc, clips, batch_size=2, progress=progress)
    assert (progress.done, progress.skipped) == (3, 1)
    assert lines[0].startswith("cache: 1/3 clips (33%), 1 already done")
    assert lines[-1].startswith("cache: done 3/3 clips (100%), 1 already done, ") and "clips/s" in lines[-1]


def test_another_encoder_or_a_changed_file_never_reads_stale_features(tmp_path, clips):
    enc, other = encoder(0), encoder(1)
    assert fingerprint(enc) != fingerprint(other) and fingerprint(enc) == fingerprint(encoder(0))
    FeatureCache(tmp_path / "cache", fingerprint(enc)).ensure(enc, clips)
    stats = FeatureCache(tmp_path / "cache", fingerprint(other)).ensure(other, clips)
    assert stats.built == 3  # a new folder for the other encoder, nothing reused
    cache = FeatureCache(tmp_path / "cache", fingerprint(enc))
    write_clip(clips[0], freq=1234.0, seed=9, seconds=1.5)  # the audio changes under the same path
    assert cache.get(clips[0]) is None
    assert cache.ensure(enc, clips).built == 1


def test_the_audio_channel_setting_is_part_of_the_fingerprint(tmp_path):
    enc = encoder()
    assert fingerprint(enc) == fingerprint(enc, "first") != fingerprint(enc, "mean")
    stereo = write_clip(tmp_path / "stereo.wav")
    left, _ = sf.read(stereo, dtype="float32")
    sf.write(stereo, np.stack([left, np.roll(left, 4000) * 0.5], axis=1), 16000)  # two different channels
    first = FeatureCache.of(tmp_path / "cache", enc, "first")
    mean = FeatureCache.of(tmp_path / "cache", enc, "mean")
    assert first.folder != mean.folder
    assert first.ensure(enc, [stereo]).built == 1 and mean.ensure(enc, [stereo]).built == 1  # nothing reused
    with torch.no_grad():
        for cache, channel in ((first, "first"), (mean, "mean")):
            assert torch.allclose(cache.get(stereo), enc(load_fbank(stereo, channel)[None])[0], atol=1e-6)
    assert not torch.allclose(first.get(stereo), mean.get(stereo), atol=1e-4)


def test_a_damaged_entry_is_detected_and_rebuilt(tmp_path, clips):
    enc = encoder()
    cache = FeatureCache(tmp_path / "cache", fingerprint(enc))
    cache.ensure(enc, clips)
    good = cache.get(clips[1]).clone()
    entry = cache.entry(clips[1])
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF  # one flipped byte in the tensor data
    entry.write_bytes(bytes(data))
    truncated = cache.entry(clips[2])
    truncated.write_bytes(truncated.read_bytes()[:50])  # a torn write
    stats = cache.ensure(enc, clips)
    assert (stats.hits, stats.built, stats.rebuilt) == (1, 0, 2)
    assert torch.equal(cache.get(clips[1]), good)


def test_another_clips_entry_copied_over_is_damaged_and_rebuilt_from_the_clip(tmp_path, caplog):
    """Issue 34: one clip's entry copied over another's was read as the other's (its features, not the drum's)."""
    drum = write_clip(tmp_path / "clips" / "drum.wav", freq=80.0, seed=1)
    siren = write_clip(tmp_path / "clips" / "siren.wav", freq=1500.0, seed=2)
    enc = encoder()
    cache = FeatureCache.of(tmp_path / "cache", enc)
    assert cache.ensure(enc, [drum, siren]).built == 2
    siren_bytes = cache.entry(siren).read_bytes()
    swapped = copy_entry(cache, siren, drum)
    with pytest.raises(DamagedEntry) as damaged:
        cache.get(drum)
    assert str(damaged.value) == f"{swapped} (the entry of {drum}): it holds the features of {siren}"
    assert not swapped.exists()  # removed, never read again
    copy_entry(cache, siren, drum)
    with caplog.at_level(logging.WARNING, logger="interleave.cache"):
        assert cache.lookup(drum) is None  # a caller without stats (the SHARD evaluation, a batch): logged here
    assert [r.getMessage() for r in caplog.records] == [
        f"damaged feature cache entry removed: {swapped} (the entry of {drum}): it holds the features of {siren}"
    ]
    copy_entry(cache, siren, drum)
    stats = cache.ensure(enc, [drum, siren])
    assert (stats.hits, stats.built, stats.rebuilt) == (1, 0, 1)
    assert stats.damaged == [f"{swapped} (the entry of {drum}): it holds the features of {siren}"]
    assert torch.allclose(cache.get(drum), own_features(enc, drum), atol=1e-6)
    assert not torch.allclose(cache.get(drum), own_features(enc, siren), atol=1e-3)
    assert cache.entry(siren).read_bytes() == siren_bytes  # the good entry is kept as it was
    assert torch.allclose(cache.get(siren), own_features(enc, siren), atol=1e-6)


@pytest.mark.parametrize("copied", ["another version of the clip", "another encoder's entry", "a probe's entry"])
def test_an_entry_that_is_not_the_clips_own_is_damaged(copied, tmp_path, clips):
    enc = encoder()
    cache = FeatureCache.of(tmp_path / "cache", enc)
    cache.ensure(enc, clips[:1])
    if copied == "another version of the clip":  # an older copy of the entry, after the clip changed
        old = cache.entry(clips[0]).read_bytes()
        write_clip(clips[0], freq=1234.0, seed=9)
        cache.ensure(enc, clips[:1])
        cache.entry(clips[0]).write_bytes(old)
        reason = r"it holds the features of another version of the clip \(size \d+, mtime_ns \d+; the file is now .*"
    elif copied == "another encoder's entry":  # the same clip's entry from another encoder's folder
        other = encoder(1)
        elsewhere = FeatureCache.of(tmp_path / "cache", other)
        elsewhere.ensure(other, clips[:1])
        shutil.copyfile(elsewhere.entry(clips[0]), cache.entry(clips[0]))
        reason = re.escape(
            f"it was written for another encoder or feature settings (fingerprint {elsewhere.fingerprint})"
        )
    else:
        cache.put(clips[0], own_features(enc, clips[0], probes.variant("silence", 0)), variant="silence")
        copy_entry(cache, clips[0], clips[0], source_variant="silence")
        reason = re.escape("it holds the 'silence' probe's features, not the clip's own")
    entry = cache.entry(clips[0])
    stats = cache.ensure(enc, clips[:1])
    assert (stats.hits, stats.built, stats.rebuilt) == (0, 0, 1)
    assert re.fullmatch(re.escape(f"{entry} (the entry of {clips[0]}): ") + reason, stats.damaged[0]), stats.damaged
    assert torch.allclose(cache.get(clips[0]), own_features(enc, clips[0]), atol=1e-6)


def test_a_probes_features_stay_its_own_when_the_clips_entry_is_copied_over_them(tmp_path, clips, caplog):
    """The SHARD evaluation's path (`audio_features` with a store): silence's entry holding the clip's
    features is recomputed as silence, and the clip's own entry is untouched."""
    from interleave.eval.evaluate import audio_features

    enc = encoder()
    model = SimpleNamespace(audio_encoder=enc)
    cache = FeatureCache.of(tmp_path / "cache", enc)
    silence = probes.variant("silence", 0)
    audio_features(model, [str(clips[0])], {}, store=cache)
    audio_features(model, [str(clips[0])], {}, store=cache, variant=silence)
    own = cache.entry(clips[0]).read_bytes()
    entry = copy_entry(cache, clips[0], clips[0], target_variant="silence")
    with caplog.at_level(logging.WARNING, logger="interleave.cache"):
        features = audio_features(model, [str(clips[0])], {}, store=cache, variant=silence)[0]
    assert [r.getMessage() for r in caplog.records] == [
        f"damaged feature cache entry removed: {entry} (the entry of {clips[0]}, probe 'silence'): "
        "it holds the clip's own features, not the 'silence' probe's"
    ]
    assert torch.allclose(features, own_features(enc, clips[0], silence), atol=1e-6)
    assert torch.allclose(cache.get(clips[0], "silence"), features)
    assert cache.entry(clips[0]).read_bytes() == own
    assert torch.allclose(cache.get(clips[0]), own_features(enc, clips[0]), atol=1e-6)


@pytest.mark.slow
def test_a_run_never_reads_another_clips_entry_copied_over(tmp_path, tiny_model_kwargs):
    """Issue 34 (a): the run's set-up finds the swapped entry, rebuilds it from the clip, and its
    batches carry the clip's own features; an entry swapped after set-up is refused, not read."""
    drum, siren = two_clip_dataset(tmp_path / "data")
    config = cache_config(tmp_path, tmp_path / "data", tiny_model_kwargs, feature_cache=str(tmp_path / "cache"))
    run = train.cli(["--config", config, "--trainer.enable_progress_bar=false"], run=False)
    enc = run.model.audio_encoder
    cache = FeatureCache.of(tmp_path / "cache", enc)
    assert cache.ensure(enc, [drum, siren]).built == 2  # filled for both clips
    siren_bytes = cache.entry(siren).read_bytes()
    entry = copy_entry(cache, siren, drum)
    with pytest.warns(UserWarning, match="damaged feature cache entry rebuilt") as caught:
        run.trainer.validate(run.model, datamodule=run.datamodule)
    damaged = [str(w.message) for w in caught if "damaged feature cache entry" in str(w.message)]
    assert damaged == [
        f"damaged feature cache entry rebuilt: {entry} (the entry of {drum}): it holds the features of {siren}"
    ]
    features = run.datamodule.val_set[0]["audio_features"]
    assert torch.allclose(features, own_features(enc, drum), atol=1e-6)
    assert cache.entry(siren).read_bytes() == siren_bytes
    copy_entry(cache, siren, drum)  # swapped again, after set-up: refused, never read
    with pytest.raises(InterleaveError, match=f"no usable cached features for {drum}"):
        run.datamodule.val_set[0]


@pytest.mark.slow
@pytest.mark.parametrize("encoder_kind", ["cavmae", "whisper"])
def test_cached_training_and_evaluation_equal_uncached(tmp_path, small_dataset, tiny_model_kwargs, encoder_kind):
    results = {}
    if encoder_kind == "whisper":  # another kind, another audio_tokens: the same equality
        tiny_model_kwargs = {**tiny_model_kwargs, "encoder": "whisper:tiny", "encoder_kwargs": None, "audio_tokens": 8}
    tokens, inputs = (8, (81, 3000)) if encoder_kind == "whisper" else (32, (1024, 128))
    for cached in (False, True):
        extra = {"feature_cache": str(tmp_path / "cache")} if cached else {}
        config = cache_config(tmp_path / str(cached), small_dataset, tiny_model_kwargs, **extra)
        run = train.cli(["--config", config, "--trainer.enable_progress_bar=false"], run=False)
        run.trainer.fit(run.model, datamodule=run.datamodule)
        batch = next(iter(run.datamodule.val_dataloader()))
        key = "audio_features" if cached else "audio"  # cached features and encoder inputs: distinct keys
        assert set(batch) & {"audio", "audio_features"} == {key}
        assert batch[key].shape[1:] == ((tokens, TINY_ENCODER["embed_dim"]) if cached else inputs)
        metrics = run.trainer.validate(run.model, datamodule=run.datamodule)[0]
        weights = {k: v.clone() for k, v in run.model.trainable_parameters().items()}
        results[cached] = (metrics, weights)
    (plain, plain_weights), (cached, cached_weights) = results[False], results[True]
    assert cached["val/loss"] == pytest.approx(plain["val/loss"], rel=1e-4)
    assert cached["val/label_accuracy"] == plain["val/label_accuracy"]
    for name, value in plain_weights.items():  # four training steps on cached features: same weights
        assert torch.allclose(cached_weights[name], value, atol=1e-5), name


@pytest.mark.slow
def test_a_trained_encoder_refuses_the_feature_cache(tmp_path, small_dataset, tiny_model_kwargs, capsys):
    trained = CavMaeEncoder(**TINY_ENCODER, frozen=False)
    with pytest.raises(InterleaveError, match="model.train_encoder: true.*change at every optimizer step"):
        FeatureCache.of(tmp_path / "cache", trained)
    with pytest.raises(InterleaveError, match="model.train_encoder"):
        FeatureCache(tmp_path / "cache", fingerprint(trained)).ensure(trained, [])
    kwargs = {**tiny_model_kwargs, "train_encoder": True}
    config = cache_config(tmp_path, small_dataset, kwargs, feature_cache=str(tmp_path / "cache"))
    run = train.cli(["--config", config], run=False)
    with pytest.raises(InterleaveError, match="data.feature_cache cannot be used with model.train_encoder: true"):
        run.trainer.fit(run.model, datamodule=run.datamodule)  # at set-up, before any step
    assert run.trainer.global_step == 0
    assert cache_main(["--config", config]) == 2
    assert "data.feature_cache cannot be used with model.train_encoder: true" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_audio_tokens_are_part_of_the_fingerprint(tmp_path, clips):
    torch.manual_seed(0)
    at_32 = CavMaeEncoder(**TINY_ENCODER)
    torch.manual_seed(0)
    at_8 = CavMaeEncoder(**TINY_ENCODER, audio_tokens=8)
    assert fingerprint(at_32) != fingerprint(at_8)
    FeatureCache.of(tmp_path, at_32).ensure(at_32, clips)
    cache = FeatureCache.of(tmp_path, at_8)
    assert cache.lookup(clips[0]) is None
    cache.ensure(at_8, clips)
    assert cache.get(clips[0]).shape == (8, 32)


@pytest.mark.slow
def test_two_clip_records_train_and_evaluate_the_same_with_the_cache_on_or_off(
    tmp_path, small_dataset, tiny_model_kwargs
):
    """Issue 19: the cache is per clip, so records with two clips read each from it."""
    rows = [
        {
            "id": f"p{i}",
            "audio": [f"audio/c{i}.wav", f"audio/c{(i + j) % 6}.wav"],
            "instruction": "Do [AUDIO] and [AUDIO] belong to the same class?",
            "output": "Yes" if j % 2 == 0 else "No",
        }
        for i, j in ((0, 2), (1, 1), (2, 3), (3, 2))
    ]
    with open(small_dataset / "train.jsonl", "a") as out:
        out.writelines(json.dumps(r) + "\n" for r in rows[:3])
    with open(small_dataset / "val.jsonl", "a") as out:
        out.write(json.dumps(rows[3]) + "\n")
    results = {}
    for cached in (False, True):
        extra = {"feature_cache": str(tmp_path / "cache"), "batch_size": 3} if cached else {"batch_size": 3}
        config = cache_config(tmp_path / str(cached), small_dataset, tiny_model_kwargs, **extra)
        run = train.cli(["--config", config, "--trainer.enable_progress_bar=false"], run=False)
        run.trainer.fit(run.model, datamodule=run.datamodule)
        clips = "audio_features" if cached else "audio"
        batch = next(b for b in run.datamodule.val_dataloader() if len(b[clips]) > len(b["ids"]))
        assert [row for row, _ in span_starts(batch["audio_mask"], 32)][-2:] == [len(batch["ids"]) - 1] * 2
        metrics = run.trainer.validate(run.model, datamodule=run.datamodule)[0]
        results[cached] = (metrics, {k: v.clone() for k, v in run.model.trainable_parameters().items()})
    (plain, plain_weights), (cached, cached_weights) = results[False], results[True]
    assert cached["val/loss"] == pytest.approx(plain["val/loss"], rel=1e-4)
    for name, value in plain_weights.items():
        assert torch.allclose(cached_weights[name], value, atol=1e-5), name
