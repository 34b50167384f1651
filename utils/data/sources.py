"""Where inference frames come from: files, folders, globs and lists; videos; cameras, RTSP/RTMP/HTTP streams and
``.streams`` files of several; HTTP(S) image and video URLs; the screen (``screen`` or ``screen N left top width
height``, yolov5's form; the ``screen`` extra, mss); and in-memory numpy arrays, PIL images and tensors.

Every source becomes an iterator of batches of :class:`Frame` (one frame per batch, except a ``.streams`` file:
one frame of every live stream per batch), each a BGR uint8 image. Colour order of in-memory inputs is the
caller's statement (``numpy_order``): numpy arrays are BGR by default (OpenCV's order, what ``cv2.imread`` and
``VideoCapture`` give); ``"rgb"`` is what yolov5's hub expects. PIL images and tensors carry their order (RGB).

A URL is fetched only because it was named, with ``timeout`` seconds to answer; an unreachable one is a
:class:`SourceError` of one line, never a hang.
"""

from __future__ import annotations

import glob
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from utils.data.formats import IMAGE_SUFFIXES
from utils.data.images import DEFAULT_MAX_PIXELS, image_from_bytes, read_image

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpeg", ".mpg", ".wmv", ".webm", ".gif"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://", "tcp://", "udp://")
DEFAULT_TIMEOUT_S = 10.0


class SourceError(ValueError):
    """A source that cannot be opened; the message names it and says why in one line."""


@dataclass
class Frame:
    """One image to detect on, with where it came from."""

    image: np.ndarray  # BGR uint8, (h, w, 3)
    source: str  # the path, URL, "camera 0" or "array 2" it came from
    kind: str  # "image", "video", "stream" or "array"
    index: int | None = None  # the frame's 0-based position in its video or stream
    total: int | None = None  # frames in the video, when the container says

    @property
    def stem(self) -> str:
        """A file-name stem for this frame's outputs."""
        return output_stem(self.source)


def output_stem(source: str) -> str:
    """A file-name stem for outputs about a source: 'camera0', 'array_2', or the file or URL's stem."""
    if source.startswith("camera "):
        return "camera" + source.split()[1]
    if source.startswith("array") or source.startswith("screen"):
        return source.replace(" ", "_")
    name = Path(source.split("?")[0].rstrip("/")).stem or "stream"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def is_url(text: str) -> bool:
    """Whether ``text`` names a stream or URL (rtsp, rtmp, http, https)."""
    return text.lower().startswith(STREAM_SCHEMES)


def url_suffix(url: str) -> str:
    """The file suffix of a URL's path (query and fragment ignored), lower-case."""
    return Path(url.split("?")[0].split("#")[0]).suffix.lower()


def list_files(source: str | Path) -> list[Path]:
    """Files from an image or video path, a folder, a glob pattern or a .txt list of paths."""
    path = Path(source)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
    if path.is_file() and path.suffix == ".txt":
        return _listed_files(path)
    if path.is_file():
        return [path]
    matches = sorted(Path(p) for p in glob.glob(str(source), recursive=True))
    if not matches:
        raise FileNotFoundError(f"{source}: no such file, folder or matching files (nor a camera index or URL)")
    return matches


def _listed_files(path: Path) -> list[Path]:
    """The files of a .txt list, one per line: a relative path is taken from the list's folder (as dataset lists
    are), else from the current folder; a line that names no file there is refused before any work."""
    files, missing = [], []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        listed = Path(entry)
        found = next((p for p in ([listed] if listed.is_absolute() else [path.parent / listed, listed])
                      if p.is_file()), None)
        if found is None:
            missing.append(entry)
        else:
            files.append(found)
    if missing:
        raise FileNotFoundError(f"{path}: {len(missing)} of {len(files) + len(missing)} listed files do not exist "
                                f"(first: {missing[0]}; relative paths are read from the list's folder, then from "
                                f"the current one)")
    return files


MAX_URL_BYTES = 100 * 2**20  # an image larger than 100 MiB is not one a detector reads


