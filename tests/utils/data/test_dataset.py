import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from utils.data.dataset import YoloDataset, rect_batch_shapes, stack_channels_last
from utils.data.formats import DatasetError, label_path_for, load_dataset_config, parse_label_text
from utils.data.images import read_rgb
from utils.data.loaders import create_dataloader
from utils.data.scan import scan_dataset


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))


def _write_image(path: Path, h=64, w=80, value=90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), value, np.uint8))


def _write_label(image: Path, text: str | bytes) -> None:
    label = label_path_for(image)
    label.parent.mkdir(parents=True, exist_ok=True)
    label.write_bytes(text if isinstance(text, bytes) else text.encode())


def test_label_path_replaces_last_images_folder():
    assert label_path_for(Path("/d/images/train/a.jpg")) == Path("/d/labels/train/a.txt")


def test_broken_inputs_are_reported_and_the_rest_is_kept(tmp_path):
    images = tmp_path / "ds" / "images" / "train"
    good = images / "good.jpg"
    _write_image(good)
    _write_label(good, "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n")  # one duplicate row
    background = images / "background.jpg"
    _write_image(background)  # no label file: a background image
    polygon = images / "polygon.jpg"
    _write_image(polygon)
    _write_label(polygon, "2 0.1 0.1 0.3 0.1 0.3 0.4\n")
    truncated = images / "truncated.jpg"
    _write_image(truncated)
    truncated.write_bytes(truncated.read_bytes()[:-200])
    (images / "empty.jpg").write_bytes(b"")
    (images / "text.jpg").write_text("this is not an image")
    _write_image(images / "tiny.jpg", 5, 5)
    cases = {
        "four.jpg": "0 0.5 0.5 0.2\n",
        "six.jpg": "0 0.5 0.5 0.2 0.2 0.1\n",
        "class99.jpg": "99 0.5 0.5 0.2 0.2\n",
        "negative.jpg": "0 -0.2 0.5 0.2 0.2\n",
        "over.jpg": "0 0.5 1.3 0.2 0.2\n",
        "zero.jpg": "0 0.5 0.5 0.0 0.2\n",
        "latin1.jpg": b"0 0.5 0.5 0.2 0.2 \xe9\xff\n",
    }
    for name, text in cases.items():
        _write_image(images / name)
        _write_label(images / name, text)
    (tmp_path / "ds" / "labels" / "train" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    before = {p: p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file()}

    scan = scan_dataset(str(images), nc=3)
    kept = sorted(Path(p).name for p in scan.images)
    assert kept == ["background.jpg", "good.jpg", "polygon.jpg"]
    messages = {Path(f).name: (kind, msg) for f, kind, msg in scan.problems}
    assert messages["truncated.jpg"][0] == "truncated image"
    assert messages["empty.jpg"][0] == "empty image"
    assert messages["text.jpg"][0] == "undecodable image"
    assert messages["tiny.jpg"][0] == "tiny image"
    assert "expected 5 numbers, got 4" in messages["four.jpg"][1]
    assert "expected 5 numbers, got 6" in messages["six.jpg"][1]
    assert "class 99 outside 0..2" in messages["class99.jpg"][1]
    assert "outside [0, 1]" in messages["negative.jpg"][1] and "outside [0, 1]" in messages["over.jpg"][1]
    assert "> 0" in messages["zero.jpg"][1]
    assert "not UTF-8" in messages["latin1.jpg"][1]
    assert all("\n" not in m for _, m in messages.values())
    assert all(str(tmp_path) in m for _, m in messages.values())  # each names its file
    labels = dict(zip((Path(p).name for p in scan.images), scan.labels))
    assert len(labels["good.jpg"]) == 2 and any("duplicate" in w for w in scan.warnings)
    assert len(labels["background.jpg"]) == 0
    assert np.allclose(labels["polygon.jpg"][0], [2, 0.2, 0.25, 0.2, 0.3])
    after = {p: p.read_bytes() for p in (tmp_path / "ds").rglob("*") if p.is_file()}
    assert after == before  # nothing in the dataset was touched

    dataset = YoloDataset(scan, imgsz=64, batch_size=2, augment=True, hyp={"mosaic": 1.0})
    images_t, targets, _, _ = YoloDataset.collate([dataset[i] for i in range(len(dataset))])
    assert images_t.dtype == torch.uint8 and images_t.shape == (3, 3, 64, 64)
    assert targets.shape[1] == 6


def test_scan_cache_is_json_and_rebuilt_when_stale(tmp_path):
    images = tmp_path / "images"
    _write_image(images / "a.jpg")
    _write_label(images / "a.jpg", "0 0.5 0.5 0.2 0.2\n")
    first = scan_dataset(str(images), nc=1)
    cache_files = list((tmp_path / "cache" / "datasets").glob("*.json"))
    assert len(cache_files) == 1 and json.loads(cache_files[0].read_text())["images"]
    label = label_path_for(images / "a.jpg")
    label.write_text("0 0.5 0.5 0.2 0.2\n0 0.2 0.2 0.1 0.1\n")
    os.utime(label, ns=(1, 10**18))
    assert first.n_boxes == 1 and scan_dataset(str(images), nc=1).n_boxes == 2
    for f in (tmp_path / "cache" / "datasets").glob("*.json"):
        f.write_text("{ not json")
    assert scan_dataset(str(images), nc=1).n_boxes == 2


def test_no_usable_image_is_one_clear_error(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "x.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="no usable image"):
        YoloDataset(scan_dataset(str(images), nc=1))


def test_label_parser_tolerance_is_clipped():
    labels, kind, _, _ = parse_label_text("0 0.5 0.5 1.0005 0.2\n", 1, "x.txt")
    assert kind == "" and labels[0, 3] <= 1.0


def test_rect_batch_shapes_follow_reference_rule():
    shapes = np.array([[480, 640], [640, 480], [427, 640], [640, 640]])
    order, per_image = rect_batch_shapes(shapes, batch_size=2, imgsz=640)
    assert order.tolist() == [2, 0, 3, 1]  # by h / w
    assert per_image[0].tolist() == [512, 672] and per_image[2].tolist() == [672, 672]


def test_coco128_counts(shared):
    config = load_dataset_config(shared / "data" / "coco128" / "coco128.yaml")
    train, val = scan_dataset(config["train"], 80), scan_dataset(config["val"], 80)
    assert (len(train.images), len(val.images)) == (128, 128)
    assert (train.n_boxes, val.n_boxes) == (929, 898)
    assert not train.problems and not val.problems


def test_embedded_dataset_is_deterministic(tmp_path):
    from utils.data.synthetic import generate_dataset

    a = generate_dataset(tmp_path / "a", n_train=3, n_val=1, seed=7)
    b = generate_dataset(tmp_path / "b", n_train=3, n_val=1, seed=7)
    for f in sorted((a / "labels").rglob("*.txt")):
        assert f.read_text() == (b / f.relative_to(a)).read_text()
    assert len(list((a / "images" / "train").glob("*.jpg"))) == 3
    scan = scan_dataset(str(a / "images" / "train"), nc=6)
    sizes = np.concatenate(scan.labels)[:, 3:5] * 320
    assert len(scan.images) == 3 and sizes.max() < 60


def test_dataset_given_as_coco_json(tmp_path, shared):
    # images without a labels/ folder: labels come from the official instances JSON
    images = tmp_path / "coco" / "images"
    images.mkdir(parents=True)
    source = sorted((shared / "data" / "coco128" / "images" / "train2017").glob("*.jpg"))[:6]
    for f in source:
        (images / f.name).symlink_to(f)
    scan = scan_dataset(str(images), nc=80,
                        annotations=shared / "data" / "coco128" / "annotations" / "instances_train2017.json")
    yolo = scan_dataset(str(shared / "data" / "coco128" / "images" / "train2017"), nc=80)
    by_name = dict(zip((Path(p).name for p in yolo.images), yolo.labels))
    assert len(scan.images) == 6
    for path, labels in zip(scan.images, scan.labels):
        reference = by_name[Path(path).name]
        assert labels.shape[0] >= 1 and set(labels[:, 0]) <= set(reference[:, 0])


def _textured_dataset(tmp_path: Path, n: int = 5) -> YoloDataset:
    rng = np.random.default_rng(0)
    for i in range(n):
        image = tmp_path / "ds" / "images" / f"{i}.jpg"
        image.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(image), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        _write_label(image, "0 0.5 0.5 0.4 0.4\n")
    scan = scan_dataset(str(tmp_path / "ds" / "images"), nc=1)
    return YoloDataset(scan, imgsz=64, batch_size=2, augment=True, hyp={"mosaic": 1.0}, seed=3)


@pytest.mark.parametrize("workers", [0, 2])
def test_training_loader_draws_new_augmentations_each_epoch_in_workers(tmp_path, workers):
    """Persistent workers never see set_epoch: the epoch must travel with the indices."""
    def epochs(loader, n):
        out = []
        for e in range(n):
            loader.set_epoch(e)
            out.append([(images.clone(), paths) for images, _, paths, _ in loader])
        return out

    dataset = _textured_dataset(tmp_path)
    loader = create_dataloader(dataset, 2, workers, shuffle=False)
    first, second = epochs(loader, 2)
    assert len(first) == len(second) == 3  # 5 images, batch 2: epochs do not run into each other
    assert [p for _, p in first] == [p for _, p in second]
    assert not torch.equal(first[0][0], second[0][0])  # same images, new mosaics
    # the same as without workers, and the same again on a fresh loader started at epoch 1 (resume)
    again = create_dataloader(dataset, 2, 0, shuffle=False)
    again.set_epoch(1)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(second, list((x[0].clone(), x[2]) for x in again)))


def test_training_loader_keeps_its_workers_when_the_caller_takes_exactly_len_batches(tmp_path):
    """The trainer calls next() len() times and never exhausts the epoch's iterator: the pipeline must go on
    into the next epoch all the same (no new workers, no prefetched batches thrown away), and its shuffles must
    be those of a loader without workers."""
    def epochs(loader, n):
        out, pipelines = [], []
        for e in range(n):
            loader.set_epoch(e)
            batches = iter(loader)
            out.append([next(batches)[2] for _ in range(len(loader))])
            pipelines.append(loader._iterator)
        return out, pipelines

    dataset = _textured_dataset(tmp_path)
    with_workers, pipelines = epochs(create_dataloader(dataset, 2, 2, shuffle=True, seed=1), 3)
    without, _ = epochs(create_dataloader(dataset, 2, 0, shuffle=True, seed=1), 3)
    assert pipelines[0] is pipelines[1] is pipelines[2]
    assert with_workers == without
    assert with_workers[0] != with_workers[1]  # reshuffled each epoch


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_read_rgb_gives_opencvs_pixels_in_rgb(tmp_path, suffix):
    rng = np.random.default_rng(0)
    bgr = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (5, 5), 0)
    path = tmp_path / f"a{suffix}"
    cv2.imwrite(str(path), bgr)
    rgb = read_rgb(str(path))
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb, cv2.imread(str(path))[..., ::-1])


