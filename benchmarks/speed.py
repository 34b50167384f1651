"""Speed against the reference implementation (PyPI yolov5==7.0.14 in its own environment), same run, same
inputs: one fresh process per measurement and side, so threads, allocator and peak memory start equal.

    scripts/env.sh python benchmarks/speed.py                     # everything, about 15 minutes on 2 cores
    scripts/env.sh python benchmarks/speed.py --tasks latency nms
    scripts/env.sh python benchmarks/speed.py --device cuda --models space_depth_n space_depth_s yolov5n yolov5s

Figures (float32, ``--threads`` CPU threads, default 2; with ``--device cuda``: latency in fp32 and fp16, training
under AMP at batch 64 and the GPU memory PyTorch's allocator reserved at most):
  ceiling   the machine's own fp32 matmul and 3x3-conv GFLOP/s (ours only), to read every figure against
  latency   batch 1, 640, Conv+BN fused, eval: space_depth_n and yolov5n (the reference builds both from our
            YAML, SpaceToDepth rows as its own Contract(2): same parameters and FLOPs)
  train     batch 8, 640, forward + loss + backward + SGD step on fixed images and targets; images/s and the
            process's peak resident memory
  nms       validation settings (conf 0.001, IoU 0.6, multi-label, 300 per image) on the official yolov5n's
            raw output for 8 coco128 val2017 images at 640 (batch 8 x 25,200 x 85), ms per image
  val       wall time of the whole val command (start-up included), official yolov5n on coco128 val2017 at 640,
            batch 32, 2 workers; both processes print their mAP so the figures can be compared
  loader    the mosaic training loader (benchmarks/loader.py), 2 workers
Ratios are ours/reference for times and memory (lower is better) and reference-relative speed-ups for
rates (higher is better), as the table's header says.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from benchmarks.timing import latency_figures, median_ms, nms_figures, synthetic_targets, training_figures

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
TASKS = ["ceiling", "latency", "train", "nms", "val", "loader"]


# ----------------------------------------------------------------------------------------- our side (workers)
def _config(name: str) -> dict:
    from models.parser import resolve_config_path

    return yaml.safe_load(resolve_config_path(f"{name}.yaml").read_text())


def ceiling() -> dict:
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    matmul_ms = median_ms(lambda: a @ b, 5)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1, bias=False).eval()
    x = torch.rand(8, 128, 80, 80)
    with torch.inference_mode():
        conv_ms = median_ms(lambda: conv(x), 5)
    conv_flops = 2 * 128 * 128 * 9 * 80 * 80 * 8
    return {"matmul_gflops": 2 * 2048**3 / matmul_ms / 1e6, "conv3x3_gflops": conv_flops / conv_ms / 1e6}


def latency(cfg: dict, imgsz: int, repeats: int, device: str = "cpu", half: bool = False) -> dict:
    from models.yolo import DetectionModel

    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0)).to(device)
    model = DetectionModel(cfg).to(device).for_inference()
    if half:
        model, x = model.half(), x.half()
    return latency_figures(model, x.contiguous(memory_format=torch.channels_last), repeats)


def train_step(cfg: dict, hyp: dict, imgsz: int, batch: int, steps: int, device: str = "cpu",
               amp: bool = False) -> dict:
    from models.yolo import DetectionModel
    from utils.detection.anchor_based_loss import LossGains, YoloLoss
    from utils.engine.optim import build_optimizer

    model = DetectionModel(cfg).train().to(device, memory_format=torch.channels_last)  # as utils/engine/trainer.py
    images = torch.rand(batch, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0)).to(device)
    return training_figures(model, YoloLoss(model.detect.anchors, cfg["nc"], LossGains.from_hyp(hyp), imgsz),
                            build_optimizer(model, "SGD", 0.01, 0.937, 5e-4),
                            images.contiguous(memory_format=torch.channels_last),
                            synthetic_targets(batch, cfg["nc"]).to(device), steps, amp)


def nms(predictions: str, repeats: int, device: str = "cpu") -> dict:
    from utils.boxes import non_max_suppression

    return nms_figures(non_max_suppression, predictions, repeats, device)


WORKERS = {"ceiling": ceiling, "latency": latency, "train": train_step, "nms": nms}


# ----------------------------------------------------------------------------------------------- orchestration
class Sides:
    """Runs one task in a fresh process of our environment or of the reference's."""

    def __init__(self, threads: int) -> None:
        self.env = {**os.environ, "BENCH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
        # REFERENCE_PYTHON / REFERENCE_PYTHONPATH: a reference installed by other means (a machine with no
        # package index, say); otherwise reference_env.sh makes its environment once.
        self.reference_python = os.environ.get("REFERENCE_PYTHON") or subprocess.run(
            [str(ROOT / "benchmarks" / "reference_env.sh")], capture_output=True, text=True, check=True).stdout.strip()

    def ours(self, task: str, **kwargs) -> dict:
        return self._run([sys.executable, "-m", "benchmarks.speed", "--worker", task, json.dumps(kwargs)])

    def reference(self, task: str, **kwargs) -> dict:
        # Without our PYTHONPATH: the reference's pickled checkpoints must find its own models.yolo.
        env = {k: v for k, v in self.env.items() if k != "PYTHONPATH"}
        if os.environ.get("REFERENCE_PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["REFERENCE_PYTHONPATH"]
        return self._run([self.reference_python, str(ROOT / "benchmarks" / "reference_worker.py"), task,
                          json.dumps(kwargs)], env)

    def _run(self, command: list[str], env: dict | None = None) -> dict:
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env or self.env)
        if out.returncode:
            raise RuntimeError(f"{' '.join(command[:4])} failed:\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def timed(self, command: list[str]) -> tuple[float, str]:
        t0 = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=self.env)
        if out.returncode:
            raise RuntimeError(f"{' '.join(command[:4])} failed:\n{out.stderr[-3000:]}")
        return time.perf_counter() - t0, out.stdout + out.stderr


def coco128_val_copy(tmp: Path) -> Path:
    """A copy of coco128 val2017 and its dataset YAML (the reference writes .cache files beside the labels)."""
    source = SHARED / "data" / "coco128"
    for part in ("images", "labels"):
        shutil.copytree(source / part / "val2017", tmp / "coco128" / part / "val2017")
    names = yaml.safe_load((ROOT / "data" / "coco128.yaml").read_text())["names"]
    data = tmp / "coco128_val.yaml"
    data.write_text(yaml.safe_dump({"path": str(tmp / "coco128"), "train": "images/val2017",
                                    "val": "images/val2017", "names": names}))
    return data


def raw_predictions(path: Path, imgsz: int = 640, batch: int = 8) -> None:
    """The official yolov5n's decoded output for the first ``batch`` coco128 val2017 images (letterboxed)."""
    import cv2
    import numpy as np

    from models.loading import load_model
    from utils.data.augmentations import letterbox

    model = load_model(SHARED / "weights" / "yolov5n.pt").eval()
    files = sorted((SHARED / "data" / "coco128" / "images" / "val2017").glob("*.jpg"))[:batch]
    images = [letterbox(cv2.imread(str(f)), (imgsz, imgsz))[0] for f in files]
    x = torch.from_numpy(np.stack(images)[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        torch.save(model(x).clone(), path)


def row(figure: str, ours: float, reference: float | None, unit: str, higher_is_better: bool) -> str:
    if reference is None:
        return f"| {figure} | {ours:.1f} {unit} | | |"
    ratio = ours / reference
    kind = "speed-up" if higher_is_better else "ours/ref"
    return f"| {figure} | {ours:.1f} {unit} | {reference:.1f} {unit} | {ratio:.2f} ({kind}) |"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS)
    p.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU figures (AMP training, fp16 "
                                                   "latency beside fp32)")
    p.add_argument("--models", nargs="+", default=["space_depth_n", "yolov5n"])
    p.add_argument("--batch", type=int, default=None, help="training batch (default 8 on the CPU, 64 on a GPU)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--worker", nargs=2, metavar=("TASK", "JSON"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        from utils.memory import keep_freed_memory

        keep_freed_memory()  # as train.py, val.py and detect.py
        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
        task, kwargs = args.worker
        print(json.dumps(WORKERS[task](**json.loads(kwargs))))
        return

    sides = Sides(args.threads)
    cuda = args.device.startswith("cuda")
    where = torch.cuda.get_device_name() if cuda else f"CPU, {args.threads} threads"
    print(f"torch {torch.__version__}, {where}; reference: PyPI yolov5==7.0.14\n")
    print("| figure | ours | reference | ratio |\n|---|---:|---:|---:|", flush=True)
    if "ceiling" in args.tasks and not cuda:
        c = sides.ours("ceiling")
        print(row("machine: fp32 matmul 2048²", c["matmul_gflops"], None, "GFLOP/s", True))
        print(row("machine: 3x3 conv 128→128, 8×80×80", c["conv3x3_gflops"], None, "GFLOP/s", True), flush=True)
    for name in args.models:
        _model_figures(sides, args, name, cuda)
    with tempfile.TemporaryDirectory() as tmp:
        if "nms" in args.tasks:
            _nms_figure(sides, args, Path(tmp))
        if "val" in args.tasks:
            _val_figure(sides, Path(tmp), cuda)
    if "loader" in args.tasks:
        from benchmarks import loader

        (_, ours_rate, _, ref_rate), = loader.compare([2])
        print(row("mosaic loader coco128 train2017 640, b16, 2 workers", ours_rate, ref_rate, "img/s", True),
              flush=True)


def _model_figures(sides: Sides, args: argparse.Namespace, name: str, cuda: bool) -> None:
    """Latency (fp32, and fp16 on a GPU), training speed and peak memory of one model, both sides."""
    cfg = _config(name)
    batch = args.batch or (64 if cuda else 8)
    if "latency" in args.tasks:
        for half in (False, True) if cuda else (False,):
            kw = {"cfg": cfg, "imgsz": 640, "repeats": args.repeats, "device": args.device, "half": half}
            ours, ref = sides.ours("latency", **kw), sides.reference("latency", **kw)
            precision = "fp16" if half else "fp32"
            print(row(f"latency {name}, b1 640 fused {precision}", ours["ms"], ref["ms"], "ms", False), flush=True)
    if "train" in args.tasks:
        hyp = yaml.safe_load((ROOT / "configs" / "hyp.scratch.yaml").read_text())
        kw = {"cfg": cfg, "hyp": hyp, "imgsz": 640, "batch": batch, "steps": args.steps, "device": args.device,
              "amp": cuda}
        ours, ref = sides.ours("train", **kw), sides.reference("train", **kw)
        label = f"{name}, b{batch} 640" + (" AMP" if cuda else "")
        print(row(f"train step {label}", ours["images_per_s"], ref["images_per_s"], "img/s", True))
        memory = "peak_cuda_mb" if cuda else "peak_rss_mb"
        print(row(f"peak {'GPU ' if cuda else ''}memory, training {label}", ours[memory], ref[memory], "MB",
                  False), flush=True)


def _nms_figure(sides: Sides, args: argparse.Namespace, tmp: Path) -> None:
    raw_predictions(tmp / "pred.pt")
    kw = {"predictions": str(tmp / "pred.pt"), "repeats": args.repeats, "device": args.device}
    ours, ref = sides.ours("nms", **kw), sides.reference("nms", **kw)
    print(row(f"NMS b8×25200×85 val settings ({ours['boxes']} / {ref['boxes']} boxes kept)",
              ours["ms_per_image"], ref["ms_per_image"], "ms/img", False), flush=True)


def _val_figure(sides: Sides, tmp: Path, cuda: bool) -> None:
    """val.py of both sides on coco128 val2017, whole command timed."""
    data, weights = coco128_val_copy(tmp), str(SHARED / "weights" / "yolov5n.pt")
    device = "0" if cuda else "cpu"
    ours_s, log = sides.timed([sys.executable, "val.py", "--weights", weights, "--data", str(data), "--imgsz",
                               "640", "--batch-size", "32", "--workers", "2", "--device", device,
                               "--project", str(tmp / "ours")])
    lines = log.splitlines()
    header = next((i for i, line in enumerate(lines) if line.rstrip().endswith("mAP50-95")), -2)
    ours_map = lines[header + 1].split() if 0 <= header + 1 < len(lines) else ["?"]
    kw = {"data": str(data), "weights": weights, "imgsz": 640, "batch": 32, "workers": 2,
          "project": str(tmp / "reference"), "device": device}
    t0 = time.perf_counter()
    ref = sides.reference("val", **kw)
    ref_s = time.perf_counter() - t0
    print(row(f"val.py coco128 val2017 yolov5n 640 (mAP50-95 ours {ours_map[-1]}, reference "
              f"{ref['mAP50-95']:.3f})", ours_s, ref_s, "s", False), flush=True)


if __name__ == "__main__":
    main()
