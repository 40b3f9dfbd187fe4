"""Snapshots: ``SnapshotManager`` stores checksummed, atomically written snapshots of layer
state in one folder and restores them through registered state providers.

The folder is ``snapshot_dir`` if given, else ``$FAZA30_SNAPSHOT_DIR``, else
``<tempfile.gettempdir()>/senti_system-<uid>/snapshots`` (never the home directory).
"""

from ._native import Snapshot, SnapshotManager, create_snapshot_manager
from .enums import SnapshotType
from .errors import SnapshotError

__all__ = ["Snapshot", "SnapshotManager", "SnapshotType", "SnapshotError", "create_snapshot_manager"]
