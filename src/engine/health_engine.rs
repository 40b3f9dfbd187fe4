//! Health scoring (0-100) and trend analysis.
//!
//! Scores follow the reference's deductions, clamps and summation order exactly, so overall
//! scores are bit-identical. The trend is a least-squares fit computed in one pass over the
//! window (the reference was quadratic in the window), and with fewer than two samples it
//! predicts the latest score instead of 0.0.

use crate::engine::error::{EngineError, EngineResult};
use crate::engine::pynum::{clamp_score, py_max, py_min, Num};
use crate::engine::value::{self, Metrics};
use crate::value_enum;
use std::collections::VecDeque;

value_enum! {
    pub enum HealthLevel {
        EXCELLENT = "excellent",
        GOOD = "good",
        FAIR = "fair",
        POOR = "poor",
        CRITICAL = "critical",
    }
}

value_enum! {
    pub enum TrendDirection {
        IMPROVING = "improving",
        STABLE = "stable",
        DECLINING = "declining",
        VOLATILE = "volatile",
    }
}

pub const DEFAULT_HISTORY_SIZE: usize = 100;
pub const DEFAULT_TREND_WINDOW: usize = 10;

/// The six components, in scoring and summation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Faza25,
    Faza27,
    Faza28,
    Faza28_5,
    Faza29,
    Faza30,
}

impl Component {
    pub const ALL: [Component; 6] = [
        Component::Faza25,
        Component::Faza27,
        Component::Faza28,
        Component::Faza28_5,
        Component::Faza29,
        Component::Faza30,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::Faza25 => "faza25_orchestrator",
            Component::Faza27 => "faza27_taskgraph",
            Component::Faza28 => "faza28_agent_loop",
            Component::Faza28_5 => "faza28_5_meta_layer",
            Component::Faza29 => "faza29_governance",
            Component::Faza30 => "faza30_self_healing",
        }
    }

    /// The weights sum to 1.0.
    pub fn weight(self) -> f64 {
        match self {
            Component::Faza25 | Component::Faza27 | Component::Faza28 => 0.20,
            Component::Faza28_5 | Component::Faza29 => 0.15,
            Component::Faza30 => 0.10,
        }
    }

    /// The keyword argument of `compute_health_score` that feeds this component.
    pub fn argument(self) -> &'static str {
        match self {
            Component::Faza25 => "faza25_metrics",
            Component::Faza27 => "faza27_metrics",
            Component::Faza28 => "faza28_metrics",
            Component::Faza28_5 => "faza28_5_metrics",
            Component::Faza29 => "faza29_metrics",
            Component::Faza30 => "faza30_metrics",
        }
    }

    /// The metric names this component reads: its four keys in deduction order, then the
    /// alias (if any) read when the key it stands for is missing or None.
    ///
    /// Aliases: `error_rate` stands for `1 - task_success_rate` (what detection reads),
    /// `bottleneck_count` for `bottleneck_detected` (detection; non-zero means detected),
    /// `failure_rate` for `agent_failure_rate` and `violation_count` for
    /// `governance_violations` (the keys detection puts on its faults).
    pub const fn names(self) -> &'static [&'static str] {
        match self {
            Component::Faza25 => &[
                "queue_size",
                "task_success_rate",
                "scheduler_efficiency",
                "cpu_usage",
                "error_rate",
            ],
            Component::Faza27 => &[
                "graph_complexity",
                "cycle_count",
                "bottleneck_detected",
                "optimization_score",
                "bottleneck_count",
            ],
            Component::Faza28 => &[
                "agent_failure_rate",
                "cooperation_score",
                "agent_performance",
                "communication_health",
                "failure_rate",
            ],
            Component::Faza28_5 => &[
                "stability_score",
                "policy_effectiveness",
                "anomaly_count",
                "feedback_health",
            ],
            Component::Faza29 => &[
                "governance_violations",
                "takeover_active",
                "override_count",
                "risk_score",
                "violation_count",
            ],
            Component::Faza30 => &[
                "active_faults",
                "repair_success_rate",
                "critical_faults",
                "failed_healing_cycles",
            ],
        }
    }

    /// The reading the alias (the fifth name) stands in for.
    pub fn alias_target(self) -> Option<usize> {
        match self {
            Component::Faza25 => Some(1),
            Component::Faza27 => Some(2),
            Component::Faza28 | Component::Faza29 => Some(0),
            Component::Faza28_5 | Component::Faza30 => None,
        }
    }

    /// Whether the i-th key is read for its truthiness rather than as a number.
    pub fn is_flag(self, i: usize) -> bool {
        matches!((self, i), (Component::Faza27, 2) | (Component::Faza29, 1))
    }
}

