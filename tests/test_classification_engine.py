"""Behaviour of senti_os.core.faza30.classification_engine."""

import dataclasses
import datetime
import gc
import math
import sys
import weakref

import pytest

from senti_os.core.faza30 import enums
from senti_os.core.faza30.classification_engine import (
    ClassificationEngine,
    ClassificationResult,
    FaultCategory,
    RepairPriority,
    create_classification_engine,
)
from senti_os.core.faza30.enums import FaultSeverity, FaultSource

S, SRC, C, P = FaultSeverity, FaultSource, FaultCategory, RepairPriority


@dataclasses.dataclass
class Fault:
    """Shaped like detection's DetectedFault."""

    fault_id: object
    source: object
    severity: object
    fault_type: object
    description: object
    metrics: object = dataclasses.field(default_factory=dict)
    timestamp: datetime.datetime = dataclasses.field(default_factory=datetime.datetime.now)
    predicted: bool = False


class Plain:
    def __init__(self, **attrs):
        self.__dict__.update(attrs)


def fault(fault_type, severity=S.MEDIUM, source=SRC.SYSTEM, description="", metrics=None, fault_id="f1"):
    return Fault(fault_id, source, severity, fault_type, description, metrics if metrics is not None else {})


# Every fault type the detector emits, with its description and metric keys, and the category
# and priority it must get. The last four are the detector's new rules.
DETECTOR_FAULTS = [
    (fault("high_error_rate", S.HIGH, SRC.FAZA25_ORCHESTRATOR, "High orchestrator error rate: 60.00%", {"error_rate": 0.6}), C.OPERATIONAL, P.HIGH),
    (fault("high_error_rate", S.MEDIUM, SRC.FAZA25_ORCHESTRATOR, "High orchestrator error rate: 40.00%", {"error_rate": 0.4}), C.OPERATIONAL, P.MEDIUM),
    (fault("queue_overload", S.MEDIUM, SRC.FAZA25_ORCHESTRATOR, "Task queue overloaded: 150 tasks", {"queue_size": 150}), C.OPERATIONAL, P.MEDIUM),
    (fault("graph_cycle", S.CRITICAL, SRC.FAZA27_TASKGRAPH, "Graph contains 2 cycle(s)", {"cycle_count": 2}), C.STRUCTURAL, P.IMMEDIATE),
    (fault("graph_bottleneck", S.MEDIUM, SRC.FAZA27_TASKGRAPH, "Graph has 9 bottlenecks", {"bottleneck_count": 9}), C.STRUCTURAL, P.HIGH),
    (fault("agent_failure", S.HIGH, SRC.FAZA28_AGENT_LOOP, "High agent failure rate: 30.00%", {"failure_rate": 0.3}), C.AGENT_FAULT, P.MEDIUM),
    (fault("agent_failure", S.HIGH, SRC.FAZA28_AGENT_LOOP, "High agent failure rate: 60.00%", {"failure_rate": 0.6}), C.AGENT_FAULT, P.URGENT),
    (fault("scheduler_deadlock", S.CRITICAL, SRC.FAZA28_AGENT_LOOP, "Scheduler deadlock detected", {"stuck": True}), C.STRUCTURAL, P.IMMEDIATE),
    (fault("stability_degradation", S.HIGH, SRC.FAZA28_5_META_LAYER, "Low stability score: 0.20", {"stability_score": 0.2}), C.STABILITY_THREAT, P.IMMEDIATE),
    (fault("high_anomaly_rate", S.MEDIUM, SRC.FAZA28_5_META_LAYER, "High anomaly rate: 90.00%", {"anomaly_rate": 0.9}), C.AGENT_FAULT, P.MEDIUM),
    (fault("governance_violation", S.HIGH, SRC.FAZA29_GOVERNANCE, "Governance violations detected: 3", {"violation_count": 3}), C.GOVERNANCE_DRIFT, P.HIGH),
    (fault("governance_violation", S.HIGH, SRC.FAZA29_GOVERNANCE, "Governance violations detected: 12", {"violation_count": 12}), C.GOVERNANCE_DRIFT, P.URGENT),
    (fault("system_takeover", S.CRITICAL, SRC.FAZA29_GOVERNANCE, "System takeover active", {"takeover": True}), C.STABILITY_THREAT, P.IMMEDIATE),
    (fault("high_risk_score", S.HIGH, SRC.FAZA29_GOVERNANCE, "High governance risk score: 80", {"risk_score": 80}), C.GOVERNANCE_DRIFT, P.HIGH),
    (fault("high_risk_score", S.CRITICAL, SRC.FAZA29_GOVERNANCE, "High governance risk score: 95", {"risk_score": 95}), C.GOVERNANCE_DRIFT, P.IMMEDIATE),
    (fault("resource_exhaustion", S.CRITICAL, SRC.SYSTEM, "System resources exhausted", {"cpu": 0.97, "memory": 0.5}), C.OPERATIONAL, P.IMMEDIATE),
    (fault("predicted_error_spike", S.MEDIUM, SRC.SYSTEM, "Error rate trend suggests upcoming spike", {"trend": "increasing", "rate": 0.3}), C.OPERATIONAL, P.MEDIUM),
    (fault("metric_anomaly", S.MEDIUM, SRC.SYSTEM, "Metric anomaly: queue_size = 900 (z = 4.1)", {"metric": "queue_size", "value": 900}), C.OPERATIONAL, P.MEDIUM),
]


