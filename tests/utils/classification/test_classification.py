"""ResNet(-SPD) classifiers: parameter counts, shapes, data formats (ImageFolder, Tiny ImageNet, CIFAR), the
classification task on the shared loop, val and predict."""

import pickle
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from models.blocks import space_to_depth
from models.classification import ClassificationModel
from utils.classification.data import load_classification_data, read_cifar_pickle
from utils.data.formats import DatasetError


@pytest.mark.parametrize("cfg, nc, expected", [
    ("resnet18_spd.yaml", 200, 20_565_576), ("resnet50_spd.yaml", 10, 27_654_026),
    ("resnet50_spd.yaml", 100, 27_838_436), ("resnet18.yaml", 200, 11_271_432), ("resnet50.yaml", 10, 23_520_842),
    ("resnet50_spd.yaml", 200, 28_043_336),  # what the authors' repository calls "resnet18_spd"
])
def test_parameter_counts_match_the_papers_networks(cfg, nc, expected):
    assert sum(p.numel() for p in ClassificationModel(cfg, nc=nc).parameters()) == expected


@pytest.mark.parametrize("cfg", ["resnet18_spd.yaml", "resnet50_spd.yaml", "resnet18.yaml", "resnet50.yaml"])
def test_every_model_runs_at_32_and_64(cfg):
    model = ClassificationModel(cfg, nc=7).eval()
    with torch.no_grad():
        for size in (32, 64):
            assert model(torch.rand(2, 3, size, size)).shape == (2, 7)


@pytest.mark.parametrize("cfg, stride", [("resnet18_spd.yaml", 16), ("resnet50_spd.yaml", 16), ("resnet18.yaml", 8),
                                         ("resnet50.yaml", 8)])
def test_total_stride_is_what_the_input_must_divide_by(cfg, stride):
    model = ClassificationModel(cfg, nc=3)
    assert model.total_stride() == stride and model.training
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 3, stride, stride)).shape == (1, 3)


def test_space_to_depth_keeps_the_authors_channel_order():
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    authors = torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1)
    assert torch.equal(space_to_depth(x), authors)
    assert torch.equal(space_to_depth(x.contiguous(memory_format=torch.channels_last)), authors)


# ----------------------------------------------------------------------------------------------- data
def _png(path, value=100, size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((size, size, 3), value, np.uint8))


def _yaml(tmp_path, folder, extra=""):
    path = tmp_path / "d.yaml"
    path.write_text(f"path: {folder}\n{extra}")
    return path


def test_imagefolder_with_a_bad_image_reports_and_skips_it(tmp_path):
    for split in ("train", "val"):
        for name in ("cat", "dog"):
            _png(tmp_path / "ds" / split / name / "a.png")
    (tmp_path / "ds" / "train" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    data = load_classification_data(_yaml(tmp_path, "ds"))
    assert data["format"] == "imagefolder" and data["names"] == ["cat", "dog"]
    assert len(data["train"]) == 2 and "broken.jpg" in data["train"].problems[0]
    _png(tmp_path / "ds" / "val" / "bird" / "a.png")
    with pytest.raises(DatasetError, match=r"class folders \['bird'\] are not in"):
        load_classification_data(_yaml(tmp_path, "ds"))


def test_truncated_jpegs_and_empty_class_folders_are_reported(tmp_path):
    import cv2

    for split in ("train", "val"):
        for name in ("cat", "dog"):
            _png(tmp_path / "ds" / split / name / "a.png")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    good = cv2.imencode(".jpg", noise)[1].tobytes()
    (tmp_path / "ds" / "train" / "cat" / "cut.jpg").write_bytes(good[:-200])  # as detection's scan refuses it
    data = load_classification_data(_yaml(tmp_path, "ds"))
    assert len(data["train"]) == 2 and "cut.jpg: truncated JPEG" in data["train"].problems[0]
    (tmp_path / "ds" / "train" / "bird").mkdir()
    with pytest.raises(DatasetError, match=r"train/bird: no usable training image in this class folder"):
        load_classification_data(_yaml(tmp_path, "ds"))


def test_tiny_imagenet_layout_as_distributed(tmp_path):
    root = tmp_path / "tiny"
    (root).mkdir()
    (root / "wnids.txt").write_text("n01\nn02\n")
    (root / "words.txt").write_text("n01\tgoldfish, Carassius auratus\nn02\tsalamander\n")
    for wnid in ("n01", "n02"):
        _png(root / "train" / wnid / "images" / f"{wnid}_0.JPEG")
    _png(root / "val" / "images" / "val_0.JPEG")
    _png(root / "val" / "images" / "val_1.JPEG")
    (root / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn02\t0\t0\t8\t8\nval_1.JPEG\tn01\t0\t0\t8\t8\n")
    data = load_classification_data(_yaml(tmp_path, "tiny"))
    assert data["format"] == "tiny-imagenet" and data["names"] == ["goldfish", "salamander"]
    assert list(data["val"].labels) == [1, 0] and len(data["train"]) == 2


def _cifar10_python(root, n=6):
    root.mkdir()
    rng = np.random.default_rng(0)
    names = [f"c{i}".encode() for i in range(10)]
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names}, f, protocol=2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), b"labels": list(range(n))}
        with open(root / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)


