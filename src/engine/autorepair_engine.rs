//! The auto-repair loop's policy: modes, configuration and throttling.

use crate::value_enum;

pub mod throttle;

value_enum! {
    pub enum AutorepairMode {
        AGGRESSIVE = "aggressive",
        BALANCED = "balanced",
        CONSERVATIVE = "conservative",
        DISABLED = "disabled",
    }
}

value_enum! {
    pub enum ThrottleState {
        NORMAL = "normal",
        THROTTLED = "throttled",
        BLOCKED = "blocked",
    }
}

use self::throttle::{Denial, Throttle, ThrottleEvent, ThrottlePolicy};
use crate::engine::detection_engine::FaultSeverity;
use crate::engine::error::{EngineError, EngineResult};

/// The throttle's key for what a repair acts on: the fault type, plus the first agent, task
/// or cycle the fault names, so one flapping agent does not hold back repairs of another.
pub fn target_key(fault_type: &str, metrics: &crate::engine::value::Metrics) -> String {
    use serde_json::Value;
    for key in ["agent_id", "agent_name", "agent", "task_id"] {
        if let Some(Value::String(s)) = metrics.get(key) {
            return format!("{fault_type}:{s}");
        }
    }
    for key in [
        "failing_agents",
        "failed_task_ids",
        "task_ids",
        "stuck_task_ids",
    ] {
        if let Some(Value::Array(items)) = metrics.get(key) {
            if let Some(Value::String(s)) = items.first() {
                return format!("{fault_type}:{s}");
            }
        }
    }
    if let Some(Value::Array(cycles)) = metrics.get("cycles") {
        if let Some(Value::Array(nodes)) = cycles.first() {
            let names: Vec<String> = nodes.iter().map(crate::engine::value::py_str).collect();
            return format!("{fault_type}:{}", names.join("->"));
        }
    }
    fault_type.to_string()
}

/// The loop's settings, validated. `AutorepairConfig` in Python mirrors these fields.
#[derive(Debug, Clone, PartialEq)]
pub struct AutorepairSettings {
    pub mode: AutorepairMode,
    pub interval_seconds: f64,
    pub max_repairs_per_minute: u32,
    pub max_repairs_per_hour: u32,
    pub cooldown_seconds: f64,
    /// Below this health the loop stops repairing and escalates: acting on a system this
    /// broken is more likely to make it worse (Cluster API's maxUnhealthy short circuit).
    pub min_health_for_repair: f64,
    pub enable_snapshots: bool,
    pub enable_rollback: bool,
    /// Plan and report, take no action.
    pub dry_run: bool,
    /// Bound on every Python callback made from the loop.
    pub callback_timeout_seconds: f64,
}

impl Default for AutorepairSettings {
    fn default() -> Self {
        AutorepairSettings {
            mode: AutorepairMode::BALANCED,
            interval_seconds: 5.0,
            max_repairs_per_minute: 10,
            max_repairs_per_hour: 50,
            cooldown_seconds: 3.0,
            min_health_for_repair: 20.0,
            enable_snapshots: true,
            enable_rollback: true,
            dry_run: false,
            callback_timeout_seconds: 5.0,
        }
    }
}

/// The shortest interval the loop accepts (the reference clamped to 0.1 s silently).
pub const MIN_INTERVAL_SECONDS: f64 = 0.001;

pub fn check_seconds(name: &str, v: f64, min: f64) -> EngineResult<f64> {
    if !v.is_finite() || v < min {
        return Err(EngineError::invalid(format!(
            "{name} must be a finite number >= {min}, got {v}"
        )));
    }
    Ok(v)
}

/// The largest repair limit accepted (a "no limit" setting in practice).
pub const MAX_REPAIR_LIMIT: i64 = 1_000_000_000;

pub fn check_count(name: &str, v: i64) -> EngineResult<u32> {
    if !(1..=MAX_REPAIR_LIMIT).contains(&v) {
        return Err(EngineError::invalid(format!(
            "{name} must be between 1 and {MAX_REPAIR_LIMIT}, got {v}"
        )));
    }
    Ok(v as u32)
}

