from dataclasses import dataclass

import pytest

from utils.engine.config import ENGINE_HYP, ConfigurationError, HypSchema, TrainConfig, check_hyp, load_hyp


@dataclass
class ToyOptions:
    width: int = 1
    noise: float = 0.0


def test_defaults_leave_model_and_hyp_to_the_task():
    assert TrainConfig().cfg == "" and TrainConfig().hyp == "" and TrainConfig().task_options is None
    assert TrainConfig().total_epochs == 30 and TrainConfig(epochs=3).total_epochs == 3


def test_unknown_option_names_the_nearest():
    with pytest.raises(ConfigurationError, match="unknown option 'batchsize' \\(did you mean 'batch_size'\\?\\)"):
        TrainConfig.from_dict({"batchsize": 8})
    assert TrainConfig.from_dict({"batchsize": 8, "epochs": 2}, strict=False).epochs == 2


def test_one_flat_command_line_is_split_between_the_engine_and_the_task():
    config = TrainConfig.from_dict({"epochs": 2, "width": 5}, task_options=ToyOptions)
    assert config.epochs == 2 and config.task_options == ToyOptions(width=5)
    with pytest.raises(ConfigurationError, match="unknown option 'width'"):  # the engine alone has no 'width'
        TrainConfig.from_dict({"width": 5})
    with pytest.raises(ConfigurationError, match="unknown option 'tile' \\(ToyOptions has no such option either\\)"):
        TrainConfig.from_dict({"tile": 640}, task_options=ToyOptions)
    assert config.to_dict()["width"] == 5 and "task_options" not in config.to_dict()
    assert config.replace(width=7, epochs=3).task_options.width == 7


def test_from_yaml_and_back(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("cfg: yolov5n.yaml\nbatch-size: 8\nwidth: 10\n")
    config = TrainConfig.from_yaml(path, task_options=ToyOptions)
    assert (config.cfg, config.batch_size, config.task_options.width) == ("yolov5n.yaml", 8, 10)
    assert TrainConfig.from_dict(config.to_dict(), task_options=ToyOptions) == config


@pytest.mark.parametrize("values, message", [({"imgsz": 0}, "--imgsz"), ({"optimizer": "LBFGS"}, "--optimizer"),
                                             ({"label_smoothing": 1.5}, "smoothing"), ({"epochs": 0}, "--epochs")])
def test_bad_values_are_refused_when_built(values, message):
    with pytest.raises(ConfigurationError, match=message):
        TrainConfig(**values)


ENGINE_KEYS = {"lr0": 0.01, "lrf": 0.01, "momentum": 0.9, "weight_decay": 5e-4, "warmup_epochs": 1.0,
               "warmup_momentum": 0.8, "warmup_bias_lr": 0.1}


def test_the_engine_checks_its_own_hyp_keys_and_a_task_adds_its_own():
    check_hyp(ENGINE_KEYS, "x.yaml")
    with pytest.raises(ConfigurationError, match="unknown hyper-parameter 'gain'"):
        check_hyp({**ENGINE_KEYS, "gain": 1.0}, "x.yaml")
    task = HypSchema(required=frozenset({"gain"}), ranges={"gain": (0.0, 2.0, True, True)})
    check_hyp({**ENGINE_KEYS, "gain": 1.0}, "x.yaml", ENGINE_HYP | task)
    with pytest.raises(ConfigurationError, match="missing hyper-parameters gain"):
        check_hyp(ENGINE_KEYS, "x.yaml", ENGINE_HYP | task)
    with pytest.raises(ConfigurationError, match=r"'gain' is 3; it must be \[0, 2\]"):
        check_hyp({**ENGINE_KEYS, "gain": 3}, "x.yaml", ENGINE_HYP | task)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("warmup_epochs", -1, "'warmup_epochs' is -1; it must be >= 0"), ("nbs", 0, "'nbs' is 0; it must be >= 1"),
    ("lr0", 0, r"'lr0' is 0; it must be \(0, 10\]"), ("lr0", "fast", "'lr0' must be a finite number"),
    ("freeze_bn_stats", "yes", "'freeze_bn_stats' must be true or false"),
    ("optimizer", "RMSprop", "'optimizer' must be SGD, Adam, AdamW or auto"),
])
def test_engine_hyp_values_outside_what_they_can_mean_are_one_line(key, value, message):
    with pytest.raises(ConfigurationError, match=message) as error:
        check_hyp({**ENGINE_KEYS, key: value}, "x.yaml")
    assert str(error.value).startswith("x.yaml: ") and "\n" not in str(error.value)


def test_a_hyp_file_is_found_by_name_in_configs():
    assert load_hyp("hyp.classify_quick.yaml")["optimizer"] == "AdamW"
    with pytest.raises(ConfigurationError, match="nope.yaml: hyper-parameter file not found"):
        load_hyp("nope.yaml")
