"""--evolve N: a search over the hyp file, one short training run per generation.

Generation 0 trains the starting hyp file as it is (the baseline). Later ones are drawn by optuna's TPE (the
default, utils/engine/tuners.py) or by yolov5's genetic mutation, which picks a parent among the five
fittest so far (weighted by fitness), multiplies each key by a random factor (yolov5's mutation: probability 0.8,
sigma 0.2, factors in [0.3, 3]) and clips it to the key's limits. Keys at 0 stay 0 (the mutation multiplies);
keys outside :data:`MUTATION` never change.

Written to the evolution folder:
    evolve.csv        fitness terms, then the hyp keys: one row per generation (yolov5's layout, with coco/AP,
                      coco/AP_S and fitness added before the hyp keys)
    hyp_evolve.yaml   the fittest hyp file so far
    evolve.png        each mutated key against fitness (every 10 generations and at the end)
    runs/genNNN/      each generation's run (results.csv; its weights are deleted once it is scored)

Killing it loses at most the generation in progress: the same command continues after the last row of
evolve.csv. A seed gives the same generations (either sampler's draws are seeded by seed and generation).
"""

from __future__ import annotations

import csv
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from utils.engine.config import CONFIG_DIR, ConfigurationError, TrainConfig
from utils.engine.tuners import SAMPLERS, tpe_child
from utils.logging import LOGGER
from utils.paths import find_named_file
from utils.plots import plot_evolution
from utils.wording import face_command
from utils.yaml_files import load_yaml_mapping

# key -> (mutation scale, lower limit, upper limit): yolov5's table, for the keys our hyp files share with it
MUTATION: dict[str, tuple[float, float, float]] = {
    "lr0": (1, 1e-5, 1e-1), "lrf": (1, 0.01, 1.0), "momentum": (0.3, 0.6, 0.98), "weight_decay": (1, 0.0, 0.001),
    "warmup_epochs": (1, 0.0, 5.0), "warmup_momentum": (1, 0.0, 0.95), "warmup_bias_lr": (1, 0.0, 0.2),
    "box": (1, 0.02, 0.2), "cls": (1, 0.2, 4.0), "cls_pw": (1, 0.5, 2.0), "obj": (1, 0.2, 4.0),
    "obj_pw": (1, 0.5, 2.0), "iou_t": (0, 0.1, 0.7), "anchor_t": (1, 2.0, 8.0), "fl_gamma": (0, 0.0, 2.0),
    "hsv_h": (1, 0.0, 0.1), "hsv_s": (1, 0.0, 0.9), "hsv_v": (1, 0.0, 0.9), "degrees": (1, 0.0, 45.0),
    "translate": (1, 0.0, 0.9), "scale": (1, 0.0, 0.9), "shear": (1, 0.0, 10.0), "perspective": (0, 0.0, 0.001),
    "flipud": (1, 0.0, 1.0), "fliplr": (0, 0.0, 1.0), "mosaic": (1, 0.0, 1.0), "mixup": (1, 0.0, 1.0),
    "copy_paste": (1, 0.0, 1.0),
}
# The anchor-free loss (YOLOv8 / YOLO11, a hyp file with 'dfl') weighs its terms on another scale: box 7.5, dfl 1.5
# (ultralytics' tuner limits); yolov5's box limits would clip its 7.5 to 0.2.
ANCHOR_FREE_MUTATION = {"box": (1, 1.0, 20.0), "dfl": (1, 0.4, 6.0)}
PARENTS = 5
PLOT_EVERY = 10  # generations between evolve.png updates (and at the end)
MUTATION_PROBABILITY, SIGMA = 0.8, 0.2

DETECTION_TERMS = ["metrics/precision", "metrics/recall", "metrics/mAP_0.5", "metrics/mAP_0.5:0.95",
                   "val/box_loss", "val/obj_loss", "val/cls_loss", "coco/AP", "coco/AP_S"]
CLASSIFICATION_TERMS = ["metrics/accuracy_top1", "metrics/accuracy_top5", "val/loss"]


def _coco(result: dict, key: str) -> float:
    return float(result.get("coco", {}).get(key, math.nan))


FITNESS: dict[str, Callable[[dict], float]] = {
    "yolov5": lambda r: 0.1 * r["mAP50"] + 0.9 * r["mAP50_95"],
    "AP": lambda r: _coco(r, "AP"),
    "AP_S": lambda r: _coco(r, "AP_S"),
    "top1": lambda r: r["top1"],
}


def fitness_terms(result: dict) -> dict[str, float]:
    """The yolov5 fitness columns of one run's final metrics (detection or classification); the validation losses
    under the names the run gives them (``loss_names``: box obj cls, or box cls dfl for the anchor-free head)."""
    if "mAP50" in result:
        loss = list(result.get("val_loss", [math.nan] * 3))
        values = [result["P"], result["R"], result["mAP50"], result["mAP50_95"], *loss, _coco(result, "AP"),
                  _coco(result, "AP_S")]
        names = list(DETECTION_TERMS)
        if "loss_names" in result:
            names[4:7] = [f"val/{n}_loss" for n in result["loss_names"]]
        return dict(zip(names, map(float, values)))
    return dict(zip(CLASSIFICATION_TERMS, [float(result.get(k, math.nan)) for k in ("top1", "top5", "val_loss")]))


