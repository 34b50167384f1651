"""An allow-list unpickler for YOLOv5-family checkpoints: tensors and plain containers are rebuilt, every
model class becomes an inert record of its state (:class:`PickledObject`), and any other global
(``os.system``, ``builtins.eval`` ...) refuses the file. Nothing from the file is ever executed."""

from __future__ import annotations

import os
import pickle
import types
from collections import OrderedDict
from typing import Any

import torch


class PickledObject:
    """An inert stand-in for a pickled class instance: keeps the state, runs nothing."""

    qualified_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs
        self.state: Any = {}

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def get(self, key: str, default: Any = None) -> Any:
        """A key of the pickled state, as dict.get."""
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
_STUB_PREFIXES = ("models.", "torch.nn.modules.", "utils.", "ultralytics.nn.")
_STUB_NAMES = frozenset({("argparse", "Namespace")})


class AllowListUnpickler(pickle.Unpickler):
    """The one unpickler of this project: builds only the globals of ``allowed`` ((module, name) -> object),
    inert :class:`PickledObject` stand-ins for classes under ``stub_prefixes`` or in ``stub_names``, and refuses
    the file at any other global. What a reader allows is its allow-list: checkpoints (:func:`checkpoint_globals`)
    or plain arrays (:func:`array_globals`)."""

    def __init__(self, file: Any, allowed: dict[tuple[str, str], Any], stub_prefixes: tuple[str, ...] = (),
                 stub_names: frozenset[tuple[str, str]] = frozenset(), **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.allowed, self.stub_prefixes, self.stub_names = allowed, stub_prefixes, stub_names
        self.stubs: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module
        key = (module, name)
        if key in self.allowed:
            return self.allowed[key]
        if self.stub_prefixes and (module.startswith(self.stub_prefixes) or key in self.stub_names):
            return self.stubs.setdefault(key, _stub(module, name))
        raise pickle.UnpicklingError(f"refused to load global '{module}.{name}'")


def array_globals() -> dict[tuple[str, str], Any]:
    """NumPy arrays and the byte-string codec: what a pickled dataset of arrays (CIFAR's batches) needs."""
    import codecs

    import numpy as np

    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                                           ("_codecs", "encode"): codecs.encode}
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "scalar")] = multiarray.scalar
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
    return allowed


def checkpoint_globals() -> dict[tuple[str, str], Any]:
    """Tensors, dtypes, plain containers and NumPy values: what a checkpoint's data needs."""
    allowed = _safe_globals()
    allowed.update({("torch", name): _torch_dtype(name) for name in _DTYPE_NAMES if hasattr(torch, name)})
    return allowed


def make_safe_pickle_module() -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load``: checkpoint globals, model classes as stand-ins."""
    allowed = checkpoint_globals()

    class SafeUnpickler(AllowListUnpickler):
        def __init__(self, file: Any, **kwargs: Any) -> None:
            super().__init__(file, allowed, _STUB_PREFIXES, _STUB_NAMES, **kwargs)

    safe = types.ModuleType("yolov5_spd_safe_pickle")
    safe.Unpickler = SafeUnpickler
    safe.load = lambda f, **kw: SafeUnpickler(f, **kw).load()
    safe.__name__ = "yolov5_spd_safe_pickle"
    return safe


_DTYPE_NAMES = {"float16", "float32", "float64", "bfloat16", "int64", "int32", "uint8", "bool", "half",
                "float", "double", "long", "int"}


MAX_MODULE_DEPTH = 64  # real detectors nest modules a handful of levels deep


def module_state_dict(obj: PickledObject, prefix: str = "", _depth: int = 0) -> OrderedDict[str, torch.Tensor]:
    """Rebuild an nn.Module's state_dict from its pickled attributes; a module that contains itself, or nesting
    deeper than any real model, is a ValueError (a crafted file)."""
    if _depth > MAX_MODULE_DEPTH:
        raise ValueError(f"modules nested more than {MAX_MODULE_DEPTH} deep (at {prefix or 'the model'}): "
                         f"not a model this project reads")
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
            out.update(module_state_dict(child, f"{prefix}{name}.", _depth + 1))
    return out
