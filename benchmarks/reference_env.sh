#!/usr/bin/env bash
# Make (once) the reference implementation's environment for benchmarks: PyPI yolov5==7.0.14 in its own
# virtual environment beside the project's cached one. It reuses the project environment's PyTorch through
# a .pth path entry instead of installing a second copy; nothing of it is a project dependency.
# Prints the path of its python.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# YOLOV5_SPD_ENV_CACHE moves the environments; YOLOV5_SPD_CACHE (image and scan caches) does not
cache="${YOLOV5_SPD_ENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/yolov5-spd}"
ref="$cache/reference-yolov5-7.0.14"
if [ ! -f "$ref/.complete" ]; then
    site="$("$root/scripts/env.sh" python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    rm -rf "$ref"
    python3 -m venv "$ref"
    "$ref/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' | {
        read -r ref_site; echo "$site" >"$ref_site/project_torch.pth"; }
    "$ref/bin/pip" install -q --disable-pip-version-check --no-deps yolov5==7.0.14 >&2
    "$ref/bin/pip" install -q --disable-pip-version-check pandas requests psutil seaborn ultralytics thop \
        'setuptools<81' >&2
    touch "$ref/.complete"
fi
# train.py imports roboflow and huggingface_hub at start-up (benchmarks/whole_run.py runs it); environments made before lack it
"$ref/bin/python" -c 'import roboflow, huggingface_hub' 2>/dev/null ||
    "$ref/bin/pip" install -q --disable-pip-version-check roboflow 'huggingface-hub<0.25' >&2
echo "$ref/bin/python"
