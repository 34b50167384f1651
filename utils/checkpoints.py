"""Checkpoints: written atomically, read without executing code, YOLOv5-family files imported safely.

Our checkpoint is a dict of tensors and plain data that ``torch.load(..., weights_only=True)`` reads::

    {"format": "yolov5-spd/1", "model": {"config", "names", "state_dict"}, "ema": state_dict | None,
     "optimizer": ..., "epoch": int, "best_fitness": float, ...}

Checkpoints of ultralytics/yolov5 and of the SPD-Conv authors pickle whole model objects. They are read by
an allow-list unpickler: tensors and plain containers are rebuilt, every model class becomes an inert
record of its state, and any other global (``os.system``, ``builtins.eval`` ...) refuses the file.
"""

from __future__ import annotations

import errno
import os
import pickle
import tempfile
import types
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from utils.logging import LOGGER

FORMAT = "yolov5-spd/1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read; the message names the file and the problem."""


# ----------------------------------------------------------------------------------------------- writing
def save_checkpoint(payload: dict, path: str | Path) -> Path:
    """Write ``payload`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise CheckpointError(f"No space left on device: {path} (the previous file, if any, is intact)") from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files a killed save can leave behind in ``folder``."""
    removed = []
    for tmp in Path(folder).glob(".*.pt.*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def model_payload(model: torch.nn.Module, half: bool = False) -> dict:
    """What rebuilds a model: its config, class names and weights (optionally fp16)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    return {"config": dict(model.yaml), "names": list(model.names), "state_dict": state}


# ----------------------------------------------------------------------------------------------- reading
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def newest_run_checkpoint(project: str | Path, name: str = "best.pt") -> Path | None:
    """The most recently written ``<project>/*/weights/<name>`` (detect's default model, --resume's run)."""
    candidates = sorted(Path(project).glob(f"*/weights/{name}"), key=lambda p: p.stat().st_mtime)
    return candidates[-1] if candidates else None


def resolve_weights(weights: str | Path) -> Path:
    """A path as given, or a bare file name looked up in ``weights/``; a clear message when absent."""
    from utils.paths import find_named_file

    path = find_named_file(weights, WEIGHTS_DIR)
    if path is not None:
        return path
    if Path(weights).is_dir() and Path(weights).name.endswith("_openvino_model"):  # an OpenVINO export
        return Path(weights)
    raise CheckpointError(
        f"{weights}: weights file not found. Put checkpoints in {WEIGHTS_DIR}/ (the SPD-Conv authors' released "
        f"*_best.pt and ultralytics yolov5*.pt are imported automatically, nothing is downloaded) or give a path")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read any supported ``.pt`` file as our checkpoint format, never executing code from it.

    Our own files load with ``weights_only=True``; YOLOv5-family files are converted on the fly.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    _check_archive(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        ckpt = None  # pickles model objects: YOLOv5-family, handled below
    except Exception as exc:  # truncated zip, not a torch file at all ...
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_one_line(exc)})") from None
    if ckpt is None:
        return import_yolov5_checkpoint(path, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a YOLOv5-SPD checkpoint (no 'model' entry)")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {ckpt.get('format')!r}")
    return ckpt