def test_read_rgb_falls_back_and_reports_undecodable(tmp_path):
    png_named_jpg = tmp_path / "png.jpg"  # torchvision's JPEG decoder refuses it, OpenCV reads it
    cv2.imwrite(str(tmp_path / "x.png"), np.full((20, 30, 3), (10, 20, 30), np.uint8))
    png_named_jpg.write_bytes((tmp_path / "x.png").read_bytes())
    assert read_rgb(str(png_named_jpg))[0, 0].tolist() == [30, 20, 10]
    (tmp_path / "text.jpg").write_text("not an image")
    assert read_rgb(str(tmp_path / "text.jpg")) is None


def test_batches_are_channels_last_with_the_same_values():
    images = tuple(torch.randint(0, 256, (3, 8, 10), dtype=torch.uint8) for _ in range(4))
    batch = stack_channels_last(images)
    assert batch.shape == (4, 3, 8, 10) and batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(batch, torch.stack(images))


def _data_yaml(tmp_path, names_block: str) -> Path:
    path = tmp_path / "d.yaml"
    path.write_text(f"path: .\nval: images\n{names_block}")
    return path


def test_names_mapping_is_indexed_by_integer_ids(tmp_path):
    config = load_dataset_config(_data_yaml(tmp_path, "names:\n  '0': a\n  '1': b\n  '2': c\n  '10': d\n"
                                            "  '3': e\n  '4': f\n  '5': g\n  '6': h\n  '7': i\n  '8': j\n  '9': k\n"))
    assert config["names"][:4] == ["a", "b", "c", "e"] and config["names"][10] == "d"


