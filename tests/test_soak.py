"""Soak (issue 4, long runs), on demand: FAZA30_SOAK=1 python -m pytest tests/test_soak.py -q

Runs scripts/soak.py with smaller counts than the documented 1,000,000-cycle run (figures in
docs/reliability.md). FAZA30_SOAK_CYCLES changes the pipeline count (default 60,000)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "soak.py"

pytestmark = pytest.mark.skipif(os.environ.get("FAZA30_SOAK") != "1", reason="soak runs on demand: set FAZA30_SOAK=1")


def _soak(tmp_path, *args):
    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), *args, "--json", str(out)],
                          capture_output=True, text=True, timeout=3600)
    assert out.exists(), proc.stdout + proc.stderr
    return proc, json.loads(out.read_text())


def test_pipeline_soak_memory_stays_flat(tmp_path):
    cycles = int(os.environ.get("FAZA30_SOAK_CYCLES", "60000"))
    proc, r = _soak(tmp_path, "--cycles", str(cycles), "--every", str(max(1, cycles // 6)), "--warmup", "5000")
    assert r["cycles"] == cycles, proc.stdout
    assert r["growth_mb"] < 20, proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    d = r["details"]
    # Faults every cycle, repairs that ran, rollbacks, and every bounded store at its cap.
    assert d["pipeline"]["total_cycles"] == cycles + 5000
    assert d["cycles_without_a_fault"] == 0
    assert d["pipeline"]["rollback_cycles"] > 0 and d["action_calls"] > 0 and d["actions_raised"] > 0
    assert d["pipeline"]["history_size"] == 1000
    assert d["snapshots"]["current_snapshots"] == 50 and d["files_in_folder"] == 50
    assert all(n <= 1024 for n in d["repair_budget_targets"].values())
    assert all(n <= 1000 for n in d["repair_history"].values())
    assert d["event_history"] <= 100


def test_controller_loop_soak_memory_stays_flat(tmp_path):
    proc, r = _soak(tmp_path, "--mode", "loop", "--cycles", "4000", "--every", "1000", "--warmup", "1500")
    assert r["cycles"] >= 4000, proc.stdout
    assert r["growth_mb"] < 20, proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    d = r["details"]
    assert d["autorepair"]["healing_cycles_triggered"] > 0 and d["autorepair"]["repairs_attempted"] > 0
    assert d["pipeline_history"] <= 1000 and d["snapshots_current"] <= 50
