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
