"""Repair engines: claims, real actions through layer-shaped doubles, verification, budgets,
statistics and hostile input."""

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Optional

import pytest

from doubles import (
    FAULTS8,
    EdgeListGraph,
    EdgeType,
    NamedAgentManager,
    RecordingAgent,
    TaskDictOrchestrator,
    TaskEdge,
    TaskStatus,
    executor,
)
from senti_os.core.faza30.enums import FaultCategory, RepairStatus
from senti_os.core.faza30.repair_strategies import (
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


# ---------------------------------------------------------------------------------------------
# Test doubles shaped like the reference DetectedFault and the real FAZA layers


@dataclass
class Fault:
    fault_id: str
    fault_type: str
    metrics: dict = field(default_factory=dict)
    severity: Any = None
    source: Any = None
    description: str = ""


class EdgesOnlyGraph(EdgeListGraph):
    """A graph exposing edges only through nodes + get_edges_from, and no has_cycle."""

    def __init__(self, edges):
        super().__init__(edges)
        self._edges = self.edges
        del self.edges

    def get_edges_from(self, node_id):
        return [e for e in self._edges if e.source_id == node_id]

    def remove_edge(self, source_id, target_id):
        self.removed.append((source_id, target_id))
        self._edges = [e for e in self._edges if not (e.source_id == source_id and e.target_id == target_id)]

    has_cycle = property()  # not callable: the engine must search the edges itself


class OverrideSystem:
    def __init__(self, n):
        self.stack = list(range(n))
        self.fallbacks = []

    def clear_stack(self):
        n = len(self.stack)
        self.stack.clear()
        return n

    def get_stack_size(self):
        return len(self.stack)

    def instability_fallback(self, score):
        self.fallbacks.append(score)
        return "ovr-1"


class TakeoverManager:
    def __init__(self, can_recover=True):
        self.state = "takeover"
        self.can = can_recover
        self.forced = 0

    def _can_recover(self):
        return self.can

    def force_recovery(self):
        self.forced += 1
        self.state = "recovery"


class GovernanceController:
    def __init__(self, overrides=0, can_recover=True, risk=85.0):
        self.override_system = OverrideSystem(overrides)
        self.takeover_manager = TakeoverManager(can_recover)
        self.risk = risk

    def get_takeover_state(self):
        return self.takeover_manager.state

    def get_risk(self):
        return {"total_risk": self.risk, "system_risk": 1.0}


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


# ---------------------------------------------------------------------------------------------
# The reference test surface: construction, bool claims, status types, statistics keys

DETECTED = [
    Fault("f25_err_1", "high_error_rate", {"error_rate": 0.6}),
    Fault("f25_queue_1", "queue_overload", {"queue_size": 150}),
    Fault("f27_cycle_1", "graph_cycle", {"cycle_count": 2}),
    Fault("f27_bottleneck_1", "graph_bottleneck", {"bottleneck_count": 9}),
    Fault("f28_agent_1", "agent_failure", {"failure_rate": 0.5}),
    Fault("f28_deadlock_1", "scheduler_deadlock", {"stuck": True}),
    Fault("f285_stability_1", "stability_degradation", {"stability_score": 0.3}),
    Fault("f285_anomaly_1", "high_anomaly_rate", {"anomaly_rate": 0.6}),
    Fault("f29_violation_1", "governance_violation", {"violation_count": 3}),
    Fault("f29_takeover_1", "system_takeover", {"takeover": True}),
    Fault("f29_risk_1", "high_risk_score", {"risk_score": 85}),
]

CLAIMS = {
    "high_error_rate": {"scheduler"},
    "queue_overload": {"scheduler"},
    "graph_cycle": {"graph"},
    "graph_bottleneck": {"graph"},
    "agent_failure": {"agent"},
    "scheduler_deadlock": {"graph", "scheduler"},
    "stability_degradation": {"agent"},
    "high_anomaly_rate": {"agent"},
    "governance_violation": {"governance"},
    "system_takeover": {"governance"},
    "high_risk_score": {"governance"},
}


def engines():
    return {
        "graph": GraphRepairEngine(),
        "agent": AgentRepairEngine(),
        "scheduler": SchedulerRepairEngine(),
        "governance": GovernanceRepairEngine(),
    }


@pytest.mark.parametrize("fault", DETECTED, ids=lambda f: f.fault_type)
def test_every_detected_fault_is_claimed_by_the_documented_engines(fault):
    claimed = {name for name, e in engines().items() if e.can_repair(fault, {}) is True}
    assert claimed == CLAIMS[fault.fault_type]


@pytest.mark.parametrize("fault", DETECTED, ids=lambda f: f.fault_type)
def test_repair_with_an_empty_context_is_honest(fault):
    for name, engine in engines().items():
        if not engine.can_repair(fault, {}):
            continue
        result = engine.repair(fault, {})
        assert isinstance(result, RepairResult)
        assert isinstance(result.status, RepairStatus)
        # Nothing in the context can act, so nothing may claim success.
        assert result.status == RepairStatus.SKIPPED
        assert result.verification_passed is False
        assert result.metadata["fault_type"] == fault.fault_type
        assert result.metadata["reason"] in {"no_action", "no_target"}
        stats = engine.get_statistics()
        assert stats["total_repairs"] == 1 and stats["skipped_repairs"] == 1


def test_statistics_keys_and_factories():
    for factory, cls in [
        (create_graph_repair_engine, GraphRepairEngine),
        (create_agent_repair_engine, AgentRepairEngine),
        (create_scheduler_repair_engine, SchedulerRepairEngine),
        (create_governance_repair_engine, GovernanceRepairEngine),
    ]:
        engine = factory()
        assert type(engine) is cls and isinstance(engine, RepairStrategy)
        stats = engine.get_statistics()
        assert list(stats)[:8] == [
            "total_repairs", "successful_repairs", "failed_repairs", "partial_repairs",
            "skipped_repairs", "avg_duration", "success_rate", "history_size",
        ]
        assert stats["total_repairs"] == 0 and stats["success_rate"] == 0.0


# ---------------------------------------------------------------------------------------------
# can_repair: classification as object or dict (D1), real bools


@dataclass
class ClassificationResult:
    fault_id: str
    category: FaultCategory


def test_can_repair_reads_the_category_from_an_object_or_a_dict():
    mystery = Fault("m", "mystery_fault")
    obj = {"classification": ClassificationResult("m", FaultCategory.AGENT_FAULT)}
    assert AgentRepairEngine().can_repair(mystery, obj) is True
    assert GraphRepairEngine().can_repair(mystery, obj) is False
    as_dict = {"classification": {"category": "structural"}}
    assert GraphRepairEngine().can_repair(mystery, as_dict) is True
    assert SchedulerRepairEngine().can_repair(mystery, {"classification": {"category": FaultCategory.OPERATIONAL}})
    assert GraphRepairEngine().can_repair(mystery, {"classification": None}) is False
    # A known fault type is claimed by its engine whatever the classifier said.
    takeover = Fault("t", "system_takeover")
    operational = {"classification": ClassificationResult("t", FaultCategory.OPERATIONAL)}
    assert SchedulerRepairEngine().can_repair(takeover, operational) is False
    assert GovernanceRepairEngine().can_repair(takeover, operational) is True


# ---------------------------------------------------------------------------------------------
# Graph repairs


def test_a_cycle_is_broken_by_removing_exactly_its_lowest_weight_edge():
    graph = EdgeListGraph([("a", "b", EdgeType.DEPENDENCY, 1.0), ("b", "c", EdgeType.DEPENDENCY, 0.2),
                          ("c", "a", EdgeType.DEPENDENCY, 0.7), ("c", "d", EdgeType.DEPENDENCY, 0.1)])
    fault = Fault("f27_cycle_1", "graph_cycle", {"cycle_count": 1})
    engine = GraphRepairEngine()
    result = engine.repair(fault, {"task_graph": graph})
    assert graph.removed == [("b", "c")]
    assert graph.has_cycle() is False
    assert result.status == RepairStatus.SUCCESS
    assert result.verification_passed is True and result.success_rate == 1.0
    action = result.metadata["actions"][0]
    assert action["verb"] == "break_cycle"
    assert action["params"] == {"src": "b", "dst": "c", "cycle": ["a", "b", "c"]}
    assert action["via"] == "task_graph.remove_edge"
    assert result.metadata["verification"]["checks"][0]["source"] == "task_graph.has_cycle()"
    assert result.side_effects == ["edge b -> c removed from the task graph"]
    assert engine.get_statistics()["successful_repairs"] == 1


def test_only_the_edges_on_a_cycle_have_their_weight_and_type_read():
    class Watched:
        """An edge that records which of its fields were read; `broken` ones raise."""

        def __init__(self, src, dst, weight, edge_type=EdgeType.DEPENDENCY, broken=False):
            self.source_id, self.target_id = src, dst
            self._weight, self._type, self.broken, self.read = weight, edge_type, broken, []

        @property
        def weight(self):
            self.read.append("weight")
            if self.broken:
                raise RuntimeError("weight unavailable")
            return self._weight

        @property
        def edge_type(self):
            self.read.append("edge_type")
            return self._type

    graph = EdgeListGraph([])
    cycle = [Watched("a", "b", 1.0), Watched("b", "c", 0.4), Watched("c", "a", 0.9)]
    tails = [Watched("c", "x", 0.01), Watched("x", "y", 0.01, broken=True), Watched("z", "a", 0.01)]
    graph.edges = cycle + tails
    result = GraphRepairEngine().repair(Fault("c", "graph_cycle", {"cycle_count": 1}), {"task_graph": graph})
    assert result.status == RepairStatus.SUCCESS and graph.removed == [("b", "c")]
    assert all(e.read == ["weight", "edge_type"] for e in cycle)
    # Edges off every cycle can never be cut: not read, so a broken one does not matter.
    assert all(e.read == [] for e in tails)

    # A broken edge on the cycle still stops the repair before anything is removed.
    graph = EdgeListGraph([])
    graph.edges = [Watched("a", "b", 1.0), Watched("b", "a", 0.4, broken=True)]
    result = GraphRepairEngine().repair(Fault("c", "graph_cycle", {"cycle_count": 1}), {"task_graph": graph})
    assert result.status == RepairStatus.FAILED and graph.removed == []
    assert "weight unavailable" in result.metadata["error"]


def test_a_weak_edge_is_preferred_and_edges_can_come_from_get_edges_from():
    graph = EdgesOnlyGraph([("a", "b", EdgeType.DEPENDENCY, 0.1), ("b", "a", EdgeType.WEAK, 5.0)])
    result = GraphRepairEngine().repair(Fault("c", "graph_cycle", {"cycle_count": 1}), {"task_graph": graph})
    assert graph.removed == [("b", "a")]
    assert result.status == RepairStatus.SUCCESS
    assert result.metadata["verification"]["checks"][0]["source"] == "task_graph edges (cycle search)"


def test_a_cycle_that_survives_the_cut_is_not_a_success():
    class StubbornGraph(EdgeListGraph):
        def remove_edge(self, s, d):
            self.removed.append((s, d))  # pretends, changes nothing

    graph = StubbornGraph([("a", "b", EdgeType.DEPENDENCY, 1.0), ("b", "a", EdgeType.DEPENDENCY, 2.0)])
    result = GraphRepairEngine().repair(Fault("c", "graph_cycle", {"cycle_count": 1}), {"task_graph": graph})
    assert graph.removed == [("a", "b")]
    assert result.status == RepairStatus.FAILED
    assert result.verification_passed is False
    assert result.metadata["reason"] == "verification_failed"


def test_listed_cycles_with_a_callable_need_a_verification_to_succeed():
    calls = []
    actions = {"break_cycle": lambda src, dst, cycle: calls.append((src, dst, cycle))}
    fault = Fault("c", "graph_cycle", {"cycle_count": 1, "cycles": [["x", "y", "z"]]})
    inconclusive = GraphRepairEngine().repair(fault, {"actions": actions})
    assert calls == [("x", "y", ["x", "y", "z"])]
    assert inconclusive.status == RepairStatus.FAILED
    assert inconclusive.metadata["reason"] == "inconclusive"
    verified = GraphRepairEngine().repair(fault, {"actions": actions, "verify": lambda f: {"cycle_count": 0}})
    assert verified.status == RepairStatus.SUCCESS


def test_an_acyclic_graph_means_nothing_to_repair():
    graph = EdgeListGraph([("a", "b", EdgeType.DEPENDENCY, 1.0)])
    result = GraphRepairEngine().repair(Fault("c", "graph_cycle", {"cycle_count": 1}), {"task_graph": graph})
    assert result.status == RepairStatus.SKIPPED
    assert result.metadata["reason"] == "condition_absent"
    assert graph.removed == []


def test_a_raising_remove_edge_fails_with_the_error_text():
    class BrokenGraph(EdgeListGraph):
        def remove_edge(self, s, d):
            raise RuntimeError("graph is locked")

    graph = BrokenGraph([("a", "b", EdgeType.DEPENDENCY, 1.0), ("b", "a", EdgeType.DEPENDENCY, 2.0)])
    engine = GraphRepairEngine()
    result = engine.repair(Fault("c", "graph_cycle", {"cycle_count": 1}), {"task_graph": graph})
    assert result.status == RepairStatus.FAILED
    assert result.metadata["error"] == "break_cycle: RuntimeError: graph is locked"
    assert result.metadata["actions"][0]["outcome"] == "error"
    assert result.side_effects == []
    stats = engine.get_statistics()
    assert (stats["failed_repairs"], stats["actions_failed"]) == (1, 1)


def test_deadlock_breaks_a_graph_cycle_or_resets_the_scheduler():
    graph = EdgeListGraph([("a", "b", EdgeType.DEPENDENCY, 1.0), ("b", "a", EdgeType.DEPENDENCY, 0.5)])
    fault = Fault("d", "scheduler_deadlock", {"stuck": True})
    result = GraphRepairEngine().repair(fault, {"task_graph": graph})
    assert graph.removed == [("b", "a")] and result.status == RepairStatus.SUCCESS

    class Scheduler:
        resets = 0

        def reset(self):
            Scheduler.resets += 1

    result = SchedulerRepairEngine().repair(
        fault, {"scheduler": Scheduler(), "verify": lambda f: {"scheduler_stuck": False}}
    )
    assert Scheduler.resets == 1
    assert result.status == RepairStatus.SUCCESS
    assert result.metadata["actions"][0]["via"] == "scheduler.reset"


# ---------------------------------------------------------------------------------------------
# Agent repairs


def test_a_crashing_agent_is_restarted_then_isolated_and_its_budget_resets_after_quiet():
    clock = Clock()
    engine = AgentRepairEngine(max_attempts=3, quiet_period=600.0, clock=clock)
    manager = NamedAgentManager("worker", "other")
    fault = Fault("f28", "agent_failure", {"failure_rate": 0.5, "agent_name": "worker"})
    ctx = {"agent_manager": manager, "state_context": "STATE", "verify": lambda f: True}
    for attempt in range(1, 4):
        manager.log.clear()
        result = engine.repair(fault, ctx)
        assert manager.log == [("on_shutdown", "worker", "STATE"), ("on_start", "worker", "STATE")]
        assert result.status == RepairStatus.SUCCESS
        assert result.metadata["budget"] == [
            {"target": "agent:worker", "attempts": attempt, "max_attempts": 3, "exhausted": False}
        ]
        clock.t += 60
    manager.log.clear()
    isolated = engine.repair(fault, ctx)
    assert manager.log == []
    assert manager.agents["worker"].enabled is False
    assert manager.agents["other"].enabled is True
    assert isolated.status == RepairStatus.PARTIAL
    assert isolated.metadata["actions"][0]["verb"] == "isolate_agent"
    assert isolated.metadata["reason"] == "contained"
    assert engine.get_budgets()["agent:worker"]["exhausted"] is True
    # Another agent has its own budget.
    other = Fault("f28b", "agent_failure", {"failure_rate": 0.5, "agent_name": "other"})
    assert engine.repair(other, ctx).metadata["actions"][0]["verb"] == "restart_agent"
    # Ten quiet minutes later the worker may be restarted again.
    clock.t += 600
    assert engine.get_budgets()["agent:worker"]["attempts"] == 0
    manager.agents["worker"].enabled = True
    again = engine.repair(fault, ctx)
    assert again.metadata["actions"][0]["verb"] == "restart_agent"
    assert again.metadata["budget"][0]["attempts"] == 1


def test_a_restart_without_verification_is_not_a_success():
    manager = NamedAgentManager("w")
    result = AgentRepairEngine().repair(Fault("a", "agent_failure", {"agent_name": "w"}), {"agent_manager": manager})
    assert [c[0] for c in manager.log] == ["on_shutdown", "on_start"]
    assert result.status == RepairStatus.FAILED
    assert result.metadata["reason"] == "inconclusive"
    failing = AgentRepairEngine().repair(
        Fault("a", "agent_failure", {"agent_name": "w", "failure_rate": 0.5}),
        {"agent_manager": manager, "verify": lambda f: {"failure_rate": 0.6}},
    )
    assert failing.status == RepairStatus.FAILED
    assert failing.metadata["reason"] == "verification_failed"


def test_restart_through_an_executor_a_callable_or_a_missing_agent():
    class Executor:
        def __init__(self):
            self.agent_manager = NamedAgentManager("w")

    ex = Executor()
    AgentRepairEngine().repair(Fault("a", "agent_crash", {"agent_id": "w"}), {"agent_executor": ex})
    assert [c[0] for c in ex.agent_manager.log] == ["on_shutdown", "on_start"]

    restarted = []
    ctx = {"actions": {"restart_agent": lambda name: restarted.append(name)}, "verify": lambda f: True}
    result = AgentRepairEngine().repair(Fault("a", "agent_failure", {"failing_agents": ["p", "q"]}), ctx)
    assert restarted == ["p", "q"] and result.status == RepairStatus.SUCCESS

    missing = AgentRepairEngine().repair(Fault("a", "agent_failure", {"agent_name": "ghost"}), {"agent_manager": NamedAgentManager()})
    assert missing.status == RepairStatus.FAILED
    assert "not found" in missing.metadata["error"]


def test_async_agent_hooks_are_run_like_the_faza28_lifecycle():
    class AsyncAgent(RecordingAgent):
        async def on_shutdown(self, context):
            self.log.append(("async_shutdown", self.name))

        async def on_start(self, context):
            self.log.append(("async_start", self.name))

    manager = NamedAgentManager()
    manager.agents["w"] = AsyncAgent("w", manager.log)
    AgentRepairEngine().repair(Fault("a", "agent_failure", {"agent_name": "w"}), {"agent_manager": manager})
    assert manager.log == [("async_shutdown", "w"), ("async_start", "w")]


def test_an_async_hook_that_waits_on_the_loop_fails_with_an_explanation_inside_a_loop():
    import asyncio

    class WaitingAgent(RecordingAgent):
        async def on_shutdown(self, context):
            await asyncio.sleep(0.01)

    manager = NamedAgentManager()
    manager.agents["w"] = WaitingAgent("w", manager.log)

    async def main():
        return AgentRepairEngine().repair(Fault("a", "agent_failure", {"agent_name": "w"}), {"agent_manager": manager})

    result = asyncio.run(main())
    assert result.status == RepairStatus.FAILED
    assert "event loop" in result.metadata["error"]


def test_an_unnamed_agent_is_never_restarted_and_uses_no_shared_budget():
    engine = AgentRepairEngine()
    manager = NamedAgentManager("w")
    for _ in range(5):
        result = engine.repair(Fault("a", "agent_failure", {"failure_rate": 0.9}), {"agent_manager": manager})
        assert result.status == RepairStatus.SKIPPED
        assert result.metadata["reason"] == "no_target"
    assert manager.log == [] and engine.get_budgets() == {}


def test_meta_state_damping_for_stability_and_anomaly_faults():
    class Part:
        def __init__(self):
            self.calls = 0

        def clear_history(self):
            self.calls += 1

        def reset(self):
            self.calls += 1

    class Meta:
        anomaly_detector, stability_engine, strategy_adapter = Part(), Part(), Part()

    meta = Meta()
    result = AgentRepairEngine().repair(
        Fault("s", "stability_degradation", {"stability_score": 0.3}),
        {"meta_layer": meta, "verify": lambda f: {"stability_score": 0.8}},
    )
    assert (meta.anomaly_detector.calls, meta.stability_engine.calls, meta.strategy_adapter.calls) == (1, 1, 1)
    assert result.status == RepairStatus.SUCCESS
    improved = AgentRepairEngine().repair(
        Fault("s", "high_anomaly_rate", {"anomaly_rate": 0.9}),
        {"meta_layer": meta, "verify": lambda f: {"anomaly_rate": 0.5}},
    )
    assert improved.status == RepairStatus.PARTIAL
    assert improved.success_rate == 0.5


# ---------------------------------------------------------------------------------------------
# Scheduler repairs


def test_a_failed_task_is_retried_with_its_original_fields():
    orch = TaskDictOrchestrator()
    ctx_dict = {"input": [1, 2]}
    orch.add("t1", name="render", executor=executor, priority=7, task_type="pipeline", context=ctx_dict)
    orch.tasks["t1"].status = TaskStatus.ERROR
    orch.add("t2", name="ok", executor=executor)
    orch.tasks["t2"].status = TaskStatus.DONE
    result = SchedulerRepairEngine().repair(
        Fault("e", "high_error_rate", {"error_rate": 0.6}),
        {"orchestrator": orch, "verify": lambda f: {"error_rate": 0.1}},
    )
    assert len(orch.submitted) == 1
    sub = orch.submitted[0]
    assert (sub["name"], sub["executor"], sub["priority"], sub["task_type"]) == ("render", executor, 7, "pipeline")
    assert sub["context"] == ctx_dict and sub["context"] is not ctx_dict
    assert result.status == RepairStatus.SUCCESS
    assert result.metadata["actions"][0]["returned"] == "retry-1"
    assert result.side_effects == ["task t1 resubmitted as retry-1"]


def test_task_retries_stop_when_the_budget_is_used_up():
    orch = TaskDictOrchestrator()
    orch.add("t9", name="flaky", executor=executor)
    engine = SchedulerRepairEngine(max_attempts=2)
    fault = Fault("t", "task_timeout", {"task_id": "t9"})
    statuses = [engine.repair(fault, {"orchestrator": orch, "verify": lambda f: True}).status for _ in range(3)]
    assert statuses == [RepairStatus.SUCCESS, RepairStatus.SUCCESS, RepairStatus.FAILED]
    assert len(orch.submitted) == 2
    assert engine.get_repair_history(1)[0]["status"] == RepairStatus.FAILED
    assert engine.reset_budgets("task:t9") == 1
    assert engine.repair(fault, {"orchestrator": orch, "verify": lambda f: True}).status == RepairStatus.SUCCESS


def test_queue_overload_cancels_lowest_priority_tasks_and_measures_the_queue():
    orch = TaskDictOrchestrator()
    for i in range(103):
        orch.add(f"q{i:03}", name="job", executor=executor, priority=9 if i < 100 else 1)
    result = SchedulerRepairEngine().repair(Fault("q", "queue_overload", {"queue_size": 103}), {"orchestrator": orch})
    assert sorted(orch.cancelled) == ["q100", "q101", "q102"]
    assert orch.task_queue.size() == 100
    assert result.status == RepairStatus.SUCCESS
    check = result.metadata["verification"]["checks"][0]
    assert check["source"] == "orchestrator.task_queue.size()" and check["values"] == {"queue_size": 100}


def test_shed_load_callable_is_preferred_and_a_partial_drain_is_partial():
    orch = TaskDictOrchestrator()
    for i in range(150):
        orch.add(f"q{i}", name="job", executor=executor)
    shed = []

    def shed_load(resource, current, limit):
        shed.append((resource, current, limit))
        for t in list(orch.tasks.values())[:20]:
            t.status = TaskStatus.DONE

    result = SchedulerRepairEngine().repair(
        Fault("q", "queue_overload", {"queue_size": 150}), {"orchestrator": orch, "actions": {"shed_load": shed_load}}
    )
    assert shed == [("queue", 150.0, 100.0)]
    assert orch.cancelled == []
    assert result.status == RepairStatus.PARTIAL
    assert result.metadata["reason"] == "improved"


# ---------------------------------------------------------------------------------------------
# Governance repairs


def test_override_abuse_clears_the_override_stack_and_checks_it():
    gov = GovernanceController(overrides=12)
    result = GovernanceRepairEngine().repair(Fault("o", "override_abuse", {"override_count": 12}), {"governance_controller": gov})
    assert gov.override_system.stack == []
    assert result.status == RepairStatus.SUCCESS
    assert result.metadata["verification"]["checks"][0]["values"] == {"override_count": 0}


def test_takeover_recovery_respects_the_cooldown():
    waiting = GovernanceController(can_recover=False)
    result = GovernanceRepairEngine().repair(Fault("t", "system_takeover", {"takeover": True}), {"governance_controller": waiting})
    assert waiting.takeover_manager.forced == 0
    assert result.status == RepairStatus.FAILED
    assert result.metadata["reason"] == "action_declined"
    ready = GovernanceController(can_recover=True)
    result = GovernanceRepairEngine().repair(Fault("t", "system_takeover", {"takeover": True}), {"governance_controller": ready})
    assert ready.takeover_manager.forced == 1
    assert result.status == RepairStatus.SUCCESS


def test_risk_is_escalated_and_judged_by_the_measured_risk():
    gov = GovernanceController(risk=85.0)
    result = GovernanceRepairEngine().repair(Fault("r", "high_risk_score", {"risk_score": 85}), {"governance_controller": gov})
    assert gov.override_system.fallbacks == [0.85]
    # The fallback override does not lower the measured risk, so the fault persists.
    assert result.status == RepairStatus.FAILED
    assert result.metadata["verification"]["checks"][0]["values"] == {"risk_score": 85.0}
    gov.risk = 40.0
    assert GovernanceRepairEngine().repair(Fault("r", "high_risk_score", {"risk_score": 85}), {"governance_controller": gov}).status == RepairStatus.SUCCESS


# ---------------------------------------------------------------------------------------------
# Outcomes in general


def test_an_action_returning_false_or_raising_is_a_failure():
    fault = Fault("g", "governance_violation", {"violation_count": 2})
    declined = GovernanceRepairEngine().repair(fault, {"actions": {"governance_escalate": lambda reason, score: False}, "verify": lambda f: True})
    assert declined.status == RepairStatus.FAILED and declined.metadata["reason"] == "action_declined"

    def boom(reason, score):
        raise ValueError("no governance today")

    raised = GovernanceRepairEngine().repair(fault, {"actions": {"governance_escalate": boom}, "verify": lambda f: True})
    assert raised.status == RepairStatus.FAILED
    assert raised.metadata["error"] == "governance_escalate: ValueError: no governance today"


def test_verification_that_fails_raises_or_is_unusable_is_not_a_success():
    fault = Fault("b", "graph_bottleneck", {"bottleneck_count": 9})
    acts = {"relieve_bottleneck": lambda node: None}
    for verify, reason in [
        (lambda f: False, "verification_failed"),
        (lambda f: {"bottleneck_count": 12}, "verification_failed"),
        (lambda f: 1 / 0, "verification_error"),
        (lambda f: "yes", "inconclusive"),
        (lambda f: {"unrelated": 1}, "inconclusive"),
    ]:
        result = GraphRepairEngine().repair(fault, {"actions": acts, "verify": verify})
        assert result.status == RepairStatus.FAILED, reason
        assert result.verification_passed is False
        assert result.metadata["reason"] == reason


def test_faults_whose_own_metrics_are_fine_are_skipped():
    result = SchedulerRepairEngine().repair(Fault("q", "queue_overload", {"queue_size": 50}), {"actions": {"shed_load": lambda **k: None}})
    assert result.status == RepairStatus.SKIPPED
    assert result.metadata["reason"] == "condition_absent"
    assert result.actions_taken == ["nothing to repair: queue_size=50 (bad above 100)"]


def test_callbacks_may_call_back_into_the_engine():
    engine = AgentRepairEngine()
    seen = []

    def restart_agent(name):
        seen.append(engine.get_statistics()["total_repairs"])
        if name == "outer":
            inner = engine.repair(Fault("i", "agent_failure", {"agent_name": "inner"}), {"actions": {"restart_agent": restart_agent}, "verify": lambda f: True})
            seen.append(inner.status)

    result = engine.repair(Fault("o", "agent_failure", {"agent_name": "outer"}), {"actions": {"restart_agent": restart_agent}, "verify": lambda f: True})
    assert result.status == RepairStatus.SUCCESS
    assert seen == [0, 0, RepairStatus.SUCCESS]
    assert engine.get_statistics()["total_repairs"] == 2


def test_keyboard_interrupt_propagates_but_is_recorded():
    def stop(name):
        raise KeyboardInterrupt

    engine = AgentRepairEngine()
    with pytest.raises(KeyboardInterrupt):
        engine.repair(Fault("a", "agent_failure", {"agent_name": "w"}), {"actions": {"restart_agent": stop}})
    assert engine.get_statistics()["failed_repairs"] == 1


# ---------------------------------------------------------------------------------------------
# RepairResult, metadata copies, statistics, history


def test_repair_result_behaves_like_the_dataclass():
    r = RepairResult(fault_id="x", status=RepairStatus.PARTIAL)
    assert (r.actions_taken, r.success_rate, r.duration, r.side_effects, r.verification_passed, r.metadata) == (
        [], 0.0, 0.0, [], False, {}
    )
    assert isinstance(r.timestamp, datetime)
    r.actions_taken.append("a")
    r.success_rate = 0.5
    assert r.actions_taken == ["a"] and r.success_rate == 0.5
    other = RepairResult("x", RepairStatus.PARTIAL, ["a"], 0.5, 0.0, [], False, {}, r.timestamp)
    assert r == other
    assert RepairResult("y", RepairStatus.FAILED) != RepairResult("y", RepairStatus.SUCCESS)
    assert repr(r).startswith("RepairResult(fault_id='x', status=<RepairStatus.PARTIAL: 'partial'>")


def test_result_metadata_holds_a_copy_of_the_fault_metrics():
    metrics = {"queue_size": 50, "nested": {"a": 1}}
    fault = Fault("q", "queue_overload", metrics)
    result = SchedulerRepairEngine().repair(fault, {})
    result.metadata["metrics"]["nested"]["a"] = 99
    metrics["queue_size"] = 7
    assert fault.metrics["nested"] == {"a": 1}
    assert result.metadata["metrics"]["queue_size"] == 50


def test_counters_add_up_and_history_is_bounded():
    engine = SchedulerRepairEngine(history_size=3)
    orch = TaskDictOrchestrator()
    orch.add("t", name="n", executor=executor)
    outcomes = [
        (Fault("a", "queue_overload", {"queue_size": 10}), {}),
        (Fault("b", "task_timeout", {"task_id": "t"}), {"orchestrator": orch, "verify": lambda f: True}),
        (Fault("c", "task_timeout", {"task_id": "t"}), {"orchestrator": orch}),
        (Fault("d", "unrelated", {}), {}),
        (Fault("e", "high_error_rate", {"error_rate": 0.5, "task_id": "t"}), {"orchestrator": orch, "verify": lambda f: {"error_rate": 0.4}}),
    ]
    for fault, ctx in outcomes:
        engine.repair(fault, ctx)
    s = engine.get_statistics()
    assert s["total_repairs"] == 5
    assert (s["successful_repairs"], s["failed_repairs"], s["partial_repairs"], s["skipped_repairs"]) == (1, 1, 1, 2)
    assert s["success_rate"] == 0.2
    assert s["history_size"] == 3
    assert [h["fault_id"] for h in engine.get_repair_history(10)] == ["c", "d", "e"]
    assert engine.get_repair_history(0) == []
    with pytest.raises(ValueError):
        engine.get_repair_history(-1)


# ---------------------------------------------------------------------------------------------
# Subclassing and verify_repair


def test_repair_strategy_is_abstract_and_subclassable():
    with pytest.raises(TypeError, match="abstract"):
        RepairStrategy()

    class OnlyClaims(RepairStrategy):
        def can_repair(self, fault, context):
            return True

    with pytest.raises(TypeError, match="'repair'"):
        OnlyClaims()

    class Custom(RepairStrategy):
        def __init__(self, label):
            super().__init__()
            self.label = label

        def can_repair(self, fault, context):
            return fault.fault_type.startswith("custom")

        def repair(self, fault, context):
            result = RepairResult(fault.fault_id, RepairStatus.SUCCESS, verification_passed=True, duration=0.25)
            self._update_statistics(result)
            return result

    s = Custom("mine")
    assert s.label == "mine" and isinstance(s, RepairStrategy)
    fault = Fault("c1", "custom_fault")
    result = s.repair(fault, {})
    assert s.get_statistics()["successful_repairs"] == 1
    assert s.get_statistics()["avg_duration"] == 0.25
    assert s.verify_repair(fault, result, {}) is True
    assert s.verify_repair(fault, RepairResult("c1", RepairStatus.PARTIAL), {}) is False

    class Tuned(GraphRepairEngine):
        pass

    assert Tuned(max_attempts=1).can_repair(Fault("g", "graph_cycle"), {}) is True


def test_verify_repair_measures_again():
    graph = EdgeListGraph([("a", "b", EdgeType.DEPENDENCY, 1.0), ("b", "a", EdgeType.DEPENDENCY, 2.0)])
    engine = GraphRepairEngine()
    fault = Fault("c", "graph_cycle", {"cycle_count": 1})
    result = engine.repair(fault, {"task_graph": graph})
    assert result.status == RepairStatus.SUCCESS
    assert engine.verify_repair(fault, result, {"task_graph": graph}) is True
    graph.edges.append(TaskEdge("a", "b"))
    assert engine.verify_repair(fault, result, {"task_graph": graph}) is False
    # Nothing to measure with: the recorded verification stands.
    assert engine.verify_repair(fault, result, {}) is True
    assert engine.verify_repair(fault, result) is True


# ---------------------------------------------------------------------------------------------
# Hostile input


class Raising:
    fault_id = "r"

    @property
    def fault_type(self):
        raise RuntimeError("sensor offline")


def test_hostile_faults_and_contexts_give_clear_errors_and_leave_the_engine_usable():
    engine = AgentRepairEngine()
    with pytest.raises(TypeError, match="fault must be"):
        engine.repair(None, {})
    with pytest.raises(TypeError, match="fault must be"):
        engine.can_repair(None, {})
    with pytest.raises(TypeError, match=r"fault\.fault_type raised RuntimeError: sensor offline"):
        engine.can_repair(Raising(), {})
    with pytest.raises(TypeError, match=r"fault\.metrics must be a dict, got list"):
        engine.repair(Fault("x", "agent_failure", [1, 2]), {})
    with pytest.raises(TypeError, match=r"fault\.fault_type must be a str, got int"):
        engine.repair(Fault("x", 42), {})
    with pytest.raises(ValueError, match=r'fault\.metrics\["rate"\]'):
        engine.repair(Fault("x", "agent_failure", {"rate": float("nan")}), {})
    with pytest.raises(ValueError, match="64 bits"):
        engine.repair(Fault("x", "agent_failure", {"rate": 2 ** 200}), {})
    deep = {}
    node = deep
    for _ in range(10_000):
        node["d"] = {}
        node = node["d"]
    with pytest.raises(ValueError, match="nested deeper"):
        engine.repair(Fault("x", "agent_failure", deep), {})
    loop = {}
    loop["self"] = loop
    with pytest.raises(ValueError, match="contains itself"):
        engine.repair(Fault("x", "agent_failure", loop), {})
    with pytest.raises(ValueError, match="too long"):
        engine.repair(Fault("x", "a" * 10_000_000), {})
    with pytest.raises(TypeError, match="context must be a dict or None, got list"):
        engine.repair(Fault("x", "agent_failure"), [])
    with pytest.raises(TypeError, match=r"context\['actions'\]\['restart_agent'\] must be callable"):
        engine.repair(Fault("x", "agent_failure", {"agent_name": "w"}), {"actions": {"restart_agent": 3}})
    with pytest.raises(TypeError, match=r"context\['verify'\] must be callable"):
        engine.repair(Fault("x", "agent_failure"), {"verify": True})
    # Nothing was recorded for refused input, and the engine still works.
    assert engine.get_statistics()["total_repairs"] == 0
    assert engine.repair(Fault("x", "agent_failure", {"agent_name": "w"}), {"actions": {"restart_agent": lambda name: None}, "verify": lambda f: True}).status == RepairStatus.SUCCESS


def test_missing_fields_take_the_documented_defaults():
    class Bare:
        pass

    engine = GraphRepairEngine()
    assert engine.can_repair(Bare(), {}) is False
    result = engine.repair(Bare(), None)
    assert result.fault_id == "unknown"
    assert result.status == RepairStatus.SKIPPED
    assert result.metadata["fault_type"] == "" and result.metadata["metrics"] == {}
    as_dict = engine.repair({"fault_id": "d1", "fault_type": "graph_cycle", "metrics": {"cycle_count": 0}}, {})
    assert (as_dict.fault_id, as_dict.metadata["reason"]) == ("d1", "condition_absent")
    assert engine.can_repair(Fault("x", "graph_cycle"), None) is True


def test_a_graph_with_unreadable_edges_fails_the_repair_with_the_reason():
    class BadGraph:
        edges = [object()]

        def remove_edge(self, s, d):
            pass

    result = GraphRepairEngine().repair(Fault("c", "graph_cycle", {"cycle_count": 1}), {"task_graph": BadGraph()})
    assert result.status == RepairStatus.FAILED
    assert result.metadata["reason"] == "context_error"
    assert "has no source_id/src" in result.metadata["error"]


def test_constructor_keywords_are_validated():
    with pytest.raises(ValueError, match="max_attempts"):
        AgentRepairEngine(max_attempts=-1)
    with pytest.raises(ValueError, match="quiet_period"):
        AgentRepairEngine(quiet_period=float("inf"))
    with pytest.raises(ValueError, match="history_size"):
        AgentRepairEngine(history_size=0)
    with pytest.raises(TypeError, match="clock must be a callable"):
        AgentRepairEngine(clock=5)
    with pytest.raises(TypeError):
        GraphRepairEngine(3)
    bad_clock = AgentRepairEngine(clock=lambda: "soon")
    with pytest.raises(ValueError, match="clock"):
        bad_clock.repair(Fault("a", "agent_failure", {"agent_name": "w"}), {"actions": {"restart_agent": lambda name: None}})
    assert bad_clock.get_statistics()["total_repairs"] == 0


def test_a_task_that_started_running_is_not_shed_but_the_rest_are():
    orch = TaskDictOrchestrator()
    for i in range(104):
        orch.add(f"q{i:03}", name="job", executor=executor, priority=9 if i < 100 else 1)

    real_cancel = orch.cancel_task

    def cancel_task(task_id):
        if task_id == "q103":
            orch.tasks[task_id].status = TaskStatus.RUNNING  # picked up by a worker meanwhile
        return real_cancel(task_id)

    orch.cancel_task = cancel_task
    result = SchedulerRepairEngine().repair(Fault("q", "queue_overload", {"queue_size": 104}), {"orchestrator": orch})
    assert sorted(orch.cancelled) == ["q100", "q101", "q102"]
    assert [a["outcome"] for a in result.metadata["actions"]] == ["declined", "done", "done", "done"]
    # 100 queued tasks remain: the queue is back at its limit.
    assert result.status == RepairStatus.SUCCESS


def test_the_clock_callable_is_visible_to_the_garbage_collector():
    import gc

    class SelfClock:
        def __call__(self):
            return 0.0

    clock = SelfClock()
    engine = AgentRepairEngine(clock=clock)
    assert clock in gc.get_referents(engine)


def test_a_fault_whose_metrics_were_changed_in_place_is_repaired_with_the_changes():
    from senti_os.core.faza30 import DetectionEngine

    fault = next(f for f in DetectionEngine().detect_faults(**FAULTS8) if f.fault_type == "graph_cycle")
    fault.metrics["operator_note"] = "checked"  # an in-place edit: no attribute is assigned
    result = GraphRepairEngine().repair(fault, None)
    assert result.metadata["metrics"]["operator_note"] == "checked"
