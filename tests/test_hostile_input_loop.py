"""Hostile input to the public methods and constructors of the loop's modules (issue 4): the
healing pipeline, the auto-repair config and engine, the integration layer, the controller and
the audit journal. Same rules as tests/test_hostile_input.py: each call works or raises
TypeError, ValueError or a documented faza30 error, nothing is written by a refused call, no
PanicException (a BaseException) escapes, and after every call the object it was made on still
works on valid input (each sweep entry carries a check that runs right after it)."""

import math
from collections import Counter

import pytest

import doubles
from senti_os.core.faza30 import (
    AutorepairConfig,
    AutorepairEngine,
    ClassificationEngine,
    DetectionEngine,
    HealingPipeline,
    HealthEngine,
    IntegrationLayer,
    SnapshotManager,
)
from senti_os.core.faza30.audit_journal import AuditJournal, create_audit_journal
from senti_os.core.faza30.controller import (
    HealingController,
    create_healing_controller,
    get_healing_controller,
)
from senti_os.core.faza30.enums import HealingOutcome

from test_hostile_input import ALLOWED, Hostile, _deep, _selfref, hostile_values

# AutorepairEngine.force_healing_cycle documents RuntimeError when collecting metrics or the
# cycle fails; everywhere else only ALLOWED counts as a refusal.
FORCE_ALLOWED = ALLOWED + (RuntimeError,)

CONFIG_FIELDS = (
    "mode", "interval_seconds", "max_repairs_per_minute", "max_repairs_per_hour", "cooldown_seconds",
    "min_health_for_repair", "enable_snapshots", "enable_rollback", "dry_run", "callback_timeout_seconds",
)
LAYER_KWARGS = (
    "faza25_orchestrator", "faza27_task_graph", "faza27_5_optimizer", "faza28_agent_loop",
    "faza28_5_meta_layer", "faza29_governance", "event_bus",
)
METRIC_KWARGS = ("faza25_metrics", "faza27_metrics", "faza28_metrics", "faza28_5_metrics", "faza29_metrics")
VALID_METRICS = {"faza25_metrics": {"queue_size": 150}, "faza27_metrics": {"cycle_count": 1}}


class RaisingLayer:
    """A layer object every attribute of which is a method that raises."""

    def __getattr__(self, name):
        def method(*args, **kwargs):
            raise RuntimeError("layer " + name)
        return method


class GarbageLayer:
    """A layer object every method of which returns the same garbage value; with
    ``callable_attrs=False`` every attribute *is* that value."""

    def __init__(self, garbage, callable_attrs=True):
        self._garbage = garbage
        self._callable = callable_attrs

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if self._callable:
            return lambda *args, **kwargs: self._garbage
        return self._garbage


def hostile_layers():
    """Layer objects that raise or return garbage, plus the plain hostile values."""
    garbage = [None, math.nan, 2 ** 200, -1, "x" * (10 * 1024 * 1024), _deep(10_000), _selfref(),
               Hostile(), {"queue_size": math.nan}, {1: 2}, [Hostile()]]
    return ([RaisingLayer()] + [GarbageLayer(g) for g in garbage]
            + [GarbageLayer(g, callable_attrs=False) for g in garbage] + hostile_values())


# Known bugs would be listed here and pinned by an xfail(strict=True) test below.
# A sweep entry tagged with one may end in that bug's exception (counted as a crash by
# scripts/hostile_input_count.py); once the bug is fixed the entry must pass like any other.
KNOWN_BUGS = {}  # B1-B5 (OverflowError for out-of-range ints, event hooks without
# publish_event, set_autorepair_mode skipping validation) are fixed; the tests below keep them so.


def _outcome(fn, args, kwargs, allowed=ALLOWED):
    try:
        fn(*args, **kwargs)
        return "ok"
    except allowed:
        return "refused"


def _setattr(obj, name, value):
    setattr(obj, name, value)


def _call_with(fn, value):
    """A callable that returns (or is) a hostile value."""
    return lambda *args, **kwargs: value


def _raise(*args, **kwargs):
    raise RuntimeError("callback raised")


def _fresh_pipeline(**kwargs):
    return HealingPipeline(DetectionEngine(), ClassificationEngine(), {}, None, HealthEngine(), **kwargs)


