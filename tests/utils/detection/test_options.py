"""Detection's own options and hyp keys, and the defaults of train.py."""

import pytest

from utils.detection.options import DETECTION_HYP, DetectionOptions
from utils.detection.task import detection_config
from utils.engine.config import ENGINE_HYP, ConfigurationError, TrainConfig, check_hyp, load_hyp

SCHEMA = ENGINE_HYP | DETECTION_HYP


def test_defaults_follow_the_weights():
    config = detection_config()
    assert config.cfg == "space_depth_n.yaml" and config.hyp == "hyp.quick.yaml"
    assert isinstance(config.task_options, DetectionOptions)
    assert detection_config(weights="yolov5n.pt").hyp == "" and detection_config(weights="x.pt").cfg == ""
    assert detection_config({"tile": 640, "imgsz": 640}).task_options.tile == 640


def test_from_yaml_and_back(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("cfg: yolov5n.yaml\nbatch-size: 8\nfreeze: [10]\n")
    config = TrainConfig.from_yaml(path, task_options=DetectionOptions)
    assert (config.cfg, config.batch_size, config.task_options.freeze) == ("yolov5n.yaml", 8, [10])
    assert TrainConfig.from_dict(config.to_dict(), task_options=DetectionOptions) == config


@pytest.mark.parametrize("values, message", [({"freeze": [-1]}, "--freeze"), ({"tile": 8}, "--tile"),
                                             ({"val_tiles": True}, "--val-tiles needs --tile"),
                                             ({"cache": "tmpfs"}, "--cache tmpfs"), ({"max_pixels": 0}, "--max")])
def test_bad_values_are_refused_when_built(values, message):
    with pytest.raises(ConfigurationError, match=message):
        detection_config(values)


def test_shipped_hyp_files_pass_the_check():
    for name in ("hyp.quick.yaml", "hyp.scratch.yaml", "hyp.scratch_large.yaml", "hyp.finetune.yaml",
                 "hyp.finetune_new_domain.yaml"):
        load_hyp(name, SCHEMA)
    with pytest.raises(ConfigurationError, match="unknown hyper-parameter 'box'"):  # the engine alone
        load_hyp("hyp.scratch.yaml")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("anchor_t", 0, r"'anchor_t' is 0; it must be > 1"), ("scale", 2, r"'scale' is 2; it must be \[0, 1\)"),
    ("mosaic", 2, r"'mosaic' is 2; it must be \[0, 1\]"), ("mixup", 3, "'mixup' is 3"),
    ("degrees", 1e12, "'degrees' is 1000000000000.0"), ("hsv_v", -3, "'hsv_v' is -3"),
    ("fl_gamma", -2, "'fl_gamma' is -2"), ("copy_paste", 0.5, "'copy_paste: 0.5' is not supported"),
    ("min_box_area", 1, "'min_box_area' is 1"), ("nbs", 0, "'nbs' is 0; it must be >= 1"),
])
def test_hyp_values_outside_what_they_can_mean_are_one_line_naming_key_value_and_range(key, value, message):
    hyp = {**load_hyp("hyp.scratch.yaml", SCHEMA), key: value}
    with pytest.raises(ConfigurationError, match=message) as error:
        check_hyp(hyp, "x.yaml", SCHEMA)
    assert str(error.value).startswith("x.yaml: ") and "\n" not in str(error.value)


def test_yolov5_hyp_keys_that_ask_for_nothing_are_accepted():
    check_hyp({**load_hyp("hyp.scratch.yaml", SCHEMA), "copy_paste": 0.0, "iou_t": 0.2, "anchors": 0}, "y.yaml",
              SCHEMA)


def test_old_checkpoints_boolean_cache_reads_as_ram():
    assert DetectionOptions(cache=True).cache == "ram" and DetectionOptions(cache=False).cache is None
    assert DetectionOptions(cache="disk").cache == "disk"
