"""The EMA's multi-tensor update equals the per-tensor arithmetic bit for bit, and follows the model's tensors;
the optimiser's fused and foreach steps land where its per-tensor loop does."""

import copy

import pytest
import torch
from torch import nn

from utils.engine.optim import ModelEMA, build_optimizer, keep_step_kernel


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


def _steps(name: str, kernel: str, steps: int = 12) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A seeded model stepped with seeded gradients; momentum and lr move part way, as warm-up moves them."""
    model = _model()
    optimizer = build_optimizer(model, name, lr=0.01, momentum=0.9, weight_decay=5e-4, kernel=kernel)
    g = torch.Generator().manual_seed(1)
    for step in range(steps):
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=g)
        if step == steps // 2:
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
                if "momentum" in group:
                    group["momentum"] = 0.937
        optimizer.step()
    return model, optimizer


@pytest.mark.parametrize("kernel", ["auto", "fused"])
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_steps_land_where_the_loop_does(name, kernel):
    """auto (foreach) equals the loop bit for bit; fused is within float rounding of it."""
    fast, optimizer = _steps(name, kernel)
    slow, _ = _steps(name, "loop")
    assert all(group["foreach" if kernel == "auto" else "fused"] for group in optimizer.param_groups)
    for (key, a), b in zip(fast.named_parameters(), slow.parameters()):
        same = torch.equal(a, b) if kernel == "auto" else torch.allclose(a, b, rtol=1e-5, atol=1e-6)
        assert same, key


def test_a_loaded_state_keeps_this_optimisers_step_form():
    _, saved = _steps("SGD", "loop")
    model = _model()
    optimizer = build_optimizer(model, "SGD", kernel="fused")
    keep_step_kernel(optimizer, saved.state_dict())
    assert all(group["fused"] and not group["foreach"] for group in optimizer.param_groups)
    assert optimizer.param_groups[1]["weight_decay"] == 5e-4 and len(optimizer.state) == len(saved.state)


def test_an_unknown_kernel_is_refused_by_name():
    with pytest.raises(ValueError, match="'vectorised'"):
        build_optimizer(_model(), "SGD", kernel="vectorised")


def test_warmup_length_follows_the_recipe_rule():
    from utils.engine.optim import warmup_iterations

    yolov5 = {"warmup_epochs": 3.0}
    assert warmup_iterations(yolov5, 15, 30) == 100  # the 100-iteration floor
    assert warmup_iterations(yolov5, 50, 30) == 150
    assert warmup_iterations(yolov5, 15, 1) == 100  # a one-epoch run warms up throughout
    ultralytics = {"warmup_epochs": 3.0, "warmup": "ultralytics"}
    assert warmup_iterations(ultralytics, 15, 30) == 45  # no floor
    assert warmup_iterations(ultralytics, 15, 3) == 30  # the last epoch trains at the scheduled lr
    assert warmup_iterations(ultralytics, 15, 1) == 0
    assert warmup_iterations({"warmup_epochs": 0.0, "warmup": "ultralytics"}, 15, 30) == 0


def test_anchor_free_recipe_uses_ultralytics_warmup():
    from utils.detection.head_families import ANCHOR_BASED, ANCHOR_FREE
    from utils.engine.config import ENGINE_HYP, ConfigurationError, check_hyp, load_hyp

    assert load_hyp(ANCHOR_FREE.default_hyp, ENGINE_HYP | ANCHOR_FREE.hyp_schema)["warmup"] == "ultralytics"
    assert "warmup" not in load_hyp(ANCHOR_BASED.default_hyp, ENGINE_HYP | ANCHOR_BASED.hyp_schema)
    with pytest.raises(ConfigurationError, match="'warmup' must be yolov5 or ultralytics"):
        check_hyp({"lr0": 0.01, "lrf": 0.01, "momentum": 0.9, "weight_decay": 0.0, "warmup_epochs": 1.0,
                   "warmup_momentum": 0.8, "warmup_bias_lr": 0.0, "warmup": "linear"}, "h.yaml")