@pytest.mark.parametrize("block, message", [
    ("names: {0: person, 2: car, 7: truck}\n", r"exactly 0..2; missing \[1\], unexpected \[7\]"),
    ("names: {a: person}\n", "not a class id"),
])
def test_names_mapping_with_gaps_is_an_error(tmp_path, block, message):
    with pytest.raises(DatasetError, match=message):
        load_dataset_config(_data_yaml(tmp_path, block))


@pytest.mark.parametrize("row", ["nan 0.5 0.5 0.2 0.2", "0 nan 0.5 0.2 0.2", "0 0.5 0.5 inf 0.2", "0 0.5 -inf 0.2 0.2"])
def test_non_finite_label_values_are_bad_labels_with_file_and_line(row):
    labels, kind, message, _ = parse_label_text(f"0 0.5 0.5 0.1 0.1\n{row}\n", 2, "a.txt")
    assert labels is None and kind == "bad label" and message.startswith("a.txt:2: NaN or infinite")


def test_label_file_with_byte_order_mark_is_read(tmp_path):
    images = tmp_path / "images"
    _write_image(images / "a.jpg")
    _write_label(images / "a.jpg", "\ufeff0 0.5 0.5 0.2 0.2\n".encode())
    scan = scan_dataset(str(images), nc=1)
    assert scan.n_boxes == 1 and not scan.problems


