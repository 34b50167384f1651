import numpy as np

from utils.data.augmentations import (
    AffineRange,
    augment_hsv,
    box_survives,
    letterbox,
    random_perspective,
    resize_longest_side,
)


def test_resize_longest_side_rounds_up_and_keeps_aspect():
    image = np.zeros((480, 640, 3), np.uint8)
    out, gain = resize_longest_side(image, 320)
    assert out.shape == (240, 320, 3) and gain == 0.5
    odd = np.zeros((427, 640, 3), np.uint8)
    assert resize_longest_side(odd, 320)[0].shape[:2] == (214, 320)  # ceil(213.5)


def test_letterbox_exact_shape_and_minimal_padding():
    image = np.full((240, 320, 3), 7, np.uint8)
    out, gain, pad = letterbox(image, (256, 352), scale_up=False)
    assert out.shape == (256, 352, 3) and gain == 1.0 and pad == (16.0, 8.0)
    assert (out[:8] == 114).all() and (out[8:248, 16:336] == 7).all()
    big = np.zeros((1080, 810, 3), np.uint8)
    out, gain, pad = letterbox(big, (640, 640), minimal=True)
    assert out.shape == (640, 480, 3)


def test_random_perspective_moves_boxes_with_image_and_is_seeded():
    image = np.zeros((200, 200, 3), np.uint8)
    image[50:100, 60:120] = 255
    boxes = np.array([[60.0, 50.0, 120.0, 100.0]])
    classes = np.array([3.0])
    a = random_perspective(image.copy(), boxes.copy(), classes, np.random.default_rng(1),
                           AffineRange(degrees=10, translate=0.1, scale=0.3, shear=5))
    b = random_perspective(image.copy(), boxes.copy(), classes, np.random.default_rng(1),
                           AffineRange(degrees=10, translate=0.1, scale=0.3, shear=5))
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])
    out_image, out_boxes, out_classes = a
    assert out_classes.tolist() == [3.0]
    ys, xs = np.nonzero(out_image[..., 0] > 127)
    x1, y1, x2, y2 = out_boxes[0]
    assert x1 - 2 <= xs.min() and xs.max() <= x2 + 2 and y1 - 2 <= ys.min() and ys.max() <= y2 + 2


def test_degenerate_boxes_are_dropped():
    before = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float).T
    after = np.array([[0, 0, 10, 10], [0, 0, 10, 1]], float).T
    assert box_survives(before, after).tolist() == [True, False]


def test_hsv_is_deterministic_and_keeps_shape():
    image = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    a, b = image.copy(), image.copy()
    augment_hsv(a, np.random.default_rng(5))
    augment_hsv(b, np.random.default_rng(5))
    assert np.array_equal(a, b) and not np.array_equal(a, image)


def test_albumentations_pipeline_keeps_boxes_and_is_seeded():
    from utils.data.augmentations import AlbumentationsPipeline

    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    boxes = np.array([[4, 5, 30, 40], [50, 10, 70, 60]], dtype=np.float32)
    classes = np.array([1, 3])
    always = AlbumentationsPipeline(probability_scale=100)  # every transform fires
    out, out_boxes, out_classes = always(image, boxes, classes, np.random.default_rng(1))
    again, *_ = always(image, boxes, classes, np.random.default_rng(1))
    assert out.shape == image.shape and not np.array_equal(out, image)
    assert np.array_equal(out, again)
    np.testing.assert_allclose(out_boxes, boxes)
    assert np.array_equal(out_classes, classes)
    never = AlbumentationsPipeline(probability_scale=0)
    assert never(image, boxes, classes, np.random.default_rng(1))[0] is image


def test_box_survival_thresholds_are_hyp_keys_and_drops_are_counted_by_reason():
    from utils.data.augmentations import BoxRule, warp_with_boxes

    image = np.zeros((100, 100, 3), np.uint8)
    boxes = np.array([[10, 10, 13, 13],     # 3 px: kept by the default 2 px rule, dropped by a 4 px one
                      [-50, 10, -40, 20],   # entirely outside
                      [95, 10, 195, 30],    # 5 of 100 px wide remain: cut at the border
                      [20, 20, 60, 60]], dtype=np.float64)
    classes = np.arange(4, dtype=np.float32)
    tally = np.zeros(4, np.int64)
    _, kept, kept_classes = warp_with_boxes(image, boxes, classes, np.eye(3), 1.0, (100, 100), BoxRule(), tally)
    assert kept_classes.tolist() == [0, 3] and tally.tolist() == [1, 1, 0, 0]
    _, _, kept_classes = warp_with_boxes(image, boxes, classes, np.eye(3), 1.0, (100, 100), BoxRule(min_side=4),
                                         tally)
    assert kept_classes.tolist() == [3] and tally.tolist() == [2, 2, 1, 0]


def test_dataset_reads_the_survival_keys_from_the_hyp_file():
    from utils.data.dataset import Hyp

    hyp = Hyp.from_dict({"min_box_side": 1, "min_box_area": 0.05})
    assert (hyp.min_box_side, hyp.min_box_area) == (1.0, 0.05)
