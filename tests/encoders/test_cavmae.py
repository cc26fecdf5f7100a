import math

import pytest
import torch
import torch.nn.functional as F

from interleave.encoders.cavmae import (
    CavMaeEncoder,
    encoder_preset,
    load_cavmae_state_dict,
    pool_to_tokens,
    sincos_pos_embed_2d,
)

TINY_ENCODER = encoder_preset("tiny")


@pytest.fixture
def encoder() -> CavMaeEncoder:
    torch.manual_seed(0)
    return CavMaeEncoder(**TINY_ENCODER)


def test_output_shape_and_frozen(encoder):
    out = encoder(torch.randn(2, 1024, 128))
    assert out.shape == (2, 32, 32)
    assert not out.requires_grad
    assert all(not p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.training and not any(m.training for m in encoder.modules())


def test_cavmae_key_names():
    keys = set(CavMaeEncoder(**{**encoder_preset("cavmae"), "depth": 1}).state_dict())
    for key in [
        "patch_embed_a.proj.weight",
        "pos_embed_a",
        "modality_a",
        "norm_a.weight",
        "blocks_a.0.norm1.weight",
        "blocks_a.0.norm1_a.weight",
        "blocks_a.0.norm1_v.bias",
        "blocks_a.0.attn.qkv.weight",
        "blocks_a.0.attn.qkv.bias",
        "blocks_a.0.attn.proj.weight",
        "blocks_a.0.mlp.fc1.weight",
        "blocks_a.0.mlp.fc2.bias",
        "blocks_u.0.norm2_a.weight",
    ]:
        assert key in keys, key
    enc = CavMaeEncoder(**encoder_preset("cavmae"))
    assert len(enc.blocks_a) == 11 and len(enc.blocks_u) == 1
    assert enc.pos_embed_a.shape == (1, 512, 768)
    assert enc.blocks_a[0].mlp.fc1.out_features == 3072


def test_pooling_is_ltus():
    # Patch k sits at (freq row k // 64, time column k % 64); give it value = time column + 100 * row.
    rows = torch.arange(8).repeat_interleave(64)
    cols = torch.arange(64).repeat(8)
    feats = (cols + 100.0 * rows).reshape(1, 512, 1).expand(1, 512, 3)
    pooled = pool_to_tokens(feats)
    assert pooled.shape == (1, 32, 3)
    # mean over rows adds 350; pairs of time columns (2t, 2t+1) average to 2t + 0.5.
    expected = (torch.arange(32) * 2 + 0.5 + 350) / 50
    torch.testing.assert_close(pooled[0, :, 0], expected)


@pytest.mark.parametrize("frame, mel, patch", [(0, 0, 0), (1023, 127, 511), (16, 0, 1), (0, 16, 64)])
def test_patch_order_is_freq_major(encoder, frame, mel, patch):
    """Patch k covers frequency row k // 64 and time column k % 64, the layout the pooling assumes."""
    base = torch.zeros(1, 1024, 128)
    bumped = base.clone()
    bumped[0, frame, mel] = 5.0

    def patches(x):
        return encoder.patch_embed_a(x.unsqueeze(1).transpose(2, 3))

    changed = (patches(bumped) - patches(base)).abs().sum(-1)[0]
    assert changed.shape == (512,)
    assert torch.nonzero(changed).flatten().tolist() == [patch]


def test_sincos_matches_mae_formula():
    table = sincos_pos_embed_2d(8, 2, 3)
    assert table.shape == (6, 8)
    # patch (row 1, col 2) -> index 5; first half encodes the column, second half the row.
    omega = 1.0 / 10000 ** (torch.arange(2, dtype=torch.float64) / 2.0)
    col, row = 2.0, 1.0
    expected = torch.cat(
        [torch.sin(col * omega), torch.cos(col * omega), torch.sin(row * omega), torch.cos(row * omega)]
    )
    torch.testing.assert_close(table[5].double(), expected, atol=1e-6, rtol=0)


def test_attention_matches_plain_softmax(encoder):
    attn = encoder.blocks_a[0].attn
    x = torch.randn(2, 5, 32)
    b, n, d = x.shape
    h = attn.num_heads
    q, k, v = attn.qkv(x).reshape(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-2, -1) / math.sqrt(d // h)).softmax(-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(b, n, d))
    torch.testing.assert_close(attn(x), expected, atol=1e-5, rtol=1e-5)


def test_forward_follows_cavmae_order(encoder):
    """forward == norm_a(shared blocks with `_a` norms(specific blocks(patches + pos + modality)))."""
    fbank = torch.randn(1, 1024, 128)
    x = encoder.patch_embed_a.proj(fbank.unsqueeze(1).transpose(2, 3)).flatten(2).transpose(1, 2)
    x = x + encoder.pos_embed_a + encoder.modality_a
    blk = encoder.blocks_a[0]
    x = x + blk.attn(blk.norm1(x))
    x = x + blk.mlp(blk.norm2(x))
    blk = encoder.blocks_u[0]
    x = x + blk.attn(blk.norm1_a(x))
    x = x + blk.mlp(blk.norm2_a(x))
    x = encoder.norm_a(x)
    x = F.avg_pool2d(x.reshape(1, 8, 64, 32).mean(1), (2, 1)) / 50
    torch.testing.assert_close(encoder(fbank), x, atol=1e-5, rtol=1e-5)


def test_load_cavmae_state_dict(encoder):
    torch.manual_seed(1)
    other = CavMaeEncoder(**TINY_ENCODER)
    sd = {f"module.{k}": v for k, v in other.state_dict().items()}
    sd["module.blocks_v.0.attn.qkv.weight"] = torch.zeros(3)  # other branches are ignored
    loaded, missing = load_cavmae_state_dict(encoder, sd, prefix="module.")
    assert not missing and "pos_embed_a" in loaded
    x = torch.randn(1, 1024, 128)
    torch.testing.assert_close(encoder(x), other(x))

    del sd["module.norm_a.weight"]
    with pytest.raises(KeyError, match="norm_a.weight"):
        load_cavmae_state_dict(encoder, sd, prefix="module.")
    sd["module.norm_a.weight"] = torch.ones(7)
    with pytest.raises(ValueError, match="norm_a.weight"):
        load_cavmae_state_dict(encoder, sd, prefix="module.")


def test_unknown_preset():
    with pytest.raises(ValueError, match="tiny"):
        encoder_preset("huge")


def test_pool_frames_at_32_is_ltus_pair_average_and_other_counts_pool_equal_spans():
    from interleave.encoders.base import pool_frames

    torch.manual_seed(0)
    patches = torch.randn(2, 512, 5)
    grid = patches.reshape(2, 8, 64, 5).mean(dim=1)
    torch.testing.assert_close(pool_frames(grid, 32) / 50, pool_to_tokens(patches))
    pooled = pool_to_tokens(patches, 16)
    assert pooled.shape == (2, 16, 5)
    torch.testing.assert_close(pooled[:, 3], grid[:, 12:16].mean(dim=1) / 50)


@pytest.mark.parametrize("audio_tokens", [1, 16, 100])
def test_the_encoder_pools_to_audio_tokens(audio_tokens):
    torch.manual_seed(0)
    out = CavMaeEncoder(**TINY_ENCODER, audio_tokens=audio_tokens)(torch.randn(2, 1024, 128))
    assert out.shape == (2, audio_tokens, 32)
