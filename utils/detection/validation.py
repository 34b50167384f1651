"""Validation: the loop that scores a detector on a loader (shared by train.py and val.py), and val.py's job as
a function: evaluate a detector (one weights file, an export, or several as an ensemble) on a split of a dataset,
COCO AP and AP_S plus P, R and mAP, optionally sliced as detect.py --slice."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from utils.boxes import NmsSettings, check_max_det, non_max_suppression, unletterbox_boxes, yolo_label_rows
from utils.checkpoints.files import dataset_for, resolve_weights
from utils.data.dataset import YoloDataset
from utils.data.formats import load_dataset_config
from utils.data.images import DEFAULT_MAX_PIXELS
from utils.data.loaders import create_dataloader
from utils.data.scan import describe_problems, scan_split
from utils.data.tiles import Slicing
from utils.deploy.backends import load_any
from utils.detection.evaluator import COCO_KEYS, DetectionEvaluator, default_evaluator, format_metric, tiny_bins_line
from utils.detection.head_families import family_of
from utils.distributed import select_device
from utils.engine.phase_timer import NO_TIMER, PhaseTimer
from utils.image_size import check_image_size
from utils.logging import LOGGER, increment_path, live_progress
from utils.options import ConfigurationError, JobOptions, one_or_several
from utils.plots import validation_batch_plotter
from utils.precision import half_inputs, inference_autocast, inference_half
from utils.validation_plots import plot_validation


def prepare_images(images: torch.Tensor, device: torch.device, half: bool = False) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float in [0, 1] on ``device``, channels-last like the models that read it."""
    images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    return images.half().div_(255) if half else images.float().div_(255)


def validation_copy(model: torch.nn.Module, amp_dtype: torch.dtype | None) -> tuple[torch.nn.Module, bool]:
    """What a training run validates each epoch: a fused, channels-last copy of ``model`` (the EMA; it is not
    changed) and whether to run it in the run's reduced precision (``amp_dtype``: fp16 weights on CUDA, bf16
    autocast on the CPU), as the reference validates with half=amp. The final evaluation stays full precision."""
    inference = copy.deepcopy(model).for_inference()
    half = amp_dtype is not None
    if half and next(inference.parameters()).device.type == "cuda":
        inference.half()
    return inference, half


@dataclass
class PassSettings:
    """How one evaluation pass runs: its NMS, reduced precision (``half``), test-time augmentation, every box as
    one class (``single_cls``: class-agnostic NMS, class 0, like the labels), a progress bar."""

    nms: NmsSettings = field(default_factory=NmsSettings)
    half: bool = False
    augment: bool = False
    single_cls: bool = False
    progress: bool = True


@torch.inference_mode()
def evaluate(model: torch.nn.Module, loader: torch.utils.data.DataLoader, evaluator: DetectionEvaluator,
             settings: PassSettings | None = None, on_batch=None, loss_fn=None,
             phases: PhaseTimer = NO_TIMER) -> dict:
    """Run ``model`` over ``loader``, map detections back to original pixels and score them.

    Returns the evaluator's result with ``speed_ms`` = (pre-process, inference, NMS) per image.
    ``on_batch(batch_index, images, targets, paths, detections)`` may draw pictures. ``loss_fn`` (the training
    loss): also returns the mean validation losses as ``val_loss``. ``phases`` (a training run's
    :class:`~utils.engine.phase_timer.PhaseTimer`) is told the time spent loading, inferring, in NMS and scoring.
    """
    settings = settings or PassSettings()
    nms, single_cls = settings.nms, settings.single_cls
    if single_cls and getattr(model, "nms_inside", False):
        raise ValueError("--single-cls needs class-agnostic NMS, which an export with NMS inside cannot run: "
                         "validate the plain export")
    dataset: YoloDataset = loader.dataset
    labels_by_path = dict(zip(dataset.files, dataset.labels))
    device = next(model.parameters()).device
    was_training = getattr(model, "training", False)
    model.eval()
    evaluator.reset()
    times = [0.0, 0.0, 0.0]
    seen = 0
    loss_sum = torch.zeros(3, device=device)
    batches = iter(loader)
    with tqdm(total=len(loader), desc="validating", disable=not live_progress(settings.progress), leave=False) as bar:
        for batch_index in range(len(loader)):
            with phases("val data"):
                images, targets, paths, metas = next(batches)
            with phases("val inference"):
                predictions, (t0, t1, t2) = _infer(model, images, targets, device, settings, loss_fn,
                                                   loss_sum)
            with phases("NMS"):
                detections = predictions if isinstance(predictions, list) else non_max_suppression(
                    predictions.float(), nms.conf_thres, nms.iou_thres, multi_label=nms.multi_label,
                    max_det=nms.max_det, agnostic=single_cls)
                if single_cls:
                    for det in detections:
                        det[:, 5] = 0
                t3 = time.perf_counter()
            times = [a + b for a, b in zip(times, (t1 - t0, t2 - t1, t3 - t2))]
            with phases("val metrics + COCO"):
                if on_batch is not None:  # detections still in network-input pixels
                    on_batch(batch_index, images, targets, paths, detections)
                for det, path, (original_hw, gain, pad) in zip(detections, paths, metas):
                    det = det.cpu().clone()
                    det[:, :4] = unletterbox_boxes(det[:, :4], gain, pad, original_hw)
                    evaluator.process(det, labels_by_path[path], path, original_hw)
            seen += len(paths)
            bar.update(1)
    if was_training:
        model.train()
    if settings.progress and evaluator.use_pycocotools:  # the scoring can take minutes on a COCO-sized set: say so
        scorer = evaluator.coco_evaluator or default_evaluator()
        LOGGER.info(f"COCO evaluation ({scorer}) of {seen} images, {len(evaluator.coco_predictions)} predictions ...")
    with phases("val metrics + COCO"):
        result = evaluator.result()
    result["speed_ms"] = tuple(1000 * t / max(seen, 1) for t in times)
    if loss_fn is not None:
        result["val_loss"] = (loss_sum / max(len(loader), 1)).tolist()
    return result


