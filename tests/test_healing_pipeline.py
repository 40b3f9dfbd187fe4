"""Healing pipeline: the twelve stages with real repairs through layer-shaped doubles, health
from real metrics, rollback through snapshot state providers, dry runs, history, learning,
events, the async variant and hostile input."""

import asyncio
import dataclasses
import datetime
import math
import threading
import time

import pytest

from doubles import FAULTS8, EdgeListGraph, EdgeType, NamedAgentManager, TaskDictOrchestrator, TaskStatus, executor
from senti_os.core.faza30.classification_engine import ClassificationEngine
from senti_os.core.faza30.detection_engine import DetectionEngine
from senti_os.core.faza30.enums import EventType, RepairStatus
from senti_os.core.faza30.event_hooks import EventHooks
from senti_os.core.faza30.healing_pipeline import (
    HealingContext,
    HealingOutcome,
    HealingPipeline,
    HealingResult,
    HealingStage,
    create_healing_pipeline,
)
from senti_os.core.faza30.health_engine import HealthEngine
from senti_os.core.faza30.repair_strategies import (
    AgentRepairEngine,
    GovernanceRepairEngine,
    GraphRepairEngine,
    RepairResult,
    SchedulerRepairEngine,
)
from senti_os.core.faza30.snapshot_manager import SnapshotManager

ALL_STAGES = list(HealingStage)

# ---------------------------------------------------------------------------------------------
# Helpers (the layer doubles are in tests/doubles.py)


def engines():
    return {
        "graph": GraphRepairEngine(),
        "agent": AgentRepairEngine(),
        "scheduler": SchedulerRepairEngine(),
        "governance": GovernanceRepairEngine(),
    }


def pipeline(snapshot_manager=None, health=True, repair_engines=None, **kw):
    return HealingPipeline(
        detection_engine=DetectionEngine(),
        classification_engine=ClassificationEngine(),
        repair_engines=engines() if repair_engines is None else repair_engines,
        snapshot_manager=snapshot_manager,
        health_engine=HealthEngine() if health else None,
        **kw,
    )


def weak_cycle_graph():
    # a -> b -> c -> a; b -> c is the weakest edge of the cycle.
    return EdgeListGraph([("a", "b", EdgeType.DEPENDENCY, 1.0), ("b", "c", EdgeType.DEPENDENCY, 0.2),
                         ("c", "a", EdgeType.DEPENDENCY, 0.7), ("c", "d", EdgeType.DEPENDENCY, 0.1)])


def graph_metrics(graph):
    return {"faza27_metrics": {"cycle_count": 1 if graph.has_cycle() else 0}}


# ---------------------------------------------------------------------------------------------
# Stages, outcomes and results


def test_every_stage_runs_in_order_for_a_cycle_with_faults(tmp_path):
    p = pipeline(SnapshotManager(tmp_path / "snaps"))
    result = p.execute_healing_cycle(**FAULTS8)
    assert result.stages_completed == ALL_STAGES
    assert list(result.context.stage_results) == ALL_STAGES
    assert result.faults_detected == 8
    assert result.context.stage_results[HealingStage.STAGE_12_REPORT]["stages_completed"] == 12
    # Nothing in the context can act (no layers given): every repair is SKIPPED, none fails.
    assert result.outcome == HealingOutcome.FAILED
    assert result.context.stage_results[HealingStage.STAGE_6_EXECUTE_REPAIR]["repairs_skipped"] == 8
    assert result.context.snapshot_id.startswith("snap_")
    assert result.context.stage_results[HealingStage.STAGE_3_SNAPSHOT]["snapshot_created"] is True
    strategies = result.context.metadata["repair_strategies"]
    assert {s["fault_id"] for s in strategies} == {f.fault_id for f in result.context.faults}
    assert all(isinstance(r, RepairResult) for r in result.context.repairs)
    assert [r.fault_id for r in result.context.repairs] == [s["fault_id"] for s in strategies]
    assert result.duration > 0
    assert isinstance(result.health_improvement, float)