@pytest.fixture
def engine():
    return ClassificationEngine()


@pytest.mark.parametrize("f, category, priority", DETECTOR_FAULTS, ids=[f"{f.fault_type}-{f.severity.name}" for f, _, _ in DETECTOR_FAULTS])
def test_every_detector_fault_gets_a_fitting_category_and_priority(engine, f, category, priority):
    r = engine.classify_fault(f)
    assert r.category is category
    assert r.repair_priority is priority
    assert 0.0 < r.confidence <= 1.0


def test_enums_are_the_package_enums():
    assert FaultCategory is enums.FaultCategory and RepairPriority is enums.RepairPriority
    assert create_classification_engine().get_statistics()["total_classifications"] == 0


def test_scores_follow_the_keyword_and_metric_arithmetic(engine):
    # graph_cycle: "cycle" and "graph" (+0.15 each, added in turn), then cycle_count > 0 (+0.3).
    assert engine.classify_fault(DETECTOR_FAULTS[3][0]).confidence == 0.15 + 0.15 + 0.3
    # agent_failure: "agent", then the failure_rate alias above 0.1 (+0.25).
    assert engine.classify_fault(DETECTOR_FAULTS[5][0]).confidence == 0.15 + 0.25
    # governance_violation: two keywords and the violation_count alias above 0 (+0.3).
    assert engine.classify_fault(DETECTOR_FAULTS[10][0]).confidence == 0.15 + 0.15 + 0.3
    # Capped at 1.0.
    crowded = fault("cycle_graph_topology_bottleneck", description="deadlock dependency circular structure node edge",
                    metrics={"cycle_count": 3, "graph_complexity": 500, "bottleneck_detected": True})
    assert engine.classify_fault(crowded).confidence == 1.0


def test_a_fault_matching_nothing_is_unknown(engine):
    r = engine.classify_fault(fault("mystery", S.LOW, description="something odd"))
    assert r.category is C.UNKNOWN
    assert r.confidence == 0.0
    assert r.subcategory == "unknown_general"
    assert r.repair_priority is P.LOW
    assert r.root_cause == "Unknown root cause for mystery"
    assert len(r.recommended_actions) == 3
    assert r.affected_components == ["FaultSource.SYSTEM"]
    assert engine.classify_fault(fault("mystery", S.HIGH)).repair_priority is P.HIGH
    assert engine.classify_fault(fault("mystery", S.INFO)).repair_priority is P.DEFERRED
    assert engine.classify_fault(fault("mystery", S.CRITICAL)).repair_priority is P.IMMEDIATE


