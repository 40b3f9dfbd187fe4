"""Repairs: the four repair engines plan real actions, run them through the caller's context
and verify the result by measuring again. ``RepairStrategy`` is the abstract base to subclass."""

from ._native import (
    AgentRepairEngine,
    GovernanceRepairEngine,
    GraphRepairEngine,
    RepairResult,
    RepairStrategy,
    SchedulerRepairEngine,
    create_agent_repair_engine,
    create_governance_repair_engine,
    create_graph_repair_engine,
    create_scheduler_repair_engine,
)
from .enums import RepairStatus

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
