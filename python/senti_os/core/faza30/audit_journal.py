"""The audit journal: an append-only, checksummed record of every healing cycle, repair,
rollback and escalation, from which a restarted auto-repair loop recovers its throttle."""

from ._native import AuditJournal, create_audit_journal

__all__ = ["AuditJournal", "create_audit_journal"]
