//! Per-target attempt budgets (restarts per agent, retries per task).
//!
//! A target gets `max_attempts` attempts. Every request for the target, granted or not,
//! refreshes its "last seen" time; once the target has been quiet for `quiet_period` seconds
//! its count starts again from zero (as Kubernetes resets CrashLoopBackOff after 10 minutes of
//! clean running). Keys are always a real target (an agent name, a task id), never a shared
//! placeholder, so one bad agent cannot use up the budget of every other one.
//!
//! The book is bounded: at `max_targets` entries, adding a new target first drops the entries
//! that are already past their quiet period, then the one seen longest ago.

use std::collections::HashMap;

/// Attempts per target before the engine escalates (isolate / give up).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Seconds without any fault for a target before its count resets (10 minutes).
pub const DEFAULT_QUIET_PERIOD: f64 = 600.0;
/// Targets tracked per engine.
pub const DEFAULT_MAX_TARGETS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetPolicy {
    pub max_attempts: u32,
    pub quiet_period: f64,
    pub max_targets: usize,
}

impl Default for BudgetPolicy {
    fn default() -> Self {
        BudgetPolicy {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            quiet_period: DEFAULT_QUIET_PERIOD,
            max_targets: DEFAULT_MAX_TARGETS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    attempts: u32,
    last_seen: f64,
}

/// The answer to a request for one more attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Go ahead; this is attempt number `n` (1-based) inside the current window.
    Attempt(u32),
    /// The budget is used up: `n` attempts were already made inside the window.
    Exhausted(u32),
}

/// One tracked target, for inspection.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetState {
    pub target: String,
    pub attempts: u32,
    pub seconds_since_last: f64,
    pub exhausted: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Budgets {
    policy: BudgetPolicy,
    entries: HashMap<String, Entry>,
}

impl Budgets {
    pub fn new(policy: BudgetPolicy) -> Self {
        Budgets {
            policy,
            entries: HashMap::new(),
        }
    }

