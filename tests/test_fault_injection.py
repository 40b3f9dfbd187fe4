"""Fault injection (issue 4): callbacks that raise, hang, answer garbage or are slow, through
the integration layer's registration API and the auto-repair loop; API calls from several
threads while the loop runs; two processes writing snapshots into one folder.

Time bounds here are generous upper bounds (timeout + 2 s) that only catch a timeout that
does not bound its callback; no test measures speed."""

import asyncio
import itertools
import math
import multiprocessing
import os
import threading
import time

import pytest

from senti_os.core.faza30 import (
    AutorepairConfig, IntegrationLayer, SnapshotManager, create_healing_controller,
)
from senti_os.core.faza30.enums import RepairStatus
from senti_os.core.faza30.errors import SnapshotError

SLACK = 2.0  # seconds on top of a timeout before we call it unbounded


def _fast_config(**kw):
    base = dict(mode="aggressive", interval_seconds=0.01, cooldown_seconds=0.0,
                max_repairs_per_minute=100_000, max_repairs_per_hour=1_000_000,
                callback_timeout_seconds=2.0)
    base.update(kw)
    return AutorepairConfig(**base)


def _faults_from(layer, source_part):
    return [f for f in layer.get_integration_faults() if source_part in f["source"]]


def _provider_stats(layer, name):
    (row,) = [p for p in layer.get_statistics()["providers"] if p["name"] == name]
    return row


# --- misbehaving metric providers, synchronous collection ---------------------------------------

def _raising():
    raise RuntimeError("backend down")


GARBAGE = [
    ("none", None),
    ("int", 42),
    ("list", [("queue_size", 1)]),
    ("nan", {"queue_size": math.nan}),
    ("inf", {"error_rate": math.inf}),
    ("huge_int", {"queue_size": 2**200}),
    ("wrong_kind", {"queue_size": "lots"}),
    ("self_ref", "SELF_REF"),
]


@pytest.mark.parametrize("label,answer", GARBAGE, ids=[g[0] for g in GARBAGE])
def test_a_garbage_provider_is_an_invalid_fault_and_the_rest_still_reports(label, answer):
    if answer == "SELF_REF":
        answer = {"queue_size": 1}
        answer["me"] = answer
    layer = IntegrationLayer()
    layer.register_metric_provider("faza25", lambda: answer, name="garbage")
    layer.register_metric_provider("faza27", lambda: {"cycle_count": 0, "graph_complexity": 7}, name="good")
    metrics = layer.get_all_metrics()
    assert metrics["faza27"] == {"cycle_count": 0, "graph_complexity": 7}
    # Nothing of the garbage reached the metrics.
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in metrics["faza25"].values())
    assert "queue_size" not in metrics["faza25"]
    faults = _faults_from(layer, "garbage")
    assert [f["kind"] for f in faults] == ["invalid"], faults
    assert faults[0]["layer"] == "faza25" and faults[0]["message"]
    row = _provider_stats(layer, "garbage")
    assert row["calls"] == 1 and row["errors"] == 1 and row["timeouts"] == 0 and row["last_error"]
    assert _provider_stats(layer, "good")["errors"] == 0
    assert layer.get_statistics()["faults_by_source"]["provider faza25:garbage"]["errors"] == 1


def test_a_raising_provider_is_recorded_every_time_not_swallowed():
    layer = IntegrationLayer()
    layer.register_metric_provider("faza28", _raising, name="flaky")
    for _ in range(3):
        assert layer.get_faza28_metrics() == {}
    faults = _faults_from(layer, "flaky")
    assert len(faults) == 3 and all(f["kind"] == "raised" and "backend down" in f["message"] for f in faults)
    row = _provider_stats(layer, "flaky")
    assert (row["calls"], row["errors"], row["timeouts"]) == (3, 3, 0)
    assert "backend down" in row["last_error"]
    assert layer.get_statistics()["integration_faults"] >= 3


def test_a_huge_answer_is_taken_or_refused_cleanly():
    layer = IntegrationLayer()
    big = {f"k{i}": i for i in range(50_000)}
    big["blob"] = "x" * (5 * 1024 * 1024)
    layer.register_metric_provider("custom_big", lambda: big, name="big")
    metrics = layer.get_all_metrics()
    faults = _faults_from(layer, "big")
    if faults:
        assert faults[0]["kind"] == "invalid"
        assert not metrics.get("custom_big")
    else:
        assert len(metrics["custom_big"]) == len(big) and metrics["custom_big"]["k49999"] == 49_999