def test_the_pre_repair_snapshot_is_usable_at_once_and_on_disk_after_flush(tmp_path):
    folder = tmp_path / "snaps"
    manager = SnapshotManager(folder)
    result = pipeline(manager).execute_healing_cycle(**FAULTS8)
    snapshot_id = result.context.snapshot_id
    # Listed and loadable straight away, whether or not the writer thread published it yet.
    assert [s.snapshot_id for s in manager.list_snapshots()] == [snapshot_id]
    assert manager.get_snapshot(snapshot_id).metadata["fault_count"] == 8
    manager.flush()
    assert manager.get_statistics()["pending_writes"] == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"{snapshot_id}.json"]
    # A second manager on the folder reads the published file.
    assert SnapshotManager(folder).get_snapshot(snapshot_id).snapshot_type.value == "pre_repair"


def test_stopping_the_loop_publishes_pending_snapshot_files(tmp_path):
    from senti_os.core.faza30 import AutorepairConfig, AutorepairMode, create_healing_controller

    folder = tmp_path / "snaps"

    async def run():
        config = AutorepairConfig(mode=AutorepairMode.AGGRESSIVE, interval_seconds=0.01, cooldown_seconds=0.0)
        controller = create_healing_controller(autorepair_config=config, snapshot_dir=str(folder))
        await controller.start()
        await asyncio.sleep(0.02)
        manager = controller.get_snapshot_manager()
        # Twenty pre-repair snapshots taken just before stop(): their files take a while.
        taken = [manager._create_pre_repair({"n": n}) for n in range(20)]
        await controller.stop()
        return taken, manager.get_statistics()

    taken, stats = asyncio.run(run())
    assert stats["pending_writes"] == 0
    assert sorted(p.stem for p in folder.glob("snap_*.json")) == sorted(taken)


def test_repair_results_carry_the_time_of_the_repair_not_of_the_first_look():
    result = pipeline().execute_healing_cycle(**FAULTS8)
    time.sleep(0.05)
    repairs = result.context.repairs
    assert len(repairs) == 8
    assert all(r.timestamp <= datetime.datetime.now() - datetime.timedelta(seconds=0.04) for r in repairs)
    assert {r.fault_id for r in repairs} == {f.fault_id for f in result.context.faults}
    assert all(r.status is RepairStatus.SKIPPED and r.metadata["reason"] for r in repairs)


def test_no_fault_is_skipped_and_still_recorded():
    p = pipeline()
    result = p.execute_healing_cycle({}, {}, {}, {}, {})
    assert result.outcome == HealingOutcome.SKIPPED
    assert result.stages_completed == [HealingStage.STAGE_1_DETECT]
    assert p.get_recent_cycles() == [result]
    stats = p.get_statistics()
    assert stats["total_cycles"] == 1 and stats["skipped_cycles"] == 1 and stats["history_size"] == 1


def test_a_cycle_is_broken_by_removing_its_weakest_edge():
    graph = weak_cycle_graph()
    p = pipeline(repair_context={"task_graph": graph}, metrics_provider=lambda: graph_metrics(graph))
    result = p.execute_healing_cycle(faza27_metrics={"cycle_count": 1})
    assert graph.removed == [("b", "c")]
    assert graph.has_cycle() is False
    assert result.outcome == HealingOutcome.SUCCESS
    assert result.faults_repaired == 1
    (repair,) = result.context.repairs
    assert repair.status == RepairStatus.SUCCESS and repair.verification_passed is True
    verify = result.context.stage_results[HealingStage.STAGE_7_VERIFY]
    assert verify == {"repairs_verified": 1, "verification_rate": 1.0, "source": "fresh_metrics", "still_present": [],
                      "awaiting_evidence": []}


def test_a_crashing_agent_is_restarted():
    manager = NamedAgentManager("worker", "other")
    manager.agents["other"].crashed = False
    fresh = lambda: {"faza28_metrics": {"agent_failure_rate": manager.failure_rate()}}
    p = pipeline(repair_context={"agent_manager": manager}, metrics_provider=fresh)
    result = p.execute_healing_cycle(faza28_metrics={"agent_failure_rate": 0.5, "failing_agents": ["worker"]})
    assert [(hook, name) for hook, name, _context in manager.log] == [("on_shutdown", "worker"), ("on_start", "worker")]
    assert manager.agents["worker"].crashed is False
    assert result.outcome == HealingOutcome.SUCCESS
    assert result.context.stage_results[HealingStage.STAGE_5_PREPARE]["verify_from_metrics_provider"] is True
    assert result.context.repairs[0].status == RepairStatus.SUCCESS