def _assert_cycle_works(pipeline):
    result = pipeline.execute_healing_cycle(**VALID_METRICS)
    assert result.faults_detected >= 2, result
    assert isinstance(result.outcome, HealingOutcome)


# ---------------------------------------------------------------------------------------------
# The sweeps. Each returns entries (fn, args, kwargs, check[, allowed]); check(outcome) runs
# right after the call and raises AssertionError if the object is broken or a refused call
# changed something.


def pipeline_sweep(tmp_path):
    pipe = HealingPipeline(DetectionEngine(), ClassificationEngine(), {},
                           SnapshotManager(snapshot_dir=str(tmp_path / "pipe_snaps")), HealthEngine())
    settings = {"dry_run": False, "stabilize_seconds": 0.0, "callback_timeout": 30.0,
                "repair_context": None, "metrics_provider": None, "history_size": 1000}
    snap_dir = tmp_path / "pipe_snaps"

    def check(outcome):
        for name, default in settings.items():
            if outcome == "refused":
                assert getattr(pipe, name) == default, (name, getattr(pipe, name))
            elif name != "history_size":
                setattr(pipe, name, default)  # undo an accepted setting before the valid cycle
        _assert_cycle_works(pipe)
        assert len(pipe.get_recent_cycles(1)) == 1

    def use_new(**kwargs):
        p = HealingPipeline(**kwargs)
        p.execute_healing_cycle(**VALID_METRICS)
        p.get_recent_cycles(3)
        p.get_statistics()

    base = {"detection_engine": DetectionEngine(), "classification_engine": ClassificationEngine(),
            "repair_engines": {}, "snapshot_manager": None, "health_engine": None}
    entries = []
    for v in hostile_values():
        for name in base:
            entries.append((use_new, (), {**base, name: v}, check))
        entries.append((use_new, (), {**base, "repair_engines": {"x": v}}, check))
        entries.append((use_new, (), {**base, "repair_engines": {v: DetectionEngine()}}
                        if _hashable(v) else {**base, "repair_engines": [v]}, check))
        for name in ("repair_context", "metrics_provider", "event_hooks", "dry_run", "stabilize_seconds",
                     "history_size", "callback_timeout"):
            entries.append((use_new, (), {**base, name: v}, check, None, "B1" if name == "history_size" else None))
        for name in METRIC_KWARGS:
            entries.append((pipe.execute_healing_cycle, (), {name: v}, check))
        for name in ("dry_run", "stabilize_seconds", "repair_context", "metrics_provider"):
            entries.append((pipe.execute_healing_cycle, (), {**VALID_METRICS, name: v}, check))
        entries.append((pipe.execute_healing_cycle, (), {**VALID_METRICS, "metrics_provider": _call_with(None, v)},
                        check))
        entries.append((pipe.execute_healing_cycle, (), {**VALID_METRICS, "repair_context": _call_with(None, v)},
                        check))
        entries.append((pipe.get_recent_cycles, (v,), {}, check, None, "B1"))
        for name in ("stabilize_seconds", "callback_timeout", "dry_run", "repair_context", "metrics_provider",
                     "detection_engine", "repair_engines"):
            entries.append((_setattr, (pipe, name, v), {}, _restoring(pipe, name, check)))
    entries.append((pipe.execute_healing_cycle, (), {**VALID_METRICS, "metrics_provider": _raise}, check))
    entries.append((pipe.execute_healing_cycle, (), {**VALID_METRICS, "repair_context": _raise}, check))
    assert snap_dir.is_dir()
    return entries


def _hashable(v):
    try:
        hash(v)
        return True
    except Exception:
        return False


def _restoring(pipe, name, check):
    """For a setter of an engine attribute: put the original back, then the usual check."""
    original = getattr(pipe, name)

    def restore_and_check(outcome):
        if outcome == "refused":
            assert getattr(pipe, name) is original or getattr(pipe, name) == original, name
        if name in ("detection_engine", "repair_engines"):
            setattr(pipe, name, original)
        check("ok")
    return restore_and_check


