"""--evolve: yolov5's mutation, the evolve.csv layout, determinism for a seed, continuing after a kill, and the
real classification run end to end."""

import csv

import numpy as np
import pytest
import yaml

from utils.engine.config import ConfigurationError, TrainConfig
from utils.engine.evolve import DETECTION_TERMS, MUTATION, evolve, mutate

BASE = {"lr0": 0.01, "lrf": 0.1, "momentum": 0.9, "weight_decay": 0.0005, "warmup_epochs": 1.0,
        "warmup_momentum": 0.8, "warmup_bias_lr": 0.1, "mosaic": 1.0, "degrees": 0.0, "optimizer": "SGD"}


class FakeTrain:
    """Scores a hyp file without training: fitness peaks at lr0 = 0.02, as a detection result."""

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def __call__(self, config, callbacks=()):
        if self.stop_after is not None and len(self.calls) == self.stop_after:
            raise KeyboardInterrupt  # a kill in the middle of a generation
        hyp = yaml.safe_load(open(config.hyp))
        self.calls.append(hyp)
        score = 0.5 - abs(hyp["lr0"] - 0.02) * 10
        save_dir = f"{config.project}/{config.name}"
        return {"save_dir": save_dir, "P": 0.5, "R": 0.4, "mAP50": score + 0.1, "mAP50_95": score,
                "val_loss": [1, 2, 3], "coco": {"AP": score, "AP_S": score / 2}}


@pytest.fixture
def hyp_file(tmp_path):
    path = tmp_path / "hyp.base.yaml"
    path.write_text(yaml.safe_dump(BASE, sort_keys=False))
    return path


def _config(tmp_path, hyp_file, **kw):
    return TrainConfig(hyp=str(hyp_file), project=str(tmp_path / "evo"), name="e", seed=kw.pop("seed", 0), **kw)


def test_mutation_follows_yolov5_rules():
    rng = np.random.default_rng(0)
    for _ in range(50):
        child = mutate(BASE, rng)
        assert child != BASE and child["optimizer"] == "SGD" and child["degrees"] == 0.0  # zeros stay zero
        for key, (_, low, high) in MUTATION.items():
            if key in child and BASE[key]:
                assert low <= child[key] <= high and 0.3 * BASE[key] - 1e-12 <= child[key] or child[key] == low
                assert child[key] <= max(3.0 * BASE[key], low) + 1e-12
    with pytest.raises(ConfigurationError, match="no key"):
        mutate({"optimizer": "SGD", "nbs": 64}, rng)


def test_evolution_writes_the_yolov5_layout_and_the_best_hyp(tmp_path, hyp_file):
    fake = FakeTrain()
    folder = evolve(fake, _config(tmp_path, hyp_file), 6, "AP", sampler="genetic")
    assert fake.calls[0] == BASE  # generation 0: the starting file as it is
    assert all(call != BASE for call in fake.calls[1:])
    with open(folder / "evolve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header == DETECTION_TERMS + ["fitness"] + list(BASE)
    assert len(rows) == 6
    best = max(rows, key=lambda r: float(r["fitness"]))
    saved = yaml.safe_load((folder / "hyp_evolve.yaml").read_text())
    assert saved["lr0"] == float(best["lr0"]) and saved["optimizer"] == "SGD" and set(saved) == set(BASE)
    assert (folder / "evolve.png").stat().st_size > 5000
    assert (folder / "runs" / "gen005.hyp.yaml").is_file()


def test_same_seed_same_generations_and_a_kill_continues(tmp_path, hyp_file):
    straight = FakeTrain()
    evolve(straight, _config(tmp_path / "a", hyp_file), 5, "yolov5", sampler="genetic")
    killed = FakeTrain(stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        evolve(killed, _config(tmp_path / "b", hyp_file), 5, "yolov5", sampler="genetic")
    resumed = FakeTrain()
    evolve(resumed, _config(tmp_path / "b", hyp_file), 5, "yolov5", sampler="genetic")
    assert killed.calls + resumed.calls == straight.calls
    other = FakeTrain()
    evolve(other, _config(tmp_path / "c", hyp_file, seed=1), 5, "yolov5", sampler="genetic")
    assert other.calls[1:] != straight.calls[1:]


def test_bad_requests_are_one_line_errors(tmp_path, hyp_file):
    with pytest.raises(ConfigurationError, match="--evolve-fitness AP_L"):
        evolve(FakeTrain(), _config(tmp_path, hyp_file), 2, "AP_L", sampler="genetic")
    with pytest.raises(ConfigurationError, match="--evolve 0"):
        evolve(FakeTrain(), _config(tmp_path, hyp_file), 0, sampler="genetic")
    evolve(FakeTrain(), _config(tmp_path, hyp_file), 1, sampler="genetic")
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**BASE, "mixup": 0.1}))
    with pytest.raises(ConfigurationError, match="another hyp file"):
        evolve(FakeTrain(), _config(tmp_path, other), 2, sampler="genetic")