def _check_archive(path: Path) -> None:
    """A zip checkpoint (torch.save's format) whose members fail their CRC is corrupt: refuse it rather than
    load flipped bytes as weights."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except Exception as exc:  # zipfile raises many kinds on a damaged directory (BadZipFile, UnicodeDecodeError...)
        raise CheckpointError(f"{path}: damaged checkpoint archive ({_one_line(exc)})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: damaged checkpoint (member {bad} fails its CRC check)")


def check_finite(state: dict[str, torch.Tensor], source: str) -> None:
    """Weights with NaN or infinity detect nothing: refuse them, naming the first such tensor."""
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"{source}: tensor {key} holds NaN or infinite values")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {text[0] if text else ''}"


# ------------------------------------------------------------------------- importing YOLOv5-family files
class PickledObject:
    """An inert stand-in for a pickled class instance: keeps the state, runs nothing."""

    qualified_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs
        self.state: Any = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def get(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default) if isinstance(self.state, dict) else default


def _stub(module: str, name: str) -> type:
    return types.new_class(name, (PickledObject,), exec_body=lambda ns: ns.update(
        qualified_name=f"{module}.{name}"))


def _path_as_string(*parts: Any) -> str:
    return os.path.join(*map(str, parts)) if parts else ""


def _torch_dtype(name: str) -> torch.dtype:
    value = getattr(torch, name, None)
    if not isinstance(value, torch.dtype):
        raise pickle.UnpicklingError(f"torch.{name} is not a dtype")
    return value


def _safe_globals() -> dict[tuple[str, str], Any]:
    import numpy as np

    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "dict"): dict,
        ("builtins", "list"): list,
        ("builtins", "tuple"): tuple,
        ("builtins", "slice"): slice,
        ("builtins", "object"): object,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("pathlib", "PosixPath"): _path_as_string,
        ("pathlib", "WindowsPath"): _path_as_string,
        ("pathlib", "Path"): _path_as_string,
        ("numpy", "dtype"): np.dtype,
        ("numpy", "ndarray"): np.ndarray,
    }
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "scalar")] = multiarray.scalar
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
    return allowed


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """copyreg._reconstructor restricted to inert stand-ins (protocol 0/1 pickles)."""
    if not (isinstance(cls, type) and issubclass(cls, PickledObject)) or base is not object:
        raise pickle.UnpicklingError("copyreg._reconstructor is only allowed for model objects")
    return cls.__new__(cls)


# Classes from these modules become PickledObject stand-ins; nothing of theirs is imported.
_STUB_PREFIXES = ("models.", "torch.nn.modules.", "utils.")
_STUB_NAMES = {("argparse", "Namespace")}


def _make_safe_pickle_module() -> types.ModuleType:
    allowed = _safe_globals()
    stubs: dict[tuple[str, str], type] = {}

    class SafeUnpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            module = "builtins" if module == "__builtin__" else module
            key = (module, name)
            if key in allowed:
                return allowed[key]
            if module == "torch" and name in _DTYPE_NAMES:
                return _torch_dtype(name)
            if module.startswith(_STUB_PREFIXES) or key in _STUB_NAMES:
                return stubs.setdefault(key, _stub(module, name))
            raise pickle.UnpicklingError(f"refused to load global '{module}.{name}'")

    safe = types.ModuleType("yolov5_spd_safe_pickle")
    safe.Unpickler = SafeUnpickler
    safe.load = lambda f, **kw: SafeUnpickler(f, **kw).load()
    safe.__name__ = "yolov5_spd_safe_pickle"
    return safe


_DTYPE_NAMES = {"float16", "float32", "float64", "bfloat16", "int64", "int32", "uint8", "bool", "half",
                "float", "double", "long", "int"}


def _module_state_dict(obj: PickledObject, prefix: str = "") -> OrderedDict[str, torch.Tensor]:
    """Rebuild an nn.Module's state_dict from its pickled attributes."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    state = obj.state if isinstance(obj.state, dict) else {}
    skip = set(state.get("_non_persistent_buffers_set", ()))
    for name, value in (state.get("_parameters") or {}).items():
        if value is not None:
            out[prefix + name] = value.detach() if isinstance(value, torch.Tensor) else value
    for name, value in (state.get("_buffers") or {}).items():
        if value is not None and name not in skip:
            out[prefix + name] = value
    for name, child in (state.get("_modules") or {}).items():
        if isinstance(child, PickledObject):
            out.update(_module_state_dict(child, f"{prefix}{name}."))
    return out


