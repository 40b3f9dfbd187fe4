"""Behaviour of senti_os.core.faza30.integration_layer: adapters for the real FAZA layer
classes (through the shaped doubles in tests/doubles.py), the reference's probe names,
counter rates, providers sync and async, integration faults, triggers, events, the repair
context and state providers."""

import asyncio
import gc
import math
import os
import sys
import weakref
from datetime import datetime, timedelta

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import doubles as d  # noqa: E402
from senti_os.core.faza30.detection_engine import DetectionEngine  # noqa: E402
from senti_os.core.faza30.integration_layer import IntegrationLayer, create_integration_layer  # noqa: E402
from senti_os.core.faza30.repair_strategies import GraphRepairEngine, SchedulerRepairEngine  # noqa: E402
from senti_os.core.faza30.enums import RepairStatus  # noqa: E402

LAYERS = ["faza25", "faza27", "faza28", "faza28_5", "faza29"]


def faults_of(layer):
    return [(f["source"], f["kind"]) for f in layer.get_integration_faults()]


def detect(metrics):
    engine = DetectionEngine()
    return sorted(f.fault_type for f in engine.detect_faults(*[metrics[k] for k in LAYERS]))


# ---------------------------------------------------------------------------------------------
# The reference interface


class TestReferenceInterface:
    def test_empty_layer_answers_empty_dicts_and_counts_nothing(self):
        layer = IntegrationLayer()
        assert layer.get_all_metrics() == {k: {} for k in LAYERS}
        for getter in ("get_faza25_metrics", "get_faza27_metrics", "get_faza28_metrics", "get_faza28_5_metrics", "get_faza29_metrics"):
            assert getattr(layer, getter)() == {}
        stats = layer.get_statistics()
        assert [k for k in stats][:9] == [
            "faza25_queries", "faza27_queries", "faza28_queries", "faza28_5_queries", "faza29_queries",
            "total_metrics_collected", "repair_actions_executed", "integrated_layers", "integration_status",
        ]
        assert stats["faza25_queries"] == 0 and stats["integrated_layers"] == 0
        assert layer.get_integration_faults() == []

    def test_constructor_keywords_become_attributes_and_status_uses_is_not_none(self):
        falsy = d.PublishOnlyBus()
        falsy.__class__ = type("EmptyBus", (d.PublishOnlyBus,), {"__len__": lambda self: 0})
        graph = d.TaskGraph()  # empty, but present
        layer = create_integration_layer(faza27_task_graph=graph, event_bus=falsy)
        assert layer.faza27_task_graph is graph and layer.event_bus is falsy
        assert layer.faza25_orchestrator is None
        status = layer.get_integration_status()
        assert status == {
            "faza25_integrated": False, "faza27_integrated": True, "faza27_5_integrated": False,
            "faza28_integrated": False, "faza28_5_integrated": False, "faza29_integrated": False,
            "event_bus_integrated": True,
        }
        assert layer.get_statistics()["integrated_layers"] == 2
        # A present but empty (falsy) graph is still queried.
        assert layer.get_faza27_metrics() == {"cycle_count": 0, "cycles": [], "bottleneck_count": 0,
                                              "bottleneck_detected": False, "graph_complexity": 0}
        assert layer.get_statistics()["faza27_queries"] == 1
        layer.faza27_task_graph = None
        assert layer.get_faza27_metrics() == {}

    def test_repair_callbacks_register_run_and_refuse_unknown_types(self):
        layer = IntegrationLayer()
        seen = []
        cb = lambda params: seen.append(params)  # noqa: E731
        layer.register_repair_callback("graph_repair", cb)
        assert cb in layer._repair_callbacks["graph_repair"]
        assert set(layer._repair_callbacks) == {"graph_repair", "agent_repair", "scheduler_repair", "governance_repair"}
        assert layer.execute_repair_callbacks("graph_repair", {"cycle": ["a", "b"]}) == 1
        assert seen == [{"cycle": ["a", "b"]}]
        assert layer.execute_repair_callbacks("agent_repair", {}) == 0
        with pytest.raises(ValueError, match="graph_repair"):
            layer.register_repair_callback("graph_repairs", cb)
        with pytest.raises(ValueError):
            layer.execute_repair_callbacks("nope", {})
        with pytest.raises(TypeError):
            layer.register_repair_callback("graph_repair", "not callable")
        with pytest.raises(TypeError):
            layer.register_repair_callback(3, cb)

    def test_a_raising_callback_is_recorded_and_the_others_still_run(self):
        layer = IntegrationLayer()
        seen = []

        def bad(params):
            raise RuntimeError("callback broke")

        layer.register_repair_callback("agent_repair", bad)
        layer.register_repair_callback("agent_repair", seen.append)
        assert layer.execute_repair_callbacks("agent_repair", {"x": 1}) == 1
        assert seen == [{"x": 1}]
        faults = layer.get_integration_faults()
        assert len(faults) == 1 and "callback broke" in faults[0]["message"]
        assert faults[0]["source"].startswith("repair_callback agent_repair:")
        stats = layer.get_statistics()
        assert (stats["callbacks_executed"], stats["callback_errors"]) == (1, 1)

    def test_async_callbacks_are_awaited(self):
        layer = IntegrationLayer()
        seen = []

        async def cb(params):
            await asyncio.sleep(0)
            seen.append(params)

        layer.register_repair_callback("scheduler_repair", cb)
        assert layer.execute_repair_callbacks("scheduler_repair", {"q": 1}) == 1
        assert seen == [{"q": 1}]

    def test_publish_without_a_bus_does_nothing(self):
        layer = IntegrationLayer()
        layer.publish_event("test_event", {"data": "value"})
        assert layer.get_statistics()["events_published"] == 0
        with pytest.raises(TypeError):
            layer.publish_event(5, {})
        with pytest.raises(TypeError):
            layer.publish_event("x", ["not", "a", "dict"])


# ---------------------------------------------------------------------------------------------
# The reference's probe names on duck-typed objects


