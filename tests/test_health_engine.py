"""Behaviour of senti_os.core.faza30.health_engine."""

import datetime
import math
import random

import pytest

from doubles import HEALTH6

from senti_os.core.faza30 import enums
from senti_os.core.faza30.health_engine import (
    HealthComponent,
    HealthEngine,
    HealthLevel,
    HealthScore,
    HealthTrend,
    TrendDirection,
    create_health_engine,
)

NAMES = ["faza25_orchestrator", "faza27_taskgraph", "faza28_agent_loop", "faza28_5_meta_layer",
         "faza29_governance", "faza30_self_healing"]
WEIGHTS = [0.20, 0.20, 0.20, 0.15, 0.15, 0.10]
ARGS = ["faza25_metrics", "faza27_metrics", "faza28_metrics", "faza28_5_metrics", "faza29_metrics", "faza30_metrics"]

FULL = HEALTH6


def spec_scores(kw):
    """The component scores as the specification's deduction table states them, in plain
    Python, with the same operations in the same order."""
    def g(arg, key, default):
        return (kw.get(arg) or {}).get(key, default)

    def clamp(s):
        return max(0.0, min(100.0, s))

    s25 = 100.0
    q = g("faza25_metrics", "queue_size", 0)
    if q > 100:
        s25 -= 20
    elif q > 50:
        s25 -= 10
    s25 -= (1.0 - g("faza25_metrics", "task_success_rate", 1.0)) * 30
    s25 -= (1.0 - g("faza25_metrics", "scheduler_efficiency", 1.0)) * 20
    if g("faza25_metrics", "cpu_usage", 0.0) > 0.9:
        s25 -= 15
    s27 = 100.0
    c = g("faza27_metrics", "graph_complexity", 0)
    if c > 200:
        s27 -= 25
    elif c > 100:
        s27 -= 10
    s27 -= min(g("faza27_metrics", "cycle_count", 0) * 10, 30)
    if g("faza27_metrics", "bottleneck_detected", False):
        s27 -= 20
    s27 -= (1.0 - g("faza27_metrics", "optimization_score", 1.0)) * 15
    s28 = 100.0
    s28 -= g("faza28_metrics", "agent_failure_rate", 0.0) * 40
    s28 -= (1.0 - g("faza28_metrics", "cooperation_score", 1.0)) * 25
    s28 -= (1.0 - g("faza28_metrics", "agent_performance", 1.0)) * 20
    s28 -= (1.0 - g("faza28_metrics", "communication_health", 1.0)) * 15
    s285 = 100.0
    s285 -= (1.0 - g("faza28_5_metrics", "stability_score", 1.0)) * 35
    s285 -= (1.0 - g("faza28_5_metrics", "policy_effectiveness", 1.0)) * 25
    s285 -= min(g("faza28_5_metrics", "anomaly_count", 0) * 5, 20)
    s285 -= (1.0 - g("faza28_5_metrics", "feedback_health", 1.0)) * 20
    s29 = 100.0
    s29 -= min(g("faza29_metrics", "governance_violations", 0) * 5, 30)
    if g("faza29_metrics", "takeover_active", False):
        s29 -= 25
    if g("faza29_metrics", "override_count", 0) > 10:
        s29 -= 15
    s29 -= g("faza29_metrics", "risk_score", 0) * 0.3
    s30 = 100.0
    s30 -= min(g("faza30_metrics", "active_faults", 0) * 5, 30)
    s30 -= (1.0 - g("faza30_metrics", "repair_success_rate", 1.0)) * 25
    s30 -= g("faza30_metrics", "critical_faults", 0) * 10
    s30 -= min(g("faza30_metrics", "failed_healing_cycles", 0) * 5, 15)
    return [clamp(s) for s in (s25, s27, s28, s285, s29, s30)]


def spec_overall(kw):
    total = 0  # plain left-to-right summation
    for score, weight in zip(spec_scores(kw), WEIGHTS):
        total = total + score * weight
    overall = max(0.0, min(100.0, total))
    # Our change to the reference: a governance takeover caps health at 70 (FAIR).
    if (kw.get("faza29_metrics") or {}).get("takeover_active"):
        overall = min(overall, 70.0)
    return overall