def test_failed_tasks_are_retried():
    orch = TaskDictOrchestrator()
    orch.add("t1", name="load", executor=executor, status=TaskStatus.ERROR)
    orch.add("t2", name="parse", executor=executor, status=TaskStatus.ERROR)
    orch.add("t3", name="ok", executor=executor, status=TaskStatus.DONE)
    fresh = lambda: {"faza25_metrics": {"error_rate": orch.error_rate()}}
    p = pipeline(repair_context={"orchestrator": orch}, metrics_provider=fresh)
    result = p.execute_healing_cycle(faza25_metrics={"error_rate": 0.66})
    assert sorted(s["name"] for s in orch.submitted) == ["load", "parse"]
    assert result.outcome == HealingOutcome.SUCCESS
    assert result.context.repairs[0].status == RepairStatus.SUCCESS


def test_repairs_are_matched_by_fault_id_when_a_fault_has_no_engine():
    graph = weak_cycle_graph()
    # Only the graph engine: the error-rate fault (listed first) has no engine.
    p = pipeline(repair_engines={"graph": GraphRepairEngine()}, repair_context={"task_graph": graph},
                 metrics_provider=lambda: graph_metrics(graph))
    result = p.execute_healing_cycle(faza25_metrics={"error_rate": 0.6}, faza27_metrics={"cycle_count": 1})
    faults = {f.fault_type: f.fault_id for f in result.context.faults}
    assert list(faults) == ["high_error_rate", "graph_cycle"]
    (repair,) = result.context.repairs
    assert repair.fault_id == faults["graph_cycle"] and repair.status == RepairStatus.SUCCESS
    assert result.context.metadata["repair_strategies"] == [
        {"fault_id": faults["graph_cycle"], "engine": "graph", "category": "structural"}
    ]
    select = result.context.stage_results[HealingStage.STAGE_4_SELECT_STRATEGY]
    assert select["unmatched_faults"] == [faults["high_error_rate"]]
    assert graph.removed == [("b", "c")]
    assert result.outcome == HealingOutcome.PARTIAL and result.faults_repaired == 1


@pytest.mark.parametrize("with_health_engine", [True, False])
def test_health_before_and_after_are_floats_from_the_metrics(with_health_engine):
    graph = weak_cycle_graph()
    p = pipeline(health=with_health_engine, repair_context={"task_graph": graph},
                 metrics_provider=lambda: {"faza25_metrics": {"queue_size": 10}, **graph_metrics(graph)})
    before_metrics = {"faza25_metrics": {"queue_size": 150}, "faza27_metrics": {"cycle_count": 1}}
    result = p.execute_healing_cycle(**before_metrics)
    # queue > 100: -20 on the orchestrator (weight 0.2); one cycle: -10 on the graph (weight 0.2).
    assert result.context.health_before == pytest.approx(100 - 4 - 2)
    assert result.context.health_after == pytest.approx(100.0)
    assert isinstance(result.context.health_before, float)
    assert result.health_improvement == pytest.approx(6.0)
    check = result.context.stage_results[HealingStage.STAGE_8_HEALTH_CHECK]
    assert check["measured"] is True
    assert check["source"] == ("health_engine" if with_health_engine else "formula")
    assert check["refreshed_layers"] == ["faza25_metrics", "faza27_metrics"]


def test_without_a_metrics_provider_health_after_is_not_invented():
    result = pipeline().execute_healing_cycle(faza25_metrics={"queue_size": 150})
    assert result.context.health_after == result.context.health_before == pytest.approx(96.0)
    assert result.health_improvement == 0.0
    check = result.context.stage_results[HealingStage.STAGE_8_HEALTH_CHECK]
    assert check["measured"] is False and "no metrics_provider" in check["note"]


def test_a_repair_that_makes_health_worse_is_rolled_back(tmp_path):
    graph = weak_cycle_graph()
    before_edges = graph.capture()
    manager = SnapshotManager(tmp_path / "snaps")
    manager.register_state_provider("task_graph", graph.capture, graph.restore)
    damage = {"queue": 5}

    def break_cycle(src, dst, cycle):
        # Breaks the cycle, but also cuts every edge out of c and floods the queue.
        graph.remove_edge(src, dst)
        graph.edges = [e for e in graph.edges if e.source_id != "c"]
        damage["queue"] = 900

    fresh = lambda: {"faza25_metrics": {"queue_size": damage["queue"]}, **graph_metrics(graph)}
    p = pipeline(manager, repair_context={"actions": {"break_cycle": break_cycle}}, metrics_provider=fresh)
    result = p.execute_healing_cycle(faza27_metrics={"cycle_count": 1, "cycles": [["a", "b", "c"]]})
    assert result.context.health_after < result.context.health_before
    assert result.rollback_performed is True
    assert result.outcome == HealingOutcome.ROLLBACK
    # The graph is back to what it was before the repair.
    assert graph.capture() == before_edges
    rollback = result.context.stage_results[HealingStage.STAGE_9_ROLLBACK]
    assert rollback["rollback_needed"] is True and rollback["restored"] == ["task_graph"]
    assert rollback["snapshot_id"] == result.context.snapshot_id
    assert p.get_statistics()["rollback_cycles"] == 1


