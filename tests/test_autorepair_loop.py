"""The auto-repair loop with our own pipeline and integration layer: the configuration's
snapshot and rollback switches, and coroutine callbacks that really suspend on the host loop."""

import asyncio

import pytest

from senti_os.core.faza30 import (
    AgentRepairEngine, ClassificationEngine, DetectionEngine, GovernanceRepairEngine,
    GraphRepairEngine, HealingPipeline, HealthEngine, SchedulerRepairEngine,
)
from senti_os.core.faza30.autorepair_engine import AutorepairConfig, AutorepairEngine, AutorepairMode
from senti_os.core.faza30.enums import HealingOutcome, HealingStage
from senti_os.core.faza30.snapshot_manager import SnapshotManager


def _config(**kw):
    base = dict(mode=AutorepairMode.AGGRESSIVE, interval_seconds=0.01, cooldown_seconds=0.0,
                max_repairs_per_minute=10_000, max_repairs_per_hour=100_000)
    base.update(kw)
    return AutorepairConfig(**base)


def _pipeline(snapshot_manager=None, **kw):
    engines = {"graph": GraphRepairEngine(), "agent": AgentRepairEngine(),
               "scheduler": SchedulerRepairEngine(), "governance": GovernanceRepairEngine()}
    return HealingPipeline(DetectionEngine(), ClassificationEngine(), engines, snapshot_manager,
                           HealthEngine(), **kw)


class DamagingSystem:
    """A dependency cycle whose 'fix' floods the queue, so health declines after the repair.
    Its state (the queue size) is captured and restored by a snapshot state provider."""

    def __init__(self):
        self.queue = 5
        self.fixes = 0

    def get_all_metrics(self):
        return {"faza27": {"cycle_count": 1, "cycles": [["a", "b"]]}}

    def break_cycle(self, **kw):
        self.fixes += 1
        self.queue = 900
        return True

    def fresh(self):
        return {"faza25_metrics": {"queue_size": self.queue}, "faza27_metrics": {"cycle_count": 0}}

    def capture(self):
        return {"queue": self.queue}

    def restore(self, state):
        self.queue = state["queue"]


def _damaging_setup(tmp_path, **config):
    system = DamagingSystem()
    manager = SnapshotManager(tmp_path / "snaps")
    manager.register_state_provider("queue", system.capture, system.restore)
    pipeline = _pipeline(manager, repair_context={"actions": {"break_cycle": system.break_cycle}},
                         metrics_provider=system.fresh)
    engine = AutorepairEngine(pipeline, system, None, _config(**config))
    return system, manager, pipeline, engine


def _run_loop(engine, pipeline, cycles=1, limit=2.0):
    async def main():
        await engine.start()
        waited = 0.0
        while len(pipeline.get_recent_cycles(100)) < cycles and waited < limit:
            await asyncio.sleep(0.01)
            waited += 0.01
        await engine.stop()

    asyncio.run(main())
    return pipeline.get_recent_cycles(100)


# --- enable_snapshots / enable_rollback -------------------------------------------------------

def test_loop_cycles_take_a_pre_repair_snapshot_by_default(tmp_path):
    system, manager, pipeline, engine = _damaging_setup(tmp_path)
    results = _run_loop(engine, pipeline)
    assert results and all(r.context.snapshot_id for r in results)
    assert manager.get_statistics()["total_created"] >= len(results)


def test_enable_snapshots_false_takes_no_snapshot_in_loop_cycles(tmp_path):
    system, manager, pipeline, engine = _damaging_setup(tmp_path, enable_snapshots=False)
    results = _run_loop(engine, pipeline)
    assert results and system.fixes >= 1
    assert manager.get_statistics()["total_created"] == 0
    assert manager.list_snapshots() == []
    for r in results:
        assert r.context.snapshot_id is None
        stage = r.context.stage_results[HealingStage.STAGE_3_SNAPSHOT]
        assert stage["snapshot_created"] is False and "enable_snapshots=False" in stage["reason"]
    # With no snapshot there is nothing to roll back to, and the result says why.
    rollback = results[0].context.stage_results[HealingStage.STAGE_9_ROLLBACK]
    assert rollback["rollback_needed"] is True and rollback["rollback_performed"] is False
    assert "snapshots disabled" in rollback["reason"]


def test_a_health_decline_is_rolled_back_by_default(tmp_path):
    system, manager, pipeline, engine = _damaging_setup(tmp_path)
    result = engine.force_healing_cycle()
    assert result.context.health_after < result.context.health_before
    assert result.rollback_performed is True and result.outcome == HealingOutcome.ROLLBACK
    assert system.queue == 5


def test_enable_rollback_false_reports_the_decline_without_restoring(tmp_path):
    system, manager, pipeline, engine = _damaging_setup(tmp_path, enable_rollback=False)
    result = engine.force_healing_cycle()
    assert result.context.health_after < result.context.health_before
    assert result.rollback_performed is False
    assert system.queue == 900, "the damaged state stays: nothing was restored"
    rollback = result.context.stage_results[HealingStage.STAGE_9_ROLLBACK]
    assert rollback["rollback_needed"] is True and rollback["rollback_enabled"] is False
    assert "enable_rollback=False" in rollback["reason"]
    assert result.context.snapshot_id is not None, "the snapshot is still taken"


def test_enable_rollback_false_holds_in_loop_cycles(tmp_path):
    system, manager, pipeline, engine = _damaging_setup(tmp_path, enable_rollback=False)
    results = _run_loop(engine, pipeline)
    assert results and system.queue == 900
    assert all(not r.rollback_performed for r in results)
    assert manager.get_statistics()["total_restored"] == 0
