"""AutorepairEngine: the loop on the tokio runtime, callbacks on the host loop, throttling
per repair, configuration validation, forced cycles."""

import asyncio
import threading
import time
import types

import pytest

from senti_os.core.faza30.autorepair_engine import (
    AutorepairConfig,
    AutorepairEngine,
    AutorepairMode,
    ThrottleState,
    create_autorepair_engine,
    start_autorepair,
)
from senti_os.core.faza30.event_hooks import EventHooks


def _repair(target, ok=True):
    status = types.SimpleNamespace(value="success" if ok else "failed")
    return types.SimpleNamespace(
        fault_id="f-" + target, status=status, metadata={"fault_type": target, "engine": "agent"})


class RecordingPipeline:
    """Duck-typed pipeline: records where and with what it was called."""

    def __init__(self, repairs=()):
        self.calls = []
        self.threads = set()
        self.repairs = list(repairs)

    def execute_healing_cycle(self, **metrics):
        self.calls.append(metrics)
        self.threads.add(threading.get_ident())
        n = len(self.calls)
        return types.SimpleNamespace(
            cycle_id=f"healing_{n}", outcome=types.SimpleNamespace(value="success"),
            faults_detected=len(self.repairs), faults_repaired=len(self.repairs),
            health_improvement=0.0, context=types.SimpleNamespace(repairs=list(self.repairs)))


class Layer:
    def __init__(self, metrics=None, delay=0.0, fail=False):
        self.metrics = metrics or {"faza25": {"queue_size": 5}}
        self.delay = delay
        self.fail = fail

    async def get_all_metrics(self):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("layer unreachable")
        return self.metrics


def fast_config(**kw):
    base = dict(interval_seconds=0.01, cooldown_seconds=0.0)
    base.update(kw)
    return AutorepairConfig(**base)


def test_loop_runs_cycles_on_the_host_loop_thread_and_awaits_async_providers():
    pipeline = RecordingPipeline()
    engine = AutorepairEngine(pipeline, Layer(), None, fast_config())

    async def main():
        await engine.start()
        assert engine.is_running()
        await asyncio.sleep(0.2)
        await engine.stop()
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert not engine.is_running()
    assert len(pipeline.calls) >= 3
    assert pipeline.threads == {loop_thread}
    assert pipeline.calls[0]["faza25_metrics"] == {"queue_size": 5}


def test_asyncio_run_of_start_alone_does_not_leave_a_ghost_loop():
    engine = AutorepairEngine(RecordingPipeline(), None, None, fast_config())
    asyncio.run(engine.start())
    deadline = time.time() + 2
    while engine.is_running() and time.time() < deadline:
        time.sleep(0.01)
    assert not engine.is_running()


def test_start_twice_is_one_loop_and_stop_publishes_uptime():
    hooks = EventHooks()
    engine = AutorepairEngine(RecordingPipeline(), None, hooks, fast_config())

    async def main():
        await engine.start()
        await engine.start()
        await asyncio.sleep(0.05)
        await engine.stop()
        await engine.stop()

    asyncio.run(main())
    types_seen = [e.event_type for e in hooks.get_event_history(limit=100)]
    assert types_seen.count("autorepair_started") == 1
    assert types_seen.count("autorepair_stopped") == 1
    stopped = hooks.get_events_by_type("autorepair_stopped")[0]
    assert stopped.data["uptime_seconds"] >= 0.05
    assert engine.get_uptime() == pytest.approx(stopped.data["uptime_seconds"], abs=0.01)


def test_a_slow_provider_times_out_is_reported_and_the_loop_keeps_going():
    hooks = EventHooks()
    pipeline = RecordingPipeline()
    layer = Layer(delay=1.0)
    engine = AutorepairEngine(pipeline, layer, hooks, fast_config(callback_timeout_seconds=0.05))

    async def main():
        await engine.start()
        await asyncio.sleep(0.25)
        layer.delay = 0.0
        await asyncio.sleep(0.1)
        await engine.stop()

    asyncio.run(main())
    failed = hooks.get_events_by_type("healing_cycle_failed", limit=100)
    assert failed and "timed out" in failed[0].data["error"]
    assert engine.get_statistics()["callback_errors"] >= 1
    assert pipeline.calls, "cycles resumed once the provider answered in time"


def test_a_raising_provider_is_reported_as_a_failed_cycle():
    hooks = EventHooks()
    engine = AutorepairEngine(RecordingPipeline(), Layer(fail=True), hooks, fast_config())

    async def main():
        await engine.start()
        await asyncio.sleep(0.05)
        await engine.stop()

    asyncio.run(main())
    failed = hooks.get_events_by_type("healing_cycle_failed", limit=100)
    assert failed and "ConnectionError: layer unreachable" in failed[0].data["error"]


