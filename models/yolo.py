"""The detection model: layers from a YAML config, run as a graph with skip connections."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.anchor_free_head import AnchorFreeDetect
from models.blocks import C3, Conv, Focus, SpaceToDepth, SPDConv
from models.head import Detect
from models.parser import load_config, parse_model

HEADS = (Detect, AnchorFreeDetect)


class DetectionModel(nn.Module):
    """A YOLO detector: YOLOv5 / YOLOv5-SPD (anchor-based head) or YOLOv8 / YOLO11 (anchor-free head).

    ``state_dict`` keys are ``model.{layer index}.…`` as in the YOLOv5 family, so weights port.
    """

    def __init__(self, cfg: str | Path | dict = "space_depth_s.yaml", nc: int | None = None,
                 anchors: list | None = None, ch: int = 3) -> None:
        super().__init__()
        config = load_config(cfg)
        if nc is not None:
            config["nc"] = nc
        if anchors is not None:
            config["anchors"] = anchors
        config["ch"] = ch
        self.yaml = {k: v for k, v in config.items() if not k.startswith("_")}
        self.model, self.save, self.out_channels = parse_model(config)
        self.names = [str(i) for i in range(config["nc"])]
        detect = self.detect
        detect.stride = self._probe_strides(ch)
        if self.anchor_based:
            detect.anchors /= detect.stride.view(-1, 1, 1)
            self._check_anchor_order()
        detect.initialize_biases()

    @property
    def detect(self) -> Detect | AnchorFreeDetect:
        """The detection head (the last layer)."""
        head = self.model[-1]
        if not isinstance(head, HEADS):
            raise TypeError("the last layer of a detection config must be Detect or AnchorFreeDetect")
        return head

    @property
    def anchor_based(self) -> bool:
        """Whether the head is YOLOv5's anchor-based one (else YOLOv8 / YOLO11's anchor-free one)."""
        return isinstance(self.detect, Detect)

    @property
    def stride(self) -> torch.Tensor:
        """The head's strides, one per output level."""
        return self.detect.stride

    @property
    def nc(self) -> int:
        """The number of classes."""
        return self.detect.nc

    def _probe_strides(self, ch: int) -> torch.Tensor:
        """Each head input's stride, from the heights of the maps the head receives for a 256 x 256 input."""
        size = 256
        heights: list[int] = []
        hook = self.detect.register_forward_pre_hook(lambda _m, inputs: heights.extend(x.shape[-2] for x in inputs[0]))
        was_training = self.training
        self.train()
        try:
            with torch.no_grad():
                self.forward(torch.zeros(1, ch, size, size))
        finally:
            hook.remove()
            self.train(was_training)
        return torch.tensor([size / h for h in heights], dtype=torch.float32)

    def _check_anchor_order(self) -> None:
        """Anchors must grow with the stride; flip them if a config lists them the other way."""
        d = self.detect
        area = d.anchors.prod(-1).mean(-1).view(-1) * d.stride
        if (area[-1] - area[0]).sign() != (d.stride[-1] - d.stride[0]).sign():
            d.anchors[:] = d.anchors.flip(0)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        outputs: list[torch.Tensor | None] = []
        for layer in self.model:
            if layer.sources != [layer.layer_index - 1]:
                x = [x if j == layer.layer_index - 1 else outputs[j] for j in layer.sources]
                if len(layer.sources) == 1:
                    x = x[0]
            x = layer(x)
            outputs.append(x if layer.layer_index in self.save else None)
        return x

    def forward_augmented(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time augmentation (inference): the image at scales 1, 0.83, 0.67, the middle one flipped
        left-right; decoded boxes are mapped back to ``x``'s pixels and concatenated."""
        h, w = x.shape[-2:]
        gs = int(self.stride.max())
        outputs = []
        for scale, flip in ((1.0, False), (0.83, True), (0.67, False)):
            xi = x.flip(-1) if flip else x
            if scale != 1.0:
                sh, sw = int(h * scale), int(w * scale)
                xi = F.interpolate(xi, size=(sh, sw), mode="bilinear", align_corners=False)
                ph, pw = math.ceil(sh / gs) * gs, math.ceil(sw / gs) * gs
                xi = F.pad(xi, (0, pw - sw, 0, ph - sh), value=0.447)  # YOLOv5's grey for TTA padding
            y = self.forward(xi)
            y[..., :4] /= scale
            if flip:
                y[..., 0] = w - y[..., 0]
            outputs.append(y)
        return torch.cat(outputs, 1)

    @torch.no_grad()
    def fuse(self) -> DetectionModel:
        """Fold every BatchNorm into the preceding convolution (inference only)."""
        for module in self.modules():
            if isinstance(module, Conv) and isinstance(module.bn, nn.BatchNorm2d):
                module.conv = fuse_conv_bn(module.conv, module.bn)
                module.bn = nn.Identity()
        return self

    def for_inference(self, fold_space_to_depth: bool = True) -> DetectionModel:
        """Eval mode, BatchNorm folded, a Focus stem or a paper-order SPDConv as the one strided conv it equals,
        channels-last memory (oneDNN's preferred layout on CPUs, tensor cores' on GPUs): the form val.py,
        detect.py and the Python API run. Outputs equal the plain model's. ``fold_space_to_depth``: a
        SpaceToDepth row read only by the C3 after it becomes part of that C3's first convolutions (no copy);
        exports keep the row, as ONNX's own SpaceToDepth node."""
        self.eval().fuse()
        for module in self.modules():
            if isinstance(module, (Focus, SPDConv)):
                module.fold()
        layers = list(self.model) if fold_space_to_depth else []
        for spd, consumer in zip(layers, layers[1:]):  # a SpaceToDepth row read only by the C3 after it
            if isinstance(spd, SpaceToDepth) and isinstance(consumer, C3) and \
                    consumer.sources == [spd.layer_index] and spd.layer_index not in self.save:
                consumer.fold_space_to_depth(spd)
        return self.to(memory_format=torch.channels_last)

    def info(self, imgsz: int = 640) -> str:
        """One line: layers, parameters, gradients and GFLOPs at ``imgsz``."""
        from models.summary import model_summary

        return model_summary(self, imgsz)


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A Conv2d with a bias that equals conv followed by bn in eval mode."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True).to(conv.weight.device)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    conv_bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_(bn.bias + (conv_bias - bn.running_mean) * scale)
    return fused.requires_grad_(False)

