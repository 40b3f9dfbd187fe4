"""Hostile input to every public method of the computing engines (issue 2): each call either
works or raises TypeError, ValueError or a documented faza30 error, and the engine still
works on valid input afterwards. A pyo3 PanicException (a BaseException) fails the test."""

import math
import types

import pytest

from senti_os.core.faza30 import (
    ClassificationEngine,
    DetectionEngine,
    EventHooks,
    EventType,
    GraphRepairEngine,
    AgentRepairEngine,
    SchedulerRepairEngine,
    GovernanceRepairEngine,
    HealthEngine,
    SnapshotManager,
)
from senti_os.core.faza30.detection_engine import AnomalyDetector
from senti_os.core.faza30.errors import SnapshotError

ALLOWED = (TypeError, ValueError, SnapshotError)


class Hostile:
    """An object whose __eq__, __bool__, __getattr__, __hash__ and __repr__ all raise."""

    def __eq__(self, other):
        raise RuntimeError("eq")

    def __bool__(self):
        raise RuntimeError("bool")

    def __getattr__(self, name):
        raise RuntimeError("getattr " + name)

    def __hash__(self):
        raise RuntimeError("hash")


def _deep(n):
    root = node = {}
    for _ in range(n):
        node["k"] = {}
        node = node["k"]
    return root


def _selfref():
    d = {"a": 1}
    d["me"] = d
    return d


def hostile_values():
    big = "x" * (10 * 1024 * 1024)
    lst = [1]
    lst.append(lst)
    return [
        None, 0, -1, 2 ** 200, -(2 ** 200), math.nan, math.inf, -math.inf, -0.0, True,
        "", "snap_../../etc/passwd", "../x", "a/b", "nul\x00byte", big, b"bytes", object(), Hostile(),
        [], [None], lst, (), {}, {"queue_size": math.nan}, {"queue_size": 2 ** 200},
        {"queue_size": "150"}, {"cycle_count": Hostile()}, {1: 2}, {None: 1}, _deep(10_000), _selfref(),
        {"risk_score": -math.inf}, types.SimpleNamespace(fault_type=None, metrics=Hostile()),
        types.SimpleNamespace(fault_type="graph_cycle", metrics={"cycle_count": math.nan}),
    ]


def _call(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
        return "ok"
    except ALLOWED:
        return "refused"


def _valid_fault():
    return DetectionEngine().detect_faults(faza27_metrics={"cycle_count": 1})[0]


def targets(tmp_path):
    det = DetectionEngine()
    cls = ClassificationEngine()
    health = HealthEngine()
    hooks = EventHooks()
    snaps = SnapshotManager(snapshot_dir=str(tmp_path / "snaps"))
    anomaly = AnomalyDetector()
    engines = [GraphRepairEngine(), AgentRepairEngine(), SchedulerRepairEngine(), GovernanceRepairEngine()]
    calls = []
    for v in hostile_values():
        for kw in ("faza25_metrics", "faza27_metrics", "faza28_metrics", "faza28_5_metrics", "faza29_metrics"):
            calls.append((det.detect_faults, (), {kw: v}))
        calls += [
            (det.predict_failures, (v,), {}),
            (det.predict_failures, ([v] * 12,), {}),
            (det.clear_resolved_faults, (v,), {}),
            (anomaly.detect_anomaly, (v, 1.0), {}),
            (anomaly.detect_anomaly, ("m", v), {}),
            (AnomalyDetector, (v,), {}),
            (cls.classify_fault, (v,), {}),
            (cls.get_recent_classifications, (v,), {}),
            (health.compute_health_score, (), {"faza25_metrics": v}),
            (health.compute_health_score, (), {"faza30_metrics": v}),
            (health.analyze_trend, (v,), {}),
            (health.get_health_history, (v,), {}),
            (HealthEngine, (v,), {}),
            (hooks.publish_event, (v, {}), {}),
            (hooks.publish_event, (EventType.FAULT_DETECTED, v), {}),
            (hooks.subscribe, (v, print), {}),
            (hooks.subscribe, (EventType.FAULT_DETECTED, v), {}),
            (hooks.get_event_history, (v,), {}),
            (snaps.create_snapshot, (), {"state_override": v}),
            (snaps.create_snapshot, (), {"metadata": v}),
            (snaps.create_snapshot, (v,), {}),
            (snaps.restore_snapshot, (v,), {}),
            (snaps.delete_snapshot, (v,), {}),
            (snaps.get_snapshot, (v,), {}),
            (snaps.list_snapshots, (v,), {}),
        ]
        for engine in engines:
            calls += [
                (engine.can_repair, (v, {}), {}),
                (engine.can_repair, (_valid_fault(), v), {}),
                (engine.repair, (v, {}), {}),
                (engine.repair, (_valid_fault(), v), {}),
            ]
    return calls, (det, cls, health, hooks, snaps, engines)


def test_hostile_input_never_crashes_and_the_engines_keep_working(tmp_path):
    calls, (det, cls, health, hooks, snaps, engines) = targets(tmp_path)
    outcomes = {"ok": 0, "refused": 0}
    for fn, args, kwargs in calls:
        outcomes[_call(fn, *args, **kwargs)] += 1
    assert outcomes["ok"] + outcomes["refused"] == len(calls) > 1000
    # Nothing half-done: no snapshot file was written by a refused create, and valid input
    # still works everywhere.
    faults = det.detect_faults(faza25_metrics={"queue_size": 150}, faza27_metrics={"cycle_count": 2})
    assert {f.fault_type for f in faults} >= {"queue_overload", "graph_cycle"}
    assert cls.classify_fault(faults[0]).confidence > 0
    assert 0 <= health.compute_health_score(faza25_metrics={"queue_size": 150}).overall_score <= 100
    hooks.publish_event(EventType.FAULT_DETECTED, {"ok": True})
    assert hooks.get_event_history(limit=1)[0].data == {"ok": True}
    sid = snaps.create_snapshot("manual", state_override={"fine": [1, 2, 3]})
    assert snaps.restore_snapshot(sid) is True
    for engine in engines:
        assert isinstance(engine.can_repair(faults[0], {}), bool)


@pytest.mark.parametrize("bad_id", ["..", "../etc", "snap_/x", "snap_\x00", "/abs/path", "snap_..json"])
def test_snapshot_ids_cannot_leave_the_folder(tmp_path, bad_id):
    snaps = SnapshotManager(snapshot_dir=str(tmp_path / "snaps"))
    for fn in (snaps.restore_snapshot, snaps.delete_snapshot, snaps.get_snapshot):
        with pytest.raises(ValueError):
            fn(bad_id)


def test_non_json_state_is_refused_and_nothing_is_written(tmp_path):
    folder = tmp_path / "snaps"
    snaps = SnapshotManager(snapshot_dir=str(folder))
    before = sorted(p.name for p in folder.iterdir())
    for state in ({"when": object()}, {"x": math.nan}, _selfref(), _deep(10_000)):
        with pytest.raises((TypeError, ValueError)):
            snaps.create_snapshot("manual", state_override=state)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert snaps.get_statistics()["failed_creates"] == 4