impl AutorepairSettings {
    pub fn validate(&self) -> EngineResult<()> {
        check_seconds(
            "interval_seconds",
            self.interval_seconds,
            MIN_INTERVAL_SECONDS,
        )?;
        check_seconds("cooldown_seconds", self.cooldown_seconds, 0.0)?;
        check_seconds(
            "callback_timeout_seconds",
            self.callback_timeout_seconds,
            0.001,
        )?;
        if !(0.0..=100.0).contains(&self.min_health_for_repair) {
            return Err(EngineError::invalid(format!(
                "min_health_for_repair must be between 0 and 100, got {}",
                self.min_health_for_repair
            )));
        }
        check_count("max_repairs_per_minute", self.max_repairs_per_minute as i64)?;
        check_count("max_repairs_per_hour", self.max_repairs_per_hour as i64)?;
        Ok(())
    }

    pub fn throttle_policy(&self, base: &ThrottlePolicy) -> ThrottlePolicy {
        ThrottlePolicy {
            max_repairs_per_minute: self.max_repairs_per_minute,
            max_repairs_per_hour: self.max_repairs_per_hour,
            cooldown_seconds: self.cooldown_seconds,
            ..base.clone()
        }
    }
}

/// The loop's counters (the reference's keys, with their meanings fixed: repairs are
/// repairs, not faults seen).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoopStats {
    pub total_cycles: u64,
    pub healing_cycles_triggered: u64,
    pub repairs_attempted: u64,
    pub repairs_successful: u64,
    /// Repairs whose actions ran and whose effect could not be measured yet.
    pub repairs_awaiting_evidence: u64,
    pub throttled_count: u64,
    pub blocked_count: u64,
    pub avg_cycle_duration: f64,
    pub skipped_low_health: u64,
    pub escalations: u64,
    pub callback_errors: u64,
    /// Repairs replayed from the audit journal when the loop was created.
    pub recovered_repairs: u64,
}

/// Whether a loop iteration runs a healing cycle.
#[derive(Debug, Clone, PartialEq)]
pub enum CycleDecision {
    Run,
    Skip(String),
}

/// How a repair ended, as the throttle weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairOutcome {
    /// Repaired: SUCCESS, not contradicted by fresh metrics.
    Succeeded,
    /// Every action ran without error, but nothing has happened since that could show its
    /// effect (PARTIAL `awaiting_evidence`, e.g. a restart before the agent ticked). Not a
    /// failure for the circuit breaker; still a repair of its target for backoff and flap
    /// detection.
    AwaitingEvidence,
    /// Anything else that ran: an action raised or declined, the fault is still measured, ...
    Failed,
}

impl RepairOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RepairOutcome::Succeeded => "succeeded",
            RepairOutcome::AwaitingEvidence => "awaiting_evidence",
            RepairOutcome::Failed => "failed",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "succeeded" => Some(RepairOutcome::Succeeded),
            "awaiting_evidence" => Some(RepairOutcome::AwaitingEvidence),
            "failed" => Some(RepairOutcome::Failed),
            _ => None,
        }
    }

    /// The outcome of a repair the pipeline ran.
    pub fn of(repair: &crate::engine::healing_pipeline::RepairRecord) -> Self {
        if repair.repaired() {
            RepairOutcome::Succeeded
        } else if repair.applied_awaiting_evidence() {
            RepairOutcome::AwaitingEvidence
        } else {
            RepairOutcome::Failed
        }
    }

    /// The outcome an audit journal entry records: `outcome` when it names one, else the
    /// `succeeded` flag entries had before outcomes were written. None when it has neither.
    pub fn from_journal(data: &crate::engine::value::Metrics) -> Option<Self> {
        data.get("outcome")
            .and_then(serde_json::Value::as_str)
            .and_then(RepairOutcome::from_name)
            .or_else(|| {
                data.get("succeeded")
                    .and_then(serde_json::Value::as_bool)
                    .map(|ok| {
                        if ok {
                            RepairOutcome::Succeeded
                        } else {
                            RepairOutcome::Failed
                        }
                    })
            })
    }
}

