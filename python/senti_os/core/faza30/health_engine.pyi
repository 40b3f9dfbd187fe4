"""System health: a 0-100 score from six weighted components, and its trend."""

from datetime import datetime
from typing import Any, ClassVar, Dict, List, Optional, final

from .enums import HealthLevel as HealthLevel
from .enums import TrendDirection as TrendDirection

__all__ = [
    "HealthEngine",
    "HealthScore",
    "HealthTrend",
    "HealthComponent",
    "HealthLevel",
    "TrendDirection",
    "create_health_engine",
]

@final
class HealthComponent:
    __match_args__ = ("name", "score", "weight", "details")
    __hash__: ClassVar[None]  # type: ignore[assignment]
    name: str
    score: float
    weight: float
    details: Dict[str, Any]
    def __new__(cls, name: str, score: float, weight: float, details: Optional[Dict[str, Any]] = None) -> HealthComponent: ...

@final
class HealthScore:
    """A health score. ``components``, ``timestamp`` and ``metadata`` are built when first read.
    Scores are not ordered (``<`` raises TypeError)."""

    __match_args__ = ("overall_score", "level", "components", "timestamp", "metadata")
    __hash__: ClassVar[None]  # type: ignore[assignment]
    overall_score: float
    level: HealthLevel
    components: List[HealthComponent]
    timestamp: datetime
    metadata: Dict[str, Any]
    def __new__(
        cls,
        overall_score: float,
        level: HealthLevel,
        components: Optional[List[HealthComponent]] = None,
        timestamp: Optional[datetime] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> HealthScore: ...

@final
class HealthTrend:
    __match_args__ = (
        "direction",
        "slope",
        "confidence",
        "window_size",
        "recent_scores",
        "prediction",
        "timestamp",
    )
    __hash__: ClassVar[None]  # type: ignore[assignment]
    direction: TrendDirection
    slope: float
    confidence: float
    window_size: int
    recent_scores: List[float]
    prediction: float
    timestamp: datetime
    def __new__(
        cls,
        direction: TrendDirection,
        slope: float,
        confidence: float,
        window_size: int,
        recent_scores: Optional[List[float]] = None,
        prediction: Optional[float] = None,
        timestamp: Optional[datetime] = None,
    ) -> HealthTrend: ...

@final
class HealthEngine:
    """Scores system health and analyses its trend.

    ``history_size`` (an int, at least 1; default 100) is how many overall scores are kept.
    """

    @property
    def history_size(self) -> int: ...
    @property
    def _component_weights(self) -> Dict[str, float]:
        """The six component weights in scoring order (a new dict each time; they sum to 1.0)."""
    def __new__(cls, history_size: int = 100) -> HealthEngine: ...
    def compute_health_score(
        self,
        faza25_metrics: Optional[Dict[str, Any]] = None,
        faza27_metrics: Optional[Dict[str, Any]] = None,
        faza28_metrics: Optional[Dict[str, Any]] = None,
        faza28_5_metrics: Optional[Dict[str, Any]] = None,
        faza29_metrics: Optional[Dict[str, Any]] = None,
        faza30_metrics: Optional[Dict[str, Any]] = None,
        *,
        record: bool = True,
    ) -> HealthScore:
        """Scores the six components (each 100 minus deductions, clamped to 0-100) and sums
        them by weight, in order. Canonical keys per argument; an alias in brackets is read when
        its key is missing or None:

        - faza25_metrics (weight 0.20): queue_size, task_success_rate (0-1) [error_rate, read
          as 1 - error_rate], scheduler_efficiency (0-1), cpu_usage (0-1)
        - faza27_metrics (0.20): graph_complexity, cycle_count, bottleneck_detected (flag)
          [bottleneck_count, non-zero means detected], optimization_score (0-1)
        - faza28_metrics (0.20): agent_failure_rate (0-1) [failure_rate], cooperation_score,
          agent_performance, communication_health (0-1 each)
        - faza28_5_metrics (0.15): stability_score, policy_effectiveness (0-1), anomaly_count,
          feedback_health (0-1)
        - faza29_metrics (0.15): governance_violations [violation_count], takeover_active
          (flag), override_count, risk_score (0-100)
        - faza30_metrics (0.10): active_faults, repair_success_rate (0-1), critical_faults,
          failed_healing_cycles

        Missing keys and None values mean "no deduction". Flags are read for truthiness; other
        values must be numbers (bools count as 0/1). Wrong types raise TypeError and NaN,
        infinities or integers beyond 64 bits ValueError, naming the key; nothing is recorded
        then. ``details["metrics"]`` of each component is the dict passed (a new ``{}`` for
        None or an empty dict).
        """
    def analyze_trend(self, window_size: int = 10) -> HealthTrend:
        """A least-squares trend over the newest ``window_size`` scores (0 analyses none; a
        negative window raises ValueError). VOLATILE when 3 or more scores vary by more than 100
        (population variance), else STABLE below |slope| 0.5, else IMPROVING or DECLINING.
        ``prediction`` is the latest score plus the slope, clamped to 0-100; with fewer than two
        scores the trend is STABLE with slope 0.0 and predicts the latest score (100.0 with no
        history). ``window_size`` on the result is the number of scores analysed."""
    def get_statistics(self) -> Dict[str, Any]:
        """``total_scores_computed``, ``avg_health``, ``min_health``, ``max_health``,
        ``history_size`` (scores held), ``current_trend`` (the default trend's direction value)
        and ``trend_slope``."""
    def get_health_history(self, limit: int = 50) -> List[float]:
        """The newest ``limit`` overall scores, oldest first (0 gives ``[]``; negative raises
        ValueError)."""

def create_health_engine(history_size: int = 100) -> HealthEngine: ...