def autorepair_sweep(tmp_path):
    config = AutorepairConfig()
    default = AutorepairConfig()
    pipe = _fresh_pipeline()
    layer = IntegrationLayer()
    engine = AutorepairEngine(pipe, layer)

    def check_config(outcome):
        if outcome == "refused":
            assert config == default, config
        for name in CONFIG_FIELDS:
            setattr(config, name, getattr(default, name))

    def check_engine(outcome):
        cfg = engine.get_config()
        if outcome == "refused":
            assert cfg == default, cfg
        engine.update_config(**{name: getattr(default, name) for name in CONFIG_FIELDS})
        engine.set_mode("balanced")
        result = engine.force_healing_cycle()
        assert isinstance(result.outcome, HealingOutcome)
        assert engine.get_statistics()["mode"] == "balanced"

    def use_new(*args, **kwargs):
        e = AutorepairEngine(*args, **kwargs)
        e.get_statistics()
        e.get_throttle_state()
        e.force_healing_cycle()

    entries = []
    for v in hostile_values():
        for name in CONFIG_FIELDS:
            entries.append((AutorepairConfig, (), {name: v}, check_config))
            entries.append((_setattr, (config, name, v), {}, check_config))
            entries.append((engine.update_config, (), {name: v}, check_engine))
        entries.append((engine.update_config, (), {"no_such_field": v}, check_engine))
        entries.append((engine.update_config, (), {"mode": "conservative", "interval_seconds": v}, check_engine))
        entries.append((engine.set_mode, (v,), {}, check_engine))
        entries.append((engine.set_interval, (v,), {}, check_engine))
        entries.append((use_new, (v,), {}, check_engine, FORCE_ALLOWED))
        entries.append((use_new, (pipe, v), {}, check_engine, FORCE_ALLOWED))
        entries.append((use_new, (pipe, layer, v), {}, check_engine, FORCE_ALLOWED, "B2"))
        entries.append((use_new, (pipe, layer, None, v), {}, check_engine, FORCE_ALLOWED))
        entries.append((use_new, (pipe, layer), {"audit_journal": v}, check_engine, FORCE_ALLOWED))
    for bad in hostile_layers():
        entries.append((use_new, (pipe, IntegrationLayer(**{k: bad for k in LAYER_KWARGS})), {}, check_engine,
                        FORCE_ALLOWED))
    return entries


