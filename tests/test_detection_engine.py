"""Behaviour of senti_os.core.faza30.detection_engine."""

import collections
import datetime
import gc
import re
import threading

import pytest

from doubles import HEALTHY

from doubles import FAULTS8
from senti_os.core.faza30 import enums
from senti_os.core.faza30.detection_engine import (
    AnomalyDetector,
    DetectedFault,
    DetectionEngine,
    DetectionRule,
    FaultSeverity,
    FaultSource,
    create_detection_engine,
)


ID_SHAPE = re.compile(r"^[a-z0-9_]+_\d+\.\d+$")


@pytest.fixture
def engine():
    return DetectionEngine()


def by_type(faults):
    return {f.fault_type: f for f in faults}


# ---------------------------------------------------------------- module surface


def test_enums_are_the_package_enums():
    assert FaultSeverity is enums.FaultSeverity
    assert FaultSource is enums.FaultSource


def test_factory_returns_independent_engines():
    a, b = create_detection_engine(), create_detection_engine()
    assert isinstance(a, DetectionEngine)
    a.detect_faults({"queue_size": 150})
    assert len(a.get_active_faults()) == 1
    assert b.get_active_faults() == []


# ---------------------------------------------------------------- DetectedFault


def test_detected_fault_defaults_equality_and_to_dict():
    before = datetime.datetime.now()
    f = DetectedFault("x_1", FaultSource.SYSTEM, FaultSeverity.LOW, "custom", "desc")
    assert f.metrics == {} and f.predicted is False
    assert isinstance(f.timestamp, datetime.datetime) and f.timestamp >= before
    g = DetectedFault(
        fault_id="x_1", source=FaultSource.SYSTEM, severity=FaultSeverity.LOW, fault_type="custom",
        description="desc", metrics={}, timestamp=f.timestamp, predicted=False,
    )
    assert f == g
    g.description = "other"
    assert f != g
    d = f.to_dict()
    assert d == {
        "fault_id": "x_1", "source": "system", "severity": "low", "fault_type": "custom",
        "description": "desc", "metrics": {}, "timestamp": f.timestamp.isoformat(), "predicted": False,
    }
    assert d["metrics"] is f.metrics
    assert repr(f).startswith("DetectedFault(fault_id='x_1', source=<FaultSource.SYSTEM")


def test_detected_fault_supports_pattern_matching(engine):
    fault = engine.detect_faults({"queue_size": 150})[0]
    match fault:
        case DetectedFault(fault_id, source, severity, fault_type):
            assert (source, severity, fault_type) == (FaultSource.FAZA25_ORCHESTRATOR, FaultSeverity.MEDIUM, "queue_overload")
            assert fault_id == fault.fault_id
        case _:
            pytest.fail("no match")


def test_detected_fault_to_dict_of_a_detected_fault(engine):
    fault = engine.detect_faults({"queue_size": 150})[0]
    d = fault.to_dict()
    assert d["source"] == "faza25_orchestrator" and d["severity"] == "medium"
    assert d["metrics"] == {"queue_size": 150}
    assert datetime.datetime.fromisoformat(d["timestamp"]) == fault.timestamp


# ---------------------------------------------------------------- the reference rules


