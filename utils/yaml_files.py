"""Reading the project's YAML files (models, datasets, hyper-parameters) safely.

``yaml.safe_load`` runs no code, but its aliases let a few hundred bytes stand for billions of nodes (the
"billion laughs"): any later walk over the result (str(), a deep copy, JSON) would never end. None of our
files needs aliases, so they are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class YamlError(ValueError):
    """A YAML file that cannot be used; the message names it."""


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(None, None, "aliases (*name) are not allowed here",
                                                    event.start_mark)
        return super().compose_node(parent, index)


def load_yaml_text(text: str, source: str) -> Any:
    """Parse ``text`` with the safe loader, aliases refused; errors name ``source``."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise YamlError(f"{source}:{where}: not usable YAML ({problem})") from None
    except RecursionError:  # thousands of nested [ or { exhaust the parser's recursion
        raise YamlError(f"{source}: not usable YAML (nested too deeply)") from None


def load_yaml_mapping(path: str | Path, error: type[Exception] = YamlError) -> dict:
    """A YAML file whose top level must be a mapping; any problem is ``error`` with one line naming the file."""
    path = Path(path)
    try:
        config = load_yaml_text(path.read_text(encoding="utf-8"), str(path))
    except YamlError as exc:
        raise error(str(exc)) from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None
    if not isinstance(config, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return config