def integration_sweep(tmp_path):
    layer = IntegrationLayer(doubles.Orchestrator(running=False), doubles.TaskGraph(), None,
                             doubles.AELController(), doubles.MetaEvaluationLayer(), doubles.GovernanceController())
    counts = {}

    def registered():
        stats = layer.get_statistics()
        return len(stats["providers"]), len(stats["repair_actions"]), len(stats["state_providers"])

    counts["n"] = registered()

    def check(outcome):
        now = registered()
        if outcome == "refused":
            assert now == counts["n"], (now, counts["n"])
        # Undo what an accepted registration added, so the next call starts from the same state.
        for p in layer.get_statistics()["providers"]:
            layer.unregister_metric_provider(p["layer"], p["name"])
        for verb in list(layer.get_statistics()["repair_actions"]):
            layer.unregister_repair_action(verb)
        for name in list(layer.get_statistics()["state_providers"]):
            layer.unregister_state_provider(name)
        counts["n"] = registered()
        metrics = layer.get_all_metrics()
        assert set(metrics) >= {"faza25", "faza27", "faza28", "faza28_5", "faza29"}
        assert layer.trigger_faza27_action("optimize") in (True, False)
        assert layer.get_integration_status()["faza25_integrated"] is True

    def use_new(**kwargs):
        il = IntegrationLayer(**kwargs)
        il.get_all_metrics()
        il.get_repair_context()
        il.get_integration_status()

    def register_then_read(kind, value):
        if kind == "metric":
            layer.register_metric_provider("faza25", _call_with(None, value), 1.0, "hostile")
            layer.get_faza25_metrics()
            layer.get_all_metrics()
        elif kind == "action":
            layer.register_repair_action("throttle", _call_with(None, value), 1.0)
            layer.trigger_faza25_action("throttle", {"factor": 0.5})
        else:
            layer.register_state_provider("hostile", _call_with(None, value), _call_with(None, value), 1.0)
            capture, restore = layer.get_state_providers()["hostile"]
            restore(capture())

    entries = []
    for v in hostile_values():
        for name in LAYER_KWARGS + ("call_timeout", "stuck_task_seconds"):
            entries.append((use_new, (), {name: v}, check))
        entries += [
            (layer.register_metric_provider, (v, dict), {}, check),
            (layer.register_metric_provider, ("faza25", v), {}, check),
            (layer.register_metric_provider, ("faza25", dict, v), {}, check),
            (layer.register_metric_provider, ("faza25", dict, 1.0, v), {}, check),
            (layer.unregister_metric_provider, ("faza25", v), {}, check),
            (layer.unregister_metric_provider, (v, "x"), {}, check),
            (layer.register_repair_action, (v, dict), {}, check),
            (layer.register_repair_action, ("throttle", v), {}, check),
            (layer.register_repair_action, ("throttle", dict, v), {}, check),
            (layer.unregister_repair_action, (v,), {}, check),
            (layer.register_state_provider, (v, dict, print), {}, check),
            (layer.register_state_provider, ("s", v, print), {}, check),
            (layer.register_state_provider, ("s", dict, v), {}, check),
            (layer.register_state_provider, ("s", dict, print, v), {}, check),
            (layer.unregister_state_provider, (v,), {}, check),
            (register_then_read, ("metric", v), {}, check),
            (register_then_read, ("action", v), {}, check),
            (register_then_read, ("state", v), {}, check),
            (layer.register_repair_callback, (v, print), {}, check),
            (layer.register_repair_callback, ("graph_repair", v), {}, check),
            (layer.execute_repair_callbacks, (v,), {}, check),
            (layer.execute_repair_callbacks, ("graph_repair", v), {}, check),
            (layer.publish_event, (v,), {}, check),
            (layer.publish_event, ("x", v), {}, check),
            (layer.get_all_metrics, (), {"advance_baselines": v}, check),
        ]
        for trigger, action, key in ((layer.trigger_faza25_action, "cancel_task", "task_id"),
                                     (layer.trigger_faza27_action, "break_cycle", "cycle"),
                                     (layer.trigger_faza28_action, "restart_agent", "agent_name")):
            entries += [
                (trigger, (v,), {}, check),
                (trigger, (action, v), {}, check),
                (trigger, (action, {key: v}), {}, check),
            ]
    for bad in hostile_layers():
        for getter in ("get_faza25_metrics", "get_faza27_metrics", "get_faza28_metrics", "get_faza28_5_metrics",
                       "get_faza29_metrics", "get_all_metrics", "get_repair_context", "get_integration_status"):
            entries.append((_use_layers, (bad, getter), {}, check))
        for trigger in ("trigger_faza25_action", "trigger_faza27_action", "trigger_faza28_action"):
            entries.append((_use_layers, (bad, trigger, "throttle", {"factor": 0.5}), {}, check))
    return entries


def _use_layers(bad, method, *args):
    il = IntegrationLayer(**{k: bad for k in LAYER_KWARGS}, call_timeout=1.0)
    getattr(il, method)(*args)
    il.get_statistics()
    il.get_integration_faults()


