#!/usr/bin/env python3
"""Counts the calls of tests/test_hostile_input.py's sweep and how they ended (issue 4).

Each call either works ("ok"), raises TypeError/ValueError/SnapshotError ("refused"), or
crashes: any other exception, a pyo3 PanicException (a BaseException) included. The process
itself dying (abort, segfault) shows as a non-zero exit with no summary.

    FAZA30_SNAPSHOT_DIR=$(mktemp -d) .venv/bin/python scripts/hostile_input_count.py
"""

import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_hostile_input as sweep  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        calls, _ = sweep.targets(Path(d))
        outcomes = Counter()
        for fn, args, kwargs in calls:
            try:
                outcomes[sweep._call(fn, *args, **kwargs)] += 1
            except BaseException as exc:  # noqa: BLE001 - counting crashes is the point
                outcomes["crashed"] += 1
                print(f"CRASH {getattr(fn, '__qualname__', fn)}: {type(exc).__name__}: {str(exc)[:200]}")
    print(f"hostile values {len(sweep.hostile_values())}, calls {len(calls)}: "
          f"{outcomes['ok']} worked, {outcomes['refused']} refused with a clear error, {outcomes['crashed']} crashed")
    return 1 if outcomes["crashed"] else 0


if __name__ == "__main__":
    sys.exit(main())
