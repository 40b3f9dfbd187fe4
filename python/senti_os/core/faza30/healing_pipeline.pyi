"""The healing pipeline: twelve stages from detection to report."""

from datetime import datetime
from typing import Any, Awaitable, Callable, ClassVar, Dict, List, Mapping, Optional, Sequence, Union, final

from typing_extensions import Self

from .enums import HealingOutcome as HealingOutcome
from .enums import HealingStage as HealingStage

__all__ = [
    "HealingPipeline",
    "HealingStage",
    "HealingOutcome",
    "HealingResult",
    "HealingContext",
    "create_healing_pipeline",
]

_Metrics = Optional[Dict[str, Any]]
# A dict for the repair engines, or a zero-argument callable returning one.
_RepairContext = Union[Dict[str, Any], Callable[[], Optional[Dict[str, Any]]]]
# Returns the five layer dicts: keyed faza25_metrics... (or faza25...), or a sequence of five.
_MetricsProvider = Callable[[], Union[Mapping[str, _Metrics], Sequence[_Metrics], Awaitable[Any]]]

@final
class HealingContext:
    """What one cycle worked with and produced. ``faults``, ``classifications``, ``repairs``,
    ``stage_results``, ``metadata`` and ``timestamp`` are built when first read."""

    __match_args__ = (
        "cycle_id",
        "faults",
        "classifications",
        "repairs",
        "snapshot_id",
        "health_before",
        "health_after",
        "stage_results",
        "metadata",
        "timestamp",
    )
    __hash__: ClassVar[None]  # type: ignore[assignment]
    cycle_id: str
    faults: List[Any]
    classifications: List[Any]
    # One RepairResult per repaired fault, in fault order (matched by fault, not position).
    repairs: List[Any]
    snapshot_id: Optional[str]
    health_before: float
    health_after: float
    stage_results: Dict[HealingStage, Dict[str, Any]]
    # repair_strategies: [{fault_id, engine, category}]; error ("Type: message") and
    # failed_stage when a stage failed; dry_run, forced, event_errors when they apply.
    metadata: Dict[str, Any]
    timestamp: datetime
    def __new__(
        cls,
        cycle_id: str,
        faults: Optional[List[Any]] = None,
        classifications: Optional[List[Any]] = None,
        repairs: Optional[List[Any]] = None,
        snapshot_id: Optional[str] = None,
        health_before: Optional[float] = None,
        health_after: Optional[float] = None,
        stage_results: Optional[Dict[HealingStage, Dict[str, Any]]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        timestamp: Optional[datetime] = None,
    ) -> Self: ...

@final
class HealingResult:
    """The outcome of one healing cycle. ``health_improvement`` is ``health_after -
    health_before`` (0.0 when the cycle stopped before its health check)."""

    __match_args__ = (
        "cycle_id",
        "outcome",
        "faults_detected",
        "faults_repaired",
        "health_improvement",
        "duration",
        "stages_completed",
        "rollback_performed",
        "context",
        "timestamp",
    )
    __hash__: ClassVar[None]  # type: ignore[assignment]
    cycle_id: str
    outcome: HealingOutcome
    faults_detected: int
    # Repairs that ended SUCCESS and that fresh metrics, when given, do not contradict.
    faults_repaired: int
    health_improvement: float
    duration: float
    stages_completed: List[HealingStage]
    # True only when a restore put something back.
    rollback_performed: bool
    context: HealingContext
    timestamp: datetime
    def __new__(
        cls,
        cycle_id: str,
        outcome: HealingOutcome,
        faults_detected: int,
        faults_repaired: int,
        health_improvement: float,
        duration: float,
        stages_completed: List[HealingStage],
        rollback_performed: bool,
        context: HealingContext,
        timestamp: Optional[datetime] = None,
    ) -> Self: ...

@final
class HealingPipeline:
    """Runs healing cycles: detect, classify, snapshot, select a strategy, prepare, repair,
    verify, check health, roll back when health declined, stabilize, learn, report.

    The engines may be this package's or any objects with the reference's method names.
    ``repair_context`` is handed to the repair engines (``classification`` set per fault);
    ``metrics_provider`` is called after the repairs, and verification and ``health_after``
    come from its fresh metrics (without it health is not measured again: ``health_after``
    equals ``health_before``); ``event_hooks`` receives the events of each stage; ``dry_run``
    plans and reports without acting; ``stabilize_seconds`` is stage 10's wait;
    ``history_size`` cycle results are kept; ``callback_timeout`` bounds each callback on the
    async path. Strategy selection prefers, among the engines that claim a fault, the best
    learned record for its fault type, score ``(successes + 0.5*partials + 1) / (attempts + 2)``,
    ties to the engine listed first. Cycles on one pipeline do not overlap (RuntimeError).
    """

    detection_engine: Any
    classification_engine: Any
    repair_engines: Dict[str, Any]
    snapshot_manager: Optional[Any]
    health_engine: Optional[Any]
    event_hooks: Optional[Any]
    repair_context: Optional[_RepairContext]
    metrics_provider: Optional[_MetricsProvider]
    dry_run: bool
    stabilize_seconds: float
    callback_timeout: float
    @property
    def history_size(self) -> int: ...
    def __new__(
        cls,
        detection_engine: Any,
        classification_engine: Any,
        repair_engines: Optional[Dict[str, Any]],
        snapshot_manager: Optional[Any] = None,
        health_engine: Optional[Any] = None,
        *,
        repair_context: Optional[_RepairContext] = None,
        metrics_provider: Optional[_MetricsProvider] = None,
        event_hooks: Optional[Any] = None,
        dry_run: bool = False,
        stabilize_seconds: float = 0.0,
        history_size: int = 1000,
        callback_timeout: float = 30.0,
    ) -> Self: ...
    def execute_healing_cycle(
        self,
        faza25_metrics: _Metrics = None,
        faza27_metrics: _Metrics = None,
        faza28_metrics: _Metrics = None,
        faza28_5_metrics: _Metrics = None,
        faza29_metrics: _Metrics = None,
        *,
        dry_run: Optional[bool] = None,
        stabilize_seconds: Optional[float] = None,
        repair_context: Optional[_RepairContext] = None,
        metrics_provider: Optional[_MetricsProvider] = None,
    ) -> HealingResult:
        """Runs one cycle. A metric argument that is not a dict or None raises TypeError naming
        it, a value detection cannot read raises TypeError/ValueError; nothing is recorded
        then. Every other failure is recorded in the result (FAILED, ``metadata["error"]``)."""
    def execute_healing_cycle_async(
        self,
        faza25_metrics: _Metrics = None,
        faza27_metrics: _Metrics = None,
        faza28_metrics: _Metrics = None,
        faza28_5_metrics: _Metrics = None,
        faza29_metrics: _Metrics = None,
        *,
        dry_run: Optional[bool] = None,
        stabilize_seconds: Optional[float] = None,
        repair_context: Optional[_RepairContext] = None,
        metrics_provider: Optional[_MetricsProvider] = None,
    ) -> Awaitable[HealingResult]:
        """The cycle as an awaitable (call it inside a running event loop): it runs on the
        engine's runtime and every callback runs on this loop, coroutines awaited."""
    def get_statistics(self) -> Dict[str, Any]:
        """total_cycles, successful_cycles, failed_cycles, rollback_cycles, avg_duration,
        avg_health_improvement, partial_cycles, skipped_cycles (the five outcome counters add
        up to total_cycles), dry_run_cycles, history_size, learned_pairs."""
    def get_recent_cycles(self, limit: int = 10) -> List[HealingResult]:
        """The newest ``limit`` results, newest first (0 gives none; negative is ValueError)."""
    def get_learning_table(self) -> List[Dict[str, Any]]:
        """One dict per (fault_type, engine): attempts, successes, partials, failures, skipped,
        success_rate, score."""
    def reset_learning(self) -> None: ...
    def is_running(self) -> bool: ...

def create_healing_pipeline(
    detection_engine: Any,
    classification_engine: Any,
    repair_engines: Optional[Dict[str, Any]],
    snapshot_manager: Optional[Any] = None,
    health_engine: Optional[Any] = None,
    *,
    repair_context: Optional[_RepairContext] = None,
    metrics_provider: Optional[_MetricsProvider] = None,
    event_hooks: Optional[Any] = None,
    dry_run: bool = False,
    stabilize_seconds: float = 0.0,
    history_size: int = 1000,
    callback_timeout: float = 30.0,
) -> HealingPipeline: ...