class TestReferenceProbes:
    def test_probe_objects_give_the_reference_keys_and_values(self):
        layer = IntegrationLayer(**d.probe_layers(faulty=True))
        m = layer.get_all_metrics()
        # What the reference produced for these objects, key for key.
        reference = {
            "faza25": {"queue_size": 480, "error_rate": 0.62, "scheduler_efficiency": 0.93,
                       "task_success_rate": 0.55, "cpu_usage": 0.41, "memory_usage": 0.37},
            "faza27": {"graph_complexity": 140, "cycle_count": 1, "bottleneck_count": 8,
                       "optimization_score": 0.8, "bottleneck_detected": True},
            "faza28": {"agent_failure_rate": 0.45, "agent_performance": 0.9, "cooperation_score": 0.8,
                       "communication_health": 0.95, "active_agent_count": 3},
            "faza28_5": {"stability_score": 0.3, "policy_effectiveness": 0.9, "anomaly_count": 2,
                         "feedback_health": 0.9},
            "faza29": {"risk_score": 35, "governance_violations": 0, "override_count": 1, "takeover_active": True},
        }
        for name, expected in reference.items():
            for key, value in expected.items():
                assert m[name][key] == value, (name, key)
        # Extra keys only add what repairs need.
        assert m["faza27"]["cycles"] == [["t1", "t2"]]
        assert m["faza27"]["bottleneck_node"] == "t3"
        assert m["faza29"]["violation_count"] == 0
        assert faults_of(layer) == []
        # Detection finds the same faults as with the reference's metrics.
        assert detect(m) == detect(reference)
        assert "graph_cycle" in detect(m) and "system_takeover" in detect(m)

    def test_healthy_probe_objects_raise_no_fault(self):
        layer = IntegrationLayer(**d.probe_layers(faulty=False))
        m = layer.get_all_metrics()
        assert m["faza27"]["cycle_count"] == 0 and m["faza27"]["bottleneck_detected"] is False
        assert m["faza29"]["takeover_active"] is False
        assert detect(m) == []

    def test_an_enum_takeover_state_is_read_by_its_value(self):
        for state, active in [(d.TakeoverState.NORMAL, False), (d.TakeoverState.TAKEOVER, True),
                              (d.TakeoverState.WARNING, False), (d.TakeoverState.SAFE_MODE, True)]:
            layer = IntegrationLayer(faza29_governance=d.probe_layers(False)["faza29_governance"].__class__(False, state))
            assert layer.get_faza29_metrics()["takeover_active"] is active, state

    def test_risk_reads_overall_score_or_total_risk(self):
        class Risky:
            def get_risk(self):
                return {"total_risk": 91.5}

        assert IntegrationLayer(faza29_governance=Risky()).get_faza29_metrics() == {"risk_score": 91.5}

    def test_missing_fields_are_left_out_instead_of_defaulted(self):
        class Sparse:
            def get_scheduler_stats(self):
                return {}

            def get_resource_usage(self):
                return {"cpu": 0.5}

        assert IntegrationLayer(faza25_orchestrator=Sparse()).get_faza25_metrics() == {"cpu_usage": 0.5}


# ---------------------------------------------------------------------------------------------
# Adapters for the real layer classes


class TestOrchestratorAdapter:
    def test_queue_workers_and_stuck_tasks(self):
        orch = d.Orchestrator(num_workers=4)
        tasks = [orch.add(f"t{i}") for i in range(5)]
        orch.start(tasks[0].id, started_at=datetime.now() - timedelta(seconds=900))
        orch.start(tasks[1].id)
        layer = IntegrationLayer(faza25_orchestrator=orch, stuck_task_seconds=600)
        m = layer.get_faza25_metrics()
        assert m["queue_size"] == 3
        # 2 of 4 workers busy while 3 tasks wait.
        assert m["scheduler_efficiency"] == 0.5
        assert m["stuck_task_count"] == 1 and m["stuck_task_ids"] == [tasks[0].id]
        assert "error_rate" not in m and "failed_task_ids" not in m, "first sample: baseline only"

    def test_completed_counts_become_an_error_rate_between_collections(self):
        orch = d.Orchestrator()
        tasks = [orch.add(f"t{i}") for i in range(8)]
        orch.finish(tasks[0].id)
        layer = IntegrationLayer(faza25_orchestrator=orch)
        layer.get_faza25_metrics()
        orch.finish(tasks[1].id)
        orch.finish(tasks[2].id, ok=False)
        orch.finish(tasks[3].id, ok=False)
        orch.finish(tasks[4].id, ok=False)
        m = layer.get_faza25_metrics()
        assert m["error_rate"] == 0.75 and m["task_success_rate"] == 0.25
        assert sorted(m["failed_task_ids"]) == sorted(t.id for t in tasks[2:5])
        again = layer.get_faza25_metrics()
        assert "error_rate" not in again, "no task completed in this window"
        assert again["failed_task_ids"] == []
        # The detection rule fires on the rate, and the fault names the failed tasks.
        fault = DetectionEngine().detect_faults(faza25_metrics=m)[0]
        assert fault.fault_type == "high_error_rate"
        assert sorted(fault.metrics["failed_task_ids"]) == sorted(t.id for t in tasks[2:5])

    def test_replacing_the_orchestrator_restarts_the_baseline(self):
        a, b = d.Orchestrator(), d.Orchestrator()
        for o in (a, b):
            for i in range(3):
                o.finish(o.add(f"t{i}").id)
        layer = IntegrationLayer(faza25_orchestrator=a)
        layer.get_faza25_metrics()
        layer.faza25_orchestrator = b
        assert "error_rate" not in layer.get_faza25_metrics()


class TestGraphAdapter:
    def test_a_cycle_closed_by_a_weak_edge_is_found_and_listed(self):
        g = d.TaskGraph()
        g.connect("a", "b")
        g.connect("b", "c")
        g.connect("c", "a", d.EdgeType.WEAK, 0.2)
        g.add_node("lonely")
        m = IntegrationLayer(faza27_task_graph=g).get_faza27_metrics()
        assert m["cycle_count"] == 1
        assert m["cycles"] == [["a", "b", "c"]]
        assert m["graph_complexity"] == 4 + 3
        assert m["bottleneck_detected"] is False
        assert "graph_id" not in m

    def test_fan_in_makes_a_bottleneck(self):
        g = d.TaskGraph()
        for i in range(6):
            g.connect(f"s{i}", "merge")
        m = IntegrationLayer(faza27_task_graph=g).get_faza27_metrics()
        assert (m["bottleneck_count"], m["bottleneck_detected"], m["bottleneck_node"]) == (1, True, "merge")
        assert m["cycle_count"] == 0

    def test_optimizer_probes_work_without_a_graph(self):
        m = IntegrationLayer(faza27_5_optimizer=d.probe_layers(True)["faza27_5_optimizer"]).get_faza27_metrics()
        assert m == {"optimization_score": 0.8, "bottleneck_detected": True, "bottleneck_count": 1, "bottleneck_node": "t3"}


def _agent_loop(*agents):
    manager = d.AgentManager()
    for a in agents:
        manager.register(a)
    ael = d.AELController(agent_manager=manager)
    ael.begin()
    return ael