def test_eight_fault_input_gives_the_reference_faults(engine):
    faults = engine.detect_faults(**FAULTS8)
    assert [f.fault_type for f in faults] == [
        "high_error_rate", "queue_overload", "graph_cycle", "agent_failure",
        "scheduler_deadlock", "stability_degradation", "high_anomaly_rate", "governance_violation",
    ]
    f = by_type(faults)
    expected = {
        "high_error_rate": (FaultSeverity.HIGH, FaultSource.FAZA25_ORCHESTRATOR, "f25_err_",
                            "High orchestrator error rate: 60.00%", {"error_rate": 0.6}),
        "queue_overload": (FaultSeverity.MEDIUM, FaultSource.FAZA25_ORCHESTRATOR, "f25_queue_",
                           "Task queue overloaded: 500 tasks", {"queue_size": 500}),
        "graph_cycle": (FaultSeverity.CRITICAL, FaultSource.FAZA27_TASKGRAPH, "f27_cycle_",
                        "Graph contains 2 cycle(s)", {"cycle_count": 2}),
        "agent_failure": (FaultSeverity.HIGH, FaultSource.FAZA28_AGENT_LOOP, "f28_agent_",
                          "High agent failure rate: 50.00%",
                          {"failure_rate": 0.5, "agent_failure_rate": 0.5}),
        "scheduler_deadlock": (FaultSeverity.CRITICAL, FaultSource.FAZA28_AGENT_LOOP, "f28_deadlock_",
                               "Scheduler deadlock detected", {"stuck": True}),
        "stability_degradation": (FaultSeverity.HIGH, FaultSource.FAZA28_5_META_LAYER, "f285_stability_",
                                  "Low stability score: 0.20", {"stability_score": 0.2}),
        "high_anomaly_rate": (FaultSeverity.MEDIUM, FaultSource.FAZA28_5_META_LAYER, "f285_anomaly_",
                              "High anomaly rate: 90.00%", {"anomaly_rate": 0.9}),
        "governance_violation": (FaultSeverity.HIGH, FaultSource.FAZA29_GOVERNANCE, "f29_violation_",
                                 "Governance violations detected: 3",
                                 {"violation_count": 3, "governance_violations": 3}),
    }
    for fault_type, (severity, source, prefix, description, metrics) in expected.items():
        fault = f[fault_type]
        assert fault.severity is severity, fault_type
        assert fault.source is source, fault_type
        assert fault.fault_id.startswith(prefix) and ID_SHAPE.match(fault.fault_id), fault.fault_id
        assert fault.description == description
        assert fault.metrics == metrics
        assert fault.predicted is False
        assert isinstance(fault.timestamp, datetime.datetime)


def test_healthy_metrics_and_empty_layers_give_nothing(engine):
    assert engine.detect_faults(**HEALTHY) == []
    assert engine.detect_faults({}, {}, {}, {}, {}) == []
    assert engine.detect_faults() == []
    assert engine.detect_faults(None, None, None, None, None) == []


def test_positional_and_keyword_arguments_are_the_same_layers():
    a, b = DetectionEngine(), DetectionEngine()
    pos = a.detect_faults(*FAULTS8.values())
    kw = b.detect_faults(**FAULTS8)
    assert [f.fault_type for f in pos] == [f.fault_type for f in kw]
    only29 = DetectionEngine().detect_faults(faza29_metrics={"takeover_active": True})
    assert [(f.fault_type, f.severity) for f in only29] == [("system_takeover", FaultSeverity.CRITICAL)]


def test_thresholds_are_strict(engine):
    edge = {"error_rate": 0.3, "queue_size": 100, "cpu_usage": 0.95}
    assert engine.detect_faults(edge) == []
    assert engine.detect_faults(faza27_metrics={"bottleneck_count": 5}) == []
    assert engine.detect_faults(faza28_metrics={"agent_failure_rate": 0.2}) == []
    assert engine.detect_faults(faza28_5_metrics={"stability_score": 0.5, "anomaly_rate": 0.4}) == []
    medium = engine.detect_faults({"error_rate": 0.5})
    assert medium[0].severity is FaultSeverity.MEDIUM


def test_python_formatting_of_values(engine):
    faults = engine.detect_faults({"error_rate": True, "queue_size": 150.0})
    assert faults[0].description == "High orchestrator error rate: 100.00%"
    assert faults[0].metrics == {"error_rate": True}
    assert faults[1].description == "Task queue overloaded: 150.0 tasks"
    low = engine.detect_faults(faza28_5_metrics={"stability_score": 0.125})
    assert low[0].description == "Low stability score: 0.12"


# ---------------------------------------------------------------- fixes over the reference


@pytest.mark.parametrize("risk,severity", [(85, FaultSeverity.HIGH), (95, FaultSeverity.CRITICAL), (90.5, FaultSeverity.CRITICAL)])
def test_risk_score_rule(engine, risk, severity):
    faults = engine.detect_faults({}, {}, {}, {}, {"risk_score": risk})
    assert len(faults) == 1
    f = faults[0]
    assert "risk" in f.fault_type
    assert f.severity is severity and f.source is FaultSource.FAZA29_GOVERNANCE
    assert f.fault_id.startswith("f29_risk_")
    assert f.metrics == {"risk_score": risk}


