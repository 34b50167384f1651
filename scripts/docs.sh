#!/usr/bin/env bash
# The documentation site: `scripts/docs.sh serve` (http://127.0.0.1:8000, rebuilt on every save) or
# `scripts/docs.sh build` (into site/, strict: a broken link, a page missing from the navigation or an API page
# whose module does not parse fails). The tools (the `docs` extra of pyproject.toml) live in their own small
# environment, cached outside the checkout and keyed by that list; PyTorch is not needed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
deps="$("$python" - "$root/pyproject.toml" <<'PY'
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["docs"]))
PY
)"
key="$(printf '%s\n%s\n' "$deps" "$("$python" --version)" | sha256sum | cut -c1-16)"
cache="${YOLOV5_SPD_ENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/yolov5-spd}"
venv="$cache/docs-$key"
if [ ! -f "$venv/.complete" ]; then
    echo "[docs] creating $venv (first run only)" >&2
    mkdir -p "$cache"
    rm -rf "$venv.partial"
    "$python" -m venv "$venv.partial"
    mapfile -t dep_list <<<"$deps"
    if ! "$venv.partial/bin/python" -m pip install --disable-pip-version-check -q "${dep_list[@]}" \
            >"$cache/docs-install-$key.log" 2>&1; then
        tail -n 30 "$cache/docs-install-$key.log" >&2
        exit 1
    fi
    rm -rf "$venv"
    mv "$venv.partial" "$venv"
    touch "$venv/.complete"
fi
cd "$root"
export NO_MKDOCS_2_WARNING=1  # the theme's notice about its successor, printed on every build
case "${1:-build}" in
    serve) exec "$venv/bin/python" -m mkdocs serve ;;
    build) exec "$venv/bin/python" -m mkdocs build --strict --site-dir "${2:-site}" ;;
    *) echo "usage: scripts/docs.sh [build [SITE_DIR] | serve]" >&2; exit 2 ;;
esac
