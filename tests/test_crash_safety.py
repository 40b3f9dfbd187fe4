"""Crash safety (issue 4): kill -9 during snapshot writes, in child processes.

The trials themselves are scripts/crash_trials.py (200 by default); this runs 15 of them and
checks the checker itself on planted damage, so a broken checker cannot pass silently. The
single-writer kill test is tests/test_snapshot_manager.py::test_kill_during_writes_...; these
trials add pre-repair snapshots written behind healing cycles, states of 1 KB to 2 MB, every
fsync policy and a folder kept across kills (retention at work)."""

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from senti_os.core.faza30.snapshot_manager import SnapshotManager

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "crash_trials.py"


@pytest.fixture(scope="module")
def trials_module():
    spec = importlib.util.spec_from_file_location("crash_trials", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kill_9_trials_leave_no_corrupt_snapshot_visible(tmp_path):
    seed = random.randrange(1 << 30)
    out = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--trials", "15", "--seed", str(seed), "--quiet",
         "--folder", str(tmp_path / "snaps"), "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.exists(), proc.stdout + proc.stderr
    s = json.loads(out.read_text())
    why = f"seed {seed}: {proc.stdout[-3000:]}"
    assert s["trials"] == 15, why
    assert s["corrupt_visible"] == 0, why
    assert s["skipped_files"] == 0, why
    assert s["temp_left_after_open"] == 0 and s["temp_listed"] == 0, why
    assert s["child_errors"] == 0, why
    # The children really wrote, both kinds of snapshot were seen, and every policy ran.
    assert s["acks"] > 0 and s["snapshots_seen"] > 0 and s["pre_repair_seen"] > 0, why
    assert {p: v["trials"] for p, v in s["per_policy"].items()} == {"batched": 5, "never": 5, "always": 5}
    assert proc.returncode == 0, why


def _good_folder(trials_module, folder, n=3):
    m = SnapshotManager(folder, max_snapshots=50, fsync="never")
    ids = [m.create_snapshot("manual", state_override=trials_module.payload(i, 4096)) for i in range(n)]
    m.flush()
    return ids


def test_checker_accepts_an_intact_folder(trials_module, tmp_path):
    folder = tmp_path / "snaps"
    ids = _good_folder(trials_module, folder)
    r = trials_module.check_folder(folder, 50, last_acked=ids[-1])
    assert (r["listed"], r["corrupt"], r["skipped"], r["acked_missing"]) == (3, 0, 0, 0)


def test_checker_counts_a_truncated_snapshot_file(trials_module, tmp_path):
    folder = tmp_path / "snaps"
    ids = _good_folder(trials_module, folder)
    data = (folder / f"{ids[0]}.json").read_bytes()
    (folder / "snap_20000101_000000_000000_deadbeef.json").write_bytes(data[: len(data) // 2])
    r = trials_module.check_folder(folder, 50)
    assert r["corrupt"] == 1 and r["skipped"] == 1
    assert "snap_20000101_000000_000000_deadbeef.json" in r["corrupt_files"]


def test_checker_counts_a_damaged_state(trials_module, tmp_path):
    folder = tmp_path / "snaps"
    ids = _good_folder(trials_module, folder)
    path = folder / f"{ids[1]}.json"
    data = path.read_bytes()
    i = data.rindex(b"|")  # inside the state's pattern: same length, different bytes
    path.write_bytes(data[:i] + b"#" + data[i + 1:])
    r = trials_module.check_folder(folder, 50)
    assert r["corrupt"] == 1 and f"{ids[1]}.json" in r["corrupt_files"]


def test_checker_counts_a_wrong_payload_with_a_valid_checksum(trials_module, tmp_path):
    folder = tmp_path / "snaps"
    m = SnapshotManager(folder, fsync="never")
    bad = trials_module.payload(7, 2048)
    bad["pad"] = bad["pad"][:-1] + "?"
    sid = m.create_snapshot("manual", state_override=bad)
    r = trials_module.check_folder(folder, 50)
    assert r["corrupt"] == 1 and "does not hold" in r["corrupt_files"][f"{sid}.json"]


def test_checker_reports_a_missing_acknowledged_snapshot(trials_module, tmp_path):
    folder = tmp_path / "snaps"
    ids = _good_folder(trials_module, folder)
    (folder / f"{ids[-1]}.json").unlink()
    assert trials_module.check_folder(folder, 50, last_acked=ids[-1])["acked_missing"] == 1