def test_images_without_any_label_file_are_an_error_naming_the_folder(tmp_path):
    images = tmp_path / "images"
    for name in ("a.jpg", "b.jpg"):
        _write_image(images / name)
    (tmp_path / "lables").mkdir()  # the usual typo
    with pytest.raises(DatasetError, match=r"no label files; looked for them in .*labels"):
        scan_dataset(str(images), nc=1)
    _write_label(images / "a.jpg", "0 0.5 0.5 0.2 0.2\n")
    assert scan_dataset(str(images), nc=1).n_boxes == 1  # one labelled, one background image: fine


def test_images_over_the_pixel_limit_are_skipped_before_decoding(tmp_path, monkeypatch):
    images = tmp_path / "images"
    _write_image(images / "big.png", h=64, w=80)
    _write_label(images / "big.png", "0 0.5 0.5 0.2 0.2\n")
    _write_image(images / "ok.jpg", h=20, w=20)
    _write_label(images / "ok.jpg", "0 0.5 0.5 0.2 0.2\n")
    decode = cv2.imdecode

    def guarded(buffer, flags):
        assert len(buffer) < 1000, "the over-limit image was decoded"
        return decode(buffer, flags)

    monkeypatch.setattr(cv2, "imdecode", guarded)
    scan = scan_dataset(str(images), nc=1, max_pixels=1000)
    assert [Path(p).name for p in scan.images] == ["ok.jpg"]
    assert scan.problems[0][1] == "huge image" and "80x64 pixels, over the limit of 1,000" in scan.problems[0][2]
    monkeypatch.setattr(cv2, "imdecode", decode)
    assert len(scan_dataset(str(images), nc=1).images) == 2  # the default limit: a fresh scan, not the cached one


def test_jpeg_with_bytes_after_the_end_marker_is_valid(tmp_path):
    images = tmp_path / "images"
    _write_image(images / "motion.jpg")
    with open(images / "motion.jpg", "ab") as f:
        f.write(b"\x00ftypmp42" + bytes(range(256)) * 8)  # a phone's video tail
    _write_label(images / "motion.jpg", "0 0.5 0.5 0.2 0.2\n")
    scan = scan_dataset(str(images), nc=1)
    assert len(scan.images) == 1 and not scan.problems


