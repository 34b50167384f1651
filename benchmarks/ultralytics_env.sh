#!/usr/bin/env bash
# Make (once) a peer environment with PyPI `ultralytics` (YOLO11) for benchmarks, beside the project's cached
# one. Like reference_env.sh it reuses the project environment's PyTorch through a .pth path entry; nothing of
# it is a project dependency. Prints the path of its python.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# YOLOV5_SPD_ENV_CACHE moves the environments; YOLOV5_SPD_CACHE (image and scan caches) does not
cache="${YOLOV5_SPD_ENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/yolov5-spd}"
peer="$cache/peer-ultralytics"
if [ ! -f "$peer/.complete" ]; then
    site="$("$root/scripts/env.sh" python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    rm -rf "$peer"
    python3 -m venv "$peer"
    "$peer/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' | {
        read -r peer_site; echo "$site" >"$peer_site/project_torch.pth"; }
    "$peer/bin/pip" install -q --disable-pip-version-check ultralytics >&2
    touch "$peer/.complete"
fi
echo "$peer/bin/python"
