"""Events: local subscribers and forwarding to the FAZA 28 event bus."""

from datetime import datetime
from typing import Any, Callable, ClassVar, Dict, List, Optional, Union, final

from typing_extensions import Self

from .enums import EventType as EventType

__all__ = ["EventHooks", "FazaEvent", "EventType", "create_event_hooks"]

# An EventType member or its value; other strings are refused with ValueError.
_EventTypeArg = Union[EventType, str]

@final
class FazaEvent:
    """One published event (dataclass-like: keyword constructor, ``==``, repr).

    ``event_type`` is the type's string value, not the enum member."""

    __match_args__ = ("event_type", "data", "timestamp", "source")
    __hash__: ClassVar[None]  # type: ignore[assignment]
    event_type: str
    data: Dict[str, Any]
    timestamp: datetime
    source: str
    def __new__(
        cls,
        event_type: str,
        data: Optional[Dict[str, Any]] = None,
        timestamp: Optional[datetime] = None,
        source: Optional[str] = None,
    ) -> Self:
        """Left-out (or None) fields default to ``{}``, ``datetime.now()`` and ``"faza30"``."""

@final
class EventHooks:
    """Publishes events to local subscribers and, when set, to a FAZA 28 event bus.

    The bus gets ``emit("faza30.<type>", "faza30", data={...})``, or
    ``publish("faza30.<type>", {...})`` when it has no ``emit``. Subscriber and bus errors are
    counted and reported through ``sys.unraisablehook``, never raised to the publisher. The
    history keeps the newest 100 events.
    """

    def __new__(cls, event_bus: Any = None) -> Self: ...
    # The bus events are forwarded to, or None (assigning None stops forwarding).
    event_bus: Any
    def publish_event(self, event_type: _EventTypeArg, data: Optional[Dict[str, Any]] = None) -> None:
        """Publishes an event. ``data`` must be a dict or None (TypeError otherwise) and is
        kept by reference as ``FazaEvent.data``."""
    def subscribe(self, event_type: _EventTypeArg, callback: Callable[[FazaEvent], object]) -> None:
        """Adds a subscriber (duplicates allowed); a non-callable raises TypeError."""
    def unsubscribe(self, event_type: _EventTypeArg, callback: Callable[[FazaEvent], object]) -> bool:
        """Removes the first subscription equal to ``callback``; returns whether one was removed."""
    def get_event_history(self, limit: int = 50) -> List[FazaEvent]:
        """The newest ``limit`` events, oldest first (0 gives ``[]``; negative raises ValueError)."""
    def get_events_by_type(self, event_type: _EventTypeArg, limit: int = 20) -> List[FazaEvent]:
        """The newest ``limit`` events of one type, oldest first."""
    def get_statistics(self) -> Dict[str, Any]:
        """``total_events_published``, ``events_by_type`` (value -> count),
        ``subscriptions_active``, ``history_size``, ``event_types_seen``, ``top_events`` (up to
        10 ``(value, count)`` tuples, most published first), ``subscriber_errors`` and
        ``bus_errors``."""
    def clear_history(self) -> None:
        """Empties the history; the statistics stay."""
    def publish_fault_detected(self, fault_id: str, severity: str, fault_type: str) -> None: ...
    def publish_fault_resolved(self, fault_id: str) -> None: ...
    def publish_critical_fault(self, fault_id: str, description: str) -> None: ...
    def publish_repair_started(self, fault_id: str, repair_type: str) -> None: ...
    def publish_repair_completed(self, fault_id: str, repair_type: str, success: bool, duration: float) -> None: ...
    def publish_healing_cycle_started(self, cycle_id: str) -> None: ...
    def publish_healing_cycle_completed(
        self,
        cycle_id: str,
        outcome: str,
        faults_detected: int,
        faults_repaired: int,
        health_improvement: float,
    ) -> None: ...
    def publish_health_computed(self, overall_score: float, level: str) -> None: ...
    def publish_health_critical(self, overall_score: float) -> None: ...
    def publish_snapshot_created(self, snapshot_id: str, snapshot_type: str) -> None: ...
    def publish_snapshot_restored(self, snapshot_id: str) -> None: ...
    def publish_autorepair_throttled(self, reason: str) -> None: ...
    def publish_autorepair_blocked(self, reason: str) -> None: ...

def create_event_hooks(event_bus: Any = None) -> EventHooks: ...