def test_result_fields_for_a_graph_cycle(engine):
    before = datetime.datetime.now()
    r = engine.classify_fault(fault("graph_cycle", S.CRITICAL, SRC.FAZA27_TASKGRAPH, "Graph contains 2 cycle(s)",
                                    {"cycle_count": 2, "bottleneck_detected": True}, fault_id="f27_cycle_1"))
    assert r.fault_id == "f27_cycle_1"
    assert r.subcategory == "structural_general"
    assert r.root_cause == "Circular dependencies detected (2 cycles); Graph bottleneck"
    assert r.affected_components == ["FaultSource.FAZA27_TASKGRAPH", "task_graph", "graph_optimizer"]
    assert r.recommended_actions == [
        "IMMEDIATE ACTION REQUIRED - Consider system takeover",
        "Break circular dependencies",
        "Optimize graph topology",
        "Redistribute bottleneck load",
    ]
    assert r.metadata == {"fault_type": "graph_cycle", "severity": "FaultSeverity.CRITICAL",
                          "source": "FaultSource.FAZA27_TASKGRAPH"}
    assert isinstance(r.timestamp, datetime.datetime) and r.timestamp.tzinfo is None
    assert before - datetime.timedelta(seconds=1) <= r.timestamp <= datetime.datetime.now() + datetime.timedelta(seconds=1)
    # Lists and dicts are built once, so changes stick like on a dataclass.
    r.metadata["note"] = "seen"
    r.affected_components.append("x")
    assert r.metadata["note"] == "seen" and r.affected_components[-1] == "x"


def test_subcategories_match_underscores_in_the_type_and_spaces_in_the_description(engine):
    assert engine.classify_fault(fault("resource_exhaustion")).subcategory == "resource_exhaustion"
    assert engine.classify_fault(fault("x", description="Circular dependency in graph")).subcategory == "circular_dependency"
    assert engine.classify_fault(fault("graph", description="circular_dependency")).subcategory == "structural_general"
    assert engine.classify_fault(fault("graph_bottleneck")).subcategory == "bottleneck"


def test_root_causes_and_recommendations_per_category(engine):
    op = engine.classify_fault(fault("task_timeout", S.HIGH, metrics={"cpu_usage": 0.95, "memory_usage": 0.99, "execution_time": 45}))
    assert op.category is C.OPERATIONAL and op.repair_priority is P.HIGH
    assert op.root_cause == "CPU resource exhaustion; Memory pressure; Task execution timeout"
    assert op.recommended_actions[0] == "Retry failed task with exponential backoff"
    gov = engine.classify_fault(fault("governance_violation", metrics={"governance_violations": 4.0, "override_count": 6}))
    assert gov.root_cause == "4.0 governance violations; Excessive override usage"
    agent = engine.classify_fault(fault("agent_crash", metrics={"agent_failure_rate": 0.4, "cooperation_score": 0.2}))
    assert agent.root_cause == "High agent failure rate; Agent cooperation breakdown"
    assert agent.subcategory == "agent_crash"
    assert agent.affected_components == ["FaultSource.SYSTEM", "agent_execution_loop", "agent_coordinator"]


def test_affected_components_are_ordered_and_deduplicated(engine):
    f = fault("stability_degradation", S.HIGH, "meta_layer", metrics={"stability_score": 0.1})
    assert engine.classify_fault(f).affected_components == ["meta_layer", "feedback_loop", "takeover_manager"]
    f = fault("stability_degradation", S.HIGH, None, metrics={"stability_score": 0.1})
    assert engine.classify_fault(f).affected_components == ["feedback_loop", "meta_layer", "takeover_manager"]


