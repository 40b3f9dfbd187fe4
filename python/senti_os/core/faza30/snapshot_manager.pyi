"""Snapshots of layer state: checksummed, atomically written JSON files in one folder, restored
through registered state providers."""

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Literal, Optional, Union, final

from typing_extensions import Self

from .enums import SnapshotType as SnapshotType
from .errors import SnapshotError as SnapshotError

__all__ = ["Snapshot", "SnapshotManager", "SnapshotType", "SnapshotError", "create_snapshot_manager"]

# A SnapshotType member or its value. As a filter, None or "" mean every type.
_SnapshotTypeArg = Union[SnapshotType, str, None]
_FsyncPolicy = Literal["always", "batched", "never"]

@final
class Snapshot:
    """One snapshot (dataclass-like: keyword constructor, ``==``, repr). For snapshots the
    manager returns, ``state`` is read from disk and checked the first time it is accessed;
    that read raises SnapshotError if the file is gone or damaged."""

    __match_args__ = (
        "snapshot_id",
        "snapshot_type",
        "timestamp",
        "state",
        "metadata",
        "file_path",
        "size_bytes",
        "verified",
    )
    __hash__: ClassVar[None]  # type: ignore[assignment]
    snapshot_id: str
    snapshot_type: SnapshotType
    timestamp: datetime
    state: Dict[str, Any]
    metadata: Dict[str, Any]
    file_path: Optional[str]
    size_bytes: int
    verified: bool
    def __new__(
        cls,
        snapshot_id: str,
        snapshot_type: SnapshotType,
        timestamp: datetime,
        state: Optional[Dict[str, Any]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        file_path: Optional[str] = None,
        size_bytes: Optional[int] = None,
        verified: Optional[bool] = None,
    ) -> Self:
        """Left-out (or None) fields default to ``{}``, ``{}``, None, 0 and False."""

@final
class SnapshotManager:
    """Creates, stores and restores snapshots of layer state in one folder.

    The folder is ``snapshot_dir`` (``~`` expanded), else ``$FAZA30_SNAPSHOT_DIR``, else
    ``<tempfile.gettempdir()>/senti_system-<uid>/snapshots`` (created 0700); never the home
    directory. ``fsync`` is ``"always"`` (flush each file and the folder before returning),
    ``"batched"`` (a background thread flushes every ``fsync_interval_ms``, 1 to 60000) or
    ``"never"``; the policy only matters for power loss, a process crash never leaves a partial
    snapshot. With ``auto_cleanup`` at most ``max_snapshots`` (at least 1) snapshot files are
    kept in the folder. Loaded states are cached up to ``state_cache_bytes`` (and 8 entries).
    """

    def __new__(
        cls,
        snapshot_dir: Union[str, os.PathLike[str], None] = None,
        max_snapshots: int = 50,
        auto_cleanup: bool = True,
        *,
        fsync: _FsyncPolicy = "batched",
        fsync_interval_ms: int = 100,
        state_cache_bytes: int = 67108864,
    ) -> Self: ...
    @property
    def snapshot_dir(self) -> Path: ...
    max_snapshots: int
    auto_cleanup: bool
    def create_snapshot(
        self,
        snapshot_type: _SnapshotTypeArg = None,
        metadata: Optional[Dict[str, Any]] = None,
        state_override: Optional[Dict[str, Any]] = None,
    ) -> str:
        """Writes a snapshot (MANUAL unless ``snapshot_type`` says otherwise) and returns its id.
        Without ``state_override`` the state is captured from the state providers. Values JSON
        cannot hold raise TypeError or ValueError naming where, and nothing is written; I/O
        failures and failing providers raise SnapshotError."""
    def restore_snapshot(self, snapshot_id: str) -> bool:
        """Loads and checks the snapshot and hands each state provider its section. True only
        if all of that succeeded; ``get_last_restore()`` says what happened. A malformed id
        raises ValueError."""
    def get_last_restore(self) -> Optional[Dict[str, Any]]:
        """The report of the last restore: ``snapshot_id``, ``timestamp``, ``ok``, ``found``,
        ``verified``, ``integrity``, ``from_cache``, ``restored`` (names), ``failed`` (name ->
        error), ``missing`` (names) and ``error``; None before the first restore."""
    def delete_snapshot(self, snapshot_id: str) -> bool: ...
    def list_snapshots(self, snapshot_type: _SnapshotTypeArg = None) -> List[Snapshot]:
        """Snapshots in the folder, newest first, optionally of one type."""
    def get_snapshot(self, snapshot_id: str) -> Optional[Snapshot]: ...
    def get_latest_snapshot(self, snapshot_type: _SnapshotTypeArg = None) -> Optional[Snapshot]: ...
    def cleanup_all(self) -> int:
        """Deletes every snapshot file in the folder; returns how many."""
    def register_state_provider(
        self,
        name: str,
        capture: Callable[[], Any],
        restore: Callable[[Any], object],
    ) -> None:
        """``capture()`` returns the JSON-able section stored under ``name``; ``restore(section)``
        puts it back (returning False counts as a failure). A name is 1 to 100 characters and
        not ``"timestamp"`` or ``"providers"``; at most 64 providers. Registering a name again
        replaces its provider."""
    def unregister_state_provider(self, name: str) -> bool: ...
    def get_state_providers(self) -> List[str]:
        """Provider names in capture and restore order."""
    def get_skipped_files(self) -> List[Dict[str, str]]:
        """Files in the folder that could not be used: ``{"file": ..., "reason": ...}``."""
    def flush(self) -> None:
        """Flushes to disk what the batched fsync policy has not flushed yet."""
    def get_statistics(self) -> Dict[str, Any]: ...

def create_snapshot_manager(
    snapshot_dir: Union[str, os.PathLike[str], None] = None,
    max_snapshots: int = 50,
    auto_cleanup: bool = True,
    *,
    fsync: _FsyncPolicy = "batched",
    fsync_interval_ms: int = 100,
    state_cache_bytes: int = 67108864,
) -> SnapshotManager: ...