    pub fn policy(&self) -> BudgetPolicy {
        self.policy
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    // A clock that steps back (a test clock, NTP) counts as no time passing.
    fn elapsed(&self, entry: &Entry, now: f64) -> f64 {
        (now - entry.last_seen).max(0.0)
    }

    fn is_quiet(&self, entry: &Entry, now: f64) -> bool {
        self.elapsed(entry, now) >= self.policy.quiet_period
    }

    /// Asks for one more attempt on `target` at time `now` (seconds, any fixed origin).
    pub fn request(&mut self, target: &str, now: f64) -> Grant {
        if !self.entries.contains_key(target) {
            self.make_room(now);
        }
        let quiet_period = self.policy.quiet_period;
        let max = self.policy.max_attempts;
        let entry = self.entries.entry(target.to_owned()).or_insert(Entry {
            attempts: 0,
            last_seen: now,
        });
        if (now - entry.last_seen).max(0.0) >= quiet_period {
            entry.attempts = 0;
        }
        entry.last_seen = entry.last_seen.max(now);
        if entry.attempts < max {
            entry.attempts += 1;
            Grant::Attempt(entry.attempts)
        } else {
            Grant::Exhausted(entry.attempts)
        }
    }

    /// What `request` would answer, without changing anything.
    pub fn peek(&self, target: &str, now: f64) -> Grant {
        let used = match self.entries.get(target) {
            Some(e) if !self.is_quiet(e, now) => e.attempts,
            _ => 0,
        };
        if used >= self.policy.max_attempts {
            Grant::Exhausted(used)
        } else {
            Grant::Attempt(used + 1)
        }
    }

    fn make_room(&mut self, now: f64) {
        if self.entries.len() < self.policy.max_targets.max(1) {
            return;
        }
        let quiet_period = self.policy.quiet_period;
        self.entries
            .retain(|_, e| (now - e.last_seen).max(0.0) < quiet_period);
        while self.entries.len() >= self.policy.max_targets.max(1) {
            let oldest = self
                .entries
                .iter()
                .min_by(|a, b| {
                    a.1.last_seen
                        .total_cmp(&b.1.last_seen)
                        .then_with(|| a.0.cmp(b.0))
                })
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Forgets one target, or all of them. Returns how many entries were removed.
    pub fn reset(&mut self, target: Option<&str>) -> usize {
        match target {
            Some(t) => usize::from(self.entries.remove(t).is_some()),
            None => {
                let n = self.entries.len();
                self.entries.clear();
                n
            }
        }
    }

    /// Every tracked target, sorted by name. A target past its quiet period shows 0 attempts.
    pub fn states(&self, now: f64) -> Vec<BudgetState> {
        let mut out: Vec<BudgetState> = self
            .entries
            .iter()
            .map(|(k, e)| {
                let quiet = self.is_quiet(e, now);
                let attempts = if quiet { 0 } else { e.attempts };
                BudgetState {
                    target: k.clone(),
                    attempts,
                    seconds_since_last: self.elapsed(e, now),
                    exhausted: !quiet && e.attempts >= self.policy.max_attempts,
                }
            })
            .collect();
        out.sort_by(|a, b| a.target.cmp(&b.target));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(max_attempts: u32, quiet: f64, cap: usize) -> Budgets {
        Budgets::new(BudgetPolicy {
            max_attempts,
            quiet_period: quiet,
            max_targets: cap,
        })
    }

    #[test]
    fn grants_up_to_the_limit_then_refuses() {
        let mut b = book(3, 600.0, 10);
        assert_eq!(b.request("agent:a", 0.0), Grant::Attempt(1));
        assert_eq!(b.request("agent:a", 1.0), Grant::Attempt(2));
        assert_eq!(b.request("agent:a", 2.0), Grant::Attempt(3));
        assert_eq!(b.request("agent:a", 3.0), Grant::Exhausted(3));
        assert_eq!(b.peek("agent:a", 4.0), Grant::Exhausted(3));
    }

    #[test]
    fn targets_have_separate_budgets() {
        let mut b = book(1, 600.0, 10);
        assert_eq!(b.request("agent:a", 0.0), Grant::Attempt(1));
        assert_eq!(b.request("agent:b", 0.0), Grant::Attempt(1));
        assert_eq!(b.request("agent:a", 0.0), Grant::Exhausted(1));
        assert_eq!(b.request("agent:b", 0.0), Grant::Exhausted(1));
    }

    #[test]
    fn quiet_period_resets_the_count_and_any_request_restarts_it() {
        let mut b = book(2, 600.0, 10);
        b.request("t", 0.0);
        b.request("t", 10.0);
        // Refused, but seen: the quiet period now runs from t=500.
        assert_eq!(b.request("t", 500.0), Grant::Exhausted(2));
        assert_eq!(b.request("t", 1000.0), Grant::Exhausted(2));
        assert_eq!(b.request("t", 1600.0), Grant::Attempt(1));
        assert_eq!(b.states(1600.0)[0].attempts, 1);
        assert_eq!(b.states(2200.0)[0].attempts, 0);
    }

    #[test]
    fn a_clock_that_steps_back_counts_as_no_time() {
        let mut b = book(1, 600.0, 10);
        b.request("t", 1000.0);
        assert_eq!(b.request("t", 0.0), Grant::Exhausted(1));
        assert_eq!(b.peek("t", 1599.0), Grant::Exhausted(1));
        assert_eq!(b.request("t", 1600.0), Grant::Attempt(1));
    }

    #[test]
    fn the_book_is_bounded_and_evicts_quiet_then_oldest() {
        let mut b = book(3, 100.0, 3);
        b.request("a", 0.0);
        b.request("b", 50.0);
        b.request("c", 90.0);
        // "a" is quiet at t=120, so it goes first.
        b.request("d", 120.0);
        let names: Vec<String> = b.states(120.0).into_iter().map(|s| s.target).collect();
        assert_eq!(names, vec!["b", "c", "d"]);
        // Nothing quiet at t=130: the one seen longest ago ("b") goes.
        b.request("e", 130.0);
        let names: Vec<String> = b.states(130.0).into_iter().map(|s| s.target).collect();
        assert_eq!(names, vec!["c", "d", "e"]);
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn zero_attempts_means_escalate_at_once_and_reset_forgets() {
        let mut b = book(0, 600.0, 10);
        assert_eq!(b.peek("x", 0.0), Grant::Exhausted(0));
        assert_eq!(b.request("x", 0.0), Grant::Exhausted(0));
        assert_eq!(b.reset(Some("x")), 1);
        assert_eq!(b.reset(Some("x")), 0);
        b.request("y", 0.0);
        b.request("z", 0.0);
        assert_eq!(b.reset(None), 2);
        assert!(b.is_empty());
    }
}