def mutation_table(hyp: dict[str, Any]) -> dict[str, tuple[float, float, float]]:
    """The keys evolution moves and their limits for this hyp file's loss (yolov5's, or the anchor-free one's)."""
    return {**MUTATION, **ANCHOR_FREE_MUTATION} if "dfl" in hyp else MUTATION


def mutate(parent: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """yolov5's mutation of the keys in the mutation table, clipped to their limits, 5 significant digits."""
    table = mutation_table(parent)
    keys = [k for k in parent if k in table and isinstance(parent[k], (int, float))
            and not isinstance(parent[k], bool)]
    scales = np.array([table[k][0] for k in keys], dtype=float)
    if not keys or not scales.any():
        raise ConfigurationError("--evolve: the hyp file has no key that evolution can change")
    factors = np.ones(len(keys))
    while (factors == 1).all():  # mutate until something changes
        chosen = rng.random(len(keys)) < MUTATION_PROBABILITY
        factors = (scales * chosen * rng.standard_normal(len(keys)) * rng.random() * SIGMA + 1).clip(0.3, 3.0)
    child = dict(parent)
    for key, factor in zip(keys, factors):
        _, low, high = table[key]
        value = min(max(float(parent[key]) * factor, low), high) if parent[key] else 0.0
        child[key] = float(f"{value:.5g}")
    return child


def choose_parent(rows: list[dict[str, Any]], hyp_keys: list[str], rng: np.random.Generator) -> dict[str, Any]:
    """One of the PARENTS fittest rows, drawn with weights fitness - min + 1e-6 (yolov5's 'single' parent)."""
    scored = [r for r in rows if math.isfinite(float(r["fitness"]))] or rows[:1]
    best = sorted(scored, key=lambda r: float(r["fitness"]), reverse=True)[:PARENTS]
    fitness = np.array([float(r["fitness"]) for r in best])
    weights = fitness - fitness.min() + 1e-6
    row = best[int(rng.choice(len(best), p=weights / weights.sum()))]
    return {k: _number(row[k]) for k in hyp_keys}


def _number(text: Any) -> Any:
    if isinstance(text, str):
        if text in ("True", "False"):
            return text == "True"
        try:
            return float(text) if any(c in text for c in ".eE") or text in ("nan", "inf") else int(text)
        except ValueError:
            return text
    return text


def evolution_folder(config: TrainConfig) -> Path:
    """A default project's sibling (runs/train -> runs/evolve/<name>), else --project/--name: the same command
    continues there."""
    project = Path(config.project)
    return (project.parent / "evolve" if project.name == "train" else project) / config.name


def evolve(train: Callable[..., dict], config: TrainConfig, generations: int, fitness_name: str = "yolov5",
           callbacks: list | tuple = (), sampler: str = "tpe") -> Path:
    """Run (or continue) ``generations`` generations of ``train(config)``; returns the evolution folder.

    ``sampler`` draws each generation after the first: "tpe" (optuna, see utils/engine/tuners.py) or "genetic"
    (yolov5's mutation); either can continue an evolve.csv the other began."""
    if generations < 1:
        raise ConfigurationError(f"--evolve {generations}: the number of generations must be >= 1")
    if fitness_name not in FITNESS:
        raise ConfigurationError(f"--evolve-fitness {fitness_name}: choose from {', '.join(FITNESS)}")
    if sampler not in SAMPLERS:
        raise ConfigurationError(f"--evolve-sampler {sampler}: choose from {', '.join(SAMPLERS)}")
    if not config.hyp:
        raise ConfigurationError("--evolve needs the starting hyp file (--hyp)")
    found = find_named_file(config.hyp, CONFIG_DIR, ".yaml")
    if found is None:
        raise ConfigurationError(f"{config.hyp}: hyper-parameter file not found")
    base = load_yaml_mapping(found, ConfigurationError)
    folder = evolution_folder(config)
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    table = EvolveTable(folder / "evolve.csv", list(base))
    _same_fitness(folder / "fitness.txt", fitness_name)
    LOGGER.info(f"evolve: {generations} generations from {found} into {folder} (fitness {fitness_name}, {sampler}; "
                f"{len(table.rows)} done)")
    start = len(table.rows)
    for generation in range(start, generations):
        rng = np.random.default_rng([int(config.seed), generation])
        hyp = base if not table.rows else _next_hyp(table.rows, base, sampler, rng, int(config.seed), generation)
        hyp_file = folder / "runs" / f"gen{generation:03d}.hyp.yaml"
        hyp_file.write_text(yaml.safe_dump(hyp, sort_keys=False))
        run = config.replace(hyp=str(hyp_file), project=str(folder / "runs"), name=f"gen{generation:03d}",
                             exist_ok=True, resume=False, nosave=True, noplots=True, noval=True)
        result = train(run, callbacks=callbacks)
        shutil.rmtree(Path(result["save_dir"]) / "weights", ignore_errors=True)  # scored; keep results.csv
        score = FITNESS[fitness_name](result)
        if not math.isfinite(score):
            hint = " (the validation split has no small objects?)" if fitness_name == "AP_S" else ""
            raise ConfigurationError(f"--evolve-fitness {fitness_name}: gen{generation:03d} scored {score}{hint}; "
                                     f"evolution needs a finite fitness: choose another (e.g. AP or yolov5) and a new "
                                     f"--name")
        table.append({**fitness_terms(result), "fitness": score, **hyp})
        if generation == start:  # the schedule is the same for every generation: said once
            _warn_if_only_warm_up(result.get("schedule"))
        best = table.best()
        LOGGER.info(f"evolve: gen{generation:03d} ({generation + 1} of {generations}) fitness {score:.5f}; best so far "
                    f"{float(best['fitness']):.5f} in gen{table.rows.index(best):03d}")
        write_best(folder / "hyp_evolve.yaml", best, list(base), fitness_name, len(table.rows))
        if (generation + 1) % PLOT_EVERY == 0:
            plot_evolution(folder / "evolve.csv", _evolving(base), folder / "evolve.png")
    plot_evolution(folder / "evolve.csv", _evolving(base), folder / "evolve.png")
    LOGGER.info(f"evolve: the fittest hyp file is {folder / 'hyp_evolve.yaml'} (evolve.csv, evolve.png beside it)")
    return folder


def _warn_if_only_warm_up(schedule: dict | None) -> None:
    """One line when a generation ends inside the warm-up: its learning rate never reached the hyp's lr0, so
    generations differing in lr0, momentum or the schedule train alike and the fitness cannot tell them apart."""
    if schedule and schedule["iterations"] <= schedule["warmup_iterations"]:
        LOGGER.info(f"evolve: each generation trains {schedule['iterations']} iterations, all inside the "
                    f"{schedule['warmup_iterations']}-iteration warm-up: the learning rate never leaves warm-up, so "
                    f"the fitness cannot separate the candidates; train more epochs (or lower warmup_epochs)")


def _finite_or_lowest(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _same_fitness(path: Path, fitness_name: str) -> None:
    """An evolution keeps the fitness it began with (its rows are ranked by it); the name is kept beside
    evolve.csv."""
    if path.is_file():
        before = path.read_text().strip()
        if before != fitness_name:
            raise ConfigurationError(f"{path.parent}: this evolution ranks by --evolve-fitness {before}, not "
                                     f"{fitness_name}; continue it with {before}, or start another with a new --name")
    else:  # a new evolution (or one begun before the name was recorded: from now on it is kept)
        path.write_text(fitness_name + "\n")


def _next_hyp(rows: list[dict[str, Any]], base: dict[str, Any], sampler: str, rng: np.random.Generator, seed: int,
              generation: int) -> dict[str, Any]:
    if sampler == "tpe":
        return tpe_child(rows, base, mutation_table(base), seed, generation)
    return mutate(choose_parent(rows, list(base), rng), rng)


def _evolving(hyp: dict[str, Any]) -> list[str]:
    """The keys mutation can move (in the table, a non-zero number, a non-zero scale): evolve.png's panels."""
    table = mutation_table(hyp)
    return [k for k, v in hyp.items() if k in table and table[k][0] and isinstance(v, (int, float))
            and not isinstance(v, bool) and v]


class EvolveTable:
    """evolve.csv: read on start (a continued evolution), one row appended atomically per generation."""

    def __init__(self, path: Path, hyp_keys: list[str]) -> None:
        self.path, self.hyp_keys = path, hyp_keys
        self.rows: list[dict[str, Any]] = []
        if path.is_file():
            with open(path, newline="") as f:
                self.rows = list(csv.DictReader(f))
            missing = [k for k in hyp_keys if self.rows and k not in self.rows[0]]
            if missing:
                raise ConfigurationError(f"{path}: written for another hyp file (no column {missing[0]}); use "
                                         f"another --name or remove it")

    def append(self, row: dict[str, Any]) -> None:
        """Add one generation's row to evolve.csv."""
        self.rows.append({k: str(v) for k, v in row.items()})
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def best(self) -> dict[str, Any]:
        """The fittest row (rows of a non-finite fitness, from tables of older versions, never win)."""
        return max(self.rows, key=lambda r: _finite_or_lowest(float(r["fitness"])))


def write_best(path: Path, row: dict[str, Any], hyp_keys: list[str], fitness_name: str, generations: int) -> None:
    """Write the fittest generation's hyp file (atomically), headed by its fitness and the command to train it."""
    header = (f"# the fittest of {generations} generations of --evolve: {fitness_name} fitness {row['fitness']}\n"
              f"# train with: {face_command('train')} --hyp {path}\n")
    hyp = {k: _number(row[k]) for k in hyp_keys}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(header + yaml.safe_dump(hyp, sort_keys=False))
    os.replace(tmp, path)