def controller_sweep(tmp_path):
    folder = tmp_path / "ctrl"
    ctrl = HealingController(snapshot_dir=str(folder))
    manager = ctrl.get_snapshot_manager()
    state = {"files": sorted(p.name for p in folder.glob("snap_*.json"))}

    def check(outcome):
        files = sorted(p.name for p in folder.glob("snap_*.json"))
        if outcome == "refused":
            assert files == state["files"], "a refused call wrote a snapshot"
        for name in manager.get_state_providers():
            manager.unregister_state_provider(name)
        ctrl.set_autorepair_mode("balanced")
        sid = ctrl.create_snapshot()
        assert ctrl.restore_snapshot(sid) is True
        assert ctrl.get_status()["autorepair_mode"] == "balanced"
        assert 0 <= ctrl.get_health()["overall_score"] <= 100
        assert "outcome" in ctrl.force_healing_cycle()
        state["files"] = sorted(p.name for p in folder.glob("snap_*.json"))

    def use_new(factory, *args, **kwargs):
        c = factory(*args, **kwargs)
        c.get_status()
        c.get_health()
        c.force_healing_cycle()
        c.get_faults(include_resolved=True)
        c.get_statistics()
        sid = c.create_snapshot()
        c.restore_snapshot(sid)

    def capture_then_snapshot(value):
        manager.register_state_provider("hostile", _call_with(None, value), _call_with(None, True))
        ctrl.create_snapshot()

    entries = []
    for i, v in enumerate(hostile_values()):
        for pos in range(8):
            args = [None] * 8
            args[pos] = v
            entries.append((use_new, (HealingController, *args), {"snapshot_dir": str(tmp_path / f"c{i}_{pos}"),
                                                                   "audit_journal_dir": False}, check))
            entries.append((use_new, (get_healing_controller, *args), {"force_new": True}, check))
        for kw in ("snapshot_dir", "max_snapshots", "stabilize_seconds", "audit_journal_dir"):
            kwargs = {"snapshot_dir": str(tmp_path / f"k{i}"), kw: v}
            entries.append((use_new, (create_healing_controller,), kwargs, check, None,
                            "B3" if kw == "max_snapshots" else None))
        entries.append((use_new, (get_healing_controller,), {"force_new": v}, check))
        entries += [
            (ctrl.create_snapshot, (v,), {}, check),
            (ctrl.restore_snapshot, (v,), {}, check),
            (ctrl.set_autorepair_mode, (v,), {}, check, None, "B4"),
            (ctrl.get_faults, (v,), {}, check),
            (manager.list_snapshots, (v,), {}, check),
            (capture_then_snapshot, (v,), {}, check),
        ]
    for j, bad in enumerate(hostile_layers()):
        layers = [bad] * 7
        entries.append((use_new, (HealingController, *layers), {"snapshot_dir": str(tmp_path / f"l{j}")}, check))
    get_healing_controller(force_new=True)
    return entries


def journal_sweep(tmp_path):
    journal = AuditJournal(str(tmp_path / "journal"))
    seen = {"appended": 0, "bytes": 0}

    def check(outcome):
        stats = journal.get_statistics()
        if outcome == "refused":
            assert (stats["appended"], stats["bytes"]) == (seen["appended"], seen["bytes"]), stats
        seq = journal.append("note", {"ok": True})
        newest = journal.get_entries(1)[0]
        assert (newest["seq"], newest["kind"], newest["data"]) == (seq, "note", {"ok": True})
        stats = journal.get_statistics()
        seen["appended"], seen["bytes"] = stats["appended"], stats["bytes"]

    def use_new(factory, *args, **kwargs):
        j = factory(*args, **kwargs)
        j.append("cycle", {"n": 1})
        j.get_entries()
        j.flush()

    entries = []
    for i, v in enumerate(hostile_values()):
        for factory in (AuditJournal, create_audit_journal):
            entries.append((use_new, (factory, v), {}, check))
            for opt in ("max_segment_bytes", "max_segments", "fsync", "fsync_interval_ms"):
                entries.append((use_new, (factory, str(tmp_path / f"j{i}_{opt}")), {opt: v}, check, None, "B5"))
        entries += [
            (journal.append, (v,), {}, check),
            (journal.append, (v, {"a": 1}), {}, check),
            (journal.append, ("note", v), {}, check),
            (journal.append, ("repair", {"target": v}), {}, check),
            (journal.get_entries, (v,), {}, check, None, "B5"),
            (journal.get_entries, (10, v), {}, check),
        ]
    return entries


SWEEPS = {
    "healing_pipeline": pipeline_sweep,
    "autorepair_engine": autorepair_sweep,
    "integration_layer": integration_sweep,
    "controller": controller_sweep,
    "audit_journal": journal_sweep,
}


def run_entry(entry):
    """Runs one entry and its check: returns "ok", "refused" or "known bug <id>" (the entry's
    tagged bug showed); raises otherwise (check failures as AssertionError)."""
    fn, args, kwargs, check = entry[:4]
    allowed = entry[4] if len(entry) > 4 and entry[4] else ALLOWED
    bug = entry[5] if len(entry) > 5 else None
    try:
        outcome = _outcome(fn, args, kwargs, allowed)
    except KNOWN_BUGS.get(bug, ()):
        outcome = "known bug " + bug
    check(outcome)
    return outcome