def test_a_takeover_caps_overall_health_at_fair(engine):
    calm = engine.compute_health_score(faza29_metrics={"takeover_active": False})
    taken = engine.compute_health_score(faza29_metrics={"takeover_active": True})
    assert calm.overall_score == 100.0
    assert taken.overall_score == 70.0 and taken.level == HealthLevel.FAIR


@pytest.fixture
def engine():
    return HealthEngine()


def test_enums_are_the_package_enums():
    assert HealthLevel is enums.HealthLevel and TrendDirection is enums.TrendDirection


def test_no_metrics_is_a_perfect_score(engine):
    s = engine.compute_health_score()
    assert s.overall_score == 100.0 and type(s.overall_score) is float
    assert s.level is HealthLevel.EXCELLENT
    assert s.metadata == {"component_count": 6, "lowest_component": "faza25_orchestrator",
                          "highest_component": "faza25_orchestrator"}
    assert [c.name for c in s.components] == NAMES
    assert [c.weight for c in s.components] == WEIGHTS
    assert all(c.score == 100.0 and c.details == {"metrics": {}} for c in s.components)
    assert isinstance(s.components[0], HealthComponent)
    assert isinstance(s.timestamp, datetime.datetime) and s.timestamp.tzinfo is None


def test_full_input_gives_the_reference_value_bit_for_bit(engine):
    s = engine.compute_health_score(**FULL)
    assert s.overall_score == 86.04499999999999  # what the reference prints on CPython 3.11
    assert [c.score for c in s.components] == [87.1, 77.75, 93.45, 86.89999999999999, 89.0, 80.0]
    assert s.level is HealthLevel.GOOD
    assert s.metadata["lowest_component"] == "faza27_taskgraph"
    assert s.metadata["highest_component"] == "faza28_agent_loop"
    positional = HealthEngine().compute_health_score(*[FULL[a] for a in ARGS])
    assert positional.overall_score == s.overall_score


def test_details_hold_the_dict_passed(engine):
    m25 = {"queue_size": 60}
    s = engine.compute_health_score(faza25_metrics=m25, faza27_metrics={})
    assert s.components[0].details["metrics"] is m25
    assert s.components[1].details == {"metrics": {}}
    assert s.components[2].details == {"metrics": {}}


def test_random_inputs_match_the_specified_arithmetic_exactly():
    rnd = random.Random(30)
    engine = HealthEngine()
    for _ in range(3000):
        kw = {}
        for arg, metrics in FULL.items():
            if rnd.random() < 0.8:
                keys = rnd.sample(list(metrics), rnd.randint(0, 4))
                kw[arg] = {k: rnd.choice([rnd.randint(-3, 300), rnd.uniform(-0.5, 1.5), True, False, 2**62])
                           for k in keys}
        s = engine.compute_health_score(**kw)
        assert [c.score for c in s.components] == spec_scores(kw), kw
        assert s.overall_score == spec_overall(kw), kw


class _Float(float):
    """A float subclass: read through the general path, not the in-place one."""


def test_the_in_place_reader_and_the_general_reader_agree():
    # Plain dicts of exact str keys and exact numbers are read in place; a non-str key (or a
    # number subclass) sends the dict through the general reader. Both must score the same.
    rnd = random.Random(31)
    engine = HealthEngine()
    aliases = {"faza25_metrics": "error_rate", "faza27_metrics": "bottleneck_count",
               "faza28_metrics": "failure_rate", "faza29_metrics": "violation_count"}
    for _ in range(2000):
        plain, general = {}, {}
        for arg, metrics in FULL.items():
            names = list(metrics) + ([aliases[arg]] if arg in aliases else [])
            keys = rnd.sample(names, rnd.randint(0, len(names)))
            d = {k: rnd.choice([rnd.randint(-3, 300), rnd.uniform(-0.5, 1.5), True, False, None, 0, 1])
                 for k in keys}
            plain[arg] = d
            general[arg] = {**d, 7: "ignored"} if rnd.random() < 0.5 else {
                k: _Float(v) if type(v) is float else v for k, v in d.items()}
        a = engine.compute_health_score(**plain, record=False)
        b = engine.compute_health_score(**general, record=False)
        assert [c.score for c in a.components] == [c.score for c in b.components], plain
        assert a.overall_score == b.overall_score, plain


