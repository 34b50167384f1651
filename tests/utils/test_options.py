"""utils/options.py: ultralytics' option names become ours (one table for the faces' run() and the model
object), and one option given under both names is refused."""

from __future__ import annotations

import pytest

from utils.detection.validation import ValidationOptions
from utils.options import ConfigurationError, our_names


def test_ultralytics_names_become_ours():
    assert our_names({"conf": 0.5, "iou": 0.6, "batch": 8, "show_labels": False, "plots": False}, "noplots") == \
        {"conf_thres": 0.5, "iou_thres": 0.6, "batch_size": 8, "hide_labels": True, "noplots": True}
    assert ValidationOptions.from_dict(our_names({"noplots": True}, "plots")).plots is False


def test_one_option_under_two_names_is_refused():
    with pytest.raises(ConfigurationError, match="conf and conf_thres name the same option"):
        our_names({"conf": 0.5, "conf_thres": 0.4}, "plots")
    with pytest.raises(ConfigurationError, match="plots and noplots"):
        our_names({"plots": True, "noplots": True}, "plots")