def test_file_names_that_are_not_utf8_are_reported(tmp_path):
    images = os.fsencode(tmp_path / "images")
    os.makedirs(images)
    ok, buffer = cv2.imencode(".jpg", np.full((40, 40, 3), 90, np.uint8))
    for name in (b"good", b"bad\xff"):
        with open(images + b"/" + name + b".jpg", "wb") as f:
            f.write(buffer.tobytes())
    _write_label(tmp_path / "images" / "good.jpg", "0 0.5 0.5 0.2 0.2\n")
    scan = scan_dataset(str(tmp_path / "images"), nc=1)
    assert len(scan.images) == 1 and scan.problems[0][1] == "bad file name"


def test_bare_names_find_the_shipped_dataset_yamls():
    from utils.data.formats import DATA_DIR, resolve_data_path

    assert (DATA_DIR / "smallobj.yaml").is_file()
    assert resolve_data_path("smallobj.yaml") == DATA_DIR / "smallobj.yaml"
    assert resolve_data_path("coco128") == DATA_DIR / "coco128.yaml"


class _BlockSource:
    """Images of different sizes, each with coloured blocks exactly where its label boxes are."""

    def __init__(self, imgsz=64, hyp=None, n=6):
        from utils.data.augmentations import BoxRule
        from utils.data.dataset import Hyp

        self.imgsz, self.hyp = imgsz, hyp or Hyp.from_dict({"scale": 0.0, "translate": 0.0})
        self.box_rule = BoxRule()
        rng = np.random.default_rng(7)
        self.items, self.reads = [], 0
        self.drop_tally = lambda: None
        for i in range(n):
            h, w = int(imgsz * rng.uniform(0.6, 1.0)), imgsz
            image = np.full((h, w, 3), 20, np.uint8)
            boxes = []
            for j in range(3):
                x1, y1 = int(rng.integers(0, w - w // 3)), int(rng.integers(0, h - h // 3))
                x2, y2 = x1 + w // 4, y1 + h // 4
                image[y1:y2, x1:x2] = (40 * (i + 1), 60 * j + 60, 200)
                boxes.append([x1, y1, x2, y2])
            self.items.append((image, np.array(boxes, np.float64), np.full(3, float(i), np.float32)))

    def __len__(self):
        return len(self.items)

    def resized_shape(self, i):
        return self.items[i][0].shape[:2]

    def read_resized(self, i):
        self.reads += 1
        image = self.items[i][0]
        return image, image.shape[:2]

    def pixel_boxes(self, i, w, h, pad_x=0, pad_y=0):
        _, boxes, classes = self.items[i]
        return boxes + (pad_x, pad_y, pad_x, pad_y), classes.copy()


def test_mosaic_wraps_any_source_of_resized_images_and_boxes():
    from utils.data.mosaic import Mosaic

    image, boxes, classes = Mosaic(_BlockSource()).load(0, np.random.default_rng(0))
    assert image.shape == (64, 64, 3) and len(boxes) == len(classes) >= 1
    assert (boxes >= 0).all() and (boxes <= 64).all()


def _scale_hyp(**extra):
    from utils.data.dataset import Hyp

    return Hyp.from_dict({"scale": 0.5, "translate": 0.1, **extra})


def test_mosaic_boxes_follow_the_pixels():
    from utils.data.mosaic import Mosaic

    source = _BlockSource(imgsz=160, hyp=_scale_hyp())
    checked = 0
    for seed in range(12):
        image, boxes, classes = Mosaic(source).load(seed % 6, np.random.default_rng(seed))
        for (x1, y1, x2, y2), c in zip(boxes, classes):
            inner = image[int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1]
            if inner.size == 0:
                continue
            assert (inner[..., 2] == 200).all() and (inner[..., 0] == 40 * (c + 1)).any()
            checked += 1
    assert checked > 20


def test_mosaic_skips_reading_images_outside_the_crop_without_changing_it(monkeypatch):
    import utils.data.mosaic as mosaic

    for hyp in (_scale_hyp(), _scale_hyp(degrees=10.0)):
        skipping, reading = _BlockSource(imgsz=160, hyp=hyp), _BlockSource(imgsz=160, hyp=hyp)
        for seed in range(40):
            a = mosaic.Mosaic(skipping).load(seed % 6, np.random.default_rng(seed))
            with monkeypatch.context() as m:
                m.setattr(mosaic, "_overlaps", lambda box, view: True)
                b = mosaic.Mosaic(reading).load(seed % 6, np.random.default_rng(seed))
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
        assert reading.reads == 160 and skipping.reads < 160


def test_an_image_resized_since_the_scan_is_refused_by_name(tmp_path):
    from utils.data.dataset import YoloDataset
    from utils.data.formats import DatasetError, label_path_for
    from utils.data.scan import scan_dataset

    images = tmp_path / "images" / "train"
    images.mkdir(parents=True)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(images / name), np.full((60, 80, 3), 90, np.uint8))
        label_path_for(images / name).parent.mkdir(parents=True, exist_ok=True)
        label_path_for(images / name).write_text("0 0.5 0.5 0.2 0.2\n")
    dataset = YoloDataset(scan_dataset(images, 1), 64, augment=True)
    assert dataset.read_resized(1)[0].shape[:2] == dataset.resized_shape(1) == (48, 64)
    cv2.imwrite(str(images / "b.png"), np.full((80, 40, 3), 90, np.uint8))  # portrait now
    with pytest.raises(DatasetError, match=r"b\.png: now 32x64 .*scanned as 80x60"):
        dataset.read_resized(1)


def test_jpeg_reduction_keeps_the_longest_side_at_least_the_target():
    from utils.data.images import jpeg_reduction

    assert jpeg_reduction("a.jpg", (480, 640), 320) == 2
    assert jpeg_reduction("a.JPEG", (480, 640), 160) == 4
    assert jpeg_reduction("a.jpg", (427, 640), 300) == 2
    assert jpeg_reduction("a.jpg", (480, 640), 321) == 1
    assert jpeg_reduction("a.jpg", (4000, 6000), 100) == 8
    assert jpeg_reduction("a.jpg", (479, 641), 321) == 2  # ceil(641 / 2) = 321
    assert jpeg_reduction("a.png", (480, 640), 160) == 1


def test_reduced_read_applies_exif_orientation_like_the_full_one(tmp_path):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    Image.fromarray(np.zeros((200, 400, 3), np.uint8)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert read_rgb(str(tmp_path / "r.jpg")).shape == (400, 200, 3)
    assert read_rgb(str(tmp_path / "r.jpg"), reduction=2).shape == (200, 100, 3)


class _Niceness(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        return os.nice(0)


@pytest.mark.skipif(not hasattr(os, "nice"), reason="POSIX niceness")
def test_loader_workers_run_at_a_lower_cpu_priority():
    from utils.data.loaders import WORKER_NICENESS, seed_worker

    loader = torch.utils.data.DataLoader(_Niceness(), num_workers=1, worker_init_fn=seed_worker)
    assert {int(n) for n in loader} == {min(os.nice(0) + WORKER_NICENESS, 19)}


def test_overhanging_boxes_are_clipped_with_a_note_and_the_valid_boxes_stay(tmp_path):
    labels, kind, note, _ = parse_label_text("0 0.5 0.5 0.2 0.2\n0 0.95 0.5 0.3 0.2\n0 1.0005 0.5 0.0004 0.2\n",
                                             1, "a.txt")
    assert kind == "" and len(labels) == 2  # the valid box and the clipped one; the zero-area sliver goes
    np.testing.assert_allclose(labels[1], [0, 0.9, 0.5, 0.2, 0.2], atol=1e-6)
    assert note == "a.txt: 1 boxes with no area inside the image removed; 1 boxes overhanging the image clipped to it"
    labels, kind, message, _ = parse_label_text("0 320 240 50 60\n", 1, "pixels.txt")  # not normalised
    assert labels is None and "coordinates outside [0, 1] (box centre 320, 240)" in message


def test_a_label_path_that_is_not_a_regular_file_is_reported(tmp_path):
    images = tmp_path / "images"
    _write_image(images / "a.jpg")
    _write_image(images / "b.jpg")
    _write_label(images / "b.jpg", "0 0.5 0.5 0.1 0.1\n")
    label_path_for(images / "a.jpg").mkdir(parents=True)  # a folder where a.txt should be
    scan = scan_dataset(str(images), nc=1)
    assert [Path(p).name for p in scan.images] == ["b.jpg"]
    assert scan.problems[0][2].endswith("a.txt: not a regular file")
