"""Finding files the way the command line names them: a path, or a bare name in the project's folders."""

from __future__ import annotations

import re
from pathlib import Path


def find_named_file(name: str | Path, folder: Path, suffix: str = "") -> Path | None:
    """``name`` itself when it is a file, else ``folder/name`` or ``folder/name + suffix``; None if none."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (folder / path.name, folder / f"{path.name}{suffix}"):
        if candidate.is_file():
            return candidate
    return None


def safe_path_component(name: str) -> str:
    """A class name (from a checkpoint or a YAML: untrusted) as one harmless file or folder name: separators,
    control characters and leading dots become '_', so '../../x' or '/abs/x' stays inside the folder."""
    cleaned = re.sub(r"[\\/\x00-\x1f\x7f:*?\"<>|]", "_", str(name)).strip()
    cleaned = re.sub(r"^\.+", lambda m: "_" * len(m.group()), cleaned)
    return cleaned[:100] or "_"


# the folder holding models/, utils/, configs/, data/ and weights/ (the checkout, or the installed package)
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
