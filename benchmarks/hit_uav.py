"""Does SPD win on real small objects? HIT-UAV (drone thermal images) train -> val, arm by arm, resumable.

    scripts/env.sh python benchmarks/hit_uav.py                      # every arm not yet done, then the report
    scripts/env.sh python benchmarks/hit_uav.py --arms finetune_spd finetune_v5n
    scripts/env.sh python benchmarks/hit_uav.py --report-only        # the table (+ latency, the picture)

Each arm trains in its own process into ``runs/benchmarks/hit_uav/<arm>`` and, when done, leaves
``result.json`` there (metrics of its best.pt measured by this project's val.run: COCO AP, AP50, AP_S, the
tiny bins, per-class AP; training wall time, summed over resumed segments). An interrupted arm resumes from its
last.pt on the next call, a finished one is skipped, so the benchmark can run across sessions.

Arms (all at --imgsz 320 unless --imgsz, the same epochs, batch, seed and data for every main arm):
- ``recipe_*``: 3-epoch fine-tuning of the official yolov5n with candidate recipes (the study behind the
  automatic new-domain choice); ``coco128_*`` the same recipes on coco128 (a same-domain check).
- ``scratch_spd`` / ``scratch_v5n``: space_depth_n vs yolov5n from scratch, hyp.scratch.yaml.
- ``finetune_spd`` / ``finetune_v5n``: both from ../shared/weights/yolov5n.pt (exact SPD transfer for the
  first), the automatic fine-tuning recipe; ``finetune_spd_nwd`` the first with half of the box loss from NWD;
  ``finetune_spd_p2`` / ``finetune_spd_cbam``: space_depth_n_p2.yaml (a stride-4 head) and space_depth_n_cbam.yaml
  from the same weights (the graph transfer copies what they share with yolov5n), the same recipe.
- ``yolo11n`` / ``yolo26n``: PyPI ultralytics' YOLO11n / YOLO26n from scratch with its own defaults, in its own
  environment (benchmarks/ultralytics_env.sh), its val predictions (conf 0.001, NMS IoU 0.6, 300 per image, as
  ours) scored by this project's evaluator.
- ``scratch_yolo11n`` / ``scratch_yolo11n_spd`` / ``scratch_yolov8n`` / ``scratch_yolov8n_spd``: the anchor-free
  family trained here from scratch (its default recipe, hyp.anchor_free.yaml), strided against SPD (paper order);
  ``scratch_yolo11n_spd_conv_first`` the authors' order; ``scratch_spd_paper``: space_depth_n with SPDConv rows in
  the paper's order instead of the authors' Conv + SpaceToDepth.
- ``finetune_yolo11n`` / ``finetune_yolo11n_spd``: both from ../shared/reference/ultralytics/yolo11n_smallobj.pt (a
  YOLO11n trained by ultralytics on the embedded synthetic set: a COCO-pretrained yolo11n.pt cannot be fetched
  here), the exact SPD transfer for the second, the automatic fine-tuning recipe.
``--seeds 0 1`` runs every arm for each seed (seed 0 keeps the arm's folder name, others get ``_seed<N>``); the
report gives the mean and the spread (half the range) over the seeds found.
Wall times are only comparable between arms run on a quiet machine; the report says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
HIT_UAV = SHARED / "data" / "hit_uav" / "hit_uav.yaml"
COCO128 = SHARED / "data" / "coco128" / "coco128.yaml"
YOLOV5N = SHARED / "weights" / "yolov5n.pt"
YOLO11N = SHARED / "reference" / "ultralytics" / "yolo11n_smallobj.pt"
OUT = ROOT / "runs" / "benchmarks" / "hit_uav"  # --out moves it
# every finished arm's result.json is copied here (committed: the evidence outlives the run folders)
RESULTS = ROOT / "benchmarks" / "results" / "hit_uav"

# candidate fine-tuning recipes: overrides of configs/hyp.finetune.yaml
RECIPES = {
    "finetune": {},
    "bnfree": {"freeze_bn_stats": False},
    "newdomain": {"freeze_bn_stats": False, "lr0": 0.01, "warmup_epochs": 1.0, "scale": 0.5},
    "scratch": "hyp.scratch.yaml",  # the from-scratch recipe as it is (BatchNorm free, bias warm-up 0.1)
    # hyp.finetune_new_domain.yaml (what --weights picks here) with half the box loss from NWD (#28)
    "newdomain_nwd": {"freeze_bn_stats": False, "lr0": 0.01, "warmup_epochs": 1.0, "scale": 0.5, "nwd": 0.5},
}


def arms(epochs: int, imgsz: int, seed: int) -> dict[str, dict]:
    common = {"imgsz": imgsz, "seed": seed, "batch-size": 16, "workers": 2}
    table: dict[str, dict] = {}
    for recipe in (r for r in RECIPES if r != "newdomain_nwd"):
        table[f"recipe_{recipe}"] = {**common, "data": HIT_UAV, "cfg": "yolov5n.yaml", "weights": YOLOV5N,
                                     "recipe": recipe, "epochs": 3}
        table[f"coco128_{recipe}"] = {**common, "data": COCO128, "cfg": "yolov5n.yaml", "weights": YOLOV5N,
                                      "recipe": recipe, "epochs": 3}
    main = {**common, "data": HIT_UAV, "epochs": epochs}
    table["finetune_spd"] = {**main, "cfg": "space_depth_n.yaml", "weights": YOLOV5N}
    table["finetune_v5n"] = {**main, "cfg": "yolov5n.yaml", "weights": YOLOV5N}
    table["finetune_spd_nwd"] = {**main, "cfg": "space_depth_n.yaml", "weights": YOLOV5N, "recipe": "newdomain_nwd"}
    table["finetune_spd_p2"] = {**main, "cfg": "space_depth_n_p2.yaml", "weights": YOLOV5N}
    table["finetune_spd_cbam"] = {**main, "cfg": "space_depth_n_cbam.yaml", "weights": YOLOV5N}
    table["scratch_spd"] = {**main, "cfg": "space_depth_n.yaml", "hyp": "hyp.scratch.yaml"}
    table["scratch_v5n"] = {**main, "cfg": "yolov5n.yaml", "hyp": "hyp.scratch.yaml"}
    table["yolo11n"] = {**main, "peer": "ultralytics", "model": "yolo11n.yaml"}
    table["yolo26n"] = {**main, "peer": "ultralytics", "model": "yolo26n.yaml"}
    for family in ("yolo11n", "yolov8n"):
        table[f"scratch_{family}"] = {**main, "cfg": f"{family}.yaml"}
        table[f"scratch_{family}_spd"] = {**main, "cfg": f"{family}_spd.yaml"}
    table["scratch_yolo11n_spd_conv_first"] = {**main, "cfg": ("yolo11n.yaml", "conv_first")}
    table["scratch_spd_paper"] = {**main, "cfg": ("yolov5n.yaml", "spd_first"), "hyp": "hyp.scratch.yaml"}
    table["finetune_yolo11n"] = {**main, "cfg": "yolo11n.yaml", "weights": YOLO11N}
    table["finetune_yolo11n_spd"] = {**main, "cfg": "yolo11n_spd.yaml", "weights": YOLO11N}
    return table


DEFAULT_ARMS = ["recipe_finetune", "recipe_bnfree", "recipe_newdomain", "recipe_scratch", "coco128_finetune",
                "coco128_newdomain", "finetune_spd", "finetune_v5n", "finetune_spd_nwd", "finetune_spd_p2",
                "finetune_spd_cbam", "scratch_spd", "scratch_v5n",
                "yolo11n"]
# the modern family against SPD inside it, in the order worth running first
MODERN_ARMS = ["scratch_yolo11n", "scratch_yolo11n_spd", "yolo26n", "scratch_yolov8n", "scratch_yolov8n_spd",
               "finetune_yolo11n", "finetune_yolo11n_spd", "scratch_spd", "scratch_v5n", "finetune_spd",
               "finetune_v5n", "scratch_spd_paper", "scratch_yolo11n_spd_conv_first"]


# ------------------------------------------------------------------------------------------------ running
def _recipe_file(folder: Path, recipe: str) -> Path:
    spec = RECIPES[recipe]
    base = spec if isinstance(spec, str) else "hyp.finetune.yaml"
    hyp = yaml.safe_load((ROOT / "configs" / base).read_text())
    if isinstance(spec, dict):
        hyp.update(spec)
    path = folder / f"hyp.{recipe}.yaml"
    path.write_text(yaml.safe_dump(hyp, sort_keys=False))
    return path


def _finished(last: Path) -> bool:
    import torch

    return last.exists() and bool(torch.load(last, map_location="cpu", weights_only=True).get("finished"))


def train_command(arm: dict, folder: Path) -> list[str]:
    """train.py's arguments for one arm trained into ``folder`` (its run folder: ``--project`` its parent,
    ``--name`` its own name, so each seed trains into its own folder); resumes from its last.pt when there."""
    last = folder / "weights" / "last.pt"
    if last.exists():
        return ["train.py", "--resume", str(last)]
    cfg = arm["cfg"]
    if isinstance(cfg, tuple):  # (strided config, SPDConv order): its SPD form, written beside the run
        from models.spd_transfer import config_to_yaml, spd_config

        folder.mkdir(parents=True, exist_ok=True)
        path = folder.parent / f"{folder.name}.model.yaml"
        path.write_text(config_to_yaml(spd_config(cfg[0], cfg[1]).config, f"SPD form of {cfg[0]}, {cfg[1]}"))
        cfg = str(path)
    cmd = ["train.py", "--data", str(arm["data"]), "--cfg", cfg, "--epochs", str(arm["epochs"]),
           "--imgsz", str(arm["imgsz"]), "--batch-size", str(arm["batch-size"]), "--workers",
           str(arm["workers"]), "--seed", str(arm["seed"]), "--project", str(folder.parent), "--name", folder.name,
           "--exist-ok"]
    if arm.get("weights"):
        cmd += ["--weights", str(arm["weights"])]
    if arm.get("recipe"):
        folder.mkdir(parents=True, exist_ok=True)
        cmd += ["--hyp", str(_recipe_file(folder.parent, arm["recipe"]))]
    elif arm.get("hyp"):
        cmd += ["--hyp", arm["hyp"]]
    return cmd


def _train_ours(arm: dict, folder: Path) -> None:
    if _finished(folder / "weights" / "last.pt"):  # trained to the end before an interruption of this script
        return
    _timed(train_command(arm, folder), folder)


def _timed(cmd: list[str], folder: Path, python: str | None = None) -> None:
    """Run one training segment; its wall time is added to folder/train_seconds.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(folder.parent / f"{folder.name}.log", "a") as log:
        code = subprocess.call([python or sys.executable, *cmd], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    spent = folder / "train_seconds.txt"
    total = float(spent.read_text()) if spent.exists() else 0.0
    spent.write_text(f"{total + seconds:.1f}")
    if code != 0:
        raise SystemExit(f"{folder.name}: training exited with {code}; see {folder.parent / folder.name}.log")


def _evaluate_ours(arm: dict, folder: Path) -> dict:
    import val

    # NMS IoU 0.6 for every arm, as the peers' predictions are made (the anchor-free family's own default is 0.7)
    result = val.run(data=str(arm["data"]), weights=str(folder / "weights" / "best.pt"), imgsz=arm["imgsz"],
                     batch_size=32, project=str(folder), name="val", exist_ok=True, plots=False, verbose=True,
                     iou_thres=0.6)
    return {k: result[k] for k in ("mAP50", "mAP50_95", "coco", "per_class")}


def _train_peer(name: str, arm: dict, folder: Path) -> dict:
    python = subprocess.run([str(ROOT / "benchmarks" / "ultralytics_env.sh")], capture_output=True, text=True,
                            check=True).stdout.strip()
    predictions = folder / "predictions.json"
    if not predictions.exists():
        cmd = [str(ROOT / "benchmarks" / "ultralytics_worker.py"), "--data", str(arm["data"]), "--model",
               arm["model"], "--epochs", str(arm["epochs"]), "--imgsz", str(arm["imgsz"]), "--batch",
               str(arm["batch-size"]), "--workers", str(arm["workers"]), "--seed", str(arm["seed"]),
               "--folder", str(folder), "--out", str(predictions)]
        _timed(cmd, folder, python)
    return score_predictions(json.loads(predictions.read_text()), arm["data"])


def score_predictions(payload: dict, data: Path) -> dict:
    """Per-image xyxy/score/class predictions (original pixels, keyed by file name) scored like val.py."""
    import numpy as np
    import torch

    from utils.data.formats import load_dataset_config
    from utils.data.scan import scan_split
    from utils.detection.evaluator import DetectionEvaluator

    config = load_dataset_config(str(data))
    scan = scan_split(config, "val")
    evaluator = DetectionEvaluator(config["names"])
    for path, hw, labels in zip(scan.images, scan.shapes, scan.labels):
        rows = payload["images"].get(Path(path).name)
        if rows is None:
            raise SystemExit(f"{path}: no predictions from the peer")
        detections = torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)
        evaluator.process(detections, np.asarray(labels), path, hw)
    result = evaluator.result()
    return {k: result[k] for k in ("mAP50", "mAP50_95", "coco", "per_class")}


