"""Detection as a training task: YOLO data, a DetectionModel (new, from weights or resumed), the loss of its head
family (YOLOv5's anchors with AutoAnchor, or the anchor-free YOLOv8 / YOLO11 head), COCO evaluation with AP_S and
the tiny bins, and yolov5's results columns.

    from utils.detection.task import train
    train(TrainConfig(cfg="space_depth_n.yaml", epochs=3))       # or train({"epochs": 3}), train(epochs=3)
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler

from models.loading import load_model, model_from_weights
from models.parser import load_config
from models.spd_transfer import spd_config
from models.yolo import DetectionModel
from utils import distributed as dist_utils
from utils.boxes import NmsSettings
from utils.checkpoints.files import load_checkpoint, resolve_weights, write_slim
from utils.data.augmentations import BoxRule
from utils.data.dataset import YoloDataset
from utils.data.formats import DatasetError, load_dataset_config
from utils.data.images import DEFAULT_MAX_PIXELS
from utils.data.loaders import create_dataloader
from utils.data.scan import describe_problems, scan_split
from utils.data.tiles import tile_scan
from utils.detection.anchors import check_anchors
from utils.detection.evaluator import COCO_KEYS, TINY_KEYS, DetectionEvaluator, fitness, format_metric, tiny_bins_line
from utils.detection.head_families import ANCHOR_BASED, HeadFamily, family_of_config
from utils.detection.options import DEFAULT_CFG, DetectionOptions
from utils.detection.validation import PassSettings, evaluate, prepare_images, validation_copy
from utils.engine.config import TrainConfig
from utils.engine.contract import RunContext
from utils.engine.run_folder import find_latest_last
from utils.engine.trainer import Trainer, TrainingStopped
from utils.image_size import check_image_size
from utils.logging import LOGGER
from utils.plots import plot_batch, plot_labels, validation_batch_plotter
from utils.validation_plots import plot_validation


def train(config: TrainConfig | dict | None = None, callbacks: list | tuple = (), **options: Any) -> dict:
    """Train a detector; ``config`` as a TrainConfig or dict, or options as keywords; ``callbacks``: hook
    objects. Returns the final metrics and ``save_dir``."""
    config = detection_config(config, **options)
    return Trainer(choose_finetune_recipe(config), DetectionTask(run_family(config)), callbacks).run()


def detection_config(config: TrainConfig | dict | None = None, **options: Any) -> TrainConfig:
    """train.py's options (a TrainConfig, a flat dict or keywords) checked, with DetectionOptions and the
    detection defaults for a new run without --weights: space_depth_n.yaml, and its head family's hyp file
    (hyp.quick.yaml for YOLOv5 graphs, hyp.anchor_free.yaml for YOLOv8 / YOLO11)."""
    values = config.to_dict() if isinstance(config, TrainConfig) else dict(config or {})
    config = TrainConfig.from_dict({**values, **options}, task_options=DetectionOptions)
    if config.resume or config.weights:
        return config
    cfg = config.cfg or DEFAULT_CFG
    return config.replace(cfg=cfg, hyp=config.hyp or family_of_config(load_config(cfg)).default_hyp)


def run_family(config: TrainConfig) -> HeadFamily:
    """The head family a run trains: of the resumed checkpoint, else of --cfg, else of the --weights' graph."""
    if config.resume:
        last = Path(config.resume) if isinstance(config.resume, str) else find_latest_last(Path(config.project))
        return family_of_config((load_checkpoint(last).get("model") or {}).get("config"))
    if config.cfg:
        return family_of_config(load_config(config.cfg))
    if config.weights:
        return family_of_config((load_checkpoint(resolve_weights(config.weights)).get("model") or {}).get("config"))
    return ANCHOR_BASED


def choose_finetune_recipe(config: TrainConfig) -> TrainConfig:
    """``--weights`` without ``--hyp``: hyp.finetune.yaml when the dataset has the checkpoint's classes (its head
    is kept: the same domain), else hyp.finetune_new_domain.yaml (a new head, images the weights have not seen);
    the choice and its reason are logged."""
    if config.hyp or not config.weights or config.resume:
        return config
    ckpt = load_checkpoint(resolve_weights(config.weights))
    theirs = list((ckpt.get("model") or {}).get("names") or [])
    ours = ["object"] if config.task_options.single_cls else load_dataset_config(config.data)["names"]
    family = run_family(config)
    if not family.has_anchors:
        LOGGER.info(f"--weights without --hyp: fine-tuning with {family.default_hyp}, ultralytics' recipe for the "
                    f"anchor-free head ({'the same' if theirs == ours else 'new'} classes); pass --hyp to choose "
                    f"another")
        return config.replace(hyp=family.default_hyp)
    if theirs == ours:
        hyp, why = "hyp.finetune.yaml", f"the dataset has the checkpoint's {len(ours)} classes (its head is kept)"
    else:
        hyp = "hyp.finetune_new_domain.yaml"
        why = (f"the dataset's {len(ours)} classes {_short(ours)} are not the checkpoint's {len(theirs)} "
               f"{_short(theirs)}: a new head and a new domain (BatchNorm statistics adapt, lr 0.01)")
    LOGGER.info(f"--weights without --hyp: fine-tuning with {hyp}, because {why}; pass --hyp to choose another")
    return config.replace(hyp=hyp)