def test_risk_at_or_below_70_is_fine(engine):
    assert engine.detect_faults(faza29_metrics={"risk_score": 70}) == []


def test_resource_rule_carries_what_the_scheduler_repair_reads(engine):
    f = engine.detect_faults({"cpu_usage": 0.97, "memory_usage": 0.4})[0]
    assert (f.fault_type, f.severity, f.source) == ("resource_exhaustion", FaultSeverity.CRITICAL, FaultSource.SYSTEM)
    assert f.fault_id.startswith("resource_")
    assert f.metrics["resource_type"] == "cpu" and f.metrics["usage"] == 0.97
    assert f.metrics["cpu"] == 0.97 and f.metrics["memory"] == 0.4
    assert f.metrics["cpu_usage"] == 0.97
    g = DetectionEngine().detect_faults({"memory_usage": 0.99})[0]
    assert g.metrics["resource_type"] == "memory" and g.metrics["usage"] == 0.99


def test_alias_keys(engine):
    gov = engine.detect_faults(faza29_metrics={"governance_violations": 10})
    assert [f.fault_type for f in gov] == ["governance_violation"]
    assert gov[0].metrics["violation_count"] == 10 and gov[0].metrics["governance_violations"] == 10

    assert engine.detect_faults(faza28_5_metrics={"anomaly_count": 4}) == []
    count = engine.detect_faults(faza28_5_metrics={"anomaly_count": 5})
    assert [f.fault_type for f in count] == ["high_anomaly_rate"]
    assert count[0].metrics == {"anomaly_count": 5}

    flag = engine.detect_faults(faza27_metrics={"bottleneck_detected": True, "bottleneck_node": "n3"})
    assert [f.fault_type for f in flag] == ["graph_bottleneck"]
    assert flag[0].metrics == {"bottleneck_detected": True, "bottleneck_node": "n3"}
    # A count below the threshold wins over the flag.
    assert engine.detect_faults(faza27_metrics={"bottleneck_count": 1, "bottleneck_detected": True}) == []

    derived = engine.detect_faults({"task_success_rate": 0.4})
    assert [f.fault_type for f in derived] == ["high_error_rate"]
    assert derived[0].severity is FaultSeverity.HIGH
    assert derived[0].metrics == {"error_rate": 0.6, "task_success_rate": 0.4}
    assert engine.detect_faults({"task_success_rate": 0.4, "error_rate": 0.01}) == []


def test_repair_targets_pass_through(engine):
    cycle = engine.detect_faults(faza27_metrics={"cycle_count": 1, "cycles": [["a", "b", "a"]]})[0]
    assert cycle.metrics == {"cycle_count": 1, "cycles": [["a", "b", "a"]]}
    agent, deadlock = engine.detect_faults(faza28_metrics={
        "agent_failure_rate": 0.6, "failing_agents": ["a1"], "agent_id": "a1",
        "scheduler_stuck": True, "stuck_task_ids": ["t4"],
    })
    assert agent.metrics["failing_agents"] == ["a1"] and agent.metrics["agent_id"] == "a1"
    assert deadlock.metrics == {"stuck": True, "stuck_task_ids": ["t4"]}
    err = engine.detect_faults({"error_rate": 0.9, "failed_task_ids": ["t1", "t2"], "task_id": "t1"})[0]
    assert err.metrics == {"error_rate": 0.9, "failed_task_ids": ["t1", "t2"], "task_id": "t1"}


def test_keys_from_non_literal_strings_are_read_too(engine):
    # json-decoded or built keys are not interned: they must match by value.
    key = "".join(["queue", "_", "size"])
    assert [f.fault_type for f in engine.detect_faults({key: 150})] == ["queue_overload"]


# ---------------------------------------------------------------- dedup and clearing


def test_a_persisting_condition_is_the_same_fault_object(engine):
    first = engine.detect_faults(**FAULTS8)
    for _ in range(5):
        again = engine.detect_faults(**FAULTS8)
        assert len(again) == 8
        assert all(a is b for a, b in zip(first, again))
    stats = engine.get_statistics()
    assert stats["faults_detected"] == 8
    assert (stats["critical_faults"], stats["high_faults"], stats["medium_faults"]) == (2, 4, 2)
    assert stats["active_faults"] == 8 and stats["critical_active"] == 2
    assert stats["total_detections"] == 6
    assert len(engine.fault_history) == 8