/// One component's readings, in `Component::keys` order. A flag holds `Num::Bool` of the
/// value's truthiness; an alias reading is already converted to the canonical meaning.
pub type Readings = [Option<Num>; 4];

/// Converts an alias reading to what the canonical key would hold.
pub fn from_alias(component: Component, i: usize, reading: Num) -> Num {
    match (component, i) {
        // error_rate -> task_success_rate
        (Component::Faza25, 1) => Num::Float(1.0 - reading.as_f64()),
        // bottleneck_count -> bottleneck_detected
        (Component::Faza27, 2) => Num::Bool(reading.truthy()),
        _ => reading,
    }
}

/// Reads one component's metrics from an engine map (each key, or its alias when the key is
/// missing or None).
pub fn readings_from_map(component: Component, map: &Metrics) -> EngineResult<Readings> {
    let names = component.names();
    let mut out: Readings = [None; 4];
    for (i, name) in names.iter().enumerate() {
        let Some(v) = map.get(*name).filter(|v| !v.is_null()) else {
            continue;
        };
        let what = format!("{}['{name}']", component.argument());
        if i < 4 {
            out[i] = Some(if component.is_flag(i) {
                Num::Bool(value::truthy(v))
            } else {
                number(v, &what)?
            });
        } else if let Some(target) = component.alias_target().filter(|t| out[*t].is_none()) {
            out[target] = Some(from_alias(component, target, number(v, &what)?));
        }
    }
    Ok(out)
}

fn number(v: &serde_json::Value, what: &str) -> EngineResult<Num> {
    Num::from_value(v, what)?.ok_or_else(|| EngineError::invalid(what.to_owned()))
}

/// `score - (1 - v) * k`, reading a missing `v` as 1.0 (no deduction is still a subtraction).
fn minus_shortfall(score: f64, v: Option<Num>, k: f64) -> f64 {
    let v = v.map_or(1.0, Num::as_f64);
    score - (1.0 - v) * k
}

/// `score - v * k` for an integer `k`, with Python's exact int products.
fn minus_times(score: f64, v: Option<Num>, k: i64) -> f64 {
    match v {
        Some(v) => score - v.times(k),
        None => score - 0.0,
    }
}

fn minus_times_capped(score: f64, v: Option<Num>, k: i64, cap: i64) -> f64 {
    match v {
        Some(v) => score - v.times_capped(k, cap),
        None => score - 0.0,
    }
}

fn gt(v: Option<Num>, bound: f64) -> bool {
    v.is_some_and(|n| n.gt(bound))
}

fn flag(v: Option<Num>) -> bool {
    v.is_some_and(Num::truthy)
}

/// A component's score from its readings: the reference's deductions in order, then a clamp
/// to [0, 100].
pub fn component_score(component: Component, r: &Readings) -> f64 {
    let mut s = 100.0f64;
    match component {
        Component::Faza25 => {
            if gt(r[0], 100.0) {
                s -= 20.0;
            } else if gt(r[0], 50.0) {
                s -= 10.0;
            }
            s = minus_shortfall(s, r[1], 30.0);
            s = minus_shortfall(s, r[2], 20.0);
            if gt(r[3], 0.9) {
                s -= 15.0;
            }
        }
        Component::Faza27 => {
            if gt(r[0], 200.0) {
                s -= 25.0;
            } else if gt(r[0], 100.0) {
                s -= 10.0;
            }
            s = minus_times_capped(s, r[1], 10, 30);
            if flag(r[2]) {
                s -= 20.0;
            }
            s = minus_shortfall(s, r[3], 15.0);
        }
        Component::Faza28 => {
            s = minus_times(s, r[0], 40);
            s = minus_shortfall(s, r[1], 25.0);
            s = minus_shortfall(s, r[2], 20.0);
            s = minus_shortfall(s, r[3], 15.0);
        }
        Component::Faza28_5 => {
            s = minus_shortfall(s, r[0], 35.0);
            s = minus_shortfall(s, r[1], 25.0);
            s = minus_times_capped(s, r[2], 5, 20);
            s = minus_shortfall(s, r[3], 20.0);
        }
        Component::Faza29 => {
            s = minus_times_capped(s, r[0], 5, 30);
            if flag(r[1]) {
                s -= 25.0;
            }
            if gt(r[2], 10.0) {
                s -= 15.0;
            }
            // risk * 0.3: an int meets a float, so it becomes a float first.
            s -= r[3].map_or(0.0, |v| v.as_f64() * 0.3);
        }
        Component::Faza30 => {
            s = minus_times_capped(s, r[0], 5, 30);
            s = minus_shortfall(s, r[1], 25.0);
            s = minus_times(s, r[2], 10);
            s = minus_times_capped(s, r[3], 5, 15);
        }
    }
    clamp_score(s)
}

