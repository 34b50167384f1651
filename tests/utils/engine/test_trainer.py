"""The engine with a toy task: phases, hooks, results.csv, checkpoints, exact resume — in about a second."""

import csv
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from utils.engine.config import HypSchema, TrainConfig
from utils.engine.contract import RunContext
from utils.engine.hooks import Hook
from utils.engine.trainer import Trainer, missing_task_members


class _Loader(list):
    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


@dataclass
class ToyOptions:
    noise: float = 0.0


class ToyTask:
    """Fit y = 3x - 1 with one linear layer: a task in 30 lines."""

    options_class = ToyOptions
    hyp_schema = HypSchema()  # the engine's keys only
    csv_keys = ["train/mse", "val/mse", "x/lr0", "x/lr1", "x/lr2"]
    loss_names = ("mse",)

    def build_model(self, ctx: RunContext) -> None:
        self.model = nn.Linear(1, 1)
        if ctx.resume_state is not None:
            self.model.load_state_dict(ctx.resume_state["model"]["state_dict"])
        self.model.yaml, self.model.names = {"toy": True}, ["y"]
        self.imgsz = 1

    def build_data(self, ctx: RunContext, batch_size: int) -> None:
        self.batch_size = batch_size
        g = torch.Generator().manual_seed(0)
        x = torch.rand(32, 1, generator=g)
        self.batches = [(x[i:i + 4], 3 * x[i:i + 4] - 1) for i in range(0, 32, 4)]
        self.train_loader = _Loader(self.batches)

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

    def finish(self, ctx):
        return {"mse": ctx.progress.metrics.get("mse")}


class Recorder(Hook):
    def __init__(self):
        self.calls = []

    def before_train(self, ctx):
        self.calls.append("before")

    def after_epoch(self, ctx):
        self.calls.append(f"epoch{ctx.progress.epoch}")

    def after_train(self, ctx):
        self.calls.append("after")


def _config(tmp_path, **kw):
    values = dict(project=str(tmp_path), device="cpu", batch_size=4, workers=0, hyp="hyp.classify_quick.yaml", epochs=4)
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


def test_autobatch_pick_becomes_the_runs_batch_size(tmp_path, monkeypatch):
    from utils.engine import autobatch

    probed = []
    monkeypatch.setattr(autobatch, "require_cuda", lambda device, distributed: None)  # the probe itself is
    monkeypatch.setattr(autobatch, "auto_batch_size", lambda *a, **k: probed.append(a) or 8)  # tested on CUDA
    task = ToyTask()
    Trainer(_config(tmp_path, batch_size=-1, epochs=1), task).run()
    assert len(probed) == 1 and task.batch_size == 8  # measured between build_model and build_data
    options = torch.load(tmp_path / "exp" / "weights" / "last.pt", weights_only=True)["options"]
    assert options["batch_size"] == 8 and "batch_size: 8" in (tmp_path / "exp" / "opt.yaml").read_text()


def test_an_object_missing_protocol_members_is_refused_by_name(tmp_path):
    assert missing_task_members(ToyTask()) == []
    with pytest.raises(TypeError, match="lacks build_data"):
        Trainer(_config(tmp_path), type("NoData", (), {k: v for k, v in vars(ToyTask).items()
                                                        if k != "build_data"})())


def test_task_options_of_another_task_are_refused(tmp_path):
    from utils.engine.config import ConfigurationError

    @dataclass
    class Other:
        tile: int = 0

    with pytest.raises(ConfigurationError, match="ToyTask takes ToyOptions, not Other"):
        Trainer(TrainConfig(task_options=Other()), ToyTask())
    config = Trainer(_config(tmp_path), ToyTask()).config
    assert isinstance(config.task_options, ToyOptions)


def test_only_due_epochs_are_validated_and_count_for_best(tmp_path):
    class Counting(ToyTask):
        validated: list = []

        def validate(self, model, ctx):
            self.validated.append(ctx.progress.epoch)
            return super().validate(model, ctx)

    task = Counting()
    Trainer(_config(tmp_path, epochs=5, val_period=2), task).run()
    assert task.validated[:3] == [1, 3, 4]  # then finish() may validate again
    best = torch.load(tmp_path / "exp" / "weights" / "best.pt", weights_only=True)
    assert best["epoch"] in (1, 3, 4)


class _FirstWeights(Hook):
    def before_train(self, ctx):
        self.weight = ctx.model.weight.detach().clone()


def test_a_run_shorter_than_one_accumulation_still_steps(tmp_path):
    """8 batches of 4 against a nominal batch of 64, ultralytics' warm-up (none in a one-epoch run): the
    accumulation is capped at the run's length, as ultralytics caps it, so the run steps once."""
    from utils.engine.config import CONFIG_DIR

    hyp = (CONFIG_DIR / "hyp.classify_quick.yaml").read_text() + "\nwarmup: ultralytics\n"
    (tmp_path / "hyp.yaml").write_text(hyp)
    task, first = ToyTask(), _FirstWeights()
    Trainer(_config(tmp_path, epochs=1, hyp=str(tmp_path / "hyp.yaml")), task, [first]).run()
    assert not torch.equal(task.model.weight, first.weight)
