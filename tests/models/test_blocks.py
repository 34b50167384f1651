import pytest
import torch

from models.blocks import (
    SPP,
    SPPF,
    Conv,
    Focus,
    SpaceToDepth,
    SPDConv,
    batch_norm_silu,
    depth_to_space,
    space_to_depth,
)


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


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_batch_norm_silu_equals_batchnorm_then_silu(memory_format):
    torch.manual_seed(0)
    bns = [torch.nn.BatchNorm2d(6, eps=1e-3, momentum=0.03) for _ in range(2)]
    with torch.no_grad():
        bns[0].weight.uniform_(0.5, 1.5)
        bns[0].bias.uniform_(-0.5, 0.5)
    bns[1].load_state_dict(bns[0].state_dict())
    x = (torch.randn(3, 6, 5, 7) * 2 + 1).contiguous(memory_format=memory_format)
    grad = torch.randn(3, 6, 5, 7)
    results = []
    for bn, fn in zip(bns, (batch_norm_silu, lambda t, m: torch.nn.functional.silu(m(t)))):
        xi = x.clone().requires_grad_(True)
        y = fn(xi, bn.train())
        y.backward(grad)
        results.append((y.detach(), xi.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var,
                        bn.num_batches_tracked))
    for ours, expected in zip(*results):
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    assert results[0][0].is_contiguous(memory_format=memory_format)


def test_conv_training_holds_one_map_per_block_for_backward():
    conv = Conv(4, 8, 3).train()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        conv(torch.rand(2, 4, 16, 16, requires_grad=True))
    maps = {t.untyped_storage().data_ptr() for t in saved if t.dim() == 4 and t.shape[1] == 8}
    assert len(maps) == 1  # the BatchNorm input; autograd alone keeps SiLU's input too


def test_conv_under_cpu_bf16_autocast_trains_through_plain_autograd():
    # The memory-saving BatchNorm + SiLU recomputes in float32 and costs time under CPU bf16 autocast.
    conv = Conv(4, 8, 3).train()
    x = torch.rand(2, 4, 16, 16, requires_grad=True)
    assert type(conv(x).grad_fn).__name__ == "_BatchNormSiLUBackward"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert type(y.grad_fn).__name__ != "_BatchNormSiLUBackward" and y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert x.grad is not None and conv.bn.weight.grad is not None


@pytest.mark.parametrize("k", [1, 3])
def test_folded_focus_equals_space_to_depth_then_conv(k):
    focus = Focus(3, 8, k).eval()
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        expected = focus(x)
        assert focus.fold()
        folded = focus(x)
    assert focus.conv.conv.kernel_size == (2 * k, 2 * k) and focus.conv.conv.stride == (2, 2)
    torch.testing.assert_close(folded, expected, rtol=1e-5, atol=1e-5)


def test_batch_norm_silu_with_half_precision_activations_and_float_parameters():
    # As under CUDA AMP: bfloat16 here so that it runs on a CPU; the same mixed-type kernels.
    torch.manual_seed(0)
    bns = [torch.nn.BatchNorm2d(6) for _ in range(2)]
    x, grad = torch.randn(3, 6, 5, 7).bfloat16(), torch.randn(3, 6, 5, 7).bfloat16()
    grads = []
    for bn, fn in zip(bns, (batch_norm_silu, lambda t, m: torch.nn.functional.silu(m(t)))):
        xi = x.clone().requires_grad_(True)
        fn(xi, bn).backward(grad)
        assert xi.grad.dtype == torch.bfloat16 and bn.weight.grad.dtype == torch.float32
        grads.append((xi.grad.float(), bn.weight.grad, bn.bias.grad))
    for ours, expected in zip(*grads):
        torch.testing.assert_close(ours, expected, rtol=0.02, atol=0.02)


@pytest.mark.parametrize("k", [1, 3])
def test_paper_order_spdconv_folds_into_the_strided_conv_it_equals(k):
    block = SPDConv(4, 8, k).eval()
    for p in block.parameters():
        p.data.uniform_(-1, 1)
    x = torch.randn(2, 4, 12, 16)
    with torch.no_grad():
        expected = block(x)
        assert block.fold() and block.conv.conv.kernel_size == (2 * k, 2 * k) and block.conv.conv.stride == (2, 2)
        assert torch.allclose(block(x), expected, atol=1e-5)


def test_authors_order_spdconv_widens_four_times_and_refuses_unknown_orders():
    block = SPDConv(4, 8, 3, "conv_first").eval()
    assert block(torch.randn(1, 4, 8, 8)).shape == (1, 32, 4, 4) and not block.fold()
    with pytest.raises(ValueError, match="order"):
        SPDConv(4, 8, 3, "sideways")