def test_cycles_without_repairs_never_throttle():
    engine = AutorepairEngine(RecordingPipeline(), None, None, fast_config(max_repairs_per_hour=5))

    async def main():
        await engine.start()
        await asyncio.sleep(0.2)
        await engine.stop()

    asyncio.run(main())
    stats = engine.get_statistics()
    assert stats["total_cycles"] >= 5
    assert stats["throttle_state"] == "normal"
    assert stats["repairs_attempted"] == 0
    assert engine.get_throttle_state() is ThrottleState.NORMAL


def test_repairs_fill_the_minute_window_and_block():
    pipeline = RecordingPipeline(repairs=[_repair("agent:a"), _repair("agent:b")])
    hooks = EventHooks()
    engine = AutorepairEngine(pipeline, None, hooks, fast_config(max_repairs_per_minute=4))
    engine.force_healing_cycle()
    engine.force_healing_cycle()
    assert engine.get_throttle_state() is ThrottleState.BLOCKED
    stats = engine.get_statistics()
    assert stats["repairs_attempted"] == 4 and stats["repairs_last_minute"] == 4
    assert engine._last_repair_time is not None


def test_a_target_repaired_again_and_again_is_quarantined_and_escalated():
    pipeline = RecordingPipeline(repairs=[_repair("graph:g")])
    hooks = EventHooks()
    engine = AutorepairEngine(pipeline, None, hooks, fast_config())
    for _ in range(3):
        engine.force_healing_cycle()
    escalations = [e for e in hooks.get_events_by_type("autorepair_blocked", limit=50) if e.data.get("escalation")]
    assert len(escalations) == 1 and escalations[0].data["target"] == "graph:g"
    assert engine.get_statistics()["escalations"] == 1


def test_disabled_mode_runs_no_cycles_in_the_loop():
    pipeline = RecordingPipeline()
    engine = AutorepairEngine(pipeline, None, None, fast_config(mode=AutorepairMode.DISABLED))

    async def main():
        await engine.start()
        await asyncio.sleep(0.1)
        await engine.stop()

    asyncio.run(main())
    assert pipeline.calls == []
    assert engine.get_statistics()["total_cycles"] >= 3


def test_force_healing_cycle_runs_now_and_returns_the_result():
    pipeline = RecordingPipeline()
    hooks = EventHooks()
    engine = create_autorepair_engine(pipeline, None, hooks, AutorepairConfig())
    start = time.perf_counter()
    result = engine.force_healing_cycle()
    assert time.perf_counter() - start < 0.4  # the reference slept 0.5 s
    assert result.cycle_id == "healing_1"
    assert [e.event_type for e in hooks.get_event_history()][:2] == ["forced_healing_cycle", "healing_cycle_completed"]
    assert engine._last_repair_time is None  # nothing was repaired


def test_force_healing_cycle_async_awaits_coroutine_callbacks():
    pipeline = RecordingPipeline()
    engine = AutorepairEngine(pipeline, Layer(), None, fast_config())

    async def main():
        return await engine.force_healing_cycle_async()

    result = asyncio.run(main())
    assert result.cycle_id == "healing_1"
    assert pipeline.calls[0]["faza25_metrics"] == {"queue_size": 5}


def test_configuration_is_validated_and_unknown_keys_change_nothing():
    hooks = EventHooks()
    engine = AutorepairEngine(RecordingPipeline(), None, hooks)
    cfg = engine.get_config()
    assert cfg.mode is AutorepairMode.BALANCED and cfg.interval_seconds == 5.0
    engine.update_config(max_repairs_per_minute=20, cooldown_seconds=1.5)
    assert cfg.max_repairs_per_minute == 20 and cfg.cooldown_seconds == 1.5
    assert hooks.get_event_history()[-1].data == {"updated_params": ["max_repairs_per_minute", "cooldown_seconds"]}
    with pytest.raises(ValueError, match="no field"):
        engine.update_config(max_repairs_per_minute=3, bogus=1)
    assert cfg.max_repairs_per_minute == 20
    with pytest.raises(ValueError, match="interval_seconds"):
        engine.set_interval(float("nan"))
    with pytest.raises(TypeError):
        engine.update_config(max_repairs_per_minute="ten")
    with pytest.raises(ValueError):
        engine.set_mode("sideways")
    with pytest.raises(ValueError):
        cfg.max_repairs_per_hour = 0
    engine.set_mode(AutorepairMode.CONSERVATIVE)
    assert engine.config.mode is AutorepairMode.CONSERVATIVE
    assert engine.get_statistics()["mode"] == "conservative"
    engine.set_interval(1.0)
    assert engine.config.interval_seconds == 1.0


def test_config_behaves_like_a_dataclass():
    a = AutorepairConfig(mode=AutorepairMode.AGGRESSIVE, interval_seconds=0.5)
    b = AutorepairConfig(mode="aggressive", interval_seconds=0.5)
    assert a == b
    b.dry_run = True
    assert a != b
    assert repr(a).startswith("AutorepairConfig(mode=<AutorepairMode.AGGRESSIVE: 'aggressive'>")


