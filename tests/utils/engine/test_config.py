import pytest

from utils.engine.config import ConfigurationError, TrainConfig, check_hyp, load_hyp


def test_defaults_follow_the_weights():
    assert TrainConfig().cfg == "space_depth_n.yaml" and TrainConfig().hyp == "hyp.quick.yaml"
    assert TrainConfig(weights="yolov5n.pt").hyp == "" and TrainConfig(weights="x.pt").cfg == ""  # chosen later
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
    for name in ("hyp.quick.yaml", "hyp.scratch.yaml", "hyp.scratch_large.yaml", "hyp.finetune.yaml",
                 "hyp.finetune_new_domain.yaml"):
        load_hyp(name)
    with pytest.raises(ConfigurationError, match="'lr0' must be a finite number"):
        check_hyp({**load_hyp("hyp.scratch.yaml"), "lr0": "fast"}, "x.yaml")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("anchor_t", 0, r"'anchor_t' is 0; it must be > 1"), ("scale", 2, r"'scale' is 2; it must be \[0, 1\)"),
    ("mosaic", 2, r"'mosaic' is 2; it must be \[0, 1\]"), ("mixup", 3, "'mixup' is 3"),
    ("degrees", 1e12, "'degrees' is 1000000000000.0"), ("hsv_v", -3, "'hsv_v' is -3"),
    ("warmup_epochs", -1, "'warmup_epochs' is -1; it must be >= 0"), ("fl_gamma", -2, "'fl_gamma' is -2"),
    ("nbs", 0, "'nbs' is 0; it must be >= 1"), ("lr0", 0, r"'lr0' is 0; it must be \(0, 10\]"),
    ("copy_paste", 0.5, "'copy_paste: 0.5' is not supported"), ("min_box_area", 1, "'min_box_area' is 1"),
    ("freeze_bn_stats", "yes", "'freeze_bn_stats' must be true or false"),
    ("optimizer", "RMSprop", "'optimizer' must be SGD, Adam or AdamW"),
])
def test_hyp_values_outside_what_they_can_mean_are_one_line_naming_key_value_and_range(key, value, message):
    hyp = {**load_hyp("hyp.scratch.yaml"), key: value}
    with pytest.raises(ConfigurationError, match=message) as error:
        check_hyp(hyp, "x.yaml")
    assert str(error.value).startswith("x.yaml: ") and "\n" not in str(error.value)


def test_yolov5_hyp_keys_that_ask_for_nothing_are_accepted():
    check_hyp({**load_hyp("hyp.scratch.yaml"), "copy_paste": 0.0, "iou_t": 0.2, "anchors": 0}, "yolov5.yaml")
