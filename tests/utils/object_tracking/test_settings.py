"""utils/object_tracking/settings.py: names and ultralytics-form YAML files read; impossible settings refused."""

from __future__ import annotations

import pytest

from utils.object_tracking.settings import TrackerSettings, tracker_settings
from utils.options import ConfigurationError


def test_names_and_yaml_files(tmp_path):
    assert tracker_settings("bytetrack").tracker_type == "bytetrack"
    assert tracker_settings("botsort.yaml").camera_motion and not tracker_settings("bytetrack").camera_motion
    path = tmp_path / "mine.yaml"
    path.write_text("tracker_type: botsort\ntrack_high_thresh: 0.5\ntrack_buffer: 60\ngmc_method: none\n")
    settings = tracker_settings(path)
    assert settings.track_high_thresh == 0.5 and settings.track_buffer == 60 and not settings.camera_motion


def test_mistakes_are_one_line(tmp_path):
    with pytest.raises(ConfigurationError, match="bytetrack or botsort.*did you mean 'bytetrack'"):
        tracker_settings("bytetrak")
    path = tmp_path / "bad.yaml"
    path.write_text("tracker_type: bytetrack\nmatch_tresh: 0.8\n")
    with pytest.raises(ConfigurationError, match="match_tresh.*match_thresh"):
        tracker_settings(path)
    with pytest.raises(ConfigurationError, match="ReID"):
        TrackerSettings(with_reid=True)
    with pytest.raises(ConfigurationError, match="track_low_thresh"):
        TrackerSettings(track_low_thresh=0.6, track_high_thresh=0.5)
