"""The controller against the REAL FAZA layers of the reference repository.

Skipped unless FAZA_REFERENCE_REPO points at a senti_system checkout (the real layers are
not part of this project). Run with:

    FAZA_REFERENCE_REPO=/path/to/senti_system bash scripts/test.sh tests/test_real_layers.py
"""

import asyncio
import os

import pytest

import senti_os.core.faza30  # noqa: F401  (our wheel first, so faza30 keeps resolving to it)
from senti_os.core.faza30 import AutorepairConfig, AutorepairMode, RepairStatus, create_healing_controller

REPO = os.environ.get("FAZA_REFERENCE_REPO")
pytestmark = pytest.mark.skipif(not REPO or not os.path.isdir(str(REPO)),
                                reason="set FAZA_REFERENCE_REPO to a senti_system checkout")


def _config():
    return AutorepairConfig(mode=AutorepairMode.AGGRESSIVE, cooldown_seconds=0.0)


def test_a_real_cycle_in_a_real_task_graph_is_broken_and_verified(real, tmp_path):
    graph = real.task_graph.TaskGraph("real")
    for n in "abc":
        graph.add_node(real.task_node.TaskNode(n, n.upper()))
    E = real.task_edge
    graph.add_edge(E.TaskEdge("a", "b"))
    graph.add_edge(E.TaskEdge("b", "c"))
    # A WEAK edge is accepted by the real add_edge even though it closes a cycle.
    graph.add_edge(E.TaskEdge("c", "a", E.EdgeType.WEAK, 0.5))
    assert graph.has_cycle()

    controller = create_healing_controller(faza27_task_graph=graph, autorepair_config=_config(),
                                           snapshot_dir=str(tmp_path))
    summary = controller.force_healing_cycle()
    assert summary["faults_detected"] >= 1 and summary["faults_repaired"] >= 1
    cycle = controller.get_healing_pipeline().get_recent_cycles(1)[0]
    repair = next(r for r in cycle.context.repairs if r.fault_id.startswith("f27_cycle_"))
    assert repair.status == RepairStatus.SUCCESS and repair.verification_passed
    assert not graph.has_cycle()
    assert not graph.has_edge("c", "a") and graph.has_edge("a", "b") and graph.has_edge("b", "c")


def test_a_real_crashing_agent_is_restarted(real, tmp_path):
    class Flaky(real.agent_base.AgentBase):
        """A real FAZA 28 agent that crashes until it is restarted."""
        name, priority = "flaky", 10

        def __init__(self):
            super().__init__()
            self.crashing = False
            self.lifecycle = []

        async def on_shutdown(self, context):
            self.lifecycle.append("shutdown")

        async def on_start(self, context):
            self.lifecycle.append("start")
            self.crashing = False
            self.tick_count += 1  # its start-up self-check

        async def on_tick(self, context):
            if self.crashing:
                raise RuntimeError("flaky cannot tick")
            self.tick_count += 1

    manager = real.agent_manager.AgentManager()
    agent = Flaky()
    manager.register(agent)
    manager.register(real.agent_base.AgentBase())
    bus = real.event_bus.EventBus()
    ael = real.ael_loop.AELController(agent_manager=manager, event_bus=bus, scheduler=real.scheduler.Scheduler(),
                                      state_context=real.state_context.StateContext("t"), tick_rate=0.01)
    controller = create_healing_controller(faza28_agent_loop=ael, event_bus=bus, autorepair_config=_config(),
                                           snapshot_dir=str(tmp_path))

    async def main():
        controller.get_integration_layer().get_faza28_metrics()  # the counters' starting point
        loop_task = asyncio.create_task(ael.start())
        for _ in range(300):
            await asyncio.sleep(0.01)
            if agent.tick_count >= 2:
                break
        agent.lifecycle.clear()  # the loop's own boot start
        agent.crashing = True
        for _ in range(300):
            await asyncio.sleep(0.01)
            if agent.error_count >= 3:
                break
        await ael.stop()
        await loop_task
        return await controller.force_healing_cycle_async()

    summary = asyncio.run(main())
    assert agent.lifecycle == ["shutdown", "start"]
    assert not agent.crashing
    cycle = controller.get_healing_pipeline().get_recent_cycles(1)[0]
    repair = next(r for r in cycle.context.repairs if r.fault_id.startswith("f28_agent_"))
    assert repair.status == RepairStatus.SUCCESS, repair.actions_taken
    assert summary["faults_repaired"] >= 1
    # The event reached the real bus through its real API.
    assert any(e.type.startswith("faza30.") for e in bus.get_event_history())


def test_a_real_takeover_is_critical_and_health_falls_below_75(real, tmp_path):
    gov = real.governance.GovernanceController()
    gov.takeover_manager.manual_takeover()
    controller = create_healing_controller(faza29_governance=gov, autorepair_config=_config(),
                                           snapshot_dir=str(tmp_path))
    faults = controller.get_detection_engine().detect_faults(
        faza29_metrics=controller.get_integration_layer().get_faza29_metrics())
    takeover = [f for f in faults if f.fault_type == "system_takeover"]
    assert takeover and takeover[0].severity.value == "critical"
    health = controller.get_health()
    assert health["overall_score"] < 75
    assert health["level"] in ("fair", "poor", "critical")
