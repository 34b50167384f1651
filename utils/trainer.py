"""The training loop: the paper's recipe, DDP under torchrun, exact resume, AP_S every epoch.

Read top to bottom: set-up (run folder, data, model, optimiser, EMA, loss), then one loop over epochs
with warm-up, accumulation to a nominal batch of 64, EMA updates, validation, logging and checkpoints.
"""

from __future__ import annotations

import csv
import math
import os
import platform
import shutil
import signal
import time
from argparse import Namespace
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from models.spd_transfer import spd_config
from models.yolo import DetectionModel
from utils import distributed as dist_utils
from utils.anchors import check_anchors
from utils.checkpoints import (
    FORMAT,
    load_checkpoint,
    load_model,
    model_from_weights,
    model_payload,
    remove_stale_temporaries,
    resolve_weights,
    save_checkpoint,
)
from utils.datasets import (
    YoloDataset,
    create_dataloader,
    describe_problems,
    load_dataset_config,
    scan_dataset,
    set_max_pixels,
)
from utils.logging import LOGGER, get_logger, increment_path
from utils.loss import LossGains, YoloLoss
from utils.metrics import COCO_KEYS, TINY_KEYS, DetectionEvaluator, fitness, format_metric, tiny_bins_line
from utils.optim import ModelEMA, build_optimizer, lr_lambda, warmup
from utils.paths import find_named_file
from utils.plots import plot_batch, plot_labels, plot_results, plot_validation, validation_batch_plotter
from utils.validation import NmsSettings, evaluate, prepare_images
from utils.yaml_files import load_yaml_text

ROOT = Path(__file__).resolve().parent.parent
NOMINAL_BATCH = 64
# yolov5's columns first (its tools read them), then the COCO figures
CSV_KEYS = (["epoch", "train/box_loss", "train/obj_loss", "train/cls_loss", "metrics/precision",
             "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95", "val/box_loss", "val/obj_loss",
             "val/cls_loss", "x/lr0", "x/lr1", "x/lr2"] + [f"coco/{k}" for k in COCO_KEYS + TINY_KEYS])


class TrainingStopped(RuntimeError):
    """Training cannot go on (non-finite loss); the last good checkpoint is kept."""


class _SignalFlag:
    """SIGINT/SIGTERM: finish the current step, save last.pt, exit."""

    def __init__(self) -> None:
        self.raised: int | None = None
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, _frame) -> None:
        if self.raised is not None:  # a second signal: leave at once
            raise KeyboardInterrupt
        self.raised = signum

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def load_hyp(path: str | Path) -> dict:
    p = find_named_file(path, ROOT / "configs", ".yaml")
    if p is None:
        raise FileNotFoundError(f"{path}: hyper-parameter file not found")
    try:
        hyp = load_yaml_text(p.read_text(encoding="utf-8"), str(p))
    except UnicodeDecodeError:
        raise ValueError(f"{p}: not UTF-8 text") from None
    if not isinstance(hyp, dict):
        raise ValueError(f"{p}: a hyp file must be a mapping")
    check_hyp(hyp, str(p))
    return hyp


# Every key a hyp file may hold; the second set may be left out.
HYP_REQUIRED = {"lr0", "lrf", "momentum", "weight_decay", "warmup_epochs", "warmup_momentum", "warmup_bias_lr",
                "box", "cls", "cls_pw", "obj", "obj_pw", "anchor_t", "hsv_h", "hsv_s", "hsv_v", "degrees",
                "translate", "scale", "shear", "perspective", "flipud", "fliplr", "mosaic", "mixup"}
HYP_OPTIONAL = {"optimizer", "nbs", "fl_gamma", "albumentations", "freeze_bn_stats", "iou_t", "anchors",
                "copy_paste"}


