#!/usr/bin/env bash
# Sets up a development environment on a fresh machine: a virtualenv in .venv with the build
# and test tools, and the engine built in release mode and installed into it as a wheel.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "maturin>=1.7,<2" "pytest>=7" "hypothesis>=6" "mypy>=1.18"

# A wheel for this CPython; installed like a user would install it.
rm -rf target/wheels
.venv/bin/maturin build --release -q -o target/wheels -i .venv/bin/python
.venv/bin/python -m pip install -q --force-reinstall --no-deps target/wheels/*.whl
echo "setup: installed $(ls target/wheels/*.whl | xargs -n1 basename) into .venv"
