#!/usr/bin/env bash
# Create the tool virtualenvs the tests check generated output with, each pinned and kept apart from .venv:
#   .venv-superset      apache-superset 6.1.0 (+ flask-caching<2.3, rich, cachetools, psycopg2-binary)
#   .venv-openmetadata  openmetadata-ingestion 1.13.6.3 (--no-deps) + what its generated models import
# Idempotent: a venv whose stamp matches this script and its constraints file is left alone (about 10 ms).
# Usage: scripts/setup_tool_venvs.sh [superset|openmetadata]...   (default: both)
# Environment: PYTHON (default python3; Superset 6.1 needs 3.10-3.12), TOOL_VENV_DIR (default: the repo root).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DIR="${TOOL_VENV_DIR:-$ROOT}"
PIP_FLAGS=(--quiet --disable-pip-version-check --no-input)

SUPERSET_PINS=(apache-superset==6.1.0 "flask-caching==2.2.0" rich==15.0.0 cachetools==8.0.2 psycopg2-binary==2.9.13)
OPENMETADATA_PACKAGE=openmetadata-ingestion==1.13.6.3
OPENMETADATA_PINS=(pydantic==2.14.4 pyyaml==6.0.4 email-validator==2.4.0 sqlalchemy==2.1.9 jsonpatch==1.48
    requests==2.34.2 antlr4-python3-runtime==4.9.2)

stamp_of() {  # what a venv was built from: its pins, its constraints file and the interpreter version
    local pins
    if [[ "$1" == superset ]]; then pins="${SUPERSET_PINS[*]}"; else pins="$OPENMETADATA_PACKAGE ${OPENMETADATA_PINS[*]}"; fi
    { echo "$pins"; cat "$ROOT/constraints/$1-py3.11.txt"; } | sha256sum | cut -c1-16
    "$PYTHON" -c 'import sys; print(sys.version_info[:2])'
}

fresh() {  # fresh VENV NAME: true when VENV was built from the current pins
    [[ -x "$1/bin/python" && -f "$1/.platformgen-stamp" ]] && [[ "$(cat "$1/.platformgen-stamp")" == "$(stamp_of "$2")" ]]
}

build() {  # build VENV NAME INSTALL-FUNCTION
    local venv="$1" name="$2" install="$3" started
    if fresh "$venv" "$name"; then
        echo "$name: $venv is up to date"
        return
    fi
    started=$(date +%s)
    echo "$name: creating $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$install" "$venv" "$ROOT/constraints/$name-py3.11.txt"
    stamp_of "$name" > "$venv/.platformgen-stamp"
    echo "$name: ready in $(($(date +%s) - started)) s"
}

install_superset() {
    "$1/bin/pip" install "${PIP_FLAGS[@]}" -c "$2" "${SUPERSET_PINS[@]}"
    # `superset db upgrade` + `superset init` once, cached in the venv for tests/support/superset_check.py
    "$1/bin/python" "$ROOT/tests/support/superset_check.py" --prepare
}

install_openmetadata() {
    # --no-deps: the full dependency set is huge and conflicts; the workflow models need only these
    "$1/bin/pip" install "${PIP_FLAGS[@]}" --no-deps "$OPENMETADATA_PACKAGE"
    "$1/bin/pip" install "${PIP_FLAGS[@]}" --no-warn-conflicts -c "$2" "${OPENMETADATA_PINS[@]}"
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(superset openmetadata)
for target in "${targets[@]}"; do
    case "$target" in
        superset) build "$DIR/.venv-superset" superset install_superset ;;
        openmetadata) build "$DIR/.venv-openmetadata" openmetadata install_openmetadata ;;
        *) echo "unknown tool venv '$target': use superset or openmetadata" >&2; exit 2 ;;
    esac
done