def test_start_autorepair_builds_and_starts_an_engine():
    async def main():
        engine = await start_autorepair(RecordingPipeline(), None, mode="conservative", interval=0.01)
        running = engine.is_running()
        await engine.stop()
        return engine, running

    engine, running = asyncio.run(main())
    assert running and engine.config.mode is AutorepairMode.CONSERVATIVE
    with pytest.raises(ValueError):
        asyncio.run(start_autorepair(RecordingPipeline(), mode="nope"))


# --- the throttle gates each repair of our own pipeline -------------------------------------

def _real_pipeline():
    from senti_os.core.faza30 import (
        AgentRepairEngine, ClassificationEngine, DetectionEngine, GovernanceRepairEngine,
        GraphRepairEngine, HealingPipeline, HealthEngine, SchedulerRepairEngine,
    )
    engines = {"graph": GraphRepairEngine(), "agent": AgentRepairEngine(),
               "scheduler": SchedulerRepairEngine(), "governance": GovernanceRepairEngine()}
    return HealingPipeline(DetectionEngine(), ClassificationEngine(), engines, None, HealthEngine())


class CycleLayer:
    """Metrics with a dependency cycle, and a graph action that breaks it each time."""

    def __init__(self):
        self.cycles = 1
        self.breaks = 0

    def get_all_metrics(self):
        return {"faza27": {"cycle_count": self.cycles, "cycles": [["a", "b"]]}}


def _statuses(result):
    return [(r.status.value, r.metadata.get("error")) for r in result.context.repairs]


def test_the_mode_decides_which_severities_are_repaired():
    pipeline = _real_pipeline()
    layer = Layer(metrics={"faza25": {"queue_size": 500}})  # queue_overload is MEDIUM
    engine = AutorepairEngine(pipeline, layer, None, fast_config(mode=AutorepairMode.CONSERVATIVE))

    async def main():
        return await engine.force_healing_cycle_async()

    result = asyncio.run(main())
    (status, error), = _statuses(result)
    assert status == "skipped" and "does not repair" in error
    assert result.outcome.value == "skipped"  # nothing was tried, so nothing failed


def test_a_flapping_fault_is_quarantined_and_its_repairs_refused():
    hooks = EventHooks()
    pipeline = _real_pipeline()
    layer = CycleLayer()
    engine = AutorepairEngine(pipeline, layer, hooks, fast_config(mode=AutorepairMode.AGGRESSIVE))

    def break_cycle(**kw):
        layer.breaks += 1
        return True

    # The graph engine acts through an action and verifies with a callable that says yes:
    # the fault "goes away" each time and keeps coming back.
    ctx = {"actions": {"break_cycle": break_cycle}, "verify": lambda fault: True}
    pipeline.repair_context = ctx
    results = [engine.force_healing_cycle() for _ in range(5)]
    statuses = [_statuses(r)[0] for r in results]
    refused = [err for st, err in statuses if st == "skipped"]
    assert refused and all("quarantined" in e for e in refused)
    assert engine.get_statistics()["escalations"] >= 1


def test_quarantine_is_per_target_so_another_agent_is_still_repaired():
    pipeline = _real_pipeline()
    restarted = []
    pipeline.repair_context = {"actions": {"restart_agent": lambda name: restarted.append(name) or True},
                               "verify": lambda fault: True}
    layer = Layer(metrics={"faza28": {"agent_failure_rate": 0.9, "failing_agents": ["a"]}})
    engine = AutorepairEngine(pipeline, layer, None, fast_config(mode=AutorepairMode.AGGRESSIVE))
    first = [_statuses(engine.force_healing_cycle())[0] for _ in range(4)]
    assert [s for s, _ in first] == ["success", "success", "success", "skipped"]
    assert "quarantined" in first[3][1]
    layer.metrics = {"faza28": {"agent_failure_rate": 0.9, "failing_agents": ["b"]}}
    (status, _), = _statuses(engine.force_healing_cycle())
    assert status == "success"
    assert restarted == ["a", "a", "a", "b"]


def test_below_min_health_for_repair_repairs_are_held_back_for_an_operator():
    pipeline = _real_pipeline()
    layer = Layer(metrics={"faza29": {"takeover_active": True}})  # health is capped at 70
    engine = AutorepairEngine(pipeline, layer, None,
                              fast_config(mode=AutorepairMode.AGGRESSIVE, min_health_for_repair=80.0))
    result = engine.force_healing_cycle()
    statuses = _statuses(result)
    assert statuses and all(s == "skipped" and "min_health_for_repair" in e for s, e in statuses)
    assert result.outcome.value == "skipped"
    engine.update_config(min_health_for_repair=20.0)
    assert all("min_health_for_repair" not in (e or "") for _, e in _statuses(engine.force_healing_cycle()))