/// One repair the pipeline ran, as the loop's throttle sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairRecord {
    pub target: String,
    pub action: String,
    pub outcome: RepairOutcome,
}

/// The loop's decision state: mode, throttle and counters. Owned by the binding behind a
/// mutex; every method is quick and pure.
#[derive(Debug, Clone)]
pub struct AutorepairPolicy {
    pub settings: AutorepairSettings,
    pub throttle: Throttle,
    pub stats: LoopStats,
    last_state: ThrottleState,
}

impl AutorepairPolicy {
    pub fn new(settings: AutorepairSettings) -> Self {
        let throttle = Throttle::new(settings.throttle_policy(&ThrottlePolicy::default()));
        AutorepairPolicy {
            settings,
            throttle,
            stats: LoopStats::default(),
            last_state: ThrottleState::NORMAL,
        }
    }

    /// Applies new settings, keeping the throttle's history.
    pub fn apply(&mut self, settings: AutorepairSettings) -> EngineResult<()> {
        settings.validate()?;
        self.throttle.policy = settings.throttle_policy(&self.throttle.policy);
        self.settings = settings;
        Ok(())
    }

    /// Called at the top of each loop iteration. `forced` cycles skip the cooldown only.
    /// Returns the decision and, when the throttle state changed, the new state to publish.
    pub fn begin_iteration(
        &mut self,
        now: f64,
        forced: bool,
    ) -> (CycleDecision, Option<ThrottleState>) {
        self.stats.total_cycles += 1;
        let state = self.throttle.state(now);
        let changed = if state != self.last_state {
            self.last_state = state;
            Some(state)
        } else {
            None
        };
        if self.settings.mode == AutorepairMode::DISABLED && !forced {
            return (
                CycleDecision::Skip("mode disabled: observing only".into()),
                changed,
            );
        }
        if !forced {
            let remaining = self.throttle.cooldown_remaining(now);
            if remaining > 0.0 {
                return (
                    CycleDecision::Skip(format!("cooldown: {remaining:.1}s left")),
                    changed,
                );
            }
        }
        match state {
            ThrottleState::BLOCKED => self.stats.blocked_count += 1,
            ThrottleState::THROTTLED => self.stats.throttled_count += 1,
            ThrottleState::NORMAL => {}
        }
        // A blocked or throttled loop still runs the cycle: detection and health go on, and
        // the per-repair admission below decides what may act.
        self.stats.healing_cycles_triggered += 1;
        (CycleDecision::Run, changed)
    }

    /// Per-repair admission, consulted by the pipeline before each repair.
    pub fn admit(
        &mut self,
        severity: FaultSeverity,
        target: &str,
        action: &str,
        now: f64,
        forced: bool,
    ) -> Result<(), Denial> {
        self.throttle
            .admit(self.settings.mode, severity, target, action, now, forced)
    }

    /// Records the repairs a cycle ran; returns throttle events (quarantines, breakers).
    pub fn record_repairs(&mut self, repairs: &[RepairRecord], now: f64) -> Vec<ThrottleEvent> {
        let mut events = Vec::new();
        for r in repairs {
            self.stats.repairs_attempted += 1;
            match r.outcome {
                RepairOutcome::Succeeded => self.stats.repairs_successful += 1,
                RepairOutcome::AwaitingEvidence => self.stats.repairs_awaiting_evidence += 1,
                RepairOutcome::Failed => {}
            }
            events.extend(self.throttle.record(&r.target, &r.action, r.outcome, now));
        }
        self.stats.escalations += events
            .iter()
            .filter(|e| matches!(e, ThrottleEvent::Quarantined { .. }))
            .count() as u64;
        events
    }