class TestAgentLoopAdapter:
    def test_failing_agent_is_named_from_the_second_collection(self):
        ok, bad = d.AgentBase("worker", 10), d.FailingAgent("flaky")
        ael = _agent_loop(ok, bad)
        layer = IntegrationLayer(faza28_agent_loop=ael)
        d.run(ael.run_iteration())
        first = layer.get_faza28_metrics()
        assert first == {"active_agent_count": 2, "scheduler_stuck": False}
        d.run(ael.run_iteration())
        d.run(ael.run_iteration())
        m = layer.get_faza28_metrics()
        assert m["agent_failure_rate"] == 1.0
        assert m["failing_agents"] == ["flaky"]
        # Healthy again: the window after the fix has ticks and no errors.
        bad.failing = False
        layer.get_faza28_metrics()
        d.run(ael.run_iteration())
        m = layer.get_faza28_metrics()
        assert m["agent_failure_rate"] == 0.0 and m["failing_agents"] == []
        assert layer.get_statistics()["tracked_agents"] == 2

    def test_an_agent_manager_can_be_passed_directly(self):
        manager = d.AgentManager()
        a = d.AgentBase("solo")
        manager.register(a)
        layer = IntegrationLayer(faza28_agent_loop=manager)
        layer.get_faza28_metrics()
        a.tick_count, a.error_count = 10, 4
        m = layer.get_faza28_metrics()
        assert m["agent_failure_rate"] == 0.4 and m["failing_agents"] == ["solo"]
        assert "scheduler_stuck" not in m

    def test_a_loop_whose_last_tick_is_old_is_stuck(self):
        ael = _agent_loop(d.AgentBase("a"))
        d.run(ael.run_iteration(now=datetime.now() - timedelta(seconds=120)))
        assert IntegrationLayer(faza28_agent_loop=ael).get_faza28_metrics()["scheduler_stuck"] is True
        d.run(ael.stop())
        assert IntegrationLayer(faza28_agent_loop=ael).get_faza28_metrics()["scheduler_stuck"] is False


class TestMetaAndGovernanceAdapters:
    def test_meta_summaries_and_the_governance_feedback_loop(self):
        meta, gov = d.MetaEvaluationLayer(), d.GovernanceController()
        meta.stability_engine.report(0.4)
        meta.stability_engine.report(0.2)
        for name in ("a", "a", "b"):
            meta.anomaly_detector.record(name)
        gov.feedback_loop.update(0.1)
        gov.feedback_loop.update(-0.1)
        ael = _agent_loop(*(d.AgentBase(n) for n in "abcd"))
        layer = IntegrationLayer(faza28_agent_loop=ael, faza28_5_meta_layer=meta, faza29_governance=gov)
        m = layer.get_all_metrics()["faza28_5"]
        assert m == {"stability_score": pytest.approx(0.7), "anomaly_count": 3, "anomaly_rate": 0.5, "feedback_health": pytest.approx(0.8)}
        meta.stability_engine.report(0.95)
        assert layer.get_faza28_5_metrics()["stability_score"] == 0.0

    def test_takeover_risk_violations_and_overrides(self):
        gov = d.GovernanceController()
        layer = IntegrationLayer(faza29_governance=gov)
        first = layer.get_faza29_metrics()
        assert first == {"risk_score": 12.5, "takeover_active": False, "override_count": 0}
        gov.takeover_manager.initiate()
        gov.total_risk = 87.25
        gov.rule_engine.block(4)
        gov.override_system.push_override()
        m = layer.get_faza29_metrics()
        assert m["takeover_active"] is True
        assert m["risk_score"] == 87.25
        assert m["violation_count"] == 4 and m["governance_violations"] == 4
        assert m["override_count"] == 1
        found = DetectionEngine().detect_faults(faza29_metrics=m)
        assert {"system_takeover", "governance_violation", "high_risk_score"} <= {f.fault_type for f in found}

    def test_a_manual_takeover_shows_although_the_state_stays_normal(self):
        gov = d.GovernanceController()
        gov.takeover_manager.manual_takeover()
        assert gov.get_takeover_state() == "normal"
        assert IntegrationLayer(faza29_governance=gov).get_faza29_metrics()["takeover_active"] is True


# ---------------------------------------------------------------------------------------------
# Metric providers