def test_an_async_provider_that_hangs_is_cut_at_its_timeout_in_sync_collection():
    layer = IntegrationLayer()

    async def hang():
        await asyncio.sleep(30)
        return {"queue_size": 1}

    layer.register_metric_provider("faza25", hang, timeout=0.2, name="hang")
    layer.register_metric_provider("faza29", lambda: {"risk_score": 12.0}, name="good")
    started = time.monotonic()
    metrics = layer.get_all_metrics()
    assert time.monotonic() - started < 0.2 + SLACK
    assert metrics["faza25"] == {} and metrics["faza29"] == {"risk_score": 12.0}
    (fault,) = _faults_from(layer, "hang")
    assert fault["kind"] == "timed_out"
    row = _provider_stats(layer, "hang")
    assert (row["calls"], row["errors"], row["timeouts"]) == (1, 1, 1)


def test_slow_providers_within_their_timeout_are_not_faults():
    layer = IntegrationLayer()

    def slow_sync():
        time.sleep(0.1)
        return {"queue_size": 3}

    async def slow_async():
        await asyncio.sleep(0.1)
        return {"cycle_count": 0}

    layer.register_metric_provider("faza25", slow_sync, timeout=3.0, name="slow_sync")
    layer.register_metric_provider("faza27", slow_async, timeout=3.0, name="slow_async")
    metrics = layer.get_all_metrics()
    assert metrics["faza25"]["queue_size"] == 3 and metrics["faza27"]["cycle_count"] == 0

    async def main():
        return await layer.collect_async()

    again = asyncio.run(main())
    assert again["faza25"]["queue_size"] == 3 and again["faza27"]["cycle_count"] == 0
    assert layer.get_integration_faults() == []


def test_collect_async_bounds_each_provider_and_records_every_failure():
    layer = IntegrationLayer()

    async def hang():
        await asyncio.sleep(30)

    async def raises():
        await asyncio.sleep(0)
        raise ConnectionError("socket reset")

    layer.register_metric_provider("faza25", hang, timeout=0.2, name="hang")
    layer.register_metric_provider("faza27", raises, timeout=1.0, name="raises")
    layer.register_metric_provider("faza28", lambda: {"agent_failure_rate": 0.1}, name="good")

    async def main():
        started = time.monotonic()
        result = await layer.collect_async()
        return result, time.monotonic() - started

    metrics, took = asyncio.run(main())
    assert took < 0.2 + SLACK
    assert metrics["faza28"]["agent_failure_rate"] == 0.1
    assert [f["kind"] for f in _faults_from(layer, "hang")] == ["timed_out"]
    (raised,) = _faults_from(layer, "raises")
    assert raised["kind"] == "raised" and "socket reset" in raised["message"]


def test_a_sync_provider_overrunning_its_timeout_in_collect_async_is_timed_out():
    layer = IntegrationLayer()

    def blocking():
        time.sleep(0.4)  # cannot be interrupted; it blocks the loop's thread meanwhile
        return {"queue_size": 1}

    layer.register_metric_provider("faza25", blocking, timeout=0.1, name="blocking")

    async def main():
        return await layer.collect_async()

    metrics = asyncio.run(main())
    assert "queue_size" not in metrics["faza25"]
    assert [f["kind"] for f in _faults_from(layer, "blocking")] == ["timed_out"]


def test_a_sync_provider_overrunning_its_timeout_in_sync_collection_is_recorded():
    layer = IntegrationLayer()

    def blocking():
        time.sleep(0.4)
        return {"queue_size": 1}

    layer.register_metric_provider("faza25", blocking, timeout=0.1, name="blocking")
    layer.get_all_metrics()
    assert _provider_stats(layer, "blocking")["timeouts"] == 1
    assert [f["kind"] for f in _faults_from(layer, "blocking")] == ["timed_out"]


# --- misbehaving repair actions and state providers ---------------------------------------------

