"""Repairs: four engines plan real actions on the FAZA layers, run them through the caller's
context and verify the result by measuring again. ``RepairStrategy`` is the base to subclass.

A fault is any object (or dict) with ``fault_id``, ``fault_type`` and ``metrics``, such as a
``DetectedFault``. The context is a dict or None. Its layer keys (``task_graph``,
``agent_manager``, ``agent_executor``, ``scheduler``, ``orchestrator``, ``meta_layer``,
``governance_controller``, plus ``state_context`` for agent restarts) give the FAZA objects a
repair may act on; ``classification`` feeds ``can_repair``; ``verify`` is a callable
``verify(fault)`` returning a bool or fresh metrics; ``actions`` maps verbs to callables that
take keyword arguments and are preferred over the layers' own methods: ``break_cycle(src, dst,
cycle)``, ``reset_scheduler()``, ``relieve_bottleneck(node)``, ``simplify_graph()``,
``restart_agent(name)``, ``isolate_agent(name)``, ``reset_cooperation()``,
``flush_messages()``, ``reset_meta_state()``, ``retry_task(task_id)``, ``cancel_task(task_id)``,
``shed_load(resource, current, limit)``, ``reprioritize_queue()``,
``governance_escalate(reason, score)``, ``reset_overrides()``, ``request_recovery()``,
``adjust_threshold(name, current, limit)``, ``resolve_rule_conflict()``. An action returning
False declines.
"""

from abc import abstractmethod
from datetime import datetime
from typing import Any, Callable, ClassVar, Dict, List, Optional, final

from typing_extensions import Self, disjoint_base

from .enums import RepairStatus as RepairStatus

__all__ = [
    "RepairStrategy",
    "GraphRepairEngine",
    "AgentRepairEngine",
    "SchedulerRepairEngine",
    "GovernanceRepairEngine",
    "RepairResult",
    "RepairStatus",
    "create_graph_repair_engine",
    "create_agent_repair_engine",
    "create_scheduler_repair_engine",
    "create_governance_repair_engine",
]

_Context = Optional[Dict[str, Any]]
# A callable returning seconds (monotonic), used for budget windows.
_Clock = Callable[[], float]

@final
class RepairResult:
    """The outcome of one repair (dataclass-like: keyword constructor, ``==``, repr)."""

    __match_args__ = (
        "fault_id",
        "status",
        "actions_taken",
        "success_rate",
        "duration",
        "side_effects",
        "verification_passed",
        "metadata",
        "timestamp",
    )
    __hash__: ClassVar[None]  # type: ignore[assignment]
    fault_id: str
    status: RepairStatus
    actions_taken: List[str]
    success_rate: float
    duration: float
    side_effects: List[str]
    verification_passed: bool
    metadata: Dict[str, Any]
    timestamp: datetime
    def __new__(
        cls,
        fault_id: str,
        status: RepairStatus,
        actions_taken: Optional[List[str]] = None,
        success_rate: Optional[float] = None,
        duration: Optional[float] = None,
        side_effects: Optional[List[str]] = None,
        verification_passed: Optional[bool] = None,
        metadata: Optional[Dict[str, Any]] = None,
        timestamp: Optional[datetime] = None,
    ) -> Self:
        """Left-out (or None) fields default to ``[]``, 0.0, 0.0, ``[]``, False, ``{}`` and
        ``datetime.now()``."""

@disjoint_base
class RepairStrategy:
    """The base of the repair engines. A Python subclass implements ``can_repair`` and
    ``repair`` (instantiating a class that lacks either raises TypeError) and may call
    ``self._update_statistics(result)`` to record its results."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self: ...
    @abstractmethod
    def can_repair(self, fault: Any, context: _Context = None) -> bool: ...
    @abstractmethod
    def repair(self, fault: Any, context: _Context = None) -> RepairResult: ...
    def verify_repair(self, fault: Any, result: RepairResult, context: _Context = None) -> bool:
        """False unless ``result.status`` is SUCCESS; then a fresh measurement through the
        context decides when one is possible, else ``result.verification_passed``."""
    def get_statistics(self) -> Dict[str, Any]:
        """``total_repairs``, ``successful_repairs``, ``failed_repairs``, ``partial_repairs``,
        ``skipped_repairs`` (they add up to the total), ``avg_duration``, ``success_rate``,
        ``history_size``, ``actions_run``, ``actions_failed`` and ``budget_targets``."""
    def get_repair_history(self, limit: int = 10) -> List[Dict[str, Any]]:
        """The newest ``limit`` repairs, oldest first: ``fault_id``, ``fault_type``, ``status``,
        ``duration``, ``timestamp``, ``handler`` and ``actions``. A negative limit raises
        ValueError."""
    def get_budgets(self) -> Dict[str, Dict[str, Any]]:
        """Per target (``agent:<name>``, ``task:<id>``): ``attempts``, ``max_attempts``,
        ``seconds_since_last`` and ``exhausted``."""
    def reset_budgets(self, target: Optional[str] = None) -> int:
        """Forgets one target's budget, or all of them; returns how many were removed."""
    def _update_statistics(self, result: RepairResult) -> None:
        """Records a result made by a subclass in the statistics and the history."""

