#!/usr/bin/env bash
# Create bench/.venv-iree: a private environment holding the IREE compiler and
# its ONNX importer for bench/iree.py.  It is kept apart from the project venv
# on purpose; bench/iree.py calls its tools through subprocess.
#
# Usage: bash bench/setup_iree.sh    (idempotent; re-run to repair)
set -euo pipefail

IREE_VERSION="3.13.0"
ONNX_VERSION="1.23.2"   # IREE's onnx importer needs the onnx package alongside

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-iree"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet \
    "iree-base-compiler[onnx]==$IREE_VERSION" "onnx==$ONNX_VERSION"

"$venv/bin/iree-compile" --version | grep "compiler version"
"$venv/bin/iree-import-onnx" --help > /dev/null && echo "iree-import-onnx OK"