def test_repair_actions_that_raise_hang_or_decline_are_false_and_recorded():
    layer = IntegrationLayer()

    def raises(**kw):
        raise ValueError("bad agent")

    async def hangs(**kw):
        await asyncio.sleep(30)

    layer.register_repair_action("restart_agent", raises)
    assert layer.trigger_faza28_action("restart_agent", {"agent_id": "w1"}) is False
    layer.register_repair_action("isolate_agent", hangs, timeout=0.2)
    started = time.monotonic()
    assert layer.trigger_faza28_action("isolate_agent", {"agent_id": "w1"}) is False
    assert time.monotonic() - started < 0.2 + SLACK
    kinds = [(f["source"], f["kind"]) for f in layer.get_integration_faults()]
    assert ("trigger faza28.restart_agent", "raised") in kinds
    assert ("trigger faza28.isolate_agent", "timed_out") in kinds
    stats = layer.get_statistics()
    assert stats["repair_actions_failed"] == 2
    assert stats["repair_actions"]["restart_agent"]["errors"] == 1
    assert stats["repair_actions"]["isolate_agent"]["timeouts"] == 1


def test_state_providers_that_raise_or_hang_write_nothing_and_are_recorded(tmp_path):
    layer = IntegrationLayer()

    async def hang():
        await asyncio.sleep(30)

    def restore_raises(section):
        raise RuntimeError("restore broke")

    layer.register_state_provider("raises", _raising, lambda s: True, timeout=1.0)
    layer.register_state_provider("hangs", hang, lambda s: True, timeout=0.2)
    layer.register_state_provider("bad_restore", lambda: {"v": 1}, restore_raises, timeout=1.0)
    providers = layer.get_state_providers()
    folder = tmp_path / "snaps"
    for name in ("raises", "hangs"):
        manager = SnapshotManager(folder, fsync="never")
        manager.register_state_provider(name, *providers[name])
        started = time.monotonic()
        with pytest.raises(SnapshotError):
            manager.create_snapshot()
        assert time.monotonic() - started < 1.0 + SLACK
        assert manager.list_snapshots() == [] and not list(folder.glob("snap_*"))
        assert manager.get_statistics()["failed_creates"] == 1
    manager = SnapshotManager(folder, fsync="never")
    manager.register_state_provider("bad_restore", *providers["bad_restore"])
    sid = manager.create_snapshot()
    assert manager.restore_snapshot(sid) is False
    assert "restore broke" in manager.get_last_restore()["failed"]["bad_restore"]
    kinds = {(f["source"], f["kind"]) for f in layer.get_integration_faults()}
    assert {("state raises.capture", "raised"), ("state hangs.capture", "timed_out"),
            ("state bad_restore.restore", "raised")} <= kinds
    stats = layer.get_statistics()["state_providers"]
    assert stats["hangs"]["timeouts"] == 1 and stats["raises"]["errors"] == 1
    assert stats["bad_restore"]["errors"] == 1 and stats["bad_restore"]["calls"] == 2


# --- the controller and its auto-repair loop ---------------------------------------------------

def _run_until(ctl, until, limit=8.0):
    """Runs the loop until `until()` or `limit` seconds; stopping is bounded too."""
    async def main():
        await ctl.start()
        waited = 0.0
        while not until() and waited < limit:
            await asyncio.sleep(0.02)
            waited += 0.02
        await asyncio.wait_for(ctl.stop(), timeout=10.0)

    asyncio.run(main())