def test_priority_reads_the_severity_value_not_a_substring(engine):
    def priority(sev):
        return engine.classify_fault(fault("queue_overload", sev)).repair_priority

    assert priority(S.CRITICAL) is P.IMMEDIATE
    assert priority("critical") is P.IMMEDIATE
    assert priority("FaultSeverity.CRITICAL") is P.IMMEDIATE
    assert priority(S.HIGH) is P.HIGH
    assert priority("High") is P.HIGH
    assert priority("not critical") is P.MEDIUM
    assert priority("highway") is P.MEDIUM
    assert priority(None) is P.MEDIUM


def test_duck_typed_defaults(engine):
    r = engine.classify_fault(object())
    assert r.category is C.UNKNOWN
    assert r.fault_id.startswith("cls_")
    assert r.metadata == {"fault_type": "unknown", "severity": "unknown", "source": "unknown"}
    assert r.root_cause == "Unknown root cause for unknown"
    partial = engine.classify_fault(Plain(fault_type="queue_overload", fault_id=42))
    assert partial.category is C.OPERATIONAL and partial.fault_id == 42
    assert partial.metadata["severity"] == "unknown"
    ids = {engine.classify_fault(object()).fault_id for _ in range(200)}
    assert len(ids) == 200


def test_canonical_metric_keys_win_over_aliases(engine):
    canonical_low = fault("agent_failure", metrics={"failure_rate": 0.9, "agent_failure_rate": 0.05})
    assert engine.classify_fault(canonical_low).confidence == 0.15
    alias_only = fault("agent_failure", metrics={"failure_rate": 0.9})
    assert engine.classify_fault(alias_only).repair_priority is P.URGENT
    none_canonical = fault("agent_failure", metrics={"agent_failure_rate": None, "failure_rate": 0.9})
    assert engine.classify_fault(none_canonical).repair_priority is P.URGENT


def test_metrics_dicts_with_other_key_types_still_work(engine):
    metrics = {1: "one", ("t",): 2, "cycle_count": 3, "cpu_usage": 0.1}
    r = engine.classify_fault(fault("graph_cycle", metrics=metrics))
    assert r.root_cause == "Circular dependencies detected (3 cycles)"
    big = {f"k{i}": i for i in range(500)}
    big["cycle_count"] = 4
    assert engine.classify_fault(fault("graph_cycle", metrics=big)).root_cause == "Circular dependencies detected (4 cycles)"


def high_scoring(fault_type="graph_cycle", source=SRC.FAZA27_TASKGRAPH, description="graph topology dependency"):
    # cycle, graph, topology, dependency (4 x 0.15) + cycle_count (0.3): about 0.9, above 0.85.
    return fault(fault_type, S.HIGH, source, description, {"cycle_count": 2})


def test_the_cache_keeps_the_real_score_per_type_and_source_value(engine):
    first = engine.classify_fault(high_scoring())
    assert first.confidence > 0.85 and first.confidence != 0.95
    assert engine.get_statistics()["pattern_cache_size"] == 1
    again = engine.classify_fault(high_scoring(description=""))
    assert (again.category, again.confidence) == (C.STRUCTURAL, first.confidence)
    # The source given as its value is the same key; another source is not.
    assert engine.classify_fault(high_scoring(source="faza27_taskgraph", description="")).confidence == first.confidence
    other = engine.classify_fault(high_scoring(source=SRC.SYSTEM, description=""))
    assert other.confidence == 0.15 + 0.15 + 0.3
    engine.clear_cache()
    assert engine.get_statistics()["pattern_cache_size"] == 0
    assert engine.classify_fault(high_scoring(description="")).confidence == 0.15 + 0.15 + 0.3


def test_the_cache_is_bounded(engine):
    for i in range(1100):
        engine.classify_fault(high_scoring(fault_type=f"graph_cycle_{i}"))
    assert engine.get_statistics()["pattern_cache_size"] == 1024