def _infer(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, device: torch.device,
           settings: PassSettings, loss_fn,
           loss_sum: torch.Tensor) -> tuple[torch.Tensor | list[torch.Tensor], tuple[float, float, float]]:
    """Decoded predictions of one batch (final detections from an export with NMS inside) and the times
    (start, images ready, inference done)."""
    half, augment, nms = settings.half, settings.augment, settings.nms
    t0 = time.perf_counter()
    x = prepare_images(images, device, half_inputs(device, half))
    t1 = time.perf_counter()
    with inference_autocast(device, half):
        if getattr(model, "nms_inside", False):
            if augment or not nms.multi_label:
                raise ValueError("an export with NMS inside runs multi-label NMS only, without --augment")
            predictions = model.detect(x, nms.conf_thres, nms.iou_thres, nms.max_det)
        elif loss_fn is not None and not augment:
            predictions = _forward_with_loss(model, x, targets, loss_fn, loss_sum)
        else:
            predictions = model.forward_augmented(x) if augment else model(x)
            if isinstance(predictions, (tuple, list)):  # (decoded, raw maps)
                predictions = predictions[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return predictions, (t0, t1, time.perf_counter())


def _forward_with_loss(model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor, loss_fn,
                       loss_sum: torch.Tensor) -> torch.Tensor:
    """One forward pass giving both the raw maps (for the loss) and the decoded boxes."""
    head = model.detect
    head.training = True  # the head alone returns raw maps; every other layer stays in eval mode
    try:
        maps = model(x)
    finally:
        head.training = False
    loss_sum += loss_fn([m.float() for m in maps], targets.to(x.device))[1]
    return head.decode(maps)


def evaluate_sliced(detector, scan, full: DetectionEvaluator, sliced: DetectionEvaluator, slicing: Slicing,
                    single_cls: bool = False, progress: bool = True) -> tuple[dict, dict]:
    """Score a :class:`utils.detection.prediction.Detector` image by image exactly as ``detect.py --slice``
    predicts: the full image alone (``full``) and the full image plus its tiles, merged (``sliced``), from one
    pass, so the difference is what slicing gains. Unreadable images are skipped with a line. Returns both."""
    from utils.data.images import read_image

    full.reset()
    sliced.reset()
    for path, shape, labels in tqdm(list(zip(scan.images, scan.shapes, scan.labels)), desc="sliced validation",
                                    disable=not live_progress(progress), leave=False):
        try:
            image = read_image(path, detector.max_pixels)
        except ValueError as exc:
            LOGGER.info(f"skipped: {exc}")
            continue
        whole, merged = detector.predict_tensors(image, slicing.tile_hw, slicing.overlap, slicing.merge)
        for evaluator, det in ((full, whole), (sliced, merged)):
            det = det.clone()
            if single_cls:
                det[:, 5] = 0
            evaluator.process(det, labels, path, tuple(shape))
    return full.result(), sliced.result()


@dataclass
class ValidationOptions(JobOptions):
    """val.py's options (its flags' names), checked when made. ``iou_thres`` None: the model family's (YOLOv5
    0.6, YOLOv8 / YOLO11 0.7, as yolov5's and ultralytics' val do). ``slice_hw``: predict image by image as
    ``detect.py --slice`` does, and report the full-image figures of the same pass beside the sliced ones."""

    data: str | None = None  # None: the dataset the checkpoint was trained on, else coco128.yaml
    weights: str | list[str] = "space_depth_s.pt"  # several: an ensemble
    batch_size: int = 32
    imgsz: int = 640
    conf_thres: float = 0.001
    iou_thres: float | None = None
    max_det: int = 300
    task: str = "val"  # val, test (the test split) or speed (no COCO scoring)
    device: str = ""
    workers: int = 2
    max_pixels: int | None = None
    single_cls: bool = False
    augment: bool = False
    evaluator: str | None = None  # the COCO scorer: faster-coco-eval or pycocotools (None: the fastest present)
    verbose: bool = False
    save_txt: bool = False
    save_conf: bool = False
    save_json: bool = False
    project: str = "runs/val"
    name: str = "exp"
    exist_ok: bool = False
    half: bool = False
    slice_hw: list[int] | None = None
    overlap: float = 0.2
    merge: str = "nms"
    plots: bool = True

    def check(self) -> None:
        self.weights = one_or_several(self.weights)
        problems = [
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.task in ("val", "test", "speed"), f"--task {self.task}: val, test or speed"),
            (0 <= self.conf_thres <= 1 and (self.iou_thres is None or 0 <= self.iou_thres <= 1),
             f"--conf-thres and --iou-thres must be in [0, 1], got {self.conf_thres}, {self.iou_thres}"),
            (self.workers >= 0, f"--workers must be >= 0, got {self.workers}"),
            (self.max_pixels is None or self.max_pixels >= 1, f"--max-pixels must be >= 1, got {self.max_pixels}"),
            (self.evaluator in (None, "faster-coco-eval", "pycocotools"),
             f"--evaluator {self.evaluator}: faster-coco-eval or pycocotools"),
        ]
        for ok, message in problems:
            if not ok:
                raise ConfigurationError(message)
        check_max_det(self.max_det)
        check_image_size(self.imgsz, 1, batch_size=self.batch_size, quiet=True)  # rounded once the model is loaded
        if self.slice_hw:
            Slicing(tuple(self.slice_hw), self.overlap, self.merge)


