"""Hook events: their order and arguments on the toy task, hooks named on the command line, failures."""

import pytest

from tests.utils.engine.test_trainer import ToyTask, _config
from utils.engine.config import ConfigurationError, TrainConfig
from utils.engine.hooks import EVENTS, Hook, HookList, hook_from_name
from utils.engine.trainer import Trainer


class EventLog(Hook):
    def __init__(self):
        self.calls = []

    def before_train(self, ctx):
        self.calls.append(("before_train",))

    def on_epoch_start(self, ctx, epoch):
        self.calls.append(("on_epoch_start", epoch))

    def after_validation(self, ctx, epoch, metrics):
        self.calls.append(("after_validation", epoch, sorted(metrics)))

    def after_epoch(self, ctx):
        self.calls.append(("after_epoch", ctx.progress.row["epoch"], sorted(ctx.progress.row)))

    def after_checkpoint(self, ctx, path, kind):
        assert path.is_file()
        self.calls.append(("after_checkpoint", kind, path.name))

    def after_train(self, ctx):
        self.calls.append(("after_train", sorted(ctx.result)))

    def on_failure(self, ctx, error):
        self.calls.append(("on_failure", type(error).__name__))


class Steps:
    """A duck-typed hook with one event."""

    def __init__(self):
        self.count = 0

    def after_step(self, ctx, batch_index, batch):
        self.count += 1


def test_events_fire_in_order_with_their_arguments(tmp_path):
    log, steps = EventLog(), Steps()
    Trainer(_config(tmp_path, epochs=2), ToyTask(), [log, steps]).run()
    columns = sorted(["epoch", *ToyTask.csv_keys])
    assert log.calls == [
        ("before_train",),
        ("on_epoch_start", 0), ("after_validation", 0, ["mse"]), ("after_checkpoint", "last", "last.pt"),
        ("after_checkpoint", "best", "best.pt"), ("after_epoch", 0, columns),
        ("on_epoch_start", 1), ("after_validation", 1, ["mse"]), ("after_checkpoint", "last", "last.pt"),
        ("after_checkpoint", "best", "best.pt"), ("after_epoch", 1, columns),
        ("after_train", ["mse", "save_dir", "schedule"]),
    ]
    assert steps.count == 2 * 8  # 8 batches per epoch


def test_failure_reaches_the_hooks_and_is_raised(tmp_path):
    class Broken(ToyTask):
        def validate(self, model, trainer):
            raise RuntimeError("validation broke")

    log = EventLog()
    with pytest.raises(RuntimeError, match="validation broke"):
        Trainer(_config(tmp_path), Broken(), [log]).run()
    assert log.calls[-1] == ("on_failure", "RuntimeError")


NOT_A_HOOK = 3


class NeedsArguments(Hook):
    def __init__(self, where: str) -> None:
        self.where = where


class NoEvents:
    pass


def test_hooks_by_name(tmp_path):
    hook = hook_from_name("tests.utils.engine.test_hooks:EventLog")
    assert isinstance(hook, EventLog)
    assert type(hook_from_name("mlflow")).__name__ == "MlflowTracker"
    for bad in ("EventLog", "tests.utils.engine.test_hooks:Nope", "no_such_module_xyz:Hook"):
        with pytest.raises(ValueError, match="--callbacks"):
            hook_from_name(bad)
    for not_a_hook, why in (("NOT_A_HOOK", "not a Hook class"), ("NeedsArguments", "without arguments"),
                            ("NoEvents", "none of the events")):
        with pytest.raises(ValueError, match=why):
            hook_from_name(f"tests.utils.engine.test_hooks:{not_a_hook}")
    config = _config(tmp_path, epochs=1, callbacks=["tests.utils.engine.test_hooks:EventLog"])
    trainer = Trainer(config, ToyTask())
    trainer.run()
    assert trainer.hooks.hooks[0].calls[0] == ("before_train",)


def test_bad_hooks_and_loggers_are_errors(tmp_path):
    with pytest.raises(TypeError, match="not a hook"):
        HookList([object()])
    with pytest.raises(ValueError, match="unknown hook event"):
        HookList([]).fire("after_everything", None)
    with pytest.raises(ConfigurationError, match="--loggers tensorbored: unknown tracker"):
        TrainConfig(loggers=["tensorbored"])
    assert "on_failure" in EVENTS and len(EVENTS) == len(set(EVENTS))


def test_resume_takes_hooks_from_the_command_line_not_the_checkpoint(tmp_path):
    named = "tests.utils.engine.test_hooks:EventLog"
    Trainer(_config(tmp_path, name="a", epochs=1, keep_optimizer=True, callbacks=[named]), ToyTask()).run()
    last = tmp_path / "a" / "weights" / "last.pt"
    resumed = Trainer(_config(tmp_path, resume=str(last), epochs=2), ToyTask())
    resumed.run()
    assert len(resumed.hooks) == 0 and resumed.config.callbacks == []