def test_cifar10_python_batches_load_without_running_pickle_code(tmp_path):
    _cifar10_python(tmp_path / "cifar")
    data = load_classification_data(_yaml(tmp_path, "cifar"))
    assert data["names"][:2] == ["c0", "c1"] and data["train"].images.shape == (30, 32, 32, 3)
    evil = tmp_path / "evil"
    with open(evil, "wb") as f:
        f.write(b"cos\nsystem\n(S'echo owned > " + str(tmp_path / "owned").encode() + b"'\ntR.")
    with pytest.raises(DatasetError, match="refused to load global 'os.system'"):
        read_cifar_pickle(evil)
    assert not (tmp_path / "owned").exists()


def test_cifar_binary_batches(tmp_path):
    root = tmp_path / "bin"
    root.mkdir()
    (root / "batches.meta.txt").write_text("\n".join(f"k{i}" for i in range(10)) + "\n")
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        rows = rng.integers(0, 255, (4, 3073), dtype=np.uint8)
        rows[:, 0] = [3, 1, 4, 1]
        rows.tofile(root / name)
    data = load_classification_data(_yaml(tmp_path, "bin"))
    assert list(data["val"].labels) == [3, 1, 4, 1] and data["val"].images.shape == (4, 32, 32, 3)


def test_missing_dataset_is_one_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="not found .*nothing is downloaded"):
        load_classification_data(_yaml(tmp_path, "nowhere"))


# -------------------------------------------------------------------------- training, val, predict
def test_classifier_trains_on_the_shared_loop_then_validates_and_predicts(tmp_path, monkeypatch):
    from utils.classification.synthetic import generate_classification_set
    from utils.classification.task import train_classifier
    from utils.classification.validation import validate_classifier

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    generate_classification_set(tmp_path / "ds", n_train=6, n_val=2, seed=0)
    data = _yaml(tmp_path, "ds")
    result = train_classifier(model="resnet18.yaml", data=str(data), epochs=2, batch_size=8, workers=0,
                              device="cpu", project=str(tmp_path / "runs"), imgsz=32)
    run = tmp_path / "runs" / "exp"
    for name in ("results.csv", "results.png", "confusion_matrix.png", "weights/best.pt", "weights/last.pt"):
        assert (run / name).is_file(), name
    assert 0 <= result["top1"] <= 1 and torch.load(run / "weights" / "best.pt", weights_only=True)["preprocess"]
    again = validate_classifier(str(run / "weights" / "best.pt"), project=str(tmp_path / "val"), workers=0)
    assert again["top1"] == pytest.approx(result["top1"])
    root = str(sys.modules["models"].__path__[0]).rsplit("/models", 1)[0]
    out = subprocess.run([sys.executable, "classify/predict.py", "--weights", str(run / "weights" / "best.pt"),
                          "--source", str(tmp_path / "ds" / "val" / "two"), "--project", str(tmp_path / "pred")],
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "00000.png: " in out.stdout + out.stderr and len(list((tmp_path / "pred" / "exp").iterdir())) == 2


def test_classifier_input_size_follows_the_one_size_rule(tmp_path, monkeypatch, caplog):
    """Rounded up to the model's total stride with a note (as detection does); 0 is one line, before any folder."""
    from utils.classification.synthetic import generate_classification_set
    from utils.classification.task import train_classifier
    from utils.engine.config import ConfigurationError

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    generate_classification_set(tmp_path / "ds", n_train=2, n_val=1, seed=0)
    options = dict(model="resnet18_spd.yaml", data=str(_yaml(tmp_path, "ds")), epochs=1, batch_size=8, workers=0,
                   device="cpu", project=str(tmp_path / "runs"), noplots=True)
    with pytest.raises(ConfigurationError, match="--imgsz must be one or two whole numbers >= 1"):
        train_classifier(**options, imgsz=0)
    assert not (tmp_path / "runs" / "exp").exists()
    with caplog.at_level("INFO", logger="yolov5_spd"):
        train_classifier(**options, imgsz=24)
    assert "--imgsz 24 rounded up to 32" in caplog.text
    with pytest.raises(ConfigurationError, match="unknown option 'tile'"):  # a detection option
        train_classifier(**options, imgsz=32, tile=640)


def test_classify_resume_is_exact(tmp_path, monkeypatch):
    from utils.classification.synthetic import generate_classification_set
    from utils.classification.task import train_classifier

    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    generate_classification_set(tmp_path / "ds", n_train=4, n_val=1, seed=2)
    common = dict(model="resnet18_spd.yaml", data=str(_yaml(tmp_path, "ds")), batch_size=8, workers=0,
                  device="cpu", project=str(tmp_path), imgsz=32, noval=True)
    train_classifier(name="straight", epochs=2, **common)
    train_classifier(name="split", epochs=1, **common)
    train_classifier(resume=str(tmp_path / "split" / "weights" / "last.pt"), epochs=2, **common)
    straight = torch.load(tmp_path / "straight" / "weights" / "last.pt", weights_only=True)["model"]["state_dict"]
    split = torch.load(tmp_path / "split" / "weights" / "last.pt", weights_only=True)["model"]["state_dict"]
    for key, value in straight.items():
        assert torch.equal(value, split[key]), key