def test_classify_train_evolves_end_to_end(tmp_path, monkeypatch):
    """classify/train.py --evolve 2 on a tiny set: two real runs, scored by top-1."""
    import subprocess
    import sys
    from pathlib import Path

    from utils.classification.synthetic import generate_classification_set

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    generate_classification_set(tmp_path / "ds", n_train=4, n_val=1, seed=0)
    (tmp_path / "d.yaml").write_text(f"path: {tmp_path / 'ds'}\n")
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "classify/train.py", "--evolve", "2", "--data", str(tmp_path / "d.yaml"),
                          "--epochs", "1", "--batch-size", "8", "--workers", "0", "--device", "cpu",
                          "--project", str(tmp_path / "runs" / "train"), "--name", "evo"],
                         cwd=root, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    folder = tmp_path / "runs" / "evolve" / "evo"
    with open(folder / "evolve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(0.0 <= float(r["fitness"]) <= 1.0 for r in rows)
    assert float(rows[0]["fitness"]) == float(rows[0]["metrics/accuracy_top1"])
    first = folder / "runs" / "gen000"
    assert not (first / "weights").exists() and (first / "results.csv").is_file()
    assert (folder / "hyp_evolve.yaml").is_file() and (folder / "evolve.png").is_file()


def test_anchor_free_hyp_files_evolve_on_their_own_scale():
    import numpy as np
    import yaml

    from utils.engine.evolve import _evolving, fitness_terms, mutate
    from utils.paths import PACKAGE_ROOT

    base = yaml.safe_load((PACKAGE_ROOT / "configs" / "hyp.anchor_free.yaml").read_text())
    rng = np.random.default_rng(0)
    children = [mutate(base, rng) for _ in range(20)]
    assert all(1.0 <= c["box"] <= 20.0 and 0.4 <= c["dfl"] <= 6.0 for c in children)  # not yolov5's box <= 0.2
    assert any(c["box"] != base["box"] for c in children) and "dfl" in _evolving(base)
    assert all(c["optimizer"] == "auto" and c["schedule"] == "linear" for c in children)
    terms = fitness_terms({"P": 0.1, "R": 0.2, "mAP50": 0.3, "mAP50_95": 0.2, "val_loss": [1.0, 2.0, 3.0],
                           "loss_names": ["box", "cls", "dfl"]})
    assert terms["val/dfl_loss"] == 3.0 and "val/obj_loss" not in terms


class NanSmallTrain(FakeTrain):
    """A dataset without small objects: AP_S is NaN, the rest scores as FakeTrain does."""

    def __call__(self, config, callbacks=()):
        result = super().__call__(config, callbacks)
        result["coco"]["AP_S"] = float("nan")
        return result


def test_a_nan_fitness_stops_at_once_and_the_fitness_cannot_change_mid_table(tmp_path, hyp_file):
    with pytest.raises(ConfigurationError, match="AP_S: gen000 scored nan .*no small objects"):
        evolve(NanSmallTrain(), _config(tmp_path, hyp_file), 3, "AP_S", sampler="genetic")
    assert not (tmp_path / "evo" / "e" / "evolve.csv").exists()  # no NaN row to rank
    evolve(FakeTrain(), _config(tmp_path / "b", hyp_file), 2, "AP", sampler="genetic")
    with pytest.raises(ConfigurationError, match="ranks by --evolve-fitness AP, not yolov5"):
        evolve(FakeTrain(), _config(tmp_path / "b", hyp_file), 3, "yolov5", sampler="genetic")


def test_a_table_with_nan_rows_from_before_ranks_them_last(tmp_path):
    from utils.engine.evolve import EvolveTable, choose_parent

    table = EvolveTable(tmp_path / "evolve.csv", ["lr0"])
    for fitness, lr0 in ((float("nan"), 0.01), (0.125, 0.02), (0.1, 0.03)):
        table.append({"fitness": fitness, "lr0": lr0})
    assert float(table.best()["fitness"]) == 0.125
    parent = choose_parent(table.rows, ["lr0"], np.random.default_rng(0))  # no "probabilities contain NaN"
    assert parent["lr0"] in (0.02, 0.03)


def test_a_run_shorter_than_warm_up_is_said_once(tmp_path, hyp_file, monkeypatch):
    from utils.engine import evolve as evolve_module

    said = []
    monkeypatch.setattr(evolve_module.LOGGER, "info", said.append)  # the lines, whatever the logging set-up

    class InsideWarmUp(FakeTrain):
        def __call__(self, config, callbacks=()):
            return {**super().__call__(config, callbacks), "schedule": {"warmup_iterations": 100, "iterations": 8}}

    evolve(InsideWarmUp(), _config(tmp_path, hyp_file), 3, "AP", sampler="genetic")
    assert sum("never leaves warm-up" in line for line in said) == 1
    said.clear()
    evolve(FakeTrain(), _config(tmp_path / "other", hyp_file), 2, "AP", sampler="genetic")
    assert not any("warm-up" in line for line in said)