def test_a_raising_repair_action_fails_the_repair_and_opens_its_breaker(tmp_path):
    ctl = create_healing_controller(autorepair_config=_fast_config(), snapshot_dir=str(tmp_path / "s"))
    layer = ctl.get_integration_layer()
    names = itertools.count()
    # A new failing agent each collection: a new target each time, so no per-target backoff,
    # only the "agent" engine's circuit breaker.
    layer.register_metric_provider(
        "faza28", lambda: {"agent_failure_rate": 0.9, "failing_agents": [f"w{next(names)}"]})
    called = []

    def restart_agent(name):
        called.append(name)
        raise RuntimeError("restart exploded")

    layer.register_repair_action("restart_agent", restart_agent)
    pipeline = ctl.get_healing_pipeline()
    statuses = []
    for _ in range(8):
        ctl.force_healing_cycle()
        (repair,) = pipeline.get_recent_cycles(1)[0].context.repairs
        statuses.append(repair)
    failed = [r for r in statuses if r.status == RepairStatus.FAILED]
    assert len(failed) == 5, [(r.status, r.metadata.get("error")) for r in statuses]
    assert all("restart exploded" in r.metadata["error"] for r in failed)
    assert statuses[:5] == failed, "the first five repairs ran and failed"
    for refused in statuses[5:]:
        assert refused.status == RepairStatus.SKIPPED
        assert "circuit open for agent" in refused.metadata["error"]
    assert len(called) == 5, "an open breaker runs no action"
    auto = ctl.get_autorepair_engine().get_statistics()
    assert auto["repairs_attempted"] == 5 and auto["repairs_successful"] == 0
    assert ctl.get_statistics()["repair"]["agent"]["failed_repairs"] == 5
    assert layer.get_statistics()["repair_actions"]["restart_agent"]["errors"] == 5
    assert len(_faults_from(layer, "restart_agent")) == 5


def test_the_breaker_counts_failures_under_the_engine_name_the_gate_asks_about(tmp_path):
    # The repair engine is listed under a name of the user's choosing, not its kind ("agent"):
    # the loop must record each failure under the key its admission gate asks about.
    from senti_os.core.faza30.repair_strategies import create_agent_repair_engine

    ctl = create_healing_controller(autorepair_config=_fast_config(), snapshot_dir=str(tmp_path / "s"))
    layer = ctl.get_integration_layer()
    names = itertools.count()
    layer.register_metric_provider(
        "faza28", lambda: {"agent_failure_rate": 0.9, "failing_agents": [f"w{next(names)}"]})
    layer.register_repair_action("restart_agent", lambda name: (_ for _ in ()).throw(RuntimeError("no")))
    pipeline = ctl.get_healing_pipeline()
    pipeline.repair_engines = {"fleet_restarts": create_agent_repair_engine()}
    statuses = []
    for _ in range(7):
        ctl.force_healing_cycle()
        (repair,) = pipeline.get_recent_cycles(1)[0].context.repairs
        statuses.append(repair.status)
    assert statuses[:5] == [RepairStatus.FAILED] * 5
    assert statuses[5:] == [RepairStatus.SKIPPED] * 2
    (last,) = pipeline.get_recent_cycles(1)[0].context.repairs
    assert "circuit open for fleet_restarts" in last.metadata["error"]


def test_the_loop_survives_raising_hanging_and_garbage_callbacks(tmp_path):
    ctl = create_healing_controller(autorepair_config=_fast_config(), snapshot_dir=str(tmp_path / "s"))
    layer = ctl.get_integration_layer()
    calls = {"hang": 0, "raise": 0, "garbage": 0, "action": 0}

    async def hang():
        calls["hang"] += 1
        await asyncio.sleep(30)

    def raises():
        calls["raise"] += 1
        raise RuntimeError("provider down")

    def garbage():
        calls["garbage"] += 1
        return {"queue_size": math.nan}

    async def hanging_action(**kw):
        calls["action"] += 1
        await asyncio.sleep(30)

    layer.register_metric_provider("faza25", hang, timeout=0.1, name="hang")
    layer.register_metric_provider("faza28_5", raises, name="raise")
    layer.register_metric_provider("faza29", garbage, name="garbage")
    # A fault to repair every cycle, whose action hangs past its timeout.
    layer.register_metric_provider("faza27", lambda: {"cycle_count": 1, "cycles": [["a", "b"]]}, name="cycle")
    layer.register_repair_action("break_cycle", hanging_action, timeout=0.1)
    pipeline = ctl.get_healing_pipeline()

    def enough():
        return calls["action"] >= 1 and len(pipeline.get_recent_cycles(100)) >= 4

    _run_until(ctl, enough)
    assert not ctl.is_running() and not ctl.get_autorepair_engine().is_running()
    cycles = pipeline.get_recent_cycles(100)
    assert len(cycles) >= 4, "the loop kept cycling after its callbacks failed"
    assert calls["hang"] >= 2 and calls["raise"] >= 2 and calls["garbage"] >= 2
    kinds = {(f["source"], f["kind"]) for f in layer.get_integration_faults()}
    assert ("provider faza25:hang", "timed_out") in kinds
    assert ("provider faza28_5:raise", "raised") in kinds
    assert ("provider faza29:garbage", "invalid") in kinds
    assert any("break_cycle" in s and k == "timed_out" for s, k in kinds), kinds
    repairs = [r for c in cycles for r in c.context.repairs if r.status != RepairStatus.SKIPPED]
    assert repairs and all(r.status == RepairStatus.FAILED for r in repairs)
    # Iterations after the first failed one: the loop went on.
    assert ctl.get_autorepair_engine().get_statistics()["total_cycles"] >= 4