def test_rollback_with_nothing_restorable_says_so(tmp_path):
    def worse():
        return {"faza25_metrics": {"queue_size": 900, "task_success_rate": 0.2}}

    # A snapshot manager without state providers: the restore succeeds but puts nothing back.
    p = pipeline(SnapshotManager(tmp_path / "snaps"), metrics_provider=worse)
    result = p.execute_healing_cycle(faza25_metrics={"queue_size": 150})
    rollback = result.context.stage_results[HealingStage.STAGE_9_ROLLBACK]
    assert rollback["rollback_needed"] is True
    assert rollback["rollback_performed"] is False and rollback["restored"] == []
    assert "nothing was restored" in rollback["reason"]
    assert result.rollback_performed is False
    assert result.outcome == HealingOutcome.FAILED

    # No snapshot manager at all.
    result = pipeline(metrics_provider=worse).execute_healing_cycle(faza25_metrics={"queue_size": 150})
    rollback = result.context.stage_results[HealingStage.STAGE_9_ROLLBACK]
    assert rollback["rollback_performed"] is False and "no pre-repair snapshot" in rollback["reason"]
    assert result.rollback_performed is False and result.outcome == HealingOutcome.FAILED


def test_dry_run_acts_on_nothing(tmp_path):
    graph = weak_cycle_graph()
    calls = []
    folder = tmp_path / "snaps"
    p = pipeline(SnapshotManager(folder), repair_context={"task_graph": graph},
                 metrics_provider=lambda: calls.append("measured") or graph_metrics(graph), dry_run=True)
    result = p.execute_healing_cycle(faza27_metrics={"cycle_count": 1})
    assert graph.removed == [] and calls == []
    assert list(folder.glob("snap_*.json")) == []
    assert result.outcome == HealingOutcome.SKIPPED
    assert result.stages_completed == ALL_STAGES
    assert result.context.metadata["dry_run"] is True
    stages = result.context.stage_results
    assert stages[HealingStage.STAGE_3_SNAPSHOT]["dry_run"] is True
    execute = stages[HealingStage.STAGE_6_EXECUTE_REPAIR]
    assert execute["dry_run"] is True and execute["repairs_attempted"] == 0
    assert execute["planned"] == [{"fault_id": result.context.faults[0].fault_id, "engine": "graph"}]
    assert result.context.repairs == []
    assert p.get_statistics()["dry_run_cycles"] == 1
    # The same pipeline acts when the call says so.
    acted = p.execute_healing_cycle(faza27_metrics={"cycle_count": 1}, dry_run=False)
    assert graph.removed == [("b", "c")] and acted.outcome == HealingOutcome.SUCCESS


def test_every_outcome_goes_to_the_history_newest_first_and_the_counters_add_up():
    graph = weak_cycle_graph()

    class Broken:
        def can_repair(self, fault, context):
            return True

        def repair(self, fault, context):
            raise RuntimeError("engine exploded")

    p = pipeline(history_size=3, repair_context={"task_graph": graph}, metrics_provider=lambda: graph_metrics(graph))
    skipped = p.execute_healing_cycle()
    success = p.execute_healing_cycle(faza27_metrics={"cycle_count": 1})
    p.repair_engines = {"broken": Broken()}
    failed = p.execute_healing_cycle(faza25_metrics={"error_rate": 0.9})
    dry = p.execute_healing_cycle(faza25_metrics={"error_rate": 0.9}, dry_run=True)
    assert [r.outcome for r in (skipped, success, failed, dry)] == [
        HealingOutcome.SKIPPED, HealingOutcome.SUCCESS, HealingOutcome.FAILED, HealingOutcome.SKIPPED
    ]
    assert p.get_recent_cycles(limit=10) == [dry, failed, success]
    assert p.get_recent_cycles(limit=1) == [dry]
    assert p.get_recent_cycles(limit=0) == []
    stats = p.get_statistics()
    counted = sum(stats[k] for k in ("successful_cycles", "partial_cycles", "failed_cycles", "rollback_cycles", "skipped_cycles"))
    assert counted == stats["total_cycles"] == 4
    assert stats["history_size"] == 3
    with pytest.raises(ValueError):
        p.get_recent_cycles(limit=-1)