    /// Rebuilds the throttle from repairs done before a restart: each `(age, repair)` is
    /// replayed, oldest first, at `now - age`, so repair limits, per-target backoff, flap
    /// quarantines and circuit breakers resume instead of starting from zero. Escalations the
    /// replay raises again were published the first time and are dropped. Returns how many
    /// repairs were replayed.
    pub fn recover(&mut self, repairs: &[(f64, RepairRecord)], now: f64) -> usize {
        let mut ordered: Vec<&(f64, RepairRecord)> =
            repairs.iter().filter(|(age, _)| age.is_finite()).collect();
        ordered.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (age, r) in &ordered {
            let _ = self
                .throttle
                .record(&r.target, &r.action, r.outcome, now - age.max(0.0));
        }
        self.stats.recovered_repairs += ordered.len() as u64;
        ordered.len()
    }

    pub fn record_duration(&mut self, seconds: f64) {
        let n = self.stats.healing_cycles_triggered.max(1) as f64;
        self.stats.avg_cycle_duration += (seconds - self.stats.avg_cycle_duration) / n;
    }

    pub fn success_rate(&self) -> f64 {
        if self.stats.repairs_attempted == 0 {
            0.0
        } else {
            self.stats.repairs_successful as f64 / self.stats.repairs_attempted as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_keys_name_the_agent_task_or_cycle() {
        let m = |v: serde_json::Value| v.as_object().unwrap().clone();
        assert_eq!(
            target_key(
                "agent_failure",
                &m(serde_json::json!({"failing_agents": ["crawler", "x"]}))
            ),
            "agent_failure:crawler"
        );
        assert_eq!(
            target_key(
                "agent_failure",
                &m(serde_json::json!({"agent_id": "a1", "failing_agents": ["b"]}))
            ),
            "agent_failure:a1"
        );
        assert_eq!(
            target_key(
                "graph_cycle",
                &m(serde_json::json!({"cycles": [["a", "b", "c"]]}))
            ),
            "graph_cycle:a->b->c"
        );
        assert_eq!(
            target_key(
                "high_error_rate",
                &m(serde_json::json!({"failed_task_ids": ["t9"]}))
            ),
            "high_error_rate:t9"
        );
        assert_eq!(
            target_key("queue_overload", &m(serde_json::json!({"queue_size": 500}))),
            "queue_overload"
        );
    }

    #[test]
    fn recovery_from_the_journal_resumes_backoff_and_limits() {
        let settings = AutorepairSettings {
            max_repairs_per_minute: 3,
            ..Default::default()
        };
        let failed = |t: &str| RepairRecord {
            target: t.into(),
            action: "agent".into(),
            outcome: RepairOutcome::Failed,
        };
        // Before the crash: three failed repairs of one agent within the last 30 seconds.
        let journal = vec![
            (30.0, failed("agent_failure:a")),
            (20.0, failed("agent_failure:a")),
            (10.0, failed("agent_failure:a")),
        ];
        let mut fresh = AutorepairPolicy::new(settings.clone());
        assert!(fresh
            .admit(
                FaultSeverity::HIGH,
                "agent_failure:a",
                "agent",
                100.0,
                false
            )
            .is_ok());
        let mut recovered = AutorepairPolicy::new(settings);
        assert_eq!(recovered.recover(&journal, 100.0), 3);
        assert_eq!(recovered.stats.recovered_repairs, 3);
        // The per-minute limit is used up and the agent is backed off: no repair storm.
        assert!(recovered
            .admit(
                FaultSeverity::HIGH,
                "agent_failure:a",
                "agent",
                100.0,
                false
            )
            .is_err());
        assert!(recovered
            .admit(
                FaultSeverity::HIGH,
                "agent_failure:b",
                "agent",
                100.0,
                false
            )
            .is_err());
        // A minute later the limit has room again for another target.
        assert!(recovered
            .admit(
                FaultSeverity::HIGH,
                "agent_failure:b",
                "agent",
                161.0,
                false
            )
            .is_ok());
        // Replayed repairs are not counted as this run's own.
        assert_eq!(recovered.stats.repairs_attempted, 0);
    }

    #[test]
    fn recovery_replays_restarts_awaiting_evidence_without_opening_the_breaker() {
        let settings = AutorepairSettings {
            cooldown_seconds: 0.0,
            ..Default::default()
        };
        let entry = |target: &str, outcome: RepairOutcome| RepairRecord {
            target: target.into(),
            action: "agent".into(),
            outcome,
        };
        let awaiting: Vec<(f64, RepairRecord)> = (0..6)
            .map(|i| {
                let r = entry(
                    &format!("agent_failure:w{i}"),
                    RepairOutcome::AwaitingEvidence,
                );
                (60.0 - i as f64, r)
            })
            .collect();
        let mut p = AutorepairPolicy::new(settings.clone());
        assert_eq!(p.recover(&awaiting, 100.0), 6);
        assert!(p
            .admit(
                FaultSeverity::HIGH,
                "agent_failure:new",
                "agent",
                100.0,
                false
            )
            .is_ok());
        // The same six as failures: the breaker resumes open.
        let failed: Vec<(f64, RepairRecord)> = awaiting
            .iter()
            .map(|(age, r)| (*age, entry(&r.target, RepairOutcome::Failed)))
            .collect();
        let mut p = AutorepairPolicy::new(settings);
        p.recover(&failed, 100.0);
        assert!(matches!(
            p.admit(
                FaultSeverity::HIGH,
                "agent_failure:new",
                "agent",
                100.0,
                false
            ),
            Err(Denial::BreakerOpen { .. })
        ));
    }

    #[test]
    fn journal_entries_with_or_without_an_outcome_are_read() {
        let m = |v: serde_json::Value| v.as_object().unwrap().clone();
        use RepairOutcome::*;
        // Entries written before outcomes existed carry only `succeeded`.
        assert_eq!(
            RepairOutcome::from_journal(&m(serde_json::json!({"succeeded": true}))),
            Some(Succeeded)
        );
        assert_eq!(
            RepairOutcome::from_journal(&m(serde_json::json!({"succeeded": false}))),
            Some(Failed)
        );
        assert_eq!(
            RepairOutcome::from_journal(&m(
                serde_json::json!({"succeeded": false, "outcome": "awaiting_evidence"})
            )),
            Some(AwaitingEvidence)
        );
        // An outcome this version does not know falls back to the flag.
        assert_eq!(
            RepairOutcome::from_journal(&m(
                serde_json::json!({"succeeded": true, "outcome": "someday"})
            )),
            Some(Succeeded)
        );
        assert_eq!(RepairOutcome::from_journal(&m(serde_json::json!({}))), None);
        for o in [Succeeded, AwaitingEvidence, Failed] {
            assert_eq!(RepairOutcome::from_name(o.as_str()), Some(o));
        }
    }

    #[test]
    fn repairs_awaiting_evidence_are_counted_apart() {
        let mut p = AutorepairPolicy::new(AutorepairSettings::default());
        let recs: Vec<RepairRecord> = [
            RepairOutcome::Succeeded,
            RepairOutcome::AwaitingEvidence,
            RepairOutcome::Failed,
        ]
        .iter()
        .enumerate()
        .map(|(i, o)| RepairRecord {
            target: format!("t{i}"),
            action: "agent".into(),
            outcome: *o,
        })
        .collect();
        p.record_repairs(&recs, 0.0);
        assert_eq!(p.stats.repairs_attempted, 3);
        assert_eq!(p.stats.repairs_successful, 1);
        assert_eq!(p.stats.repairs_awaiting_evidence, 1);
    }

    #[test]
    fn settings_are_validated() {
        let mut s = AutorepairSettings::default();
        assert!(s.validate().is_ok());
        s.interval_seconds = f64::NAN;
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("interval_seconds"));
        let s = AutorepairSettings {
            max_repairs_per_minute: 0,
            ..Default::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_repairs_per_minute"));
        let s = AutorepairSettings {
            min_health_for_repair: 150.0,
            ..Default::default()
        };
        assert!(s.validate().is_err());
    }

    #[test]
    fn cycles_without_repairs_never_throttle_the_loop() {
        let mut p = AutorepairPolicy::new(AutorepairSettings {
            cooldown_seconds: 0.0,
            ..Default::default()
        });
        for i in 0..500 {
            let (decision, _) = p.begin_iteration(i as f64, false);
            assert_eq!(decision, CycleDecision::Run);
            p.record_repairs(&[], i as f64);
        }
        assert_eq!(p.throttle.state(500.0), ThrottleState::NORMAL);
        assert_eq!(p.stats.blocked_count + p.stats.throttled_count, 0);
        assert_eq!(p.stats.healing_cycles_triggered, 500);
    }

    #[test]
    fn disabled_mode_observes_only_unless_forced() {
        let mut p = AutorepairPolicy::new(AutorepairSettings {
            mode: AutorepairMode::DISABLED,
            ..Default::default()
        });
        assert!(matches!(
            p.begin_iteration(0.0, false).0,
            CycleDecision::Skip(_)
        ));
        assert_eq!(p.begin_iteration(0.0, true).0, CycleDecision::Run);
        assert!(p
            .admit(FaultSeverity::CRITICAL, "t", "a", 0.0, true)
            .is_err());
    }

    #[test]
    fn cooldown_follows_a_repair_and_forced_cycles_skip_it() {
        let mut p = AutorepairPolicy::new(AutorepairSettings::default());
        p.record_repairs(
            &[RepairRecord {
                target: "agent:a".into(),
                action: "restart_agent".into(),
                outcome: RepairOutcome::Succeeded,
            }],
            10.0,
        );
        assert!(matches!(
            p.begin_iteration(11.0, false).0,
            CycleDecision::Skip(_)
        ));
        assert_eq!(p.begin_iteration(11.0, true).0, CycleDecision::Run);
        assert_eq!(p.begin_iteration(13.1, false).0, CycleDecision::Run);
        assert_eq!(p.stats.repairs_attempted, 1);
        assert_eq!(p.success_rate(), 1.0);
    }

    #[test]
    fn throttle_state_changes_are_reported_once() {
        let mut p = AutorepairPolicy::new(AutorepairSettings {
            cooldown_seconds: 0.0,
            max_repairs_per_minute: 2,
            ..Default::default()
        });
        let recs: Vec<RepairRecord> = (0..2)
            .map(|i| RepairRecord {
                target: format!("t{i}"),
                action: "a".into(),
                outcome: RepairOutcome::Succeeded,
            })
            .collect();
        p.record_repairs(&recs, 0.0);
        assert_eq!(
            p.begin_iteration(1.0, false).1,
            Some(ThrottleState::BLOCKED)
        );
        assert_eq!(p.begin_iteration(2.0, false).1, None);
        assert_eq!(p.stats.blocked_count, 2);
        assert_eq!(
            p.begin_iteration(61.0, false).1,
            Some(ThrottleState::NORMAL)
        );
    }

    #[test]
    fn apply_keeps_history_and_rejects_bad_settings() {
        let mut p = AutorepairPolicy::new(AutorepairSettings {
            cooldown_seconds: 0.0,
            ..Default::default()
        });
        p.record_repairs(
            &[RepairRecord {
                target: "x".into(),
                action: "a".into(),
                outcome: RepairOutcome::Succeeded,
            }],
            0.0,
        );
        let bad = AutorepairSettings {
            interval_seconds: -1.0,
            ..p.settings.clone()
        };
        assert!(p.apply(bad).is_err());
        let tighter = AutorepairSettings {
            max_repairs_per_minute: 1,
            ..p.settings.clone()
        };
        p.apply(tighter).unwrap();
        assert_eq!(p.throttle.state(1.0), ThrottleState::BLOCKED);
    }
}