def check_hyp(hyp: dict, source: str) -> None:
    """Unknown (mistyped) or missing keys and non-numeric values are an error naming the key."""
    import difflib

    for key in hyp:
        if key not in HYP_REQUIRED | HYP_OPTIONAL:
            near = difflib.get_close_matches(str(key), sorted(HYP_REQUIRED | HYP_OPTIONAL), n=1)
            hint = f" (did you mean '{near[0]}'?)" if near else ""
            raise ValueError(f"{source}: unknown hyper-parameter '{key}'{hint}")
    missing = sorted(HYP_REQUIRED - set(hyp))
    if missing:
        raise ValueError(f"{source}: missing hyper-parameters {', '.join(missing)} (see configs/hyp.scratch.yaml)")
    for key, value in hyp.items():
        if key not in {"optimizer", "anchors", "freeze_bn_stats"} and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise ValueError(f"{source}: hyper-parameter '{key}' must be a finite number, got {value!r}")


def rng_state() -> dict:
    """RNG states as tensors and lists (weights_only-loadable)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _find_latest_last(project: Path) -> Path:
    candidates = sorted(project.glob("*/weights/last.pt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise FileNotFoundError(f"--resume: no {project}/*/weights/last.pt to resume from")
    return candidates[-1]


def train(opt: Namespace) -> dict:
    """Train a detector as described by ``opt`` (train.py's options). Returns the final metrics.

    A run that fails before its first checkpoint leaves no folder behind (only one this call created)."""
    check_options(opt)
    if getattr(opt, "max_pixels", None) is not None:
        set_max_pixels(opt.max_pixels)
    run = _RunFolder()
    try:
        return _train(opt, run)
    except BaseException:
        run.discard_if_empty()
        raise
    finally:
        run.release()


class _RunFolder:
    """The run folder: created by this process (so removable if nothing was saved) and locked while training,
    so that a second run into the same folder (--exist-ok, --resume) is refused instead of interleaved."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.created = False
        self._lock = None

    def open(self, path: Path, main: bool) -> Path:
        self.path = path
        if not main:
            return path
        self.created = not path.exists()
        (path / "weights").mkdir(parents=True, exist_ok=True)
        lock = open(path / ".train.lock", "w")  # noqa: SIM115 (held for the whole run)
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # not POSIX: no lock
            pass
        except OSError:
            lock.close()
            self.created = False
            raise ValueError(f"{path}: another training run is writing to this folder") from None
        self._lock = lock
        for stale in remove_stale_temporaries(path / "weights"):
            LOGGER.info(f"removed {stale.name}, left by an interrupted save")
        return path

    def discard_if_empty(self) -> None:
        if self.created and self.path is not None and not any((self.path / "weights").glob("*.pt")):
            self.release()
            shutil.rmtree(self.path, ignore_errors=True)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
            if self.path is not None:
                (self.path / ".train.lock").unlink(missing_ok=True)


def check_options(opt: Namespace) -> None:
    """Values no run can use: one clear line each (ValueError)."""
    checks = [(opt.batch_size >= 1 or opt.batch_size == -1, f"--batch-size must be >= 1, got {opt.batch_size}"),
              (opt.epochs >= 1, f"--epochs must be >= 1, got {opt.epochs}"),
              (opt.imgsz >= 32, f"--imgsz must be >= 32 pixels, got {opt.imgsz}"),
              (opt.workers >= 0, f"--workers must be >= 0, got {opt.workers}"),
              (all(f >= 0 for f in opt.freeze), f"--freeze takes layer counts or indices >= 0, got {opt.freeze}")]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)
    if opt.batch_size == -1:
        raise ValueError("--batch-size -1 (AutoBatch) needs a CUDA GPU; give a batch size")


