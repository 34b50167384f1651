"""Experiment trackers with the real libraries where they run offline here: MLflow (a local SQLite store read
back through MLflow's own client), W&B (offline files), ClearML and Comet (offline, when installed); and the rule
that a tracker that cannot start or breaks costs one warning line, never the run."""

import csv
import importlib.util
import logging
import math

import pytest

from tests.utils.engine.test_trainer import ToyTask, _config
from utils.engine.config import TRACKER_NAMES
from utils.engine.hooks import hook_from_name
from utils.engine.trainer import Trainer
from utils.tracking.base import Tracker, numeric_columns
from utils.tracking.mlflow_tracker import metric_name


def _rows(save_dir):
    with open(save_dir / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "--loggers" in r.getMessage()]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No user credentials or tracker settings leak in (HOME moved, tracker variables cleared)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_API_KEY", "WANDB_MODE", "WANDB_PROJECT",
                 "COMET_API_KEY", "COMET_MODE", "CLEARML_API_ACCESS_KEY", "CLEARML_OFFLINE_MODE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow is not installed")
def test_mlflow_logs_every_column_params_and_files(isolated):
    from mlflow.tracking import MlflowClient

    result = Trainer(_config(isolated, epochs=3, loggers=["mlflow"]), ToyTask()).run()
    save_dir = isolated / "exp"
    assert str(save_dir) == result["save_dir"]
    client = MlflowClient(tracking_uri=f"sqlite:///{isolated / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(isolated.name)
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "exp" and run.info.status == "FINISHED"
    assert run.data.params["hyp/lr0"] == str(_hyp(save_dir)["lr0"])
    assert run.data.params["epochs"] == "3"
    rows = _rows(save_dir)
    for key in ToyTask.csv_keys:
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, metric_name(key)))
        expected = [(int(r["epoch"]), float(r[key])) for r in rows if math.isfinite(float(r[key]))]
        assert [step for step, _ in history] == [step for step, _ in expected], key
        assert [value for _, value in history] == pytest.approx([value for _, value in expected], rel=1e-12), key
    files = {f.path for f in client.list_artifacts(run.info.run_id)}
    assert {"results.csv", "opt.yaml", "hyp.yaml", "weights"} <= files
    assert [f.path for f in client.list_artifacts(run.info.run_id, "weights")] == ["weights/best.pt"]


def _hyp(save_dir):
    import yaml

    return yaml.safe_load((save_dir / "hyp.yaml").read_text())


def test_metric_names_follow_mlflow_rules():
    assert metric_name("coco/AP_S") == "coco/AP_S"
    assert metric_name("metrics/mAP_0.5:0.95") == "metrics/mAP_0.5:0.95"
    assert metric_name("AP(8-16)") == "AP_8-16_"
    assert numeric_columns({"epoch": 3, "a": "0.5", "b": "nan", "c": "", "d": 2}) == {"a": 0.5, "d": 2.0}


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_offline_writes_its_run_files(isolated, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    Trainer(_config(isolated, epochs=2, loggers=["wandb"]), ToyTask()).run()
    runs = list((isolated / "exp" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((isolated / "exp").rglob("*"))
    records = list(runs[0].glob("run-*.wandb"))
    assert records and records[0].stat().st_size > 0


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_without_credentials_is_one_warning_not_a_prompt(isolated, caplog):
    result = Trainer(_config(isolated, epochs=1, loggers=["wandb"]), ToyTask()).run()
    assert "mse" in result
    (line,) = _warnings(caplog)
    assert "no W&B credentials" in line and "WANDB_MODE=offline" in line


@pytest.mark.parametrize("name,module,offline", [("clearml", "clearml", ("CLEARML_OFFLINE_MODE", "1")),
                                                 ("comet", "comet_ml", ("COMET_MODE", "offline"))])
def test_clearml_and_comet_offline(isolated, monkeypatch, name, module, offline, caplog):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e .[trackers])")
    monkeypatch.setenv(*offline)
    monkeypatch.setenv("COMET_OFFLINE_DIRECTORY", str(isolated / "comet"))
    Trainer(_config(isolated, epochs=1, loggers=[name]), ToyTask()).run()
    assert _warnings(caplog) == []


@pytest.mark.parametrize("name", TRACKER_NAMES)
def test_a_missing_package_costs_one_warning(isolated, monkeypatch, caplog, name):
    tracker = hook_from_name(name)
    real = importlib.import_module

    def absent(module, *args, **kwargs):
        if module.split(".")[0] in ("mlflow", "wandb", "clearml", "comet_ml"):
            raise ImportError(module)
        return real(module, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", absent)
    result = Trainer(_config(isolated, epochs=1), ToyTask(), [tracker]).run()
    assert "mse" in result
    (line,) = _warnings(caplog)
    assert f"--loggers {name}:" in line and f"pip install {tracker.package}" in line


def test_a_tracker_that_breaks_mid_run_warns_once_and_stops(isolated, caplog):
    class Flaky(Tracker):
        name = "flaky"

        def __init__(self):
            super().__init__()
            self.epochs, self.closed = [], None

        def open(self, ctx, params):
            assert params["hyp/lr0"] and params["epochs"] == "3"

        def log_metrics(self, metrics, epoch):
            self.epochs.append(epoch)
            if epoch == 1:
                raise ConnectionError("server went away\ntraceback noise")

        def log_files(self, weights, tables, pictures):
            raise AssertionError("not called after the failure")

        def close(self, failed):
            self.closed = failed

    flaky = Flaky()
    result = Trainer(_config(isolated, epochs=3), ToyTask(), [flaky]).run()
    assert "mse" in result and flaky.epochs == [0, 1] and flaky.closed is None
    assert _warnings(caplog) == ["--loggers flaky: server went away; training goes on without it"]