def import_yolov5_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Convert a YOLOv5-family checkpoint (pickled ``models.yolo.Model``) into our format, safely."""
    path = Path(path)
    try:
        raw = torch.load(path, map_location=map_location, weights_only=False,
                         pickle_module=_make_safe_pickle_module())
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: unsafe or unsupported checkpoint, not loaded ({exc})") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot read checkpoint ({_one_line(exc)})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(raw).__name__}")
    source = raw.get("ema") or raw.get("model")
    if not isinstance(source, PickledObject) or not source.qualified_name.endswith((".Model",
                                                                                    ".DetectionModel")):
        raise CheckpointError(f"{path}: no YOLOv5 model object in 'ema' or 'model'")
    config = source.get("yaml")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the model carries no YAML config")
    state = _module_state_dict(source)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    names = source.get("names") or [str(i) for i in range(int(config.get("nc", 80)))]
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names)]
    config = {k: v for k, v in config.items() if k in {"nc", "depth_multiple", "width_multiple", "anchors",
                                                       "backbone", "head", "ch"}}
    config["nc"] = int(_detect_nc(state, config))
    return {
        "format": FORMAT,
        "model": {"config": config, "names": [str(n) for n in names], "state_dict": state},
        "ema": None,
        "epoch": -1,
        "imported_from": str(path),
    }


def _detect_nc(state: dict[str, torch.Tensor], config: dict) -> int:
    """The class count the weights were trained for (the YAML's nc can be overridden at train time)."""
    anchors = [k for k in state if k.endswith(".anchors")]
    head_weights = [k for k in state if k.endswith(".m.0.weight") and anchors and
                    k.startswith(anchors[0].rsplit(".", 1)[0])]
    if not head_weights:
        return int(config.get("nc", 80))
    na = state[anchors[0]].shape[1]
    return state[head_weights[0]].shape[0] // na - 5


def convert_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Import a YOLOv5-family checkpoint and write it in our format (readable with weights_only=True)."""
    return save_checkpoint(load_checkpoint(src), dst)


def write_slim(path: str | Path, extras: dict) -> None:
    """Replace a training checkpoint by its EMA weights in fp16 (no optimiser), with versions and ``extras``."""
    import platform

    ckpt = load_checkpoint(path)
    payload = dict(ckpt["model"])
    if ckpt.get("ema"):
        payload["state_dict"] = ckpt["ema"]
    payload["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    save_checkpoint({
        "format": FORMAT, "model": payload, "ema": None, "epoch": ckpt["epoch"],
        "best_fitness": ckpt.get("best_fitness", 0.0), "hyp": ckpt.get("hyp", {}),
        "options": ckpt.get("options", {}),
        "versions": {"torch": str(torch.__version__), "python": platform.python_version(), "format": FORMAT},
        **extras,
    }, path)


def model_class(config: dict) -> type:
    """ClassificationModel for a config ending in Classify, else DetectionModel."""
    head = config.get("head") if isinstance(config, dict) else None
    if isinstance(head, list) and head and isinstance(head[-1], list) and len(head[-1]) == 4 \
            and head[-1][2] == "Classify":
        from models.classify import ClassificationModel

        return ClassificationModel
    from models.yolo import DetectionModel

    return DetectionModel


def model_from_payload(payload: dict, source: str = "checkpoint") -> torch.nn.Module:
    """Rebuild a model (detector or classifier) from a ``model_payload`` dict, checking every tensor matches."""

    config = payload.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{source}: the model config is a {type(config).__name__}, not a mapping")
    try:
        model = model_class(config)(config, ch=int(config.get("ch", 3)))
    except Exception as exc:  # an untrusted config can break a constructor in many ways: one line for all
        raise CheckpointError(f"{source}: bad model config ({_one_line(exc)})") from None
    names = payload.get("names") or model.names
    if not isinstance(names, (list, tuple)):
        raise CheckpointError(f"{source}: class names must be a list, got {type(names).__name__}")
    names = list(names)
    if len(names) != model.nc:
        raise CheckpointError(f"{source}: {len(names)} class names for a model with {model.nc} classes")
    model.names = [str(n) for n in names]
    check_finite(payload["state_dict"], source)
    expected = model.state_dict()
    state = {k: v for k, v in payload["state_dict"].items() if k in expected}
    missing = sorted(set(expected) - set(state))
    wrong = [k for k, v in state.items() if v.shape != expected[k].shape]
    if missing or wrong:
        raise CheckpointError(f"{source}: weights do not fit the model config "
                              f"({len(missing)} missing, {len(wrong)} of another shape, e.g. "
                              f"{(missing + wrong)[0]})")
    model.load_state_dict(state)
    return model.float()


def model_from_weights(ckpt: dict, cfg: str | Path | dict | None = None, nc: int | None = None,
                       spd: bool = False, allow_partial: bool = False):
    """A DetectionModel for ``cfg`` (default: the checkpoint's own graph; ``spd``: its SPD form) starting from
    the checkpoint's weights (EMA when present). Returns (model, :class:`models.spd_transfer.TransferReport`).

    The weights move exactly (the same graph, or a YOLOv5 graph into its SPD form); another graph raises
    :class:`models.spd_transfer.TransferError` unless ``allow_partial``.
    """
    from models.spd_transfer import spd_config, transfer_state
    from models.yolo import DetectionModel

    payload = ckpt["model"]
    require_task(payload.get("config"), "detection", str(ckpt.get("imported_from", "--weights")))
    state = ckpt.get("ema") or payload["state_dict"]
    check_finite(state, str(ckpt.get("imported_from", "checkpoint")))
    target_cfg = cfg or payload["config"]
    if spd:
        target_cfg = spd_config(target_cfg).config
    model = DetectionModel(target_cfg, nc=nc if nc is not None else int(payload["config"].get("nc", 80)))
    report = transfer_state(state, payload["config"], model, allow_partial)
    names = list(payload.get("names") or [])
    if len(names) == model.nc:
        model.names = names
    return model, report


def checkpoint_task(config: Any) -> str:
    """'classification' or 'detection': what a checkpoint's model config builds."""
    from models.yolo import DetectionModel

    return "detection" if model_class(config) is DetectionModel else "classification"


def require_task(config: Any, task: str | None, source: str) -> None:
    """A checkpoint of the other task is one line, before anything is built or written."""
    found = checkpoint_task(config)
    if task is not None and found != task:
        commands = {"detection": "train.py, val.py, detect.py and export.py",
                    "classification": "classify/train.py, val.py and predict.py"}
        raise CheckpointError(f"{source}: a {found} checkpoint, but {commands[task]} need a {task} checkpoint")


def load_model(weights: str | Path, device: str | torch.device = "cpu", task: str | None = None) -> torch.nn.Module:
    """Any supported ``.pt`` (ours or YOLOv5-family) -> a float32 model in eval mode; ``task`` ('detection' or
    'classification') refuses a checkpoint of the other kind in one line.

    The EMA weights are used when the checkpoint has them.
    """
    ckpt = load_checkpoint(weights)
    if isinstance(ckpt.get("model"), dict):
        require_task(ckpt["model"].get("config"), task, str(weights))
    payload = dict(ckpt["model"])
    if ckpt.get("ema"):
        payload["state_dict"] = ckpt["ema"]
    return model_from_payload(payload, str(weights)).to(device).eval()


def main(argv: list[str] | None = None) -> None:
    """``python -m utils.checkpoints SRC DST [--cfg space_depth_n.yaml | --spd]``: import a YOLOv5-family
    checkpoint into our format, optionally moving its weights exactly into the SPD form of its graph."""
    import argparse

    from models.parser import ConfigError
    from models.spd_transfer import TransferError

    parser = argparse.ArgumentParser(description="Convert a YOLOv5-family checkpoint (pickled model objects) "
                                     "into a weights_only-loadable YOLOv5-SPD checkpoint, executing nothing; "
                                     "with --cfg or --spd, map its weights exactly into an SPD model.")
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--cfg", default="", help="target model config (e.g. space_depth_n.yaml)")
    parser.add_argument("--spd", action="store_true", help="target the SPD form of the source's own graph "
                        "(or of --cfg)")
    parser.add_argument("--partial", action="store_true", help="if the graphs cannot be mapped exactly, copy "
                        "the tensors that match by name and shape (not function-preserving)")
    args = parser.parse_args(argv)
    try:
        ckpt = load_checkpoint(args.source)
        if args.cfg or args.spd:
            model, report = model_from_weights(ckpt, args.cfg or None, spd=args.spd, allow_partial=args.partial)
            print(report.line(args.source))
            ckpt = {"format": FORMAT, "model": model_payload(model), "ema": None, "epoch": -1,
                    "imported_from": str(args.source)}
        out = save_checkpoint(ckpt, args.destination)
    except (CheckpointError, TransferError, ConfigError) as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"wrote {out}")


if __name__ == "__main__":
    main()


DEFAULT_DATA = "coco128.yaml"


def dataset_for(weights: str | Path, data: str | None, purpose: str = "using") -> str:
    """``data`` when given; else the dataset YAML the checkpoint was trained on, when it names one that
    exists; else coco128.yaml. Says which (``purpose``: e.g. "validating on")."""
    if data:
        return data
    trained_on = None
    if Path(weights).suffix == ".pt":
        ckpt = load_checkpoint(weights)
        trained_on = (ckpt.get("dataset") or ckpt.get("data") or {}).get("yaml")
    if trained_on and Path(trained_on).is_file():
        LOGGER.info(f"--data not given: {purpose} {trained_on}, the dataset {weights} was trained on")
        return trained_on
    LOGGER.info(f"--data not given: {purpose} {DEFAULT_DATA}"
                + (f" ({weights} was trained on {trained_on}, which is not here)" if trained_on else ""))
    return DEFAULT_DATA