def _train(opt: Namespace, run: _RunFolder) -> dict:
    device = dist_utils.select_device(opt.device)
    distributed = dist_utils.init_distributed(device)
    world, rank = dist_utils.world_size(), dist_utils.rank()
    main = rank == 0
    get_logger(verbose=main)  # other ranks stay quiet

    # ---------------------------------------------------------------------------- resume or new run
    resume_ckpt = None
    if opt.resume:
        last = Path(opt.resume) if isinstance(opt.resume, str) else _find_latest_last(Path(opt.project))
        resume_ckpt = load_checkpoint(last)
        if not resume_ckpt.get("optimizer") or "options" not in resume_ckpt:
            raise ValueError(f"{last}: holds weights only (a best.pt, or an imported or converted file), not a "
                             f"training state; resume from the run's weights/last.pt, or start a new run from "
                             f"these weights with --weights {last}")
        saved = dict(resume_ckpt["options"])
        extra_epochs = opt.epochs if opt.epochs_given else None
        opt = Namespace(**{**vars(opt), **saved, "resume": str(last), "device": opt.device})
        if extra_epochs is not None:
            opt.epochs = extra_epochs
        save_dir = last.parent.parent
        LOGGER.info(f"resuming {last} from epoch {resume_ckpt['epoch'] + 1} of {opt.epochs}")
    else:
        save_dir = increment_path(Path(opt.project) / opt.name, exist_ok=opt.exist_ok, mkdir=False)
    weights_dir = save_dir / "weights"
    hyp = dict(resume_ckpt["hyp"]) if resume_ckpt else load_hyp(opt.hyp)
    run.open(save_dir, main)
    if main:
        (save_dir / "hyp.yaml").write_text(yaml.safe_dump(hyp, sort_keys=False))
        (save_dir / "opt.yaml").write_text(yaml.safe_dump(_plain(vars(opt)), sort_keys=False))
    seed = int(opt.seed) + rank
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)

    # ------------------------------------------------------------------------------------------ data
    with dist_utils.main_process_first():
        data = load_dataset_config(opt.data)
        names = ["object"] if opt.single_cls else data["names"]
        notes = data["annotations"]
        train_scan = scan_dataset(data["train"], data["nc"], annotations=notes.get("train"))
        val_scan = scan_dataset(data["val"], data["nc"], annotations=notes.get("val")) if data.get("val") else None
    if main:
        _report_scan(train_scan, "train", save_dir)
        if val_scan is not None:
            _report_scan(val_scan, "val", save_dir)
    nc = len(names)

    # ----------------------------------------------------------------------------------------- model
    pretrained_head = False
    if resume_ckpt is not None:
        model = DetectionModel(resume_ckpt["model"]["config"])
        model.load_state_dict(resume_ckpt["model"]["state_dict"])
    elif opt.weights:
        source = load_checkpoint(resolve_weights(opt.weights))
        model, report = model_from_weights(source, opt.cfg, nc, spd=getattr(opt, "spd", False),
                                           allow_partial=getattr(opt, "partial_transfer", False))
        # The head keeps its anchors only when its weights came with them (AutoAnchor runs otherwise).
        pretrained_head = f"model.{len(model.model) - 1}.m.0.weight" not in report.skipped \
            and report.mode != "partial"
        line = report.line(opt.weights)
        (LOGGER.info if report.function_preserving else LOGGER.warning)(line)
    else:
        model = DetectionModel(spd_config(opt.cfg).config if getattr(opt, "spd", False) else opt.cfg, nc=nc)
    model.names = names
    model.to(device, memory_format=torch.channels_last)  # 1.2-1.3x faster training steps on CPUs (benchmarks)
    frozen = _freeze_layers(opt.freeze)
    if any(i >= len(model.model) - 1 for i in frozen):
        raise ValueError(f"--freeze {' '.join(map(str, opt.freeze))}: the model has {len(model.model)} layers and "
                         f"its head (layer {len(model.model) - 1}) must train")
    for name, p in model.named_parameters():
        p.requires_grad_(not any(name.startswith(f"model.{i}.") for i in frozen))
    if main:
        LOGGER.info(model.info(opt.imgsz))

    gs = max(int(model.stride.max()), 32)
    imgsz = math.ceil(opt.imgsz / gs) * gs
    batch_size = opt.batch_size // world
    if opt.batch_size % world:
        raise ValueError(f"--batch-size {opt.batch_size} must be a multiple of the {world} processes")
    train_set = YoloDataset(train_scan, imgsz, batch_size, augment=True, hyp=hyp, rect=opt.rect,
                            stride=gs, seed=opt.seed, cache_images=opt.cache, single_cls=opt.single_cls)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=not opt.rect, seed=opt.seed)
    train_loader = create_dataloader(train_set, batch_size, opt.workers, sampler=sampler, seed=opt.seed)
    val_loader = None
    if main and val_scan is not None:
        val_set = YoloDataset(val_scan, imgsz, batch_size * 2, augment=False, rect=True, stride=gs,
                              single_cls=opt.single_cls)
        val_loader = create_dataloader(val_set, batch_size * 2, opt.workers)
        evaluator = DetectionEvaluator(names, official_json=None if opt.single_cls
                                       else data["annotations"].get("val"))

    # ------------------------------------------------------------------------------------ AutoAnchor
    if resume_ckpt is None and not opt.noautoanchor:
        if pretrained_head:
            LOGGER.info("AutoAnchor: kept the pretrained head's anchors (the head was trained for them)")
        elif main:
            new, line = check_anchors(model.detect.anchors, model.stride, train_set.shapes, train_set.labels,
                                      imgsz, hyp["anchor_t"], seed=opt.seed)
            LOGGER.info(line)
            if new is not None:
                model.detect.anchors[:] = new.to(device)
        if distributed:
            torch.distributed.broadcast(model.detect.anchors, 0)

    # ------------------------------------------------------------------------ optimiser, EMA, loss
    nominal_batch = int(hyp.get("nbs", NOMINAL_BATCH))
    accumulate = max(round(nominal_batch / opt.batch_size), 1)
    weight_decay = hyp["weight_decay"] * opt.batch_size * accumulate / nominal_batch
    optimizer_name = opt.optimizer or hyp.get("optimizer", "SGD")
    optimizer = build_optimizer(model, optimizer_name, hyp["lr0"], hyp["momentum"], weight_decay)
    if main and optimizer_name != "SGD" and hyp["warmup_bias_lr"] > 10 * hyp["lr0"]:
        LOGGER.warning(f"warmup_bias_lr {hyp['warmup_bias_lr']} with {optimizer_name}: Adam-type optimisers move "
                       f"every bias by about its lr per step, which wrecks a pretrained head; SGD's value does not "
                       f"carry over (hyp.quick.yaml uses 0.0)")
    lf = lr_lambda(opt.epochs, hyp["lrf"], cosine=not opt.linear_lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lf)
    ema = ModelEMA(model) if main else None
    use_amp = device.type == "cuda" and not opt.no_amp
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best_fitness, last_step = 0, -1.0, -1
    if resume_ckpt is not None:
        optimizer.load_state_dict(resume_ckpt["optimizer"])
        if resume_ckpt.get("scaler"):
            scaler.load_state_dict(resume_ckpt["scaler"])
        if ema is not None and resume_ckpt.get("ema"):
            ema.ema.load_state_dict(resume_ckpt["ema"])
            ema.updates = int(resume_ckpt["ema_updates"])
        start_epoch = int(resume_ckpt["epoch"]) + 1
        best_fitness = float(resume_ckpt["best_fitness"])
        last_step = int(resume_ckpt.get("last_step", -1))
        restore_rng_state(resume_ckpt.get("rng", {}))
        if start_epoch >= opt.epochs:
            raise ValueError(f"{opt.resume}: already trained {start_epoch} epochs; "
                             f"add --epochs N (N > {start_epoch}) to extend it")
    scheduler.last_epoch = start_epoch - 1
    if opt.sync_bn:
        if distributed and device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            LOGGER.info("--sync-bn ignored: SyncBatchNorm needs several CUDA processes "
                        "(PyTorch has no CPU kernel for it); training goes on with plain BatchNorm")
    train_model = model
    if distributed:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    loss_fn = YoloLoss(model.detect.anchors, nc, LossGains.from_hyp(hyp, opt.label_smoothing), imgsz)

    # ------------------------------------------------------------------------------------- logging
    writer = None
    results_csv = save_dir / "results.csv"
    if main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(save_dir))
        if resume_ckpt is None:
            plot_labels(train_set.labels, names, save_dir / "labels.jpg")
            with open(results_csv, "w", newline="") as f:
                csv.writer(f).writerow(CSV_KEYS)
        else:
            _drop_rows_from(results_csv, start_epoch)

    # ------------------------------------------------------------------------------------ the loop
    nb = len(train_loader)
    warmup_iters = max(round(hyp["warmup_epochs"] * nb), 100) if hyp["warmup_epochs"] > 0 else 0
    best_epoch = start_epoch
    def save(path: Path, completed_epoch: int, partial: bool = False) -> None:
        _save(path, model, ema, optimizer, scaler, completed_epoch, best_fitness, opt, hyp, data, partial,
              last_step)

    if main and getattr(opt, "val_first", False) and resume_ckpt is None and val_loader is not None:
        # where the starting weights stand (a pretrained model's figure), as row "-1" of results.csv
        rng = rng_state()  # the loader draws worker seeds: keep the run identical to one without this
        start = evaluate(ema.ema, val_loader, evaluator, NmsSettings(), progress=False, loss_fn=loss_fn)
        restore_rng_state(rng)
        LOGGER.info(f"before training: {_val_line(start)}")
        row = _results_row(-1, torch.full((3,), math.nan), start, [math.nan] * len(optimizer.param_groups))
        with open(results_csv, "a", newline="") as f:
            csv.writer(f).writerow(row)
        for key, value in zip(CSV_KEYS[1:], row[1:]):
            writer.add_scalar(key, value, -1)

    stop_flag = _SignalFlag()
    metrics: dict = {}
    t_start = time.time()
    epoch = start_epoch
    interrupted = False
    try:
        for epoch in range(start_epoch, opt.epochs):
            train_model.train()
            if hyp.get("freeze_bn_stats", False):
                freeze_batchnorm_statistics(model)
            train_loader.set_epoch(epoch)  # re-seeds the DistributedSampler and the augmentations
            mean_loss = torch.zeros(3, device=device)
            optimizer.zero_grad(set_to_none=True)
            bar = tqdm(enumerate(train_loader), total=nb, disable=not main,
                       bar_format="{l_bar}{bar:10}{r_bar}")
            for i, (images, targets, _paths, _) in bar:
                step = i + nb * epoch
                images = prepare_images(images, device)
                if step <= warmup_iters and warmup_iters:
                    warmup(optimizer, step, warmup_iters, lf(epoch), hyp, hyp["lr0"])
                    accumulate = max(1, round(np.interp(step, [0, warmup_iters],
                                                        [1, nominal_batch / opt.batch_size])))
                if opt.multi_scale:
                    images = _random_rescale(images, imgsz, gs, epoch * 100_003 + i + opt.seed)
                with torch.autocast(device.type, enabled=use_amp):
                    maps = train_model(images)
                    loss, items = loss_fn(maps, targets.to(device))
                if not torch.isfinite(loss):
                    raise TrainingStopped(
                        f"non-finite loss ({loss.item()}) at epoch {epoch}, batch {i}: training stopped; "
                        f"{weights_dir / 'last.pt'} still holds the last good epoch. Lower lr0 or check "
                        f"the labels")
                if distributed:
                    loss = loss * world  # DDP averages gradients over processes
                scaler.scale(loss).backward()
                if step - last_step >= accumulate:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    if ema is not None:
                        ema.update(model)
                    last_step = step
                mean_loss = (mean_loss * i + items) / (i + 1)
                if main:
                    mem = f"{torch.cuda.memory_reserved() / 1e9:.2f}G" if device.type == "cuda" else "cpu"
                    bar.set_description(
                        f"{epoch + 1}/{opt.epochs} {mem} box {mean_loss[0]:.4f} obj {mean_loss[1]:.4f} "
                        f"cls {mean_loss[2]:.4f} inst {targets.shape[0]:>4} size {images.shape[-1]}")
                if main and epoch == start_epoch and i < 3:
                    picture = save_dir / f"train_batch{i}.jpg"
                    plot_batch(images.mul(255).byte(), targets, picture, names)
                    writer.add_image(f"train_batch{i}", cv2.imread(str(picture))[..., ::-1].copy(), epoch,
                                     dataformats="HWC")
                if stop_flag.raised is not None:
                    break
            if stop_flag.raised is not None:
                interrupted = True
                if main:  # keep what this epoch learned; resume restarts this epoch
                    save(weights_dir / "last.pt", epoch - 1, partial=True)
                    LOGGER.info(f"signal {stop_flag.raised}: saved {weights_dir / 'last.pt'}, exiting")
                break
            lrs = [g["lr"] for g in optimizer.param_groups]
            scheduler.step()

            # ------------------------------------------------------------ validate, log, save (rank 0)
            stop = False
            if main:
                final = epoch + 1 == opt.epochs
                if val_loader is not None and (not opt.noval or final):
                    metrics = evaluate(ema.ema, val_loader, evaluator, NmsSettings(), progress=False,
                                       loss_fn=loss_fn)
                else:
                    metrics = {}
                row = _results_row(epoch, mean_loss, metrics, lrs)
                with open(results_csv, "a", newline="") as f:
                    csv.writer(f).writerow(row)
                for key, value in zip(CSV_KEYS[1:], row[1:]):
                    writer.add_scalar(key, value, epoch)
                if metrics:
                    LOGGER.info(f"  val: {_val_line(metrics)}")
                # without validation (--noval) the newest weights count as the best so far
                improved = not metrics or fitness(metrics) > best_fitness
                if improved:
                    best_epoch = epoch
                    if metrics:
                        best_fitness = fitness(metrics)
                if not opt.nosave or final:
                    save(weights_dir / "last.pt", epoch)
                    if improved:
                        save(weights_dir / "best.pt", epoch)
                    if opt.save_period > 0 and (epoch + 1) % opt.save_period == 0:
                        save(weights_dir / f"epoch{epoch + 1}.pt", epoch)
                if opt.patience and epoch - best_epoch >= opt.patience:
                    LOGGER.info(f"early stop: no improvement for {opt.patience} epochs (best epoch "
                                f"{best_epoch + 1})")
                    stop = True
            if distributed:
                stop = dist_utils.broadcast_flag(stop, device)
            if stop:
                break
    finally:
        stop_flag.restore()
        if writer is not None:
            writer.close()

    if main and not interrupted:
        plot_results(results_csv)
        best = weights_dir / "best.pt" if (weights_dir / "best.pt").exists() else weights_dir / "last.pt"
        if best.exists():
            _write_slim(best, data)
            if val_loader is not None:  # the figure a user will quote: the kept model, as saved
                metrics = evaluate(load_model(best, device), val_loader, evaluator, NmsSettings(),
                                   progress=False, on_batch=validation_batch_plotter(save_dir, names))
                plot_validation(metrics, evaluator.confusion.matrix, names, save_dir)
                coco = metrics.get("coco", {})
                LOGGER.info(f"{best}: mAP50 {metrics['mAP50']:.3f} mAP50-95 {metrics['mAP50_95']:.3f} | "
                            f"COCO AP {coco.get('AP', 0):.4f} AP50 {coco.get('AP50', 0):.4f} "
                            f"AP_S {coco.get('AP_S', 0):.4f}")
        hours = (time.time() - t_start) / 3600
        LOGGER.info(f"{epoch - start_epoch + 1} epochs completed in {hours:.3f} hours; results in {save_dir}")
    dist_utils.cleanup_distributed()
    out = {"save_dir": str(save_dir), **{k: v for k, v in metrics.items() if k != "curves"}}
    if interrupted:
        out["signal"] = int(stop_flag.raised)  # train.py exits 128 + signal, as a shell does
    return out


