"""interleave.encoders, the registry, with every kind on tiny random configs: shapes, frozen, pooling to
audio_tokens, cached == live, local folders, the config scheme and what the fingerprint covers.
(Each kind's own pooling and inputs: test_ast.py, test_whisper.py, test_cavmae.py.)"""

import pytest
import torch

from interleave.encoders import build_encoder, parse_spec
from interleave.encoders.cache import FeatureCache, fingerprint
from interleave.errors import InterleaveError
from tests.helpers import built

KINDS = ["cavmae:tiny", "ast:tiny", "whisper:tiny"]
INPUT_SHAPES = {"cavmae:tiny": (1024, 128), "ast:tiny": (1024, 128), "whisper:tiny": (81, 3000)}


@pytest.mark.parametrize("spec", KINDS)
@pytest.mark.parametrize("audio_tokens", [32, 5])
def test_shapes_frozen_and_pooled_to_audio_tokens(spec, audio_tokens, clips):
    encoder = built(spec, audio_tokens=audio_tokens)
    inputs = torch.stack([encoder.load_inputs(p) for p in clips[:2]])
    assert inputs.shape[1:] == INPUT_SHAPES[spec]
    out = encoder(inputs)
    assert out.shape == (2, audio_tokens, encoder.width) and torch.isfinite(out).all()
    assert encoder.width == 32
    assert not out.requires_grad and all(not p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not any(m.training for m in encoder.modules())


@pytest.mark.parametrize("spec", KINDS)
def test_a_trained_encoder_builds_a_graph(spec, clips):
    encoder = built(spec, frozen=False)
    encoder.train()
    assert encoder.training and any(p.requires_grad for p in encoder.parameters())
    encoder(encoder.load_inputs(clips[0])[None]).sum().backward()
    assert sum(p.grad is not None for p in encoder.parameters()) > len(list(encoder.parameters())) // 2


@pytest.mark.parametrize("spec", KINDS)
def test_cached_features_equal_live_ones(spec, clips, tmp_path):
    encoder = built(spec)
    cache = FeatureCache.of(tmp_path, encoder)
    stats = cache.ensure(encoder, clips, batch_size=2)
    assert stats.built == 3
    live = encoder(torch.stack([encoder.load_inputs(p) for p in clips]))
    for path, features in zip(clips, live):
        torch.testing.assert_close(cache.get(path), features)


@pytest.mark.parametrize("kind", ["ast", "whisper"])
def test_a_local_hugging_face_folder_gives_the_same_encoder(kind, clips, tmp_path):
    from transformers import (
        ASTFeatureExtractor,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    encoder = built(f"{kind}:tiny")
    folder = tmp_path / kind
    if kind == "ast":
        encoder.model.save_pretrained(folder)
        ASTFeatureExtractor().save_pretrained(folder)
    else:  # a whole Whisper model, as released; the decoder is dropped at loading
        full = WhisperForConditionalGeneration(WhisperConfig(**encoder.model.config.to_dict()))
        full.model.encoder.load_state_dict(encoder.model.state_dict())
        full.save_pretrained(folder)
        WhisperFeatureExtractor().save_pretrained(folder)
    loaded = build_encoder(kind, path=str(folder))
    inputs = torch.stack([encoder.load_inputs(p) for p in clips[:2]])
    torch.testing.assert_close(loaded(inputs), encoder(inputs))
    assert fingerprint(loaded) == fingerprint(encoder)
    assert not any(p.requires_grad for p in loaded.parameters())


def test_a_folder_without_its_feature_settings_is_refused(tmp_path):
    encoder = built("ast:tiny")
    encoder.model.save_pretrained(tmp_path / "ast")
    with pytest.raises(InterleaveError, match="preprocessor_config.json"):
        build_encoder("ast", path=str(tmp_path / "ast"))
    with pytest.raises(InterleaveError, match="no config.json"):
        build_encoder("whisper", path=str(tmp_path))


def test_the_fingerprint_covers_kind_weights_and_pooling():
    prints = {spec: fingerprint(built(spec)) for spec in KINDS}
    assert len(set(prints.values())) == 3
    assert fingerprint(built("whisper:tiny", audio_tokens=8)) != prints["whisper:tiny"]
    torch.manual_seed(1)
    assert fingerprint(build_encoder("whisper:tiny")) != prints["whisper:tiny"]  # other weights
    assert fingerprint(built("whisper:tiny")) == prints["whisper:tiny"]
    assert fingerprint(built("whisper:tiny"), channel="mean") != prints["whisper:tiny"]


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("cavmae", ("cavmae", "cavmae")),
        ("small", ("cavmae", "small")),
        ("tiny", ("cavmae", "tiny")),
        ("cavmae:small", ("cavmae", "small")),
        ("ast", ("ast", "base")),
        ("whisper", ("whisper", "base")),
        ("whisper:tiny", ("whisper", "tiny")),
    ],
)
def test_the_config_scheme(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [("wav2vec", "unknown model.encoder"), ("whisper:huge", "unknown size"), ("ast:small", "unknown size")],
)
def test_unknown_kinds_and_sizes_are_refused(spec, message):
    with pytest.raises(InterleaveError, match=message):
        parse_spec(spec)


def test_encoder_kwargs_override_the_size_and_a_folder_excludes_them(tmp_path):
    assert built("whisper:tiny", overrides={"d_model": 48, "encoder_attention_heads": 4}).width == 48
    assert built("ast:tiny", overrides={"hidden_size": 16, "num_attention_heads": 2}).width == 16
    assert built("tiny", overrides={"embed_dim": 64}).width == 64
    with pytest.raises(InterleaveError, match=r"\['embed_dim'\] are not fields of the whisper"):
        build_encoder("whisper:tiny", overrides={"embed_dim": 32})  # CAV-MAE's, left in a config
    with pytest.raises(InterleaveError, match="not both"):
        build_encoder("ast", path=str(tmp_path), overrides={"hidden_size": 16})
    with pytest.raises(InterleaveError, match="encoder_path is for ast and whisper"):
        build_encoder("cavmae", path=str(tmp_path))


@pytest.mark.parametrize("spec, seconds", [("cavmae:tiny", 10.255), ("ast:tiny", 10.255), ("whisper:tiny", 30.0)])
def test_each_kind_states_how_much_of_a_clip_it_hears(spec, seconds):
    """What `DataSpec.heard_seconds` and the playground's upload bound read: Whisper pads or cuts to 30 s."""
    assert build_encoder(spec).heard_seconds == pytest.approx(seconds)
