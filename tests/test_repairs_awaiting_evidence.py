"""Restarts and retries that ran but cannot be confirmed in the same cycle (nothing has ticked
or finished since) are PARTIAL "awaiting_evidence", not FAILED: the loop's circuit breaker
does not count them, so it keeps restarting crashing agents, while a target repaired again
and again is still backed off. The audit journal records the outcome and older entries
(with only `succeeded`) still load.

The layers are the doubles shaped like the real ones (`doubles.py`); forced cycles go through
the loop's own admission gate and throttle, so no test waits on the loop's timer."""

import asyncio

from senti_os.core.faza30 import AuditJournal, AutorepairConfig, create_healing_controller
from senti_os.core.faza30.enums import HealingOutcome, HealingStage, RepairStatus

import doubles as d


def _config():
    # Cooldown and the global windows out of the way: only the breaker and per-target rules act.
    return AutorepairConfig(mode="aggressive", cooldown_seconds=0.0,
                            max_repairs_per_minute=100_000, max_repairs_per_hour=1_000_000)


Crasher = d.CrashingAgent


class AgentSystem:
    def __init__(self, tmp_path, crashers=8, journal_dir=False, prefix="w"):
        self.manager = d.AgentManager()
        self.crashers = [Crasher(f"{prefix}{i}") for i in range(crashers)]
        for a in self.crashers + [d.AgentBase("steady")]:
            self.manager.register(a)
        self.loop = d.AELController(agent_manager=self.manager)
        self.ctl = create_healing_controller(faza28_agent_loop=self.loop, autorepair_config=_config(),
                                             snapshot_dir=str(tmp_path / "snaps"),
                                             audit_journal_dir=journal_dir)
        self.ctl.get_integration_layer().get_faza28_metrics()  # the tick counters' starting point
        asyncio.run(self.loop.run_iteration())

    def crash_and_heal(self, agent):
        """`agent` crashes on one pass of the agent loop, then a forced healing cycle runs."""
        agent.failing = True
        asyncio.run(self.loop.run_iteration())
        self.ctl.force_healing_cycle()
        result = self.ctl.get_healing_pipeline().get_recent_cycles(1)[0]
        (repair,) = [r for r in result.context.repairs if r.fault_id.startswith("f28_agent")]
        return result, repair


def test_crashing_agents_are_restarted_past_five_cycles_and_each_restart_awaits_evidence(tmp_path):
    system = AgentSystem(tmp_path)
    for n, agent in enumerate(system.crashers, 1):
        result, repair = system.crash_and_heal(agent)
        assert repair.status == RepairStatus.PARTIAL, (n, repair.status, repair.metadata.get("error"))
        assert repair.metadata["reason"] == "awaiting_evidence"
        assert repair.metadata["verification"]["verdict"] == "inconclusive"
        assert repair.verification_passed is False
        assert repair.metadata["actions"][0]["verb"] == "restart_agent"
        assert repair.metadata["actions"][0]["target"] == agent.name
        assert agent.restarts == 1 and agent.failing is False
        # Honest counts: restarted, not repaired, not verified.
        assert result.outcome == HealingOutcome.PARTIAL
        assert result.faults_repaired == 0
        stages = result.context.stage_results
        assert stages[HealingStage.STAGE_7_VERIFY]["repairs_verified"] == 0
        assert stages[HealingStage.STAGE_7_VERIFY]["awaiting_evidence"] == [repair.fault_id]
        assert stages[HealingStage.STAGE_6_EXECUTE_REPAIR]["repairs_awaiting_evidence"] == 1
    # Eight restarts in a row, none held back by the "agent" engine's breaker (it opens after
    # five failures; before this change these restarts were FAILED and cycles 6-8 were refused).
    assert [a.restarts for a in system.crashers] == [1] * 8
    auto = system.ctl.get_autorepair_engine().get_statistics()
    assert auto["repairs_attempted"] == 8
    assert auto["repairs_awaiting_evidence"] == 8 and auto["repairs_successful"] == 0
    assert auto["escalations"] == 0
    stats = system.ctl.get_statistics()["repair"]["agent"]
    assert stats["partial_repairs"] == 8 and stats["failed_repairs"] == 0
    # The restarts worked: on the next pass every agent ticks, so no fault is left.
    asyncio.run(system.loop.run_iteration())
    assert system.ctl.force_healing_cycle()["faults_detected"] == 0


def test_the_same_agent_crashing_again_at_once_is_held_back_by_its_backoff(tmp_path):
    system = AgentSystem(tmp_path, crashers=2)
    w0, w1 = system.crashers
    _, first = system.crash_and_heal(w0)
    assert first.metadata["reason"] == "awaiting_evidence"
    # Crashing again right after its restart: the target backs off (5 s), no second restart.
    _, again = system.crash_and_heal(w0)
    assert again.status == RepairStatus.SKIPPED
    assert again.metadata["error"].startswith("not admitted: backoff for agent_failure:w0")
    assert w0.restarts == 1
    # Another agent is restarted meanwhile.
    w0.failing = False
    _, other = system.crash_and_heal(w1)
    assert other.metadata["reason"] == "awaiting_evidence" and w1.restarts == 1


