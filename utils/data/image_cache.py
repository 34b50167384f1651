"""``--cache``: decoded, resized training images kept in RAM or as .npy files under the user's cache folder.

The disk cache never writes inside the dataset: files live in ``<cache>/images/<settings>/``, one per image,
named by a hash of the image's path, size and modification time (an edited image is decoded again), and are
written atomically so a killed run leaves no half file. A cached file that cannot be read is decoded again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from utils.data.formats import cache_dir
from utils.logging import LOGGER, live_progress

CACHE_MODES = ("ram", "disk")


def _file_key(path: str, extra: str = "") -> str:
    stat = os.stat(path)
    return hashlib.sha1(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|{extra}".encode()).hexdigest()


class ImageCache:
    """Images by index, decoded once by ``decode(index)``; ``mode`` is 'ram', 'disk' or None (no cache)."""

    def __init__(self, mode: str | None, files: list[str], decode: Callable[[int], np.ndarray],
                 settings: str = "", extras: list[str] | None = None) -> None:
        if mode not in (None, *CACHE_MODES):
            raise ValueError(f"--cache {mode}: expected ram or disk")
        self.mode, self.files, self.decode = mode, files, decode
        self.extras = extras or [""] * len(files)  # what else tells two entries of one file apart (a tile window)
        self.ram: list[np.ndarray | None] = [None] * len(files)
        self.writable = True
        self.folder = cache_dir().parent / "images" / hashlib.sha1(settings.encode()).hexdigest()[:16] \
            if mode == "disk" else None

    def fill(self, workers: int = 4) -> None:
        """Decode (or, from disk, check) every image now, so the first epoch runs at cached speed."""
        if self.mode is None:
            return
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(workers) as pool:
            sizes = tqdm(pool.map(self._fill_one, range(len(self.files))), total=len(self.files),
                         desc=f"caching images ({self.mode})", leave=False, disable=not live_progress())
            gigabytes = sum(sizes) / 1e9
        where = "RAM" if self.mode == "ram" else str(self.folder)
        LOGGER.info(f"cached {len(self.files)} images ({gigabytes:.2f} GB) in {where}")

    def _fill_one(self, index: int) -> int:
        """Bytes cached for one image; an entry already on disk is not read (a damaged one heals in get())."""
        if self.folder is not None:
            file = self._disk_file(index)
            if file.is_file():
                return file.stat().st_size
        return self._load_or_decode(index).nbytes

    def _disk_file(self, index: int) -> Path:
        return self.folder / f"{_file_key(self.files[index], self.extras[index])}.npy"

    def get(self, index: int) -> np.ndarray:
        """Image ``index``: from memory or disk when cached, else decoded now."""
        if self.mode is None:
            return self.decode(index)
        image = self.ram[index]
        return image if image is not None else self._load_or_decode(index)

    def _load_or_decode(self, index: int) -> np.ndarray:
        if self.mode == "ram":
            if self.ram[index] is None:
                self.ram[index] = self.decode(index)
            return self.ram[index]
        file = self._disk_file(index)
        try:
            return np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError):  # absent, or cut short by a killed run: decode again
            pass
        image = self.decode(index)
        if not self.writable:
            return image
        temporary = file.with_name(f".{file.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "wb") as f:
                np.save(f, image, allow_pickle=False)
            os.replace(temporary, file)
        except OSError as exc:  # a full or read-only cache disk costs speed, never the run
            temporary.unlink(missing_ok=True)
            self.writable = False
            LOGGER.warning(f"--cache disk: cannot write {file} ({exc.strerror}); decoding the rest instead")
        return image


def cache_settings(imgsz: int, augment: bool, reduced_decoding: bool) -> str:
    """What changes the cached pixels: the folder name is a hash of it."""
    return f"imgsz={imgsz} augment={augment} reduced={reduced_decoding} v1"
