import pytest

from utils.train_config import ConfigurationError, TrainConfig, check_hyp, load_hyp


def test_defaults_follow_the_weights():
    assert TrainConfig().cfg == "space_depth_n.yaml" and TrainConfig().hyp == "hyp.quick.yaml"
    assert TrainConfig(weights="yolov5n.pt").hyp == "hyp.finetune.yaml" and TrainConfig(weights="x.pt").cfg == ""
    assert TrainConfig().total_epochs == 30 and TrainConfig(epochs=3).total_epochs == 3


def test_unknown_option_names_the_nearest():
    with pytest.raises(ConfigurationError, match="unknown option 'batchsize' \\(did you mean 'batch_size'\\?\\)"):
        TrainConfig.from_dict({"batchsize": 8})
    assert TrainConfig.from_dict({"batchsize": 8, "epochs": 2}, strict=False).epochs == 2


def test_from_yaml_and_back(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("cfg: yolov5n.yaml\nbatch-size: 8\nfreeze: [10]\n")
    config = TrainConfig.from_yaml(path)
    assert (config.cfg, config.batch_size, config.freeze) == ("yolov5n.yaml", 8, [10])
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("values, message", [({"imgsz": 0}, "--imgsz"), ({"optimizer": "LBFGS"}, "--optimizer"),
                                             ({"freeze": [-1]}, "--freeze"), ({"label_smoothing": 1.5}, "smoothing")])
def test_bad_values_are_refused_when_built(values, message):
    with pytest.raises(ConfigurationError, match=message):
        TrainConfig(**values)


def test_shipped_hyp_files_pass_the_check():
    for name in ("hyp.quick.yaml", "hyp.scratch.yaml", "hyp.scratch_large.yaml", "hyp.finetune.yaml"):
        load_hyp(name)
    with pytest.raises(ConfigurationError, match="'lr0' must be a finite number"):
        check_hyp({**load_hyp("hyp.scratch.yaml"), "lr0": "fast"}, "x.yaml")
