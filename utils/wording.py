"""Messages that fit where the user is: the console scripts and ``pip install 'yolov5-spd[extra]'`` for the
installed package, ``python val.py`` and ``pip install '.[extra]'`` in a checkout. One helper decides."""

from __future__ import annotations

DISTRIBUTION = "yolov5-spd"
INSTALLED = __name__.startswith("yolov5_spd.")  # the wheel renames utils.* to yolov5_spd.utils.*


def face_command(face: str, installed: bool | None = None) -> str:
    """How the user runs a command-line face (``train``, ``val``, ``detect``, ``export``): ``yolov5-spd-val``
    installed, ``python val.py`` in a checkout."""
    installed = INSTALLED if installed is None else installed
    return f"{DISTRIBUTION}-{face}" if installed else f"python {face}.py"


def install_hint(extra: str, installed: bool | None = None) -> str:
    """The pip command adding an optional extra (``export``, ``openvino`` ...)."""
    installed = INSTALLED if installed is None else installed
    return f"pip install '{DISTRIBUTION}[{extra}]'" if installed else f"pip install '.[{extra}]'"
