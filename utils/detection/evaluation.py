"""The validation loop shared by val.py and train.py."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from utils.boxes import check_max_det, non_max_suppression, unletterbox_boxes
from utils.data.dataset import YoloDataset
from utils.detection.metrics import DetectionEvaluator, default_evaluator
from utils.engine.phase_timer import NO_TIMER, PhaseTimer
from utils.logging import LOGGER
from utils.precision import half_inputs, inference_autocast


@dataclass
class NmsSettings:
    """The NMS of an evaluation: thresholds in [0, 1], at most ``max_det`` (>= 1) boxes per image."""

    conf_thres: float = 0.001
    iou_thres: float = 0.6
    max_det: int = 300
    multi_label: bool = True

    def __post_init__(self) -> None:
        check_max_det(self.max_det)
        if not 0 <= self.conf_thres <= 1 or not 0 <= self.iou_thres <= 1:
            raise ValueError(f"--conf-thres and --iou-thres must be in [0, 1], got {self.conf_thres}, {self.iou_thres}")


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


@torch.inference_mode()
def evaluate(model: torch.nn.Module, loader: torch.utils.data.DataLoader, evaluator: DetectionEvaluator,
             nms: NmsSettings = NmsSettings(), half: bool = False, progress: bool = True,
             on_batch=None, augment: bool = False, single_cls: bool = False, loss_fn=None,
             phases: PhaseTimer = NO_TIMER) -> dict:
    """Run ``model`` over ``loader``, map detections back to original pixels and score them.

    Returns the evaluator's result with ``speed_ms`` = (pre-process, inference, NMS) per image.
    ``on_batch(batch_index, images, targets, paths, detections)`` may draw pictures. ``augment`` runs
    test-time augmentation (``DetectionModel.forward_augmented``). ``single_cls``: every prediction is class 0,
    like the labels (class-agnostic NMS), whatever the model's class count. ``loss_fn`` (the training loss):
    also returns the mean validation losses (box, obj, cls) as ``val_loss``. ``phases`` (a training run's
    :class:`~utils.engine.phase_timer.PhaseTimer`) is told the time spent loading, inferring, in NMS and scoring.
    """
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
    with tqdm(total=len(loader), desc="validating", disable=not progress, leave=False) as bar:
        for batch_index in range(len(loader)):
            with phases("val data"):
                images, targets, paths, metas = next(batches)
            with phases("val inference"):
                predictions, (t0, t1, t2) = _infer(model, images, targets, device, half, augment, loss_fn, loss_sum,
                                                   nms)
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
    if progress and evaluator.use_pycocotools:  # the scoring can take minutes on a COCO-sized set: say so
        scorer = evaluator.coco_evaluator or default_evaluator()
        LOGGER.info(f"COCO evaluation ({scorer}) of {seen} images, {len(evaluator.coco_predictions)} predictions ...")
    with phases("val metrics + COCO"):
        result = evaluator.result()
    result["speed_ms"] = tuple(1000 * t / max(seen, 1) for t in times)
    if loss_fn is not None:
        result["val_loss"] = (loss_sum / max(len(loader), 1)).tolist()
    return result


def _infer(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor, device: torch.device, half: bool,
           augment: bool, loss_fn, loss_sum: torch.Tensor,
           nms: NmsSettings) -> tuple[torch.Tensor | list[torch.Tensor], tuple[float, float, float]]:
    """Decoded predictions of one batch (final detections from an export with NMS inside) and the times
    (start, images ready, inference done)."""
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


def evaluate_sliced(detector, scan, full: DetectionEvaluator, sliced: DetectionEvaluator,
                    slice_hw: tuple[int, int], overlap: float = 0.2, merge: str = "nms", single_cls: bool = False,
                    progress: bool = True) -> tuple[dict, dict]:
    """Score a :class:`utils.detection.predictor.Detector` image by image exactly as ``detect.py --slice`` predicts: the
    full image alone (``full``) and the full image plus its tiles, merged (``sliced``), from one pass, so the
    difference is what slicing gains. Unreadable images are skipped with a line. Returns both results."""
    from utils.data.images import read_image

    full.reset()
    sliced.reset()
    for path, shape, labels in tqdm(list(zip(scan.images, scan.shapes, scan.labels)), desc="sliced validation",
                                    disable=not progress, leave=False):
        try:
            image = read_image(path)
        except ValueError as exc:
            LOGGER.info(f"skipped: {exc}")
            continue
        whole, merged = detector.predict_tensors(image, slice_hw, overlap, merge)
        for evaluator, det in ((full, whole), (sliced, merged)):
            det = det.clone()
            if single_cls:
                det[:, 5] = 0
            evaluator.process(det, labels, path, tuple(shape))
    return full.result(), sliced.result()
