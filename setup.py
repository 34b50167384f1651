"""The wheel puts the checkout under one package name, ``yolov5_spd``, so that it never claims the common
top-level names ``utils``, ``models``, ``train`` ... of a user's own project.

In the checkout the code imports ``utils.boxes``, ``models.yolo`` (the layout users of ultralytics/yolov5 know);
while building the wheel, ``build_py`` rewrites exactly those import statements (and ``python -m`` hints) to
``yolov5_spd.utils.boxes`` and so on. Nothing else in the files changes. The metadata is in pyproject.toml.
"""

import re

from setuptools import setup
from setuptools.command.build_py import build_py

PACKAGE = "yolov5_spd"
OWN = "models|utils|classify|train|val|detect|export|hubconf"
_FROM = re.compile(rf"^(\s*)from ({OWN})(\.[\w.]+)? import ", re.M)
_IMPORT = re.compile(rf"^(\s*)import ({OWN})(\.[\w.]+)?(?: as (\w+))?\s*$", re.M)
_HINT = re.compile(rf"(python -m )({OWN})\.")


def namespaced(source: str) -> str:
    """``from utils.x import y`` -> ``from yolov5_spd.utils.x import y``; ``import utils.x as z`` likewise."""
    source = _FROM.sub(lambda m: f"{m[1]}from {PACKAGE}.{m[2]}{m[3] or ''} import ", source)

    def plain_import(m: re.Match) -> str:
        name = f"{m[2]}{m[3] or ''}"
        alias = m[4] or (m[2] if not m[3] else None)
        if alias is None:  # `import utils.x` binds `utils`: keep that binding
            return f"{m[1]}import {PACKAGE}.{name}; {m[2]} = {PACKAGE}.{m[2]}"
        return f"{m[1]}import {PACKAGE}.{name} as {alias}"

    source = _IMPORT.sub(plain_import, source)
    return _HINT.sub(lambda m: f"{m[1]}{PACKAGE}.{m[2]}.", source)


INIT = f'''"""YOLOv5-SPD, installed: ``from {PACKAGE} import YOLO`` (the model object), {PACKAGE}.train / val /
detect / export, and the {PACKAGE}.utils and {PACKAGE}.models packages."""


def __getattr__(name):
    if name == "YOLO":  # imported on first use: `import {PACKAGE}` stays light
        from {PACKAGE}.utils.detection.model_api import YOLO

        return YOLO
    raise AttributeError(f"module {PACKAGE!r} has no attribute {{name!r}}")
'''


class NamespacedBuildPy(build_py):
    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == PACKAGE and m[1] == "setup")]  # not this build script

    def build_module(self, module, module_file, package):
        out = super().build_module(module, module_file, package)
        target = out[0] if isinstance(out, tuple) else self.get_module_outfile(self.build_lib, package.split("."),
                                                                              module)
        with open(target, encoding="utf-8") as f:
            text = f.read()
        with open(target, "w", encoding="utf-8") as f:
            f.write(namespaced(text))
        return out

    def run(self):
        super().run()
        init = f"{self.build_lib}/{PACKAGE}/__init__.py"  # the checkout root has none: it is not a package there
        with open(init, "w", encoding="utf-8") as f:
            f.write(INIT)


setup(cmdclass={"build_py": NamespacedBuildPy})
