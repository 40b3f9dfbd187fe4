//! Fault conditions: which metric values mean "the fault is still there".
//!
//! The same table serves twice. Before acting, a fault whose own metrics show every relevant
//! condition as fine is skipped (there is nothing to repair). After acting, a re-measurement
//! (from the layer, or from the caller's `verify` callable) is checked against it: cleared,
//! improved (still bad but better than when the fault was raised), or persisting. Thresholds
//! are the detection thresholds, so "cleared" means detection would no longer raise the fault.

use crate::engine::value::{as_number, truthy, Metrics};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bad {
    Above(f64),
    AtLeast(f64),
    Below(f64),
    AtMost(f64),
    Truthy,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub key: &'static str,
    pub bad: Bad,
}

const fn c(key: &'static str, bad: Bad) -> Condition {
    Condition { key, bad }
}

pub const CYCLES: &[Condition] = &[
    c("cycle_count", Bad::Above(0.0)),
    c("has_cycle", Bad::Truthy),
];
pub const DEADLOCK: &[Condition] = &[
    c("scheduler_stuck", Bad::Truthy),
    c("stuck", Bad::Truthy),
    c("deadlock", Bad::Truthy),
    c("has_cycle", Bad::Truthy),
    c("cycle_count", Bad::Above(0.0)),
];
pub const BOTTLENECK: &[Condition] = &[
    c("bottleneck_count", Bad::Above(5.0)),
    c("bottleneck_detected", Bad::Truthy),
];
pub const COMPLEXITY: &[Condition] = &[c("graph_complexity", Bad::AtLeast(100.0))];
pub const AGENT_FAILURE: &[Condition] = &[
    c("agent_failure_rate", Bad::Above(0.2)),
    c("failure_rate", Bad::Above(0.2)),
    c("agent_failed", Bad::Truthy),
];
pub const STALL: &[Condition] = &[
    c("stall_duration", Bad::AtLeast(10.0)),
    c("agent_stalled", Bad::Truthy),
];
pub const COOPERATION: &[Condition] = &[c("cooperation_score", Bad::AtMost(0.7))];
pub const COMMUNICATION: &[Condition] = &[c("communication_health", Bad::Below(0.5))];
pub const META_STATE: &[Condition] = &[
    c("stability_score", Bad::Below(0.5)),
    c("anomaly_rate", Bad::Above(0.4)),
    c("oscillation_detected", Bad::Truthy),
];
pub const TASK_FAILURE: &[Condition] = &[
    c("error_rate", Bad::Above(0.3)),
    c("task_failed", Bad::Truthy),
    c("timed_out", Bad::Truthy),
];
pub const QUEUE: &[Condition] = &[c("queue_size", Bad::Above(100.0))];
pub const RESOURCE: &[Condition] = &[
    c("usage", Bad::AtLeast(0.95)),
    c("cpu", Bad::Above(0.95)),
    c("memory", Bad::Above(0.95)),
    c("cpu_usage", Bad::Above(0.95)),
    c("memory_usage", Bad::Above(0.95)),
];
pub const PERFORMANCE: &[Condition] = &[c("performance_degraded", Bad::Truthy)];
pub const TAKEOVER: &[Condition] = &[
    c("takeover_active", Bad::Truthy),
    c("takeover", Bad::Truthy),
];
pub const RISK: &[Condition] = &[c("risk_score", Bad::Above(70.0))];
pub const VIOLATION: &[Condition] = &[
    c("violation_count", Bad::Above(0.0)),
    c("governance_violations", Bad::Above(0.0)),
];
pub const THRESHOLD: &[Condition] = &[c("threshold_breached", Bad::Truthy)];
pub const OVERRIDE: &[Condition] = &[c("override_count", Bad::AtLeast(10.0))];
pub const RULE_CONFLICT: &[Condition] = &[c("rule_conflicts", Bad::Above(0.0))];

impl Condition {
    /// Whether `v` is bad; `None` when the value cannot be read for this condition (a string
    /// where a number is expected), so it neither clears nor confirms the fault.
    pub fn is_bad(&self, v: &Value) -> Option<bool> {
        match self.bad {
            Bad::Truthy => Some(truthy(v)),
            Bad::Above(t) => as_number(v).map(|x| x > t),
            Bad::AtLeast(t) => as_number(v).map(|x| x >= t),
            Bad::Below(t) => as_number(v).map(|x| x < t),
            Bad::AtMost(t) => as_number(v).map(|x| x <= t),
        }
    }

    /// Whether `after` is on the good side of `before` (both bad).
    fn better(&self, before: &Value, after: &Value) -> bool {
        let (Some(b), Some(a)) = (as_number(before), as_number(after)) else {
            return false;
        };
        match self.bad {
            Bad::Above(_) | Bad::AtLeast(_) => a < b,
            Bad::Below(_) | Bad::AtMost(_) => a > b,
            Bad::Truthy => false,
        }
    }

