//! Repair throttling: what decides whether one repair may run now.
//!
//! Layers, from coarse to fine, as the supervision systems in `spec/anchors.md` do it:
//! - mode: which severities are repaired at all (aggressive: all; balanced: not low/info;
//!   conservative: critical and high; disabled: none);
//! - global limits: repairs (not cycles) per minute and per hour in moving windows, and a
//!   cooldown after each repair; above 80% of the hourly budget only critical faults pass;
//! - per target: exponential backoff after each repair that did not confirm the fault gone
//!   (failed, or applied and awaiting evidence; doubling to a cap, forgotten after a quiet
//!   period), and flap detection: a target repaired successfully `flap_threshold` times within
//!   `flap_window` keeps coming back, so it is quarantined and the caller escalates. A repair
//!   awaiting evidence is not a flap: the engine's own budget contains a target restarted
//!   again and again (the agent engine isolates the agent);
//! - per action: a circuit breaker that opens after consecutive failed repairs and lets one
//!   trial through after `breaker_open_for`. A repair awaiting evidence ran its actions
//!   without error: for the breaker it is not a failure (it resets the count like a success).
//!
//! Time is passed in as monotonic seconds, so the policy is tested without sleeping.

use crate::engine::detection_engine::FaultSeverity;
use std::collections::{HashMap, VecDeque};

use super::{AutorepairMode, RepairOutcome, ThrottleState};

#[derive(Debug, Clone, PartialEq)]
pub struct ThrottlePolicy {
    pub max_repairs_per_minute: u32,
    pub max_repairs_per_hour: u32,
    pub cooldown_seconds: f64,
    pub backoff_initial_seconds: f64,
    pub backoff_max_seconds: f64,
    /// A target with no unconfirmed repair for this long starts again from no backoff.
    pub backoff_reset_seconds: f64,
    pub flap_threshold: u32,
    pub flap_window_seconds: f64,
    pub quarantine_seconds: f64,
    pub breaker_failure_threshold: u32,
    pub breaker_open_for_seconds: f64,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy {
            max_repairs_per_minute: 10,
            max_repairs_per_hour: 50,
            cooldown_seconds: 3.0,
            // Kubernetes' CrashLoopBackOff curve, scaled down for in-process repairs.
            backoff_initial_seconds: 5.0,
            backoff_max_seconds: 300.0,
            backoff_reset_seconds: 600.0,
            flap_threshold: 3,
            flap_window_seconds: 600.0,
            quarantine_seconds: 1800.0,
            breaker_failure_threshold: 5,
            breaker_open_for_seconds: 60.0,
        }
    }
}

/// Why a repair was not admitted.
#[derive(Debug, Clone, PartialEq)]
pub enum Denial {
    ModeExcludes {
        mode: AutorepairMode,
        severity: FaultSeverity,
    },
    Cooldown {
        remaining: f64,
    },
    Blocked,
    ThrottledNonCritical,
    Backoff {
        target: String,
        remaining: f64,
    },
    Quarantined {
        target: String,
        remaining: f64,
    },
    BreakerOpen {
        action: String,
        remaining: f64,
    },
}

impl Denial {
    pub fn reason(&self) -> String {
        match self {
            Denial::ModeExcludes { mode, severity } => {
                format!("mode {mode:?} does not repair {severity:?} faults").to_lowercase()
            }
            Denial::Cooldown { remaining } => format!("cooldown: {remaining:.1}s left"),
            Denial::Blocked => "blocked: per-minute repair limit reached".into(),
            Denial::ThrottledNonCritical => {
                "throttled: only critical faults above 80% of the hourly limit".into()
            }
            Denial::Backoff { target, remaining } => {
                format!("backoff for {target}: {remaining:.1}s left")
            }
            Denial::Quarantined { target, remaining } => {
                format!("{target} is quarantined for flapping: {remaining:.0}s left")
            }
            Denial::BreakerOpen { action, remaining } => {
                format!("circuit open for {action}: {remaining:.1}s left")
            }
        }
    }
}

/// Something the caller should publish or escalate.
#[derive(Debug, Clone, PartialEq)]
pub enum ThrottleEvent {
    Quarantined {
        target: String,
        repairs_in_window: u32,
    },
    BreakerOpened {
        action: String,
        consecutive_failures: u32,
    },
    BreakerClosed {
        action: String,
    },
}