class TestProviders:
    def test_sync_provider_overrides_and_custom_layers_appear(self):
        layer = IntegrationLayer(faza25_orchestrator=d.probe_layers(False)["faza25_orchestrator"])
        layer.register_metric_provider("faza25", lambda: {"queue_size": 999, "extra": "x"})
        layer.register_metric_provider("billing", lambda: {"invoices_pending": 3}, name="billing probe")
        m = layer.get_all_metrics()
        assert m["faza25"]["queue_size"] == 999 and m["faza25"]["extra"] == "x"
        assert m["faza25"]["error_rate"] == 0.01
        assert list(m) == LAYERS + ["billing"]
        assert m["billing"] == {"invoices_pending": 3}
        stats = layer.get_statistics()
        assert [(p["layer"], p["name"], p["calls"]) for p in stats["providers"]][1] == ("billing", "billing probe", 1)
        assert layer.unregister_metric_provider("billing", "billing probe") is True
        assert list(layer.get_all_metrics()) == LAYERS

    def test_a_provider_alone_makes_a_layer_report(self):
        layer = IntegrationLayer()
        layer.register_metric_provider("faza28", lambda: {"agent_failure_rate": 0.6, "failing_agents": ["w2"]})
        assert layer.get_faza28_metrics() == {"agent_failure_rate": 0.6, "failing_agents": ["w2"]}
        assert layer.get_statistics()["faza28_queries"] == 1

    def test_registering_the_same_callable_again_updates_it(self):
        layer = IntegrationLayer()

        class P:
            def metrics(self):
                return {"k": 1}

        p = P()
        layer.register_metric_provider("faza29", p.metrics, timeout=1.0)
        layer.register_metric_provider("faza29", p.metrics, timeout=2.0)  # a new bound method, equal
        providers = layer.get_statistics()["providers"]
        assert len(providers) == 1 and providers[0]["timeout"] == 2.0
        assert layer.unregister_metric_provider("faza29", p.metrics) is True
        assert layer.unregister_metric_provider("faza29", p.metrics) is False

    def test_bad_registrations_are_refused(self):
        layer = IntegrationLayer()
        with pytest.raises(TypeError):
            layer.register_metric_provider("faza25", "nope")
        with pytest.raises(TypeError):
            layer.register_metric_provider(25, dict)
        for bad_layer in ("", "has space", "x" * 65, "9lives"):
            with pytest.raises(ValueError):
                layer.register_metric_provider(bad_layer, dict)
        for bad_timeout in (0, -1, math.nan, math.inf, 1e9):
            with pytest.raises(ValueError):
                layer.register_metric_provider("faza25", dict, timeout=bad_timeout)
        with pytest.raises(ValueError):
            IntegrationLayer(call_timeout=0)
        with pytest.raises(ValueError):
            IntegrationLayer(stuck_task_seconds=math.nan)

    def test_raising_and_garbage_providers_are_faults_and_other_layers_still_report(self):
        layer = IntegrationLayer(**d.probe_layers(True))

        def raising():
            raise RuntimeError("metrics backend down")

        layer.register_metric_provider("faza25", raising, name="backend")
        layer.register_metric_provider("faza27", lambda: [1, 2, 3], name="listy")
        layer.register_metric_provider("faza28", lambda: {"bad": float("nan")}, name="nan")
        layer.register_metric_provider("faza29", lambda: {"takeover_active": "yes", "risk_score": 50}, name="typed")
        m = layer.get_all_metrics()
        assert m["faza25"]["queue_size"] == 480, "the layer's own metrics survive a failing provider"
        assert m["faza27"]["cycle_count"] == 1
        assert "bad" not in m["faza28"] and m["faza28"]["agent_failure_rate"] == 0.45
        assert m["faza29"]["takeover_active"] is True and m["faza29"]["risk_score"] == 50
        faults = {f["source"]: f for f in layer.get_integration_faults()}
        assert faults["provider faza25:backend"]["kind"] == "raised"
        assert "metrics backend down" in faults["provider faza25:backend"]["message"]
        assert faults["provider faza27:listy"]["kind"] == "invalid"
        assert faults["provider faza28:nan"]["kind"] == "invalid"
        assert "takeover_active" in faults["provider faza29:typed"]["message"]
        per = {p["name"]: p for p in layer.get_statistics()["providers"]}
        assert per["backend"]["errors"] == 1 and "RuntimeError" in per["backend"]["last_error"]
        assert isinstance(per["backend"]["last_error_at"], datetime)
        by_source = layer.get_statistics()["faults_by_source"]
        assert by_source["provider faza25:backend"]["errors"] == 1
        assert layer.clear_integration_faults() == 4 and layer.get_integration_faults() == []

    def test_an_async_provider_runs_in_sync_collection_without_a_loop(self):
        layer = IntegrationLayer()

        async def provider():
            await asyncio.sleep(0)
            return {"queue_size": 7}

        layer.register_metric_provider("faza25", provider)
        assert layer.get_faza25_metrics() == {"queue_size": 7}

    def test_async_collection_awaits_providers_on_the_running_loop(self):
        orch = d.Orchestrator()
        orch.add("waiting")
        layer = IntegrationLayer(faza25_orchestrator=orch)
        loops = []

        async def provider():
            loops.append(asyncio.get_running_loop())
            await asyncio.sleep(0.001)
            return {"custom_signal": 1}

        def sync_provider():
            loops.append(asyncio.get_running_loop())
            return {"sync_signal": 2}

        layer.register_metric_provider("faza25", provider)
        layer.register_metric_provider("faza25", sync_provider)

        async def main():
            m = await layer.collect_async()
            return m, asyncio.get_running_loop()

        m, loop = d.run(main())
        assert m["faza25"] == {"queue_size": 1, "scheduler_efficiency": 0.0, "stuck_task_count": 0,
                               "stuck_task_ids": [], "custom_signal": 1, "sync_signal": 2}
        assert loops == [loop, loop], "providers run on the host's loop"
        assert set(m) == set(LAYERS)

    def test_a_slow_async_provider_times_out_as_a_fault(self):
        layer = IntegrationLayer(**d.probe_layers(False))

        async def slow():
            await asyncio.sleep(30)
            return {"never": 1}

        layer.register_metric_provider("faza28", slow, timeout=0.05, name="slow")

        async def main():
            return await layer.collect_async()

        m = d.run(main())
        assert m["faza28"]["agent_failure_rate"] == 0.01 and "never" not in m["faza28"]
        assert m["faza29"]["takeover_active"] is False
        faults = layer.get_integration_faults()
        assert [(f["source"], f["kind"]) for f in faults] == [("provider faza28:slow", "timed_out")]
        assert layer.get_statistics()["providers"][0]["timeouts"] == 1
        # The same provider in the synchronous API is bounded by asyncio.wait_for.
        layer.clear_integration_faults()
        layer.get_faza28_metrics()
        assert faults_of(layer) == [("provider faza28:slow", "timed_out")]

    def test_sync_collection_inside_a_running_loop_runs_a_coroutine_that_does_not_wait(self):
        layer = IntegrationLayer()

        async def provider():
            return {"x": 1}

        layer.register_metric_provider("faza25", provider, name="coro")

        async def main():
            return layer.get_faza25_metrics()

        assert d.run(main()) == {"x": 1}
        assert layer.get_integration_faults() == []

    def test_sync_collection_inside_a_running_loop_refuses_a_coroutine_that_waits(self):
        layer = IntegrationLayer()

        async def provider():
            await asyncio.sleep(0.01)
            return {"x": 1}

        layer.register_metric_provider("faza25", provider, name="coro")

        async def main():
            return layer.get_faza25_metrics()

        assert d.run(main()) == {}
        fault = layer.get_integration_faults()[0]
        assert fault["source"] == "provider faza25:coro" and "event loop" in fault["message"]

    def test_collect_async_needs_a_running_loop(self):
        with pytest.raises(RuntimeError):
            IntegrationLayer().collect_async()


# ---------------------------------------------------------------------------------------------
# Layers that misbehave


class TestHostileLayers:
    def test_raising_probes_and_getattr_are_faults_not_crashes(self):
        class Broken:
            def get_queue_size(self):
                raise ValueError("queue gone")

            def get_scheduler_stats(self):
                return {"efficiency": 0.5, "success_rate": 0.9}

        class Hostile:
            def __getattr__(self, name):
                raise RuntimeError(f"no {name} for you")

        layer = IntegrationLayer(faza25_orchestrator=Broken(), faza29_governance=Hostile())
        m = layer.get_all_metrics()
        assert m["faza25"] == {"scheduler_efficiency": 0.5, "task_success_rate": 0.9}
        assert m["faza29"] == {}
        sources = [f["source"] for f in layer.get_integration_faults()]
        assert "faza25.get_queue_size()" in sources
        assert "faza29.get_risk()" in sources
        assert all(f["layer"] in ("faza25", "faza29") for f in layer.get_integration_faults())

    def test_wrong_types_nan_and_coroutines_from_probes(self):
        class Weird:
            def get_queue_size(self):
                return "many"

            def get_queue_metrics(self):
                return {"error_rate": float("nan")}

            async def get_resource_usage(self):
                return {"cpu": 0.5}

            def get_scheduler_stats(self):
                return {"success_rate": 0.8}

        layer = IntegrationLayer(faza25_orchestrator=Weird())
        assert layer.get_faza25_metrics() == {"task_success_rate": 0.8}
        kinds = {f["source"]: f["kind"] for f in layer.get_integration_faults()}
        assert kinds == {"faza25.get_queue_size()": "invalid", "faza25.get_queue_metrics()": "invalid",
                         "faza25.get_resource_usage()": "invalid"}

    def test_keyboard_interrupt_from_a_layer_propagates(self):
        class Interrupting:
            def get_queue_size(self):
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            IntegrationLayer(faza25_orchestrator=Interrupting()).get_faza25_metrics()

    def test_fault_list_is_bounded(self):
        layer = IntegrationLayer()
        layer.register_metric_provider("faza25", lambda: 1 / 0)
        for _ in range(150):
            layer.get_faza25_metrics()
        assert len(layer.get_integration_faults()) == 100
        assert layer.get_statistics()["integration_faults"] == 150


# ---------------------------------------------------------------------------------------------
# Events


