#!/usr/bin/env bash
# Run a command inside the project's virtual environment, creating it on first use.
#
# The environment is cached outside the checkout, keyed by the dependency list (the dependency tables of
# pyproject.toml, the PyTorch pins below and the Python version), so every clone on the machine shares it
# and it is rebuilt only when dependencies change. The project itself is not installed into it: the checkout
# root is put on the path, and commands run in the caller's folder (README commands: from the root).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
torch_pins="torch==2.14.1 torchvision==0.29.1"

deps="$("$python" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = project.get("optional-dependencies", {})
print("\n".join(project["dependencies"] + extras.get("dev", []) + extras.get("export", [])))
PY
)"
key="$(printf '%s\n%s\n%s\n' "$deps" "$torch_pins" "$("$python" --version)" | sha256sum | cut -c1-16)"
# YOLOV5_SPD_ENV_CACHE moves the environments; YOLOV5_SPD_CACHE (image and scan caches) does not
cache="${YOLOV5_SPD_ENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/yolov5-spd}"
venv="$cache/venv-$key"

if [ ! -f "$venv/.complete" ]; then
    echo "[env] creating $venv (first run only: installs PyTorch and the dependencies)" >&2
    mkdir -p "$cache"
    rm -rf "$venv.partial"
    "$python" -m venv "$venv.partial"
    log="$cache/install-$key.log"
    mapfile -t dep_list <<<"$deps"
    # shellcheck disable=SC2086
    if ! "$venv.partial/bin/python" -m pip install --disable-pip-version-check $torch_pins \
            "${dep_list[@]}" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "[env] installing the dependencies failed; full log: $log" >&2
        exit 1
    fi
    rm -rf "$venv"
    mv "$venv.partial" "$venv"
    # venv scripts hard-code their folder: point them at the final location
    grep -rlI --null "$venv.partial" "$venv/bin" | xargs -0 -r sed -i "s#$venv.partial#$venv#g"
    touch "$venv/.complete"
    echo "[env] ready" >&2
fi

# No cd: relative paths in the command (--weights best.pt, --source images/) mean the caller's folder
export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$@"
