#!/usr/bin/env bash
# Runs the Python test suite against the installed wheel (run scripts/setup.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."
# Tests never write into the real home directory.
export FAZA30_SNAPSHOT_DIR="${FAZA30_SNAPSHOT_DIR:-$(mktemp -d)}"
exec .venv/bin/python -m pytest tests -q "$@"