class TestEvents:
    def test_events_reach_a_faza28_bus_through_emit(self):
        bus = d.EventBus()
        got = []
        bus.subscribe("faza30.repair_completed", "tester", got.append)
        layer = IntegrationLayer(event_bus=bus)
        layer.publish_event("repair_completed", {"fault_id": "f1"})
        assert len(got) == 1
        assert (got[0].type, got[0].source, got[0].data) == ("faza30.repair_completed", "faza30", {"fault_id": "f1"})
        layer.publish_event("healing_cycle_completed")
        assert bus.get_event_history()[-1].data == {}
        assert layer.get_statistics()["events_published"] == 2

    def test_a_publish_only_bus_gets_name_and_data(self):
        bus = d.PublishOnlyBus()
        layer = IntegrationLayer(event_bus=bus)
        layer.publish_event("x", {"a": 1})
        assert bus.published == [("faza30.x", {"a": 1})]

    def test_a_failing_bus_is_recorded_not_raised(self):
        class Broken:
            def emit(self, *a, **k):
                raise ConnectionError("bus down")

        layer = IntegrationLayer(event_bus=Broken())
        layer.publish_event("x", {})
        assert faults_of(layer) == [("event_bus", "raised")]
        assert layer.get_statistics()["event_errors"] == 1
        nobus = IntegrationLayer(event_bus=object())
        nobus.publish_event("x", {})
        assert faults_of(nobus) == [("event_bus", "invalid")]


# ---------------------------------------------------------------------------------------------
# Trigger actions


class TestTriggers:
    def test_throttle_cancels_the_lowest_priority_queued_tasks(self):
        orch = d.Orchestrator()
        tasks = [orch.add(f"t{p}", priority=p) for p in (5, 1, 9, 1)]
        layer = IntegrationLayer(faza25_orchestrator=orch)
        assert layer.trigger_faza25_action("throttle", {"rate": 0.5}) is True
        cancelled = [t.name for t in tasks if t.status == d.TaskStatus.CANCELLED]
        assert sorted(cancelled) == ["t1", "t1"]
        assert layer.get_statistics()["repair_actions_executed"] == 1
        assert layer.trigger_faza25_action("throttle", {"count": 1}) is True
        assert tasks[0].status == d.TaskStatus.CANCELLED
        with pytest.raises(ValueError):
            layer.trigger_faza25_action("throttle", {"rate": 3})

    def test_reschedule_resubmits_a_failed_task_with_its_own_fields(self):
        orch = d.Orchestrator()
        failed = orch.finish(orch.add("report", priority=8, task_type="pipeline", context={"k": 1}).id, ok=False)
        layer = IntegrationLayer(faza25_orchestrator=orch)
        assert layer.trigger_faza25_action("reschedule", {"task_id": failed.id}) is True
        sub = orch.submitted[-1]
        assert (sub["name"], sub["priority"], sub["task_type"], sub["context"]) == ("report", 8, "pipeline", {"k": 1})
        assert sub["context"] is not failed.context
        assert layer.trigger_faza25_action("reschedule", {"task_id": "missing"}) is False
        with pytest.raises(ValueError):
            layer.trigger_faza25_action("reschedule", {})

    def test_the_reference_methods_win_when_the_object_has_them(self):
        class Legacy:
            def __init__(self):
                self.calls = []

            def throttle_queue(self, rate):
                self.calls.append(("throttle", rate))

            def reschedule_task(self, task_id):
                self.calls.append(("reschedule", task_id))

        o = Legacy()
        layer = IntegrationLayer(faza25_orchestrator=o)
        assert layer.trigger_faza25_action("throttle", {}) is True
        assert layer.trigger_faza25_action("reschedule", {"task_id": "t"}) is True
        assert o.calls == [("throttle", 0.5), ("reschedule", "t")]
        assert layer.trigger_faza25_action("unknown", {}) is False
        assert IntegrationLayer().trigger_faza25_action("throttle", {}) is False

    def test_break_cycle_removes_the_weakest_edge(self):
        g = d.TaskGraph()
        g.connect("a", "b", weight=1.0)
        g.connect("b", "c", weight=0.4)
        g.connect("c", "a", d.EdgeType.WEAK, 3.0)
        layer = IntegrationLayer(faza27_task_graph=g)
        assert layer.trigger_faza27_action("break_cycle", {"cycle": ["a", "b", "c", "a"]}) is True
        assert g.removed == [("c", "a")] and not g.has_cycle()
        assert layer.trigger_faza27_action("break_cycle", {}) is False, "no cycle left"
        assert layer.get_faza27_metrics()["cycle_count"] == 0

    def test_optimize_needs_only_the_optimizer(self):
        class Optimizer:
            def __init__(self):
                self.graphs = []

            def optimize(self, graph):
                self.graphs.append(graph)
                return graph, {}

        opt, g = Optimizer(), d.TaskGraph()
        assert IntegrationLayer(faza27_5_optimizer=opt).trigger_faza27_action("optimize", {}) is False
        assert IntegrationLayer(faza27_task_graph=g, faza27_5_optimizer=opt).trigger_faza27_action("optimize") is True
        assert opt.graphs == [g]

    def test_restart_awaits_the_agent_hooks_and_isolate_disables_it(self):
        agent = d.FailingAgent("flaky")
        ael = _agent_loop(agent)
        layer = IntegrationLayer(faza28_agent_loop=ael)
        assert layer.trigger_faza28_action("restart_agent", {"agent_id": "flaky"}) is True
        assert [c[0] for c in agent.calls] == ["on_shutdown", "on_start"]
        assert agent.calls[0][1] is ael.state_context
        assert layer.trigger_faza28_action("restart_agent", {"agent_id": "ghost"}) is False
        assert layer.trigger_faza28_action("isolate_agent", {"agent_name": "flaky"}) is True
        assert agent.enabled is False
        assert layer.trigger_faza28_action("reset_scheduler") is True and ael.scheduler.resets == 1

    def test_reset_cooperation_resets_the_meta_layer(self):
        meta = d.MetaEvaluationLayer()
        layer = IntegrationLayer(faza28_5_meta_layer=meta)
        assert layer.trigger_faza28_action("reset_cooperation", {}) is True
        assert (meta.anomaly_detector.cleared, meta.stability_engine.cleared, meta.strategy_adapter.resets) == (1, 1, 1)

    def test_a_raising_layer_call_is_false_and_a_fault(self):
        class Graph(d.TaskGraph):
            def remove_edge(self, s, t):
                raise RuntimeError("read-only graph")

        g = Graph()
        g.connect("a", "b")
        g.connect("b", "a", d.EdgeType.WEAK)
        layer = IntegrationLayer(faza27_task_graph=g)
        assert layer.trigger_faza27_action("break_cycle", {}) is False
        assert faults_of(layer) == [("trigger faza27.break_cycle", "raised")]
        assert layer.get_statistics()["repair_actions_failed"] == 1

    def test_a_registered_action_is_preferred(self):
        calls = []
        layer = IntegrationLayer(faza25_orchestrator=d.Orchestrator())
        layer.register_repair_action("throttle", lambda **kw: calls.append(kw))
        assert layer.trigger_faza25_action("throttle", {"rate": 0.2}) is True
        assert calls == [{"rate": 0.2}]
        layer.register_repair_action("throttle", lambda **kw: False)
        assert layer.trigger_faza25_action("throttle", {}) is False
        assert layer.unregister_repair_action("throttle") is True
        with pytest.raises(TypeError):
            layer.trigger_faza25_action("throttle", "fast")


# ---------------------------------------------------------------------------------------------
# The repair context and state providers


