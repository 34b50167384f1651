"""The installed wheel beside a user's own code: one package name (yolov5_spd), nothing written into the install
folder, datasets, runs and weights found relative to where the user runs the commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "README.md", "LICENSE", "train.py", "val.py", "detect.py", "export.py",
           "hubconf.py", "models", "utils", "classify", "configs", "data", "weights"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout (the build writes nothing here), installed into a folder."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
        else:
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(work / "dist")],
                   check=True, capture_output=True, timeout=300)
    wheel = next((work / "dist").glob("*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(work / "site"), str(wheel)], check=True,
                   capture_output=True, timeout=300)
    return work / "site"


def _user_project(tmp_path: Path) -> Path:
    """A project with its own utils/ and models/ packages, as many users have."""
    project = tmp_path / "user_project"
    for package in ("utils", "models"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f"OWNER = 'the user ({package})'\n")
    return project


def _run(args: list[str], cwd: Path, site: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=f"{cwd}{os.pathsep}{site}", YOLOV5_SPD_CACHE=str(cwd / ".cache"))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if "__pycache__" not in p.parts}


def test_the_wheel_claims_one_top_level_name(installed):
    tops = {p.name for p in installed.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin"}
    assert tops == {"yolov5_spd"}


def test_a_user_project_with_its_own_utils_imports_the_api_and_keeps_its_own(installed, tmp_path):
    project = _user_project(tmp_path)
    code = ("import utils, models\n"
            "from yolov5_spd.utils.detection.prediction import Detector\n"
            "from yolov5_spd.utils.engine.config import TrainConfig\n"
            "import yolov5_spd.train as train\n"
            "assert utils.OWNER == 'the user (utils)' and models.OWNER == 'the user (models)'\n"
            "assert Detector.__module__ == 'yolov5_spd.utils.detection.prediction'\n"
            "from yolov5_spd import YOLO\n"
            "from yolov5_spd.utils.wording import face_command, install_hint\n"
            "assert face_command('val') == 'yolov5-spd-val' and 'yolov5-spd[export]' in install_hint('export')\n"
            "assert YOLO.__module__ == 'yolov5_spd.utils.detection.model_api' and YOLO.__name__ == 'YOLO'\n"
            "from yolov5_spd.utils.engine.config import TRACKER_NAMES\n"
            "from yolov5_spd.utils.engine.hooks import hook_from_name\n"
            "for name in TRACKER_NAMES:  # trackers found by name inside the installed package\n"
            "    assert type(hook_from_name(name)).__module__.startswith('yolov5_spd.utils.tracking.')\n"
            "print('ok', train.run.__module__)\n")
    out = _run(["-c", code], project, installed)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok yolov5_spd.train" in out.stdout


def test_commands_run_from_a_user_project_and_write_only_where_they_run(installed, tmp_path):
    project = _user_project(tmp_path)
    before = _listing(installed)
    out = _run(["-m", "yolov5_spd.train", "--epochs", "1", "--imgsz", "64", "--workers", "0", "--noval",
                "--noplots"], project, installed)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (project / "datasets" / "smallobj" / "images" / "train").is_dir()  # the generated set: here
    assert (project / "runs" / "train" / "exp" / "weights" / "best.pt").is_file()
    detect = _run(["-m", "yolov5_spd.detect", "--imgsz", "64", "--source",
                   str(installed / "yolov5_spd" / "data" / "images")], project, installed)
    assert detect.returncode == 0, detect.stderr[-3000:]
    assert "runs/train/exp/weights/best.pt" in detect.stdout + detect.stderr  # found here, not in the install
    assert (project / "runs" / "detect" / "exp").is_dir()
    assert _listing(installed) == before, "something was written into the installed package"


def test_every_code_package_of_the_checkout_is_in_the_wheel():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"yolov5_spd." + ".".join(p.parent.relative_to(ROOT).parts)
             for top in ("models", "utils", "classify") for p in (ROOT / top).rglob("__init__.py")}
    assert found - listed == set()