def test_history_is_bounded_and_returns_the_same_objects(engine):
    results = [engine.classify_fault(fault(f"queue_overload_{i}")) for i in range(1005)]
    stats = engine.get_statistics()
    assert stats["total_classifications"] == 1005
    assert stats["history_size"] == 1000
    recent = engine.get_recent_classifications(5)
    assert len(recent) == 5 and all(a is b for a, b in zip(recent, results[-5:]))
    assert engine.get_recent_classifications()[-1] is results[-1]
    assert len(engine.get_recent_classifications()) == 10
    assert engine.get_recent_classifications(0) == []
    assert len(engine.get_recent_classifications(10**30)) == 1000
    with pytest.raises(ValueError, match="limit"):
        engine.get_recent_classifications(-1)
    with pytest.raises(TypeError, match="limit"):
        engine.get_recent_classifications("3")


def test_statistics_are_fresh_dicts_keyed_by_members(engine):
    for f, _, _ in DETECTOR_FAULTS[:5]:
        engine.classify_fault(f)
    stats = engine.get_statistics()
    assert list(stats) == ["total_classifications", "by_category", "by_priority", "avg_confidence",
                           "history_size", "pattern_cache_size"]
    assert list(stats["by_category"]) == list(FaultCategory)
    assert list(stats["by_priority"]) == list(RepairPriority)
    assert stats["by_category"][C.OPERATIONAL] == 3 and stats["by_category"][C.STRUCTURAL] == 2
    assert stats["by_category"][C.UNKNOWN] == 0
    assert stats["by_priority"][P.IMMEDIATE] == 1 and stats["by_priority"][P.DEFERRED] == 0
    mean = 0.0
    for n, c in enumerate([0.15, 0.15, 0.15 + 0.15, 0.15 + 0.15 + 0.3, 0.15 + 0.15 + 0.2], start=1):
        mean = (mean * (n - 1) + c) / n
    assert stats["avg_confidence"] == mean
    stats["by_category"][C.OPERATIONAL] = 999
    assert engine.get_statistics()["by_category"][C.OPERATIONAL] == 3


class Exploding:
    def __getattr__(self, name):
        if name == "severity":
            raise RuntimeError("boom")
        raise AttributeError(name)


class BadBool:
    def __bool__(self):
        raise RuntimeError("no truth")


@pytest.mark.parametrize("bad, error, words", [
    (fault(123), TypeError, "fault.fault_type"),
    (fault("x", description=5), TypeError, "fault.description"),
    (fault("x", metrics=[1, 2]), TypeError, "fault.metrics"),
    (fault("x", metrics={"cpu_usage": float("nan")}), ValueError, "fault.metrics['cpu_usage']"),
    (fault("x", metrics={"cycle_count": float("inf")}), ValueError, "fault.metrics['cycle_count']"),
    (fault("x", metrics={"cycle_count": 2**200}), ValueError, "fault.metrics['cycle_count']"),
    (fault("x", metrics={"cpu_usage": "hot"}), TypeError, "fault.metrics['cpu_usage']"),
    (fault("x", metrics={"cpu_usage": {"nested": {}}}), TypeError, "fault.metrics['cpu_usage']"),
    (fault("x", metrics={"oscillation_detected": BadBool()}), TypeError, "oscillation_detected"),
    (fault("x", severity=BadBool()), TypeError, "fault.severity"),
    (Exploding(), TypeError, "fault.severity"),
    (fault("x\udc80"), ValueError, "fault.fault_type"),
])
def test_bad_input_is_refused_and_the_engine_stays_usable(engine, bad, error, words):
    with pytest.raises(error) as info:
        engine.classify_fault(bad)
    assert words in str(info.value)
    assert engine.get_statistics()["total_classifications"] == 0
    assert engine.classify_fault(DETECTOR_FAULTS[3][0]).category is C.STRUCTURAL


def test_large_and_unusual_inputs(engine):
    huge = fault("queue_overload", description="x" * 10_000_000 + " graph")
    assert engine.classify_fault(huge).category is C.OPERATIONAL
    self_ref = {"cycle_count": 1}
    self_ref["me"] = self_ref
    assert engine.classify_fault(fault("graph_cycle", metrics=self_ref)).category is C.STRUCTURAL
    # Non-ASCII text is lower-cased in full (the Kelvin sign becomes "k").
    assert engine.classify_fault(fault("x", description="netwo\u212ark bottleneck")).category is C.STRUCTURAL
    # A bool counts as a number, as in Python: True > 0.
    assert engine.classify_fault(fault("x", metrics={"cycle_count": True})).root_cause == "Circular dependencies detected (True cycles)"