class TestRepairContext:
    def test_context_holds_the_layers_actions_and_verify(self):
        orch, g, meta, gov = d.Orchestrator(), d.TaskGraph(), d.MetaEvaluationLayer(), d.GovernanceController()
        ael = _agent_loop(d.AgentBase("a"))
        layer = IntegrationLayer(orch, g, None, ael, meta, gov)
        layer.register_repair_action("shed_load", lambda **kw: True)
        ctx = layer.get_repair_context()
        assert ctx["orchestrator"] is orch and ctx["task_graph"] is g
        assert ctx["agent_manager"] is ael.agent_manager and ctx["agent_executor"] is ael
        assert ctx["scheduler"] is ael.scheduler and ctx["state_context"] is ael.state_context
        assert ctx["meta_layer"] is meta and ctx["governance_controller"] is gov
        assert set(ctx["actions"]) == {"restart_agent", "shed_load"}
        assert ctx["actions"]["shed_load"](resource="cpu") is True
        assert layer.get_statistics()["repair_actions"]["shed_load"]["calls"] == 1
        assert callable(ctx["verify"])

    def test_a_cycle_fault_is_repaired_and_verified_through_the_context(self):
        g = d.TaskGraph()
        g.connect("extract", "transform", weight=2.0)
        g.connect("transform", "load", weight=0.5)
        g.connect("load", "extract", d.EdgeType.WEAK, weight=1.5)
        layer = IntegrationLayer(faza27_task_graph=g)
        m = layer.get_all_metrics()
        fault = next(f for f in DetectionEngine().detect_faults(*[m[k] for k in LAYERS]) if f.fault_type == "graph_cycle")
        result = GraphRepairEngine().repair(fault, layer.get_repair_context())
        assert result.status == RepairStatus.SUCCESS
        assert g.removed == [("load", "extract")] and not g.has_cycle()
        # verify() re-collected the graph's layer.
        assert layer.get_repair_context()["verify"](fault) == {
            "cycle_count": 0, "cycles": [], "bottleneck_count": 0, "bottleneck_detected": False, "graph_complexity": 5,
        }

    def test_a_cut_is_verified_by_has_cycle_without_reading_the_graph_again(self):
        g = d.TaskGraph()
        g.connect("extract", "transform", weight=2.0)
        g.connect("transform", "load", weight=0.5)
        g.connect("load", "extract", d.EdgeType.WEAK, weight=1.5)
        layer = IntegrationLayer(faza27_task_graph=g)
        m = layer.get_all_metrics()
        fault = next(f for f in DetectionEngine().detect_faults(*[m[k] for k in LAYERS]) if f.fault_type == "graph_cycle")
        reads = layer.get_statistics()["faza27_queries"]
        result = GraphRepairEngine().repair(fault, layer.get_repair_context())
        assert result.status == RepairStatus.SUCCESS and result.verification_passed is True
        # has_cycle() on the repaired graph decided; the layer's verify(fault) did not re-read it.
        checks = result.metadata["verification"]["checks"]
        assert [c["source"] for c in checks] == ["task_graph.has_cycle()"]
        assert layer.get_statistics()["faza27_queries"] == reads

        # A verify the caller supplies is still asked, after the cut.
        g.connect("load", "extract", d.EdgeType.WEAK, weight=1.5)
        asked = []
        ctx = layer.get_repair_context()
        ctx["verify"] = lambda f: asked.append(g.has_cycle()) or True
        result = GraphRepairEngine().repair(fault, ctx)
        assert asked == [False] and result.verification_passed is True
        assert [c["source"] for c in result.metadata["verification"]["checks"]] == [
            "task_graph.has_cycle()", "verify(fault)"]

    def test_verify_without_a_known_source_merges_every_layer(self):
        layer = IntegrationLayer(**d.probe_layers(True))
        merged = layer.get_repair_context()["verify"]({"source": "system"})
        assert merged["queue_size"] == 480 and merged["takeover_active"] is True

    def test_a_queue_fault_is_shed_through_the_real_orchestrator(self):
        orch = d.Orchestrator()
        for i in range(120):
            orch.add(f"job{i}", priority=i % 10)
        layer = IntegrationLayer(faza25_orchestrator=orch)
        fault = DetectionEngine().detect_faults(faza25_metrics=layer.get_faza25_metrics())[0]
        assert fault.fault_type == "queue_overload"
        result = SchedulerRepairEngine().repair(fault, layer.get_repair_context())
        assert result.status == RepairStatus.SUCCESS, result.metadata
        assert layer.get_faza25_metrics()["queue_size"] <= 100

    def test_builtin_restart_awaits_async_hooks_for_the_repair_engine(self):
        agent = d.FailingAgent("flaky")
        layer = IntegrationLayer(faza28_agent_loop=_agent_loop(agent))
        restart = layer.get_repair_context()["actions"]["restart_agent"]
        assert restart(name="flaky") is True
        assert [c[0] for c in agent.calls] == ["on_shutdown", "on_start"]
        assert restart(name="ghost") is False

    def test_bound_callables_raise_what_the_action_raised_and_count_it(self):
        layer = IntegrationLayer()

        def bad(**kw):
            raise LookupError("no such node")

        layer.register_repair_action("relieve_bottleneck", bad)
        action = layer.get_repair_context()["actions"]["relieve_bottleneck"]
        with pytest.raises(LookupError, match="no such node"):
            action(node="n1")
        stats = layer.get_statistics()
        assert stats["repair_actions"]["relieve_bottleneck"]["errors"] == 1
        assert stats["repair_actions_failed"] == 1
        layer.unregister_repair_action("relieve_bottleneck")
        with pytest.raises(RuntimeError, match="no longer registered"):
            action(node="n1")

    def test_bound_callables_do_not_keep_the_layer_alive(self):
        layer = IntegrationLayer()
        verify = layer.get_repair_context()["verify"]
        ref = weakref.ref(layer)
        del layer
        gc.collect()
        assert ref() is None
        with pytest.raises(RuntimeError, match="gone"):
            verify({"source": "faza25"})


class TestStateProviders:
    def test_providers_round_trip_through_the_snapshot_manager(self, tmp_path):
        from senti_os.core.faza30.snapshot_manager import SnapshotManager

        state = {"value": 1}

        async def capture():
            return dict(state)

        def restore(section):
            state.clear()
            state.update(section)

        layer = IntegrationLayer()
        layer.register_state_provider("app_state", capture, restore)
        providers = layer.get_state_providers()
        assert list(providers) == ["app_state"]
        snaps = SnapshotManager(snapshot_dir=str(tmp_path))
        for name, (c, r) in providers.items():
            snaps.register_state_provider(name, c, r)
        snap_id = snaps.create_snapshot(snapshot_type="manual")
        state["value"] = 99
        assert snaps.restore_snapshot(snap_id) is True
        assert state == {"value": 1}
        stats = layer.get_statistics()["state_providers"]["app_state"]
        assert stats["calls"] == 2 and stats["errors"] == 0

    def test_state_provider_names_are_checked(self):
        layer = IntegrationLayer()
        with pytest.raises(ValueError):
            layer.register_state_provider("timestamp", dict, dict)
        with pytest.raises(TypeError):
            layer.register_state_provider("ok", dict, None)
        layer.register_state_provider("ok", dict, dict)
        assert layer.unregister_state_provider("ok") is True
        assert layer.get_state_providers() == {}