def test_changed_values_refresh_the_same_fault(engine):
    a = engine.detect_faults({"queue_size": 150})[0]
    old_metrics = a.metrics
    b = engine.detect_faults({"queue_size": 240})[0]
    assert b is a
    assert a.description == "Task queue overloaded: 240 tasks"
    assert a.metrics == {"queue_size": 240}
    assert old_metrics == {"queue_size": 150}
    assert engine.get_statistics()["faults_detected"] == 1


def test_escalation_opens_a_new_fault(engine):
    medium = engine.detect_faults({"error_rate": 0.4})[0]
    high = engine.detect_faults({"error_rate": 0.8})[0]
    assert high is not medium and high.fault_id != medium.fault_id
    assert high.severity is FaultSeverity.HIGH
    assert engine.get_active_faults() == [high]


def test_a_condition_clears_when_its_layer_reports_without_it(engine):
    cycle = engine.detect_faults(faza27_metrics={"cycle_count": 1})[0]
    # Other layers, and an empty dict, say nothing about the graph.
    assert engine.detect_faults({"queue_size": 1}, {}) == []
    assert engine.get_active_faults() == [cycle]
    assert engine.detect_faults(faza27_metrics={"cycle_count": 0}) == []
    assert engine.get_active_faults() == []
    assert engine.fault_history == [cycle]
    again = engine.detect_faults(faza27_metrics={"cycle_count": 1})[0]
    assert again is not cycle and again.fault_id != cycle.fault_id
    assert engine.get_statistics()["faults_detected"] == 2


def test_returned_faults_are_those_of_the_given_layers(engine):
    engine.detect_faults(**FAULTS8)
    only27 = engine.detect_faults(faza27_metrics=FAULTS8["faza27_metrics"])
    assert [f.fault_type for f in only27] == ["graph_cycle"]
    assert len(engine.get_active_faults()) == 8


def test_unobserved_faults_stop_being_active_after_the_window():
    engine = DetectionEngine(active_window_seconds=0)
    first = engine.detect_faults({"queue_size": 150})
    assert len(first) == 1
    assert engine.get_active_faults() == []
    assert engine.get_statistics()["active_faults"] == 0
    second = engine.detect_faults({"queue_size": 150})
    assert second[0].fault_id != first[0].fault_id
    assert DetectionEngine().active_window_seconds == 300.0
    with pytest.raises(ValueError, match="active_window_seconds"):
        DetectionEngine(active_window_seconds=-1)


def test_active_and_critical_faults_and_detected_faults(engine):
    faults = engine.detect_faults(**FAULTS8)
    assert engine.get_active_faults() == faults
    assert engine.detected_faults == faults
    critical = engine.get_critical_faults()
    assert [f.fault_type for f in critical] == ["graph_cycle", "scheduler_deadlock"]
    assert all(f.severity is FaultSeverity.CRITICAL for f in critical)


def test_clear_resolved_faults(engine):
    faults = engine.detect_faults(**FAULTS8)
    ids = [f.fault_id for f in faults[:3]]
    assert engine.clear_resolved_faults(ids + [ids[0], "unknown"]) == 3
    assert engine.clear_resolved_faults(ids) == 0
    assert engine.clear_resolved_faults(set()) == 0
    assert len(engine.get_active_faults()) == 5
    assert len(engine.fault_history) == 8
    # The conditions persist: they come back as new faults.
    again = engine.detect_faults(**FAULTS8)
    assert {f.fault_id for f in again[:3]}.isdisjoint(ids)
    assert all(a is b for a, b in zip(faults[3:], again[3:]))
    assert engine.get_statistics()["faults_detected"] == 11


@pytest.mark.parametrize("bad,message", [
    ("f25_err_1.0", "single str"),
    (None, "list, tuple or set"),
    ([1], r"fault_ids\[0\]"),
])
def test_clear_resolved_faults_refuses_bad_ids(engine, bad, message):
    engine.detect_faults({"queue_size": 150})
    with pytest.raises(TypeError, match=message):
        engine.clear_resolved_faults(bad)
    assert len(engine.get_active_faults()) == 1


