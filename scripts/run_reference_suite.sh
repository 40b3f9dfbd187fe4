#!/usr/bin/env bash
# Runs the reference's own test suite (tests/test_faza30.py of Aljosa3/senti_system) unchanged
# against our installed wheel.
#
#   bash scripts/run_reference_suite.sh /path/to/senti_system-clone [pytest args...]
#
# The clone is copied to a temp folder, its senti_os/core/faza30 is deleted so that the import
# resolves to our wheel (senti_os and senti_os.core are namespace packages), and pytest runs
# there with HOME pointed at the temp folder. Nothing of the clone enters this repository.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
src="${1:?usage: run_reference_suite.sh REFERENCE_CLONE [pytest args]}"
shift
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/ref" "$work/home"
(cd "$src" && git ls-files -z senti_os tests | grep -zv '^senti_os/core/faza30/' | xargs -0 cp --parents -t "$work/ref")
test ! -e "$work/ref/senti_os/core/faza30" || { echo "faza30 was not removed" >&2; exit 1; }
cd "$work/ref"
py="${PYTHON:-$here/.venv/bin/python}"
export HOME="$work/home" FAZA30_SNAPSHOT_DIR="$work/snapshots"
"$py" -m pytest tests/test_faza30.py -p no:cacheprovider "$@"

# The suite's two async tests are coroutines that unittest never awaits; await them here.
"$py" - <<'PY'
import asyncio
from tests import test_faza30 as suite

for cls_name in ("TestAutorepairEngine", "TestController"):
    cls = getattr(suite, cls_name)
    case = cls("test_start_stop")
    case.setUp()
    try:
        asyncio.run(case.test_start_stop())
    finally:
        case.tearDown()
    print(f"awaited {cls_name}.test_start_stop: passed")
PY
