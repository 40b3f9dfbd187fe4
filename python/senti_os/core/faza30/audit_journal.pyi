"""The audit journal: an append-only record of cycles, repairs, rollbacks and escalations."""

from os import PathLike
from typing import Any, Dict, List, Literal, Optional, Union, final

from typing_extensions import Self

__all__ = ["AuditJournal", "create_audit_journal"]

_Kind = Literal["cycle", "repair", "rollback", "escalation", "note"]
_Fsync = Literal["always", "batched", "never"]

@final
class AuditJournal:
    """Segment files of checksummed JSON lines in ``journal_dir`` (at most ``max_segments``
    of ``max_segment_bytes``). An entry whose ``append`` returned survives a process crash;
    ``fsync`` decides about power loss. Opening skips, and counts, a line torn by a crash."""

    def __new__(
        cls,
        journal_dir: Union[str, PathLike[str]],
        *,
        max_segment_bytes: int = 4194304,
        max_segments: int = 8,
        fsync: _Fsync = "batched",
        fsync_interval_ms: int = 100,
    ) -> Self: ...
    @property
    def journal_dir(self) -> str: ...
    def append(self, kind: _Kind, data: Optional[Dict[str, Any]] = None) -> int:
        """Appends an entry; returns its sequence number once the line is in the file."""
    def get_entries(self, limit: int = 100, kind: Optional[_Kind] = None) -> List[Dict[str, Any]]:
        """Newest first: dicts with ``seq``, ``timestamp`` (Unix seconds), ``kind``, ``data``."""
    def get_statistics(self) -> Dict[str, Any]: ...
    def flush(self) -> None: ...

def create_audit_journal(
    journal_dir: Union[str, PathLike[str]],
    *,
    max_segment_bytes: int = 4194304,
    max_segments: int = 8,
    fsync: _Fsync = "batched",
    fsync_interval_ms: int = 100,
) -> AuditJournal: ...