def test_fault_ids_are_unique_in_a_burst(engine):
    ids = set()
    for _ in range(300):
        fault = engine.detect_faults({"queue_size": 150})[0]
        ids.add(fault.fault_id)
        engine.clear_resolved_faults([fault.fault_id])
    assert len(ids) == 300
    assert all(i.startswith("f25_queue_") and ID_SHAPE.match(i) for i in ids)


def test_history_is_bounded(engine):
    for i in range(1050):
        engine.detect_faults({"queue_size": 150})
        engine.detect_faults({"queue_size": 1})
    history = engine.fault_history
    assert len(history) == 1000
    assert engine.get_statistics()["faults_detected"] == 1050
    assert len({f.fault_id for f in history}) == 1000
    assert engine.get_active_faults() == []


# ---------------------------------------------------------------- statistics


def test_statistics_keys_and_stats_attribute(engine):
    stats = engine.get_statistics()
    assert list(stats) == [
        "faults_detected", "critical_faults", "high_faults", "medium_faults", "low_faults",
        "anomalies_detected", "predictions_made", "active_faults", "critical_active", "total_detections",
    ]
    assert all(v == 0 for v in stats.values())
    engine.detect_faults(**FAULTS8)
    engine.detect_faults(**HEALTHY)
    assert engine.get_statistics()["total_detections"] == 2
    assert engine.get_statistics()["active_faults"] == 0
    assert engine.stats == {
        "faults_detected": 8, "critical_faults": 2, "high_faults": 4, "medium_faults": 2, "low_faults": 0,
        "anomalies_detected": 0, "predictions_made": 0, "total_detections": 2,
    }


def test_a_failed_pass_is_not_counted(engine):
    with pytest.raises(TypeError):
        engine.detect_faults({"queue_size": "x"})
    assert engine.get_statistics()["total_detections"] == 0


# ---------------------------------------------------------------- prediction


def rising(n=12):
    return [{"error_rate": 0.05 if i < n - 5 else 0.3} for i in range(n)]


def test_predict_failures(engine):
    assert engine.predict_failures([{"risk_score": i * 10} for i in range(5)]) == []
    assert engine.predict_failures(rising()[:9]) == []
    (p,) = engine.predict_failures(rising())
    assert p.predicted is True and p.fault_id.startswith("pred_err_")
    assert (p.fault_type, p.severity, p.source) == ("predicted_error_spike", FaultSeverity.MEDIUM, FaultSource.SYSTEM)
    assert p.metrics == {"trend": "increasing", "rate": pytest.approx(0.3)}
    assert engine.get_statistics()["predictions_made"] == 1
    assert engine.get_active_faults() == [] and engine.fault_history == []
    flat = [{"error_rate": 0.2}] * 10
    assert engine.predict_failures(flat) == []
    assert engine.predict_failures(tuple(rising()))[0].fault_type == "predicted_error_spike"


def test_predict_failures_reads_only_the_last_ten_entries(engine):
    history = ["not a dict", {"error_rate": "bad"}] + rising(10)
    assert len(engine.predict_failures(history)) == 1
    derived = [{"task_success_rate": 0.95}] * 5 + [{"task_success_rate": 0.6}] * 5
    assert engine.predict_failures(derived)[0].metrics["rate"] == pytest.approx(0.4)


@pytest.mark.parametrize("history,exc,message", [
    (None, TypeError, "metrics_history must be a list"),
    ({"error_rate": 1}, TypeError, "metrics_history must be a list"),
    ([1] * 10, TypeError, r"metrics_history\[0\] must be a dict"),
    ([{"error_rate": 0.1}] * 9 + [{"error_rate": "x"}], TypeError, r"metrics_history\[9\]\['error_rate'\]"),
    ([{"error_rate": float("nan")}] * 10, ValueError, "not a finite number"),
])
def test_predict_failures_refuses_bad_input(engine, history, exc, message):
    with pytest.raises(exc, match=message):
        engine.predict_failures(history)
    assert engine.get_statistics()["predictions_made"] == 0


