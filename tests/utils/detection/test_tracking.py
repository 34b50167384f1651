"""utils/detection/tracking.py: one tracker per video or stream, loose images as one sequence; MOT rows."""

from __future__ import annotations

import numpy as np

from utils.detection.results import Detections
from utils.detection.tracking import MotWriter, make_tracker


def _frame(source: str, index: int | None, x: float) -> Detections:
    return Detections(np.array([[x, 10, x + 20, 40]], np.float32), np.array([0.9]), np.array([0]), ["car"],
                      (100, 200), source, index, None)


def test_each_video_has_its_own_tracks_and_rows(tmp_path):
    trackers = make_tracker("bytetrack")
    writer = MotWriter(tmp_path / "tracks")
    for f in range(3):
        for video in ("a.mp4", "b.mp4"):
            det = trackers.update_detections(_frame(video, f, 10 + 4 * f))
            assert det.track_ids.tolist() == [1]  # ids count per sequence
            writer.write(video[0], trackers.frame_number(det), det)
    rows = (tmp_path / "tracks" / "a.txt").read_text().splitlines()
    assert rows[0] == "1,1,10.00,10.00,20.00,30.00,0.9000,-1,-1,-1" and rows[2].startswith("3,1,18.00,")
    images = [trackers.update_detections(_frame(f"{k}.jpg", None, 10 + 4 * k)) for k in range(3)]
    assert [d.track_ids.tolist() for d in images] == [[1], [1], [1]]  # a folder of frames is one sequence