    pub fn describe(&self, v: &Value) -> String {
        let shown = crate::engine::value::py_str(v);
        match self.bad {
            Bad::Truthy => format!("{}={shown}", self.key),
            Bad::Above(t) => format!("{}={shown} (bad above {})", self.key, fmt_num(t)),
            Bad::AtLeast(t) => format!("{}={shown} (bad from {})", self.key, fmt_num(t)),
            Bad::Below(t) => format!("{}={shown} (bad below {})", self.key, fmt_num(t)),
            Bad::AtMost(t) => format!("{}={shown} (bad up to {})", self.key, fmt_num(t)),
        }
    }
}

fn fmt_num(t: f64) -> String {
    crate::engine::pyfmt::float_repr(t)
        .trim_end_matches(".0")
        .to_string()
}

/// What a measurement says about the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Every relevant value is fine.
    Cleared,
    /// Still bad, but at least one bad value is better than when the fault was raised.
    Improved,
    /// Still bad and no better.
    Persists,
    /// The measurement has no relevant value.
    Unknown,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Cleared => "cleared",
            Check::Improved => "improved",
            Check::Persists => "persists",
            Check::Unknown => "unknown",
        }
    }
}

/// Checks `after` against the conditions, comparing with the values in `before` (the fault's
/// metrics) to tell "improved" from "persists". Returns the check and one line per value read.
pub fn check(conditions: &[Condition], before: &Metrics, after: &Metrics) -> (Check, Vec<String>) {
    let mut seen = false;
    let mut any_bad = false;
    let mut any_better = false;
    let mut notes = Vec::new();
    for cond in conditions {
        let Some(v) = after.get(cond.key) else {
            continue;
        };
        let Some(bad) = cond.is_bad(v) else { continue };
        seen = true;
        notes.push(cond.describe(v));
        if bad {
            any_bad = true;
            if before.get(cond.key).is_some_and(|b| cond.better(b, v)) {
                any_better = true;
            }
        }
    }
    let result = match (seen, any_bad, any_better) {
        (false, _, _) => Check::Unknown,
        (true, false, _) => Check::Cleared,
        (true, true, true) => Check::Improved,
        (true, true, false) => Check::Persists,
    };
    (result, notes)
}

/// `Some(description)` when the fault's own metrics show every relevant condition as fine,
/// i.e. there is nothing to repair; `None` when a condition is bad or no relevant value exists.
pub fn absent(conditions: &[Condition], metrics: &Metrics) -> Option<String> {
    // Decide first: the description is only built for the rare fault that is not there.
    let mut seen = false;
    for cond in conditions {
        let Some(v) = metrics.get(cond.key) else {
            continue;
        };
        match cond.is_bad(v) {
            Some(true) => return None,
            Some(false) => seen = true,
            None => {}
        }
    }
    if !seen {
        return None;
    }
    match check(conditions, &Metrics::new(), metrics) {
        (Check::Cleared, notes) => Some(notes.join(", ")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Metrics {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn cleared_improved_persists_and_unknown() {
        let before = m(json!({"queue_size": 250}));
        assert_eq!(
            check(QUEUE, &before, &m(json!({"queue_size": 80}))).0,
            Check::Cleared
        );
        assert_eq!(
            check(QUEUE, &before, &m(json!({"queue_size": 150}))).0,
            Check::Improved
        );
        assert_eq!(
            check(QUEUE, &before, &m(json!({"queue_size": 300}))).0,
            Check::Persists
        );
        assert_eq!(
            check(QUEUE, &before, &m(json!({"other": 1}))).0,
            Check::Unknown
        );
        // A value of the wrong type is no evidence either way.
        assert_eq!(
            check(QUEUE, &before, &m(json!({"queue_size": "many"}))).0,
            Check::Unknown
        );
    }

    #[test]
    fn one_bad_value_among_several_keeps_the_fault() {
        let before = m(json!({"stability_score": 0.3, "anomaly_rate": 0.6}));
        let after = m(json!({"stability_score": 0.9, "anomaly_rate": 0.5}));
        assert_eq!(check(META_STATE, &before, &after).0, Check::Improved);
        let after = m(json!({"stability_score": 0.9, "anomaly_rate": 0.1}));
        assert_eq!(check(META_STATE, &before, &after).0, Check::Cleared);
    }

    #[test]
    fn booleans_clear_or_persist_but_never_improve() {
        let before = m(json!({"takeover_active": true}));
        assert_eq!(
            check(TAKEOVER, &before, &m(json!({"takeover_active": true}))).0,
            Check::Persists
        );
        assert_eq!(
            check(TAKEOVER, &before, &m(json!({"takeover_active": false}))).0,
            Check::Cleared
        );
        assert_eq!(
            check(CYCLES, &Metrics::new(), &m(json!({"has_cycle": false}))).0,
            Check::Cleared
        );
    }

    #[test]
    fn absent_needs_every_relevant_value_fine() {
        assert!(absent(QUEUE, &m(json!({"queue_size": 50}))).is_some());
        assert!(absent(QUEUE, &m(json!({"queue_size": 150}))).is_none());
        assert!(absent(QUEUE, &m(json!({}))).is_none());
        assert_eq!(
            absent(CYCLES, &m(json!({"cycle_count": 0}))).as_deref(),
            Some("cycle_count=0 (bad above 0)")
        );
        assert!(absent(OVERRIDE, &m(json!({"override_count": 9}))).is_some());
        assert!(absent(OVERRIDE, &m(json!({"override_count": 10}))).is_none());
    }
}
