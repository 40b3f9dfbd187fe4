import os

import pytest


@pytest.fixture(autouse=True)
def _snapshots_in_tmp(tmp_path, monkeypatch):
    """No test writes into the real home directory: snapshots default to a temp folder."""
    monkeypatch.setenv("FAZA30_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    yield