def folder_name(name: str, seed: int) -> str:
    """Seed 0 keeps the arm's name; other seeds get their own folder (``finetune_spd_seed1``)."""
    return name if seed == 0 else f"{name}_seed{seed}"


def _keep(result: dict, key: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{key}.json").write_text(json.dumps(result, indent=1))


def _stored(key: str) -> dict | None:
    for done in (OUT / key / "result.json", RESULTS / f"{key}.json"):
        if done.exists():
            return json.loads(done.read_text())
    return None


def run_arm(name: str, arm: dict) -> dict:
    key = folder_name(name, arm["seed"])
    folder = OUT / key
    done = folder / "result.json"
    kept = _stored(key)  # this run folder's, else the committed result of an earlier run
    if kept is not None:
        return kept
    print(f"[hit_uav] {key}: training ({arm['epochs']} epochs at {arm['imgsz']})", flush=True)
    if arm.get("peer"):
        metrics = _train_peer(name, arm, folder)
    else:
        if not (folder / "trained").exists():
            _train_ours(arm, folder)
            (folder / "trained").touch()
        metrics = _evaluate_ours(arm, folder)
    result = {"arm": name, "options": {k: str(v) for k, v in arm.items()}, **metrics,
              "train_seconds": float((folder / "train_seconds.txt").read_text())}
    done.write_text(json.dumps(result, indent=1))
    _keep(result, key)
    print(f"[hit_uav] {key}: AP {metrics['coco']['AP']:.4f} AP50 {metrics['coco']['AP50']:.4f} AP_S "
          f"{metrics['coco']['AP_S']:.4f} in {result['train_seconds'] / 60:.1f} min", flush=True)
    return result


# ------------------------------------------------------------------------------------------------ report
def measure_costs(key: str, arm: dict, repeats: int = 30) -> dict:
    """Parameters, GFLOPs at the arm's size and batch-1 CPU latency (fused, fp32, 2 threads, median of
    ``repeats``) of an arm's best.pt; run with nothing else on the machine."""
    folder = OUT / key
    if arm.get("peer"):
        python = subprocess.run([str(ROOT / "benchmarks" / "ultralytics_env.sh")], capture_output=True, text=True,
                                check=True).stdout.strip()
        out = subprocess.run([python, str(ROOT / "benchmarks" / "ultralytics_worker.py"), "--costs",
                              str(folder / "train" / "weights" / "best.pt"), "--imgsz", str(arm["imgsz"]),
                              "--repeats", str(repeats)], capture_output=True, text=True, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    import statistics

    import torch

    from models.loading import load_model
    from models.summary import count_gflops, count_parameters

    torch.set_num_threads(2)
    model = load_model(folder / "weights" / "best.pt", task="detection")
    costs = {"params": count_parameters(model), "gflops": count_gflops(model, arm["imgsz"])}
    model = model.for_inference()
    x = torch.zeros(1, 3, arm["imgsz"], arm["imgsz"])
    times = []
    with torch.inference_mode():
        for _ in range(5):
            model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    costs["latency_ms"] = statistics.median(times) * 1000
    return costs


def comparison_picture(first: str, second: str, image_name: str, out: Path) -> Path:
    """One val image with the detections (conf >= 0.25) of two of our arms side by side, labelled."""
    import cv2
    import numpy as np

    from utils.detection.prediction import Detector
    from utils.plots import THIN, draw_boxes

    image = cv2.imread(str(SHARED / "data" / "hit_uav" / "images" / "val" / image_name))
    panels = []
    for name in (first, second):
        detector = Detector(OUT / name / "weights" / "best.pt", device="cpu", imgsz=320)
        det = detector.predict_one(image, image_name)
        panel = draw_boxes(image.copy(), det.xyxy, det.classes, det.names, det.scores, THIN)
        cv2.putText(panel, f"{name}: {len(det)} boxes", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 255), 2)
        panels.append(panel)
    cv2.imwrite(str(out), np.concatenate(panels, 1), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return out


def _mean_spread(values: list[float], digits: int = 4) -> str:
    """'mean' for one value, 'mean ± half the range' for several."""
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(max(values) - min(values)) / 2:.{digits}f}"


def report(names: list[str], seeds: list[int]) -> str:
    """The HIT-UAV table (docs/benchmarks/hit-uav.md), one row per arm over the seeds found (mean ± half the
    range); arms without a run folder are read from benchmarks/results/hit_uav."""
    header = ("| arm | seeds | AP | AP50 | AP_S | AP_vt / AP_t / AP_s16 | Person / Car / Bicycle / OtherVehicle "
              "mAP50-95 | params (M) | GFLOPs | CPU ms | train min |")
    rows = [header, "|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for name in names:
        found = {seed: r for seed in seeds if (r := _stored(folder_name(name, seed))) is not None}
        if not found:
            rows.append(f"| {name} | not run yet ||||||||||")
            continue
        results = list(found.values())
        coco = {k: [r["coco"].get(k, float("nan")) for r in results] for k in ("AP", "AP50", "AP_S", "AP_vt", "AP_t",
                                                                                "AP_s16")}
        per_class = [{row["class"]: row["AP50_95"] for row in r["per_class"]} for r in results]
        tiny = " / ".join(_mean_spread(coco[k], 3) for k in ("AP_vt", "AP_t", "AP_s16"))
        cls = " / ".join(_mean_spread([pc.get(c, float("nan")) for pc in per_class], 3)
                         for c in ("Person", "Car", "Bicycle", "OtherVehicle"))
        costs = next((r["costs"] for r in results if r.get("costs")), {})
        cost = " | ".join(f"{costs[k] / scale:.{digits}f}" if k in costs else "-"
                          for k, scale, digits in (("params", 1e6, 2), ("gflops", 1, 2), ("latency_ms", 1, 1)))
        minutes = _mean_spread([r["train_seconds"] / 60 for r in results], 1)
        rows.append(f"| {name} | {', '.join(map(str, found))} | {_mean_spread(coco['AP'])} | "
                    f"{_mean_spread(coco['AP50'])} | {_mean_spread(coco['AP_S'])} | {tiny} | {cls} | {cost} | "
                    f"{minutes} |")
    return "\n".join(rows)


def main() -> None:
    global OUT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arms", nargs="+", default=DEFAULT_ARMS, help=f"default: the YOLOv5 arms; the modern family's, "
                   f"in order: {' '.join(MODERN_ARMS)}")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--imgsz", type=int, default=320)
    p.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0])
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--costs", action="store_true", help="measure params, GFLOPs and CPU latency of finished arms "
                   "(run alone: it times)")
    p.add_argument("--picture", nargs=3, metavar=("ARM_A", "ARM_B", "VAL_IMAGE"),
                   help="write compare.jpg: one val image with the detections of two arms")
    p.add_argument("--out", type=Path, default=OUT, help="the arms' folders (default runs/benchmarks/hit_uav)")
    args = p.parse_args()
    OUT = args.out.resolve()
    if not HIT_UAV.exists():
        raise SystemExit(f"{HIT_UAV}: not found (the benchmark reads HIT-UAV from ../shared)")
    tables = {seed: arms(args.epochs, args.imgsz, seed) for seed in args.seeds}
    unknown = [a for a in args.arms if a not in tables[args.seeds[0]]]
    if unknown:
        raise SystemExit(f"unknown arm {unknown[0]}; known: {', '.join(tables[args.seeds[0]])}")
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    if not args.report_only and not args.costs and not args.picture:
        for seed in args.seeds:  # every arm once before any arm's second seed
            for name in args.arms:
                run_arm(name, tables[seed][name])
    if args.costs:
        for name in args.arms:
            for seed in args.seeds:
                key = folder_name(name, seed)
                done = OUT / key / "result.json"
                if done.exists():
                    result = json.loads(done.read_text())
                    result["costs"] = measure_costs(key, tables[seed][name])
                    done.write_text(json.dumps(result, indent=1))
                    _keep(result, key)
    if args.picture:
        print(comparison_picture(*args.picture[:2], args.picture[2], OUT / "compare.jpg"))
    print(report(args.arms, args.seeds))


if __name__ == "__main__":
    main()