def test_a_raising_engine_fails_only_its_repair_and_the_error_is_recorded():
    graph = weak_cycle_graph()

    class Broken:
        def can_repair(self, fault, context):
            return "error" in fault.fault_type

        def repair(self, fault, context):
            raise RuntimeError("engine exploded")

    repair_engines = {"broken": Broken(), "graph": GraphRepairEngine()}
    p = pipeline(repair_engines=repair_engines, repair_context={"task_graph": graph},
                 metrics_provider=lambda: graph_metrics(graph))
    result = p.execute_healing_cycle(faza25_metrics={"error_rate": 0.9}, faza27_metrics={"cycle_count": 1})
    assert result.stages_completed == ALL_STAGES
    failed, repaired = result.context.repairs
    assert failed.status == RepairStatus.FAILED
    assert failed.metadata == {"error": "RuntimeError: engine exploded", "engine": "broken"}
    assert repaired.status == RepairStatus.SUCCESS and graph.removed == [("b", "c")]
    execute = result.context.stage_results[HealingStage.STAGE_6_EXECUTE_REPAIR]
    assert execute["repair_errors"] == 1
    assert execute["repairs"][0]["error"] == "RuntimeError: engine exploded"
    assert result.outcome == HealingOutcome.PARTIAL


def test_failing_callbacks_are_recorded_and_the_cycle_goes_on():
    def provider():
        raise ConnectionError("metrics endpoint down")

    def context():
        raise KeyError("no context")

    p = pipeline(repair_context=context, metrics_provider=provider)
    result = p.execute_healing_cycle(faza25_metrics={"queue_size": 150})
    assert result.stages_completed == ALL_STAGES
    prepare = result.context.stage_results[HealingStage.STAGE_5_PREPARE]
    assert prepare["ready"] is False and prepare["context_error"] == "KeyError: 'no context'"
    check = result.context.stage_results[HealingStage.STAGE_8_HEALTH_CHECK]
    assert check["measured"] is False
    assert check["note"] == "metrics_provider raised ConnectionError: metrics endpoint down"


def test_a_failing_stage_ends_the_cycle_failed_with_the_error_type_and_message():
    class BadHealth:
        def compute_health_score(self, **kw):
            raise ZeroDivisionError("no weights")

    p = HealingPipeline(DetectionEngine(), ClassificationEngine(), engines(), None, BadHealth())
    result = p.execute_healing_cycle(faza25_metrics={"queue_size": 150})
    assert result.outcome == HealingOutcome.FAILED
    assert result.context.metadata["error"] == "ZeroDivisionError: no weights"
    assert result.context.metadata["failed_stage"] == "prepare"
    assert result.stages_completed == ALL_STAGES[:4]
    assert p.get_recent_cycles() == [result]
    assert p.get_statistics()["failed_cycles"] == 1


def test_learning_records_each_pair_and_steers_the_choice():
    class Engine:
        def __init__(self, status):
            self.status, self.calls = status, 0

        def can_repair(self, fault, context):
            return fault.fault_type == "scheduler_deadlock"

        def repair(self, fault, context):
            self.calls += 1
            return RepairResult(fault_id=fault.fault_id, status=self.status)

    first, second = Engine(RepairStatus.FAILED), Engine(RepairStatus.SUCCESS)
    p = pipeline(repair_engines={"first": first, "second": second})
    stuck = {"faza28_metrics": {"scheduler_stuck": True}}
    r1 = p.execute_healing_cycle(**stuck)
    assert (first.calls, second.calls) == (1, 0)  # untried: the engine listed first
    assert r1.context.stage_results[HealingStage.STAGE_4_SELECT_STRATEGY]["selected"][0]["candidates"] == ["first", "second"]
    r2 = p.execute_healing_cycle(**stuck)
    assert (first.calls, second.calls) == (1, 1)  # first failed once: second scores better now
    assert r2.outcome == HealingOutcome.SUCCESS
    p.execute_healing_cycle(**stuck)
    assert (first.calls, second.calls) == (1, 2)
    table = {(e["fault_type"], e["engine"]): e for e in p.get_learning_table()}
    assert table[("scheduler_deadlock", "first")]["attempts"] == 1
    assert table[("scheduler_deadlock", "first")]["success_rate"] == 0.0
    assert table[("scheduler_deadlock", "second")]["attempts"] == 2
    assert table[("scheduler_deadlock", "second")]["success_rate"] == 1.0
    learned = r2.context.stage_results[HealingStage.STAGE_11_LEARN]["learned"]
    assert learned == [{"fault_type": "scheduler_deadlock", "engine": "second", "attempts": 1,
                        "success_rate": 1.0, "score": pytest.approx(2 / 3)}]
    p.reset_learning()
    assert p.get_learning_table() == []


