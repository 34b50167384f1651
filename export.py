"""Export a trained model to ONNX and/or TorchScript, optionally with an INT8 ONNX form.

    python export.py --weights runs/train/exp/weights/best.pt --include onnx torchscript --dynamic
    python export.py --weights best.pt --int8 --data coco128.yaml --imgsz 320    # + best_int8.onnx
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch

from utils.backends import METADATA_KEY
from utils.checkpoints import CheckpointError, load_model
from utils.distributed import select_device
from utils.logging import LOGGER


def export(weights: str, include: list[str], imgsz: int = 640, batch_size: int = 1, dynamic: bool = False,
           half: bool = False, simplify: bool = False, opset: int = 17, device: str = "cpu", int8: bool = False,
           data: str | None = None, calib_images: int = 200) -> list[Path]:
    """Write ``<weights>.onnx`` / ``<weights>.torchscript`` beside the checkpoint (and ``<weights>_int8.onnx``
    with ``int8``: static INT8 calibrated on ``calib_images`` training images of ``data``); returns the paths."""
    from utils.checkpoints import resolve_weights

    problems = [(imgsz < 32, f"--imgsz must be >= 32, got {imgsz}"),
                (batch_size < 1, f"--batch-size must be >= 1, got {batch_size}"),
                (not 11 <= opset <= 21, f"--opset {opset}: supported opsets are 11 to 21 (default 17)"),
                (int8 and "onnx" not in include, "--int8 quantises the ONNX export: add onnx to --include"),
                (int8 and half, "--int8 and --half: choose one"),
                (int8 and calib_images < 1, f"--calib-images must be >= 1, got {calib_images}")]
    for bad, message in problems:
        if bad:
            raise ValueError(message)

    path = resolve_weights(weights)
    torch_device = select_device(device)
    if half and torch_device.type == "cpu":
        LOGGER.info("--half needs a CUDA device: exporting float32")
        half = False
    model = load_model(path, torch_device).fuse().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.zeros(batch_size, 3, imgsz, imgsz, device=torch_device)
    if half:
        model, x = model.half(), x.half()
    meta = {"names": model.names, "stride": model.stride.tolist(), "imgsz": imgsz, "source": str(path)}
    outputs = []
    if "torchscript" in include:
        out = path.with_suffix(".torchscript")
        traced = torch.jit.trace(model, x, strict=False)
        traced.save(str(out), _extra_files={"config.json": json.dumps(meta)})
        outputs.append(out)
        LOGGER.info(f"TorchScript: {out}")
    if "onnx" in include:
        out = path.with_suffix(".onnx")
        axes = {"images": {0: "batch", 2: "height", 3: "width"}, "output0": {0: "batch", 1: "boxes"}} if dynamic \
            else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(model, x, str(out), opset_version=opset, dynamo=False, input_names=["images"],
                              output_names=["output0"], dynamic_axes=axes, do_constant_folding=True)
        import onnx

        proto = onnx.load(str(out))
        onnx.checker.check_model(proto)
        if simplify:
            try:
                import onnxsim

                proto, ok = onnxsim.simplify(proto)
                LOGGER.info(f"onnx-simplifier: {'done' if ok else 'check failed, kept the original'}")
            except ImportError:
                LOGGER.info("--simplify skipped: onnxsim is not installed (pip install onnxsim)")
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(meta)
        onnx.save(proto, str(out))
        outputs.append(out)
        LOGGER.info(f"ONNX (opset {opset}{', dynamic batch/height/width' if dynamic else ''}): {out}")
        if int8:
            outputs.append(_int8(out, path, data, imgsz, calib_images, 1 if dynamic else batch_size,
                                 len(model.model) - 1, meta))
    for out in outputs:
        LOGGER.info(f"{out} ({out.stat().st_size / 1e6:.1f} MB): validate with python val.py --weights {out}"
                    + (f" --data {data}" if data else ""))
    return outputs


def _int8(fp32: Path, weights: Path, data: str | None, imgsz: int, count: int, batch: int, head: int,
          meta: dict) -> Path:
    import onnx

    from utils.checkpoints import dataset_for
    from utils.quantize import calibration_batches, quantize_int8

    data = dataset_for(weights, data, purpose="calibrating INT8 on the training images of")
    out = quantize_int8(fp32, fp32.with_name(f"{fp32.stem}_int8.onnx"), calibration_batches(data, imgsz, count, batch),
                        head)
    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps({**meta, "int8": True})
    onnx.save(proto, str(out))
    LOGGER.info(f"ONNX INT8 (QDQ, per-channel weights): {out}")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True)
    p.add_argument("--include", nargs="+", default=["onnx"], choices=["onnx", "torchscript"])
    p.add_argument("--imgsz", "--img", type=int, default=640)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width (ONNX)")
    p.add_argument("--half", action="store_true", help="FP16 export (CUDA only)")
    p.add_argument("--simplify", action="store_true", help="run onnx-simplifier when installed")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--device", default="cpu")
    p.add_argument("--int8", action="store_true", help="also write <weights>_int8.onnx: static INT8 post-training "
                   "quantisation (ONNX Runtime QDQ) calibrated on --data's training images")
    p.add_argument("--data", default=None, help="dataset YAML for INT8 calibration (default: the checkpoint's)")
    p.add_argument("--calib-images", type=int, default=200, help="calibration images for --int8")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        export(**vars(args))
    except (CheckpointError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
