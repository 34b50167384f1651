"""models/attention.py: SE and CBAM as YAML rows, parameter counts computed by hand."""

from __future__ import annotations

import pytest
import torch

from models.attention import CBAM, SE
from models.parser import ConfigError
from models.yolo import DetectionModel


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_by_hand():
    # SE(64, 16): hidden 4; squeeze 64*4 + 4, excite 4*64 + 64
    assert _count(SE(64, 16)) == 64 * 4 + 4 + 4 * 64 + 64 == 580
    # CBAM(64, 16, 7): the same MLP, plus a 2 -> 1 7x7 convolution without bias
    assert _count(CBAM(64, 16, 7)) == 580 + 2 * 7 * 7 == 678
    assert _count(SE(8, 16)) == 8 * 1 + 1 + 1 * 8 + 8  # the hidden width never drops below 1


def test_gates_compute_what_the_papers_say():
    x = torch.randn(2, 8, 5, 6)
    cbam = CBAM(8, 4, 3)
    for p in cbam.parameters():
        torch.nn.init.zeros_(p)
    assert torch.allclose(cbam(x), x * 0.25)  # sigmoid(0) twice: channel gate 0.5, spatial gate 0.5
    se = SE(8, 4)
    torch.nn.init.zeros_(se.squeeze.weight)
    torch.nn.init.zeros_(se.squeeze.bias)
    torch.nn.init.zeros_(se.excite.weight)
    with torch.no_grad():
        se.excite.bias.copy_(torch.arange(8.0))
    assert torch.allclose(se(x), x * torch.sigmoid(torch.arange(8.0)).view(1, 8, 1, 1))


def test_cbam_config_adds_exactly_three_blocks_to_space_depth_n():
    plain, cbam = DetectionModel("space_depth_n.yaml"), DetectionModel("space_depth_n_cbam.yaml")
    # P3/P4/P5 carry 64/128/256 channels in the n model: CBAM(c) = 2*c*(c//16) + c//16 + c + 98
    assert _count(cbam) - _count(plain) == sum(2 * c * (c // 16) + c // 16 + c + 98 for c in (64, 128, 256))
    x = torch.zeros(1, 3, 64, 64)
    assert [t.shape for t in cbam(x)] == [t.shape for t in plain(x)]  # training form: one map per level


def test_bad_attention_rows_name_the_row():
    config = {"nc": 1, "depth_multiple": 1.0, "width_multiple": 1.0, "anchors": [[10, 13]],
              "backbone": [[-1, 1, "Conv", [8, 3, 2]], [-1, 1, "CBAM", [0]]],
              "head": [[[1], 1, "Detect", ["nc", "anchors"]]]}
    with pytest.raises(ConfigError, match="reduction"):
        DetectionModel(config)