def test_a_failed_task_resubmitted_before_anything_finished_awaits_evidence(tmp_path):
    orch = d.Orchestrator()
    ctl = create_healing_controller(faza25_orchestrator=orch, autorepair_config=_config(),
                                    snapshot_dir=str(tmp_path / "snaps"), audit_journal_dir=False)
    ctl.get_integration_layer().get_faza25_metrics()  # the task counters' starting point
    failed = orch.add(name="load")
    orch.finish(failed.id, ok=False)
    ctl.force_healing_cycle()
    result = ctl.get_healing_pipeline().get_recent_cycles(1)[0]
    (repair,) = [r for r in result.context.repairs if r.metadata.get("handler") == "retry_failed"]
    assert [s["name"] for s in orch.submitted] == ["load", "load"]
    assert repair.status == RepairStatus.PARTIAL
    assert repair.metadata["reason"] == "awaiting_evidence"
    assert repair.verification_passed is False
    assert result.outcome == HealingOutcome.PARTIAL and result.faults_repaired == 0


def test_the_journal_records_the_outcome_and_replays_it_without_opening_the_breaker(tmp_path):
    folder = tmp_path / "audit"
    system = AgentSystem(tmp_path / "first", crashers=6, journal_dir=str(folder))
    for agent in system.crashers:
        system.crash_and_heal(agent)
    entries = AuditJournal(folder).get_entries(kind="repair")
    assert len(entries) == 6
    for e in entries:
        assert e["data"]["outcome"] == "awaiting_evidence"
        assert e["data"]["succeeded"] is False  # what older readers understand
        assert e["data"]["action"] == "agent"
    # A restarted host replays six unconfirmed restarts: its breaker is still closed (another
    # agent crashes there: w0..w5 are backed off by the replay).
    restarted = AgentSystem(tmp_path / "second", crashers=1, journal_dir=str(folder), prefix="v")
    assert restarted.ctl.get_autorepair_engine().get_statistics()["recovered_repairs"] == 6
    _, repair = restarted.crash_and_heal(restarted.crashers[0])
    assert repair.status == RepairStatus.PARTIAL and restarted.crashers[0].restarts == 1


def test_journal_entries_written_before_outcomes_still_load(tmp_path):
    folder = tmp_path / "old"
    journal = AuditJournal(folder)
    for i in range(5):
        journal.append("repair", {"cycle_id": f"c{i}", "target": f"agent_failure:x{i}",
                                  "action": "agent", "succeeded": False})
    journal.flush()
    system = AgentSystem(tmp_path, crashers=1, journal_dir=str(folder))
    assert system.ctl.get_autorepair_engine().get_statistics()["recovered_repairs"] == 5
    # Five failed restarts replayed: the breaker resumes open, so no restart now.
    _, repair = system.crash_and_heal(system.crashers[0])
    assert repair.status == RepairStatus.SKIPPED
    assert "circuit open for agent" in repair.metadata["error"]
    assert system.crashers[0].restarts == 0


def test_a_python_engine_reporting_awaiting_evidence_is_no_breaker_failure_either(tmp_path):
    # A repair engine written in Python: the loop reads its RepairResult's status and reason.
    from senti_os.core.faza30 import (
        ClassificationEngine, DetectionEngine, HealingPipeline, HealthEngine,
    )
    from senti_os.core.faza30.autorepair_engine import AutorepairEngine
    from senti_os.core.faza30.repair_strategies import RepairResult, RepairStrategy

    class Restarter(RepairStrategy):
        def __init__(self):
            super().__init__()
            self.restarted = []

        def can_repair(self, fault, context):
            return fault.fault_type == "agent_failure"

        def repair(self, fault, context):
            self.restarted.append(fault.metrics["failing_agents"][0])
            return RepairResult(fault.fault_id, RepairStatus.PARTIAL,
                                metadata={"reason": "awaiting_evidence", "fault_type": fault.fault_type,
                                          "metrics": dict(fault.metrics)})

    class Fleet:
        """A new crashing agent at every collection: a new target each time."""

        def __init__(self):
            self.n = 0

        def get_all_metrics(self):
            self.n += 1
            return {"faza28": {"agent_failure_rate": 0.9, "failing_agents": [f"a{self.n}"]}}

    engine = Restarter()
    pipeline = HealingPipeline(DetectionEngine(), ClassificationEngine(), {"fleet": engine}, None, HealthEngine())
    auto = AutorepairEngine(pipeline, Fleet(), None, _config())
    for _ in range(7):
        auto.force_healing_cycle()
    assert len(engine.restarted) == 7, "the breaker held a restart back"
    stats = auto.get_statistics()
    assert stats["repairs_awaiting_evidence"] == 7 and stats["repairs_successful"] == 0


def test_a_restart_awaiting_evidence_does_not_announce_the_fault_resolved(tmp_path):
    # The re-measurement right after a restart has no failure rate for the agent yet; that
    # absence is not evidence that the fault is gone.
    system = AgentSystem(tmp_path, crashers=1)
    seen = []
    hooks = system.ctl.get_event_hooks()
    for kind in ("fault_resolved", "repair_verified", "repair_completed"):
        hooks.subscribe(kind, lambda event: seen.append((str(event.event_type), event.data.get("fault_id"))))
    _, repair = system.crash_and_heal(system.crashers[0])
    assert repair.metadata["reason"] == "awaiting_evidence"
    mine = [kind for kind, fault_id in seen if fault_id == repair.fault_id]
    assert mine == ["repair_completed"], seen
