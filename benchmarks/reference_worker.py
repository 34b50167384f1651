"""The reference implementation's side of benchmarks/speed.py, run by the reference environment's python
(PyPI yolov5==7.0.14, see reference_env.sh) as a script: one task per process, one JSON line on stdout.

It imports nothing of this project except the shared timing helpers next to it, so that the reference's own
``models`` and ``utils`` packages are the ones its checkpoints and code find.
"""

from __future__ import annotations

import json
import logging
import os
import sys

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # its checkpoints are pickled model objects
logging.disable(logging.CRITICAL)

import numpy as np  # noqa: E402
import torch  # noqa: E402

if not hasattr(np, "trapz"):  # removed in NumPy 2.x; the reference's AP code still calls it
    np.trapz = np.trapezoid

from timing import latency_figures, nms_figures, synthetic_targets, training_figures  # noqa: E402


def reference_config(cfg: dict) -> dict:
    """Our YAML with each SpaceToDepth row replaced by the reference's own Contract(2): the same parameters
    and FLOPs, another channel order."""
    cfg = json.loads(json.dumps(cfg))
    for section in ("backbone", "head"):
        cfg[section] = [[f, n, "Contract", [2]] if m == "SpaceToDepth" else [f, n, m, a] for f, n, m, a in cfg[section]]
    return cfg


def build(cfg: dict):
    from yolov5.models.yolo import Model

    return Model(reference_config(cfg), ch=3)


def latency(cfg: dict, imgsz: int, repeats: int, device: str = "cpu", half: bool = False) -> dict:
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0)).to(device)
    model = build(cfg).to(device).eval().fuse()
    if half:  # as its detect.py / val.py --half
        model, x = model.half(), x.half()
    return latency_figures(model, x, repeats)


def train_step(cfg: dict, hyp: dict, imgsz: int, batch: int, steps: int, device: str = "cpu",
               amp: bool = False) -> dict:
    from yolov5.utils.loss import ComputeLoss

    model = build(cfg).to(device).train()
    model.hyp = hyp
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, nesterov=True)
    images = torch.rand(batch, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0)).to(device)
    return training_figures(model, ComputeLoss(model), optimizer, images,
                            synthetic_targets(batch, cfg["nc"]).to(device), steps, amp)


def nms(predictions: str, repeats: int, device: str = "cpu") -> dict:
    from yolov5.utils.general import non_max_suppression

    return nms_figures(non_max_suppression, predictions, repeats, device)


def val(data: str, weights: str, imgsz: int, batch: int, workers: int, project: str, device: str = "cpu") -> dict:
    from yolov5 import val as reference_val

    (mp, mr, map50, map50_95, *_), *_ = reference_val.run(
        data=data, weights=weights, imgsz=imgsz, batch_size=batch, workers=workers, device=device, half=False,
        plots=False, project=project, name="val", exist_ok=True)
    return {"mAP50": map50, "mAP50-95": map50_95}


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    task, kwargs = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"latency": latency, "train": train_step, "nms": nms, "val": val}[task](**kwargs)))