def test_canonical_metrics_describe_every_key():
    rows = IntegrationLayer.canonical_metrics()
    keys = {r["key"] for r in rows}
    assert {"queue_size", "error_rate", "cycle_count", "cycles", "agent_failure_rate", "failing_agents",
            "scheduler_stuck", "stability_score", "anomaly_rate", "risk_score", "takeover_active",
            "violation_count", "governance_violations", "override_count", "failed_task_ids"} <= keys
    assert all(r["unit"] and r["source"] and r["layer"] in LAYERS for r in rows)


def test_layer_objects_in_cycles_are_collected():
    class Orch(d.Orchestrator):
        pass

    orch = Orch()
    layer = IntegrationLayer(faza25_orchestrator=orch)
    orch.back = layer
    layer.register_metric_provider("faza25", lambda: {"ref": id(layer)})
    ref = weakref.ref(orch)
    del orch, layer
    gc.collect()
    assert ref() is None


def test_a_provider_may_call_back_into_the_layer():
    layer = IntegrationLayer(**d.probe_layers(False))
    inner = []

    def reentrant():
        inner.append(layer.get_faza25_metrics()["queue_size"])
        return {"nested_ok": True}

    layer.register_metric_provider("faza29", reentrant)
    assert layer.get_all_metrics()["faza29"]["nested_ok"] is True
    assert inner == [4]


