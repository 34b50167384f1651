"""utils/data/images.py: the scan, the training loader and inference decode every accepted format alike."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from utils.data.dataset import YoloDataset
from utils.data.formats import IMAGE_SUFFIXES
from utils.data.images import read_image
from utils.data.scan import scan_dataset

EXIF_ORIENTATION = 0x0112


@pytest.mark.parametrize("suffix", sorted(IMAGE_SUFFIXES))
@pytest.mark.parametrize("rotated", [False, True])
def test_scan_loader_and_inference_agree_on_every_format(tmp_path, monkeypatch, suffix, rotated):
    monkeypatch.setenv("YOLOV5_SPD_CACHE", str(tmp_path / "cache"))
    images = tmp_path / "images"
    images.mkdir()
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = (200, 30, 30)
    path = images / f"a{suffix}"
    exif = Image.Exif()
    if rotated:
        if suffix == ".bmp":
            pytest.skip("BMP has no EXIF")
        exif[EXIF_ORIENTATION] = 6  # shown rotated by 90 degrees
    Image.fromarray(pixels).save(path, exif=exif.tobytes()) if rotated else Image.fromarray(pixels).save(path)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    scan = scan_dataset(str(images), 1)
    assert not scan.problems, scan.problems
    expected = (80, 40) if rotated else (40, 80)
    assert tuple(scan.shapes[0]) == expected
    assert read_image(path).shape[:2] == expected
    for reduced in (False, True):
        dataset = YoloDataset(scan, imgsz=80, augment=False, reduced_decoding=reduced)
        image, _, _, meta = dataset[0]
        assert tuple(meta[0]) == expected


def test_formats_only_opencv_reads_are_sized_before_decoding(tmp_path):
    import cv2
    import numpy as np
    import pytest

    from utils.data.images import check_image, image_from_bytes, image_size_from_header

    pixels = np.random.default_rng(0).random((40, 60, 3)).astype(np.float32)
    for suffix in (".hdr", ".pfm"):
        encoded = cv2.imencode(suffix, pixels)[1].tobytes()
        assert image_size_from_header(encoded) == (40, 60), suffix
        disguised = tmp_path / f"x{suffix}.png"  # the suffix lies; the header tells
        disguised.write_bytes(encoded)
        assert check_image(disguised, max_pixels=2000)[1] == "huge image"
        assert check_image(disguised)[0] == (40, 60)
        with pytest.raises(ValueError, match="over the limit of 2,000"):
            image_from_bytes(encoded, "url", max_pixels=2000)
