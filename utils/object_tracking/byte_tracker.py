"""ByteTrack (and BoT-SORT without appearance features): every detection box is used. Confident detections
are matched to the predicted tracks first; the remaining tracks then take the low-confidence detections (an
occluded or blurred object scores low but is still there), so tracks survive where a one-threshold tracker
loses them. New tracks need a confirming second frame; lost tracks are kept ``track_buffer`` frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from utils.object_tracking.camera_motion import CameraMotion, apply_motion
from utils.object_tracking.kalman_filter import KalmanFilter, from_form, to_form
from utils.object_tracking.matching import assign, box_iou
from utils.object_tracking.settings import TrackerSettings

SECOND_MATCH_LIMIT = 0.5  # cost limit for the low-confidence detections
UNCONFIRMED_MATCH_LIMIT = 0.7  # cost limit for tracks seen once


@dataclass
class Track:
    """One object's track: its Kalman state, last score and class, and its life."""

    mean: np.ndarray
    covariance: np.ndarray
    score: float
    cls: int
    first_frame: int
    last_frame: int
    track_id: int = 0  # 0 until confirmed
    lost: bool = False


class ByteTracker:
    """One sequence's tracks (a video, a stream, a folder of frames)."""

    def __init__(self, settings: TrackerSettings, frame_rate: float = 30.0) -> None:
        self.settings = settings
        self.form = "xywh" if settings.tracker_type == "botsort" else "xyah"
        self.kalman = KalmanFilter(self.form)
        self.camera = CameraMotion() if settings.camera_motion else None
        self.max_lost = max(int(frame_rate / 30.0 * settings.track_buffer), 1)
        self.active: list[Track] = []  # confirmed and unconfirmed, seen in the last frame
        self.lost: list[Track] = []
        self.frame = 0
        self.next_id = 1

    # ------------------------------------------------------------------------------------------------ helpers
    def _predict(self, tracks: list[Track], transform: np.ndarray | None, step: bool = True) -> None:
        """Move the tracks' states: one frame ahead (``step``), then by the camera's motion (``transform``)."""
        if not tracks:
            return
        mean = np.stack([t.mean for t in tracks])
        covariance = np.stack([t.covariance for t in tracks])
        if step:
            for k, t in enumerate(tracks):  # a lost track keeps its position, not its growth
                if t.lost:
                    mean[k, 7] = 0
                    if self.form == "xywh":
                        mean[k, 6] = 0
            mean, covariance = self.kalman.predict(mean, covariance)
        if transform is not None:
            mean, covariance = apply_motion(mean, covariance, transform)
        for t, m, c in zip(tracks, mean, covariance):
            t.mean, t.covariance = m, c

    def _costs(self, tracks: list[Track], boxes: np.ndarray, scores: np.ndarray, fuse: bool) -> np.ndarray:
        predicted = from_form(np.stack([t.mean[:4] for t in tracks]), self.form) if tracks else np.zeros((0, 4))
        iou = box_iou(predicted, boxes)
        return 1 - (iou * scores[None] if fuse else iou)

    def _update(self, track: Track, box: np.ndarray, score: float, cls: int) -> None:
        mean, covariance = self.kalman.update(track.mean[None], track.covariance[None], to_form(box[None], self.form))
        track.mean, track.covariance = mean[0], covariance[0]
        track.score, track.cls, track.last_frame, track.lost = score, cls, self.frame, False
        if not track.track_id:
            track.track_id, self.next_id = self.next_id, self.next_id + 1

    def _match(self, tracks: list[Track], indices: np.ndarray, data: tuple, limit: float,
               fuse: bool) -> tuple[list[tuple[Track, int]], list[Track], list[int]]:
        boxes, scores, _ = data
        pairs, free_tracks, free_dets = assign(self._costs(tracks, boxes[indices], scores[indices], fuse), limit)
        return ([(tracks[t], int(indices[d])) for t, d in pairs], [tracks[t] for t in free_tracks],
                [int(indices[d]) for d in free_dets])

    # ------------------------------------------------------------------------------------------------ a frame
    def update(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
               image: np.ndarray | None = None) -> list[tuple[int, int]]:
        """One frame's detections (corner boxes in pixels); returns (detection index, track id) of every
        detection that continues or confirms a track."""
        s = self.settings
        self.frame += 1
        boxes, scores = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1)
        classes = np.asarray(classes).reshape(-1)
        data = (boxes, scores, classes)
        high = np.flatnonzero(scores >= s.track_high_thresh)
        low = np.flatnonzero((scores > s.track_low_thresh) & (scores < s.track_high_thresh))
        confirmed = [t for t in self.active if t.track_id]
        unconfirmed = [t for t in self.active if not t.track_id]
        pool = confirmed + self.lost
        transform = self.camera.estimate(image) if (self.camera is not None and image is not None) else None
        self._predict(pool, transform)
        self._predict(unconfirmed, transform, step=False)  # seen once: no velocity yet, only the camera's motion

        first, rest, free_high = self._match(pool, high, data, s.match_thresh, s.fuse_score)
        still_tracked = [t for t in rest if not t.lost]
        second, unseen, _ = self._match(still_tracked, low, data, SECOND_MATCH_LIMIT, False)
        third, _, new = self._match(unconfirmed, np.array(free_high, int), data, UNCONFIRMED_MATCH_LIMIT,
                                    s.fuse_score)
        out = []
        for track, d in first + second + third:
            self._update(track, boxes[d], float(scores[d]), int(classes[d]))
            out.append((d, track.track_id))
        for track in unseen:
            track.lost = True
        starts = [d for d in new if scores[d] >= s.new_track_thresh]
        born = []
        if starts:
            mean, covariance = self.kalman.initiate(to_form(boxes[starts], self.form))
            for k, d in enumerate(starts):
                track = Track(mean[k], covariance[k], float(scores[d]), int(classes[d]), self.frame, self.frame)
                if self.frame == 1:  # tracks of the first frame need no confirmation
                    track.track_id, self.next_id = self.next_id, self.next_id + 1
                    out.append((d, track.track_id))
                born.append(track)
        matched = {id(t) for t, _ in first + second + third}
        self.active = [t for t in pool + unconfirmed if id(t) in matched] + born
        self.lost = [t for t in pool if t.lost and self.frame - t.last_frame <= self.max_lost]
        return sorted(out)
