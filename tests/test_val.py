"""val.py against the reference implementation's figures on real COCO images (../shared)."""

import json

import pytest

import val
from utils.checkpoints import CheckpointError


def _check(result, reference):
    coco, ref = result["coco"], reference["pycocotools"]
    for key in ("AP", "AP50", "AP_S"):
        assert coco[key] == pytest.approx(ref[key], abs=0.003), key
    assert result["mAP50_95"] == pytest.approx(reference["own_metric"]["mAP50_95"], abs=0.005)


@pytest.mark.parametrize("imgsz", [320, 640])
def test_yolov5n_coco128_val_matches_reference(shared, yolov5n_weights, imgsz, tmp_path):
    reference = json.loads((shared / "reference" / f"yolov5n_coco128val_{imgsz}.json").read_text())
    result = val.run(data=str(shared / "data" / "coco128" / "coco128.yaml"), weights=str(yolov5n_weights),
                     imgsz=imgsz, batch_size=32, project=str(tmp_path), plots=imgsz == 320, workers=2)
    _check(result, reference)
    assert (tmp_path / "exp" / "metrics.json").is_file()


def test_yolov5n_official_json_matches_reference(shared, yolov5n_weights, tmp_path):
    reference = json.loads((shared / "reference" / "yolov5n_coco128train_official_640.json").read_text())
    data = tmp_path / "official.yaml"
    names = (shared / "data" / "coco128" / "coco128.yaml").read_text().split("names:", 1)[1]
    data.write_text(f"path: {shared / 'data' / 'coco128'}\nval: images/train2017\n"
                    f"annotations:\n  val: annotations/instances_train2017.json\nnames:{names}")
    # On the CPU, as the reference figures were made (a GPU's TF32 convolutions move AP in the third decimal)
    result = val.run(data=str(data), weights=str(yolov5n_weights), imgsz=640, project=str(tmp_path),
                     save_json=True, plots=False, device="cpu")
    _check(result, reference)
    predictions = json.loads((tmp_path / "exp" / "predictions.json").read_text())
    assert {p["category_id"] for p in predictions} <= set(range(1, 91))


def test_missing_weights_message_says_where_they_go():
    with pytest.raises(CheckpointError, match="weights/"):
        val.resolve_weights("small_best.pt")