@pytest.mark.parametrize("kw, component, expected", [
    ({"faza27_metrics": {"cycle_count": 7, "graph_complexity": 250, "bottleneck_detected": 1}}, 1, 100.0 - 25 - 30 - 20),
    ({"faza29_metrics": {"governance_violations": 100, "takeover_active": True, "override_count": 11,
                         "risk_score": 100}}, 4, 0.0),
    ({"faza30_metrics": {"critical_faults": 20}}, 5, 0.0),
    # -inf then +inf deductions make NaN, which Python's min/max clamp to 100.
    ({"faza25_metrics": {"task_success_rate": -1e308, "scheduler_efficiency": 1e308}}, 0, 100.0),
    # Aliases, read when the canonical key is missing.
    ({"faza29_metrics": {"violation_count": 2}}, 4, 90.0),
    ({"faza29_metrics": {"violation_count": 2, "governance_violations": 0}}, 4, 100.0),
    ({"faza27_metrics": {"bottleneck_count": 3}}, 1, 80.0),
    ({"faza28_metrics": {"failure_rate": 0.5}}, 2, 80.0),
    ({"faza25_metrics": {"error_rate": 0.5}}, 0, 100.0 - (1.0 - (1.0 - 0.5)) * 30),
    ({"faza29_metrics": {"governance_violations": None, "violation_count": 1}}, 4, 95.0),
])
def test_caps_clamps_and_aliases(engine, kw, component, expected):
    assert engine.compute_health_score(**kw).components[component].score == expected


def test_levels(engine):
    # Only the faza30 component moves: overall = 90 + 0.1 * (100 - 10 * critical_faults).
    levels = {k: engine.compute_health_score(faza30_metrics={"critical_faults": k}).level for k in range(11)}
    assert levels[0] is HealthLevel.EXCELLENT and levels[10] is HealthLevel.EXCELLENT
    s = engine.compute_health_score(faza25_metrics={"queue_size": 150, "task_success_rate": 0.0,
                                                    "scheduler_efficiency": 0.0, "cpu_usage": 1.0},
                                    faza27_metrics={"graph_complexity": 300, "cycle_count": 3, "bottleneck_detected": True,
                                                    "optimization_score": 0.0},
                                    faza28_metrics={"agent_failure_rate": 1.0, "cooperation_score": 0.0})
    assert s.overall_score == spec_overall({"faza25_metrics": {"queue_size": 150, "task_success_rate": 0.0,
                                                               "scheduler_efficiency": 0.0, "cpu_usage": 1.0},
                                            "faza27_metrics": {"graph_complexity": 300, "cycle_count": 3,
                                                               "bottleneck_detected": True, "optimization_score": 0.0},
                                            "faza28_metrics": {"agent_failure_rate": 1.0, "cooperation_score": 0.0}})
    assert s.level is HealthLevel.POOR  # 0.2*0 + 0.2*0 + 0.2*35 + 15 + 15 + 10 = 47


def scores_into(engine, critical_faults):
    """Each value k adds the overall score 100 - k exactly."""
    for k in critical_faults:
        engine.compute_health_score(faza30_metrics={"critical_faults": k})


def test_trend_of_a_straight_line(engine):
    scores_into(engine, [1, 2, 3, 4, 5])
    t = engine.analyze_trend()
    assert isinstance(t, HealthTrend)
    assert t.recent_scores == [99.0, 98.0, 97.0, 96.0, 95.0]
    assert (t.direction, t.slope, t.confidence, t.window_size) == (TrendDirection.DECLINING, -1.0, 1.0, 5)
    assert t.prediction == 94.0
    up = HealthEngine()
    scores_into(up, [5, 4, 3])
    assert (up.analyze_trend().direction, up.analyze_trend().slope, up.analyze_trend().prediction) == (
        TrendDirection.IMPROVING, 1.0, 98.0)


def test_trend_maths_on_a_noisy_series(engine):
    ks = [3, 0, 5, 1, 9, 2, 4]
    scores_into(engine, ks)
    ys = [100.0 - k for k in ks]
    n = len(ys)
    xm, ym = (n - 1) / 2, sum(ys) / n
    slope = sum((i - xm) * (y - ym) for i, y in enumerate(ys)) / sum((i - xm) ** 2 for i in range(n))
    ss_tot = sum((y - ym) ** 2 for y in ys)
    ss_res = sum((y - (slope * (i - xm) + ym)) ** 2 for i, y in enumerate(ys))
    t = engine.analyze_trend(window_size=7)
    assert t.slope == pytest.approx(slope, abs=1e-12)
    assert t.confidence == pytest.approx(1 - ss_res / ss_tot, abs=1e-12)
    assert t.direction is TrendDirection.STABLE  # |slope| < 0.5, variance < 100
    assert t.prediction == pytest.approx(ys[-1] + slope, abs=1e-12)


