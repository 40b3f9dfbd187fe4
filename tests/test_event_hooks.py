"""EventHooks: publishing, subscriptions, history, statistics and the FAZA 28 bus bridge."""

import sys
from datetime import datetime

import pytest

from senti_os.core.faza30.event_hooks import EventHooks, EventType, FazaEvent, create_event_hooks


class RealShapedBus:
    """Shaped like the FAZA 28 EventBus: emit(event_type, source, data=None, metadata=None)."""

    def __init__(self):
        self.emitted = []

    def emit(self, event_type, source, data=None, metadata=None):
        self.emitted.append((event_type, source, data))


class ReferenceShapedBus:
    """A bus that only has the reference's publish(name, data)."""

    def __init__(self):
        self.published = []

    def publish(self, name, data):
        self.published.append((name, data))


def test_publish_records_history_in_order_with_payload_and_time():
    hooks = EventHooks()
    before = datetime.now()
    hooks.publish_event(EventType.FAULT_DETECTED, {"fault_id": "f1"})
    hooks.publish_event("fault_resolved", {"fault_id": "f1"})
    history = hooks.get_event_history()
    assert [e.event_type for e in history] == ["fault_detected", "fault_resolved"]
    assert history[0].data == {"fault_id": "f1"}
    assert history[0].source == "faza30"
    assert before <= history[0].timestamp <= datetime.now()
    assert history[0].timestamp.tzinfo is None


def test_payload_none_becomes_empty_dict():
    hooks = EventHooks()
    hooks.publish_event(EventType.HEALTH_COMPUTED)
    assert hooks.get_event_history()[0].data == {}


def test_subscribers_get_one_event_each_in_registration_order():
    hooks = EventHooks()
    calls = []
    hooks.subscribe(EventType.REPAIR_STARTED, lambda e: calls.append(("a", e.event_type, e.data["fault_id"])))
    hooks.subscribe("repair_started", lambda e: calls.append(("b", e.event_type, e.data["fault_id"])))
    hooks.subscribe(EventType.REPAIR_FAILED, lambda e: calls.append(("other", e.event_type)))
    hooks.publish_repair_started("f9", "graph")
    assert calls == [("a", "repair_started", "f9"), ("b", "repair_started", "f9")]


def test_unsubscribe_removes_one_subscription_and_matches_bound_methods():
    class Listener:
        def __init__(self):
            self.seen = 0

        def on_event(self, event):
            self.seen += 1

    hooks = EventHooks()
    listener = Listener()
    hooks.subscribe(EventType.FAULT_DETECTED, listener.on_event)
    hooks.subscribe(EventType.FAULT_DETECTED, listener.on_event)
    assert hooks.get_statistics()["subscriptions_active"] == 2
    assert hooks.unsubscribe(EventType.FAULT_DETECTED, listener.on_event) is True
    hooks.publish_event(EventType.FAULT_DETECTED, {})
    assert listener.seen == 1
    assert hooks.unsubscribe(EventType.FAULT_DETECTED, listener.on_event) is True
    assert hooks.unsubscribe(EventType.FAULT_DETECTED, listener.on_event) is False
    hooks.publish_event(EventType.FAULT_DETECTED, {})
    assert listener.seen == 1
    assert hooks.get_statistics()["subscriptions_active"] == 0


def test_a_failing_subscriber_is_reported_and_does_not_stop_the_others(monkeypatch):
    hooks = EventHooks()
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))
    seen = []

    def broken(event):
        raise RuntimeError("subscriber bug")

    hooks.subscribe(EventType.ROLLBACK_PERFORMED, broken)
    hooks.subscribe(EventType.ROLLBACK_PERFORMED, seen.append)
    hooks.publish_event(EventType.ROLLBACK_PERFORMED, {"x": 1})
    assert len(seen) == 1
    assert hooks.get_statistics()["subscriber_errors"] == 1
    assert [str(e) for e in reported] == ["subscriber bug"]


