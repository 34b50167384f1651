#!/usr/bin/env bash
# Run a command inside the project's virtual environment, creating it on first use.
#
# The environment is cached outside the checkout, keyed by the dependency list (pyproject.toml and this
# script), so every clone on the machine shares it and it is rebuilt only when dependencies change.
# The project itself is not installed into it: commands run from the checkout root, which is on the path.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
torch_pins="torch==2.14.1 torchvision==0.29.1"
key="$( (cat "$root/pyproject.toml" "$root/scripts/env.sh"; "$python" --version) | sha256sum | cut -c1-16)"
cache="${YOLOV5_SPD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/yolov5-spd}"
venv="$cache/venv-$key"

if [ ! -f "$venv/.complete" ]; then
    echo "[env] creating $venv (first run only; installs PyTorch and the dependencies)" >&2
    mkdir -p "$cache"
    rm -rf "$venv.partial"
    "$python" -m venv "$venv.partial"
    pip=("$venv.partial/bin/python" -m pip install --quiet --disable-pip-version-check)
    # shellcheck disable=SC2086
    "${pip[@]}" $torch_pins
    deps="$("$venv.partial/bin/python" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = project.get("optional-dependencies", {})
print("\n".join(project["dependencies"] + extras.get("dev", []) + extras.get("export", [])))
PY
)"
    mapfile -t dep_list <<<"$deps"
    # shellcheck disable=SC2086
    "${pip[@]}" "${dep_list[@]}" $torch_pins
    rm -rf "$venv"
    mv "$venv.partial" "$venv"
    # venv scripts hard-code their folder: point them at the final location
    grep -rlI --null "$venv.partial" "$venv/bin" | xargs -0 -r sed -i "s#$venv.partial#$venv#g"
    touch "$venv/.complete"
fi

cd "$root"
export PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv" PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$@"
