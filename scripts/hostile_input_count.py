#!/usr/bin/env python3
"""Counts the calls of the hostile-input sweeps (issue 4) and how they ended, per module.

The sweeps are tests/test_hostile_input.py's (the computing engines) and
tests/test_hostile_input_loop.py's (pipeline, auto-repair, integration layer, controller,
audit journal). Each call either works ("worked"), raises TypeError/ValueError/SnapshotError
("refused"; for AutorepairEngine.force_healing_cycle also its documented RuntimeError), or
crashes: any other exception, a pyo3 PanicException (a BaseException) included. Crashes
that are known, xfail-pinned bugs (KNOWN_BUGS in test_hostile_input_loop.py) are shown
as such. "broken" counts calls after which the object failed its check on valid input or a
refused call had changed something. The process itself dying (abort, segfault) shows as a
non-zero exit with no summary.

    FAZA30_SNAPSHOT_DIR=$(mktemp -d) .venv/bin/python scripts/hostile_input_count.py
"""

import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_hostile_input as engines_sweep  # noqa: E402
import test_hostile_input_loop as loop_sweep  # noqa: E402


def _name(fn):
    return getattr(fn, "__qualname__", None) or repr(fn)[:60]


def _run(entries, tally, crashes):
    for entry in entries:
        fn, args, kwargs = entry[:3]
        check = entry[3] if len(entry) > 3 else None
        allowed = entry[4] if len(entry) > 4 and entry[4] else engines_sweep.ALLOWED
        bug = entry[5] if len(entry) > 5 else None
        tally["calls"] += 1
        try:
            outcome = loop_sweep._outcome(fn, args, kwargs, allowed)
        except BaseException as exc:  # noqa: BLE001 - counting crashes is the point
            outcome = "crashed"
            known = bug is not None and isinstance(exc, loop_sweep.KNOWN_BUGS.get(bug, ()))
            if known:
                tally["known_bug"] += 1
            crashes[(bug if known else "NEW", _name(fn), type(exc).__name__, str(exc)[:120])] += 1
        tally[{"ok": "worked"}.get(outcome, outcome)] += 1
        if check is not None:
            try:
                check("ok" if outcome == "crashed" else outcome)
            except BaseException as exc:  # noqa: BLE001
                tally["broken"] += 1
                crashes[("BROKEN", _name(fn), type(exc).__name__, str(exc)[:120])] += 1


def main() -> int:
    rows = {}
    crashes = Counter()
    started = time.perf_counter()
    home = os.getcwd()
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as d:
        tmp = Path(d)
        (tmp / "cwd").mkdir()
        os.chdir(tmp / "cwd")  # hostile relative folder names stay inside the temp folder
        try:
            calls, _ = engines_sweep.targets(tmp / "engines")
            rows["engines (test_hostile_input.py)"] = tally = Counter()
            _run(calls, tally, crashes)
            for module, sweep in loop_sweep.SWEEPS.items():
                rows[module] = tally = Counter()
                folder = tmp / module
                folder.mkdir()
                _run(sweep(folder), tally, crashes)
        finally:
            os.chdir(home)
    total = Counter()
    print(f"{'sweep':34} {'calls':>6} {'worked':>7} {'refused':>8} {'crashed':>8} {'known bug':>10} {'broken':>7}")
    for module, t in rows.items():
        total.update(t)
        print(f"{module:34} {t['calls']:6} {t['worked']:7} {t['refused']:8} {t['crashed']:8} {t['known_bug']:10} "
              f"{t['broken']:7}")
    print(f"{'total':34} {total['calls']:6} {total['worked']:7} {total['refused']:8} {total['crashed']:8} "
          f"{total['known_bug']:10} {total['broken']:7}")
    for (bug, fn, exc, msg), n in sorted(crashes.items()):
        print(f"  {bug} x{n} {fn}: {exc}: {msg}")
    print(f"hostile values {len(engines_sweep.hostile_values())}, calls {total['calls']}: {total['worked']} worked, "
          f"{total['refused']} refused with a clear error, {total['crashed']} crashed "
          f"({total['known_bug']} of them known, xfail-pinned bugs), {total['broken']} left an object broken; "
          f"{time.perf_counter() - started:.1f} s")
    return 1 if total["crashed"] or total["broken"] else 0


if __name__ == "__main__":
    sys.exit(main())
