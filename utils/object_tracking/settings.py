"""Tracker settings, by name (bytetrack, botsort) or from a tracker YAML with ultralytics' keys."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from utils.options import ConfigurationError, nearest_hint

TRACKERS = ("bytetrack", "botsort")


@dataclass(frozen=True)
class TrackerSettings:
    """ultralytics' tracker keys and defaults: detections at or above ``track_high_thresh`` are matched first,
    those above ``track_low_thresh`` second (they only keep existing tracks alive), a track starts from a
    detection of at least ``new_track_thresh``, survives ``track_buffer`` frames unseen (at 30 fps), and a pair
    is matched when its cost (1 - IoU, times the score with ``fuse_score``) is at most ``match_thresh``.
    BoT-SORT adds camera-motion compensation (``gmc_method``: sparseOptFlow or none)."""

    tracker_type: str = "bytetrack"
    track_high_thresh: float = 0.25
    track_low_thresh: float = 0.1
    new_track_thresh: float = 0.25
    track_buffer: int = 30
    match_thresh: float = 0.8
    fuse_score: bool = True
    gmc_method: str = "sparseOptFlow"
    proximity_thresh: float = 0.5
    appearance_thresh: float = 0.8
    with_reid: bool = False
    model: str = "auto"  # the ReID model of ultralytics' YAML (appearance matching is not offered here)

    def __post_init__(self) -> None:
        checks = [(self.tracker_type in TRACKERS, f"tracker_type {self.tracker_type!r}: {' or '.join(TRACKERS)}"),
                  (0 <= self.track_low_thresh <= self.track_high_thresh <= 1,
                   f"track_low_thresh {self.track_low_thresh} <= track_high_thresh {self.track_high_thresh}, "
                   f"both in [0, 1]"),
                  (0 <= self.new_track_thresh <= 1, f"new_track_thresh must be in [0, 1], got "
                   f"{self.new_track_thresh}"),
                  (0 < self.match_thresh <= 1, f"match_thresh must be in (0, 1], got {self.match_thresh}"),
                  (self.track_buffer >= 1, f"track_buffer must be >= 1, got {self.track_buffer}"),
                  (self.gmc_method in ("sparseOptFlow", "none", "None", None),
                   f"gmc_method {self.gmc_method!r}: sparseOptFlow or none"),
                  (not self.with_reid, "with_reid: appearance (ReID) matching is not offered; set with_reid: "
                   "False (BoT-SORT then matches by motion and IoU, as ultralytics does by default)")]
        for ok, message in checks:
            if not ok:
                raise ConfigurationError(f"tracker: {message}")

    @property
    def camera_motion(self) -> bool:
        """Whether camera motion is compensated (BoT-SORT with a gmc_method)."""
        return self.tracker_type == "botsort" and self.gmc_method not in ("none", "None", None)


def tracker_settings(tracker: str | Path | TrackerSettings = "bytetrack") -> TrackerSettings:
    """Settings from a name (bytetrack, botsort, with or without .yaml) or a tracker YAML file."""
    if isinstance(tracker, TrackerSettings):
        return tracker
    name = Path(str(tracker)).stem if str(tracker).endswith((".yaml", ".yml")) else str(tracker)
    if not Path(str(tracker)).is_file():
        if name not in TRACKERS:
            raise ConfigurationError(f"--track {tracker}: choose {' or '.join(TRACKERS)}, or a tracker YAML file"
                                     f"{nearest_hint(name, TRACKERS)}")
        return TrackerSettings(tracker_type=name)
    from utils.yaml_files import load_yaml_mapping

    values = load_yaml_mapping(Path(tracker), ConfigurationError)
    known = [f.name for f in dataclasses.fields(TrackerSettings)]
    for key in values:
        if key not in known:
            raise ConfigurationError(f"{tracker}: unknown tracker key '{key}'{nearest_hint(key, known)}")
    return TrackerSettings(**values)