def _blocking_provider_controller(tmp_path):
    ctl = create_healing_controller(autorepair_config=_fast_config(), snapshot_dir=str(tmp_path / "s"))
    calls = []

    def blocking():
        calls.append(1)
        time.sleep(0.3)  # overruns its 0.05 s timeout; a sync callable cannot be interrupted
        return {"queue_size": 500}

    ctl.get_integration_layer().register_metric_provider("faza25", blocking, timeout=0.05, name="blocking")
    engine = ctl.get_autorepair_engine()
    _run_until(ctl, lambda: len(calls) >= 3 and engine.get_statistics()["total_cycles"] >= 3)
    return ctl, calls


def test_a_blocking_sync_provider_does_not_stop_the_loop(tmp_path):
    ctl, calls = _blocking_provider_controller(tmp_path)
    assert len(calls) >= 3 and ctl.get_autorepair_engine().get_statistics()["total_cycles"] >= 3
    assert not ctl.is_running()


def test_a_blocking_sync_provider_in_the_loop_is_recorded_as_timed_out(tmp_path):
    ctl, calls = _blocking_provider_controller(tmp_path)
    layer = ctl.get_integration_layer()
    assert _provider_stats(layer, "blocking")["timeouts"] >= 1
    assert {f["kind"] for f in _faults_from(layer, "blocking")} == {"timed_out"}


def test_stop_returns_while_a_repair_action_hangs(tmp_path):
    ctl = create_healing_controller(autorepair_config=_fast_config(), snapshot_dir=str(tmp_path / "s"))
    layer = ctl.get_integration_layer()
    entered = []
    layer.register_metric_provider("faza27", lambda: {"cycle_count": 1, "cycles": [["a", "b"]]})

    async def hang(**kw):
        entered.append(1)
        await asyncio.sleep(30)

    layer.register_repair_action("break_cycle", hang, timeout=1.0)

    async def main():
        await ctl.start()
        for _ in range(400):
            if entered:
                break
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await asyncio.wait_for(ctl.stop(), timeout=15.0)
        return time.monotonic() - started

    took = asyncio.run(main())
    assert entered
    assert took < 1.0 + SLACK, "stop waits at most for the action's timeout"
    assert not ctl.is_running()


def test_force_while_a_loop_cycle_runs_returns_a_result(tmp_path):
    from senti_os.core.faza30 import HealingResult
    ctl = create_healing_controller(autorepair_config=_fast_config(callback_timeout_seconds=5.0),
                                    snapshot_dir=str(tmp_path / "s"))
    layer = ctl.get_integration_layer()
    entered = threading.Event()
    layer.register_metric_provider("faza27", lambda: {"cycle_count": 1, "cycles": [["a", "b"]]})

    async def slow_fix(**kw):
        entered.set()
        await asyncio.sleep(0.5)  # holds the loop's cycle in stage 6, well within its timeout
        return True

    layer.register_repair_action("break_cycle", slow_fix, timeout=3.0)
    engine = ctl.get_autorepair_engine()

    async def main():
        await ctl.start()
        for _ in range(500):
            if entered.is_set():
                break
            await asyncio.sleep(0.01)
        try:
            try:
                result = await asyncio.to_thread(engine.force_healing_cycle)
            except RuntimeError:
                result = "refused"  # documented
            summary = await asyncio.to_thread(ctl.force_healing_cycle)
        finally:
            await asyncio.wait_for(ctl.stop(), timeout=15.0)
        return result, summary

    result, summary = asyncio.run(main())
    assert entered.is_set()
    assert result == "refused" or isinstance(result, HealingResult), result
    assert "cycle_id" in summary and "outcome" in summary, summary


