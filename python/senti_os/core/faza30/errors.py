"""Exceptions raised by FAZA 30 besides ``TypeError`` and ``ValueError``."""

from ._native import SnapshotError

__all__ = ["SnapshotError"]
