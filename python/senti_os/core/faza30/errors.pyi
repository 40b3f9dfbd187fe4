"""Exceptions raised by FAZA 30 besides ``TypeError`` and ``ValueError``."""

__all__ = ["SnapshotError"]

class SnapshotError(RuntimeError):
    """A snapshot could not be written, read or verified (also raised for the folder's I/O
    errors and for a state provider that fails to capture)."""
