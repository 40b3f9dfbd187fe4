"""Events: ``EventHooks`` publishes FAZA 30 events locally and to the FAZA 28 event bus."""

from ._native import EventHooks, FazaEvent, create_event_hooks
from .enums import EventType

__all__ = ["EventHooks", "FazaEvent", "EventType", "create_event_hooks"]