#[derive(Debug, Clone, Default)]
struct TargetState {
    /// Repairs in a row that did not show the fault gone (failed or awaiting evidence).
    unconfirmed: u32,
    last_unconfirmed: f64,
    next_allowed: f64,
    recent_repairs: VecDeque<f64>,
    quarantined_until: f64,
    last_seen: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug, Clone)]
struct Breaker {
    state: BreakerState,
    consecutive_failures: u32,
    opened_at: f64,
}

/// Targets and actions tracked at once; the least recently seen are forgotten first.
pub const MAX_TRACKED: usize = 4096;

#[derive(Debug, Clone, Default)]
pub struct Throttle {
    pub policy: ThrottlePolicy,
    minute: VecDeque<f64>,
    hour: VecDeque<f64>,
    last_repair: Option<f64>,
    targets: HashMap<String, TargetState>,
    breakers: HashMap<String, Breaker>,
}

pub fn mode_allows(mode: AutorepairMode, severity: FaultSeverity) -> bool {
    use FaultSeverity::*;
    match mode {
        AutorepairMode::AGGRESSIVE => true,
        AutorepairMode::BALANCED => matches!(severity, CRITICAL | HIGH | MEDIUM),
        AutorepairMode::CONSERVATIVE => matches!(severity, CRITICAL | HIGH),
        AutorepairMode::DISABLED => false,
    }
}