# --- API calls from several threads while the loop runs -----------------------------------------

def test_threads_calling_the_api_while_the_loop_runs_do_not_deadlock(tmp_path):
    ctl = create_healing_controller(autorepair_config=_fast_config(), snapshot_dir=str(tmp_path / "s"),
                                    max_snapshots=20)
    layer = ctl.get_integration_layer()
    layer.register_metric_provider("faza27", lambda: {"cycle_count": 1, "cycles": [["a", "b"]]})
    layer.register_metric_provider("faza25", lambda: {"queue_size": 150, "error_rate": 0.4})
    layer.register_repair_action("break_cycle", lambda **kw: True)
    state = {"n": 0}
    ctl.get_snapshot_manager().register_state_provider(
        "counter", lambda: dict(state), lambda s: state.update(s) or True)
    pipeline = ctl.get_healing_pipeline()
    manager = ctl.get_snapshot_manager()
    errors = []
    counts = {}
    stop = threading.Event()

    calls = {
        "status": lambda: ctl.get_status()["running"],
        "health": lambda: 0 <= ctl.get_health()["overall_score"] <= 100,
        "stats": lambda: ctl.get_statistics()["controller"]["initialized"],
        # While the loop's first cycle runs, the answer may be {"error": ...}: the known bug
        # pinned by test_force_while_a_loop_cycle_runs_returns_a_result (xfail).
        "force": lambda: ctl.force_healing_cycle(),
        "snapshot": lambda: ctl.create_snapshot(),
        "list": lambda: manager.list_snapshots(),
        "pipeline": lambda: pipeline.get_statistics()["total_cycles"],
        "faults": lambda: ctl.get_faults()["active_faults"],
    }

    def worker(name, call):
        n = 0
        while not stop.is_set() and n < 40:
            try:
                call()
            except RuntimeError as exc:
                # Documented: a forced cycle while another cycle of the pipeline runs.
                if name != "force":
                    errors.append((name, repr(exc)))
            except BaseException as exc:  # noqa: BLE001 - a PanicException is a BaseException
                errors.append((name, repr(exc)))
            n += 1
        counts[name] = n

    async def main():
        await ctl.start()
        threads = [threading.Thread(target=worker, args=item, daemon=True) for item in calls.items()]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # keep the loop's thread free for the engine's callbacks
        stop.set()
        alive = [t.name for t in threads if t.is_alive()]
        await asyncio.wait_for(ctl.stop(), timeout=15.0)
        for t in threads:
            t.join(timeout=10.0)
        return alive + [t.name for t in threads if t.is_alive()]

    alive = asyncio.run(main())
    assert not alive, f"threads still blocked (deadlock?): {alive}"
    assert errors == [], errors[:5]
    assert set(counts) == set(calls)
    assert len(manager.list_snapshots()) <= 20
    assert pipeline.get_statistics()["total_cycles"] >= 1
    manager.flush()


# --- two processes, one snapshot folder ---------------------------------------------------------

def _writer(folder, tag, count, barrier, out):
    manager = SnapshotManager(folder, max_snapshots=10_000, fsync="never")
    barrier.wait(timeout=60)
    ids = [manager.create_snapshot(state_override={"writer": tag, "i": i}) for i in range(count)]
    manager.flush()
    out.put((tag, ids))


def test_two_processes_writing_into_one_folder_never_overwrite_each_other(tmp_path):
    folder = str(tmp_path / "shared")
    os.makedirs(folder)
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    count = 150
    procs = [ctx.Process(target=_writer, args=(folder, tag, count, barrier, out)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    all_ids = results["a"] + results["b"]
    assert len(all_ids) == 2 * count and len(set(all_ids)) == 2 * count, "ids collided"
    reader = SnapshotManager(folder, max_snapshots=10_000, fsync="never")
    assert reader.get_skipped_files() == []
    listed = {s.snapshot_id: s for s in reader.list_snapshots()}
    assert set(listed) == set(all_ids)
    for tag, ids in results.items():
        for i, sid in enumerate(ids):
            assert listed[sid].state == {"writer": tag, "i": i}, sid
