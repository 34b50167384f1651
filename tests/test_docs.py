"""The documentation: a README a newcomer can read (short, every command in it parses), every docs page in the
site's navigation, and no words about how the project was made."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
FACES = ("train.py", "val.py", "detect.py", "export.py")


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:bash)?\n(.*?)```", text, flags=re.S)


def _commands(text: str) -> list[list[str]]:
    """Every `python <face>.py ...` / `torchrun ... <face>.py ...` of the bash blocks, continuations joined and
    comments dropped: the face and its arguments."""
    found = []
    for block in _code_blocks(text):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:  # not a shell line (an unbalanced quote in prose or Python)
                continue
            faces = [i for i, w in enumerate(words) if Path(w).name in FACES and "classify" not in w]
            if faces and words[0] in ("python", "torchrun", "scripts/env.sh"):
                found.append(words[faces[0]:])
    return found


def _parse(face: str, argv: list[str]) -> None:
    import detect
    import export
    import train
    import val

    parsers = {"train.py": lambda a: train._parser().parse_args(a), "val.py": val.parse_args,
               "detect.py": detect.parse_args, "export.py": export.parse_args}
    parsers[Path(face).name](argv)


def test_the_readme_is_short_and_its_commands_parse():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    commands = _commands(text)
    assert len(commands) >= 10 and {Path(c[0]).name for c in commands} == set(FACES)
    for face, *argv in commands:
        try:
            _parse(face, argv)
        except SystemExit:
            pytest.fail(f"README: {face} {' '.join(argv)} does not parse")


def test_the_guides_commands_parse():
    for page in (ROOT / "docs").rglob("*.md"):
        for face, *argv in _commands(page.read_text()):
            try:
                _parse(face, argv)
            except SystemExit:
                pytest.fail(f"{page.relative_to(ROOT)}: {face} {' '.join(argv)} does not parse")


def _nav_pages(nav) -> set[str]:
    pages = set()
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages |= _nav_pages(value) if isinstance(value, list) else {value}
    return pages


def test_every_page_is_in_the_navigation_and_every_entry_exists():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    listed = _nav_pages(config["nav"])
    present = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert present == listed


def test_no_words_about_how_the_project_was_made():
    texts = [ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").rglob("*.md")]
    diary = re.compile(r"\bsessions?\b|this VM|\bthe VM\b|(?<![\w&])#\d+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])"
                       r"[0-9a-f]{7,12}\b|this release")
    for path in texts:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            assert not diary.search(line), f"{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}"