def test_events_are_emitted_where_they_happen(tmp_path):
    graph = weak_cycle_graph()
    hooks = EventHooks()
    seen = []
    for t in EventType:
        hooks.subscribe(t, lambda e: seen.append((e.event_type, dict(e.data))))
    p = pipeline(SnapshotManager(tmp_path / "s"), event_hooks=hooks, repair_context={"task_graph": graph},
                 metrics_provider=lambda: graph_metrics(graph))
    result = p.execute_healing_cycle(faza27_metrics={"cycle_count": 1})
    types = [t for t, _ in seen]
    assert types == [
        "healing_cycle_started", "fault_detected", "critical_fault", "fault_classified", "snapshot_created",
        "repair_started", "repair_completed", "repair_verified", "fault_resolved", "health_improved",
        "healing_cycle_completed",
    ]
    data = dict(seen)
    fault_id = result.context.faults[0].fault_id
    assert data["fault_detected"] == {"fault_id": fault_id, "severity": "critical", "fault_type": "graph_cycle"}
    assert data["repair_completed"]["success"] is True and data["repair_completed"]["repair_type"] == "graph"
    assert data["healing_cycle_completed"]["outcome"] == "success"
    assert data["snapshot_created"]["snapshot_id"] == result.context.snapshot_id

    # A failing repair, a declining health and a failing cycle.
    seen.clear()
    p.repair_engines = {"graph": GraphRepairEngine()}
    p.repair_context = {}
    p.metrics_provider = lambda: {"faza27_metrics": {"cycle_count": 5}, "faza25_metrics": {"queue_size": 900}}
    p.execute_healing_cycle(faza27_metrics={"cycle_count": 1})
    types = [t for t, _ in seen]
    assert "health_degraded" in types and "health_critical" not in types
    assert "snapshot_restored" in types and "rollback_performed" not in types  # nothing restorable


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_failing_subscriber_does_not_fail_the_cycle():
    hooks = EventHooks()

    def boom(event):
        raise RuntimeError("subscriber bug")

    hooks.subscribe(EventType.FAULT_DETECTED, boom)
    result = pipeline(event_hooks=hooks).execute_healing_cycle(faza25_metrics={"queue_size": 150})
    assert result.stages_completed == ALL_STAGES
    assert hooks.get_statistics()["subscriber_errors"] == 1


def test_stabilize_waits_the_configured_time():
    p = pipeline(stabilize_seconds=0.05)
    result = p.execute_healing_cycle(faza25_metrics={"queue_size": 150})
    stabilize = result.context.stage_results[HealingStage.STAGE_10_STABILIZE]
    assert stabilize["waiting_period"] == 0.05 and stabilize["waited"] >= 0.05
    quick = p.execute_healing_cycle(faza25_metrics={"queue_size": 150}, stabilize_seconds=0.0)
    assert quick.context.stage_results[HealingStage.STAGE_10_STABILIZE]["waited"] == 0.0
    with pytest.raises(ValueError):
        p.execute_healing_cycle(stabilize_seconds=-1.0)