def test_concurrent_collections_from_threads():
    import threading

    layer = IntegrationLayer(**d.probe_layers(True))
    layer.register_metric_provider("faza28", lambda: {"from_provider": 1})
    results, errors = [], []

    def worker():
        try:
            for _ in range(50):
                results.append(layer.get_all_metrics()["faza28"]["from_provider"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [1] * 200
    assert layer.get_statistics()["faza28_queries"] == 200


# ---------------------------------------------------------------------------------------------
# The real FAZA layer classes (needs a checkout of the reference repository)

REFERENCE_REPO = os.environ.get("FAZA_REFERENCE_REPO")


@pytest.mark.skipif(not REFERENCE_REPO or not os.path.isdir(str(REFERENCE_REPO)),
                    reason="set FAZA_REFERENCE_REPO to a senti_system checkout to run against the real layers")
class TestRealLayers:
    def test_a_real_graph_with_a_cycle_is_measured_and_repaired(self, real):
        g = real.task_graph.TaskGraph("g")
        for n in "abc":
            g.add_node(real.task_node.TaskNode(n, n.upper()))
        E = real.task_edge
        g.add_edge(E.TaskEdge("a", "b"))
        g.add_edge(E.TaskEdge("b", "c"))
        g.add_edge(E.TaskEdge("c", "a", E.EdgeType.WEAK, 0.5))
        layer = IntegrationLayer(faza27_task_graph=g)
        m = layer.get_faza27_metrics()
        assert (m["cycle_count"], m["cycles"], m["graph_complexity"]) == (1, [["a", "b", "c"]], 6)
        assert layer.trigger_faza27_action("break_cycle") is True
        assert not g.has_cycle() and layer.get_faza27_metrics()["cycle_count"] == 0

    def test_real_agents_orchestrator_and_governance(self, real):
        class Bad(real.agent_base.AgentBase):
            name, priority = "bad", 10

            async def on_tick(self, context):
                raise RuntimeError("tick failed")

        class Good(real.agent_base.AgentBase):
            name, priority = "good", 10

        manager = real.agent_manager.AgentManager()
        manager.register(Bad())
        manager.register(Good())
        bus = real.event_bus.EventBus()
        ael = real.ael_loop.AELController(agent_manager=manager, event_bus=bus, scheduler=real.scheduler.Scheduler(),
                                          state_context=real.state_context.StateContext("t"), tick_rate=0.01)
        gov = real.governance.GovernanceController()
        orch = real.orchestrator.OrchestratorManager(num_workers=2)
        layer = IntegrationLayer(faza25_orchestrator=orch, faza28_agent_loop=ael, faza29_governance=gov, event_bus=bus)
        assert layer.get_all_metrics()["faza29"]["takeover_active"] is False

        async def main():
            await orch.start()

            async def work(task):
                return 1

            async def fail(task):
                raise ValueError("task failed")

            for i in range(3):
                orch.submit_task(f"ok{i}", work)
            orch.submit_task("broken", fail)
            loop_task = asyncio.create_task(ael.start())
            for _ in range(200):
                await asyncio.sleep(0.01)
                if orch.get_queue_status()["tasks_by_status"]["done"] == 3 and manager.get_agent("bad").error_count >= 3:
                    break
            gov.takeover_manager.manual_takeover()
            m = await layer.collect_async()
            await ael.stop()
            await loop_task
            await orch.stop()
            return m

        m = d.run(main())
        assert m["faza25"]["error_rate"] == 0.25 and len(m["faza25"]["failed_task_ids"]) == 1
        assert m["faza28"]["agent_failure_rate"] == 1.0 and m["faza28"]["failing_agents"] == ["bad"]
        assert m["faza29"]["takeover_active"] is True
        assert 0 <= m["faza29"]["risk_score"] <= 100
        assert layer.get_integration_faults() == []
        got = []
        bus.subscribe("faza30.repair_completed", "test", got.append)
        layer.publish_event("repair_completed", {"fault_id": "f"})
        assert got[0].data == {"fault_id": "f"} and got[0].source == "faza30"


def test_unrepresentable_provider_values_are_invalid_faults():
    deep = {}
    node = deep
    for _ in range(1000):
        node["d"] = {}
        node = node["d"]
    selfref = {}
    selfref["me"] = selfref
    layer = IntegrationLayer()
    for i, answer in enumerate([{"queue_size": 2 ** 200}, deep, selfref, {"x": object()}]):
        layer.register_metric_provider("faza25", (lambda a=answer: a), name=f"p{i}")
    assert layer.get_faza25_metrics() == {}
    assert [f["kind"] for f in layer.get_integration_faults()] == ["invalid"] * 4


def test_a_registered_action_receives_object_params_untouched():
    got = []
    layer = IntegrationLayer()
    layer.register_repair_action("custom_fix", lambda **kw: got.append(kw))
    marker = object()
    assert layer.trigger_faza27_action("custom_fix", {"target": marker, "cycle": ["a", "b"]}) is True
    assert got[0]["target"] is marker
    with pytest.raises(TypeError):
        layer.trigger_faza25_action("reschedule", {"task_id": object()})


def test_graph_reads_take_every_edge_shape_and_report_what_they_cannot_read():
    class Graph:
        def __init__(self, nodes, edges=None, by_node=None):
            self.nodes = nodes
            if edges is not None:
                self.edges = edges
            if by_node is not None:
                self.get_edges_from = lambda n: by_node.get(n, [])

    class Edge:
        def __init__(self, **ends):
            self.__dict__.update(ends)

    # Tuples, lists, dicts and objects with either naming; ids that are not str; a lone node.
    edges = [("a", "b"), ["b", "c"], {"src": "c", "dst": "a"}, Edge(source="c", target=4), Edge(source_id=4, target_id="a")]
    m = IntegrationLayer(faza27_task_graph=Graph({"a": 1, "lone": 2}, edges)).get_faza27_metrics()
    assert (m["cycle_count"], m["graph_complexity"]) == (2, 5 + 5)
    assert m["cycles"] == [["a", "b", "c"], ["a", "b", "c", "4"]]
    # An empty id is no node, and an edge with an empty end is left out with its other end.
    m = IntegrationLayer(faza27_task_graph=Graph({"": 0, "a": 1}, [("", "z"), ("a", "b"), ("b", "")])).get_faza27_metrics()
    assert (m["cycle_count"], m["graph_complexity"]) == (0, 2 + 1)
    # Edges asked node by node, from a list of node objects.
    nodes = [d.TaskNode("x"), d.TaskNode("y")]
    m = IntegrationLayer(faza27_task_graph=Graph(nodes, by_node={"x": [("x", "y")], "y": [("y", "x")]})).get_faza27_metrics()
    assert (m["cycle_count"], m["cycles"], m["graph_complexity"]) == (1, [["x", "y"]], 4)

    # An edge without ends: the graph is reported, nothing is measured from a part of it.
    layer = IntegrationLayer(faza27_task_graph=Graph({}, [("a", "b"), Edge(weight=1.0), ("b", "a")]))
    assert layer.get_faza27_metrics() == {}
    assert faults_of(layer) == [("faza27.edges", "invalid")]

    # An id whose text cannot be read raises (it is the id's fault, not the graph's size).
    class BadId:
        def __str__(self):
            raise ValueError("no text")

    layer = IntegrationLayer(faza27_task_graph=Graph({}, [("a", BadId())]))
    assert layer.get_faza27_metrics() == {}
    assert faults_of(layer) == [("faza27.edges", "raised")]

    # A node dict changed while its ids are read: the ids it held when the read began count.
    graph = Graph({})

    class Growing:
        def __str__(self):
            graph.nodes[object()] = None
            return "g"

    graph.nodes = {Growing(): None, "b": None}
    graph.edges = [("g", "b")]
    layer = IntegrationLayer(faza27_task_graph=graph)
    assert layer.get_faza27_metrics()["graph_complexity"] == 2 + 1
    assert len(graph.nodes) == 3 and faults_of(layer) == []


def test_huge_graphs_are_reported_not_half_read():
    class Huge:
        # One node more than the read cap (1,000,000 nodes or edges).
        nodes = dict.fromkeys(range(1_000_001))
        edges = []

        def has_cycle(self):
            return False

    layer = IntegrationLayer(faza27_task_graph=Huge())
    assert layer.get_faza27_metrics() == {}
    assert faults_of(layer) == [("faza27.edges", "invalid")]


# ---------------------------------------------------------------------------------------------
# One walk over the task graph per healing cycle


class _CountedEdge:
    """An edge that counts how often its source is read (its other fields are plain)."""

    reads = 0

    def __init__(self, src, dst, edge_type=d.EdgeType.DEPENDENCY, weight=1.0):
        self._src, self.target_id, self.edge_type, self.weight = src, dst, edge_type, weight

    @property
    def source_id(self):
        _CountedEdge.reads += 1
        return self._src


class _CountedGraph:
    def __init__(self, n):
        self.nodes = {f"t{i}": None for i in range(n)}
        self.edges = [_CountedEdge(f"t{i}", f"t{i + 1}") for i in range(n - 1)]
        self.removed = []

    def remove_edge(self, src, dst):
        self.removed.append((src, dst))
        self.edges = [e for e in self.edges if not (e._src == src and e.target_id == dst)]

    def has_cycle(self):
        adj = {}
        for e in self.edges:
            adj.setdefault(e._src, []).append(e.target_id)
        seen, path = set(), set()

        def visit(n):
            path.add(n)
            for m in adj.get(n, []):
                if m in path or (m not in seen and visit(m)):
                    return True
            path.discard(n)
            seen.add(n)
            return False

        return any(n not in seen and visit(n) for n in list(self.nodes))


def _controller(tmp_path, graph, **kw):
    from senti_os.core.faza30 import AutorepairConfig, create_healing_controller

    config = AutorepairConfig(mode="aggressive", cooldown_seconds=0.0)
    return create_healing_controller(faza27_task_graph=graph, autorepair_config=config,
                                     snapshot_dir=str(tmp_path), audit_journal_dir=False, **kw)


def test_a_repairing_cycle_walks_the_graph_once_and_still_sees_the_cut(tmp_path):
    g = _CountedGraph(50)
    controller = _controller(tmp_path, g)
    controller.force_healing_cycle()
    g.edges.append(_CountedEdge("t30", "t20", d.EdgeType.WEAK, 0.5))  # closes t20 .. t30
    _CountedEdge.reads = 0
    result = controller.force_healing_cycle()
    assert g.removed == [("t30", "t20")] and not g.has_cycle()
    assert result["faults_detected"] == 1 and result["faults_repaired"] == 1
    # Stage 1 walked the 50 edges; the repair re-read only the 11 edges on the cycle, and
    # the refresh after the cut reused the walk (the cut edge left out): the cycle's fault is
    # gone from the fresh metrics, so the repair counts as verified.
    assert _CountedEdge.reads == 50 + 11
    assert result["outcome"] == "success" and result["health_improvement"] > 0

    # Outside a cycle, every read walks the graph.
    _CountedEdge.reads = 0
    layer = controller.get_integration_layer()
    assert layer.get_faza27_metrics()["cycle_count"] == 0
    assert layer.get_faza27_metrics()["cycle_count"] == 0
    assert _CountedEdge.reads == 2 * 49


def test_a_graph_changed_during_the_cycle_is_walked_again(tmp_path):
    g = _CountedGraph(20)
    added = []

    def add_a_cycle(**kw):
        # An action that removes the edge and, meanwhile, adds another cycle elsewhere.
        g.remove_edge(kw["src"], kw["dst"])
        added.append(_CountedEdge("t15", "t12"))
        g.edges.append(added[-1])
        return True

    controller = _controller(tmp_path, g)
    controller.get_integration_layer().register_repair_action("break_cycle", add_a_cycle)
    controller.force_healing_cycle()
    g.edges.append(_CountedEdge("t5", "t2", d.EdgeType.WEAK, 0.5))
    _CountedEdge.reads = 0
    result = controller.force_healing_cycle()
    assert g.removed == [("t5", "t2")] and added and g.has_cycle()
    # The refresh met an edge object it had not read: it walked the graph (20 edges) and
    # found the new cycle, so the repair is not counted as a success.
    assert _CountedEdge.reads == 20 + 4 + 20
    assert result["faults_repaired"] == 0 and result["outcome"] != "success"
