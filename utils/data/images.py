"""Reading images safely: a pixel limit checked from the header, the checks of the scan, fast RGB decoding."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from torchvision.io import ImageReadMode, decode_jpeg, read_file

MIN_IMAGE_SIDE = 10


def is_truncated_jpeg(data: bytes) -> bool:
    """A JPEG without its end-of-image marker (bytes after the marker, as in motion photos, are fine)."""
    return data[:2] == b"\xff\xd8" and data.rfind(b"\xff\xd9") < 0


DEFAULT_MAX_PIXELS = 100_000_000  # a decompression bomb (a 389 KB PNG of 20000x20000) is refused before decoding


def check_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[tuple[int, int] | None, str, str]:
    """Returns ((h, w), '', '') or (None, kind, message); an image over ``max_pixels`` is refused from its
    header, before decoding."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, "unreadable image", f"{path}: cannot read ({exc.strerror})"
    if not data:
        return None, "empty image", f"{path}: zero-byte file"
    if is_truncated_jpeg(data):
        return None, "truncated image", f"{path}: truncated JPEG (no end-of-image marker)"
    size = image_size_from_header(data)
    if size is not None and size[0] * size[1] > max_pixels:
        return None, "huge image", (f"{path}: {size[1]}x{size[0]} pixels, over the limit of {max_pixels:,} "
                                    f"(raise it with --max-pixels)")
    image = decode_bgr(data)
    if image is None:
        return None, "undecodable image", f"{path}: not a decodable image"
    h, w = image.shape[:2]
    if h * w > max_pixels:  # a format whose header neither reader knows
        return None, "huge image", (f"{path}: {w}x{h} pixels, over the limit of {max_pixels:,} (raise it with "
                                    f"--max-pixels)")
    if min(h, w) < MIN_IMAGE_SIDE:
        return None, "tiny image", f"{path}: image is {w}x{h}, smaller than {MIN_IMAGE_SIDE} px"
    return (h, w), "", ""


def decode_bgr(data: bytes | np.ndarray, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """The one decoder behind the scan, the loaders and inference: OpenCV from the file's bytes, EXIF
    orientation applied (``cv2.imread`` fails on some EXIF-rotated TIFFs that this reads)."""
    buffer = data if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
    return cv2.imdecode(buffer, flags) if buffer.size else None


def read_bgr(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """An image file decoded to BGR uint8, or None when it cannot be read or decoded."""
    try:
        return decode_bgr(np.fromfile(str(path), dtype=np.uint8), flags)
    except OSError:
        return None


def image_size_from_header(data: bytes) -> tuple[int, int] | None:
    """(h, w) read from the file header without decoding the pixels; None when the format is not known."""
    import io

    from PIL import Image  # Pillow comes with matplotlib; only the header is parsed

    Image.MAX_IMAGE_PIXELS = None  # Pillow's own bomb check would raise before telling the size; ours follows
    try:
        with Image.open(io.BytesIO(data)) as image:
            w, h = image.size
            return h, w
    except Exception:  # not an image PIL knows: the formats only OpenCV reads, below
        return _opencv_only_header_size(data)


_RADIANCE_SIZE = re.compile(rb"\n\n([-+])([YX]) (\d+) ([-+])([YX]) (\d+)\n")
_PFM_SIZE = re.compile(rb"^P[Ff]\s+(\d+)\s+(\d+)\s")


def _opencv_only_header_size(data: bytes) -> tuple[int, int] | None:
    """(h, w) from the text headers of the formats OpenCV decodes and Pillow does not read: Radiance HDR (a
    resolution line after the blank line, e.g. ``-Y 10000 +X 12000``) and PFM (``PF w h``)."""
    head = data[:4096]
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        found = _RADIANCE_SIZE.search(head)
        if found is None:
            return None
        sizes = {found[2]: int(found[3]), found[5]: int(found[6])}
        return sizes[b"Y"], sizes[b"X"]
    found = _PFM_SIZE.match(head)
    return (int(found[2]), int(found[1])) if found else None


JPEG_REDUCTIONS = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def jpeg_reduction(path: str, shape: tuple[int, int], longest_side: int) -> int:
    """The largest libjpeg scale-down (1, 2, 4 or 8) that keeps an image of ``shape`` (h, w) at least
    ``longest_side`` long: decoding at 1/2 skips most of the IDCT and the resize work. 1 for other formats."""
    if not path.lower().endswith((".jpg", ".jpeg")):
        return 1
    factor = 1
    while factor < 8 and -(-max(shape) // (factor * 2)) >= longest_side:
        factor *= 2
    return factor


def read_rgb(path: str, reduction: int = 1) -> np.ndarray | None:
    """An image as (H, W, 3) uint8 RGB with its EXIF orientation applied (as ``cv2.imread`` does), or None
    when it cannot be decoded. JPEGs go through torchvision's libjpeg-turbo decoder, which gives the same
    pixels as OpenCV's about 25 % faster and already in RGB (the loaders decode four images per mosaic);
    other formats, and JPEGs it refuses, through OpenCV. ``reduction`` 2, 4 or 8 (from :func:`jpeg_reduction`)
    decodes a JPEG at that fraction of its size in the DCT domain (sides rounded up)."""
    if reduction > 1:
        image = read_bgr(path, JPEG_REDUCTIONS[reduction])
        if image is not None:
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif path.lower().endswith((".jpg", ".jpeg")):
        try:
            decoded = decode_jpeg(read_file(path), mode=ImageReadMode.RGB, apply_exif_orientation=True)
            return decoded.permute(1, 2, 0).numpy()  # the decoder's own interleaved buffer, no copy
        except RuntimeError:
            pass
    image = read_bgr(path)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """BGR uint8 image, or a ValueError naming the file (also for one over ``max_pixels``)."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    if data is None:
        raise ValueError(f"{path}: not a readable image")
    return image_from_bytes(data, path, max_pixels)


def image_from_bytes(data: bytes | np.ndarray, name: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an encoded image (a file's or a URL's bytes) to BGR uint8 if it has at most ``max_pixels``, else
    a ValueError naming ``name``."""
    buffer = data if isinstance(data, np.ndarray) else np.frombuffer(data, np.uint8)
    size = image_size_from_header(buffer.tobytes()) if buffer.size else None
    if size is not None and size[0] * size[1] > max_pixels:
        raise ValueError(f"{name}: {size[1]}x{size[0]} pixels, over the limit of {max_pixels:,} "
                         f"(raise it with --max-pixels)")
    image = decode_bgr(buffer)
    if image is None:
        raise ValueError(f"{name}: not a readable image")
    if image.shape[0] * image.shape[1] > max_pixels:  # a format whose header neither reader knows
        raise ValueError(f"{name}: {image.shape[1]}x{image.shape[0]} pixels, over the limit of {max_pixels:,} "
                         f"(raise it with --max-pixels)")
    return image