def test_the_async_variant_runs_callbacks_on_the_event_loop():
    graph = weak_cycle_graph()
    threads = []

    async def fresh():
        threads.append(threading.get_ident())
        await asyncio.sleep(0)
        return graph_metrics(graph)

    def context():
        threads.append(threading.get_ident())
        return {"task_graph": graph}

    p = pipeline(repair_context=context, metrics_provider=fresh, stabilize_seconds=0.01)

    async def main():
        return await p.execute_healing_cycle_async(faza27_metrics={"cycle_count": 1}), threading.get_ident()

    result, loop_thread = asyncio.run(main())
    assert result.outcome == HealingOutcome.SUCCESS
    assert graph.removed == [("b", "c")]
    assert threads and set(threads) == {loop_thread}
    assert result.context.stage_results[HealingStage.STAGE_10_STABILIZE]["waited"] >= 0.01
    assert p.get_recent_cycles(1) == [result]


def test_the_async_variant_needs_a_running_loop():
    with pytest.raises(RuntimeError, match="running event loop"):
        pipeline().execute_healing_cycle_async()


# ---------------------------------------------------------------------------------------------
# Hostile input and reentrancy


@pytest.mark.parametrize("bad", [[1, 2], "queue", 3, object()])
def test_non_dict_metrics_are_a_type_error_naming_the_parameter(bad):
    p = pipeline()
    with pytest.raises(TypeError, match="faza28_5_metrics must be a dict or None"):
        p.execute_healing_cycle(faza28_5_metrics=bad)
    assert p.get_statistics()["total_cycles"] == 0
    assert p.execute_healing_cycle(faza25_metrics={"queue_size": 150}).faults_detected == 1


def test_unreadable_metric_values_raise_and_record_nothing():
    p = pipeline()
    with pytest.raises(ValueError):
        p.execute_healing_cycle(faza25_metrics={"queue_size": math.nan})
    with pytest.raises(TypeError):
        p.execute_healing_cycle(faza25_metrics={"queue_size": "many"})
    assert p.get_statistics()["total_cycles"] == 0
    assert p.is_running() is False
    assert p.execute_healing_cycle(faza25_metrics={"queue_size": 150}).faults_detected == 1


def test_a_cycle_cannot_start_inside_another_on_the_same_pipeline():
    holder = {}

    def provider():
        holder["pipeline"].execute_healing_cycle(faza25_metrics={"queue_size": 150})

    p = pipeline(metrics_provider=provider)
    holder["pipeline"] = p
    result = p.execute_healing_cycle(faza25_metrics={"queue_size": 150})
    note = result.context.stage_results[HealingStage.STAGE_8_HEALTH_CHECK]["note"]
    assert "RuntimeError: a healing cycle is already running" in note
    assert p.get_statistics()["total_cycles"] == 1


def test_bad_construction_arguments_are_refused():
    with pytest.raises(TypeError, match="detection_engine"):
        HealingPipeline(None, ClassificationEngine(), {})
    with pytest.raises(TypeError, match="classification_engine must provide classify_fault"):
        HealingPipeline(DetectionEngine(), object(), {})
    with pytest.raises(TypeError, match="repair_engines must be a dict"):
        HealingPipeline(DetectionEngine(), ClassificationEngine(), [GraphRepairEngine()])
    with pytest.raises(TypeError, match=r"repair_engines\['x'\] must provide can_repair"):
        HealingPipeline(DetectionEngine(), ClassificationEngine(), {"x": object()})
    with pytest.raises(TypeError, match="metrics_provider must be a zero-argument callable"):
        pipeline(metrics_provider={"faza25_metrics": {}})
    with pytest.raises(ValueError, match="history_size"):
        pipeline(history_size=0)


def test_a_provider_answer_of_the_wrong_shape_is_recorded():
    p = pipeline(metrics_provider=lambda: [1, 2])
    result = p.execute_healing_cycle(faza25_metrics={"queue_size": 150})
    note = result.context.stage_results[HealingStage.STAGE_8_HEALTH_CHECK]["note"]
    assert "sequence of 2 items" in note


# ---------------------------------------------------------------------------------------------
# Reference interface


