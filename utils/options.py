"""Options objects: the checked dataclasses a job (validation, prediction, export, training) takes whole, built
the same way by the command-line faces and by Python callers."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, TypeVar

T = TypeVar("T", bound="JobOptions")


class ConfigurationError(ValueError):
    """An option or hyper-parameter no run can use; the message names it."""


def nearest_hint(key: str, known: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, else ``""``."""
    near = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{near[0]}'?)" if near else ""


def one_or_several(value: Any) -> Any:
    """A list of one (as the command line gives a multi-value flag) is that one value; anything else as is."""
    return value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value


@dataclasses.dataclass
class JobOptions:
    """Base of a job's options: checked when made (:meth:`check`), made from keywords with unknown names refused
    in one line that suggests the nearest (:meth:`from_dict`)."""

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Values the job cannot use: a :class:`ConfigurationError` naming the option."""

    @classmethod
    def names(cls) -> list[str]:
        """The option names, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any], source: str = "options") -> T:
        """From keywords (a face's parsed arguments or a Python call); an unknown name is an error."""
        known = cls.names()
        for key in values:
            if key not in known:
                raise ConfigurationError(f"{source}: unknown option '{key}'{nearest_hint(key, known)}")
        return cls(**values)

    def replace(self: T, **changes: Any) -> T:
        """A checked copy with ``changes``."""
        return type(self).from_dict({**dataclasses.asdict(self), **changes})


RENAMED = {"conf": "conf_thres", "iou": "iou_thres", "batch": "batch_size", "show": "view_img",
           "line_width": "line_thickness", "format": "include"}  # ultralytics' name -> ours
NEGATED = {"show_labels": "hide_labels", "show_conf": "hide_conf"}  # ultralytics' switch -> ours, inverted


def our_names(options: dict[str, Any], plots_name: str) -> dict[str, Any]:
    """``options`` with ultralytics' names turned into ours; ``plots`` / ``noplots`` become ``plots_name``
    (train.py says ``noplots``, val.py ``plots``)."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # our name -> the name the caller used
    for key, value in options.items():
        if key in RENAMED:
            ours, value = RENAMED[key], value
        elif key in NEGATED:
            ours, value = NEGATED[key], not value
        elif key in ("plots", "noplots"):
            ours, value = plots_name, value if key == plots_name else not value
        else:
            ours = key
        if ours in given:
            raise ConfigurationError(f"{given[ours]} and {key} name the same option: give one")
        given[ours], out[ours] = key, value
    return out