def test_result_is_dataclass_like():
    r = ClassificationResult("id", C.OPERATIONAL, "sub", 0.5, P.LOW, "why")
    assert r.affected_components == [] and r.recommended_actions == [] and r.metadata == {}
    assert isinstance(r.timestamp, datetime.datetime)
    same = ClassificationResult(fault_id="id", category=C.OPERATIONAL, subcategory="sub", confidence=0.5,
                                repair_priority=P.LOW, root_cause="why", timestamp=r.timestamp)
    assert r == same
    same.confidence = 0.6
    assert r != same
    assert repr(r).startswith("ClassificationResult(fault_id='id', category=<FaultCategory.OPERATIONAL")


def test_history_cycles_are_collected():
    class Marker:
        pass

    engine = ClassificationEngine()
    marker = Marker()
    marker.engine = engine
    result = engine.classify_fault(DETECTOR_FAULTS[0][0])
    result.metadata["marker"] = marker
    ref = weakref.ref(marker)
    del marker, result, engine
    gc.collect()
    assert ref() is None


def test_confidences_are_finite_for_random_faults(engine):
    words = ["graph", "agent", "queue", "policy", "cascade", "risk", "zzz", "timeout", "Error"]
    for i in range(300):
        text = " ".join(words[(i * 7 + k) % len(words)] for k in range(i % 4))
        r = engine.classify_fault(fault(text.replace(" ", "_") or "x", description=text, metrics={"cycle_count": i % 3}))
        assert isinstance(r.category, FaultCategory) and isinstance(r.repair_priority, RepairPriority)
        assert 0.0 <= r.confidence <= 1.0 and math.isfinite(r.confidence)
        assert (r.confidence == 0.0) == (r.category is C.UNKNOWN)


@pytest.mark.skipif(sys.version_info < (3, 10), reason="class patterns need Python 3.10")
def test_results_work_in_class_patterns(engine):
    assert ClassificationResult.__match_args__[:3] == ("fault_id", "category", "subcategory")
    r = engine.classify_fault(DETECTOR_FAULTS[3][0])
    # Compiled at run time, so the module still imports on Python 3.9.
    code = (
        "match r:\n"
        "    case ClassificationResult(fault_id, category, subcategory):\n"
        "        found = (fault_id, category, subcategory)\n"
    )
    scope = {"r": r, "ClassificationResult": ClassificationResult}
    exec(code, scope)
    assert scope["found"] == ("f1", C.STRUCTURAL, "structural_general")


def test_caller_code_may_call_back_into_the_engine(engine):
    class Sneaky:
        def __bool__(self):
            engine.classify_fault(DETECTOR_FAULTS[0][0])
            engine.get_statistics()
            return True

        def __str__(self):
            return "sneaky"

    r = engine.classify_fault(fault("queue_overload", severity=Sneaky()))
    assert r.metadata["severity"] == "sneaky" and r.repair_priority is P.MEDIUM
    assert engine.get_statistics()["total_classifications"] == 2


# ---------------------------------------------------------------- detector faults read directly

from senti_os.core.faza30.detection_engine import DetectionEngine  # noqa: E402

RESULT_FIELDS = ("category", "subcategory", "confidence", "repair_priority", "root_cause",
                 "affected_components", "recommended_actions", "metadata")