pub fn level_of(score: f64) -> HealthLevel {
    if score >= 90.0 {
        HealthLevel::EXCELLENT
    } else if score >= 75.0 {
        HealthLevel::GOOD
    } else if score >= 60.0 {
        HealthLevel::FAIR
    } else if score >= 40.0 {
        HealthLevel::POOR
    } else {
        HealthLevel::CRITICAL
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    pub overall: f64,
    pub level: HealthLevel,
    /// Component scores in `Component::ALL` order.
    pub components: [f64; 6],
    /// Names of the first lowest and the first highest component.
    pub lowest: Component,
    pub highest: Component,
}

/// The highest overall health while a governance takeover is active.
pub const TAKEOVER_HEALTH_CAP: f64 = 70.0;

/// Scores the six components and combines them.
pub fn score(readings: &[Readings; 6]) -> Health {
    let mut components = [0.0f64; 6];
    for (i, c) in Component::ALL.iter().enumerate() {
        components[i] = component_score(*c, &readings[i]);
    }
    // Plain left-to-right summation (CPython 3.11's sum()), for bit-identical totals.
    let mut total = 0.0f64;
    for (i, c) in Component::ALL.iter().enumerate() {
        total += components[i] * c.weight();
    }
    let mut overall = clamp_score(total);
    // A governance takeover means the system no longer runs itself: whatever the components
    // say, health is at most FAIR. (The weighted sum alone moved only 3.75 points.)
    let takeover = readings[Component::Faza29 as usize][1].is_some_and(|v| v.truthy());
    if takeover {
        overall = overall.min(TAKEOVER_HEALTH_CAP);
    }
    let (mut lowest, mut highest) = (0, 0);
    for i in 1..6 {
        if components[i] < components[lowest] {
            lowest = i;
        }
        if components[i] > components[highest] {
            highest = i;
        }
    }
    Health {
        overall,
        level: level_of(overall),
        components,
        lowest: Component::ALL[lowest],
        highest: Component::ALL[highest],
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub direction: TrendDirection,
    pub slope: f64,
    pub confidence: f64,
    /// The scores analysed, oldest first; `window_size` is their count.
    pub recent: Vec<f64>,
    pub prediction: f64,
}

/// A least-squares line through `(i, scores[i])`, with its R² and the population variance of
/// the scores, in one pass (Welford's co-moment updates, which stay accurate for long windows).
pub fn fit(scores: &[f64]) -> (f64, f64, f64) {
    let (mut n, mut mean_x, mut mean_y) = (0.0f64, 0.0f64, 0.0f64);
    let (mut sxx, mut syy, mut sxy) = (0.0f64, 0.0f64, 0.0f64);
    for (i, y) in scores.iter().enumerate() {
        n += 1.0;
        let dx = i as f64 - mean_x;
        let dy = y - mean_y;
        mean_x += dx / n;
        mean_y += dy / n;
        sxx += dx * (i as f64 - mean_x);
        syy += dy * (y - mean_y);
        sxy += dx * (y - mean_y);
    }
    let variance = if n > 0.0 { syy / n } else { 0.0 };
    if scores.len() < 2 || sxx == 0.0 {
        return (0.0, 0.0, variance);
    }
    let slope = sxy / sxx;
    let r_squared = if syy > 0.0 {
        1.0 - (syy - slope * sxy) / syy
    } else {
        0.0
    };
    (slope, py_max(0.0, py_min(1.0, r_squared)), variance)
}

pub fn direction_of(slope: f64, variance: f64, samples: usize) -> TrendDirection {
    if samples >= 3 && variance > 100.0 {
        TrendDirection::VOLATILE
    } else if slope.abs() < 0.5 {
        TrendDirection::STABLE
    } else if slope > 0.0 {
        TrendDirection::IMPROVING
    } else {
        TrendDirection::DECLINING
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthStats {
    pub total_scores_computed: u64,
    pub avg_health: f64,
    pub min_health: f64,
    pub max_health: f64,
    pub history_size: usize,
}

pub struct HealthEngine {
    history: VecDeque<f64>,
    history_size: usize,
    total: u64,
    avg: f64,
    min: f64,
    max: f64,
}

impl HealthEngine {
    /// `history_size` is the number of overall scores kept (at least 1).
    pub fn new(history_size: usize) -> EngineResult<Self> {
        if history_size == 0 {
            return Err(EngineError::invalid(
                "history_size must be at least 1, got 0",
            ));
        }
        Ok(HealthEngine {
            history: VecDeque::with_capacity(history_size.min(1024)),
            history_size,
            total: 0,
            avg: 0.0,
            min: 100.0,
            max: 0.0,
        })
    }

    pub fn history_size(&self) -> usize {
        self.history_size
    }

    /// Scores the readings and records the overall score.
    pub fn compute(&mut self, readings: &[Readings; 6]) -> Health {
        let health = score(readings);
        self.record(health.overall);
        health
    }

    fn record(&mut self, overall: f64) {
        if self.history.len() == self.history_size {
            self.history.pop_front();
        }
        self.history.push_back(overall);
        self.total += 1;
        let n = self.total as f64;
        self.avg = (self.avg * (n - 1.0) + overall) / n;
        self.min = py_min(self.min, overall);
        self.max = py_max(self.max, overall);
    }

    /// The trend over the newest `window` scores. Fewer than two scores give a flat trend that
    /// predicts the latest score (100.0 with no history at all); `window` 0 analyses nothing.
    pub fn trend(&self, window: usize) -> Trend {
        let skip = self.history.len().saturating_sub(window);
        let recent: Vec<f64> = self.history.iter().skip(skip).copied().collect();
        let latest = self.history.back().copied().unwrap_or(100.0);
        if recent.len() < 2 {
            return Trend {
                direction: TrendDirection::STABLE,
                slope: 0.0,
                confidence: 0.0,
                recent,
                prediction: latest,
            };
        }
        let (slope, confidence, variance) = fit(&recent);
        let direction = direction_of(slope, variance, recent.len());
        let prediction = clamp_score(latest + slope);
        Trend {
            direction,
            slope,
            confidence,
            recent,
            prediction,
        }
    }

    /// The newest `limit` scores, oldest first.
    pub fn history(&self, limit: usize) -> Vec<f64> {
        let skip = self.history.len().saturating_sub(limit);
        self.history.iter().skip(skip).copied().collect()
    }

    pub fn stats(&self) -> HealthStats {
        HealthStats {
            total_scores_computed: self.total,
            avg_health: self.avg,
            min_health: self.min,
            max_health: self.max,
            history_size: self.history.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn readings(v: serde_json::Value) -> [Readings; 6] {
        let map = v.as_object().unwrap();
        let mut out = [[None; 4]; 6];
        for (i, c) in Component::ALL.iter().enumerate() {
            if let Some(m) = map.get(c.argument()) {
                out[i] = readings_from_map(*c, m.as_object().unwrap()).unwrap();
            }
        }
        out
    }

    #[test]
    fn a_governance_takeover_caps_health_below_good() {
        let calm = score(&readings(
            json!({"faza29_metrics": {"takeover_active": false}}),
        ));
        assert_eq!(calm.overall, 100.0);
        let taken = score(&readings(
            json!({"faza29_metrics": {"takeover_active": true}}),
        ));
        assert_eq!(taken.overall, TAKEOVER_HEALTH_CAP);
        assert_eq!(taken.level, HealthLevel::FAIR);
        assert!(taken.overall < 75.0);
    }

    #[test]
    fn no_metrics_is_a_perfect_score() {
        let h = score(&readings(json!({})));
        assert_eq!(h.overall, 100.0);
        assert_eq!(h.level, HealthLevel::EXCELLENT);
        assert_eq!(h.components, [100.0; 6]);
        assert_eq!(
            (h.lowest, h.highest),
            (Component::Faza25, Component::Faza25)
        );
    }

    #[test]
    fn deductions_match_the_reference_bit_for_bit() {
        // The harness's six-component input; the reference gives these exact floats.
        let h = score(&readings(json!({
            "faza25_metrics": {"queue_size": 60, "task_success_rate": 0.97, "scheduler_efficiency": 0.9, "cpu_usage": 0.55},
            "faza27_metrics": {"graph_complexity": 120, "cycle_count": 1, "bottleneck_detected": false, "optimization_score": 0.85},
            "faza28_metrics": {"agent_failure_rate": 0.05, "cooperation_score": 0.9, "agent_performance": 0.92, "communication_health": 0.97},
            "faza28_5_metrics": {"stability_score": 0.88, "policy_effectiveness": 0.9, "anomaly_count": 1, "feedback_health": 0.93},
            "faza29_metrics": {"governance_violations": 1, "takeover_active": false, "override_count": 2, "risk_score": 20},
            "faza30_metrics": {"active_faults": 2, "repair_success_rate": 0.8, "critical_faults": 0, "failed_healing_cycles": 1},
        })));
        let expected_components = [
            100.0 - 10.0 - (1.0 - 0.97) * 30.0 - (1.0 - 0.9) * 20.0,
            100.0 - 10.0 - 10.0 - (1.0 - 0.85) * 15.0,
            100.0 - 0.05 * 40.0 - (1.0 - 0.9) * 25.0 - (1.0 - 0.92) * 20.0 - (1.0 - 0.97) * 15.0,
            100.0 - (1.0 - 0.88) * 35.0 - (1.0 - 0.9) * 25.0 - 5.0 - (1.0 - 0.93) * 20.0,
            100.0 - 5.0 - 20.0 * 0.3,
            100.0 - 10.0 - (1.0 - 0.8) * 25.0 - 0.0 - 5.0,
        ];
        // Python subtracts the "no deduction" terms too: (1 - 1.0) * k is 0.0, and x - 0.0 == x.
        assert_eq!(h.components, expected_components);
        let mut total = 0.0;
        for (s, c) in expected_components.iter().zip(Component::ALL) {
            total += s * c.weight();
        }
        assert_eq!(h.overall, total);
        assert_eq!(
            h.overall, 86.04499999999999,
            "the reference's result on CPython 3.11"
        );
        assert_eq!(h.components[3], 86.89999999999999);
        assert_eq!(h.level, HealthLevel::GOOD);
        assert_eq!(
            (h.lowest, h.highest),
            (Component::Faza27, Component::Faza28)
        );
    }

    #[test]
    fn deductions_cap_and_clamp() {
        let h = score(&readings(json!({
            "faza27_metrics": {"cycle_count": 7, "graph_complexity": 250, "bottleneck_detected": 1},
            "faza29_metrics": {"governance_violations": 100, "takeover_active": true, "override_count": 11, "risk_score": 100},
            "faza30_metrics": {"critical_faults": 20},
        })));
        assert_eq!(h.components[1], 100.0 - 25.0 - 30.0 - 20.0);
        assert_eq!(h.components[4], 0.0, "100 - 30 - 25 - 15 - 30 clamps at 0");
        assert_eq!(h.components[5], 0.0, "critical faults have no cap");
    }

    #[test]
    fn aliases_stand_in_for_missing_canonical_keys() {
        let by_alias = score(&readings(json!({"faza29_metrics": {"violation_count": 2}})));
        assert_eq!(by_alias.components[4], 90.0);
        let both = score(&readings(
            json!({"faza29_metrics": {"violation_count": 2, "governance_violations": 0}}),
        ));
        assert_eq!(both.components[4], 100.0, "the canonical key wins");
        let errors = score(&readings(json!({"faza25_metrics": {"error_rate": 0.5}})));
        assert_eq!(errors.components[0], 100.0 - (1.0 - (1.0 - 0.5)) * 30.0);
        let bottlenecks = score(&readings(
            json!({"faza27_metrics": {"bottleneck_count": 3}}),
        ));
        assert_eq!(bottlenecks.components[1], 80.0);
        let agents = score(&readings(json!({"faza28_metrics": {"failure_rate": 0.5}})));
        assert_eq!(agents.components[2], 80.0);
    }

    #[test]
    fn bad_metric_values_are_refused_with_their_key() {
        let err = readings_from_map(
            Component::Faza25,
            json!({"queue_size": "many"}).as_object().unwrap(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("faza25_metrics['queue_size']"),
            "{err}"
        );
        // A flag accepts any value by its truthiness.
        let ok = readings_from_map(
            Component::Faza29,
            json!({"takeover_active": "yes"}).as_object().unwrap(),
        )
        .unwrap();
        assert_eq!(ok[1], Some(Num::Bool(true)));
    }

    #[test]
    fn levels_use_the_reference_thresholds() {
        let cases = [
            (90.0, HealthLevel::EXCELLENT),
            (89.99, HealthLevel::GOOD),
            (75.0, HealthLevel::GOOD),
            (60.0, HealthLevel::FAIR),
            (40.0, HealthLevel::POOR),
            (39.9, HealthLevel::CRITICAL),
        ];
        for (s, level) in cases {
            assert_eq!(level_of(s), level, "{s}");
        }
    }

    fn engine_with(scores: &[f64], size: usize) -> HealthEngine {
        let mut e = HealthEngine::new(size).unwrap();
        for s in scores {
            e.record(*s);
        }
        e
    }

    #[test]
    fn trend_of_a_line_is_exact() {
        let e = engine_with(&[50.0, 52.0, 54.0, 56.0, 58.0], 100);
        let t = e.trend(10);
        assert_eq!(t.slope, 2.0);
        assert_eq!(t.confidence, 1.0);
        assert_eq!(t.direction, TrendDirection::IMPROVING);
        assert_eq!(t.prediction, 60.0);
        assert_eq!(t.recent, vec![50.0, 52.0, 54.0, 56.0, 58.0]);
        let down = engine_with(&[90.0, 89.0, 88.0], 100).trend(10);
        assert_eq!(
            (down.direction, down.slope, down.prediction),
            (TrendDirection::DECLINING, -1.0, 87.0)
        );
    }

    #[test]
    fn trend_matches_the_two_pass_formulas() {
        let ys = [80.0, 95.5, 71.25, 88.0, 60.0, 99.0, 73.5];
        let n = ys.len() as f64;
        let xm = (n - 1.0) / 2.0;
        let ym = ys.iter().sum::<f64>() / n;
        let num: f64 = ys
            .iter()
            .enumerate()
            .map(|(i, y)| (i as f64 - xm) * (y - ym))
            .sum();
        let den: f64 = ys
            .iter()
            .enumerate()
            .map(|(i, _)| (i as f64 - xm).powi(2))
            .sum();
        let slope = num / den;
        let ss_tot: f64 = ys.iter().map(|y| (y - ym).powi(2)).sum();
        let ss_res: f64 = ys
            .iter()
            .enumerate()
            .map(|(i, y)| (y - (slope * (i as f64 - xm) + ym)).powi(2))
            .sum();
        let (s, r2, var) = fit(&ys);
        assert!((s - slope).abs() < 1e-12, "{s} vs {slope}");
        assert!((r2 - (1.0 - ss_res / ss_tot)).abs() < 1e-12);
        assert!((var - ss_tot / n).abs() < 1e-9);
        assert_eq!(direction_of(s, var, ys.len()), TrendDirection::VOLATILE);
    }

    #[test]
    fn flat_and_short_histories() {
        let flat = engine_with(&[70.0; 6], 100).trend(10);
        assert_eq!(
            (flat.direction, flat.slope, flat.confidence, flat.prediction),
            (TrendDirection::STABLE, 0.0, 0.0, 70.0)
        );
        let empty = HealthEngine::new(5).unwrap().trend(10);
        assert_eq!((empty.prediction, empty.recent.len()), (100.0, 0));
        let one = engine_with(&[42.0], 5).trend(10);
        assert_eq!(
            (one.direction, one.prediction, one.recent.clone()),
            (TrendDirection::STABLE, 42.0, vec![42.0])
        );
        let none = engine_with(&[42.0, 50.0], 5).trend(0);
        assert!(none.recent.is_empty());
        assert_eq!(none.prediction, 50.0);
        // Two samples never count as volatile, however far apart.
        assert_eq!(
            engine_with(&[0.0, 100.0], 5).trend(10).direction,
            TrendDirection::IMPROVING
        );
    }

    #[test]
    fn history_is_bounded_and_stats_track_every_score() {
        assert!(HealthEngine::new(0).is_err());
        let e = engine_with(&[10.0, 20.0, 30.0, 40.0], 3);
        assert_eq!(e.history(50), vec![20.0, 30.0, 40.0]);
        assert_eq!(e.history(2), vec![30.0, 40.0]);
        assert!(e.history(0).is_empty());
        let s = e.stats();
        assert_eq!((s.total_scores_computed, s.history_size), (4, 3));
        assert_eq!((s.min_health, s.max_health), (10.0, 40.0));
        assert_eq!(s.avg_health, 25.0);
    }

    #[test]
    fn long_windows_stay_accurate() {
        let ys: Vec<f64> = (0..100_000).map(|i| 50.0 + 0.0001 * i as f64).collect();
        let (slope, r2, _) = fit(&ys);
        assert!((slope - 0.0001).abs() < 1e-12, "{slope}");
        assert!(r2 > 0.999_999);
    }
}
