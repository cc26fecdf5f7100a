"""interleave.model.projector: LTU's kind keeps LTU's names (`audio_proj.1`, a LayerNorm without
weights before it), the `linear` kind is one Linear, and an unknown kind is refused."""

import pytest
import torch
from torch import nn

from interleave.model.projector import build_projector, linear_layer, projector_dtype


def test_the_ltu_kind_is_layernorm_then_linear():
    projector = build_projector("ltu", 8, 16)
    assert list(projector.state_dict()) == ["1.weight", "1.bias"]
    x = torch.randn(2, 3, 8)
    expected = projector[1](nn.functional.layer_norm(x, (8,)))
    torch.testing.assert_close(projector(x), expected)


def test_the_linear_kind_is_one_linear():
    projector = build_projector("linear", 8, 16)
    assert list(projector.state_dict()) == ["0.weight", "0.bias"]
    assert linear_layer(projector) is projector[0]
    x = torch.randn(5, 8)
    torch.testing.assert_close(projector(x), x @ projector[0].weight.T + projector[0].bias)
    assert projector_dtype(projector.to(torch.bfloat16)) == torch.bfloat16


def test_the_mlp_kind_is_linear_gelu_linear():
    projector = build_projector("mlp", 8, 16)
    assert list(projector.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert linear_layer(projector) is projector[2] and projector[2].in_features == 16
    x = torch.randn(5, 8)
    hidden = torch.nn.functional.gelu(x @ projector[0].weight.T + projector[0].bias)
    torch.testing.assert_close(projector(x), hidden @ projector[2].weight.T + projector[2].bias)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown model.projector 'qformer'"):
        build_projector("qformer", 8, 16)
