"""models/graph_alignment.py: YOLOv5 weights into a P2 graph (and its SPD form), by structure."""

from __future__ import annotations

import pytest
import torch

from models.graph_alignment import longest_common_pairs
from models.spd_transfer import TransferError, transfer_state
from models.yolo import DetectionModel
from tests.models.test_spd_transfer import _randomised


def _outputs(model: DetectionModel, x: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's output (Detect excluded)."""
    outs: list[torch.Tensor] = []
    for layer in model.model[:-1]:
        inputs = [x if j == layer.layer_index - 1 else outs[j] for j in layer.sources]
        x = layer(inputs[0] if len(inputs) == 1 else inputs)
        outs.append(x)
    return outs


def test_longest_common_pairs():
    assert longest_common_pairs(list("abcde"), list("abxyzcde")) == [(0, 0), (1, 1), (2, 5), (3, 6), (4, 7)]


@pytest.mark.parametrize("target_cfg", ["yolov5n_p2.yaml", "space_depth_n_p2.yaml"])
def test_yolov5n_weights_fill_every_shared_layer_of_a_p2_graph(target_cfg):
    source = _randomised("yolov5n.yaml", seed=2).eval()
    target = DetectionModel(target_cfg).eval()
    report = transfer_state(source.state_dict(), dict(source.yaml), target)
    assert report.mode == "shared" and report.transferred > 300 and report.skipped
    assert all(k.startswith(tuple(f"model.{i}." for i in range(18, 40))) for k in report.skipped)  # the P2 branch
    assert "new tensors freshly initialised" in report.line("yolov5n.pt")
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        ours, theirs = _outputs(target, x), _outputs(source, x)
    # the backbone and the top-down neck down to P3 (yolov5n's layers 0-17) compute what the source did
    target_layer = {"yolov5n_p2.yaml": 17, "space_depth_n_p2.yaml": 21}[target_cfg]
    assert torch.allclose(ours[target_layer], theirs[17], atol=1e-4)
    head = target.detect
    assert torch.equal(head.m[1].weight, source.detect.m[0].weight)  # the P3 level's conv, one level up
    assert torch.equal(head.anchors[1:], source.detect.anchors)


def test_a_graph_that_cannot_hold_the_source_is_still_refused():
    source = _randomised("yolov5n.yaml", seed=2)
    with pytest.raises(TransferError, match="no counterpart in the target"):
        transfer_state(source.state_dict(), dict(source.yaml), DetectionModel("yolov5s.yaml"))