def test_a_subscriber_may_publish_and_subscribe_reentrantly():
    hooks = EventHooks()
    seen = []

    def chain(event):
        seen.append(event.event_type)
        hooks.subscribe(EventType.FAULT_RESOLVED, lambda e: seen.append(e.event_type))
        hooks.publish_event(EventType.FAULT_RESOLVED, {})

    hooks.subscribe(EventType.FAULT_DETECTED, chain)
    hooks.publish_event(EventType.FAULT_DETECTED, {})
    assert seen == ["fault_detected", "fault_resolved"]


def test_history_keeps_the_last_100_and_limits_take_the_newest():
    hooks = EventHooks()
    for i in range(150):
        hooks.publish_event(EventType.HEALTH_COMPUTED, {"i": i})
    history = hooks.get_event_history(limit=1000)
    assert len(history) == 100
    assert history[0].data["i"] == 50 and history[-1].data["i"] == 149
    assert [e.data["i"] for e in hooks.get_event_history(limit=3)] == [147, 148, 149]
    assert hooks.get_event_history(limit=0) == []
    with pytest.raises(ValueError, match="limit"):
        hooks.get_event_history(limit=-1)


def test_events_by_type_filters_and_limits():
    hooks = EventHooks()
    for i in range(5):
        hooks.publish_event(EventType.FAULT_DETECTED, {"i": i})
        hooks.publish_event(EventType.FAULT_RESOLVED, {"i": i})
    got = hooks.get_events_by_type(EventType.FAULT_DETECTED, limit=2)
    assert [(e.event_type, e.data["i"]) for e in got] == [("fault_detected", 3), ("fault_detected", 4)]
    assert len(hooks.get_events_by_type("fault_resolved")) == 5


def test_statistics_count_per_type_and_rank_top_events():
    hooks = EventHooks()
    hooks.publish_event(EventType.HEALTH_COMPUTED)
    for _ in range(3):
        hooks.publish_event(EventType.FAULT_DETECTED)
    hooks.publish_event(EventType.REPAIR_STARTED)
    stats = hooks.get_statistics()
    assert stats["total_events_published"] == 5
    assert list(stats["events_by_type"].items()) == [
        ("health_computed", 1), ("fault_detected", 3), ("repair_started", 1)]
    assert stats["event_types_seen"] == 3
    assert stats["top_events"] == [("fault_detected", 3), ("health_computed", 1), ("repair_started", 1)]
    assert stats["history_size"] == 5
    # A copy: changing it does not change the engine.
    stats["events_by_type"]["fault_detected"] = 99
    assert hooks.get_statistics()["events_by_type"]["fault_detected"] == 3


def test_clear_history_keeps_statistics():
    hooks = EventHooks()
    hooks.publish_event(EventType.FAULT_DETECTED)
    hooks.clear_history()
    assert hooks.get_event_history() == []
    assert hooks.get_statistics()["total_events_published"] == 1


def test_unknown_event_types_and_bad_payloads_are_refused_and_nothing_is_recorded():
    hooks = EventHooks()
    with pytest.raises(ValueError, match="not a valid EventType"):
        hooks.publish_event("fault_detectd", {})
    with pytest.raises(TypeError, match="EventType"):
        hooks.publish_event(42, {})
    with pytest.raises(TypeError, match="data must be a dict"):
        hooks.publish_event(EventType.FAULT_DETECTED, ["not", "a", "dict"])
    with pytest.raises(TypeError, match="callable"):
        hooks.subscribe(EventType.FAULT_DETECTED, "not callable")
    assert hooks.get_statistics()["total_events_published"] == 0
    hooks.publish_event(EventType.FAULT_DETECTED, {})
    assert hooks.get_statistics()["total_events_published"] == 1