# ------------------------------------------------------------------------------------------- helpers
def _plain(values: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}


def _freeze_layers(freeze: list[int]) -> list[int]:
    """--freeze 10 freezes layers 0-9; --freeze 0 3 5 freezes those layers."""
    if len(freeze) == 1:
        return list(range(freeze[0]))
    return list(freeze)


def _random_rescale(images: torch.Tensor, imgsz: int, gs: int, seed: int) -> torch.Tensor:
    g = np.random.default_rng(seed)
    size = int(g.uniform(imgsz * 0.5, imgsz * 1.5 + gs)) // gs * gs
    factor = size / max(images.shape[2:])
    if factor == 1:
        return images
    shape = [math.ceil(x * factor / gs) * gs for x in images.shape[2:]]
    return torch.nn.functional.interpolate(images, size=shape, mode="bilinear", align_corners=False)


def _drop_rows_from(results_csv: Path, epoch: int) -> None:
    """Resuming at ``epoch``: rows of that epoch and later (written before the checkpoint that a kill or
    a full disk lost) are removed, so that no epoch appears twice."""
    if not results_csv.is_file():
        return
    with open(results_csv, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if r and int(float(r[0])) < epoch]
    if len(kept) != len(rows):
        tmp = results_csv.with_name(f".{results_csv.name}.tmp")
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)
        os.replace(tmp, results_csv)