def detected_faults():
    """Fresh DetectedFaults of every type the detector emits; no attribute read yet."""
    det = DetectionEngine()
    faults = det.detect_faults(
        {"error_rate": 0.6, "queue_size": 500},
        {"cycle_count": 2, "bottleneck_count": 9},
        {"agent_failure_rate": 0.5, "scheduler_stuck": True},
        {"stability_score": 0.2, "anomaly_rate": 0.9},
        {"violation_count": 12, "takeover_active": True, "risk_score": 95},
    )
    faults += DetectionEngine().detect_faults({"error_rate": 0.4, "cpu_usage": 0.97, "memory_usage": 0.4})
    faults += DetectionEngine().detect_faults(faza29_metrics={"risk_score": 80, "violation_count": 3})
    faults += DetectionEngine().predict_failures([{"error_rate": 0.05 if i < 7 else 0.3} for i in range(12)])
    anomalies = DetectionEngine()
    for i in range(12):
        anomalies.detect_faults({"queue_size": 10 + i % 3, "latency_ms": 5.0 + i % 2})
    faults += anomalies.detect_faults({"queue_size": 11, "latency_ms": 90.0})
    return faults


def plain_copy(f):
    """The same fault as an ordinary object (reading every attribute of `f`)."""
    return Fault(f.fault_id, f.source, f.severity, f.fault_type, f.description, dict(f.metrics))


def fields(r):
    return {name: getattr(r, name) for name in RESULT_FIELDS}


def test_detected_faults_cover_every_detector_type():
    types = {f.fault_type for f in detected_faults()}
    assert types >= {f.fault_type for f, _, _ in DETECTOR_FAULTS}


def test_an_unchanged_detected_fault_classifies_exactly_like_a_plain_object():
    faults = detected_faults()
    direct, generic = ClassificationEngine(), ClassificationEngine()
    # Twice each, so results served from the pattern cache are compared too.
    for round_ in range(2):
        for f in faults:
            r = direct.classify_fault(f)  # before anything reads f's attributes
            p = generic.classify_fault(plain_copy(f))
            assert fields(r) == fields(p), (round_, f.fault_type)
            assert type(r.confidence) is float and r.category is p.category
            assert r.metadata["fault_type"] == f.fault_type
            assert r.fault_id is f.fault_id
            assert isinstance(r.root_cause, str) and r.root_cause
    assert direct.get_statistics() == generic.get_statistics()


def test_a_detected_fault_with_an_assigned_attribute_is_read_from_python():
    det = DetectionEngine()
    (f,) = det.detect_faults(faza27_metrics={"cycle_count": 2})
    engine = ClassificationEngine()
    assert engine.classify_fault(f).repair_priority is P.IMMEDIATE
    f.severity = S.LOW
    f.fault_type = "queue_overload"
    f.description = "orchestrator queue"
    r = engine.classify_fault(f)
    expected = ClassificationEngine().classify_fault(
        fault("queue_overload", S.LOW, SRC.FAZA27_TASKGRAPH, "orchestrator queue", {"cycle_count": 2}, f.fault_id))
    assert fields(r) == fields(expected)
    assert r.metadata == {"fault_type": "queue_overload", "severity": "FaultSeverity.LOW", "source": "FaultSource.FAZA27_TASKGRAPH"}

    (g,) = DetectionEngine().detect_faults(faza27_metrics={"cycle_count": 2})
    g.fault_id = "mine"
    assert engine.classify_fault(g).fault_id == "mine"


def test_a_detected_fault_whose_metrics_dict_changed_is_read_from_python():
    (f,) = DetectionEngine().detect_faults(faza28_metrics={"agent_failure_rate": 0.5})
    engine = ClassificationEngine()
    before = engine.classify_fault(f)
    assert before.repair_priority is P.MEDIUM
    metrics = f.metrics  # the dict is Python's now; changing it must count
    metrics["failure_rate"] = metrics["agent_failure_rate"] = 0.9
    after = engine.classify_fault(f)
    assert after.repair_priority is P.URGENT
    assert fields(after) == fields(ClassificationEngine().classify_fault(plain_copy(f)))
    # A dict now holding something the classifier refuses is refused, as for any object.
    metrics["failure_rate"] = "high"
    with pytest.raises(TypeError, match="failure_rate"):
        engine.classify_fault(f)
