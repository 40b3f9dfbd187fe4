"""Times the public API's hot calls, against the floor of an empty pyo3 method call, and
optionally side by side with another implementation of the same API (the reference).

    python scripts/bench_api.py                              # ours only
    python scripts/bench_api.py --ref ../senti_system        # and the reference checkout
    python scripts/bench_api.py --rounds 3 --json out.json --markdown out.md

Each implementation runs in its own child interpreter (the two share a module name), rounds
alternate between them, and each figure is the median over rounds of the best of several
repeats. Snapshot writes are also given in MB/s next to a plain copy of a file of the same
size on the same disk. Timings only: nothing here is a test.
"""

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# The layer metrics the tests use (tests/doubles.py is plain Python, no engine import).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from doubles import FAULTS8, HEALTH6  # noqa: E402


def state_of(size):
    """A task-graph-shaped state whose compact JSON is about `size` bytes."""
    node = {"id": "task-00000000", "deps": ["task-00000001"], "weight": 0.5, "payload": "x" * 40}
    per = len(json.dumps(node, separators=(",", ":"))) + 1
    return {"nodes": [dict(node, id=f"task-{i:08d}") for i in range(max(1, size // per))]}


def rss_bytes():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def best_us(fn, number, repeats=5, budget=0.2):
    """Best of `repeats` timed loops of at most `number` calls, each loop about `budget` s."""
    t = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t, 1e-9)
    number = max(3, min(number, int(budget / one)))
    for _ in range(min(number, 100)):
        fn()
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t) / number)
    return best * 1e6


def measure(quick):
    """Runs in the child: returns {name: figure}."""
    import senti_os.core.faza30 as F
    scale = 0.1 if quick else 1.0
    n = lambda k: max(10, int(k * scale))  # noqa: E731
    out = {}
    hooks = F.create_event_hooks()
    if hasattr(hooks, "_noop"):
        out["floor: empty pyo3 method call"] = best_us(hooks._noop, n(500_000))
    det = F.create_detection_engine()
    fault = det.detect_faults(**FAULTS8)[2]
    cls = F.create_classification_engine()
    out["classify_fault"] = best_us(lambda: cls.classify_fault(fault), n(100_000))
    d8 = F.create_detection_engine()
    out["detect_faults, 8 faults"] = best_us(lambda: d8.detect_faults(**FAULTS8), n(50_000))
    h = F.create_health_engine()
    out["compute_health_score, 6 components"] = best_us(lambda: h.compute_health_score(**HEALTH6), n(100_000))
    out["publish_event, no subscribers"] = best_us(lambda: hooks.publish_event("fault_detected", {"x": 1}), n(200_000))

    folder = tempfile.mkdtemp(prefix="faza30-bench-")
    try:
        for label, size in (("1 MB", 1 << 20), ("10 MB", 10 << 20)):
            state = state_of(size)
            sm = F.create_snapshot_manager(snapshot_dir=os.path.join(folder, label.replace(" ", "")),
                                           max_snapshots=50, auto_cleanup=True)
            count = 5 if size < (5 << 20) else 2
            times = []
            for _ in range(3):
                t = time.perf_counter()
                for _ in range(count):
                    sid = sm.create_snapshot(snapshot_type="manual", state_override=state)
                times.append((time.perf_counter() - t) / count)
            us = min(times) * 1e6
            nbytes = sm.get_snapshot(sid).size_bytes
            out[f"create_snapshot, {label} state"] = us
            out[f"create_snapshot, {label} state, MB/s"] = nbytes / us  # bytes per us = MB/s
            # The disk: a plain copy of a file of the same size.
            src = os.path.join(folder, "copy-src")
            with open(src, "wb") as fh:
                fh.write(os.urandom(1024) * (nbytes // 1024))
            copies = []
            for i in range(3):
                t = time.perf_counter()
                shutil.copyfile(src, os.path.join(folder, f"copy-{i}"))
                copies.append(time.perf_counter() - t)
            out[f"plain file copy, {label}, MB/s"] = nbytes / (min(copies) * 1e6)
        # Start-up over 50 snapshots of 10 MB.
        big = os.path.join(folder, "startup")
        sm = F.create_snapshot_manager(snapshot_dir=big, max_snapshots=60, auto_cleanup=True)
        state = state_of(10 << 20)
        for _ in range(50 if not quick else 5):
            sm.create_snapshot(snapshot_type="manual", state_override=state)
        del sm, state
        gc.collect()
        r0 = rss_bytes()
        t = time.perf_counter()
        sm = F.create_snapshot_manager(snapshot_dir=big, max_snapshots=60, auto_cleanup=True)
        out["SnapshotManager start-up, 50 x 10 MB on disk (ms)"] = (time.perf_counter() - t) * 1e3
        out["SnapshotManager start-up, 50 x 10 MB on disk, RSS growth (MB)"] = (rss_bytes() - r0) / 1e6
        del sm
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    # The reference's controller writes under the home folder: the parent points HOME at a
    # temporary one.
    ctl = F.create_healing_controller()
    det = ctl.get_detection_engine()
    seen = 0
    while seen < (100_000 if not quick else 10_000):
        seen += len(det.detect_faults(**FAULTS8))
    out["controller get_status, after 100,000 faults"] = best_us(ctl.get_status, n(20_000), repeats=3)
    return out


def run_child(python, pkg_path, quick):
    home = tempfile.mkdtemp(prefix="faza30-bench-home-")
    env = dict(os.environ, PYTHONHASHSEED="0", HOME=home, FAZA30_SNAPSHOT_DIR=os.path.join(home, "snaps"))
    code = ("import sys, json; sys.path.insert(0, %r) if %r else None; "
            "sys.path.insert(0, %r); import bench_api; print(json.dumps(bench_api.measure(%r)))"
            % (pkg_path or "", bool(pkg_path), os.path.dirname(os.path.abspath(__file__)), quick))
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env, check=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=sys.executable, help="interpreter with our wheel installed")
    ap.add_argument("--ref", default=None, help="a checkout of the reference repository")
    ap.add_argument("--ref-python", default="python3")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    ours, ref = [], []
    for _ in range(args.rounds):
        ours.append(run_child(args.python, None, args.quick))
        if args.ref:
            ref.append(run_child(args.ref_python, os.path.abspath(args.ref), args.quick))
    med = lambda runs, k: statistics.median(r[k] for r in runs if k in r) if any(k in r for r in runs) else None  # noqa: E731
    floor = med(ours, "floor: empty pyo3 method call")
    rows = []
    for key in ours[0]:
        o = med(ours, key)
        r = med(ref, key) if ref else None
        higher_better = "MB/s" in key
        ratio = None if r is None or not o else (o / r if higher_better else r / o)
        # The floor matters for calls of a few microseconds; disk-bound rows are left out.
        fl = None if floor is None or "(" in key or "MB/s" in key or key.startswith("floor") or o > 100 else o / floor
        rows.append((key, o, r, ratio, fl))
    lines = ["| operation | ours | reference | ratio | x floor |", "|---|---:|---:|---:|---:|"]
    for key, o, r, ratio, fl in rows:
        unit = "" if ("MB/s" in key or "(" in key) else " µs"
        fmt = lambda v: "" if v is None else (f"{v:,.3f}" if v < 10 else f"{v:,.1f}")  # noqa: E731
        lines.append(f"| {key} | {fmt(o)}{unit if o is not None else ''} | {fmt(r)}{unit if r is not None else ''} | "
                     f"{'' if ratio is None else f'{ratio:,.1f}x'} | {'' if fl is None else f'{fl:,.1f}'} |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(table + "\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"ours": ours, "reference": ref}, fh, indent=1)


if __name__ == "__main__":
    main()
