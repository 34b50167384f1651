"""--cache ram/disk: decoded once, never written inside the dataset, atomic and self-healing on disk;
reduced JPEG decoding in the training dataset keeps the boxes."""

import hashlib

import cv2
import numpy as np
import pytest

from utils.data.image_cache import ImageCache
from utils.data.scan import scan_dataset


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))


def _images(folder, n=3):
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        path = folder / f"{i}.png"
        cv2.imwrite(str(path), np.full((8, 10, 3), 40 * i, np.uint8))
        files.append(str(path))
    return files


class _Decoder:
    def __init__(self, files):
        self.files, self.calls = files, []

    def __call__(self, index):
        self.calls.append(index)
        return cv2.imread(self.files[index])


def _tree_digest(folder):
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ram_cache_decodes_each_image_once(tmp_path):
    files = _images(tmp_path / "data")
    decode = _Decoder(files)
    cache = ImageCache("ram", files, decode, "s")
    cache.fill(workers=2)
    assert sorted(decode.calls) == [0, 1, 2]
    assert [int(cache.get(i)[0, 0, 0]) for i in range(3)] == [0, 40, 80] and len(decode.calls) == 3


def test_disk_cache_lives_outside_the_dataset_and_serves_the_next_run(tmp_path):
    files = _images(tmp_path / "data")
    before = _tree_digest(tmp_path / "data")
    ImageCache("disk", files, _Decoder(files), "s").fill(workers=2)
    assert _tree_digest(tmp_path / "data") == before  # nothing written into the dataset
    stored = list((tmp_path / "cache" / "images").rglob("*.npy"))
    assert len(stored) == 3 and not list((tmp_path / "cache").rglob("*.tmp"))
    second = _Decoder(files)
    cache = ImageCache("disk", files, second, "s")
    assert [int(cache.get(i)[0, 0, 0]) for i in range(3)] == [0, 40, 80] and second.calls == []
    other_settings = _Decoder(files)
    ImageCache("disk", files, other_settings, "another size").get(0)
    assert other_settings.calls == [0]


def test_a_damaged_or_stale_disk_entry_is_decoded_again(tmp_path):
    files = _images(tmp_path / "data")
    ImageCache("disk", files, _Decoder(files), "s").fill(workers=1)
    for stored in (tmp_path / "cache" / "images").rglob("*.npy"):
        stored.write_bytes(stored.read_bytes()[:20])  # a run killed mid-write by something else
    cv2.imwrite(files[1], np.full((8, 10, 3), 200, np.uint8))  # an image edited since it was cached
    again = _Decoder(files)
    cache = ImageCache("disk", files, again, "s")
    assert [int(cache.get(i)[0, 0, 0]) for i in range(3)] == [0, 200, 80] and sorted(again.calls) == [0, 1, 2]


def test_reduced_decoding_keeps_boxes_and_nearly_the_pixels(tmp_path):
    from utils.data.dataset import YoloDataset
    from utils.data.formats import label_path_for

    images = tmp_path / "ds" / "images" / "train"
    images.mkdir(parents=True)
    y, x = np.mgrid[0:480, 0:640]
    picture = np.stack([(x * 0.4) % 256, (y * 0.5) % 256, ((x + y) * 0.2) % 256], -1).astype(np.uint8)
    cv2.rectangle(picture, (100, 100), (300, 200), (255, 255, 255), -1)
    cv2.imwrite(str(images / "a.jpg"), picture, [cv2.IMWRITE_JPEG_QUALITY, 95])
    label = label_path_for(images / "a.jpg")
    label.parent.mkdir(parents=True)
    label.write_text("0 0.3125 0.3125 0.3125 0.2083\n")
    scan = scan_dataset(images, 1)
    exact = YoloDataset(scan, 320, augment=False, reduced_decoding=False)
    reduced = YoloDataset(scan, 320, augment=False, reduced_decoding=True)
    a, b = exact.read_resized(0)[0], reduced.read_resized(0)[0]
    assert a.shape == b.shape == (240, 320, 3)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0  # the resampling differs, not the picture
    ia, la, *_ = exact[0]
    ib, lb, *_ = reduced[0]
    assert ia.shape == ib.shape and np.array_equal(la.numpy(), lb.numpy())