# ---------------------------------------------------------------- detection_rules


def test_detection_rules_are_callable_on_a_metrics_dict(engine):
    rules = engine.detection_rules
    for name in ["high_error_rate", "agent_failure", "graph_cycle", "scheduler_deadlock",
                 "governance_violation", "resource_exhaustion", "stability_degradation",
                 "queue_overload", "graph_bottleneck", "high_anomaly_rate", "system_takeover",
                 "high_risk_score"]:
        assert isinstance(rules[name], DetectionRule) and callable(rules[name])
        assert rules[name].name == name
    assert len(rules) == 12
    assert engine.detection_rules is rules
    fault = rules["resource_exhaustion"]({"cpu_usage": 0.99})
    assert isinstance(fault, DetectedFault)
    assert fault.metrics["resource_type"] == "cpu"
    assert rules["graph_cycle"]({"cycle_count": 0}) is None
    assert rules["high_risk_score"].layer == "faza29_metrics"
    # Calling a rule does not touch the engine.
    assert engine.get_statistics()["faults_detected"] == 0
    assert engine.get_active_faults() == []
    with pytest.raises(TypeError, match="must be a dict"):
        rules["graph_cycle"]([1])


# ---------------------------------------------------------------- anomaly wiring


def test_an_anomalous_metric_raises_a_low_fault_until_it_is_normal(engine):
    for i in range(12):
        assert engine.detect_faults({"queue_size": 10 + i % 3, "latency_ms": 5.0 + i % 2}) == []
    faults = engine.detect_faults({"queue_size": 11, "latency_ms": 90.0})
    assert [f.fault_type for f in faults] == ["metric_anomaly"]
    f = faults[0]
    assert f.severity is FaultSeverity.LOW and f.source is FaultSource.FAZA25_ORCHESTRATOR
    assert f.fault_id.startswith("f25_metric_")
    assert f.metrics == {"metric": "latency_ms", "value": 90.0, "layer": "faza25"}
    stats = engine.get_statistics()
    assert stats["anomalies_detected"] == 1 and stats["low_faults"] == 1
    assert engine.detect_faults({"queue_size": 11, "latency_ms": 5.0}) == []
    assert engine.get_active_faults() == []
    assert set(engine.anomaly_detector.history) == {"faza25.queue_size", "faza25.latency_ms"}


def test_steady_faults_never_look_anomalous(engine):
    for _ in range(40):
        assert len(engine.detect_faults(**FAULTS8)) == 8
    assert engine.get_statistics()["anomalies_detected"] == 0


def test_bools_and_strings_do_not_feed_the_detector(engine):
    engine.detect_faults(faza28_metrics={"scheduler_stuck": False, "agent_id": "a", "agent_failure_rate": 0.0})
    assert list(engine.anomaly_detector.history) == ["faza28.agent_failure_rate"]


def test_the_anomaly_detector_can_be_replaced(engine):
    mad = AnomalyDetector(window_size=10, method="mad")
    engine.anomaly_detector = mad
    assert engine.anomaly_detector is mad
    engine.detect_faults({"queue_size": 5})
    assert list(mad.history) == ["faza25.queue_size"]
    with pytest.raises(TypeError, match="AnomalyDetector"):
        engine.anomaly_detector = object()


# ---------------------------------------------------------------- AnomalyDetector


def test_anomaly_detector_defaults_and_reference_semantics():
    d = AnomalyDetector()
    assert (d.window_size, d.threshold, d.method) == (20, 3.0, "zscore")
    assert d.history == {}
    # Warm-up: the first window_size // 2 values never count.
    assert not any(d.detect_anomaly("m", v) for v in [1.0] * 9 + [1e9])
    d2 = AnomalyDetector(window_size=8)
    for v in [1.0, 2.0, 3.0, 4.0]:
        assert d2.detect_anomaly("m", v) is False
    assert d2.detect_anomaly("m", 6.0) is True   # z = 3.13 against mean 2.5, std 1.118
    assert d2.detect_anomaly("m", 5.0) is False
    flat = AnomalyDetector()
    for _ in range(15):
        flat.detect_anomaly("f", 7)
    assert flat.detect_anomaly("f", 700) is False   # zero spread never flags
    history = d2.history["m"]
    assert isinstance(history, collections.deque) and history.maxlen == 8
    assert list(history) == [1.0, 2.0, 3.0, 4.0, 6.0, 5.0]


