"""The demo (the README's first command): every injected fault is repaired and verified."""

import asyncio
import subprocess
import sys

from senti_os.core.faza30._demo import INJECTED, run_demo


def test_demo_repairs_and_verifies_every_injected_fault():
    lines = []
    report = asyncio.run(run_demo(seconds=10.0, out=lines.append))
    assert set(report["faults_found"]) >= set(INJECTED)
    assert set(report["repaired_and_verified"]) == set(INJECTED)
    assert report["graph_acyclic"]
    assert report["health_with_faults"] < report["health_before"]
    assert report["health_after"] > report["health_with_faults"]
    assert report["snapshots_written"] >= 1
    assert any("verified   graph_cycle" in line for line in lines)


def test_demo_command_line_exits_zero_and_prints_the_report():
    done = subprocess.run([sys.executable, "-m", "senti_os.core.faza30", "demo"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "repaired and verified:   4 of 4 injected" in done.stdout
