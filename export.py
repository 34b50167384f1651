"""Export a trained model for deployment: ONNX, TorchScript, OpenVINO IR, and INT8 ONNX.

    python export.py --weights runs/train/exp/weights/best.pt --include onnx torchscript --dynamic
    python export.py --weights best.pt --include onnx --int8 --data coco128.yaml --imgsz 320   # + best_int8.onnx
    python export.py --weights best.pt --include openvino --half                  # best_openvino_model/ (FP16)
    python export.py --weights best.pt --include openvino --int8 --data coco128.yaml   # + best_int8_openvino_model/
    python export.py --weights best.pt --include engine --half --device 0         # best.engine (TensorRT, CUDA)
    python export.py --weights best.pt --include onnx --nms --dynamic             # best_nms.onnx: final boxes
"""

from __future__ import annotations

import argparse

from utils.engine.command_line import prefer_sleeping_threads  # argparse only: --help stays instant

prefer_sleeping_threads()  # before PyTorch loads

FORMATS = ("onnx", "torchscript", "openvino", "engine")  # utils.deploy.exporters.FORMATS (a test keeps them equal)


def run(**options) -> list:
    """export.py from Python with its options as keywords (``include`` a list of FORMATS, default onnx); returns
    the paths written. See utils.deploy.exporters.export."""
    from utils.deploy.exporters import export as export_model
    from utils.options import our_names

    options = our_names(options, "plots")
    options.setdefault("include", ["onnx"])
    return export_model(**options)


def export(weights: str, include: list[str], **options) -> list:
    """utils.deploy.exporters.export (the name earlier releases used)."""
    return run(weights=weights, include=include, **options)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", required=True)
    p.add_argument("--include", nargs="+", default=["onnx"], choices=FORMATS)
    p.add_argument("--imgsz", "--img", type=int, nargs="+", default=[640], help="size, or H W (rectangular)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width (ONNX)")
    p.add_argument("--half", action="store_true", help="FP16: ONNX (head in FP32) and OpenVINO IR anywhere, "
                   "TensorRT engine and TorchScript with --device 0 (CUDA)")
    p.add_argument("--simplify", action="store_true", help="simplify the ONNX graph (onnxslim or onnxsim, when "
                   "installed)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--device", default="cpu")
    p.add_argument("--int8", action="store_true", help="also write INT8 forms, calibrated on --data's training "
                   "images: <weights>_int8.onnx (ONNX Runtime static QDQ) with onnx, "
                   "<weights>_int8_openvino_model/ (NNCF) with openvino")
    p.add_argument("--data", default=None, help="dataset YAML for INT8 calibration (default: the checkpoint's)")
    p.add_argument("--calib-images", type=int, default=200, help="calibration images for --int8")
    p.add_argument("--nms", action="store_true", help="ONNX / OpenVINO graph with NMS inside: <weights>_nms.onnx "
                   "returns final boxes, scores and classes (thresholds are graph inputs)")
    p.add_argument("--max-det", type=int, default=300, help="--nms: boxes kept per class and image")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from utils.faces import run_face

    run_face(run, **vars(args))


if __name__ == "__main__":
    main()