impl Throttle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Throttle {
            policy,
            ..Default::default()
        }
    }

    fn prune(&mut self, now: f64) {
        while self.minute.front().is_some_and(|t| now - t >= 60.0) {
            self.minute.pop_front();
        }
        while self.hour.front().is_some_and(|t| now - t >= 3600.0) {
            self.hour.pop_front();
        }
    }

    /// The global state from repairs in the last minute and hour.
    pub fn state(&mut self, now: f64) -> ThrottleState {
        self.prune(now);
        let p = &self.policy;
        if self.minute.len() as u32 >= p.max_repairs_per_minute {
            ThrottleState::BLOCKED
        } else if self.hour.len() as f64 >= p.max_repairs_per_hour as f64 * 0.8 {
            ThrottleState::THROTTLED
        } else {
            ThrottleState::NORMAL
        }
    }

    pub fn repairs_last_minute(&mut self, now: f64) -> usize {
        self.prune(now);
        self.minute.len()
    }

    pub fn repairs_last_hour(&mut self, now: f64) -> usize {
        self.prune(now);
        self.hour.len()
    }

    pub fn cooldown_remaining(&self, now: f64) -> f64 {
        match self.last_repair {
            Some(t) => (self.policy.cooldown_seconds - (now - t)).max(0.0),
            None => 0.0,
        }
    }

    /// Clears the cooldown (a forced cycle).
    pub fn clear_cooldown(&mut self) {
        self.last_repair = None;
    }

    /// Whether a repair of `target` with `action` for a fault of `severity` may run now.
    /// `bypass_cooldown` is for forced cycles, which still respect every other limit.
    pub fn admit(
        &mut self,
        mode: AutorepairMode,
        severity: FaultSeverity,
        target: &str,
        action: &str,
        now: f64,
        bypass_cooldown: bool,
    ) -> Result<(), Denial> {
        if !mode_allows(mode, severity) {
            return Err(Denial::ModeExcludes { mode, severity });
        }
        if !bypass_cooldown {
            let remaining = self.cooldown_remaining(now);
            if remaining > 0.0 {
                return Err(Denial::Cooldown { remaining });
            }
        }
        match self.state(now) {
            ThrottleState::BLOCKED => return Err(Denial::Blocked),
            ThrottleState::THROTTLED if severity != FaultSeverity::CRITICAL => {
                return Err(Denial::ThrottledNonCritical)
            }
            _ => {}
        }
        if let Some(t) = self.targets.get_mut(target) {
            if now - t.last_unconfirmed >= self.policy.backoff_reset_seconds {
                t.unconfirmed = 0;
                t.next_allowed = 0.0;
            }
            if t.quarantined_until > now {
                return Err(Denial::Quarantined {
                    target: target.into(),
                    remaining: t.quarantined_until - now,
                });
            }
            if t.next_allowed > now {
                return Err(Denial::Backoff {
                    target: target.into(),
                    remaining: t.next_allowed - now,
                });
            }
        }
        if let Some(b) = self.breakers.get_mut(action) {
            if b.state == BreakerState::Open {
                let remaining = self.policy.breaker_open_for_seconds - (now - b.opened_at);
                if remaining > 0.0 {
                    return Err(Denial::BreakerOpen {
                        action: action.into(),
                        remaining,
                    });
                }
                // Let one trial through.
                b.state = BreakerState::HalfOpen;
            }
        }
        Ok(())
    }

    /// Records a repair that ran. Returns what the caller should publish or escalate.
    pub fn record(
        &mut self,
        target: &str,
        action: &str,
        outcome: RepairOutcome,
        now: f64,
    ) -> Vec<ThrottleEvent> {
        let mut events = Vec::new();
        self.prune(now);
        self.minute.push_back(now);
        self.hour.push_back(now);
        self.last_repair = Some(now);
        // The windows never need more than their limits' worth of entries to decide.
        let cap = (self.policy.max_repairs_per_hour as usize)
            .max(self.policy.max_repairs_per_minute as usize)
            + 1;
        while self.hour.len() > cap {
            self.hour.pop_front();
        }
        while self.minute.len() > cap {
            self.minute.pop_front();
        }

        self.evict_if_full(now);
        let p = self.policy.clone();
        let t = self.targets.entry(target.to_string()).or_default();
        t.last_seen = now;
        if outcome == RepairOutcome::Succeeded {
            t.unconfirmed = 0;
            t.next_allowed = 0.0;
        } else {
            // Failed, or applied with nothing to show for it yet: the next repair of this
            // target waits longer (a restart that keeps being needed backs off, as a
            // crash-looping container does).
            if now - t.last_unconfirmed >= p.backoff_reset_seconds {
                t.unconfirmed = 0;
            }
            t.unconfirmed += 1;
            t.last_unconfirmed = now;
            let exp = (t.unconfirmed - 1).min(30) as i32;
            let delay = (p.backoff_initial_seconds * 2f64.powi(exp)).min(p.backoff_max_seconds);
            t.next_allowed = now + delay;
        }
        // A target repaired successfully again and again keeps coming back: quarantine it and
        // escalate. Repeated unconfirmed restarts are the repair engine's to contain (its
        // budget isolates an agent that keeps needing one), which quarantine would pre-empt.
        if outcome == RepairOutcome::Succeeded {
            while t
                .recent_repairs
                .front()
                .is_some_and(|x| now - x >= p.flap_window_seconds)
            {
                t.recent_repairs.pop_front();
            }
            t.recent_repairs.push_back(now);
            if t.recent_repairs.len() as u32 >= p.flap_threshold {
                t.quarantined_until = now + p.quarantine_seconds;
                events.push(ThrottleEvent::Quarantined {
                    target: target.to_string(),
                    repairs_in_window: t.recent_repairs.len() as u32,
                });
                t.recent_repairs.clear();
            }
        }

        let b = self.breakers.entry(action.to_string()).or_insert(Breaker {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            opened_at: 0.0,
        });
        // The breaker is about actions that fail: one that ran without error, even if its
        // effect cannot be measured yet, shows the action works.
        if outcome != RepairOutcome::Failed {
            if b.state != BreakerState::Closed {
                events.push(ThrottleEvent::BreakerClosed {
                    action: action.to_string(),
                });
            }
            b.state = BreakerState::Closed;
            b.consecutive_failures = 0;
        } else {
            b.consecutive_failures += 1;
            let trips = b.state == BreakerState::HalfOpen
                || b.consecutive_failures >= p.breaker_failure_threshold;
            if trips && b.state != BreakerState::Open {
                b.state = BreakerState::Open;
                b.opened_at = now;
                events.push(ThrottleEvent::BreakerOpened {
                    action: action.to_string(),
                    consecutive_failures: b.consecutive_failures,
                });
            }
        }
        events
    }

    fn evict_if_full(&mut self, now: f64) {
        if self.targets.len() >= MAX_TRACKED {
            let quiet = self
                .policy
                .backoff_reset_seconds
                .max(self.policy.flap_window_seconds);
            self.targets
                .retain(|_, t| now - t.last_seen < quiet || t.quarantined_until > now);
            if self.targets.len() >= MAX_TRACKED {
                if let Some(oldest) = self
                    .targets
                    .iter()
                    .min_by(|a, b| a.1.last_seen.total_cmp(&b.1.last_seen))
                    .map(|(k, _)| k.clone())
                {
                    self.targets.remove(&oldest);
                }
            }
        }
        if self.breakers.len() >= MAX_TRACKED {
            self.breakers.retain(|_, b| b.state != BreakerState::Closed);
        }
    }

    pub fn breaker_state(&self, action: &str) -> BreakerState {
        self.breakers
            .get(action)
            .map(|b| b.state)
            .unwrap_or(BreakerState::Closed)
    }

    pub fn is_quarantined(&self, target: &str, now: f64) -> bool {
        self.targets
            .get(target)
            .is_some_and(|t| t.quarantined_until > now)
    }

    pub fn tracked_targets(&self) -> usize {
        self.targets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AutorepairMode::*;
    use FaultSeverity::*;
    use RepairOutcome::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottlePolicy {
            cooldown_seconds: 0.0,
            ..Default::default()
        })
    }

    #[test]
    fn modes_differ_by_severity() {
        assert!(mode_allows(AGGRESSIVE, LOW));
        assert!(!mode_allows(BALANCED, LOW) && mode_allows(BALANCED, MEDIUM));
        assert!(!mode_allows(CONSERVATIVE, MEDIUM) && mode_allows(CONSERVATIVE, HIGH));
        assert!(!mode_allows(DISABLED, CRITICAL));
    }

    #[test]
    fn repairs_not_cycles_fill_the_minute_window() {
        let mut t = throttle();
        for i in 0..10 {
            assert_eq!(
                t.admit(BALANCED, HIGH, &format!("t{i}"), "a", i as f64, false),
                Ok(())
            );
            t.record(&format!("t{i}"), "a", Succeeded, i as f64);
        }
        assert_eq!(t.state(10.0), ThrottleState::BLOCKED);
        assert_eq!(
            t.admit(BALANCED, CRITICAL, "x", "a", 10.0, false),
            Err(Denial::Blocked)
        );
        // A minute later the window has emptied.
        assert_eq!(t.state(70.0), ThrottleState::NORMAL);
    }

    #[test]
    fn above_80_percent_of_the_hour_only_critical_passes() {
        let mut t = Throttle::new(ThrottlePolicy {
            cooldown_seconds: 0.0,
            max_repairs_per_hour: 5,
            ..Default::default()
        });
        for i in 0..4 {
            t.record(&format!("t{i}"), "a", Succeeded, i as f64 * 61.0);
        }
        let now = 4.0 * 61.0;
        assert_eq!(t.state(now), ThrottleState::THROTTLED);
        assert_eq!(
            t.admit(BALANCED, HIGH, "y", "a", now, false),
            Err(Denial::ThrottledNonCritical)
        );
        assert_eq!(t.admit(BALANCED, CRITICAL, "y", "a", now, false), Ok(()));
    }

    #[test]
    fn cooldown_applies_unless_bypassed() {
        let mut t = Throttle::new(ThrottlePolicy::default());
        t.record("a", "x", Succeeded, 100.0);
        assert!(matches!(
            t.admit(BALANCED, HIGH, "b", "x", 101.0, false),
            Err(Denial::Cooldown { .. })
        ));
        assert_eq!(t.admit(BALANCED, HIGH, "b", "x", 101.0, true), Ok(()));
        assert_eq!(t.admit(BALANCED, HIGH, "b", "x", 103.5, false), Ok(()));
    }

    #[test]
    fn failures_back_off_exponentially_and_reset_after_quiet() {
        let mut t = throttle();
        t.record("agent:a", "restart_agent", Failed, 0.0);
        assert!(matches!(
            t.admit(BALANCED, HIGH, "agent:a", "restart_agent", 4.0, false),
            Err(Denial::Backoff { .. })
        ));
        assert_eq!(
            t.admit(BALANCED, HIGH, "agent:a", "restart_agent", 5.0, false),
            Ok(())
        );
        t.record("agent:a", "restart_agent", Failed, 5.0);
        // Second failure: 10 s.
        assert!(t
            .admit(BALANCED, HIGH, "agent:a", "restart_agent", 14.0, false)
            .is_err());
        assert_eq!(
            t.admit(BALANCED, HIGH, "agent:a", "restart_agent", 15.0, false),
            Ok(())
        );
        // Other targets are not held back.
        assert_eq!(
            t.admit(BALANCED, HIGH, "agent:b", "restart_agent", 6.0, false),
            Ok(())
        );
        // After a quiet period the backoff starts over.
        t.record("agent:a", "restart_agent", Failed, 15.0);
        t.record("agent:a", "restart_agent", Failed, 15.0 + 700.0);
        assert!(t
            .admit(
                BALANCED,
                HIGH,
                "agent:a",
                "restart_agent",
                715.0 + 4.9,
                false
            )
            .is_err());
        assert_eq!(
            t.admit(
                BALANCED,
                HIGH,
                "agent:a",
                "restart_agent",
                715.0 + 5.0,
                false
            ),
            Ok(())
        );
    }

    #[test]
    fn a_target_repaired_again_and_again_is_quarantined() {
        let mut t = throttle();
        assert!(t
            .record("graph:g", "break_cycle", Succeeded, 0.0)
            .is_empty());
        assert!(t
            .record("graph:g", "break_cycle", Succeeded, 100.0)
            .is_empty());
        let events = t.record("graph:g", "break_cycle", Succeeded, 200.0);
        assert_eq!(
            events,
            vec![ThrottleEvent::Quarantined {
                target: "graph:g".into(),
                repairs_in_window: 3
            }]
        );
        assert!(matches!(
            t.admit(BALANCED, CRITICAL, "graph:g", "break_cycle", 201.0, false),
            Err(Denial::Quarantined { .. })
        ));
        assert!(t.is_quarantined("graph:g", 201.0));
        assert!(!t.is_quarantined("graph:g", 200.0 + 1800.0));
    }

    #[test]
    fn repairs_spread_wider_than_the_flap_window_do_not_quarantine() {
        let mut t = throttle();
        for i in 0..5 {
            assert!(t
                .record("graph:g", "break_cycle", Succeeded, i as f64 * 700.0)
                .is_empty());
        }
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_and_half_opens_later() {
        let mut t = throttle();
        let mut opened = Vec::new();
        for i in 0..5 {
            opened.extend(t.record(&format!("task:{i}"), "retry_task", Failed, i as f64));
        }
        assert_eq!(
            opened,
            vec![ThrottleEvent::BreakerOpened {
                action: "retry_task".into(),
                consecutive_failures: 5
            }]
        );
        assert!(matches!(
            t.admit(BALANCED, HIGH, "task:9", "retry_task", 10.0, false),
            Err(Denial::BreakerOpen { .. })
        ));
        // Other actions still run.
        assert_eq!(
            t.admit(BALANCED, HIGH, "task:9", "cancel_task", 10.0, false),
            Ok(())
        );
        // After the open period, one trial; a failed trial re-opens at once.
        assert_eq!(
            t.admit(BALANCED, HIGH, "task:9", "retry_task", 70.0, false),
            Ok(())
        );
        assert_eq!(t.breaker_state("retry_task"), BreakerState::HalfOpen);
        let events = t.record("task:9", "retry_task", Failed, 70.0);
        assert!(matches!(events[0], ThrottleEvent::BreakerOpened { .. }));
        assert_eq!(
            t.admit(BALANCED, HIGH, "task:10", "retry_task", 200.0, false),
            Ok(())
        );
        let events = t.record("task:10", "retry_task", Succeeded, 200.0);
        assert_eq!(
            events,
            vec![ThrottleEvent::BreakerClosed {
                action: "retry_task".into()
            }]
        );
        assert_eq!(t.breaker_state("retry_task"), BreakerState::Closed);
    }

    #[test]
    fn restarts_awaiting_evidence_never_open_the_breaker() {
        let mut t = throttle();
        let mut events = Vec::new();
        // Six crashing agents restarted in a row, none measurable yet (what the loop saw).
        for i in 0..6 {
            let target = format!("agent_failure:w{i}");
            assert_eq!(
                t.admit(BALANCED, HIGH, &target, "agent", i as f64, false),
                Ok(()),
                "restart {i} was held back"
            );
            events.extend(t.record(&target, "agent", AwaitingEvidence, i as f64));
        }
        assert!(events.is_empty(), "{events:?}");
        assert_eq!(t.breaker_state("agent"), BreakerState::Closed);
        assert_eq!(
            t.admit(BALANCED, HIGH, "agent_failure:w6", "agent", 6.0, false),
            Ok(())
        );
    }

    #[test]
    fn five_raising_restarts_still_open_the_breaker() {
        let mut t = throttle();
        let mut events = Vec::new();
        for i in 0..5 {
            events.extend(t.record(&format!("agent_failure:w{i}"), "agent", Failed, i as f64));
        }
        assert_eq!(
            events,
            vec![ThrottleEvent::BreakerOpened {
                action: "agent".into(),
                consecutive_failures: 5
            }]
        );
        assert!(matches!(
            t.admit(BALANCED, HIGH, "agent_failure:w9", "agent", 5.0, false),
            Err(Denial::BreakerOpen { .. })
        ));
        // A trial that runs without error closes it again, though nothing is measured yet.
        assert_eq!(
            t.admit(BALANCED, HIGH, "agent_failure:w9", "agent", 70.0, false),
            Ok(())
        );
        assert_eq!(
            t.record("agent_failure:w9", "agent", AwaitingEvidence, 70.0),
            vec![ThrottleEvent::BreakerClosed {
                action: "agent".into()
            }]
        );
        assert_eq!(t.breaker_state("agent"), BreakerState::Closed);
    }

    #[test]
    fn a_target_restarted_again_and_again_backs_off_and_is_left_to_the_engine() {
        let mut t = throttle();
        let target = "agent_failure:crawler";
        assert!(t.record(target, "agent", AwaitingEvidence, 0.0).is_empty());
        // Unconfirmed, so the next restart of the same agent waits: 5 s, then 10 s, 20 s.
        assert!(matches!(
            t.admit(BALANCED, HIGH, target, "agent", 4.0, false),
            Err(Denial::Backoff { .. })
        ));
        assert_eq!(t.admit(BALANCED, HIGH, target, "agent", 5.0, false), Ok(()));
        assert!(t.record(target, "agent", AwaitingEvidence, 5.0).is_empty());
        assert!(matches!(
            t.admit(BALANCED, HIGH, target, "agent", 14.0, false),
            Err(Denial::Backoff { .. })
        ));
        assert_eq!(
            t.admit(BALANCED, HIGH, target, "agent", 15.0, false),
            Ok(())
        );
        // Not a flap: the fourth restart within the window is admitted after its backoff, so
        // the agent engine's budget gets to isolate the agent.
        assert!(t.record(target, "agent", AwaitingEvidence, 15.0).is_empty());
        assert!(matches!(
            t.admit(BALANCED, HIGH, target, "agent", 34.0, false),
            Err(Denial::Backoff { .. })
        ));
        assert_eq!(
            t.admit(BALANCED, HIGH, target, "agent", 35.0, false),
            Ok(())
        );
        assert!(!t.is_quarantined(target, 35.0));
        // Successful repairs that keep being needed are a flap, as before.
        for now in [40.0, 41.0] {
            assert!(t.record("graph:g", "graph", Succeeded, now).is_empty());
        }
        assert_eq!(t.record("graph:g", "graph", Succeeded, 42.0).len(), 1);
        assert_eq!(t.breaker_state("agent"), BreakerState::Closed);
    }

    #[test]
    fn a_success_clears_the_backoff_that_unconfirmed_repairs_built() {
        let mut t = throttle();
        t.record("agent_failure:a", "agent", AwaitingEvidence, 0.0);
        t.record("agent_failure:a", "agent", Failed, 5.0);
        assert!(t
            .admit(BALANCED, HIGH, "agent_failure:a", "agent", 14.0, false)
            .is_err());
        t.record("agent_failure:a", "agent", Succeeded, 15.0);
        assert_eq!(
            t.admit(BALANCED, HIGH, "agent_failure:a", "agent", 15.0, false),
            Ok(())
        );
    }

    #[test]
    fn tracked_targets_stay_bounded() {
        let mut t = throttle();
        for i in 0..(MAX_TRACKED + 500) {
            t.record(
                &format!("agent:{i}"),
                "restart_agent",
                Succeeded,
                i as f64 * 0.001,
            );
        }
        assert!(t.tracked_targets() <= MAX_TRACKED);
    }
}
