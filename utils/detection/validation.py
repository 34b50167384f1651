"""val.py's job as a function: evaluate a detector (one weights file, an export, or several as an ensemble) on a
split of a dataset: COCO AP and AP_S (pycocotools) plus P, R and mAP, optionally sliced as detect.py --slice."""

from __future__ import annotations

import json
from pathlib import Path

from utils.boxes import check_max_det, yolo_label_rows
from utils.checkpoints.files import dataset_for, resolve_weights
from utils.data.dataset import YoloDataset
from utils.data.formats import load_dataset_config
from utils.data.images import set_max_pixels
from utils.data.loaders import create_dataloader
from utils.data.scan import describe_problems, scan_split
from utils.data.tiles import MAX_OVERLAP
from utils.deploy.backends import load_any
from utils.detection.evaluation import NmsSettings, evaluate, evaluate_sliced
from utils.detection.head_families import family_of
from utils.detection.metrics import COCO_KEYS, DetectionEvaluator, format_metric, tiny_bins_line
from utils.distributed import select_device
from utils.image_size import check_image_size
from utils.logging import LOGGER, increment_path
from utils.plots import plot_validation, validation_batch_plotter
from utils.precision import inference_half


def run_validation(data: str | None = None, weights: str | list[str] = "space_depth_s.pt", batch_size: int = 32,
                   imgsz: int = 640, conf_thres: float = 0.001, iou_thres: float | None = None, max_det: int = 300,
                   task: str = "val", device: str = "", workers: int = 2, single_cls: bool = False,
                   augment: bool = False, verbose: bool = False, save_txt: bool = False, save_conf: bool = False,
                   save_json: bool = False, project: str = "runs/val", name: str = "exp", exist_ok: bool = False,
                   half: bool = False, plots: bool = True, max_pixels: int | None = None,
                   slice_hw: list[int] | None = None, overlap: float = 0.2, merge: str = "nms",
                   evaluator: str | None = None) -> dict:
    """Evaluate ``weights`` on a split of ``data``; returns the metrics dict (also written as JSON). With
    ``slice_hw`` the images are predicted one by one as ``detect.py --slice`` does, and the full-image figures
    of the same pass are reported beside the sliced ones. ``iou_thres`` None: the model family's (YOLOv5 0.6,
    YOLOv8 / YOLO11 0.7, as yolov5's and ultralytics' val do)."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    check_max_det(max_det)
    check_image_size(imgsz, 1, batch_size=batch_size, quiet=True)  # before any work; rounded once loaded
    if max_pixels is not None:
        set_max_pixels(max_pixels)
    several = [resolve_weights(w) for w in (weights if isinstance(weights, (list, tuple)) else [weights])]
    weights = several if len(several) > 1 else several[0]
    data = dataset_for(several[0], data, purpose="validating on")
    torch_device = select_device(device)
    model = load_any(weights, torch_device).for_inference()
    half, line = inference_half(model, torch_device, half)
    if line:
        LOGGER.info(line)
    fixed = getattr(model, "fixed_shape", None)
    family = family_of(model)
    iou_thres = family.val_iou if iou_thres is None else iou_thres
    imgsz = _input_size(model, weights, imgsz, batch_size)
    data_config = load_dataset_config(data)
    split = "test" if task == "test" else "val"
    if data_config.get(split) is None:
        raise SystemExit(f"{data_config['yaml_file']}: no '{split}' split defined")
    names = ["object"] if single_cls else data_config["names"]
    if not single_cls and len(names) != model.nc:
        raise SystemExit(f"{weights}: model has {model.nc} classes but {data} names {len(names)}")
    scan = scan_split(data_config, split, workers=max(workers, 4))
    for line in describe_problems(scan, split):
        LOGGER.info(line)
    if slice_hw:
        return _run_sliced(weights, model, device, imgsz, conf_thres, iou_thres, max_det, half, scan, names,
                           data_config["annotations"].get(split) if not single_cls else None, single_cls,
                           (tuple(slice_hw), overlap, merge), Path(project) / name, exist_ok, evaluator)
    stride = int(model.stride.max())
    dataset = YoloDataset(scan, imgsz, batch_size, augment=False, rect=fixed is None, stride=stride,
                          single_cls=single_cls, preprocessing=family.preprocessing)
    loader = create_dataloader(dataset, batch_size, workers)
    official = data_config["annotations"].get(split)
    scorer = DetectionEvaluator(names, official_json=official if not single_cls else None,
                                use_pycocotools=task != "speed", coco_evaluator=evaluator,
                                closed_pr_curve=family.closed_pr_curve)
    save_dir = increment_path(Path(project) / name, exist_ok=exist_ok)
    on_batch = validation_batch_plotter(save_dir, names) if plots else None

    result = evaluate(model, loader, scorer, NmsSettings(conf_thres, iou_thres, max_det, multi_label=True),
                      half=half, on_batch=on_batch, augment=augment, single_cls=single_cls)
    report(result, names, verbose, official is not None, batch_size)
    if save_json:
        (save_dir / "predictions.json").write_text(json.dumps(yolov5_json_predictions(scorer)))
    if save_txt:
        write_label_files(scorer, save_dir / "labels", scan, save_conf)
    if plots:
        plot_validation(result, scorer.confusion.matrix, names, save_dir)
    summary = {k: v for k, v in result.items() if k not in {"curves", "coco_summary"}}
    summary.update(weights=" + ".join(map(str, several)), data=str(data), imgsz=imgsz, batch_size=batch_size,
                   conf_thres=conf_thres, iou_thres=iou_thres, max_det=max_det)
    (save_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    LOGGER.info(f"results saved to {save_dir}")
    return result


def _input_size(model, weights: Path, imgsz: int, batch_size: int) -> int:
    """A static export's own square size, else ``imgsz`` by the one size rule."""
    fixed = getattr(model, "fixed_shape", None)
    if fixed is None:
        return check_image_size(imgsz, int(model.stride.max()), batch_size=batch_size)
    if fixed[0] != fixed[1]:  # a static export: square letterboxed batches of its size
        raise SystemExit(f"{weights}: exported for {fixed[0]}x{fixed[1]} inputs; val.py letterboxes to a "
                         f"square (export a square --imgsz or use --dynamic)")
    if imgsz != fixed[0]:
        LOGGER.info(f"{weights}: a static {fixed[0]}x{fixed[1]} export; validating at {fixed[0]} "
                    f"(--imgsz {imgsz} ignored)")
    return fixed[0]


