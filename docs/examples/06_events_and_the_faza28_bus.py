"""Events: local subscribers, and forwarding to a FAZA 28 event bus as "faza30.<type>".

``EventBus`` below has the shape of the FAZA 28 bus (``emit(event_type, source, data=None,
metadata=None)``); pass the real one the same way.

Run: python docs/examples/06_events_and_the_faza28_bus.py
"""

import sys
import tempfile

from senti_os.core.faza30 import EventType, create_event_hooks, create_healing_controller


class EventBus:
    """Stands in for senti_os.core.faza28.event_bus.EventBus."""

    def __init__(self):
        self.received = []

    def emit(self, event_type, source, data=None, metadata=None):
        self.received.append((event_type, source, data))


bus = EventBus()
hooks = create_event_hooks(bus)

# Local subscribers are called synchronously, in registration order, with a FazaEvent.
repairs = []
hooks.subscribe(EventType.REPAIR_STARTED, repairs.append)
hooks.publish_repair_started("f27_cycle_1", "graph")

event = repairs[0]
print(f"local: {event.event_type} {event.data} from {event.source}")
assert event.event_type == "repair_started" and event.data == {"fault_id": "f27_cycle_1", "repair_type": "graph"}

name, source, data = bus.received[0]
print(f"bus:   {name} from {source}: {data}")
assert (name, source) == ("faza30.repair_started", "faza30")
assert data["fault_id"] == "f27_cycle_1" and "timestamp" in data

# A failing subscriber does not reach the publisher: it is counted and reported through
# sys.unraisablehook, and the other subscribers still run.
reported = []
default_hook, sys.unraisablehook = sys.unraisablehook, reported.append


def buggy_subscriber(event):
    raise KeyError("missing field")


try:
    hooks.subscribe("repair_completed", buggy_subscriber)
    hooks.subscribe("repair_completed", repairs.append)
    hooks.publish_repair_completed("f27_cycle_1", "graph", True, 0.01)
finally:
    sys.unraisablehook = default_hook
assert len(repairs) == 2
assert isinstance(reported[0].exc_value, KeyError)
assert hooks.get_statistics()["subscriber_errors"] == 1
assert hooks.unsubscribe("repair_completed", buggy_subscriber) is True

# Only the 32 EventType values exist: a typo is a ValueError, not a new event type.
try:
    hooks.publish_event("repair_startd", {})
except ValueError as err:
    print(f"refused: {str(err)[:60]}...")
else:
    raise AssertionError("an unknown event type must raise ValueError")

stats = hooks.get_statistics()
print(f"published {stats['total_events_published']}, by type {stats['events_by_type']}")
assert stats["events_by_type"] == {"repair_started": 1, "repair_completed": 1}
assert [e.event_type for e in hooks.get_events_by_type("repair_completed")] == ["repair_completed"]

# A controller given the bus forwards every event it publishes.
with tempfile.TemporaryDirectory(prefix="faza30-example-") as snapshot_dir:
    controller_bus = EventBus()
    controller = create_healing_controller(event_bus=controller_bus, snapshot_dir=snapshot_dir)
    controller.force_healing_cycle()
    names = [n for n, _, _ in controller_bus.received]
    print("controller events on the bus:", names)
    assert names[0] == "faza30.controller_initialized"
    assert "faza30.forced_healing_cycle" in names
    assert controller.get_event_hooks().get_statistics()["bus_errors"] == 0
