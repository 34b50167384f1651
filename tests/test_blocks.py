import pytest
import torch

from models.blocks import SPP, SPPF, Conv, Focus, SpaceToDepth, SPDConv, depth_to_space, space_to_depth


def test_space_to_depth_matches_authors_slicing_order():
    x = torch.randn(2, 3, 8, 6)
    expected = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)
    assert torch.equal(space_to_depth(x), expected)
    assert SpaceToDepth()(x).shape == (2, 12, 4, 3)


def test_space_to_depth_channels_last_gives_the_same_values_and_keeps_the_layout():
    x = torch.randn(2, 6, 8, 10)
    y = space_to_depth(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(y, space_to_depth(x))
    assert y.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn(2, 24, 4, 5)
    for fmt in (torch.contiguous_format, torch.channels_last):
        xi = x.clone().contiguous(memory_format=fmt).requires_grad_()
        (space_to_depth(xi) * grad).sum().backward()
        assert torch.equal(xi.grad, depth_to_space(grad))


def test_space_to_depth_round_trip_is_lossless():
    x = torch.randn(1, 5, 16, 10)
    assert torch.equal(depth_to_space(space_to_depth(x)), x)


def test_space_to_depth_rejects_odd_sizes():
    with pytest.raises(ValueError, match="even"):
        space_to_depth(torch.zeros(1, 1, 5, 4))


def test_spdconv_halves_resolution_without_stride():
    block = SPDConv(8, 16)
    assert block.conv.conv.stride == (1, 1)
    assert block.conv.conv.in_channels == 32
    assert block(torch.randn(2, 8, 12, 12)).shape == (2, 16, 6, 6)


def test_focus_equals_conv_on_space_to_depth():
    focus = Focus(3, 8, 3).eval()
    x = torch.randn(1, 3, 8, 8)
    assert torch.allclose(focus(x), focus.conv(space_to_depth(x)))


def test_sppf_equals_spp_with_shared_weights():
    sppf, spp = SPPF(16, 16, 5).eval(), SPP(16, 16, (5, 9, 13)).eval()
    spp.load_state_dict(sppf.state_dict())
    x = torch.randn(1, 16, 12, 12)
    assert torch.allclose(sppf(x), spp(x), atol=1e-6)


def test_conv_batchnorm_settings():
    conv = Conv(3, 4, 3)
    assert conv.bn.eps == 1e-3 and conv.bn.momentum == 0.03
    assert conv.conv.bias is None and conv.conv.padding == (1, 1)