def _val_line(metrics: dict) -> str:
    coco = metrics.get("coco", {})
    line = (f"P {metrics['P']:.3f} R {metrics['R']:.3f} mAP50 {metrics['mAP50']:.3f} mAP50-95 "
            f"{metrics['mAP50_95']:.3f} | COCO " + " ".join(f"{k} {format_metric(coco.get(k))}"
                                                          for k in ("AP", "AP_S", "AP_M", "AP_L")))
    return line + (f"\n  tiny objects: {tiny_bins_line(coco)}" if "n_vt" in coco else "")


def freeze_batchnorm_statistics(model: torch.nn.Module) -> None:
    """BatchNorm layers normalise with their running statistics and stop updating them (their affine
    weights still train). A fine-tuned model keeps the statistics it was trained with, and an SPD model made
    from a YOLOv5 computes in training what its source computes (batch statistics would also count the
    three new phase groups)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()


def _results_row(epoch: int, mean_loss: torch.Tensor, metrics: dict, lrs: list[float]) -> list:
    coco = metrics.get("coco", {})
    val_loss = metrics.get("val_loss", [math.nan] * 3)
    return ([epoch, *[round(float(v), 5) for v in mean_loss.tolist()],
             *[round(float(metrics.get(k, 0.0)), 5) for k in ("P", "R", "mAP50", "mAP50_95")],
             *[round(float(v), 5) for v in val_loss], *[float(v) for v in lrs],
             *[round(float(coco.get(k, math.nan)), 5) for k in COCO_KEYS + TINY_KEYS]])


def _report_scan(scan, split: str, save_dir: Path) -> None:
    LOGGER.info(f"{split}: {len(scan.images)} images, {scan.n_boxes} boxes")
    for line in describe_problems(scan, split):
        LOGGER.info(line)
    if scan.problems:
        report = save_dir / f"{split}_skipped.txt"
        report.write_text("".join(f"{kind}\t{msg}\n" for _, kind, msg in scan.problems))
        LOGGER.info(f"{split}: the full list of skipped files is in {report}")


def _save(path: Path, model, ema, optimizer, scaler, epoch: int, best_fitness: float, opt, hyp: dict,
          data: dict, partial: bool = False, last_step: int = -1) -> None:
    save_checkpoint({
        "format": FORMAT,
        "model": model_payload(model),
        "ema": {k: v.detach().cpu() for k, v in ema.ema.state_dict().items()} if ema else None,
        "ema_updates": ema.updates if ema else 0,
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "epoch": epoch,
        "partial_epoch": partial,
        "last_step": last_step,
        "best_fitness": float(best_fitness),
        "rng": rng_state(),
        "options": _plain({k: v for k, v in vars(opt).items() if k not in {"resume", "epochs_given"}}),
        "hyp": hyp,
        "data": {"yaml": data["yaml_file"], "names": data["names"]},
    }, path)


def _write_slim(path: Path, data: dict) -> None:
    """Replace a training checkpoint by its EMA weights in fp16, no optimiser, with versions."""
    ckpt = load_checkpoint(path)
    payload = dict(ckpt["model"])
    if ckpt.get("ema"):
        payload["state_dict"] = ckpt["ema"]
    payload["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    fingerprint = _dataset_fingerprint(data)
    save_checkpoint({
        "format": FORMAT, "model": payload, "ema": None, "epoch": ckpt["epoch"],
        "best_fitness": ckpt.get("best_fitness", 0.0), "hyp": ckpt.get("hyp", {}),
        "options": ckpt.get("options", {}),
        "versions": {"torch": str(torch.__version__), "python": platform.python_version(), "format": FORMAT},
        "dataset": {"yaml": data["yaml_file"], "names": data["names"], "fingerprint": fingerprint},
    }, path)


def _dataset_fingerprint(data: dict) -> str:
    import hashlib

    digest = hashlib.sha256()
    for split in ("train", "val"):
        source = data.get(split)
        if source and os.path.exists(str(source)):
            for p in sorted(Path(str(source)).rglob("*"))[:100_000]:
                if p.is_file():
                    digest.update(f"{p.name}\0{p.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]