def test_mad_is_robust_where_zscore_is_not():
    z, m = AnomalyDetector(), AnomalyDetector(method="mad")
    for v in [10, 11, 10, 12, 11, 10, 500, 11, 10, 12, 11]:
        z.detect_anomaly("x", v)
        m.detect_anomaly("x", v)
    assert z.detect_anomaly("x", 60) is False
    assert m.detect_anomaly("x", 60) is True


def test_ewma_flags_a_jump():
    d = AnomalyDetector(method="ewma")
    assert not any(d.detect_anomaly("x", 100 + i % 3) for i in range(30))
    assert d.detect_anomaly("x", 200) is True
    assert d.method == "ewma"


def test_anomaly_detector_keeps_a_bounded_number_of_metrics():
    d = AnomalyDetector(max_metrics=8)
    for i in range(100):
        d.detect_anomaly(f"m{i}", 1.0)
    assert len(d) <= 8 and len(d.history) <= 8
    assert "m99" in d.history and "m0" not in d.history
    d.clear()
    assert d.history == {}


def test_anomaly_detector_settings_can_change():
    d = AnomalyDetector()
    for i in range(20):
        d.detect_anomaly("x", float(i))
    d.window_size = 4
    assert list(d.history["x"]) == [16.0, 17.0, 18.0, 19.0] and d.history["x"].maxlen == 4
    d.threshold = 2.5
    assert d.threshold == 2.5
    with pytest.raises(ValueError):
        d.threshold = 0
    with pytest.raises(ValueError):
        d.window_size = 1
    assert (d.window_size, d.threshold) == (4, 2.5)


@pytest.mark.parametrize("kwargs,exc", [
    ({"window_size": 1}, ValueError),
    ({"window_size": -5}, ValueError),
    ({"window_size": 2**100}, ValueError),
    ({"window_size": 2.5}, TypeError),
    ({"threshold": 0}, ValueError),
    ({"threshold": -1.0}, ValueError),
    ({"threshold": float("nan")}, ValueError),
    ({"threshold": float("inf")}, ValueError),
    ({"threshold": "3"}, TypeError),
    ({"method": "median"}, ValueError),
    ({"max_metrics": 0}, ValueError),
])
def test_anomaly_detector_refuses_bad_settings(kwargs, exc):
    with pytest.raises(exc):
        AnomalyDetector(**kwargs)


@pytest.mark.parametrize("args,exc,message", [
    ((1, 1.0), TypeError, "metric_name must be a str"),
    (("m", "1"), TypeError, "value must be a real number"),
    (("m", None), TypeError, "value must be a real number"),
    (("m", float("nan")), ValueError, "finite"),
    (("m", float("-inf")), ValueError, "finite"),
    (("m", 2**2000), ValueError, "too large"),
    (("x" * 5000, 1.0), ValueError, "at most 1024"),
])
def test_detect_anomaly_refuses_bad_input(args, exc, message):
    d = AnomalyDetector()
    with pytest.raises(exc, match=message):
        d.detect_anomaly(*args)
    assert d.history == {}


def test_detect_anomaly_accepts_numbers_of_other_types():
    import decimal
    import fractions
    d = AnomalyDetector()
    assert d.detect_anomaly("m", fractions.Fraction(1, 2)) is False
    assert d.detect_anomaly("m", decimal.Decimal("2.5")) is False
    assert d.detect_anomaly("m", True) is False
    assert list(d.history["m"]) == [0.5, 2.5, 1.0]


# ---------------------------------------------------------------- hostile input


class Hostile:
    def __eq__(self, other):
        raise RuntimeError("eq")

    def __hash__(self):
        return 7

    def __bool__(self):
        raise RuntimeError("bool")

    def __getattr__(self, name):
        raise RuntimeError("getattr")


def self_referencing_list():
    loop = []
    loop.append(loop)
    return loop