# The four engines take the same keyword-only settings: ``max_attempts`` (0 to 1000, default 3)
# restarts or retries per target before escalating; a target's budget resets after
# ``quiet_period`` seconds (default 600.0) without a fault; ``history_size`` (1 to 1000000,
# default 1000) repairs are kept; ``clock`` replaces the monotonic clock. ``repair`` plans, runs
# and verifies with what the context offers: an action that raises or declines makes the result
# FAILED (the error in ``metadata["error"]``); KeyboardInterrupt and SystemExit propagate.

class GraphRepairEngine(RepairStrategy):
    """Repairs the task graph: breaks cycles at their weakest edge, resolves deadlocks, relieves
    bottlenecks."""

    def __new__(
        cls,
        *,
        max_attempts: int = ...,
        quiet_period: float = ...,
        history_size: int = ...,
        clock: Optional[_Clock] = None,
    ) -> Self: ...
    def can_repair(self, fault: Any, context: _Context = None) -> bool: ...
    def repair(self, fault: Any, context: _Context = None) -> RepairResult: ...

class AgentRepairEngine(RepairStrategy):
    """Repairs agents: restarts a failing agent within its budget, then isolates it; damps the
    meta layer."""

    def __new__(
        cls,
        *,
        max_attempts: int = ...,
        quiet_period: float = ...,
        history_size: int = ...,
        clock: Optional[_Clock] = None,
    ) -> Self: ...
    def can_repair(self, fault: Any, context: _Context = None) -> bool: ...
    def repair(self, fault: Any, context: _Context = None) -> RepairResult: ...

class SchedulerRepairEngine(RepairStrategy):
    """Repairs scheduling: retries failed tasks within their budget, sheds load, resets a stuck
    scheduler."""

    def __new__(
        cls,
        *,
        max_attempts: int = ...,
        quiet_period: float = ...,
        history_size: int = ...,
        clock: Optional[_Clock] = None,
    ) -> Self: ...
    def can_repair(self, fault: Any, context: _Context = None) -> bool: ...
    def repair(self, fault: Any, context: _Context = None) -> RepairResult: ...

class GovernanceRepairEngine(RepairStrategy):
    """Repairs governance: escalates violations and risk, clears override abuse, requests
    takeover recovery."""

    def __new__(
        cls,
        *,
        max_attempts: int = ...,
        quiet_period: float = ...,
        history_size: int = ...,
        clock: Optional[_Clock] = None,
    ) -> Self: ...
    def can_repair(self, fault: Any, context: _Context = None) -> bool: ...
    def repair(self, fault: Any, context: _Context = None) -> RepairResult: ...

def create_graph_repair_engine(
    *,
    max_attempts: int = ...,
    quiet_period: float = ...,
    history_size: int = ...,
    clock: Optional[_Clock] = None,
) -> GraphRepairEngine: ...

def create_agent_repair_engine(
    *,
    max_attempts: int = ...,
    quiet_period: float = ...,
    history_size: int = ...,
    clock: Optional[_Clock] = None,
) -> AgentRepairEngine: ...

def create_scheduler_repair_engine(
    *,
    max_attempts: int = ...,
    quiet_period: float = ...,
    history_size: int = ...,
    clock: Optional[_Clock] = None,
) -> SchedulerRepairEngine: ...

def create_governance_repair_engine(
    *,
    max_attempts: int = ...,
    quiet_period: float = ...,
    history_size: int = ...,
    clock: Optional[_Clock] = None,
) -> GovernanceRepairEngine: ...
