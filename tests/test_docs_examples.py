"""Runs every example of the user guide (docs/examples/*.py) so they cannot go stale.

Each example runs in its own interpreter (the current one), in an empty temporary working
folder, with FAZA30_SNAPSHOT_DIR pointing at a temporary folder, and must exit with 0. The
examples assert what they demonstrate, so a behaviour change fails here too.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "docs" / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))


def test_the_examples_exist():
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(example, tmp_path):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = dict(os.environ)
    env["FAZA30_SNAPSHOT_DIR"] = str(tmp_path / "snapshots")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    done = subprocess.run(
        [sys.executable, str(example)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{example.name} exited with {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert done.stdout.strip(), f"{example.name} printed nothing"
    # No warnings either (an un-awaited coroutine, an error reported as unraisable ...).
    assert done.stderr == "", f"{example.name} wrote to stderr:\n{done.stderr}"
    # An example passes its own temporary folders: nothing lands in the working folder, and
    # the environment's snapshot folder (a safety net) stays unused.
    assert list(workdir.iterdir()) == []
    assert not (tmp_path / "snapshots").exists()