def test_volatile_and_flat_trends(engine):
    bad = {"task_success_rate": 0.0, "scheduler_efficiency": 0.0, "queue_size": 500, "cpu_usage": 1.0}
    for i in range(6):
        engine.compute_health_score(faza25_metrics=bad if i % 2 else None,
                                    faza27_metrics={"cycle_count": 9, "bottleneck_detected": True,
                                                    "graph_complexity": 900, "optimization_score": 0.0} if i % 2 else None)
    assert engine.analyze_trend().direction is TrendDirection.VOLATILE
    flat = HealthEngine()
    for _ in range(4):
        flat.compute_health_score()
    t = flat.analyze_trend()
    assert (t.direction, t.slope, t.confidence, t.prediction) == (TrendDirection.STABLE, 0.0, 0.0, 100.0)


def test_short_histories_predict_the_latest_score():
    empty = HealthEngine().analyze_trend()
    assert (empty.direction, empty.slope, empty.window_size, empty.recent_scores, empty.prediction) == (
        TrendDirection.STABLE, 0.0, 0, [], 100.0)
    one = HealthEngine()
    one.compute_health_score(faza30_metrics={"critical_faults": 3})
    t = one.analyze_trend()
    assert (t.prediction, t.recent_scores, t.window_size) == (97.0, [97.0], 1)


def test_window_sizes(engine):
    scores_into(engine, [0, 10, 1, 2, 3])
    assert engine.analyze_trend(window_size=3).recent_scores == [99.0, 98.0, 97.0]
    assert engine.analyze_trend(window_size=3).slope == -1.0
    zero = engine.analyze_trend(window_size=0)
    assert (zero.recent_scores, zero.window_size, zero.slope, zero.prediction) == ([], 0, 0.0, 97.0)
    one = engine.analyze_trend(window_size=1)
    assert (one.recent_scores, one.slope, one.prediction) == ([97.0], 0.0, 97.0)
    assert engine.analyze_trend(window_size=10**40).window_size == 5
    with pytest.raises(ValueError, match="window_size"):
        engine.analyze_trend(window_size=-1)
    with pytest.raises(TypeError, match="window_size"):
        engine.analyze_trend(window_size=2.5)


def test_long_windows_stay_exact():
    engine = HealthEngine(history_size=1000)
    for i in range(1000):
        engine.compute_health_score(faza30_metrics={"critical_faults": i % 10})
    t = engine.analyze_trend(window_size=1000)
    assert t.window_size == 1000 and len(t.recent_scores) == 1000
    assert abs(t.slope) < 1e-3
    line = HealthEngine(history_size=1000)
    for i in range(1000):
        line.compute_health_score(faza29_metrics={"risk_score": i / 10})
    t = line.analyze_trend(window_size=1000)
    assert t.slope == pytest.approx(-0.15 * 0.3 * 0.1, rel=1e-9)
    assert t.confidence == pytest.approx(1.0, abs=1e-9)


def test_history_and_statistics():
    engine = create_health_engine(history_size=3)
    assert engine.history_size == 3
    scores_into(engine, [1, 2, 3, 4])
    assert engine.get_health_history() == [98.0, 97.0, 96.0]
    assert engine.get_health_history(limit=2) == [97.0, 96.0]
    assert engine.get_health_history(0) == []
    with pytest.raises(ValueError, match="limit"):
        engine.get_health_history(-2)
    stats = engine.get_statistics()
    assert list(stats) == ["total_scores_computed", "avg_health", "min_health", "max_health", "history_size",
                           "current_trend", "trend_slope"]
    assert stats["total_scores_computed"] == 4 and stats["history_size"] == 3
    assert (stats["min_health"], stats["max_health"]) == (96.0, 99.0)
    mean = 0.0
    for n, x in enumerate([99.0, 98.0, 97.0, 96.0], start=1):
        mean = (mean * (n - 1) + x) / n
    assert stats["avg_health"] == mean
    assert (stats["current_trend"], stats["trend_slope"]) == ("declining", -1.0)
    fresh = HealthEngine().get_statistics()
    assert (fresh["min_health"], fresh["max_health"], fresh["avg_health"]) == (100.0, 0.0, 0.0)


