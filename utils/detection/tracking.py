"""Tracking detections: one tracker per sequence (a video or stream by its source; all loose images, a folder
of frames or a list, as one sequence in the order they come), and the tracks in the MOT challenge's text form.

    trackers = make_tracker("bytetrack")        # or "botsort", or a tracker YAML (ultralytics' keys)
    for det in detector.stream("clip.mp4"):
        tracked = trackers.update_detections(det)  # the frame's tracked boxes, with det.track_ids
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from utils.detection.results import Detections
from utils.object_tracking.byte_tracker import ByteTracker
from utils.object_tracking.settings import TrackerSettings, tracker_settings

IMAGES = "<images>"


def mot_rows(frame: int, det: Detections) -> list[str]:
    """MOT challenge rows of one frame: ``frame,id,left,top,width,height,conf,-1,-1,-1`` (1-based frame)."""
    rows = []
    for (x1, y1, x2, y2), track_id, score in zip(det.xyxy, det.track_ids, det.scores):
        rows.append(f"{frame},{int(track_id)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1")
    return rows


class SequenceTrackers:
    """Routes each frame's Detections to its sequence's tracker; returns the tracked Detections."""

    def __init__(self, settings: TrackerSettings, frame_rate: float = 30.0) -> None:
        self.settings = settings
        self.frame_rate = frame_rate
        self.trackers: dict[str, ByteTracker] = {}

    def sequence_of(self, det: Detections) -> str:
        """The sequence a frame belongs to."""
        return det.source if det.frame is not None else IMAGES

    def tracker_for(self, det: Detections) -> ByteTracker:
        """The tracker of ``det``'s sequence (made on its first frame)."""
        key = self.sequence_of(det)
        if key not in self.trackers:
            self.trackers[key] = ByteTracker(self.settings, self.frame_rate)
        return self.trackers[key]

    def update_detections(self, det: Detections) -> Detections:
        """The frame's tracked boxes (those continuing or confirming a track), with ``track_ids``."""
        pairs = self.tracker_for(det).update(det.xyxy, det.scores, det.classes, det.image)
        keep = np.array([d for d, _ in pairs], int)
        return replace(det, box_array=det.xyxy[keep].reshape(-1, 4), scores=det.scores[keep],
                       classes=det.classes[keep], track_ids=np.array([t for _, t in pairs], int))

    def frame_number(self, det: Detections) -> int:
        """The 1-based number of ``det``'s frame in its sequence (after its update)."""
        return self.tracker_for(det).frame


class MotWriter:
    """Appends each tracked frame to ``folder/<sequence stem>.txt`` (MOT challenge rows)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, Path] = {}

    def write(self, stem: str, frame: int, det: Detections) -> None:
        """Add one frame's rows to its sequence's file."""
        if stem not in self.files:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.files[stem] = self.folder / f"{stem}.txt"
            self.files[stem].write_text("")
        rows = mot_rows(frame, det)
        if rows:
            with open(self.files[stem], "a", encoding="utf-8") as f:
                f.write("\n".join(rows) + "\n")


def make_tracker(tracker: str | Path | TrackerSettings = "bytetrack", frame_rate: float = 30.0) -> SequenceTrackers:
    """Trackers for these settings (a name, a tracker YAML or TrackerSettings)."""
    return SequenceTrackers(tracker_settings(tracker), frame_rate)