class DetectionTask:
    """The detection task of :class:`utils.engine.trainer.Trainer`, for the models of one head ``family``."""

    options_class = DetectionOptions

    def __init__(self, family: HeadFamily = ANCHOR_BASED) -> None:
        self.family = family
        self.hyp_schema = family.hyp_schema
        self.csv_keys = family.csv_keys
        self.loss_names = family.loss_names

    # ------------------------------------------------------------------------------------------ setup
    def build_model(self, ctx: RunContext) -> None:
        """The dataset (read and checked), the model on the device, its frozen layers and the image size."""
        config, options = ctx.config, ctx.options
        self._load_data(ctx)
        self.model, self.pretrained_head = self._build_model(ctx)
        self.model.names = self.names
        self.model.to(ctx.device, memory_format=torch.channels_last)  # 1.2-1.3x faster CPU steps
        self._freeze(options.freeze)
        self.grid = max(int(self.model.stride.max()), 32)
        self.imgsz = check_image_size(config.imgsz, self.grid, batch_size=max(config.batch_size // ctx.world, 1),
                                      device=str(ctx.device) if ctx.device.type == "cuda" else None,
                                      quiet=not ctx.main)
        if ctx.main:
            LOGGER.info(self.model.info(self.imgsz))
        if options.tile:  # windows scaled at the size the run trains at
            self._tile(ctx)

    def build_data(self, ctx: RunContext, batch_size: int) -> None:
        """Loaders for this process's batch, AutoAnchor, the loss and labels.jpg."""
        if self.model.anchor_based != self.family.has_anchors:
            raise ValueError(f"the model's head is {'anchor-based' if self.model.anchor_based else 'anchor-free'}, "
                             f"the run was set up for the {self.family.name} family")
        self._build_loaders(ctx, batch_size)
        if self.family.has_anchors and ctx.resume_state is None and not ctx.options.noautoanchor:
            self._auto_anchor(ctx, self.pretrained_head)
        self.loss_fn = self.family.build_loss(self.model, ctx.hyp, ctx.config.label_smoothing, self.imgsz)
        if ctx.main and ctx.resume_state is None and not ctx.config.noplots:
            plot_labels(self.train_set.labels, self.names, ctx.save_dir / "labels.jpg")

    def _load_data(self, ctx: RunContext) -> None:
        config, options = ctx.config, ctx.options
        with dist_utils.main_process_first():
            self.data = load_dataset_config(config.data)
            limit = options.max_pixels or DEFAULT_MAX_PIXELS
            self.train_scan = scan_split(self.data, "train", max_pixels=limit)
            self.val_scan = scan_split(self.data, "val", max_pixels=limit) if self.data.get("val") else None
        self.names = ["object"] if options.single_cls else self.data["names"]
        self.fingerprint = scan_fingerprint(self.train_scan, self.val_scan)  # of the images, before any tiling
        self.image_counts = {"images": len(self.train_scan.images), "boxes": self.train_scan.n_boxes}
        if ctx.resume_state is not None:
            self._check_resumed_data(ctx.resume_state.get("data") or {}, config)
        if ctx.main:
            _report_scan(self.train_scan, "train", ctx.save_dir)
            if self.val_scan is not None:
                _report_scan(self.val_scan, "val", ctx.save_dir)

    def _tile(self, ctx: RunContext) -> None:
        """--tile: the training split (and with --val-tiles the validation split) as windows of the images."""
        config, options, hyp = ctx.config, ctx.options, ctx.hyp
        rule = BoxRule(float(hyp.get("min_box_side", 2.0)), float(hyp.get("min_box_area", 0.1)))
        splits = [("train", "train_scan")] + ([("val", "val_scan")] if options.val_tiles and self.val_scan else [])
        for split, attribute in splits:
            tiled, summary = tile_scan(getattr(self, attribute), options.tile, options.tile_overlap,
                                       options.tile_empty if split == "train" else 1.0, rule, self.imgsz,
                                       config.seed)
            setattr(self, attribute, tiled)
            if ctx.main:
                LOGGER.info(summary.line(split, options.tile, options.tile_overlap,
                                         options.tile_empty if split == "train" else 1.0))

    def _check_resumed_data(self, saved: dict, config: TrainConfig) -> None:
        """The classes must be those the checkpoint was trained on; other images or labels only when asked."""
        source = f"--resume {config.resume}"
        if saved.get("names") is not None and list(saved["names"]) != list(self.data["names"]):
            raise DatasetError(f"{source}: {self.data['yaml_file']} now names {len(self.data['names'])} classes "
                               f"{_short(self.data['names'])}, the checkpoint was trained on {len(saved['names'])} "
                               f"{_short(saved['names'])}; a resumed run cannot change its classes (start a new "
                               f"run with --weights {config.resume})")
        then = saved.get("fingerprint")
        if then is None or then == self.fingerprint:
            return
        counts = saved.get("counts", {})
        change = (f"{counts.get('images', '?')} images / {counts.get('boxes', '?')} boxes then, "
                  f"{len(self.train_scan.images)} / {self.train_scan.n_boxes} now (train)")
        if not config.resume_changed_data:
            raise DatasetError(f"{source}: the training or validation images or labels changed since the checkpoint "
                               f"({change}); pass --resume-changed-data to continue on the new data")
        LOGGER.warning(f"{source}: continuing on changed data ({change}), as --resume-changed-data asked")

    def _build_model(self, ctx: RunContext) -> tuple[DetectionModel, bool]:
        """(model, whether its head came trained with its anchors)."""
        config, options, nc = ctx.config, ctx.options, len(self.names)
        if ctx.resume_state is not None:
            model = DetectionModel(ctx.resume_state["model"]["config"])
            model.load_state_dict(ctx.resume_state["model"]["state_dict"])
            return model, False
        if config.weights:
            source = load_checkpoint(resolve_weights(config.weights))
            model, report = model_from_weights(source, config.cfg or None, nc, spd=options.spd,
                                               allow_partial=options.partial_transfer)
            (LOGGER.info if report.function_preserving else LOGGER.warning)(report.line(config.weights))
            head_kept = f"model.{len(model.model) - 1}.m.0.weight" not in report.skipped and report.mode != "partial"
            return model, head_kept
        return DetectionModel(spd_config(config.cfg).config if options.spd else config.cfg, nc=nc), False

    def _freeze(self, freeze: list[int]) -> None:
        """--freeze 10 freezes layers 0-9; --freeze 0 3 5 freezes those layers. Fixed tensors stay fixed (the DFL's
        bin values: they are no weights, and no loss reaches them, which DDP would refuse)."""
        layers = list(range(freeze[0])) if len(freeze) == 1 else list(freeze)
        n = len(self.model.model)
        if any(i >= n - 1 for i in layers):
            raise ValueError(f"--freeze {' '.join(map(str, freeze))}: the model has {n} layers and its head "
                             f"(layer {n - 1}) must train")
        for name, p in self.model.named_parameters():
            p.requires_grad_(p.requires_grad and not any(name.startswith(f"model.{i}.") for i in layers))

    def _build_loaders(self, ctx: RunContext, batch: int) -> None:
        config, options = ctx.config, ctx.options
        self.train_set = YoloDataset(self.train_scan, self.imgsz, batch, augment=True, hyp=ctx.hyp,
                                     rect=options.rect, stride=self.grid, seed=config.seed,
                                     cache_images=options.cache, single_cls=options.single_cls,
                                     reduced_decoding=not options.exact_decode)
        self.train_set.total_epochs = ctx.config.total_epochs  # for close_mosaic
        sampler = DistributedSampler(self.train_set, num_replicas=ctx.world, rank=ctx.rank,
                                     shuffle=not options.rect, seed=config.seed)
        self.train_loader = create_dataloader(self.train_set, batch, config.workers, sampler=sampler,
                                              seed=config.seed)
        self.val_loader = self.evaluator = None
        if ctx.main and self.val_scan is not None:
            val_set = YoloDataset(self.val_scan, self.imgsz, batch * 2, augment=False, rect=True, stride=self.grid,
                                  single_cls=options.single_cls, preprocessing=self.family.preprocessing)
            self.val_loader = create_dataloader(val_set, batch * 2, config.workers)
            official = None if options.single_cls or options.val_tiles else self.data["annotations"].get("val")
            self.evaluator = DetectionEvaluator(self.names, official_json=official,
                                                closed_pr_curve=self.family.closed_pr_curve)

    def _auto_anchor(self, ctx: RunContext, pretrained_head: bool) -> None:
        detect = self.model.detect
        if pretrained_head:
            LOGGER.info("AutoAnchor: kept the pretrained head's anchors (the head was trained for them)")
        elif ctx.main:
            new, line = check_anchors(detect.anchors, self.model.stride, self.train_set.shapes,
                                      self.train_set.labels, self.imgsz, ctx.hyp["anchor_t"],
                                      seed=ctx.config.seed)
            LOGGER.info(line)
            if new is not None:
                detect.anchors[:] = new.to(ctx.device)
        if ctx.distributed:
            torch.distributed.broadcast(detect.anchors, 0)

    # ------------------------------------------------------------------------------------ training
    def forward_loss(self, model: torch.nn.Module, batch: Any, ctx: RunContext
                     ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The head family's loss of one batch (sum over the batch), its terms and the batch size."""
        images, targets, paths, _ = batch
        state = ctx.progress
        images = prepare_images(images, ctx.device)
        if ctx.options.multi_scale:
            seed = state.epoch * 100_003 + state.batch_index + ctx.config.seed
            images = _random_rescale(images, self.imgsz, self.grid, seed)
        maps = model(images)
        with ctx.phases("loss"):
            loss, items = self.loss_fn(maps, targets.to(ctx.device))
        with ctx.phases("plots"):
            self._picture_first_batches(ctx, images, targets, paths)
        return loss, items, images.shape[0]

    def _picture_first_batches(self, ctx: RunContext, images: torch.Tensor, targets: torch.Tensor,
                               paths: list[str]) -> None:
        state, i = ctx.progress, ctx.progress.batch_index
        if ctx.main and state.epoch == state.start_epoch and i < 3 and not ctx.config.noplots:
            picture = ctx.save_dir / f"train_batch{i}.jpg"
            plot_batch(images.mul(255).byte(), targets, picture, self.names, paths=paths)
            ctx.results.add_image(f"train_batch{i}", cv2.imread(str(picture))[..., ::-1].copy(), state.epoch)

    # ---------------------------------------------------------------------------------- evaluation
    def validate(self, model: torch.nn.Module, ctx: RunContext) -> dict:
        """The EMA model's metrics on the val split (a fused copy, the run's precision)."""
        if self.val_loader is None:
            return {}
        self.evaluator.use_pycocotools = not ctx.options.fast_val
        inference, half = validation_copy(model, ctx.amp_dtype)
        settings = PassSettings(NmsSettings(iou_thres=self.family.val_iou), half=half, progress=ctx.main)
        return evaluate(inference, self.val_loader, self.evaluator, settings, loss_fn=self.loss_fn, phases=ctx.phases)

    def fitness(self, metrics: dict) -> float:
        """0.1 mAP50 + 0.9 mAP50-95: what best.pt maximises."""
        return fitness(metrics)

    def results_row(self, mean_loss: torch.Tensor, metrics: dict, lrs: list[float]) -> list[Any]:
        """One results.csv row: losses, P R mAP, val losses, learning rates, COCO figures."""
        if self.family.has_anchors and float(mean_loss[0]) == 0.0 and self.train_scan.n_boxes:  # no box met an anchor
            raise TrainingStopped(
                f"no target was assigned to any anchor in a whole epoch ({self.train_scan.n_boxes} training boxes): "
                f"the model cannot learn boxes. Check the hyp file's anchor_t and the model's anchors (AutoAnchor "
                f"line above) against the box sizes at --imgsz {self.imgsz}")
        coco = metrics.get("coco", {})
        val_loss = metrics.get("val_loss", [math.nan] * 3)
        return ([*[round(float(v), 5) for v in mean_loss.tolist()],
                 *[round(float(metrics.get(k, 0.0)), 5) for k in ("P", "R", "mAP50", "mAP50_95")],
                 *[round(float(v), 5) for v in val_loss], *[float(v) for v in lrs],
                 *[round(float(coco.get(k, math.nan)), 5) for k in COCO_KEYS + TINY_KEYS]])

    def describe(self, metrics: dict) -> str:
        """One log line: P, R, mAP and the COCO AP / AP_S."""
        coco = metrics.get("coco", {})
        line = (f"P {metrics['P']:.3f} R {metrics['R']:.3f} mAP50 {metrics['mAP50']:.3f} mAP50-95 "
                f"{metrics['mAP50_95']:.3f} | COCO " + " ".join(f"{k} {format_metric(coco.get(k))}"
                                                              for k in ("AP", "AP_S", "AP_M", "AP_L")))
        return line + (f"\n  tiny objects: {tiny_bins_line(coco)}" if "n_vt" in coco else "")

    def checkpoint_extras(self) -> dict:
        """The dataset (names, fingerprint) kept in every checkpoint."""
        return {"data": {"yaml": self.data["yaml_file"], "names": self.data["names"], "fingerprint": self.fingerprint,
                         "counts": self.image_counts}}

    def finish(self, ctx: RunContext) -> dict:
        """best.pt (else last.pt) slimmed to fp16 EMA weights, then scored as saved, with its pictures."""
        if ctx.main:
            LOGGER.info(_dropped_boxes_line(self.train_set, self.train_scan))
        weights = ctx.weights_dir
        best = weights / "best.pt" if (weights / "best.pt").exists() else weights / "last.pt"
        if not best.exists():
            return {}
        write_slim(best, {"dataset": {"yaml": self.data["yaml_file"], "names": self.data["names"],
                                      "fingerprint": self.fingerprint}})
        if self.val_loader is None:
            return {}
        self.evaluator.use_pycocotools = True  # the final figures are always full, --fast-val or not
        plots = not ctx.config.noplots
        metrics = evaluate(load_model(best, ctx.device), self.val_loader, self.evaluator,
                           PassSettings(NmsSettings(iou_thres=self.family.val_iou), progress=False),
                           loss_fn=self.loss_fn,  # val losses too (evolve.csv's columns)
                           on_batch=validation_batch_plotter(ctx.save_dir, self.names) if plots else None)
        metrics["loss_names"] = list(self.loss_names)  # what val_loss holds (evolve.csv's columns)
        if plots:
            plot_validation(metrics, self.evaluator.confusion.matrix, self.names, ctx.save_dir)
        coco = metrics.get("coco", {})
        LOGGER.info(f"{best}: mAP50 {metrics['mAP50']:.3f} mAP50-95 {metrics['mAP50_95']:.3f} | COCO AP "
                    f"{format_metric(coco.get('AP'), 4)} AP50 {format_metric(coco.get('AP50'), 4)} AP_S "
                    f"{format_metric(coco.get('AP_S'), 4)}")
        return metrics


# ---------------------------------------------------------------------------------------- helpers
def _random_rescale(images: torch.Tensor, imgsz: int, gs: int, seed: int) -> torch.Tensor:
    g = np.random.default_rng(seed)
    size = int(g.uniform(imgsz * 0.5, imgsz * 1.5 + gs)) // gs * gs
    factor = size / max(images.shape[2:])
    if factor == 1:
        return images
    shape = [math.ceil(x * factor / gs) * gs for x in images.shape[2:]]
    return torch.nn.functional.interpolate(images, size=shape, mode="bilinear", align_corners=False)


def _dropped_boxes_line(dataset: YoloDataset, scan) -> str:
    """Where training boxes went missing: images the scan skipped, and boxes the augmentation dropped (by the
    hyp keys min_box_side / min_box_area), over the whole run (every loader worker)."""
    dropped = dataset.dropped_boxes()
    total = sum(dropped.values())
    parts = ", ".join(f"{n} {reason}" for reason, n in dropped.items() if n)
    rule = dataset.box_rule
    line = (f"boxes dropped by the augmentation over the run: {total}" + (f" ({parts})" if parts else "")
            + f"; rule: wider and higher than {rule.min_side:g} px, more than {rule.min_area:g} of the area kept")
    if scan.problems:
        line += f"; the scan skipped {len(scan.problems)} training images (see train_skipped.txt)"
    return line


def _report_scan(scan, split: str, save_dir: Path) -> None:
    LOGGER.info(f"{split}: {len(scan.images)} images, {scan.n_boxes} boxes")
    for line in describe_problems(scan, split):
        LOGGER.info(line)
    if scan.problems:
        report = save_dir / f"{split}_skipped.txt"
        report.write_text("".join(f"{kind}\t{msg}\n" for _, kind, msg in scan.problems))
        LOGGER.info(f"{split}: the full list of skipped files is in {report}")


def scan_fingerprint(train, val) -> str:
    """What was trained and validated on: every image's name and size and its label rows (any label format)."""
    digest = hashlib.sha256()
    for scan in (train, val):
        if scan is None:
            continue
        for path, shape, labels in zip(scan.images, scan.shapes, scan.labels):
            digest.update(f"{Path(path).name}\0{shape[0]}x{shape[1]}\0".encode())
            digest.update(np.ascontiguousarray(labels, dtype=np.float32).tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:16]


def _short(names: list[str], limit: int = 4) -> str:
    return "[" + ", ".join(names[:limit]) + (", ..." if len(names) > limit else "") + "]"
