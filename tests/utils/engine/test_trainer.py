"""The engine with a toy task: phases, hooks, results.csv, checkpoints, exact resume — in about a second."""

import csv

import pytest
import torch
from torch import nn

from utils.engine.config import TrainConfig
from utils.engine.trainer import Hook, Trainer


class _Loader(list):
    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class ToyTask:
    """Fit y = 3x - 1 with one linear layer: a task in 30 lines."""

    csv_keys = ["train/mse", "val/mse", "x/lr0", "x/lr1", "x/lr2"]
    loss_names = ("mse",)

    def setup(self, trainer: Trainer) -> None:
        g = torch.Generator().manual_seed(0)
        x = torch.rand(32, 1, generator=g)
        self.batches = [(x[i:i + 4], 3 * x[i:i + 4] - 1) for i in range(0, 32, 4)]
        self.train_loader = _Loader(self.batches)
        if trainer.resume_state is not None:
            self.model = nn.Linear(1, 1)
            self.model.load_state_dict(trainer.resume_state["model"]["state_dict"])
        else:
            self.model = nn.Linear(1, 1)
        self.model.yaml, self.model.names = {"toy": True}, ["y"]

    def forward_loss(self, model, batch, trainer):
        x, y = batch
        loss = nn.functional.mse_loss(model(x), y)
        return loss, loss.detach().view(1), len(x)

    def validate(self, model, trainer):
        with torch.no_grad():
            return {"mse": float(sum(nn.functional.mse_loss(model(x), y) for x, y in self.batches) / 8)}

    def fitness(self, metrics):
        return -metrics["mse"]

    def results_row(self, mean_loss, metrics, lrs):
        return [float(mean_loss[0]), metrics.get("mse", float("nan")), *lrs]

    def describe(self, metrics):
        return f"mse {metrics['mse']:.4f}"

    def checkpoint_extras(self):
        return {}

    def finish(self, trainer):
        return {"mse": trainer.state.metrics.get("mse")}


class Recorder(Hook):
    def __init__(self):
        self.calls = []

    def before_train(self, trainer):
        self.calls.append("before")

    def after_epoch(self, trainer):
        self.calls.append(f"epoch{trainer.state.epoch}")

    def after_train(self, trainer):
        self.calls.append("after")


def _config(tmp_path, **kw):
    values = dict(project=str(tmp_path), device="cpu", batch_size=4, workers=0, hyp="hyp.scratch.yaml", epochs=4)
    values.update(kw)
    return TrainConfig(**{**values, "optimizer": "SGD"})


def test_toy_task_trains_through_every_phase(tmp_path):
    hooks = [Recorder()]
    result = Trainer(_config(tmp_path), ToyTask(), hooks).run()
    assert hooks[0].calls == ["before", "epoch0", "epoch1", "epoch2", "epoch3", "after"]
    with open(tmp_path / "exp" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1", "2", "3"]
    assert float(rows[-1]["val/mse"]) < float(rows[0]["val/mse"]) and result["mse"] == float(rows[-1]["val/mse"])
    last = torch.load(tmp_path / "exp" / "weights" / "last.pt", weights_only=True)
    assert last["epoch"] == 3 and last["options"]["epochs"] == 4 and last["optimizer"] is None and last["finished"]


def test_toy_task_resume_equals_a_straight_run(tmp_path):
    Trainer(_config(tmp_path, name="straight"), ToyTask()).run()
    Trainer(_config(tmp_path, name="split", epochs=1, keep_optimizer=True), ToyTask()).run()  # epoch 0: same lr
    Trainer(_config(tmp_path, resume=str(tmp_path / "split" / "weights" / "last.pt"), epochs=4), ToyTask()).run()
    straight = torch.load(tmp_path / "straight" / "weights" / "last.pt", weights_only=True)
    split = torch.load(tmp_path / "split" / "weights" / "last.pt", weights_only=True)
    for key, value in straight["model"]["state_dict"].items():
        assert torch.equal(value, split["model"]["state_dict"][key]), key


class ToyTaskWithAutoBatch(ToyTask):
    def setup(self, trainer: Trainer) -> None:
        super().setup(trainer)
        self.resolved = trainer.resolve_batch_size(self.model, imgsz=1)


def test_autobatch_pick_becomes_the_runs_batch_size(tmp_path, monkeypatch):
    from utils.engine import autobatch

    probed = []
    monkeypatch.setattr(autobatch, "require_cuda", lambda device, distributed: None)  # the probe itself is
    monkeypatch.setattr(autobatch, "auto_batch_size", lambda *a, **k: probed.append(a) or 8)  # tested on CUDA
    task = ToyTaskWithAutoBatch()
    Trainer(_config(tmp_path, batch_size=-1, epochs=1), task).run()
    assert len(probed) == 1 and task.resolved == 8
    options = torch.load(tmp_path / "exp" / "weights" / "last.pt", weights_only=True)["options"]
    assert options["batch_size"] == 8 and "batch_size: 8" in (tmp_path / "exp" / "opt.yaml").read_text()


def test_a_task_that_never_resolves_autobatch_fails_loudly(tmp_path, monkeypatch):
    from utils.engine import autobatch

    monkeypatch.setattr(autobatch, "require_cuda", lambda device, distributed: None)
    with pytest.raises(RuntimeError, match="resolve_batch_size"):
        Trainer(_config(tmp_path, batch_size=-1, epochs=1), ToyTask()).run()


def test_only_due_epochs_are_validated_and_count_for_best(tmp_path):
    class Counting(ToyTask):
        validated: list = []

        def validate(self, model, trainer):
            self.validated.append(trainer.state.epoch)
            return super().validate(model, trainer)

    task = Counting()
    Trainer(_config(tmp_path, epochs=5, val_period=2), task).run()
    assert task.validated[:3] == [1, 3, 4]  # then finish() may validate again
    best = torch.load(tmp_path / "exp" / "weights" / "best.pt", weights_only=True)
    assert best["epoch"] in (1, 3, 4)
