"""Property-based tests (hypothesis) over the public API (issue 4).

Each property states something the engine must hold for every input hypothesis can build:
refusals are TypeError/ValueError and change nothing, results stay inside their documented
ranges, snapshots give back exactly what was captured, and the throttle never lets more
repairs through than its limits."""

import math
import os
import re
import sys
import tempfile

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from senti_os.core.faza30 import (  # noqa: E402
    AgentRepairEngine, ClassificationEngine, DetectionEngine, EventHooks, EventType,
    HealingPipeline, HealthEngine, SnapshotManager,
)
from senti_os.core.faza30.autorepair_engine import AutorepairConfig, AutorepairEngine  # noqa: E402
from senti_os.core.faza30.enums import (  # noqa: E402
    FaultCategory, FaultSeverity, FaultSource, HealthLevel, RepairPriority, RepairStatus, ThrottleState,
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KNOWN_FAULT_TYPES = {
    "high_error_rate", "queue_overload", "resource_exhaustion", "graph_cycle", "graph_bottleneck",
    "agent_failure", "scheduler_deadlock", "stability_degradation", "high_anomaly_rate",
    "governance_violation", "system_takeover", "high_risk_score", "metric_anomaly",
    "predicted_error_spike",
}

# Keys the detection rules and the health score read, per layer, plus a few others.
LAYER_KEYS = {
    "faza25_metrics": ["error_rate", "task_success_rate", "queue_size", "cpu_usage", "memory_usage",
                       "scheduler_efficiency", "failed_task_ids", "stuck_task_ids"],
    "faza27_metrics": ["cycle_count", "cycles", "bottleneck_count", "bottleneck_detected",
                       "bottleneck_node", "graph_complexity", "optimization_score"],
    "faza28_metrics": ["agent_failure_rate", "failure_rate", "failing_agents", "scheduler_stuck",
                       "cooperation_score", "agent_performance", "communication_health"],
    "faza28_5_metrics": ["stability_score", "anomaly_rate", "anomaly_count", "policy_effectiveness",
                         "feedback_health"],
    "faza29_metrics": ["risk_score", "takeover_active", "violation_count", "governance_violations",
                       "override_count"],
}
I64 = 2**63 - 1

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
small_ints = st.integers(min_value=-(2**63), max_value=I64)
scalars = st.one_of(st.none(), st.booleans(), small_ints, finite_floats, st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
# Values a metric key may plausibly hold, mostly numbers near the rule thresholds.
metric_values = st.one_of(
    st.floats(min_value=-1, max_value=200, allow_nan=False),
    st.integers(min_value=-5, max_value=500),
    st.booleans(),
    json_values,
)


@st.composite
def layer_metrics(draw, layer):
    keys = st.one_of(st.sampled_from(LAYER_KEYS[layer]), st.text(max_size=10))
    return draw(st.dictionaries(keys, metric_values, max_size=6))


all_layers = st.fixed_dictionaries({}, optional={layer: layer_metrics(layer) for layer in LAYER_KEYS})


def _fault_view(fault):
    d = fault.to_dict()
    d.pop("fault_id")
    d.pop("timestamp")
    return d


def _detect(engine, kwargs):
    try:
        return "ok", [_fault_view(f) for f in engine.detect_faults(**kwargs)]
    except (TypeError, ValueError) as exc:
        return type(exc).__name__, None


# --- detection -----------------------------------------------------------------------------

@FAST
@given(st.lists(all_layers, min_size=1, max_size=4))
def test_detection_refuses_only_with_type_or_value_error_and_is_deterministic(sequence):
    first, second = DetectionEngine(), DetectionEngine()
    for kwargs in sequence:
        before = first.get_statistics()
        active_before = [f.fault_id for f in first.get_active_faults()]
        a = _detect(first, kwargs)
        b = _detect(second, kwargs)
        assert a == b, "two fresh engines fed the same input disagree"
        if a[0] != "ok":
            # A refused call changes nothing.
            assert first.get_statistics() == before
            assert [f.fault_id for f in first.get_active_faults()] == active_before
            continue
        for view in a[1]:
            assert view["fault_type"] in KNOWN_FAULT_TYPES
            assert FaultSeverity(view["severity"]) in FaultSeverity
            assert FaultSource(view["source"]) in FaultSource
    stats = first.get_statistics()
    assert stats["active_faults"] == len(first.get_active_faults())
    assert stats["critical_active"] == len(first.get_critical_faults())
    assert all(f.severity == FaultSeverity.CRITICAL for f in first.get_critical_faults())


@FAST
@given(all_layers)
def test_a_persisting_condition_keeps_its_fault_id(kwargs):
    engine = DetectionEngine()
    try:
        first = engine.detect_faults(**kwargs)
    except (TypeError, ValueError):
        return
    again = engine.detect_faults(**kwargs)
    # Anomaly faults depend on history; the rule faults must persist as the same faults.
    ids_first = {f.fault_id for f in first if f.fault_type != "metric_anomaly"}
    ids_again = {f.fault_id for f in again if f.fault_type != "metric_anomaly"}
    assert ids_first == ids_again
    assert len({f.fault_id for f in engine.get_active_faults()}) == len(engine.get_active_faults())


@FAST
@given(st.lists(st.dictionaries(st.sampled_from(["error_rate", "task_success_rate", "x"]),
                                st.one_of(st.floats(0, 1), st.integers(0, 1), st.none()), max_size=3),
                max_size=15))
def test_predict_failures_yields_at_most_one_known_prediction(history):
    engine = DetectionEngine()
    try:
        faults = engine.predict_failures(history)
    except (TypeError, ValueError):
        return
    assert len(faults) <= 1
    for f in faults:
        assert f.fault_type == "predicted_error_spike" and f.predicted is True
    assert engine.get_active_faults() == []


# --- classification ------------------------------------------------------------------------

def _is_number_or_absent(value):
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


PASSED_THROUGH_NUMBERS = {"override_count", "graph_complexity"}


@pytest.mark.parametrize("kwargs,fault_type", [
    ({"faza29_metrics": {"violation_count": 1, "override_count": []}}, "governance_violation"),
    ({"faza27_metrics": {"bottleneck_count": 6, "graph_complexity": []}}, "graph_bottleneck"),
])
def test_a_detected_fault_with_a_non_number_passthrough_classifies(kwargs, fault_type):
    (fault,) = DetectionEngine().detect_faults(**kwargs)
    assert fault.fault_type == fault_type
    result = ClassificationEngine().classify_fault(fault)
    assert isinstance(result.category, FaultCategory)

@FAST
@given(all_layers)
def test_every_detected_fault_classifies_into_the_enums(kwargs):
    try:
        faults = DetectionEngine().detect_faults(**kwargs)
    except (TypeError, ValueError):
        return
    classifier = ClassificationEngine()
    # A non-number value that detection passed through into a fault's metrics (override_count,
    # graph_complexity ...) is the known bug pinned by
    # test_a_detected_fault_with_a_non_number_passthrough_classifies (xfail): leave those out.
    faults = [f for f in faults if all(_is_number_or_absent(v) for k, v in f.metrics.items()
                                       if k in PASSED_THROUGH_NUMBERS)]
    for fault in faults:
        result = classifier.classify_fault(fault)
        assert isinstance(result.category, FaultCategory)
        assert isinstance(result.repair_priority, RepairPriority)
        assert 0.0 <= result.confidence <= 1.0 and not math.isnan(result.confidence)
        assert result.fault_id == fault.fault_id
        if result.category == FaultCategory.UNKNOWN:
            assert result.confidence == 0.0
    stats = classifier.get_statistics()
    assert stats["total_classifications"] == len(faults)
    assert sum(stats["by_category"].values()) == len(faults)
    assert sum(stats["by_priority"].values()) == len(faults)


@FAST
@given(st.text(max_size=30), st.text(max_size=60), st.sampled_from(list(FaultSeverity)),
       st.dictionaries(st.text(max_size=8), json_values, max_size=4))
def test_arbitrary_fault_objects_classify_or_are_refused(fault_type, description, severity, metrics):
    from senti_os.core.faza30 import DetectedFault
    fault = DetectedFault(fault_id="f1", source=FaultSource.FAZA25_ORCHESTRATOR, severity=severity,
                          fault_type=fault_type, description=description, metrics=metrics)
    classifier = ClassificationEngine()
    try:
        result = classifier.classify_fault(fault)
    except (TypeError, ValueError):
        assert classifier.get_statistics()["total_classifications"] == 0
        return
    assert isinstance(result.category, FaultCategory)
    assert isinstance(result.repair_priority, RepairPriority)
    assert 0.0 <= result.confidence <= 1.0


# --- health ----------------------------------------------------------------------------------

# The keys the health score reads (health_engine.pyi), aliases included.
HEALTH_KEYS = {
    "faza25_metrics": ["queue_size", "task_success_rate", "error_rate", "scheduler_efficiency", "cpu_usage"],
    "faza27_metrics": ["graph_complexity", "cycle_count", "bottleneck_detected", "bottleneck_count",
                       "optimization_score"],
    "faza28_metrics": ["agent_failure_rate", "failure_rate", "cooperation_score", "agent_performance",
                       "communication_health"],
    "faza28_5_metrics": ["stability_score", "policy_effectiveness", "anomaly_count", "feedback_health"],
    "faza29_metrics": ["governance_violations", "violation_count", "takeover_active", "override_count",
                       "risk_score"],
    "faza30_metrics": ["active_faults", "repair_success_rate", "critical_faults", "failed_healing_cycles"],
}
ALIAS_OF = {"error_rate": "task_success_rate", "bottleneck_count": "bottleneck_detected",
            "failure_rate": "agent_failure_rate", "violation_count": "governance_violations"}
number_values = st.one_of(st.none(), st.booleans(), finite_floats, small_ints)
health_inputs = st.fixed_dictionaries({}, optional={
    layer: st.dictionaries(st.sampled_from(keys), number_values, max_size=len(keys))
    for layer, keys in HEALTH_KEYS.items()
})


def _level_for(score):
    for bound, level in ((90, HealthLevel.EXCELLENT), (75, HealthLevel.GOOD), (60, HealthLevel.FAIR),
                         (40, HealthLevel.POOR)):
        if score >= bound:
            return level
    return HealthLevel.CRITICAL


@FAST
@given(health_inputs)
def test_health_score_stays_in_range_and_matches_its_components(kwargs):
    engine = HealthEngine()
    score = engine.compute_health_score(**kwargs)
    assert 0.0 <= score.overall_score <= 100.0
    assert score.level == _level_for(score.overall_score)
    assert len(score.components) == 6
    assert math.isclose(sum(c.weight for c in score.components), 1.0, abs_tol=1e-9)
    for c in score.components:
        assert 0.0 <= c.score <= 100.0
    weighted = sum(c.score * c.weight for c in score.components)
    takeover = bool((kwargs.get("faza29_metrics") or {}).get("takeover_active"))
    expected = min(weighted, 70.0) if takeover else weighted
    assert math.isclose(score.overall_score, expected, abs_tol=1e-6)
    assert engine.get_health_history() == [score.overall_score]


@FAST
@given(health_inputs, st.sampled_from(sorted(HEALTH_KEYS)), st.data(),
       st.sampled_from([math.nan, math.inf, -math.inf, 2**64, -(2**200)]))
def test_health_refuses_nan_inf_and_huge_ints_and_records_nothing(kwargs, layer, data, bad):
    key = data.draw(st.sampled_from([k for k in HEALTH_KEYS[layer] if k not in ("takeover_active",
                                                                                   "bottleneck_detected")]))
    kwargs = dict(kwargs)
    section = dict(kwargs.get(layer) or {}, **{key: bad})
    # An alias is read only when its key is missing or None.
    if key in ALIAS_OF:
        section.pop(ALIAS_OF[key], None)
    kwargs[layer] = section
    engine = HealthEngine()
    with pytest.raises(ValueError):
        engine.compute_health_score(**kwargs)
    assert engine.get_health_history() == []
    assert engine.get_statistics()["total_scores_computed"] == 0


@pytest.mark.xfail(strict=True, reason="BUG (inconsistency): compute_health_score accepts NaN/inf under a key "
                   "it does not read and keeps it in details['metrics'], while detect_faults refuses the same "
                   "dict with ValueError (api.md: NaN and infinities raise ValueError)")
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_health_refuses_nan_anywhere_like_detection(bad):
    metrics = {"queue_size": 5, "latency_ms": bad}
    with pytest.raises(ValueError):
        DetectionEngine().detect_faults(faza25_metrics=metrics)
    with pytest.raises(ValueError):
        HealthEngine().compute_health_score(faza25_metrics=metrics)


# --- snapshots -------------------------------------------------------------------------------

def _same(a, b):
    """Equality that also compares types (1 == 1.0 == True in Python)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


states = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


@FAST
@given(states, st.dictionaries(st.text(min_size=1, max_size=10), scalars, max_size=3))
def test_snapshot_round_trip_returns_exactly_the_captured_state(state, metadata):
    with tempfile.TemporaryDirectory() as folder:
        manager = SnapshotManager(folder, fsync="never")
        sid = manager.create_snapshot(state_override=state, metadata=metadata)
        snap = manager.get_snapshot(sid)
        assert _same(snap.state, state), (snap.state, state)
        assert _same(snap.metadata, metadata)
        # A second manager reads the same bytes from disk.
        fresh = SnapshotManager(folder, fsync="never").get_snapshot(sid)
        assert _same(fresh.state, state)


@FAST
@given(st.dictionaries(st.text(min_size=1, max_size=20).filter(lambda n: n not in ("timestamp", "providers")),
                       json_values, min_size=1, max_size=4))
def test_state_providers_get_back_exactly_what_they_captured(sections):
    with tempfile.TemporaryDirectory() as folder:
        manager = SnapshotManager(folder, fsync="never")
        restored = {}
        for name, section in sections.items():
            manager.register_state_provider(
                name, (lambda s=section: s), (lambda got, n=name: restored.__setitem__(n, got)))
        sid = manager.create_snapshot()
        assert manager.restore_snapshot(sid) is True, manager.get_last_restore()
        assert set(restored) == set(sections)
        for name, section in sections.items():
            assert _same(restored[name], section), (name, restored[name], section)


@SLOW
@given(st.integers(1, 5), st.integers(1, 12))
def test_retention_keeps_the_newest_max_snapshots_newest_first(max_snapshots, creates):
    with tempfile.TemporaryDirectory() as folder:
        manager = SnapshotManager(folder, max_snapshots=max_snapshots, auto_cleanup=True, fsync="never")
        created = [manager.create_snapshot(state_override={"i": i}) for i in range(creates)]
        listed = manager.list_snapshots()
        assert len(listed) == min(creates, max_snapshots)
        assert [s.snapshot_id for s in listed] == created[::-1][:max_snapshots]
        stamps = [s.timestamp for s in listed]
        assert stamps == sorted(stamps, reverse=True)
        files = sorted(f for f in os.listdir(folder) if f.endswith(".json"))
        assert len(files) == len(listed)
        assert [s.state for s in listed] == [{"i": i} for i in range(creates)][::-1][:max_snapshots]


VALID_ID = re.compile(r"snap_[A-Za-z0-9_-]+")
tricky_ids = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["..", "../outside/snap_x", "snap_../../x", "snap_a/b", "snap_a\0b", "/tmp/snap_x",
                     "snap_x/../../outside/snap_victim", "snap_victim", "snap_", "snap_.", "snap_a.json",
                     "snap_" + "a" * 95, "snap_" + "a" * 96]),
    st.text(alphabet="snap_/.\\\0-aZ9", max_size=20).map(lambda s: "snap_" + s),
)


@FAST
@given(tricky_ids)
def test_snapshot_ids_validate_or_raise_value_error_and_never_leave_the_folder(sid):
    with tempfile.TemporaryDirectory() as root:
        folder = os.path.join(root, "snaps")
        outside = os.path.join(root, "outside")
        os.makedirs(outside)
        victim = os.path.join(outside, "snap_victim.json")
        with open(victim, "w") as fh:
            fh.write("{}")
        manager = SnapshotManager(folder, fsync="never")
        keep = manager.create_snapshot(state_override={"k": 1})
        valid = bool(VALID_ID.fullmatch(sid)) and len(sid) <= 100
        for call in (manager.get_snapshot, manager.delete_snapshot, manager.restore_snapshot):
            try:
                answer = call(sid)
            except ValueError:
                assert not valid, f"{call.__name__} refused a valid id {sid!r}"
                continue
            assert valid, f"{call.__name__} accepted a malformed id {sid!r}"
            assert answer in (None, False)
        assert os.path.exists(victim) and open(victim).read() == "{}"
        assert sorted(os.listdir(root)) == ["outside", "snaps"]
        assert [s.snapshot_id for s in manager.list_snapshots()] == [keep]


# --- event hooks -----------------------------------------------------------------------------

event_types = st.sampled_from([e.value for e in EventType][:8])
publications = st.lists(st.tuples(event_types, st.dictionaries(st.text(max_size=5), scalars, max_size=3)),
                        max_size=25)


@FAST
@given(publications, st.lists(st.tuples(event_types, st.booleans()), min_size=1, max_size=6))
def test_every_subscriber_gets_every_event_of_its_type_once_in_order(events, subscribers):
    hooks = EventHooks()
    inboxes = []
    for etype, raises in subscribers:
        inbox = []

        def callback(event, inbox=inbox, raises=raises):
            inbox.append((event.event_type, dict(event.data)))
            if raises:
                raise RuntimeError("subscriber failure")

        hooks.subscribe(etype, callback)
        inboxes.append((etype, raises, inbox))
    reported = []
    saved_hook, sys.unraisablehook = sys.unraisablehook, lambda u: reported.append(u.exc_value)
    try:
        for etype, data in events:
            hooks.publish_event(etype, data)  # a raising subscriber never reaches the publisher
    finally:
        sys.unraisablehook = saved_hook
    for etype, _, inbox in inboxes:
        assert inbox == [(t, d) for t, d in events if t == etype]
    expected_errors = sum(len(inbox) for _, raises, inbox in inboxes if raises)
    stats = hooks.get_statistics()
    assert stats["subscriber_errors"] == expected_errors
    # Subscriber errors are reported through sys.unraisablehook (events.md), one per failure.
    assert len(reported) == expected_errors
    assert all(isinstance(e, RuntimeError) for e in reported)
    assert stats["total_events_published"] == len(events)
    history = hooks.get_event_history(limit=100)
    assert [(e.event_type, e.data) for e in history] == [(t, d) for t, d in events][-100:]


# --- autorepair throttle ---------------------------------------------------------------------

class _AgentLayer:
    """A layer whose one failing agent changes name every cycle, so each repair has a fresh
    target (no per-target backoff or flap quarantine), leaving only the global limits."""

    def __init__(self):
        self.agent = "a0"

    def get_all_metrics(self, **kw):
        return {"faza28": {"agent_failure_rate": 0.9, "failing_agents": [self.agent]}}


@SLOW
@given(st.lists(st.booleans(), min_size=1, max_size=25), st.integers(1, 12), st.integers(1, 30))
def test_throttle_never_admits_more_repairs_than_its_limits(outcomes, per_minute, per_hour):
    layer = _AgentLayer()
    plan = iter(outcomes)
    ran = []

    def restart_agent(name=None, **kw):
        ok = next(plan)
        ran.append(ok)
        if not ok:
            raise RuntimeError("restart failed")
        return True

    detection = DetectionEngine()
    pipeline = HealingPipeline(detection, ClassificationEngine(), {"agent": AgentRepairEngine()}, None,
                               HealthEngine(), repair_context={"actions": {"restart_agent": restart_agent}},
                               metrics_provider=lambda: {"faza28_metrics": {"agent_failure_rate": 0.0}})
    config = AutorepairConfig(mode="aggressive", max_repairs_per_minute=per_minute,
                              max_repairs_per_hour=per_hour, cooldown_seconds=0.0)
    engine = AutorepairEngine(pipeline, layer, None, config)
    admitted = []
    consecutive_failures = 0
    for i in range(len(outcomes)):
        layer.agent = f"a{i}"
        result = engine.force_healing_cycle()
        (repair,) = result.context.repairs
        detection.clear_resolved_faults([f.fault_id for f in detection.get_active_faults()])
        if repair.status == RepairStatus.SKIPPED:
            assert "not admitted" in repair.metadata.get("error", ""), repair.metadata
            continue
        # Admitted: the per-minute window, the hour's 80% mark (the fault is HIGH) and the
        # breaker (5 consecutive failures) all allowed it.
        assert len(admitted) < per_minute
        assert len(admitted) < 0.8 * per_hour
        assert consecutive_failures < 5
        admitted.append(repair.status)
        consecutive_failures = consecutive_failures + 1 if repair.status == RepairStatus.FAILED else 0
    assert len(ran) == len(admitted), "every admitted repair ran its action, and only those"
    stats = engine.get_statistics()
    assert stats["repairs_last_minute"] == len(admitted) == stats["repairs_attempted"]
    assert stats["repairs_successful"] == admitted.count(RepairStatus.SUCCESS)
    expect_state = (ThrottleState.BLOCKED if len(admitted) >= per_minute
                    else ThrottleState.THROTTLED if len(admitted) >= 0.8 * per_hour else ThrottleState.NORMAL)
    assert engine.get_throttle_state() == expect_state
