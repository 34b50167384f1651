"""Finding files the way the command line names them: a path, or a bare name in the project's folders."""

from __future__ import annotations

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