def test_reference_constructors_and_records():
    det, cls, eng = DetectionEngine(), ClassificationEngine(), engines()
    p = create_healing_pipeline(det, cls, eng, None, None)
    assert p.detection_engine is det and p.classification_engine is cls and p.repair_engines is eng
    assert p.snapshot_manager is None and p.health_engine is None
    result = p.execute_healing_cycle({"queue_size": 150}, {}, {}, {}, {})
    assert result.faults_detected == 1
    ctx = HealingContext(cycle_id="c1")
    assert (ctx.faults, ctx.classifications, ctx.repairs, ctx.snapshot_id) == ([], [], [], None)
    assert (ctx.health_before, ctx.health_after, ctx.stage_results, ctx.metadata) == (0.0, 0.0, {}, {})
    made = HealingResult("c1", HealingOutcome.SUCCESS, 1, 1, 0.5, 0.1, [HealingStage.STAGE_1_DETECT], False, ctx)
    assert made.context is ctx and made.outcome == HealingOutcome.SUCCESS
    assert made == HealingResult("c1", HealingOutcome.SUCCESS, 1, 1, 0.5, 0.1, [HealingStage.STAGE_1_DETECT], False, ctx,
                                 timestamp=made.timestamp)
    assert str(HealingStage.STAGE_9_ROLLBACK) == "HealingStage.STAGE_9_ROLLBACK"
    assert HealingOutcome("rollback") is HealingOutcome.ROLLBACK


def test_ids_are_unique_and_results_are_lazy_but_stable():
    p = pipeline()
    results = [p.execute_healing_cycle(faza25_metrics={"queue_size": 150}) for _ in range(20)]
    assert len({r.cycle_id for r in results}) == 20
    r = results[-1]
    assert r.cycle_id.startswith("healing_")
    assert r.context is r.context
    r.context.metadata["note"] = "kept"
    assert r.context.metadata["note"] == "kept"


def test_a_failing_snapshot_is_recorded_and_the_repairs_still_run():
    class BrokenManager:
        def create_snapshot(self, snapshot_type="manual", metadata=None, state_override=None):
            raise OSError("disk full")

        def restore_snapshot(self, snapshot_id):
            return False

    graph = weak_cycle_graph()
    p = pipeline(BrokenManager(), repair_context={"task_graph": graph}, metrics_provider=lambda: graph_metrics(graph))
    result = p.execute_healing_cycle(faza27_metrics={"cycle_count": 1})
    snap = result.context.stage_results[HealingStage.STAGE_3_SNAPSHOT]
    assert snap == {"snapshot_created": False, "error": "OSError: disk full"}
    assert result.context.snapshot_id is None
    assert graph.removed == [("b", "c")] and result.outcome == HealingOutcome.SUCCESS


def test_the_async_variant_captures_and_restores_state_on_the_event_loop(tmp_path):
    graph = weak_cycle_graph()
    before_edges = graph.capture()
    provider_threads = []

    def capture():
        provider_threads.append(threading.get_ident())
        return graph.capture()

    def restore(section):
        provider_threads.append(threading.get_ident())
        graph.restore(section)

    manager = SnapshotManager(tmp_path / "snaps")
    manager.register_state_provider("task_graph", capture, restore)

    def break_badly(src, dst, cycle):
        graph.edges = []

    fresh = lambda: {"faza25_metrics": {"queue_size": 900, "task_success_rate": 0.1}, **graph_metrics(graph)}
    p = pipeline(manager, repair_context={"actions": {"break_cycle": break_badly}}, metrics_provider=fresh)

    async def main():
        return await p.execute_healing_cycle_async(faza27_metrics={"cycle_count": 1, "cycles": [["a", "b", "c"]]}), \
            threading.get_ident()

    result, loop_thread = asyncio.run(main())
    assert result.outcome == HealingOutcome.ROLLBACK and result.rollback_performed is True
    assert graph.capture() == before_edges
    assert len(provider_threads) == 2 and set(provider_threads) == {loop_thread}


def test_the_async_variant_publishes_events_on_the_event_loop_in_order():
    graph = weak_cycle_graph()
    hooks = EventHooks()
    seen = []
    for t in EventType:
        hooks.subscribe(t, lambda e: seen.append((e.event_type, threading.get_ident())))
    p = pipeline(event_hooks=hooks, repair_context={"task_graph": graph}, metrics_provider=lambda: graph_metrics(graph))

    async def main():
        return await p.execute_healing_cycle_async(faza27_metrics={"cycle_count": 1}), threading.get_ident()

    result, loop_thread = asyncio.run(main())
    assert result.outcome == HealingOutcome.SUCCESS
    assert [t for t, _ in seen] == [
        "healing_cycle_started", "fault_detected", "critical_fault", "fault_classified", "repair_started",
        "repair_completed", "repair_verified", "fault_resolved", "health_improved", "healing_cycle_completed",
    ]
    assert {thread for _, thread in seen} == {loop_thread}