def _run_sliced(weights, model, device: str, imgsz: int, conf_thres: float, iou_thres: float, max_det: int, half: bool,
                scan, names: list[str], official, single_cls: bool, slicing: tuple, folder: Path,
                exist_ok: bool, evaluator: str | None) -> dict:
    """val.py --slice: the sliced figures, and the full-image figures of the same pass."""
    from utils.detection.predictor import Detector

    slice_hw, overlap, merge = slicing
    if min(slice_hw) < 32 or not 0 <= overlap <= MAX_OVERLAP:
        raise ValueError(f"--slice needs tiles of at least 32x32 and --overlap in [0, {MAX_OVERLAP:g}], got "
                         f"{slice_hw} {overlap}")
    detector = Detector(weights, device, imgsz, conf_thres, iou_thres, max_det, agnostic=single_cls, half=half,
                        model=model)
    full, sliced = evaluate_sliced(detector, scan, DetectionEvaluator(names, official, coco_evaluator=evaluator),
                                   DetectionEvaluator(names, official, coco_evaluator=evaluator), slice_hw, overlap,
                                   merge, single_cls)
    save_dir = increment_path(folder, exist_ok=exist_ok)
    for label, result in (("full image", full), (f"full image + {slice_hw[0]}x{slice_hw[1]} tiles, {merge}", sliced)):
        LOGGER.info(f"{label}: P {result['P']:.3f} R {result['R']:.3f} mAP50 {result['mAP50']:.3f} mAP50-95 "
                    f"{result['mAP50_95']:.3f} | COCO " + "  ".join(f"{k} {format_metric(result['coco'][k], 4)}"
                                                               for k in COCO_KEYS[:6]))
        LOGGER.info("  tiny objects: " + tiny_bins_line(result["coco"]))
    summary = {key: {k: v for k, v in r.items() if k not in {"curves", "coco_summary"}}
               for key, r in (("full", full), ("sliced", sliced))}
    summary.update(weights=str(weights), imgsz=detector.imgsz, slice=list(slice_hw), overlap=overlap, merge=merge)
    (save_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    LOGGER.info(f"results saved to {save_dir}")
    return {**sliced, "full_image": {k: v for k, v in full.items() if k != "curves"}}


def report(result: dict, names: list[str], verbose: bool, official: bool, batch_size: int) -> None:
    LOGGER.info(f"{'images':>10}{'instances':>11}{'P':>8}{'R':>8}{'mAP50':>8}{'mAP50-95':>10}")
    LOGGER.info(f"{result['images']:>10}{result['instances']:>11}{result['P']:>8.3f}{result['R']:>8.3f}"
                f"{result['mAP50']:>8.3f}{result['mAP50_95']:>10.3f}")
    if verbose:
        for row in result.get("per_class", []):
            LOGGER.info(f"{row['class']:>20}{row['instances']:>11}{row['P']:>8.3f}{row['R']:>8.3f}"
                        f"{row['AP50']:>8.3f}{row['AP50_95']:>10.3f}")
    if "coco" in result:
        gt = "the official annotations JSON" if official else (
            "a ground truth built from the YOLO labels (areas in original-image pixels, so 'small' is the "
            "same set of objects at every input size)")
        LOGGER.info(f"COCO evaluation against {gt}:")
        LOGGER.info("  " + "  ".join(f"{k} {format_metric(result['coco'][k], 4)}" for k in COCO_KEYS))
        LOGGER.info("  tiny objects: " + tiny_bins_line(result["coco"]))
    pre, inf, nms = result["speed_ms"]
    LOGGER.info(f"speed: {pre:.1f} ms pre-process, {inf:.1f} ms inference, {nms:.1f} ms NMS per image "
                f"(batch size {batch_size}, rectangular batches: figures depend on the batch size)")


def yolov5_json_predictions(evaluator: DetectionEvaluator) -> list[dict]:
    """Predictions as yolov5's val.py writes them: image_id from the annotations JSON when there is one, else
    int(stem) for numeric file names, else the stem; only image_id, category_id, bbox and score."""
    stems = {im["id"]: Path(im["file_name"]).stem for im in evaluator.gt_images}

    def image_id(internal: int) -> int | str:
        if evaluator.official is not None:
            return internal
        stem = stems[internal]
        return int(stem) if stem.isnumeric() else stem

    return [{"image_id": image_id(p["image_id"]), "category_id": p["category_id"], "bbox": p["bbox"],
             "score": p["score"]} for p in evaluator.coco_predictions]


def write_label_files(evaluator: DetectionEvaluator, folder: Path, scan, save_conf: bool) -> None:
    """Predictions as YOLO rows (class cx cy w h [conf], normalised) per image."""
    folder.mkdir(parents=True, exist_ok=True)
    shapes = {Path(p).name: hw for p, hw in zip(scan.images, scan.shapes)}
    ids = {im["id"]: im["file_name"] for im in evaluator.ground_truth()["images"]}
    per_image: dict[str, list[dict]] = {}
    for p in evaluator.coco_predictions:
        per_image.setdefault(Path(ids[p["image_id"]]).name, []).append(p)
    for file_name, predictions in per_image.items():
        classes = [evaluator.category_ids.index(p["category_id"]) if evaluator.official else p["category_id"]
                   for p in predictions]
        boxes = [(x, y, x + bw, y + bh) for x, y, bw, bh in (p["bbox"] for p in predictions)]
        scores = [p["score"] for p in predictions] if save_conf else None
        lines = yolo_label_rows(classes, boxes, shapes[file_name], scores)
        (folder / Path(file_name).with_suffix(".txt")).write_text("\n".join(lines) + "\n")