def _run(sweep, tmp_path, monkeypatch):
    # Hostile folder names ("a/b", "../x") are relative: keep them inside tmp_path.
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    entries = sweep(tmp_path)
    outcomes = Counter(run_entry(entry) for entry in entries)
    assert sum(outcomes.values()) == len(entries) > 100
    return outcomes


@pytest.mark.parametrize("module", list(SWEEPS))
def test_hostile_input_to_the_loop_never_crashes_and_everything_keeps_working(module, tmp_path, monkeypatch):
    outcomes = _run(SWEEPS[module], tmp_path, monkeypatch)
    assert outcomes["refused"] > 0 and outcomes["ok"] > 0


@pytest.mark.parametrize("bad_id", ["..", "../etc", "snap_/x", "snap_\x00", "/abs/path", "snap_..json"])
def test_controller_snapshot_ids_cannot_leave_the_folder(tmp_path, bad_id):
    ctrl = HealingController(snapshot_dir=str(tmp_path / "snaps"), audit_journal_dir=False)
    with pytest.raises(ValueError):
        ctrl.restore_snapshot(bad_id)


def test_journal_refuses_unknown_kinds_and_non_json_data_and_writes_nothing(tmp_path):
    journal = AuditJournal(str(tmp_path / "j"))
    for kind, data in (("bogus", {}), ("note", {"x": math.nan}), ("note", {"x": object()}), ("note", _selfref()),
                       ("note", _deep(10_000)), ("note", {"x": 2 ** 200}), (None, {})):
        with pytest.raises((TypeError, ValueError)):
            journal.append(kind, data)
    stats = journal.get_statistics()
    assert (stats["appended"], stats["bytes"]) == (0, 0)
    assert journal.get_entries() == []


# ---------------------------------------------------------------------------------------------
# The bugs the sweep found, one minimal reproduction each. Each asserts the documented
# behaviour (docs/api.md: "integers beyond 64 bits ... raise ValueError"; limits below 0 raise
# ValueError).


@pytest.mark.parametrize("n", [2 ** 200, -(2 ** 200), 2 ** 64])
def test_pipeline_out_of_range_ints_raise_value_error(n):
    pipe = HealingPipeline(DetectionEngine(), ClassificationEngine(), {})
    with pytest.raises(ValueError):
        pipe.get_recent_cycles(n)
    with pytest.raises(ValueError):
        HealingPipeline(DetectionEngine(), ClassificationEngine(), {}, history_size=n)


def test_autorepair_engine_refuses_event_hooks_without_publish_event():
    pipe = HealingPipeline(DetectionEngine(), ClassificationEngine(), {})
    with pytest.raises(TypeError):
        AutorepairEngine(pipe, None, 0)


@pytest.mark.parametrize("n", [-1, 2 ** 200, 2 ** 64])
def test_max_snapshots_out_of_range_raises_value_error(n, tmp_path):
    with pytest.raises(ValueError):
        create_healing_controller(snapshot_dir=str(tmp_path / "c"), max_snapshots=n)
    with pytest.raises(ValueError):
        SnapshotManager(snapshot_dir=str(tmp_path / "s"), max_snapshots=n)


@pytest.mark.parametrize("mode", [Hostile(), _deep(10_000)], ids=["raising_hash", "deep_dict"])
def test_controller_set_autorepair_mode_refuses_hostile_values(mode, tmp_path):
    ctrl = HealingController(snapshot_dir=str(tmp_path / "c"), audit_journal_dir=False)
    with pytest.raises((TypeError, ValueError)):
        ctrl.set_autorepair_mode(mode)
    assert ctrl.get_status()["autorepair_mode"] == "balanced"


@pytest.mark.parametrize("option,n", [("fsync_interval_ms", -1), ("fsync_interval_ms", 2 ** 200),
                                      ("max_segment_bytes", 2 ** 200), ("max_segments", 2 ** 200),
                                      ("get_entries", 2 ** 200)])
def test_audit_journal_out_of_range_ints_raise_value_error(option, n, tmp_path):
    with pytest.raises(ValueError):
        if option == "get_entries":
            AuditJournal(str(tmp_path / "j")).get_entries(n)
        else:
            AuditJournal(str(tmp_path / "j"), **{option: n})