def test_real_faza28_bus_receives_events_through_emit():
    bus = RealShapedBus()
    hooks = create_event_hooks(event_bus=bus)
    hooks.publish_event(EventType.SNAPSHOT_CREATED, {"snapshot_id": "snap_1"})
    assert len(bus.emitted) == 1
    name, source, data = bus.emitted[0]
    assert name == "faza30.snapshot_created"
    assert source == "faza30"
    assert data["snapshot_id"] == "snap_1" and data["source"] == "faza30"
    datetime.fromisoformat(data["timestamp"])


def test_reference_shaped_bus_gets_two_argument_publish():
    bus = ReferenceShapedBus()
    hooks = EventHooks(bus)
    hooks.publish_event(EventType.FAULT_DETECTED, {"fault_id": "f"})
    assert bus.published[0][0] == "faza30.fault_detected"
    assert bus.published[0][1]["fault_id"] == "f"


def test_a_failing_bus_is_counted_not_raised(monkeypatch):
    class BrokenBus:
        def emit(self, *a, **k):
            raise ConnectionError("bus down")

    monkeypatch.setattr(sys, "unraisablehook", lambda u: None)
    hooks = EventHooks(BrokenBus())
    hooks.publish_event(EventType.FAULT_DETECTED, {})
    assert hooks.get_statistics()["bus_errors"] == 1
    assert len(hooks.get_event_history()) == 1


@pytest.mark.parametrize(
    "method, args, event_type, keys",
    [
        ("publish_fault_detected", ("f", "high", "graph_cycle"), "fault_detected", ["fault_id", "severity", "fault_type"]),
        ("publish_fault_resolved", ("f",), "fault_resolved", ["fault_id"]),
        ("publish_critical_fault", ("f", "d"), "critical_fault", ["fault_id", "description"]),
        ("publish_repair_started", ("f", "graph"), "repair_started", ["fault_id", "repair_type"]),
        ("publish_repair_completed", ("f", "graph", True, 0.1), "repair_completed", ["fault_id", "repair_type", "success", "duration"]),
        ("publish_healing_cycle_started", ("c",), "healing_cycle_started", ["cycle_id"]),
        ("publish_healing_cycle_completed", ("c", "success", 1, 1, 2.0), "healing_cycle_completed",
         ["cycle_id", "outcome", "faults_detected", "faults_repaired", "health_improvement"]),
        ("publish_health_computed", (90.0, "excellent"), "health_computed", ["overall_score", "level"]),
        ("publish_health_critical", (10.0,), "health_critical", ["overall_score"]),
        ("publish_snapshot_created", ("s", "manual"), "snapshot_created", ["snapshot_id", "snapshot_type"]),
        ("publish_snapshot_restored", ("s",), "snapshot_restored", ["snapshot_id"]),
        ("publish_autorepair_throttled", ("r",), "autorepair_throttled", ["reason"]),
        ("publish_autorepair_blocked", ("r",), "autorepair_blocked", ["reason"]),
    ],
)
def test_convenience_publishers_build_the_reference_payloads(method, args, event_type, keys):
    hooks = EventHooks()
    getattr(hooks, method)(*args)
    event = hooks.get_event_history()[-1]
    assert event.event_type == event_type
    assert list(event.data) == keys
    assert list(event.data.values()) == list(args)


def test_faza_event_behaves_like_a_dataclass():
    ts = datetime(2026, 1, 2, 3, 4, 5)
    a = FazaEvent("fault_detected", {"k": 1}, ts)
    b = FazaEvent(event_type="fault_detected", data={"k": 1}, timestamp=ts, source="faza30")
    assert a == b
    b.source = "elsewhere"
    assert a != b
    assert repr(a).startswith("FazaEvent(event_type='fault_detected', data={'k': 1}")
    a.data["k"] = 2
    assert a.data == {"k": 2}


def test_event_type_enum_has_the_32_reference_members():
    assert len(list(EventType)) == 32
    assert EventType("fault_detected") is EventType.FAULT_DETECTED
    assert str(EventType.AUTOREPAIR_ERROR) == "EventType.AUTOREPAIR_ERROR"
