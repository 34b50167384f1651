"""val.py against the reference implementation's figures on real COCO images (../shared)."""

import json

import pytest

import val
from utils.checkpoints.files import dataset_for
from utils.checkpoints.format import CheckpointError


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
        val.run(weights="small_best.pt")


def test_single_cls_and_yolov5_json_on_a_multi_class_model(tmp_path, monkeypatch):
    """--single-cls with a 6-class model scores class-0 predictions against class-0 labels; the saved JSON has
    yolov5's four keys and numeric stems as image ids."""
    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT
    from utils.data.synthetic import NAMES, generate_dataset

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    generate_dataset(tmp_path / "ds", n_train=1, n_val=3, seed=1)
    data = tmp_path / "d.yaml"
    data.write_text(f"path: ds\ntrain: images/train\nval: images/val\nnames: {NAMES}\n")
    model = DetectionModel("yolov5n.yaml", nc=len(NAMES))
    model.names = list(NAMES)
    weights = save_checkpoint({"format": FORMAT, "model": model_payload(model), "epoch": 0}, tmp_path / "m.pt")
    result = val.run(data=str(data), weights=str(weights), imgsz=64, batch_size=2, project=str(tmp_path),
                     single_cls=True, save_json=True, plots=True, workers=0, device="cpu")
    assert result["images"] == 3
    predictions = json.loads((tmp_path / "exp" / "predictions.json").read_text())
    assert predictions and all(set(p) == {"image_id", "category_id", "bbox", "score"} for p in predictions)
    assert {p["category_id"] for p in predictions} == {0}
    stems = {p.stem for p in (tmp_path / "ds" / "images" / "val").iterdir()}
    expected = {int(s) if s.isnumeric() else s for s in stems}
    assert {p["image_id"] for p in predictions} <= expected


def test_without_data_the_checkpoints_dataset_is_used(tmp_path, monkeypatch, caplog):
    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT

    data = tmp_path / "mine.yaml"
    data.write_text("path: .\nval: images\nnames: [a]\n")
    model = DetectionModel("yolov5n.yaml", nc=1)
    model.names = ["a"]
    weights = save_checkpoint({"format": FORMAT, "model": model_payload(model), "epoch": 0,
                               "dataset": {"yaml": str(data), "names": ["a"]}}, tmp_path / "best.pt")
    assert dataset_for(weights, None) == str(data)
    assert dataset_for(weights, "other.yaml") == "other.yaml"
    data.unlink()
    assert dataset_for(weights, None) == "coco128.yaml"


def test_validation_copy_is_fused_and_leaves_the_training_model_alone():
    import torch

    from models.yolo import DetectionModel
    from utils.detection.validation import validation_copy

    model = DetectionModel("yolov5n.yaml").eval()
    inference, half = validation_copy(model, None)
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert not half and batch_norms and not any(isinstance(m, torch.nn.BatchNorm2d) for m in inference.modules())
    x = torch.rand(2, 3, 128, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want, got = model(x), inference(x)
    assert torch.allclose(got[..., 4:], want[..., 4:], atol=1e-5)
    assert torch.allclose(got[..., :4], want[..., :4], atol=1e-3)
    assert validation_copy(model, torch.bfloat16)[1]  # the run's autocast type: validated under it too


def test_both_spellings_of_noplots_are_accepted_everywhere():
    import train
    import val

    for spelling in ("--noplots", "--no-plots"):
        assert val.parse_args([spelling]).plots is False
        assert train.parse_args([spelling]).noplots is True


def test_sliced_validation_reports_the_full_image_figures_of_the_same_pass(tiny_data, tmp_path, monkeypatch):
    import torch

    from models.yolo import DetectionModel
    from utils.checkpoints.files import model_payload, save_checkpoint
    from utils.checkpoints.format import FORMAT
    from utils.data.synthetic import NAMES

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    model = DetectionModel("yolov5n.yaml", nc=len(NAMES))
    model.names = list(NAMES)
    weights = save_checkpoint({"format": FORMAT, "model": model_payload(model), "epoch": 0}, tmp_path / "m.pt")
    common = dict(data=str(tiny_data), weights=str(weights), imgsz=64, project=str(tmp_path), plots=False)
    whole = val.run(**common, name="whole", slice_hw=[4096, 4096])  # one tile bigger than the image: no tiles
    same = lambda a, b: json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # noqa: E731 (NaN == NaN)
    assert same(whole["coco"], whole["full_image"]["coco"])
    tiled = val.run(**common, name="tiled", slice_hw=[96, 96], overlap=0.25, merge="nmm")
    saved = json.loads((tmp_path / "tiled" / "metrics.json").read_text())
    assert set(saved) >= {"full", "sliced"} and saved["merge"] == "nmm"
    assert same(saved["full"]["coco"], whole["full_image"]["coco"])  # the same full-image path either way
    assert tiled["images"] == whole["images"]


def test_faster_coco_eval_gives_pycocotools_figures(shared, yolov5n_weights, tmp_path, monkeypatch):
    """Every COCO AP and AR figure and the tiny-object bins, scored from the same predictions by both evaluators
    (coco128 val, the official yolov5n at 320), agree to 1e-4; the reference checks above use the default."""
    import math

    from utils.detection import validation
    from utils.detection.evaluator import COCO_KEYS, TINY_KEYS, DetectionEvaluator, run_cocoeval

    pytest.importorskip("faster_coco_eval")
    seen = []

    class Recording(DetectionEvaluator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self)

    monkeypatch.setattr(validation, "DetectionEvaluator", Recording)
    val.run(data=str(shared / "data" / "coco128" / "coco128.yaml"), weights=str(yolov5n_weights), imgsz=320,
            batch_size=32, project=str(tmp_path), plots=False, workers=2, evaluator="pycocotools")
    (scorer,) = seen
    args = (scorer.ground_truth(), scorer.coco_predictions, scorer.seen_ids)
    slow, _ = run_cocoeval(*args, evaluator="pycocotools")
    fast, _ = run_cocoeval(*args, evaluator="faster-coco-eval")
    assert slow["AP"] > 0.2 and slow["n_t"] > 0
    for key in COCO_KEYS + TINY_KEYS:
        if math.isnan(slow[key]):
            assert math.isnan(fast[key]), key
        else:
            assert fast[key] == pytest.approx(slow[key], abs=1e-4), key
    with pytest.raises(ValueError, match="--evaluator cocoapi"):
        run_cocoeval(*args, evaluator="cocoapi")
