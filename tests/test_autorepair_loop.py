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


# --- coroutine callbacks that really suspend, awaited on the host loop --------------------------

def _controller(tmp_path):
    from senti_os.core.faza30 import create_healing_controller
    return create_healing_controller(autorepair_config=_config(), snapshot_dir=str(tmp_path / "snaps"))


def _run_controller(ctl, until, limit=3.0):
    async def main():
        await ctl.start()
        waited = 0.0
        while not until() and waited < limit:
            await asyncio.sleep(0.01)
            waited += 0.01
        await ctl.stop()

    asyncio.run(main())


def test_a_coroutine_metric_provider_that_suspends_feeds_loop_cycles(tmp_path):
    ctl = _controller(tmp_path)
    layer = ctl.get_integration_layer()
    calls = []

    async def provider():
        await asyncio.sleep(0.01)  # really suspends on the host loop
        calls.append(asyncio.get_running_loop())
        return {"cycle_count": 1, "cycles": [["a", "b"]]}

    layer.register_metric_provider("faza27", provider)
    pipeline = ctl.get_healing_pipeline()
    _run_controller(ctl, lambda: any(r.faults_detected for r in pipeline.get_recent_cycles(10)))
    assert calls, "the provider was awaited"
    assert any(r.faults_detected >= 1 for r in pipeline.get_recent_cycles(10)), "its metrics reached detection"
    assert not [f for f in layer.get_integration_faults() if "faza27" in str(f)], layer.get_integration_faults()


def test_a_coroutine_repair_action_that_suspends_is_awaited_and_its_effect_verified(tmp_path):
    ctl = _controller(tmp_path)
    layer = ctl.get_integration_layer()
    graph = {"broken": False, "calls": 0}

    def provider():
        return {"cycle_count": 0 if graph["broken"] else 1, "cycles": [] if graph["broken"] else [["a", "b"]]}

    async def break_cycle(**params):
        graph["calls"] += 1
        await asyncio.sleep(0.01)  # really suspends on the host loop
        graph["broken"] = True
        return True

    layer.register_metric_provider("faza27", provider)
    layer.register_repair_action("break_cycle", break_cycle)
    pipeline = ctl.get_healing_pipeline()

    def repaired():
        return any(r.faults_repaired for r in pipeline.get_recent_cycles(10))

    _run_controller(ctl, repaired)
    assert graph["calls"] >= 1 and graph["broken"] is True
    results = [r for r in pipeline.get_recent_cycles(10) if r.faults_detected]
    repairs = [rep for r in results for rep in r.context.repairs]
    assert any(rep.status.value == "success" for rep in repairs), [(rep.status, rep.metadata) for rep in repairs]
    assert repaired()
    assert layer.get_integration_faults() == []


def test_a_coroutine_repair_action_that_times_out_fails_the_repair_not_the_loop(tmp_path):
    ctl = _controller(tmp_path)
    layer = ctl.get_integration_layer()
    layer.register_metric_provider("faza27", lambda: {"cycle_count": 1, "cycles": [["a", "b"]]})

    async def hang(**params):
        await asyncio.sleep(10)

    layer.register_repair_action("break_cycle", hang, timeout=0.05)
    pipeline = ctl.get_healing_pipeline()
    _run_controller(ctl, lambda: any(r.context.repairs for r in pipeline.get_recent_cycles(10)))
    repairs = [rep for r in pipeline.get_recent_cycles(10) for rep in r.context.repairs]
    assert repairs and all(rep.status.value != "success" for rep in repairs)
    assert any("timed out" in str(f) for f in layer.get_integration_faults())
    assert not ctl.get_autorepair_engine().is_running()
