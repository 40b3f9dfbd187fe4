"""Fault detection over the metrics of the FAZA layers.

Rules (layer: key > threshold -> fault_type, severity):

- faza25: ``error_rate`` > 0.3 (or ``1 - task_success_rate`` when ``error_rate`` is absent)
  -> ``high_error_rate``, HIGH above 0.5 else MEDIUM; ``queue_size`` > 100 -> ``queue_overload``,
  MEDIUM; ``cpu_usage`` or ``memory_usage`` > 0.95 -> ``resource_exhaustion``, CRITICAL
  (metrics carry ``resource_type`` and ``usage``).
- faza27: ``cycle_count`` > 0 -> ``graph_cycle``, CRITICAL; ``bottleneck_count`` > 5 (or a truthy
  ``bottleneck_detected`` when the count is absent) -> ``graph_bottleneck``, MEDIUM.
- faza28: ``agent_failure_rate`` > 0.2 -> ``agent_failure``, HIGH; truthy ``scheduler_stuck``
  -> ``scheduler_deadlock``, CRITICAL.
- faza28_5: ``stability_score`` < 0.5 -> ``stability_degradation``, HIGH; ``anomaly_rate`` > 0.4
  (or ``anomaly_count`` >= 5 when the rate is absent) -> ``high_anomaly_rate``, MEDIUM.
- faza29: ``violation_count`` (or ``governance_violations``) > 0 -> ``governance_violation``,
  HIGH; truthy ``takeover_active`` -> ``system_takeover``, CRITICAL; ``risk_score`` > 70 ->
  ``high_risk_score``, HIGH, CRITICAL above 90.

Fault metrics carry the keys classification and repair read (``agent_failure_rate`` next to
``failure_rate``, ``governance_violations`` next to ``violation_count``) and pass through the
targets a repair needs when the layer gives them: ``failed_task_ids``/``task_id``, ``cycles``,
``bottleneck_node``/``graph_complexity``, ``failing_agents``/``agent_id``, ``stuck_task_ids``,
``override_count``.

Every other int or float of a given layer feeds ``DetectionEngine.anomaly_detector`` under the
name ``"<layer>.<key>"`` (``faza25.queue_size``); an anomalous value raises a LOW
``metric_anomaly`` fault for that metric.
"""

import datetime
from collections import deque
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Literal, Mapping, Optional, Sequence, final

from typing_extensions import Buffer, Self

from .enums import FaultSeverity as FaultSeverity
from .enums import FaultSource as FaultSource

__all__ = [
    "DetectionEngine",
    "DetectedFault",
    "AnomalyDetector",
    "DetectionRule",
    "SeriesAnomalies",
    "FaultSeverity",
    "FaultSource",
    "create_detection_engine",
]

_Metrics = Mapping[str, Any]
# A float64 buffer (array('d'), numpy float64, memoryview, bytes of native float64), read in
# place, or a list/tuple of numbers.
_Series = Buffer | Sequence[float]

@final
class DetectedFault:
    """A detected or predicted fault (dataclass-like: keyword constructor, ``==``, repr).

    ``timestamp`` is when the condition was first detected; ``description`` and ``metrics``
    follow the latest observation of a persisting condition.
    """

    fault_id: str
    source: FaultSource
    severity: FaultSeverity
    fault_type: str
    description: str
    metrics: Dict[str, Any]
    timestamp: datetime.datetime
    predicted: bool
    __match_args__ = (
        "fault_id",
        "source",
        "severity",
        "fault_type",
        "description",
        "metrics",
        "timestamp",
        "predicted",
    )
    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __new__(
        cls,
        fault_id: str,
        source: FaultSource,
        severity: FaultSeverity,
        fault_type: str,
        description: str,
        metrics: Optional[Dict[str, Any]] = None,
        timestamp: Optional[datetime.datetime] = None,
        predicted: Optional[bool] = None,
    ) -> Self: ...
    def to_dict(self) -> Dict[str, Any]:
        """Enum values, the ISO timestamp, and the ``metrics`` dict itself."""

@final
class AnomalyDetector:
    """Flags a value far from its metric's recent values.

    ``method``: ``"zscore"`` (default; ``|x - mean| / std`` over the window, population std),
    ``"mad"`` (``0.6745 * |x - median| / MAD``, robust to earlier outliers) or ``"ewma"``
    (exponentially weighted mean and variance, ``alpha = 2 / (window_size + 1)``). The first
    ``window_size // 2`` values of a metric are never anomalous, nor is any value while the
    spread is 0. ``window_size`` is 2..10000, ``threshold`` finite and > 0 (else ValueError).
    At most ``max_metrics`` metric names are kept; the least recently used eighth is evicted
    when full. Metric names are at most 1024 bytes.
    """

    def __new__(
        cls,
        window_size: int = 20,
        threshold: float = 3.0,
        *,
        method: Literal["zscore", "mad", "ewma"] = "zscore",
        max_metrics: int = 10000,
    ) -> Self: ...
    window_size: int
    threshold: float
    @property
    def method(self) -> str: ...
    @property
    def max_metrics(self) -> int: ...
    @property
    def history(self) -> Dict[str, deque[float]]:
        """A copy: each metric's recent values, metrics in first-seen order."""
    def detect_anomaly(self, metric_name: str, value: float) -> bool: ...
    def detect_series(
        self,
        values: _Series,
        *,
        method: Optional[Literal["zscore", "mad", "ewma"]] = None,
        window_size: Optional[int] = None,
        threshold: Optional[float] = None,
    ) -> SeriesAnomalies:
        """Scores a whole series as a new detector with these settings would, one value at a
        time; stores nothing. Keywords override the detector's settings for this call. NaN or
        infinity: ValueError naming its position. The GIL is released while scoring."""
    def detect_batch(self, names: Sequence[str], series: Sequence[_Series]) -> List[SeriesAnomalies]:
        """Feeds ``series[k]`` to metric ``names[k]``, in order, as ``detect_anomaly`` would;
        one result per name. Bad input anywhere raises before anything is recorded."""
    def observe_many(self, observations: Mapping[str, float] | Iterable[tuple[str, float]]) -> List[str]:
        """One value per metric, observed in order; returns the names whose value was
        anomalous. Bad input anywhere raises before anything is recorded."""
    def clear(self) -> None: ...
    def __len__(self) -> int: ...

