import json

import numpy as np
import pytest
import torch

from utils.detection.evaluator import DetectionEvaluator, average_precision, match_predictions, run_cocoeval


def _perfect_detections(labels, h, w):
    b = labels[:, 1:]
    xyxy = np.stack([(b[:, 0] - b[:, 2] / 2) * w, (b[:, 1] - b[:, 3] / 2) * h,
                     (b[:, 0] + b[:, 2] / 2) * w, (b[:, 1] + b[:, 3] / 2) * h], 1)
    return torch.tensor(np.concatenate([xyxy, np.full((len(b), 1), 0.9), labels[:, :1]], 1), dtype=torch.float32)


def test_ground_truth_as_predictions_scores_one():
    rng = np.random.default_rng(0)
    evaluator = DetectionEvaluator(["a", "b", "c"])
    for k in range(6):
        n = 4
        labels = np.concatenate([rng.integers(0, 3, (n, 1)), rng.uniform(0.2, 0.8, (n, 2)),
                                 rng.uniform(0.02, 0.2, (n, 2))], 1).astype(np.float32)
        evaluator.process(_perfect_detections(labels, 200, 300), labels, f"img{k}.jpg", (200, 300))
    result = evaluator.result()
    assert result["coco"]["AP"] == pytest.approx(1.0)
    assert result["mAP50_95"] >= 0.99 and result["P"] == pytest.approx(1.0)


def test_no_predictions_does_not_crash():
    evaluator = DetectionEvaluator(["a"])
    evaluator.process(torch.zeros((0, 6)), np.array([[0, 0.5, 0.5, 0.2, 0.2]]), "x.jpg", (100, 100))
    result = evaluator.result()
    assert result["coco"]["AP"] == 0 and result["mAP50"] == 0


def test_json_without_info_block(tmp_path):
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "height": 100, "width": 100}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 10, 20, 20], "area": 400,
                           "iscrowd": 0}],
          "categories": [{"id": 7, "name": "thing"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(gt))
    evaluator = DetectionEvaluator(["thing"], official_json=path)
    evaluator.process(torch.tensor([[10.0, 10, 30, 30, 0.9, 0]]), np.array([[0, 0.2, 0.2, 0.2, 0.2]]),
                      "/somewhere/a.jpg", (100, 100))
    assert evaluator.result()["coco"]["AP"] == pytest.approx(1.0)


def test_matching_is_greedy_and_one_to_one():
    gt = torch.tensor([[0.0, 0, 10, 10]])
    preds = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 9.5]])
    tp = match_predictions(preds, torch.tensor([0.0, 0.0]), gt, torch.tensor([0.0]))
    assert tp[:, 0].tolist() == [True, False]
    wrong_class = match_predictions(preds[:1], torch.tensor([1.0]), gt, torch.tensor([0.0]))
    assert not wrong_class.any()


def test_average_precision_of_perfect_and_half():
    # 101-point trapezoids: a perfect curve integrates to 0.995 (the reference's own figure for it)
    assert average_precision(np.array([1.0]), np.array([1.0])) == pytest.approx(0.995)
    # envelope 1.0 up to recall 0.5, then the curve runs linearly down to (recall 1, precision 0)
    assert average_precision(np.array([0.5, 0.5]), np.array([1.0, 0.5])) == pytest.approx(0.6225, abs=1e-4)


def test_run_cocoeval_without_predictions_is_zero():
    stats, _ = run_cocoeval({"images": [], "annotations": [], "categories": []}, [])
    assert stats["AP"] == 0.0


def _gt_with_sides(sides):
    anns = [{"id": i + 1, "image_id": 1, "category_id": 0, "bbox": [10.0 + 40 * i, 10.0, s, s], "area": s * s,
             "iscrowd": 0} for i, s in enumerate(sides)]
    return {"images": [{"id": 1, "width": 400, "height": 100}], "annotations": anns,
            "categories": [{"id": 0, "name": "a"}]}


def test_tiny_bins_count_and_score_by_original_area():
    from utils.detection.evaluator import format_metric, tiny_bins_line

    gt = _gt_with_sides([5.0, 12.0, 20.0, 40.0])  # one object in each tiny bin, one medium
    found = [a for a in gt["annotations"] if a["area"] < 16**2]  # the <8² and 8-16² objects, exactly
    predictions = [{"image_id": 1, "category_id": 0, "bbox": a["bbox"], "score": 0.9} for a in found]
    stats, _ = run_cocoeval(gt, predictions)
    assert (stats["n_vt"], stats["n_t"], stats["n_s16"]) == (1, 1, 1)
    assert stats["AP_vt"] == pytest.approx(1.0) and stats["AP_t"] == pytest.approx(1.0)
    assert stats["AP_s16"] == 0.0 and stats["AR_s16"] == 0.0
    assert "AP_vt (<8² px, 1 objects) 1.000" in tiny_bins_line(stats)

    no_tiny, _ = run_cocoeval(_gt_with_sides([20.0, 40.0]), predictions)
    assert np.isnan(no_tiny["AP_vt"]) and no_tiny["n_vt"] == 0 and format_metric(no_tiny["AP_vt"]) == "n/a"
    assert no_tiny["AP_s16"] == 0.0


def test_no_predictions_score_zero_only_where_there_are_objects():
    import math

    from utils.detection.evaluator import run_cocoeval

    truth = {"images": [{"id": 1, "width": 640, "height": 480}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 0, "bbox": [10, 10, 20, 20], "area": 400.0,
                              "iscrowd": 0}],
             "categories": [{"id": 0}]}
    figures, summary = run_cocoeval(truth, [], [1])
    assert figures["AP"] == 0.0 and figures["AP_S"] == 0.0 and figures["AR_S"] == 0.0
    assert all(math.isnan(figures[k]) for k in ("AP_M", "AP_L", "AR_M", "AR_L"))  # nothing to find there
    assert "n/a" in summary


def test_coco_records_are_xywh_rounded_with_the_official_category_ids(tmp_path):
    official = {"images": [{"id": 5, "file_name": "a.jpg", "height": 100, "width": 100}],
                "annotations": [], "categories": [{"id": 1, "name": "x"}, {"id": 3, "name": "y"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(official))
    evaluator = DetectionEvaluator(["x", "y"], official_json=path)
    detections = torch.tensor([[10.12345, 20.5, 30.0, 60.98765, 0.1234567, 1.0],
                               [0.0, 0.0, 1.0, 1.0, 0.9, 0.0]])
    records = evaluator.to_coco(detections, 5)
    assert [r["category_id"] for r in records] == [3, 1]
    assert all(type(r["category_id"]) is int and r["image_id"] == 5 for r in records)
    expected = [[round(v, 3) for v in (10.12345, 20.5, 30.0 - 10.12345, 60.98765 - 20.5)], [0.0, 0.0, 1.0, 1.0]]
    for record, box in zip(records, expected):
        assert record["bbox"] == pytest.approx(box, abs=1.1e-3)
    assert records[0]["score"] == pytest.approx(0.12346, abs=1e-6)
    assert evaluator.to_coco(torch.zeros(0, 6), 5) == []
