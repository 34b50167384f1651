"""utils/object_tracking/byte_tracker.py: ids kept through a crossing, an occlusion with low scores and a gap,
new tracks confirmed on their second frame; BoT-SORT's camera-motion compensation keeps ids through a pan."""

from __future__ import annotations

import numpy as np
import pytest

from utils.object_tracking.byte_tracker import ByteTracker
from utils.object_tracking.metrics import identity_scores
from utils.object_tracking.settings import TrackerSettings


def _run(tracker: ByteTracker, frames: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[int, int]]:
    """Per frame: detection index -> track id."""
    return [dict(tracker.update(boxes, scores, np.zeros(len(boxes)))) for boxes, scores in frames]


def _crossing(frames: int = 40) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for f in range(frames):  # A moves right, B left, on nearly the same row: they overlap around frame 20
        out.append((np.array([[10 + 5 * f, 50, 40 + 5 * f, 80], [210 - 5 * f, 54, 240 - 5 * f, 84]], float),
                    np.array([0.9, 0.8])))
    return out


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_ids_survive_two_objects_crossing(kind):
    assigned = _run(ByteTracker(TrackerSettings(tracker_type=kind)), _crossing())
    assert all(frame == {0: 1, 1: 2} for frame in assigned), assigned
    truth = [(boxes, np.array([1, 2])) for boxes, _ in _crossing()]
    predicted = [(boxes[list(a)], np.array(list(a.values()))) for (boxes, _), a in zip(_crossing(), assigned)]
    scores = identity_scores(truth, predicted)
    assert scores["IDF1"] == 1.0 and scores["ID switches"] == 0


def test_a_swap_is_counted_by_the_metrics():
    truth = [(np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float), np.array([1, 2]))] * 4
    predicted = truth[:2] + [(truth[0][0], np.array([2, 1]))] * 2
    scores = identity_scores(truth, predicted)
    assert scores["ID switches"] == 2 and scores["IDF1"] == pytest.approx(0.5)


def test_low_scores_keep_a_track_and_a_gap_within_the_buffer_resumes_it():
    frames = []
    for f in range(30):
        box = np.array([[100 + 3 * f, 100, 130 + 3 * f, 140]], float)
        if 10 <= f < 14:  # partly occluded: scored below the high threshold
            frames.append((box, np.array([0.15])))
        elif 18 <= f < 24:  # hidden: no detection at all
            frames.append((np.zeros((0, 4)), np.zeros(0)))
        else:
            frames.append((box, np.array([0.9])))
    assigned = _run(ByteTracker(TrackerSettings()), frames)
    seen = [a for a in assigned if a]
    assert all(a == {0: 1} for a in seen) and len(seen) == 30 - 6
    assert assigned[10] == {0: 1}  # the low-score frames are still tracked


def test_a_new_object_needs_a_second_frame_and_a_lone_false_positive_gets_no_id():
    tracker = ByteTracker(TrackerSettings())
    one = (np.array([[0, 0, 20, 20]], float), np.array([0.9]))
    two = (np.array([[0, 0, 20, 20], [100, 100, 120, 120]], float), np.array([0.9, 0.9]))
    blip = (np.array([[0, 0, 20, 20], [300, 300, 310, 310]], float), np.array([0.9, 0.9]))
    assert _run(tracker, [one, two, two, blip, one]) == [{0: 1}, {0: 1}, {0: 1, 1: 2}, {0: 1}, {0: 1}]
    assert tracker.next_id == 3  # the blip seen once never took an id


def test_botsort_follows_objects_through_a_fast_camera_pan():
    rng = np.random.default_rng(0)
    scene = (rng.random((400, 1400)) * 255).astype(np.uint8)  # textured background for the optical flow
    scene = np.repeat(scene[..., None], 3, 2)
    objects = np.array([[200, 150, 230, 190], [260, 150, 290, 190], [500, 250, 530, 290]], float)
    frames, images = [], []
    for f in range(15):
        shift = 35 * f  # the camera pans 35 px per frame: more than the objects' width
        images.append(np.ascontiguousarray(scene[:, shift:shift + 640]))
        frames.append((objects - [shift, 0, shift, 0], np.array([0.9, 0.9, 0.9])))
    results = {}
    for kind in ("bytetrack", "botsort"):
        tracker = ByteTracker(TrackerSettings(tracker_type=kind))
        results[kind] = [dict(tracker.update(b, s, np.zeros(3), image)) for (b, s), image in zip(frames, images)]
    visible = [a for a in results["botsort"][1:6]]
    assert all(a == {0: 1, 1: 2, 2: 3} for a in visible), visible
    assert results["bytetrack"][3] != {0: 1, 1: 2, 2: 3}  # without compensation the ids are lost