@final
class SeriesAnomalies:
    """The anomalies of one series: ``count`` values scored, ``anomalies`` flagged at
    ``indices`` (ascending); ``flags`` has one byte per value, 1 where anomalous."""

    @property
    def count(self) -> int: ...
    @property
    def anomalies(self) -> int: ...
    @property
    def indices(self) -> List[int]: ...
    @property
    def flags(self) -> bytes: ...
    @property
    def method(self) -> str: ...
    @property
    def window_size(self) -> int: ...
    @property
    def threshold(self) -> float: ...

@final
class DetectionRule:
    """One rule of ``DetectionEngine.detection_rules``: call it on one layer's metrics dict to
    get the fault it raises (new and untracked) or None."""

    @property
    def name(self) -> str: ...
    @property
    def layer(self) -> str:
        """The ``detect_faults`` parameter whose metrics the rule reads."""
    def __call__(self, metrics: Optional[_Metrics]) -> Optional[DetectedFault]: ...

@final
class DetectionEngine:
    """Detects deduplicated faults in the metrics of the FAZA layers.

    A persisting condition (a rule at one severity, or an anomalous metric) is ONE active fault,
    returned as the same object with the same id, until it clears: when its layer's metrics are
    given (a non-empty dict) without it, when it has not been seen for
    ``active_window_seconds`` (300 by default, the reference's window), or through
    ``clear_resolved_faults``. A severity change clears the old fault and opens a new one.

    Bounds: one active fault per (rule, severity), 256 active anomaly faults, 1000 faults in
    ``fault_history``, and the anomaly detector's own cap.
    """

    def __new__(cls, *, active_window_seconds: float = 300.0) -> Self: ...
    anomaly_detector: AnomalyDetector
    @property
    def detected_faults(self) -> List[DetectedFault]:
        """The active faults (a new list)."""
    @property
    def fault_history(self) -> List[DetectedFault]:
        """The last 1000 faults detected, oldest first, cleared ones included (a new list)."""
    @property
    def detection_rules(self) -> Dict[str, Callable[[_Metrics], Optional[DetectedFault]]]: ...
    @property
    def stats(self) -> Dict[str, int]:
        """A copy of the counters (the keys of ``get_statistics`` up to ``predictions_made``,
        then ``total_detections``)."""
    @property
    def active_window_seconds(self) -> float: ...
    def detect_faults(
        self,
        faza25_metrics: Optional[_Metrics] = None,
        faza27_metrics: Optional[_Metrics] = None,
        faza28_metrics: Optional[_Metrics] = None,
        faza28_5_metrics: Optional[_Metrics] = None,
        faza29_metrics: Optional[_Metrics] = None,
    ) -> List[DetectedFault]:
        """The faults present in the given layers, persisting ones as the same objects.

        Raises TypeError for a layer that is not a dict (naming the parameter) or a rule key
        holding something that is not a number (naming the key), ValueError for NaN,
        infinities, integers beyond 64 bits and containers that are self-referencing or
        nested too deep. A failed call changes nothing.
        """
    def predict_failures(self, metrics_history: Sequence[_Metrics]) -> List[DetectedFault]:
        """A ``predicted_error_spike`` fault when the mean error rate of the last 5 of the last
        10 entries is above 1.5 times that of the 5 before and above 0.1. Not tracked."""
    def get_active_faults(self) -> List[DetectedFault]: ...
    def get_critical_faults(self) -> List[DetectedFault]: ...
    def clear_resolved_faults(self, fault_ids: Iterable[str]) -> int:
        """Closes the active faults with these ids (a list, tuple or set of str); returns how
        many were closed. A condition that persists is detected again as a new fault."""
    def get_statistics(self) -> Dict[str, int]:
        """``faults_detected`` (each new fault once), ``critical_faults``, ``high_faults``,
        ``medium_faults``, ``low_faults``, ``anomalies_detected`` (anomalous values seen during
        detection), ``predictions_made``, ``active_faults``, ``critical_active`` and
        ``total_detections`` (the number of ``detect_faults`` passes run). O(active faults)."""

def create_detection_engine() -> DetectionEngine: ...
