"""The EMA's multi-tensor update equals the per-tensor arithmetic bit for bit, and follows the model's tensors."""

import copy

import torch
from torch import nn

from utils.engine.optim import ModelEMA


def _loop_update(ema: ModelEMA, model: nn.Module) -> None:
    """The reference: one mul_ and one add_ per floating-point tensor, as the EMA did before foreach."""
    ema.updates += 1
    d = ema.decay()
    source = model.state_dict()
    for name, value in ema.ema.state_dict().items():
        if value.dtype.is_floating_point:
            value.mul_(d).add_(source[name].detach(), alpha=1 - d)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.SiLU(), nn.Conv2d(8, 4, 1))


def test_foreach_update_is_bit_identical_to_the_loop():
    model = _model()
    fast, slow = ModelEMA(model), ModelEMA(model)
    for _ in range(20):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        model.train()(torch.randn(2, 3, 8, 8))  # BatchNorm running statistics move in place
        fast.update(model)
        _loop_update(slow, model)
    assert fast.updates == slow.updates == 20
    for (name, a), b in zip(fast.ema.state_dict().items(), slow.ema.state_dict().values()):
        assert torch.equal(a, b), name


def test_update_follows_a_data_swap_and_a_new_model():
    model = _model()
    ema = ModelEMA(model)
    ema.update(model)
    with torch.no_grad():
        model[0].weight.data = torch.full_like(model[0].weight, 7.0)  # what Module.to() does to parameters
    reference = copy.deepcopy(ema)
    ema.update(model)
    _loop_update(reference, model)
    assert torch.equal(ema.ema[0].weight, reference.ema[0].weight)
    other = _model()
    with torch.no_grad():
        other[3].bias.fill_(-3.0)
    ema.update(other)
    _loop_update(reference, other)
    assert torch.equal(ema.ema[3].bias, reference.ema[3].bias)