def run_validation(options: ValidationOptions | None = None, **keywords) -> dict:
    """Evaluate ``options.weights`` on a split of ``options.data`` (options as an object, or as keywords);
    returns the metrics dict (also written as metrics.json in the run folder)."""
    o = options or ValidationOptions.from_dict(keywords, "run_validation")
    several = [resolve_weights(w) for w in (o.weights if isinstance(o.weights, (list, tuple)) else [o.weights])]
    weights = several if len(several) > 1 else several[0]
    data = dataset_for(several[0], o.data, purpose="validating on")
    device = select_device(o.device)
    model = load_any(weights, device).for_inference()
    half, line = inference_half(model, device, o.half)
    if line:
        LOGGER.info(line)
    fixed = getattr(model, "fixed_shape", None)
    family = family_of(model)
    nms = NmsSettings(o.conf_thres, family.val_iou if o.iou_thres is None else o.iou_thres, o.max_det)
    imgsz = _input_size(model, weights, o.imgsz, o.batch_size)
    data_config = load_dataset_config(data)
    split = "test" if o.task == "test" else "val"
    if data_config.get(split) is None:
        raise ConfigurationError(f"{data_config['yaml_file']}: no '{split}' split defined")
    names = ["object"] if o.single_cls else data_config["names"]
    if not o.single_cls and len(names) != model.nc:
        raise ConfigurationError(f"{weights}: model has {model.nc} classes but {data} names {len(names)}")
    scan = scan_split(data_config, split, workers=max(o.workers, 4), max_pixels=o.max_pixels or DEFAULT_MAX_PIXELS)
    for line in describe_problems(scan, split):
        LOGGER.info(line)
    official = data_config["annotations"].get(split) if not o.single_cls else None
    save_dir = increment_path(Path(o.project) / o.name, exist_ok=o.exist_ok)
    if o.slice_hw:
        from utils.detection.prediction import Detector

        nms.agnostic = o.single_cls
        detector = Detector(weights, device, imgsz, nms, half=half, model=model)
        detector.max_pixels = o.max_pixels or DEFAULT_MAX_PIXELS
        return _run_sliced(detector, scan, names, official, Slicing(tuple(o.slice_hw), o.overlap, o.merge),
                           save_dir, o)
    dataset = YoloDataset(scan, imgsz, o.batch_size, augment=False, rect=fixed is None,
                          stride=int(model.stride.max()), single_cls=o.single_cls, preprocessing=family.preprocessing)
    loader = create_dataloader(dataset, o.batch_size, o.workers)
    scorer = DetectionEvaluator(names, official_json=official, use_pycocotools=o.task != "speed",
                                coco_evaluator=o.evaluator, closed_pr_curve=family.closed_pr_curve)
    on_batch = validation_batch_plotter(save_dir, names) if o.plots else None
    settings = PassSettings(nms, half=half, augment=o.augment, single_cls=o.single_cls)
    result = evaluate(model, loader, scorer, settings, on_batch=on_batch)
    report(result, names, o.verbose, official is not None, o.batch_size)
    if o.save_json:
        (save_dir / "predictions.json").write_text(json.dumps(yolov5_json_predictions(scorer)))
    if o.save_txt:
        write_label_files(scorer, save_dir / "labels", scan, o.save_conf)
    if o.plots:
        plot_validation(result, scorer.confusion.matrix, names, save_dir)
    summary = {k: v for k, v in result.items() if k not in {"curves", "coco_summary"}}
    summary.update(weights=" + ".join(map(str, several)), data=str(data), imgsz=imgsz, batch_size=o.batch_size,
                   conf_thres=nms.conf_thres, iou_thres=nms.iou_thres, max_det=nms.max_det)
    (save_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    LOGGER.info(f"results saved to {save_dir}")
    return result


def _input_size(model, weights: Path, imgsz: int, batch_size: int) -> int:
    """A static export's own square size, else ``imgsz`` by the one size rule."""
    fixed = getattr(model, "fixed_shape", None)
    if fixed is None:
        return check_image_size(imgsz, int(model.stride.max()), batch_size=batch_size)
    if fixed[0] != fixed[1]:  # a static export: square letterboxed batches of its size
        raise ConfigurationError(f"{weights}: exported for {fixed[0]}x{fixed[1]} inputs; val.py letterboxes to a "
                                 f"square (export a square --imgsz or use --dynamic)")
    if imgsz != fixed[0]:
        LOGGER.info(f"{weights}: a static {fixed[0]}x{fixed[1]} export; validating at {fixed[0]} "
                    f"(--imgsz {imgsz} ignored)")
    return fixed[0]


def _run_sliced(detector, scan, names: list[str], official, slicing: Slicing, save_dir: Path,
                options: ValidationOptions) -> dict:
    """val.py --slice: the sliced figures, and the full-image figures of the same pass."""
    full, sliced = (DetectionEvaluator(names, official, coco_evaluator=options.evaluator) for _ in range(2))
    full, sliced = evaluate_sliced(detector, scan, full, sliced, slicing, options.single_cls)
    tiles = f"{slicing.tile_hw[0]}x{slicing.tile_hw[1]}"
    for label, result in (("full image", full), (f"full image + {tiles} tiles, {slicing.merge}", sliced)):
        LOGGER.info(f"{label}: P {result['P']:.3f} R {result['R']:.3f} mAP50 {result['mAP50']:.3f} mAP50-95 "
                    f"{result['mAP50_95']:.3f} | COCO " + "  ".join(f"{k} {format_metric(result['coco'][k], 4)}"
                                                               for k in COCO_KEYS[:6]))
        LOGGER.info("  tiny objects: " + tiny_bins_line(result["coco"]))
    summary = {key: {k: v for k, v in r.items() if k not in {"curves", "coco_summary"}}
               for key, r in (("full", full), ("sliced", sliced))}
    summary.update(weights=str(detector.weights), imgsz=detector.imgsz, slice=list(slicing.tile_hw),
                   overlap=slicing.overlap, merge=slicing.merge)
    (save_dir / "metrics.json").write_text(json.dumps(summary, indent=1))
    LOGGER.info(f"results saved to {save_dir}")
    return {**sliced, "full_image": {k: v for k, v in full.items() if k != "curves"}}


def report(result: dict, names: list[str], verbose: bool, official: bool, batch_size: int) -> None:
    """val.py's log: P, R, mAP (per class with ``verbose``), COCO AP and AP_S, the tiny bins and the speed."""
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
