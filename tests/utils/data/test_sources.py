"""utils/data/sources.py: every source kind, from a local HTTP server and a camera stand-in (nothing leaves the
machine), and the colour order of in-memory inputs."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import time

import cv2
import numpy as np
import pytest
import torch

from utils.data import sources
from utils.data.sources import SourceError, as_bgr, iterate_source

FRAME = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)


def _frames(source, **kwargs) -> list:
    return [f for batch in iterate_source(source, **kwargs) for f in batch]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """127.0.0.1 serving a JPEG, a 5-frame MP4 and a 4-frame MJPEG stream made here."""
    folder = tmp_path_factory.mktemp("www")
    cv2.imwrite(str(folder / "still.png"), FRAME)
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 64))
    for _ in range(5):
        writer.write(FRAME)
    writer.release()
    ok, jpeg = cv2.imencode(".jpg", FRAME)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path.startswith("/trickle"):  # a byte every 0.5 s, for ever
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(60):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.5)
                except OSError:
                    pass
                return None
            if self.path.startswith("/huge"):  # declares 10 GB
                self.send_response(200)
                self.send_header("Content-Length", str(10 * 2**30))
                self.end_headers()
                return None
            if self.path.startswith("/endless"):  # no length, more bytes than any image
                self.send_response(200)
                self.end_headers()
                try:
                    for _ in range(200):
                        self.wfile.write(bytes(2**20))
                except OSError:
                    pass
                return None
            if not self.path.startswith("/live"):
                return super().do_GET()
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            for _ in range(4):
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                                 + jpeg.tobytes() + b"\r\n")

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    httpd.shutdown()


def test_image_url_is_fetched_and_decoded(server):
    base, _ = server
    (frame,) = _frames(f"{base}/still.png")
    assert frame.kind == "image" and frame.source.endswith("still.png") and np.array_equal(frame.image, FRAME)


def test_video_url_and_mjpeg_stream_give_every_frame(server):
    base, _ = server
    video = _frames(f"{base}/clip.mp4", vid_stride=2)
    assert [f.index for f in video] == [0, 2, 4] and video[0].kind == "video"
    live = _frames(f"{base}/live")
    assert len(live) == 4 and live[0].kind == "stream" and live[0].image.shape == FRAME.shape


def test_unreachable_url_is_one_line_not_a_hang():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match=r"could not be fetched .*offline") as info:
        _frames(f"http://127.0.0.1:{port}/x.jpg", timeout=2)
    assert "\n" not in str(info.value)
    with pytest.raises(SourceError, match="could not be opened"):
        _frames(f"rtsp://127.0.0.1:{port}/cam", timeout=2)
    assert time.perf_counter() - t0 < 10


def test_missing_http_file_names_the_status(server):
    base, _ = server
    with pytest.raises(SourceError, match="HTTP 404"):
        _frames(f"{base}/nothing.jpg")


class FakeCamera:
    """A cv2.VideoCapture stand-in: camera 0 gives three frames, any other index does not open."""

    def __init__(self, target, *args):
        self.index, self.left = target, 3 if target == 0 else 0

    def isOpened(self):
        return self.index == 0

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        return True, FRAME.copy()

    def get(self, prop):
        return 0

    def release(self):
        pass


def test_camera_index_reads_the_camera(monkeypatch):
    monkeypatch.setattr(sources.cv2, "VideoCapture", FakeCamera)
    frames = _frames("0")
    assert len(frames) == 3 and frames[0].source == "camera 0" and frames[0].kind == "stream"
    assert [f.index for f in frames] == [0, 1, 2] and frames[0].stem == "camera0"
    with pytest.raises(SourceError, match="camera 1: could not be opened"):
        _frames(1)


def test_streams_file_batches_one_frame_per_stream(server, tmp_path):
    base, folder = server
    listing = tmp_path / "cams.streams"
    listing.write_text(f"{base}/live\n# a comment\n{folder / 'clip.mp4'}\n")
    batches = list(iterate_source(str(listing)))
    assert [len(b) for b in batches] == [2, 2, 2, 2, 1]  # the clip has one frame more than the live stream
    assert {f.source for f in batches[0]} == {f"{base}/live", str(folder / "clip.mp4")}


def test_colour_order_of_in_memory_inputs():
    rgb = FRAME[..., ::-1].copy()
    assert np.array_equal(as_bgr(FRAME), FRAME)  # numpy: BGR by default (OpenCV's order)
    assert np.array_equal(as_bgr(rgb, "rgb"), FRAME)  # the hub's order
    from PIL import Image

    assert np.array_equal(as_bgr(Image.fromarray(rgb)), FRAME)  # PIL carries RGB
    tensor = torch.from_numpy(rgb).permute(2, 0, 1)
    assert np.array_equal(as_bgr(tensor), FRAME)  # uint8 (3, H, W) RGB
    assert np.abs(as_bgr(tensor.float() / 255).astype(int) - FRAME).max() <= 1  # floats in [0, 1]
    gray = FRAME[..., 0]
    assert np.array_equal(as_bgr(gray)[..., 2], gray)
    bgra = np.dstack([FRAME, np.full(FRAME.shape[:2], 255, np.uint8)])
    assert np.array_equal(as_bgr(bgra), FRAME)


@pytest.mark.parametrize("item, message", [(np.zeros((8, 8, 3), np.float32), "must be uint8"),
                                           (torch.full((3, 8, 8), 2.0), r"values in \[0, 1\]"),
                                           (torch.zeros(2, 3, 8, 8), "must be \\(3, H, W\\)"),
                                           ({"not": "an image"}, "cannot detect on a dict")])
def test_bad_in_memory_inputs_are_named(item, message):
    with pytest.raises(SourceError, match=message):
        as_bgr(item, name="array 3")


def test_lists_mix_kinds_and_skip_unreadable_files(tmp_path):
    good = tmp_path / "a.png"
    cv2.imwrite(str(good), FRAME)
    (tmp_path / "b.jpg").write_text("not an image")
    skipped: list[str] = []
    frames = _frames([FRAME, str(tmp_path)], on_skip=skipped.append)
    assert [f.kind for f in frames] == ["array", "image"] and frames[0].source == "array 0"
    assert len(skipped) == 1 and "b.jpg" in skipped[0]
    with pytest.raises(FileNotFoundError, match="nor a camera index or URL"):
        _frames(str(tmp_path / "missing.jpg"))


class _FakeGrabber:
    """mss.mss() stand-in: two 40x60 monitors; each grab is a BGRA array whose blue channel counts the grabs."""

    monitors = [{"left": 0, "top": 0, "width": 120, "height": 40},
                {"left": 0, "top": 0, "width": 60, "height": 40}, {"left": 60, "top": 0, "width": 60, "height": 40}]

    def __init__(self):
        self.regions = []

    def grab(self, monitor):
        self.regions.append(dict(monitor))
        shot = np.zeros((monitor["height"], monitor["width"], 4), np.uint8)
        shot[..., 0], shot[..., 3] = len(self.regions), 255
        return shot


def test_screen_source_grabs_regions_in_bgr(monkeypatch):
    import itertools
    import sys
    import types

    grabber = _FakeGrabber()
    monkeypatch.setitem(sys.modules, "mss", types.SimpleNamespace(mss=lambda: grabber))
    batches = list(itertools.islice(iterate_source("screen 2 10 5 30 20", vid_stride=2), 2))
    frames = [batch[0] for batch in batches]
    assert [f.image.shape for f in frames] == [(20, 30, 3), (20, 30, 3)]
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 3] and frames[0].kind == "stream"  # every 2nd grab
    assert grabber.regions[0] == {"left": 70, "top": 5, "width": 30, "height": 20}
    assert frames[0].stem == "screen_2_10_5_30_20"
    whole = next(iterate_source("screen"))[0]
    assert whole.image.shape == (40, 60, 3)
    with pytest.raises(SourceError, match="no screen 5"):
        next(iterate_source("screen 5"))
    with pytest.raises(SourceError, match="expected 'screen'"):
        next(iterate_source("screen 1 2"))


def test_screen_without_mss_or_display_is_one_line(monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "mss", None)  # import mss -> ImportError
    with pytest.raises(SourceError, match="needs the mss package"):
        next(iterate_source("screen"))

    def no_display():
        raise RuntimeError("$DISPLAY not set.")

    monkeypatch.setitem(sys.modules, "mss", types.SimpleNamespace(mss=no_display))
    with pytest.raises(SourceError, match=r"cannot be captured \(\$DISPLAY not set.\); is there a display"):
        next(iterate_source("screen"))


def test_deep_images_are_refused_not_flattened():
    from PIL import Image

    deep = np.full((8, 8), 40000, np.uint16)
    for image in (Image.fromarray(deep), Image.fromarray(deep.astype(np.int32)), Image.fromarray(deep.astype("f4"))):
        with pytest.raises(SourceError, match=f"mode {image.mode} .*not 8-bit"):
            as_bgr(image)
    with pytest.raises(SourceError, match="uint8 .* or float .*got torch.int32"):
        as_bgr(torch.full((3, 8, 8), 40000, dtype=torch.int32))
    with pytest.raises(SourceError, match="got torch.bool"):
        as_bgr(torch.ones((3, 8, 8), dtype=torch.bool))
    assert as_bgr(Image.fromarray(np.full((8, 8), 200, np.uint8))).max() == 200  # 8-bit grey still reads


def test_url_reads_have_a_deadline_and_a_size_cap(server, monkeypatch):
    base, _ = server
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match="not fetched within 2 s"):
        sources.fetch_url(f"{base}/trickle.jpg", timeout=2)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(SourceError, match="10,737,418,240 bytes, over the limit"):
        sources.fetch_url(f"{base}/huge.jpg")
    with pytest.raises(SourceError, match="more than 1,048,576 bytes"):
        sources.fetch_url(f"{base}/endless.jpg", max_bytes=2**20)


def test_a_txt_list_reads_paths_from_its_own_folder_and_refuses_missing_ones(tmp_path, monkeypatch):
    import pytest

    from utils.data.sources import list_files

    (tmp_path / "lists" / "imgs").mkdir(parents=True)
    (tmp_path / "lists" / "imgs" / "a.jpg").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"x")
    listing = tmp_path / "lists" / "frames.txt"
    listing.write_text("\ufeffimgs/a.jpg\n# a comment\n\n" + str(tmp_path / "b.jpg") + "\n")
    monkeypatch.chdir(tmp_path)
    assert list_files(listing) == [tmp_path / "lists" / "imgs" / "a.jpg", tmp_path / "b.jpg"]
    listing.write_text("imgs/a.jpg\nimgs/gone.jpg\n")
    with pytest.raises(FileNotFoundError, match="1 of 2 listed files do not exist .first: imgs/gone.jpg"):
        list_files(listing)


def test_indented_comments_in_a_streams_file_are_comments(tmp_path):
    import pytest

    from utils.data.sources import SourceError, _streams_file

    path = tmp_path / "cams.streams"
    path.write_text("   # the lobby camera, off for now\n\t# another\n")
    with pytest.raises(SourceError, match="lists no sources"):
        next(_streams_file(path, 1, 1.0))


def test_in_memory_images_without_pixels_or_with_nan_are_one_line():
    import numpy as np
    import pytest
    import torch
    from PIL import Image

    from utils.data.sources import SourceError, as_bgr

    for item, why in ((np.zeros((0, 0, 3), np.uint8), "no pixels"), (Image.new("RGB", (0, 0)), "no pixels"),
                      (torch.zeros((3, 0, 5)), "no pixels"), (torch.full((3, 8, 8), float("nan")), "NaN"),
                      (torch.ones((3, 8, 8), dtype=torch.bool), "uint8")):
        with pytest.raises(SourceError, match=why):
            as_bgr(item)


def test_video_frames_over_the_limit_and_videos_without_frames_are_one_line(tmp_path):
    import cv2
    import numpy as np
    import pytest

    from utils.data.sources import SourceError, iterate_source

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for _ in range(3):
        writer.write(np.full((48, 64, 3), 90, np.uint8))
    writer.release()
    assert len(list(iterate_source(str(video)))) == 3
    with pytest.raises(SourceError, match="64x48 frames, over the limit of 1,000"):
        list(iterate_source(str(video), max_pixels=1000))
    empty = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    writer.release()
    skipped = []
    assert list(iterate_source(str(empty), on_skip=skipped.append)) == [] and len(skipped) == 1
    assert "empty.avi" in skipped[0]
