"""Detect faults in one snapshot of layer metrics, classify them and score health.

Run: python docs/examples/01_detect_and_classify.py
Uses only the engines; nothing is repaired and nothing is written to disk.
"""

from senti_os.core.faza30 import (
    FaultCategory,
    FaultSeverity,
    RepairPriority,
    create_classification_engine,
    create_detection_engine,
    create_health_engine,
)

# One reading of each layer, keyed with the canonical metric names (docs/integration_layer.md).
metrics = {
    "faza25_metrics": {"queue_size": 140, "error_rate": 0.55, "failed_task_ids": ["t7", "t9"]},
    "faza27_metrics": {"cycle_count": 1, "cycles": [["fetch", "parse", "fetch"]]},
    "faza28_metrics": {"agent_failure_rate": 0.05},
    "faza28_5_metrics": {"stability_score": 0.9},
    "faza29_metrics": {"risk_score": 95},
}

detection = create_detection_engine()
classification = create_classification_engine()
health = create_health_engine()

faults = detection.detect_faults(**metrics)
for fault in faults:
    result = classification.classify_fault(fault)
    print(f"{fault.fault_type:<16} {fault.severity.value:<8} -> {result.category.value:<16} "
          f"priority={result.repair_priority.value}")

by_type = {f.fault_type: f for f in faults}
assert set(by_type) == {"high_error_rate", "queue_overload", "graph_cycle", "high_risk_score"}
assert by_type["high_error_rate"].severity is FaultSeverity.HIGH  # error_rate above 0.5
assert by_type["graph_cycle"].severity is FaultSeverity.CRITICAL
assert by_type["high_risk_score"].severity is FaultSeverity.CRITICAL  # risk above 90
# The targets a repair needs travel with the fault.
assert by_type["high_error_rate"].metrics["failed_task_ids"] == ["t7", "t9"]

cycle = classification.classify_fault(by_type["graph_cycle"])
assert cycle.category is FaultCategory.STRUCTURAL
assert cycle.repair_priority is RepairPriority.IMMEDIATE

# A persisting condition stays one fault: the same object, with the same id.
again = detection.detect_faults(**metrics)
assert {f.fault_id for f in again} == {f.fault_id for f in faults}
assert detection.get_statistics()["faults_detected"] == 4
assert detection.get_statistics()["total_detections"] == 2

# A layer given without the condition clears it.
detection.detect_faults(faza27_metrics={"cycle_count": 0})
assert "graph_cycle" not in {f.fault_type for f in detection.get_active_faults()}

# Health: six weighted components, 0-100. record=False scores without adding to the trend.
score = health.compute_health_score(**metrics, record=False)
print(f"health {score.overall_score:.1f} ({score.level.value}), "
      f"lowest component: {score.metadata['lowest_component']}")
assert 0.0 <= score.overall_score < 100.0
assert health.get_statistics()["total_scores_computed"] == 0

# Bad input is refused with the key named, and nothing is recorded.
try:
    detection.detect_faults(faza25_metrics={"error_rate": "high"})
except TypeError as err:
    print(f"refused: {err}")
    assert "error_rate" in str(err)
else:
    raise AssertionError("a non-numeric error_rate must raise TypeError")