def test_component_weights_are_a_fresh_dict(engine):
    weights = engine._component_weights
    assert list(weights) == NAMES and list(weights.values()) == WEIGHTS
    assert sum(weights.values()) == pytest.approx(1.0)
    weights["faza25_orchestrator"] = 5.0
    assert engine._component_weights["faza25_orchestrator"] == 0.20


@pytest.mark.parametrize("history_size, error", [(0, ValueError), (-1, ValueError), ("10", TypeError),
                                                  (1.5, TypeError), (True, TypeError), (None, None)])
def test_history_size_validation(history_size, error):
    if error is None:
        assert HealthEngine(history_size).history_size == 100
        return
    with pytest.raises(error, match="history_size"):
        HealthEngine(history_size=history_size)


@pytest.mark.parametrize("kw, error, words", [
    ({"faza25_metrics": [1, 2]}, TypeError, "faza25_metrics"),
    ({"faza27_metrics": {"cycle_count": float("nan")}}, ValueError, "faza27_metrics['cycle_count']"),
    ({"faza28_metrics": {"cooperation_score": float("-inf")}}, ValueError, "faza28_metrics['cooperation_score']"),
    ({"faza29_metrics": {"risk_score": 2**200}}, ValueError, "faza29_metrics['risk_score']"),
    ({"faza30_metrics": {"active_faults": "many"}}, TypeError, "faza30_metrics['active_faults']"),
    ({"faza29_metrics": {"violation_count": "x"}}, TypeError, "faza29_metrics['violation_count']"),
    ({"faza28_5_metrics": {"anomaly_count": [1]}}, TypeError, "faza28_5_metrics['anomaly_count']"),
])
def test_bad_input_is_refused_before_anything_is_recorded(engine, kw, error, words):
    engine.compute_health_score()
    # A valid dict in another argument: nothing of it may be recorded either.
    good = next(a for a in ARGS if a not in kw)
    with pytest.raises(error) as info:
        engine.compute_health_score(**{good: {"queue_size": 500, "cycle_count": 2, "active_faults": 3}}, **kw)
    assert words in str(info.value)
    assert engine.get_statistics()["total_scores_computed"] == 1
    assert engine.get_health_history() == [100.0]
    assert engine.compute_health_score(**FULL).overall_score == 86.04499999999999


def test_unknown_arguments_and_odd_values(engine):
    with pytest.raises(TypeError):
        engine.compute_health_score(faza31_metrics={})
    # Truthiness flags take any value; a dict subclass is a dict; numbers may be bools.
    class Metrics(dict):
        pass

    s = engine.compute_health_score(faza29_metrics=Metrics(takeover_active="yes"), faza27_metrics={"cycle_count": True})
    assert s.components[4].score == 75.0 and s.components[1].score == 90.0


def test_scores_are_not_ordered(engine):
    a, b = engine.compute_health_score(), engine.compute_health_score()
    with pytest.raises(TypeError):
        _ = a < b
    assert isinstance(a, HealthScore)
    built = HealthScore(overall_score=50.0, level=HealthLevel.POOR)
    assert built.components == [] and built.metadata == {} and isinstance(built.timestamp, datetime.datetime)
    trend = HealthTrend(direction=TrendDirection.STABLE, slope=0.0, confidence=0.0, window_size=0)
    assert trend.prediction == 0.0 and trend.recent_scores == []
    assert math.isfinite(a.overall_score)


def test_number_like_values_and_reentrant_callers(engine):
    from decimal import Decimal
    from fractions import Fraction

    s = engine.compute_health_score(faza25_metrics={"task_success_rate": Decimal("0.5"), "queue_size": Fraction(120, 1)})
    assert s.components[0].score == 100.0 - 20 - (1.0 - 0.5) * 30

    class Reentrant:
        def __float__(self):
            engine.compute_health_score()
            return 0.5

    s = engine.compute_health_score(faza28_metrics={"cooperation_score": Reentrant()})
    assert s.components[2].score == 100.0 - (1.0 - 0.5) * 25
    assert engine.get_statistics()["total_scores_computed"] == 3
