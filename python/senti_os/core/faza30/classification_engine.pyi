"""Fault classification: five categories, a confidence, a repair priority, a root cause and
recommended actions for each detected fault."""

from datetime import datetime
from typing import Any, ClassVar, Dict, List, Optional, final

from .enums import FaultCategory as FaultCategory
from .enums import RepairPriority as RepairPriority

__all__ = [
    "ClassificationEngine",
    "ClassificationResult",
    "FaultCategory",
    "RepairPriority",
    "create_classification_engine",
]

@final
class ClassificationResult:
    """How one fault was classified. Fields other than ``fault_id``, ``category`` and
    ``repair_priority`` are built when first read, then kept (changes to them stick)."""

    __match_args__ = (
        "fault_id",
        "category",
        "subcategory",
        "confidence",
        "repair_priority",
        "root_cause",
        "affected_components",
        "recommended_actions",
        "timestamp",
        "metadata",
    )
    __hash__: ClassVar[None]  # type: ignore[assignment]
    fault_id: Any
    category: FaultCategory
    subcategory: str
    confidence: float
    repair_priority: RepairPriority
    root_cause: str
    affected_components: List[str]
    recommended_actions: List[str]
    timestamp: datetime
    metadata: Dict[str, Any]
    def __new__(
        cls,
        fault_id: Any,
        category: FaultCategory,
        subcategory: str,
        confidence: float,
        repair_priority: RepairPriority,
        root_cause: str,
        affected_components: Optional[List[str]] = None,
        recommended_actions: Optional[List[str]] = None,
        timestamp: Optional[datetime] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> ClassificationResult: ...

@final
class ClassificationEngine:
    """Classifies faults by keywords in their type and description and by their metrics.

    A fault is any object; these attributes are read, with these defaults when missing:
    ``fault_type`` ("unknown"), ``severity`` (None), ``source`` (None), ``description`` ("")
    and ``metrics`` ({}), plus ``fault_id`` (a new ``cls_<time>`` id).

    Metric keys read from ``fault.metrics`` (aliases in brackets are read when the key is
    missing or None): execution_time, error_count, cpu_usage [cpu], memory_usage [memory],
    cycle_count, graph_complexity, bottleneck_detected [bottleneck_count, non-zero means
    detected], agent_failure_rate [failure_rate], cooperation_score, agent_anomaly_detected,
    governance_violations [violation_count], policy_drift, override_count, stability_score,
    oscillation_detected, cascade_risk. Flags (``*_detected``) are read for truthiness; the
    others must be numbers (bools count as 0/1).

    A fault matching nothing is ``FaultCategory.UNKNOWN`` with confidence 0.0. Priority follows
    the severity's value (a ``FaultSeverity`` or its value string, any case).

    Bounds: the history keeps the newest 1000 results; the pattern cache keeps 1024
    (fault type, source) patterns scored above 0.85, least recently used first out, and does
    not cache fault types or sources longer than 256 bytes.

    Raises TypeError for attributes or metrics of the wrong type and ValueError for NaN,
    infinities or integers beyond 64 bits, naming the attribute or key; nothing is recorded
    then.
    """

    def __new__(cls) -> ClassificationEngine: ...
    def classify_fault(self, fault: Any) -> ClassificationResult: ...
    def get_statistics(self) -> Dict[str, Any]:
        """``total_classifications``, ``by_category`` and ``by_priority`` (fresh dicts keyed by
        every enum member), ``avg_confidence``, ``history_size``, ``pattern_cache_size``."""
    def get_recent_classifications(self, limit: int = 10) -> List[ClassificationResult]:
        """The newest ``limit`` results, oldest first: the objects ``classify_fault`` returned.
        0 gives ``[]``; a negative limit raises ValueError."""
    def clear_cache(self) -> None: ...

def create_classification_engine() -> ClassificationEngine: ...