def deep_dict(depth=10_000):
    root = cur = {}
    for _ in range(depth):
        cur["x"] = {}
        cur = cur["x"]
    return root


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"faza25_metrics": [("queue_size", 1)]}, TypeError, "faza25_metrics must be a dict"),
    ({"faza28_5_metrics": "stability"}, TypeError, "faza28_5_metrics must be a dict"),
    ({"faza25_metrics": {"queue_size": "many"}}, TypeError, r"faza25_metrics\['queue_size'\] must be a number"),
    ({"faza29_metrics": {"risk_score": [90]}}, TypeError, "risk_score"),
    ({"faza29_metrics": {"violation_count": {}}}, TypeError, "violation_count"),
    ({"faza25_metrics": {"error_rate": float("nan")}}, ValueError, r"faza25_metrics\['error_rate'\]: nan"),
    ({"faza25_metrics": {"anything": float("inf")}}, ValueError, r"\['anything'\]: inf"),
    ({"faza25_metrics": {"queue_size": 2**200}}, ValueError, "64 bits"),
    ({"faza27_metrics": {"cycle_count": 1, "cycles": self_referencing_list()}}, ValueError, "contains itself"),
    ({"faza27_metrics": {"cycle_count": 1, "cycles": deep_dict()}}, ValueError, "deeper"),
    ({"faza28_metrics": {"scheduler_stuck": Hostile()}}, TypeError, "Hostile"),
])
def test_hostile_input_is_refused_and_nothing_changes(kwargs, exc, message):
    engine = DetectionEngine()
    baseline = engine.detect_faults(**FAULTS8)
    stats = engine.get_statistics()
    history = engine.anomaly_detector.history
    with pytest.raises(exc, match=message):
        engine.detect_faults(**kwargs)
    assert engine.get_statistics() == stats
    assert engine.anomaly_detector.history == history
    assert engine.detect_faults(**FAULTS8) == baseline


def test_values_the_rules_do_not_read_are_ignored(engine):
    metrics = {"queue_size": 150, "note": Hostile(), Hostile(): 1, 3: "x", "big_text": "y" * 1_000_000}
    assert [f.fault_type for f in engine.detect_faults(metrics)] == ["queue_overload"]
    # None counts as absent, as if the key were missing.
    assert engine.detect_faults(faza29_metrics={"risk_score": None, "violation_count": None}) == []


def test_number_subclasses_count_as_numbers(engine):
    import enum

    class Size(enum.IntEnum):
        BIG = 150

    class Rate(float):
        pass

    faults = engine.detect_faults({"queue_size": Size.BIG, "error_rate": Rate(0.7)})
    assert [f.description for f in faults] == [
        "High orchestrator error rate: 70.00%", "Task queue overloaded: 150 tasks",
    ]


def test_dict_subclasses_are_dicts(engine):
    faults = engine.detect_faults(collections.OrderedDict(queue_size=150))
    assert [f.fault_type for f in faults] == ["queue_overload"]


def test_threads_share_one_engine_safely():
    engine = DetectionEngine()
    errors = []

    def work():
        try:
            for _ in range(300):
                assert len(engine.detect_faults(**FAULTS8)) == 8
                engine.get_statistics()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    stats = engine.get_statistics()
    assert stats["faults_detected"] == 8 and stats["total_detections"] == 1200
    assert len({id(f) for f in engine.get_active_faults()}) == 8


def test_faults_referencing_the_engine_are_collected():
    import weakref
    engine = DetectionEngine()
    fault = engine.detect_faults({"queue_size": 150})[0]
    fault.metrics["owner"] = engine   # a reference cycle through the engine
    ref = weakref.ref(engine)
    del engine, fault
    gc.collect()
    assert ref() is None


def test_changes_are_logged_and_steady_passes_are_not(engine, caplog):
    caplog.set_level("INFO", logger="senti_os.core.faza30.detection_engine")
    engine.detect_faults(**FAULTS8)
    assert [r.getMessage() for r in caplog.records] == ["Detected 8 new fault(s), 0 cleared"]
    caplog.clear()
    engine.detect_faults(**FAULTS8)
    assert caplog.records == []
    engine.detect_faults(**HEALTHY)
    assert [r.getMessage() for r in caplog.records] == ["Detected 0 new fault(s), 8 cleared"]