def fetch_url(url: str, timeout: float = DEFAULT_TIMEOUT_S, max_bytes: int = MAX_URL_BYTES) -> bytes:
    """The bytes at an HTTP(S) URL, or a one-line SourceError (offline, refused, 404, too slow, too large).
    ``timeout`` bounds the whole transfer, not only each read: a server trickling bytes cannot hold the run."""
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the user named it)
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise SourceError(f"{url}: {int(declared):,} bytes, over the limit of {max_bytes:,}")
            chunks, size = [], 0
            while chunk := response.read1(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise SourceError(f"{url}: more than {max_bytes:,} bytes; not fetched")
                if time.monotonic() > deadline:
                    raise SourceError(f"{url}: not fetched within {timeout:g} s")
                chunks.append(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as exc:
        raise SourceError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"{url}: could not be fetched ({reason}); is this machine offline?") from None


def open_capture(target: int | str, timeout: float = DEFAULT_TIMEOUT_S) -> cv2.VideoCapture:
    """A cv2.VideoCapture of a camera index, a video file or a stream URL, opened or a SourceError."""
    name = f"camera {target}" if isinstance(target, int) else str(target)
    if isinstance(target, str) and is_url(target):
        ms = int(timeout * 1000)
        capture = cv2.VideoCapture(target, cv2.CAP_FFMPEG,
                                   [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    else:
        capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        capture.release()
        why = ("no such camera, or it is in use" if isinstance(target, int)
               else f"not reachable within {timeout:.0f} s, or not a video stream" if is_url(str(target))
               else "not a readable video")
        raise SourceError(f"{name}: could not be opened ({why})")
    return capture


def read_capture(capture: cv2.VideoCapture, name: str, kind: str, vid_stride: int = 1,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[Frame]:
    """Every vid_stride-th frame of an opened capture, released when exhausted or abandoned. Frames over
    ``max_pixels`` are refused from the stream's parameters before any is read; a source that gives no frame
    at all is a SourceError, not an empty result."""
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if kind == "video" else 0
    w, h = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if w * h > max_pixels:
        capture.release()
        raise SourceError(f"{name}: {w}x{h} frames, over the limit of {max_pixels:,} pixels (raise it with "
                          f"--max-pixels)")
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok or image is None:
                if index == 0:
                    raise SourceError(f"{name}: no frame could be read (not a video or image the decoder "
                                      f"accepts, or an empty stream)")
                return
            if index % vid_stride == 0:
                yield Frame(image, name, kind, index, total if total > 0 else None)
            index += 1
    finally:
        capture.release()


def as_bgr(item: Any, numpy_order: str = "bgr", name: str = "array") -> np.ndarray:
    """A numpy array (in ``numpy_order``), PIL image or tensor ((3, H, W), RGB, 0-1 floats or uint8) as BGR uint8."""
    if numpy_order not in ("bgr", "rgb"):
        raise ValueError(f"numpy_order must be 'bgr' or 'rgb', got {numpy_order!r}")
    module = type(item).__module__.split(".")[0]
    if module == "PIL":
        return _pil_as_bgr(item, name)
    if module == "torch":
        return _tensor_as_bgr(item, name)
    if isinstance(item, np.ndarray):
        return _array_as_bgr(item, numpy_order, name)
    raise SourceError(f"{name}: cannot detect on a {type(item).__name__} (a path, URL, camera index, numpy array, "
                      f"PIL image or tensor, or a list of them)")


def _pil_as_bgr(item: Any, name: str) -> np.ndarray:
    """An 8-bit PIL image (any mode but 16/32-bit and float ones) as BGR."""
    if 0 in item.size:
        raise SourceError(f"{name}: the PIL image has no pixels ({item.size[0]}x{item.size[1]})")
    if item.mode.startswith(("I", "F")):  # 16/32-bit or float: convert("RGB") would clip it to white
        raise SourceError(f"{name}: a PIL image in mode {item.mode} (16/32-bit or float) is not 8-bit; scale it "
                          f"to 0-255 and convert it to 'L' or 'RGB' first")
    return cv2.cvtColor(np.asarray(item.convert("RGB")), cv2.COLOR_RGB2BGR)


def _tensor_as_bgr(item: Any, name: str) -> np.ndarray:
    """A (3, H, W) or (1, H, W) RGB tensor, uint8 or finite floats in [0, 1], as BGR."""
    tensor = item.detach().cpu()
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise SourceError(f"{name}: a tensor must be (3, H, W) RGB (a batch is a list or (B, 3, H, W)), got "
                          f"shape {tuple(tensor.shape)}")
    if tensor.numel() == 0:
        raise SourceError(f"{name}: the tensor has no pixels (shape {tuple(tensor.shape)})")
    if not tensor.is_floating_point() and tensor.dtype != torch.uint8:  # int32 16-bit data would wrap
        raise SourceError(f"{name}: a tensor must be uint8 (0-255) or float (0-1), got {tensor.dtype}")
    if tensor.is_floating_point():
        if not torch.isfinite(tensor).all():
            raise SourceError(f"{name}: the float tensor holds NaN or infinite values")
        if tensor.min() < 0 or tensor.max() > 1:
            raise SourceError(f"{name}: a float tensor must hold values in [0, 1], got "
                              f"{float(tensor.min()):.3g}..{float(tensor.max()):.3g}")
        tensor = (tensor * 255).round()
    array = tensor.to(torch.uint8).permute(1, 2, 0).numpy()
    return cv2.cvtColor(np.ascontiguousarray(array.repeat(3, 2) if array.shape[2] == 1 else array),
                        cv2.COLOR_RGB2BGR)


def _array_as_bgr(array: np.ndarray, numpy_order: str, name: str) -> np.ndarray:
    """A uint8 (H, W), (H, W, 3) or (H, W, 4) array in ``numpy_order`` as BGR."""
    if array.dtype != np.uint8:
        raise SourceError(f"{name}: a numpy image must be uint8 (0-255), got {array.dtype}")
    if array.size == 0:
        raise SourceError(f"{name}: the numpy image has no pixels (shape {array.shape})")
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise SourceError(f"{name}: a numpy image must be (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.shape[2] == 4:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2RGB if numpy_order == "rgb" else cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(array[..., ::-1] if numpy_order == "rgb" else array)


def _is_screen(text: str) -> bool:
    return (text == "screen" or text.startswith("screen ")) and not Path(text).exists()


def _screen_frames(spec: str, vid_stride: int) -> Iterator[list[Frame]]:
    """``screen [N [left top [width height]]]``: grabs of monitor N (0: all of them; default 1 where there are
    several), or of a region of it, until stopped (Ctrl+C)."""
    fields = spec.split()[1:]
    if len(fields) not in (0, 1, 3, 5) or not all(f.lstrip("-").isdigit() for f in fields):
        raise SourceError(f"{spec}: expected 'screen', 'screen N', 'screen N left top' or 'screen N left top width "
                          f"height' (whole numbers)")
    try:
        import mss
    except ImportError:
        raise SourceError(f"{spec}: screen capture needs the mss package (pip install mss, or the screen "
                          f"extra)") from None
    try:
        grabber = mss.mss()
        monitors = grabber.monitors  # [0] is every screen together, [1:] each one
        number = int(fields[0]) if fields else min(1, len(monitors) - 1)
        if not 0 <= number < len(monitors):
            raise SourceError(f"{spec}: there is no screen {number} (screens 0-{len(monitors) - 1})")
        monitor = dict(monitors[number])
        values = [int(f) for f in fields[1:]]
        if values:
            monitor["left"], monitor["top"] = monitor["left"] + values[0], monitor["top"] + values[1]
            monitor["width"], monitor["height"] = (values[2], values[3]) if len(values) == 4 else (
                monitor["width"] - values[0], monitor["height"] - values[1])
        index = 0
        while True:
            shot = np.asarray(grabber.grab(monitor))  # BGRA
            if index % vid_stride == 0:
                yield [Frame(np.ascontiguousarray(shot[:, :, :3]), spec, "stream", index)]
            index += 1
    except SourceError:
        raise
    except Exception as exc:  # mss's ScreenShotError: no display, no permission
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SourceError(f"{spec}: the screen cannot be captured ({why}); is there a display?") from None


def _is_camera(text: str) -> bool:
    return text.isdigit() and not Path(text).exists()


def _file_frames(path: Path, vid_stride: int, max_pixels: int) -> Iterator[list[Frame]]:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        for frame in read_capture(open_capture(str(path)), str(path), "video", vid_stride, max_pixels):
            yield [frame]
    else:
        yield [Frame(read_image(path, max_pixels), str(path), "image")]


def _url_frames(url: str, vid_stride: int, timeout: float, max_pixels: int) -> Iterator[list[Frame]]:
    suffix = url_suffix(url)
    if suffix in IMAGE_SUFFIXES:
        yield [Frame(image_from_bytes(fetch_url(url, timeout), url, max_pixels), url, "image")]
        return
    kind = "video" if suffix in VIDEO_SUFFIXES else "stream"
    for frame in read_capture(open_capture(url, timeout), url, kind, vid_stride, max_pixels):
        yield [frame]


def _streams_file(path: Path, vid_stride: int, timeout: float,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[list[Frame]]:
    """One frame of every live stream per batch, until the last one ends."""
    targets = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()
               if line.strip() and not line.strip().startswith("#")]
    if not targets:
        raise SourceError(f"{path}: a .streams file lists no sources")
    readers = []
    for target in targets:
        capture = open_capture(int(target) if _is_camera(target) else target, timeout)
        name = f"camera {target}" if _is_camera(target) else target
        readers.append(read_capture(capture, name, "stream", vid_stride, max_pixels))
    while readers:
        batch, alive = [], []
        for reader in readers:
            frame = next(reader, None)
            if frame is not None:
                batch.append(frame)
                alive.append(reader)
        readers = alive
        if batch:
            yield batch


def check_local_source(source: Any) -> None:
    """Refuse, before any work, a named file source that holds nothing to detect on (a missing path, an empty
    folder); URLs, cameras, .streams files and in-memory inputs are checked when opened."""
    text = str(source)
    if not isinstance(source, (str, Path)) or is_url(text) or _is_camera(text) or _is_screen(text):
        return
    if str(source).endswith(".streams") and Path(source).is_file():
        return
    if not list_files(source):
        raise FileNotFoundError(f"{source}: no images or videos found")


def iterate_source(source: Any, numpy_order: str = "bgr", vid_stride: int = 1, timeout: float = DEFAULT_TIMEOUT_S,
                   on_skip=None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Iterator[list[Frame]]:
    """Batches of frames from any source (see the module docstring). ``on_skip(message)`` receives a file that
    cannot be read (the iteration goes on); without it such a file raises. Image files and URLs over
    ``max_pixels`` are refused from their header."""
    items = list(source) if isinstance(source, (list, tuple)) else [source]
    for position, item in enumerate(items):
        name = f"array {position}" if len(items) > 1 else "array"
        if not isinstance(item, (str, Path, int)):
            yield [Frame(as_bgr(item, numpy_order, name), name, "array")]
            continue
        text = str(item)
        if isinstance(item, int) or _is_camera(text):
            camera = open_capture(int(text), timeout)
            for frame in read_capture(camera, f"camera {text}", "stream", vid_stride, max_pixels):
                yield [frame]
        elif is_url(text):
            yield from _url_frames(text, vid_stride, timeout, max_pixels)
        elif _is_screen(text):
            yield from _screen_frames(text, vid_stride)
        elif text.endswith(".streams") and Path(text).is_file():
            yield from _streams_file(Path(text), vid_stride, timeout, max_pixels)
        else:
            for path in list_files(text):
                try:
                    yield from _file_frames(path, vid_stride, max_pixels)
                except (ValueError, OSError) as exc:  # SourceError is a ValueError
                    if on_skip is None:
                        raise
                    on_skip(str(exc))
