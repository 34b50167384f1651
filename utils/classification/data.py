"""Classification data: ImageFolder, Tiny ImageNet as distributed, CIFAR-10/100 (binary and Python batches),
and the embedded generated set; a dataset with the standard crop/flip augmentation and its loaders.

A classification dataset YAML names a folder and, optionally, its format (found from the layout otherwise)::

    path: ../datasets/tiny-imagenet-200      # relative to the YAML
    format: tiny-imagenet                    # imagefolder | tiny-imagenet | cifar (binary or Python batches)

Nothing is downloaded and no user file is written; CIFAR's Python batches are read by an allow-list unpickler
that builds only dicts, lists, bytes, strings and NumPy arrays.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.transforms import v2

from utils.checkpoints.unpickler import AllowListUnpickler, array_globals
from utils.data.formats import DATA_DIR, IMAGE_SUFFIXES, DatasetError, names_from_mapping
from utils.data.images import image_size_from_header, is_truncated_jpeg, read_rgb
from utils.paths import find_named_file
from utils.yaml_files import load_yaml_mapping

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class ClassificationSplit:
    """Images as file paths or as one (N, H, W, 3) RGB array, their labels, and what was skipped."""

    images: list[str] | np.ndarray
    labels: np.ndarray
    problems: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


# ---------------------------------------------------------------------------------------- the YAML
def load_classification_data(data: str | Path) -> dict[str, Any]:
    """{'yaml_file', 'format', 'names', 'train', 'val'}: the splits read (CIFAR) or listed (folders)."""
    path = find_named_file(data, DATA_DIR, ".yaml")
    if path is None:
        raise DatasetError(f"{data}: dataset YAML not found")
    config = load_yaml_mapping(path, DatasetError)
    if "path" not in config:
        raise DatasetError(f"{path}: a classification dataset YAML needs 'path' (the dataset folder)")
    root = (path.parent / str(config["path"])).resolve()
    generator = config.get("generator")
    if generator:
        _generate(generator, root, path)
    if not root.is_dir():
        raise DatasetError(f"{path}: dataset folder {root} not found (nothing is downloaded: point 'path' at it)")
    kind = config.get("format") or detect_format(root)
    reader = _READERS.get(kind)
    if reader is None:
        raise DatasetError(f"{path}: unknown format {kind!r} (known: {', '.join(_READERS)})")
    names, train, val = reader(root)
    if isinstance(config.get("names"), (list, dict)):
        given = config["names"]
        given = names_from_mapping(given, str(path)) if isinstance(given, dict) else [str(n) for n in given]
        if len(given) != len(names):
            raise DatasetError(f"{path}: 'names' has {len(given)} classes, the data {len(names)}")
        names = given
    for split, part in (("train", train), ("val", val)):
        if len(part) == 0:
            raise DatasetError(f"{root}: no usable {split} images")
    return {"yaml_file": str(path), "format": kind, "names": names, "train": train, "val": val}


def _generate(spec: dict, root: Path, yaml_path: Path) -> None:
    spec = dict(spec)
    if spec.pop("name", None) != "lowres10":
        raise DatasetError(f"{yaml_path}: unknown generator (known: lowres10)")
    from utils.classification.synthetic import generate_classification_set

    generate_classification_set(root, **{k: int(v) for k, v in spec.items()})


def detect_format(root: Path) -> str:
    """The layout of a classification dataset folder: tiny-imagenet, cifar or imagefolder."""
    if (root / "wnids.txt").is_file():
        return "tiny-imagenet"
    if any((root / n).exists() for n in ("data_batch_1", "data_batch_1.bin", "train.bin", "meta", "batches.meta")):
        return "cifar"
    if (root / "train").is_dir():
        return "imagefolder"
    raise DatasetError(f"{root}: not an ImageFolder (train/<class>/), Tiny ImageNet or CIFAR folder")


# ------------------------------------------------------------------------------------ folder formats
def _checked(paths: list[Path], labels: list[int]) -> ClassificationSplit:
    """Unreadable, empty or non-image files are reported and left out (header check, no full decode)."""
    keep, kept_labels, problems = [], [], []
    for p, label in zip(paths, labels):
        try:
            data = p.read_bytes()
        except OSError as exc:
            problems.append(f"{p}: cannot read ({exc.strerror})")
            continue
        if not data or image_size_from_header(data) is None:
            problems.append(f"{p}: not a readable image")
            continue
        if is_truncated_jpeg(data):  # the same rule as detection's scan
            problems.append(f"{p}: truncated JPEG (no end-of-image marker)")
            continue
        keep.append(str(p))
        kept_labels.append(label)
    return ClassificationSplit(keep, np.array(kept_labels, dtype=np.int64), problems)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_imagefolder(root: Path) -> tuple[list[str], ClassificationSplit, ClassificationSplit]:
    names = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
    if not names:
        raise DatasetError(f"{root / 'train'}: no class folders")
    extra = sorted(d.name for d in (root / "val").iterdir() if d.is_dir() and d.name not in names) \
        if (root / "val").is_dir() else []
    if extra:  # their images would silently drop out of validation
        raise DatasetError(f"{root / 'val'}: class folders {extra} are not in {root / 'train'}")
    splits = []
    for split in ("train", "val"):
        paths, labels = [], []
        for i, name in enumerate(names):
            found = _images_in(root / split / name) if (root / split / name).is_dir() else []
            paths += found
            labels += [i] * len(found)
        splits.append(_checked(paths, labels))
    counts = np.bincount(splits[0].labels, minlength=len(names))
    empty = [names[i] for i in np.flatnonzero(counts == 0)]
    if empty:  # a class the model would have to predict but never sees
        raise DatasetError(f"{root / 'train' / empty[0]}: no usable training image in this class folder"
                           + (f" (nor in {len(empty) - 1} more: {', '.join(empty[1:4])})" if len(empty) > 1 else ""))
    return names, splits[0], splits[1]


def _read_tiny_imagenet(root: Path) -> tuple[list[str], ClassificationSplit, ClassificationSplit]:
    wnids = [w.strip() for w in (root / "wnids.txt").read_text().splitlines() if w.strip()]
    index = {w: i for i, w in enumerate(wnids)}
    words = {}
    if (root / "words.txt").is_file():
        for line in (root / "words.txt").read_text(encoding="utf-8", errors="replace").splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid] = text.split(",")[0].strip()
    names = [words.get(w, w) for w in wnids]
    paths, labels = [], []
    for w in wnids:
        found = _images_in(root / "train" / w / "images")
        paths += found
        labels += [index[w]] * len(found)
    train = _checked(paths, labels)
    val_paths, val_labels, unknown = [], [], []
    annotations = root / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise DatasetError(f"{annotations}: missing (Tiny ImageNet's validation labels)")
    for line in annotations.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        if parts[1] not in index:
            unknown.append(f"{annotations}: {parts[0]} has unknown class {parts[1]}")
            continue
        val_paths.append(root / "val" / "images" / parts[0])
        val_labels.append(index[parts[1]])
    val = _checked(val_paths, val_labels)
    val.problems += unknown
    return names, train, val


# --------------------------------------------------------------------------------------------- CIFAR
def read_cifar_pickle(path: Path) -> dict:
    """A CIFAR Python batch as a dict with str keys, executing no pickled code."""
    try:
        with open(path, "rb") as f:
            raw = AllowListUnpickler(f, array_globals(), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DatasetError(f"{path}: not a CIFAR batch ({exc})") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: not a CIFAR batch (a {type(raw).__name__})")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in raw.items()}


def _cifar_python(root: Path, files: list[str], key: str) -> ClassificationSplit:
    images, labels = [], []
    for name in files:
        batch = read_cifar_pickle(root / name)
        data = np.asarray(batch["data"], dtype=np.uint8)
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels += list(batch[key])
    return ClassificationSplit(np.ascontiguousarray(np.concatenate(images)), np.array(labels, dtype=np.int64))


def _cifar_binary(root: Path, files: list[str], label_bytes: int) -> ClassificationSplit:
    images, labels = [], []
    for name in files:
        raw = np.fromfile(root / name, dtype=np.uint8)
        record = label_bytes + 3072
        if raw.size % record:
            raise DatasetError(f"{root / name}: size is not a whole number of {record}-byte CIFAR records")
        rows = raw.reshape(-1, record)
        labels.append(rows[:, label_bytes - 1].astype(np.int64))  # CIFAR-100: coarse, then fine label
        images.append(rows[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return ClassificationSplit(np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels))


def _texts(values: list) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _read_cifar(root: Path) -> tuple[list[str], ClassificationSplit, ClassificationSplit]:
    if (root / "data_batch_1.bin").is_file():  # CIFAR-10 binary
        names = _lines(root / "batches.meta.txt")
        train = _cifar_binary(root, [f"data_batch_{i}.bin" for i in range(1, 6)], 1)
        return names, train, _cifar_binary(root, ["test_batch.bin"], 1)
    if (root / "train.bin").is_file():  # CIFAR-100 binary (fine labels)
        return _lines(root / "fine_label_names.txt"), _cifar_binary(root, ["train.bin"], 2), \
            _cifar_binary(root, ["test.bin"], 2)
    if (root / "data_batch_1").is_file():  # CIFAR-10 Python
        names = _texts(read_cifar_pickle(root / "batches.meta")["label_names"])
        train = _cifar_python(root, [f"data_batch_{i}" for i in range(1, 6)], "labels")
        return names, train, _cifar_python(root, ["test_batch"], "labels")
    meta = read_cifar_pickle(root / "meta")  # CIFAR-100 Python
    names = _texts(meta["fine_label_names"])
    return names, _cifar_python(root, ["train"], "fine_labels"), _cifar_python(root, ["test"], "fine_labels")


_READERS = {"imagefolder": _read_imagefolder, "tiny-imagenet": _read_tiny_imagenet, "cifar": _read_cifar}


# ------------------------------------------------------------------------------------ dataset, loader
class ClassificationDataset(Dataset):
    """(image tensor (3, imgsz, imgsz) normalised, label). Training adds a padded random crop and a flip."""

    def __init__(self, split: ClassificationSplit, imgsz: int, augment: bool = False) -> None:
        self.split, self.imgsz, self.augment = split, imgsz, augment
        steps: list = [v2.ToDtype(torch.float32, scale=True)]
        if augment:
            steps = [v2.RandomCrop(imgsz, padding=imgsz // 8, padding_mode="reflect"),
                     v2.RandomHorizontalFlip(), *steps]
        self.transform = v2.Compose([*steps, v2.Normalize(MEAN, STD)])

    def __len__(self) -> int:
        return len(self.split)

    def load_rgb(self, index: int) -> np.ndarray:
        """Image ``index`` as RGB uint8, decoded or from memory."""
        images = self.split.images
        image = images[index] if isinstance(images, np.ndarray) else read_rgb(images[index])
        if image is None:
            raise DatasetError(f"{images[index]}: could not be decoded")
        if image.shape[:2] != (self.imgsz, self.imgsz):
            image = cv2.resize(image, (self.imgsz, self.imgsz), interpolation=cv2.INTER_AREA)
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(np.ascontiguousarray(self.load_rgb(index))).permute(2, 0, 1)
        return self.transform(image), int(self.split.labels[index])


class EpochDataLoader(DataLoader):
    """A DataLoader whose shuffling and augmentation depend only on (seed, epoch): exact resume."""

    def __init__(self, dataset: Dataset, batch_size: int, workers: int, sampler: DistributedSampler | None,
                 seed: int = 0) -> None:
        self.seed = seed
        generator = torch.Generator().manual_seed(seed)
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=workers,
                         generator=generator, drop_last=False, pin_memory=False)

    def set_epoch(self, epoch: int) -> None:
        """Re-seed the shuffling (and the sampler under DDP) for ``epoch``."""
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)
