import os
import sys

import pytest

# Test modules import the shared doubles as `import doubles`, whatever pytest's import mode.
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


@pytest.fixture(autouse=True)
def _snapshots_in_tmp(tmp_path, monkeypatch):
    """No test writes into the real home directory: snapshots default to a temp folder."""
    monkeypatch.setenv("FAZA30_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    yield
