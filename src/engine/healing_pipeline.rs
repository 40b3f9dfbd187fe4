//! The healing pipeline's decisions and records: stages and outcomes, the learning table that
//! steers strategy selection, the outcome rule, verification against fresh metrics, the
//! bounded cycle history, the counters, and the stage results of a finished cycle.
//!
//! The binding runs the twelve stages (it calls the engines and the caller's callbacks) and
//! fills a [`CycleData`] as it goes; everything that is a decision or a record lives here, so
//! it is tested without Python.
//!
//! Rules worth knowing:
//! - **Strategy selection.** Every repair engine that claims a fault is a candidate. The
//!   candidate with the best learned record for that fault type wins; a record's score is
//!   `(successes + 0.5 * partials + 1) / (attempts + 2)` (Laplace smoothing, so an untried
//!   pair scores 0.5, one failure drops a pair below an untried one, one success lifts it
//!   above). Ties go to the engine listed first, so without any record the pipeline picks the
//!   first claiming engine, as the reference did.
//! - **Verification.** A repair counts as done (a fault "repaired") when its status is
//!   SUCCESS and fresh metrics, when the caller supplied them, no longer show the fault's
//!   condition; without fresh metrics the repair's own `verification_passed` decides.
//! - **Outcome.** A dry run is SKIPPED. A performed rollback is ROLLBACK. A needed rollback
//!   that restored nothing is FAILED (health declined and could not be put back). Otherwise
//!   SUCCESS when every fault was repaired, PARTIAL when at least one repair succeeded or made
//!   partial progress, FAILED when none did.

use crate::engine::clock::iso;
use crate::engine::detection_engine::{LayerValues, Rule};
use crate::engine::enums::ValueEnum;
use crate::engine::repair_strategies::RepairStatus;
use crate::engine::value::Metrics;
use crate::value_enum;
use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, VecDeque};

value_enum! {
    pub enum HealingStage {
        STAGE_1_DETECT = "detect",
        STAGE_2_CLASSIFY = "classify",
        STAGE_3_SNAPSHOT = "snapshot",
        STAGE_4_SELECT_STRATEGY = "select_strategy",
        STAGE_5_PREPARE = "prepare",
        STAGE_6_EXECUTE_REPAIR = "execute_repair",
        STAGE_7_VERIFY = "verify",
        STAGE_8_HEALTH_CHECK = "health_check",
        STAGE_9_ROLLBACK = "rollback",
        STAGE_10_STABILIZE = "stabilize",
        STAGE_11_LEARN = "learn",
        STAGE_12_REPORT = "report",
    }
}

value_enum! {
    pub enum HealingOutcome {
        SUCCESS = "success",
        PARTIAL = "partial",
        FAILED = "failed",
        ROLLBACK = "rollback",
        SKIPPED = "skipped",
    }
}

/// Cycle results kept in the history by default (the reference kept every one).
pub const DEFAULT_HISTORY_SIZE: usize = 1000;
/// Largest history a pipeline may be given.
pub const MAX_HISTORY_SIZE: usize = 100_000;
/// (fault type, engine) pairs the learning table remembers; the least recently updated goes.
pub const MAX_LEARNED_PAIRS: usize = 1024;
/// Longest stabilization wait accepted, in seconds.
pub const MAX_STABILIZE_SECONDS: f64 = 3600.0;
/// Health below this is critical (the health engine's CRITICAL level starts under 40).
pub const HEALTH_CRITICAL_BELOW: f64 = 40.0;
/// Health used when neither a health engine nor metrics can say anything else.
pub const NEUTRAL_HEALTH: f64 = 100.0;

// ------------------------------------------------------------------------------------------
// Learning
// ------------------------------------------------------------------------------------------

/// How one engine has done on one fault type.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LearnedRecord {
    pub attempts: u64,
    pub successes: u64,
    pub partials: u64,
    pub failures: u64,
    pub skipped: u64,
    last_update: u64,
}

impl LearnedRecord {
    /// Smoothed success score used for selection (0.5 for an untried pair).
    pub fn score(&self) -> f64 {
        (self.successes as f64 + 0.5 * self.partials as f64 + 1.0) / (self.attempts as f64 + 2.0)
    }

    /// Plain success rate (successes / attempts), 0.0 before the first attempt.
    pub fn success_rate(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            self.successes as f64 / self.attempts as f64
        }
    }
}

/// Per (fault type, engine) records, bounded by [`MAX_LEARNED_PAIRS`].
#[derive(Debug, Clone)]
pub struct LearningTable {
    by_type: HashMap<String, Vec<(String, LearnedRecord)>>,
    pairs: usize,
    cap: usize,
    clock: u64,
}

impl Default for LearningTable {
    fn default() -> Self {
        LearningTable::new(MAX_LEARNED_PAIRS)
    }
}

impl LearningTable {
    pub fn new(cap: usize) -> Self {
        LearningTable {
            by_type: HashMap::new(),
            pairs: 0,
            cap: cap.max(1),
            clock: 0,
        }
    }

    pub fn get(&self, fault_type: &str, engine: &str) -> Option<&LearnedRecord> {
        self.by_type
            .get(fault_type)?
            .iter()
            .find(|(e, _)| e == engine)
            .map(|(_, r)| r)
    }

    pub fn score(&self, fault_type: &str, engine: &str) -> f64 {
        self.get(fault_type, engine)
            .copied()
            .unwrap_or_default()
            .score()
    }

    /// The index in `candidates` of the engine to use for a fault type (see the module doc).
    pub fn choose(&self, fault_type: &str, candidates: &[&str]) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, engine) in candidates.iter().enumerate() {
            let s = self.score(fault_type, engine);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((i, s));
            }
        }
        best.map(|(i, _)| i)
    }

    /// Records one repair; returns the updated record.
    pub fn record(
        &mut self,
        fault_type: &str,
        engine: &str,
        status: RepairStatus,
    ) -> LearnedRecord {
        self.clock += 1;
        let clock = self.clock;
        let exists = self.get(fault_type, engine).is_some();
        if !exists && self.pairs >= self.cap {
            self.evict_oldest();
        }
        let list = self.by_type.entry(fault_type.to_owned()).or_default();
        let slot = match list.iter().position(|(e, _)| e == engine) {
            Some(i) => i,
            None => {
                list.push((engine.to_owned(), LearnedRecord::default()));
                self.pairs += 1;
                list.len() - 1
            }
        };
        let r = &mut list[slot].1;
        r.attempts += 1;
        match status {
            RepairStatus::SUCCESS => r.successes += 1,
            RepairStatus::PARTIAL => r.partials += 1,
            RepairStatus::SKIPPED => r.skipped += 1,
            RepairStatus::FAILED | RepairStatus::IN_PROGRESS => r.failures += 1,
        }
        r.last_update = clock;
        *r
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .by_type
            .iter()
            .flat_map(|(t, list)| {
                list.iter()
                    .map(move |(e, r)| (r.last_update, t.clone(), e.clone()))
            })
            .min_by_key(|(u, _, _)| *u);
        if let Some((_, t, e)) = oldest {
            if let Some(list) = self.by_type.get_mut(&t) {
                list.retain(|(name, _)| *name != e);
                if list.is_empty() {
                    self.by_type.remove(&t);
                }
            }
            self.pairs -= 1;
        }
    }

    pub fn len(&self) -> usize {
        self.pairs
    }

    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }

    /// Every record, ordered by fault type then engine (stable output for callers).
    pub fn entries(&self) -> Vec<(&str, &str, LearnedRecord)> {
        let mut out: Vec<_> = self
            .by_type
            .iter()
            .flat_map(|(t, list)| list.iter().map(move |(e, r)| (t.as_str(), e.as_str(), *r)))
            .collect();
        out.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        out
    }

    pub fn clear(&mut self) {
        self.by_type.clear();
        self.pairs = 0;
    }
}

// ------------------------------------------------------------------------------------------
// Statistics and history
// ------------------------------------------------------------------------------------------

/// Cycle counters. The five outcome counters add up to `total_cycles`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PipelineStats {
    pub total_cycles: u64,
    pub successful_cycles: u64,
    pub partial_cycles: u64,
    pub failed_cycles: u64,
    pub rollback_cycles: u64,
    pub skipped_cycles: u64,
    /// Dry runs (counted as skipped too).
    pub dry_run_cycles: u64,
    pub avg_duration: f64,
    pub avg_health_improvement: f64,
}

impl PipelineStats {
    pub fn record(
        &mut self,
        outcome: HealingOutcome,
        duration: f64,
        improvement: f64,
        dry_run: bool,
    ) {
        self.total_cycles += 1;
        match outcome {
            HealingOutcome::SUCCESS => self.successful_cycles += 1,
            HealingOutcome::PARTIAL => self.partial_cycles += 1,
            HealingOutcome::FAILED => self.failed_cycles += 1,
            HealingOutcome::ROLLBACK => self.rollback_cycles += 1,
            HealingOutcome::SKIPPED => self.skipped_cycles += 1,
        }
        if dry_run {
            self.dry_run_cycles += 1;
        }
        let n = self.total_cycles as f64;
        self.avg_duration = (self.avg_duration * (n - 1.0) + duration) / n;
        self.avg_health_improvement = (self.avg_health_improvement * (n - 1.0) + improvement) / n;
    }
}

/// The newest `cap` cycle results.
#[derive(Debug, Clone)]
pub struct CycleHistory<H> {
    items: VecDeque<H>,
    cap: usize,
}

impl<H> CycleHistory<H> {
    pub fn new(cap: usize) -> Self {
        CycleHistory {
            items: VecDeque::with_capacity(cap.min(64)),
            cap: cap.max(1),
        }
    }

    /// Adds a result; returns the one pushed out, for the caller to drop outside any lock.
    pub fn push(&mut self, item: H) -> Option<H> {
        self.items.push_back(item);
        if self.items.len() > self.cap {
            self.items.pop_front()
        } else {
            None
        }
    }

    /// The newest `limit` results, newest first.
    pub fn newest_first(&self, limit: usize) -> impl Iterator<Item = &H> {
        self.items.iter().rev().take(limit)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn iter(&self) -> impl Iterator<Item = &H> {
        self.items.iter()
    }

    pub fn take_all(&mut self) -> VecDeque<H> {
        std::mem::take(&mut self.items)
    }
}

// ------------------------------------------------------------------------------------------
// Verification against fresh metrics
// ------------------------------------------------------------------------------------------

/// Whether the condition behind `fault_type` still holds in fresh layer metrics: `Some(true)`
/// present, `Some(false)` gone, `None` when that cannot be told (a fault type no detection
/// rule raises, its layer missing from the fresh metrics, or a value the rule cannot read).
pub fn condition_present(fault_type: &str, fresh: &[Option<Metrics>; 5]) -> Option<bool> {
    let rule = Rule::from_name(fault_type)?;
    let layer = rule.layer();
    let metrics = fresh[layer.index()].as_ref()?;
    let values = LayerValues::from_map(layer, metrics);
    rule.check(&values).ok().map(|severity| severity.is_some())
}

/// Health (0-100) of the five layers' metrics by the health engine's formula, for a pipeline
/// without a health engine.
pub fn formula_health(layers: &[Metrics; 5]) -> crate::engine::EngineResult<f64> {
    use crate::engine::health_engine::{readings_from_map, score, Component, Readings};
    let mut readings: [Readings; 6] = [[None; 4]; 6];
    for (i, map) in layers.iter().enumerate() {
        readings[i] = readings_from_map(Component::ALL[i], map)?;
    }
    Ok(score(&readings).overall)
}

// ------------------------------------------------------------------------------------------
// One cycle's record
// ------------------------------------------------------------------------------------------

/// How the repair of one fault went.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairRecord {
    pub engine: String,
    /// None when the engine raised or returned something without a readable status.
    pub status: Option<RepairStatus>,
    pub success_rate: f64,
    pub duration: f64,
    pub verification_passed: bool,
    pub error: Option<String>,
    /// What fresh metrics said about the fault's condition (see [`condition_present`]).
    pub still_present: Option<bool>,
    /// The engine reported PARTIAL `awaiting_evidence`: every action ran, and nothing has
    /// happened since that could show its effect (`repair_strategies::AWAITING_EVIDENCE`).
    pub awaiting_evidence: bool,
}

/// The prefix of `RepairRecord::error` for a repair the throttle did not admit.
pub const NOT_ADMITTED: &str = "not admitted: ";

impl RepairRecord {
    /// Held back by the admission gate (the auto-repair throttle) before anything ran.
    pub fn not_admitted(&self) -> bool {
        self.status == Some(RepairStatus::SKIPPED)
            && self
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with(NOT_ADMITTED))
    }

    /// The status the repair ended in; an engine error counts as FAILED.
    pub fn effective_status(&self) -> RepairStatus {
        self.status.unwrap_or(RepairStatus::FAILED)
    }

    /// SUCCESS and not contradicted by fresh metrics (see the module doc).
    pub fn repaired(&self) -> bool {
        self.status == Some(RepairStatus::SUCCESS) && self.still_present != Some(true)
    }

    /// Repaired, and confirmed: by fresh metrics when there were some, else by the repair's
    /// own verification.
    pub fn verified(&self) -> bool {
        self.repaired() && (self.still_present == Some(false) || self.verification_passed)
    }

    /// Applied and not judged yet: PARTIAL awaiting evidence, and fresh metrics, if any, do not
    /// show the fault still there. Neither repaired nor verified.
    pub fn applied_awaiting_evidence(&self) -> bool {
        self.awaiting_evidence
            && self.status == Some(RepairStatus::PARTIAL)
            && self.still_present != Some(true)
    }

    /// What the learning table records: a SUCCESS that fresh metrics contradict is a failure.
    pub fn learned_status(&self) -> RepairStatus {
        match self.status {
            Some(RepairStatus::SUCCESS) if self.still_present == Some(true) => RepairStatus::FAILED,
            _ => self.effective_status(),
        }
    }
}

/// One detected fault and what the cycle did about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultRecord {
    pub fault_id: String,
    pub fault_type: String,
    pub critical: bool,
    /// The classification category's value, when the fault was classified.
    pub category: Option<String>,
    pub classification_error: Option<String>,
    /// Engines that claimed the fault, in the order they are listed.
    pub candidates: Vec<String>,
    /// Errors raised by `can_repair`, as (engine, error).
    pub claim_errors: Vec<(String, String)>,
    /// The engine selected, if any.
    pub engine: Option<String>,
    /// The throttle's key for the repair (`autorepair_engine::target_key`), when an admission
    /// gate was asked and let it run. The loop feeds its throttle with this same key.
    pub admitted_target: Option<String>,
    pub repair: Option<RepairRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SnapshotRecord {
    NoManager,
    DryRun,
    /// The caller turned pre-repair snapshots off (the loop's `enable_snapshots=False`).
    Disabled,
    Created {
        snapshot_id: String,
    },
    Failed {
        error: String,
    },
}

impl SnapshotRecord {
    pub fn snapshot_id(&self) -> Option<&str> {
        match self {
            SnapshotRecord::Created { snapshot_id } => Some(snapshot_id),
            _ => None,
        }
    }
}

/// Where a health value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthSource {
    /// The pipeline's health engine, on the metrics named.
    HealthEngine,
    /// The health formula applied by the pipeline itself (no health engine given).
    Formula,
    /// Not measured again: equal to the value before (no metrics provider, or it failed).
    NotMeasured,
}

impl HealthSource {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthSource::HealthEngine => "health_engine",
            HealthSource::Formula => "formula",
            HealthSource::NotMeasured => "not_measured",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthRecord {
    pub before: f64,
    pub before_source: HealthSource,
    pub after: f64,
    pub after_source: HealthSource,
    /// Layers the metrics provider refreshed (by parameter name).
    pub refreshed_layers: Vec<&'static str>,
    /// Why health was not measured after repair, or what went wrong measuring it.
    pub after_note: Option<String>,
}

impl Default for HealthRecord {
    fn default() -> Self {
        HealthRecord {
            before: NEUTRAL_HEALTH,
            before_source: HealthSource::NotMeasured,
            after: NEUTRAL_HEALTH,
            after_source: HealthSource::NotMeasured,
            refreshed_layers: Vec::new(),
            after_note: None,
        }
    }
}

impl HealthRecord {
    pub fn delta(&self) -> f64 {
        self.after - self.before
    }

    pub fn declined(&self) -> bool {
        self.after < self.before
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollbackRecord {
    pub needed: bool,
    /// The caller turned rollback off (the loop's `enable_rollback=False`): a decline is
    /// reported, nothing is restored.
    pub disabled: bool,
    /// Something was put back: the restore succeeded and at least one provider restored.
    pub performed: bool,
    pub snapshot_id: Option<String>,
    /// What `restore_snapshot` returned.
    pub restore_ok: Option<bool>,
    /// Providers restored (None when the snapshot manager cannot say).
    pub restored: Option<Vec<String>>,
    pub failed: Vec<(String, String)>,
    pub missing: Vec<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StabilizeRecord {
    pub requested: f64,
    pub waited: f64,
    pub note: Option<String>,
}

/// Everything a cycle did, from which its stage results and metadata are built on demand.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleData {
    pub cycle_id: String,
    pub started: NaiveDateTime,
    pub dry_run: bool,
    pub forced: bool,
    pub faults: Vec<FaultRecord>,
    pub snapshot: SnapshotRecord,
    pub context_keys: Vec<String>,
    pub context_error: Option<String>,
    /// The repair engines were given a `verify` backed by the metrics provider.
    pub verify_from_provider: bool,
    pub health: HealthRecord,
    /// "fresh_metrics" or "repair_results".
    pub verification_source: &'static str,
    pub rollback: RollbackRecord,
    pub stabilize: StabilizeRecord,
    /// (fault type, engine, record after this cycle).
    pub learned: Vec<(String, String, LearnedRecord)>,
    pub stages_completed: Vec<HealingStage>,
    pub outcome: HealingOutcome,
    /// "ExceptionType: message" when a stage failed and the cycle stopped there.
    pub error: Option<String>,
    pub failed_stage: Option<HealingStage>,
    pub duration: f64,
    /// Errors raised while publishing this cycle's events (the first few).
    pub event_errors: Vec<String>,
}

/// Counts of the repairs of a cycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub attempted: usize,
    pub repaired: usize,
    pub verified: usize,
    pub success: usize,
    pub partial: usize,
    /// Of `partial`: applied, awaiting evidence.
    pub awaiting_evidence: usize,
    pub failed: usize,
    pub skipped: usize,
    pub errors: usize,
}

impl CycleData {
    pub fn new(cycle_id: String, started: NaiveDateTime, dry_run: bool, forced: bool) -> Self {
        CycleData {
            cycle_id,
            started,
            dry_run,
            forced,
            faults: Vec::new(),
            snapshot: SnapshotRecord::NoManager,
            context_keys: Vec::new(),
            context_error: None,
            verify_from_provider: false,
            health: HealthRecord::default(),
            verification_source: "repair_results",
            rollback: RollbackRecord::default(),
            stabilize: StabilizeRecord::default(),
            learned: Vec::new(),
            stages_completed: Vec::new(),
            outcome: HealingOutcome::SKIPPED,
            error: None,
            failed_stage: None,
            duration: 0.0,
            event_errors: Vec::new(),
        }
    }

    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for r in self.faults.iter().filter_map(|f| f.repair.as_ref()) {
            t.attempted += 1;
            if r.repaired() {
                t.repaired += 1;
            }
            if r.verified() {
                t.verified += 1;
            }
            if r.error.is_some() && r.status.is_none() {
                t.errors += 1;
            }
            if r.applied_awaiting_evidence() {
                t.awaiting_evidence += 1;
            }
            match r.effective_status() {
                RepairStatus::SUCCESS => t.success += 1,
                RepairStatus::PARTIAL => t.partial += 1,
                RepairStatus::SKIPPED => t.skipped += 1,
                RepairStatus::FAILED | RepairStatus::IN_PROGRESS => t.failed += 1,
            }
        }
        t
    }

    pub fn critical_faults(&self) -> usize {
        self.faults.iter().filter(|f| f.critical).count()
    }

    /// The outcome of a cycle that ran every stage (see the module doc).
    pub fn decide_outcome(&self) -> HealingOutcome {
        if self.dry_run {
            return HealingOutcome::SKIPPED;
        }
        if self.rollback.performed {
            return HealingOutcome::ROLLBACK;
        }
        if self.rollback.needed {
            return HealingOutcome::FAILED;
        }
        // Every repair held back by the throttle: nothing was tried, so nothing failed.
        if !self.faults.is_empty()
            && self
                .faults
                .iter()
                .all(|f| f.repair.as_ref().is_some_and(RepairRecord::not_admitted))
        {
            return HealingOutcome::SKIPPED;
        }
        let t = self.tally();
        if !self.faults.is_empty() && t.repaired == self.faults.len() {
            HealingOutcome::SUCCESS
        } else if t.repaired + t.partial > 0 || t.success > 0 {
            HealingOutcome::PARTIAL
        } else {
            HealingOutcome::FAILED
        }
    }

    /// The improvement a result reports: after - before, or 0.0 when the cycle failed
    /// before measuring health after repair.
    pub fn health_improvement(&self) -> f64 {
        if self
            .stages_completed
            .contains(&HealingStage::STAGE_8_HEALTH_CHECK)
        {
            self.health.delta()
        } else {
            0.0
        }
    }

    /// `metadata["repair_strategies"]` and the rest of the context metadata.
    pub fn metadata(&self) -> Metrics {
        let mut m = Map::new();
        if self
            .stages_completed
            .contains(&HealingStage::STAGE_4_SELECT_STRATEGY)
        {
            let strategies: Vec<Value> = self
                .faults
                .iter()
                .filter_map(|f| {
                    f.engine.as_ref().map(
                        |e| json!({"fault_id": f.fault_id, "engine": e, "category": f.category}),
                    )
                })
                .collect();
            m.insert("repair_strategies".into(), Value::Array(strategies));
        }
        if self.dry_run {
            m.insert("dry_run".into(), Value::Bool(true));
        }
        if self.forced {
            m.insert("forced".into(), Value::Bool(true));
        }
        if let Some(e) = &self.error {
            m.insert("error".into(), Value::String(e.clone()));
            if let Some(stage) = self.failed_stage {
                m.insert("failed_stage".into(), Value::String(stage.value().into()));
            }
        }
        if !self.event_errors.is_empty() {
            m.insert("event_errors".into(), json!(self.event_errors));
        }
        m.insert("started".into(), Value::String(iso(&self.started)));
        m
    }

    /// The result of one completed stage.
    pub fn stage_result(&self, stage: HealingStage) -> Metrics {
        let value = match stage {
            HealingStage::STAGE_1_DETECT => json!({
                "faults_detected": self.faults.len(),
                "critical_faults": self.critical_faults(),
                "fault_ids": self.faults.iter().map(|f| f.fault_id.as_str()).collect::<Vec<_>>(),
            }),
            HealingStage::STAGE_2_CLASSIFY => {
                let mut by_category = Map::new();
                let mut errors = Map::new();
                let mut done = 0usize;
                for f in &self.faults {
                    if let Some(c) = &f.category {
                        done += 1;
                        let n = by_category.get(c).and_then(Value::as_u64).unwrap_or(0);
                        by_category.insert(c.clone(), json!(n + 1));
                    }
                    if let Some(e) = &f.classification_error {
                        errors.insert(f.fault_id.clone(), Value::String(e.clone()));
                    }
                }
                let mut v = json!({"classifications_completed": done, "by_category": by_category});
                if !errors.is_empty() {
                    v["errors"] = Value::Object(errors);
                }
                v
            }
            HealingStage::STAGE_3_SNAPSHOT => match &self.snapshot {
                SnapshotRecord::Created { snapshot_id } => {
                    json!({"snapshot_created": true, "snapshot_id": snapshot_id})
                }
                SnapshotRecord::NoManager => {
                    json!({"snapshot_created": false, "reason": "SnapshotManager not available"})
                }
                SnapshotRecord::DryRun => {
                    json!({"snapshot_created": false, "dry_run": true, "reason": "dry run: no snapshot written"})
                }
                SnapshotRecord::Disabled => {
                    json!({"snapshot_created": false, "reason": "snapshots disabled (enable_snapshots=False)"})
                }
                SnapshotRecord::Failed { error } => {
                    json!({"snapshot_created": false, "error": error})
                }
            },
            HealingStage::STAGE_4_SELECT_STRATEGY => {
                let selected: Vec<Value> = self
                    .faults
                    .iter()
                    .filter_map(|f| {
                        f.engine
                            .as_ref()
                            .map(|e| json!({"fault_id": f.fault_id, "engine": e, "candidates": f.candidates}))
                    })
                    .collect();
                let unmatched: Vec<&str> = self
                    .faults
                    .iter()
                    .filter(|f| f.engine.is_none())
                    .map(|f| f.fault_id.as_str())
                    .collect();
                let mut v = json!({
                    "strategies_selected": selected.len(),
                    "selected": selected,
                    "unmatched_faults": unmatched,
                    "rule": "best learned record for the fault type among the claiming engines; ties go to the engine listed first",
                });
                let errors: Vec<Value> = self
                    .faults
                    .iter()
                    .flat_map(|f| {
                        f.claim_errors
                            .iter()
                            .map(move |(e, err)| json!({"fault_id": f.fault_id, "engine": e, "error": err}))
                    })
                    .collect();
                if !errors.is_empty() {
                    v["errors"] = Value::Array(errors);
                }
                v
            }
            HealingStage::STAGE_5_PREPARE => {
                let mut v = json!({
                    "health_before": self.health.before,
                    "health_source": self.health.before_source.as_str(),
                    "ready": self.context_error.is_none(),
                    "context_keys": self.context_keys,
                    "verify_from_metrics_provider": self.verify_from_provider,
                });
                if let Some(e) = &self.context_error {
                    v["context_error"] = Value::String(e.clone());
                }
                if self.dry_run {
                    v["dry_run"] = Value::Bool(true);
                }
                v
            }
            HealingStage::STAGE_6_EXECUTE_REPAIR => {
                let t = self.tally();
                let repairs: Vec<Value> = self
                    .faults
                    .iter()
                    .filter_map(|f| {
                        let r = f.repair.as_ref()?;
                        let mut v = json!({
                            "fault_id": f.fault_id,
                            "engine": r.engine,
                            "status": r.status.map(|s| s.value()),
                            "duration": r.duration,
                        });
                        if let Some(e) = &r.error {
                            v["error"] = Value::String(e.clone());
                        }
                        Some(v)
                    })
                    .collect();
                if self.dry_run {
                    let planned: Vec<Value> = self
                        .faults
                        .iter()
                        .filter_map(|f| {
                            f.engine
                                .as_ref()
                                .map(|e| json!({"fault_id": f.fault_id, "engine": e}))
                        })
                        .collect();
                    json!({"repairs_attempted": 0, "repairs_successful": 0, "dry_run": true, "planned": planned})
                } else {
                    json!({
                        "repairs_attempted": t.attempted,
                        "repairs_successful": t.success,
                        "repairs_partial": t.partial,
                        "repairs_awaiting_evidence": t.awaiting_evidence,
                        "repairs_failed": t.failed,
                        "repairs_skipped": t.skipped,
                        "repair_errors": t.errors,
                        "repairs": repairs,
                    })
                }
            }
            HealingStage::STAGE_7_VERIFY => {
                let t = self.tally();
                let still: Vec<&str> = self
                    .faults
                    .iter()
                    .filter(|f| {
                        f.repair
                            .as_ref()
                            .is_some_and(|r| r.still_present == Some(true))
                    })
                    .map(|f| f.fault_id.as_str())
                    .collect();
                let rate = if t.attempted == 0 {
                    0.0
                } else {
                    t.verified as f64 / t.attempted as f64
                };
                let awaiting: Vec<&str> = self
                    .faults
                    .iter()
                    .filter(|f| {
                        f.repair
                            .as_ref()
                            .is_some_and(RepairRecord::applied_awaiting_evidence)
                    })
                    .map(|f| f.fault_id.as_str())
                    .collect();
                json!({
                    "repairs_verified": t.verified,
                    "verification_rate": rate,
                    "source": self.verification_source,
                    "still_present": still,
                    "awaiting_evidence": awaiting,
                })
            }
            HealingStage::STAGE_8_HEALTH_CHECK => {
                let mut v = json!({
                    "health_before": self.health.before,
                    "health_after": self.health.after,
                    "health_delta": self.health.delta(),
                    "measured": self.health.after_source != HealthSource::NotMeasured,
                    "source": self.health.after_source.as_str(),
                    "refreshed_layers": self.health.refreshed_layers,
                });
                if let Some(n) = &self.health.after_note {
                    v["note"] = Value::String(n.clone());
                }
                v
            }
            HealingStage::STAGE_9_ROLLBACK => {
                let r = &self.rollback;
                let mut v = json!({"rollback_needed": r.needed, "rollback_performed": r.performed});
                if r.disabled {
                    v["rollback_enabled"] = Value::Bool(false);
                }
                if r.needed {
                    v["snapshot_id"] = json!(r.snapshot_id);
                    v["restore_ok"] = json!(r.restore_ok);
                    v["restored"] = json!(r.restored);
                    let failed: Map<String, Value> = r
                        .failed
                        .iter()
                        .map(|(k, e)| (k.clone(), Value::String(e.clone())))
                        .collect();
                    v["failed"] = Value::Object(failed);
                    v["missing"] = json!(r.missing);
                }
                if let Some(reason) = &r.reason {
                    v["reason"] = Value::String(reason.clone());
                }
                v
            }
            HealingStage::STAGE_10_STABILIZE => {
                let mut v = json!({
                    "stabilization_complete": true,
                    "waiting_period": self.stabilize.requested,
                    "waited": self.stabilize.waited,
                });
                if let Some(n) = &self.stabilize.note {
                    v["note"] = Value::String(n.clone());
                }
                v
            }
            HealingStage::STAGE_11_LEARN => {
                let mut effectiveness = Map::new();
                for f in &self.faults {
                    if let Some(r) = &f.repair {
                        effectiveness.insert(f.fault_id.clone(), json!(r.success_rate));
                    }
                }
                let learned: Vec<Value> = self
                    .learned
                    .iter()
                    .map(|(t, e, r)| {
                        json!({
                            "fault_type": t,
                            "engine": e,
                            "attempts": r.attempts,
                            "success_rate": r.success_rate(),
                            "score": r.score(),
                        })
                    })
                    .collect();
                json!({
                    "fault_patterns": self.faults.iter().map(|f| f.fault_type.as_str()).collect::<Vec<_>>(),
                    "repair_effectiveness": effectiveness,
                    "health_improvement": self.health.delta(),
                    "learned": learned,
                })
            }
            HealingStage::STAGE_12_REPORT => {
                let t = self.tally();
                json!({
                    "cycle_id": self.cycle_id,
                    "outcome": self.outcome.value(),
                    "faults_detected": self.faults.len(),
                    "faults_repaired": t.repaired,
                    "health_before": self.health.before,
                    "health_after": self.health.after,
                    "improvement": self.health.delta(),
                    "stages_completed": HealingStage::ALL.len(),
                    "dry_run": self.dry_run,
                })
            }
        };
        match value {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::clock::now;

    fn repair(status: Option<RepairStatus>, verified: bool, still: Option<bool>) -> RepairRecord {
        RepairRecord {
            engine: "graph".into(),
            status,
            success_rate: 0.0,
            duration: 0.0,
            verification_passed: verified,
            error: status.is_none().then(|| "RuntimeError: boom".to_string()),
            still_present: still,
            awaiting_evidence: false,
        }
    }

    fn fault(id: &str, engine: Option<&str>, r: Option<RepairRecord>) -> FaultRecord {
        FaultRecord {
            fault_id: id.into(),
            fault_type: "graph_cycle".into(),
            engine: engine.map(String::from),
            repair: r,
            ..FaultRecord::default()
        }
    }

    fn cycle(faults: Vec<FaultRecord>) -> CycleData {
        let mut c = CycleData::new("healing_1".into(), now(), false, false);
        c.faults = faults;
        c.stages_completed = HealingStage::ALL.to_vec();
        c
    }

    #[test]
    fn stages_and_outcomes_have_reference_values() {
        assert_eq!(HealingStage::ALL.len(), 12);
        assert_eq!(
            HealingStage::STAGE_4_SELECT_STRATEGY.value(),
            "select_strategy"
        );
        assert_eq!(
            HealingStage::STAGE_12_REPORT.py_str(),
            "HealingStage.STAGE_12_REPORT"
        );
        assert_eq!(
            HealingOutcome::ALL
                .iter()
                .map(|o| o.value())
                .collect::<Vec<_>>(),
            ["success", "partial", "failed", "rollback", "skipped"]
        );
    }

    #[test]
    fn learning_prefers_the_best_record_and_ties_go_first() {
        let mut t = LearningTable::default();
        assert_eq!(
            t.choose("scheduler_deadlock", &["graph", "scheduler"]),
            Some(0)
        );
        t.record("scheduler_deadlock", "graph", RepairStatus::SKIPPED);
        // One non-success drops graph below the untried scheduler.
        assert_eq!(
            t.choose("scheduler_deadlock", &["graph", "scheduler"]),
            Some(1)
        );
        t.record("scheduler_deadlock", "scheduler", RepairStatus::SUCCESS);
        assert_eq!(
            t.choose("scheduler_deadlock", &["graph", "scheduler"]),
            Some(1)
        );
        // Records are per fault type.
        assert_eq!(t.choose("graph_cycle", &["graph", "scheduler"]), Some(0));
        let r = t.get("scheduler_deadlock", "scheduler").copied().unwrap();
        assert_eq!((r.attempts, r.successes), (1, 1));
        assert!((r.score() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(t.choose("x", &[]), None);
    }

    #[test]
    fn learning_table_is_bounded_and_evicts_least_recently_updated() {
        let mut t = LearningTable::new(3);
        t.record("a", "e", RepairStatus::SUCCESS);
        t.record("b", "e", RepairStatus::SUCCESS);
        t.record("c", "e", RepairStatus::SUCCESS);
        t.record("a", "e", RepairStatus::FAILED); // a is now the most recent
        t.record("d", "e", RepairStatus::SUCCESS); // evicts b
        assert_eq!(t.len(), 3);
        assert!(t.get("b", "e").is_none());
        assert_eq!(t.get("a", "e").unwrap().attempts, 2);
        assert_eq!(
            t.entries().iter().map(|e| e.0).collect::<Vec<_>>(),
            ["a", "c", "d"]
        );
    }

    #[test]
    fn stats_counters_add_up() {
        let mut s = PipelineStats::default();
        for (o, dry) in [
            (HealingOutcome::SUCCESS, false),
            (HealingOutcome::PARTIAL, false),
            (HealingOutcome::FAILED, false),
            (HealingOutcome::ROLLBACK, false),
            (HealingOutcome::SKIPPED, true),
        ] {
            s.record(o, 2.0, -1.0, dry);
        }
        assert_eq!(s.total_cycles, 5);
        assert_eq!(
            s.successful_cycles
                + s.partial_cycles
                + s.failed_cycles
                + s.rollback_cycles
                + s.skipped_cycles,
            s.total_cycles
        );
        assert_eq!(s.dry_run_cycles, 1);
        assert_eq!(s.avg_duration, 2.0);
        assert_eq!(s.avg_health_improvement, -1.0);
    }

    #[test]
    fn history_is_bounded_and_newest_first() {
        let mut h = CycleHistory::new(3);
        for i in 0..5 {
            let evicted = h.push(i);
            assert_eq!(evicted, if i >= 3 { Some(i - 3) } else { None });
        }
        assert_eq!(h.newest_first(2).copied().collect::<Vec<_>>(), [4, 3]);
        assert_eq!(h.newest_first(10).copied().collect::<Vec<_>>(), [4, 3, 2]);
        assert_eq!(h.newest_first(0).count(), 0);
    }

    #[test]
    fn a_cycle_whose_repairs_were_all_held_back_is_skipped_not_failed() {
        let held = || RepairRecord {
            error: Some(format!("{NOT_ADMITTED}cooldown: 1.0s left")),
            ..repair(Some(RepairStatus::SKIPPED), false, None)
        };
        let c = cycle(vec![
            fault("a", Some("g"), Some(held())),
            fault("b", Some("g"), Some(held())),
        ]);
        assert_eq!(c.decide_outcome(), HealingOutcome::SKIPPED);
        // One held back and one that failed: the cycle failed.
        let c = cycle(vec![
            fault("a", Some("g"), Some(held())),
            fault("b", Some("g"), Some(repair(None, false, None))),
        ]);
        assert_eq!(c.decide_outcome(), HealingOutcome::FAILED);
        // A repair the engine itself skipped is not "held back".
        let c = cycle(vec![fault(
            "a",
            Some("g"),
            Some(repair(Some(RepairStatus::SKIPPED), false, None)),
        )]);
        assert_eq!(c.decide_outcome(), HealingOutcome::FAILED);
    }

    #[test]
    fn outcome_rule() {
        let ok = || repair(Some(RepairStatus::SUCCESS), true, None);
        assert_eq!(
            cycle(vec![fault("a", Some("g"), Some(ok()))]).decide_outcome(),
            HealingOutcome::SUCCESS
        );
        // A fault with no engine keeps the cycle from full success.
        let c = cycle(vec![
            fault("a", Some("g"), Some(ok())),
            fault("b", None, None),
        ]);
        assert_eq!(c.decide_outcome(), HealingOutcome::PARTIAL);
        let c = cycle(vec![fault(
            "a",
            Some("g"),
            Some(repair(Some(RepairStatus::PARTIAL), false, None)),
        )]);
        assert_eq!(c.decide_outcome(), HealingOutcome::PARTIAL);
        let c = cycle(vec![
            fault("a", Some("g"), Some(repair(None, false, None))),
            fault("b", None, None),
        ]);
        assert_eq!(c.decide_outcome(), HealingOutcome::FAILED);
        // Fresh metrics that still show the fault contradict a SUCCESS.
        let c = cycle(vec![fault(
            "a",
            Some("g"),
            Some(repair(Some(RepairStatus::SUCCESS), true, Some(true))),
        )]);
        assert_eq!(c.decide_outcome(), HealingOutcome::PARTIAL);
        assert_eq!(c.tally().repaired, 0);
        let mut c = cycle(vec![fault("a", Some("g"), Some(ok()))]);
        c.rollback.needed = true;
        assert_eq!(c.decide_outcome(), HealingOutcome::FAILED);
        c.rollback.performed = true;
        assert_eq!(c.decide_outcome(), HealingOutcome::ROLLBACK);
        c.dry_run = true;
        assert_eq!(c.decide_outcome(), HealingOutcome::SKIPPED);
    }

    #[test]
    fn repairs_awaiting_evidence_are_neither_repaired_nor_verified() {
        let awaiting = |still: Option<bool>| RepairRecord {
            awaiting_evidence: true,
            ..repair(Some(RepairStatus::PARTIAL), false, still)
        };
        // Fresh metrics without the fault's value read as "gone" (Some(false)); still no
        // evidence that the restart worked.
        for r in [awaiting(None), awaiting(Some(false))] {
            assert!(r.applied_awaiting_evidence());
            assert!(!r.repaired() && !r.verified());
            assert_eq!(r.learned_status(), RepairStatus::PARTIAL);
        }
        // Fresh metrics that show the fault again: no longer awaiting, just not repaired.
        assert!(!awaiting(Some(true)).applied_awaiting_evidence());
        // A cycle whose every repair awaits evidence is PARTIAL, never SUCCESS.
        let mut c = cycle(vec![
            fault("a", Some("agent"), Some(awaiting(Some(false)))),
            fault("b", Some("scheduler"), Some(awaiting(None))),
        ]);
        assert_eq!(c.decide_outcome(), HealingOutcome::PARTIAL);
        let t = c.tally();
        assert_eq!((t.repaired, t.verified), (0, 0));
        assert_eq!((t.partial, t.awaiting_evidence, t.failed), (2, 2, 0));
        c.stages_completed = HealingStage::ALL.to_vec();
        c.outcome = c.decide_outcome();
        let report = c.stage_result(HealingStage::STAGE_12_REPORT);
        assert_eq!(report["faults_repaired"], 0);
        assert_eq!(report["outcome"], "partial");
        let verify = c.stage_result(HealingStage::STAGE_7_VERIFY);
        assert_eq!(verify["repairs_verified"], 0);
        assert_eq!(verify["awaiting_evidence"], json!(["a", "b"]));
        let execute = c.stage_result(HealingStage::STAGE_6_EXECUTE_REPAIR);
        assert_eq!(execute["repairs_awaiting_evidence"], 2);
    }

    #[test]
    fn verification_uses_fresh_metrics_first() {
        let r = repair(Some(RepairStatus::SUCCESS), false, Some(false));
        assert!(r.verified());
        let r = repair(Some(RepairStatus::SUCCESS), true, Some(true));
        assert!(!r.verified() && !r.repaired());
        assert_eq!(r.learned_status(), RepairStatus::FAILED);
        let r = repair(Some(RepairStatus::SUCCESS), true, None);
        assert!(r.verified());
        let r = repair(Some(RepairStatus::PARTIAL), true, Some(false));
        assert!(!r.verified());
        assert_eq!(
            repair(None, false, None).effective_status(),
            RepairStatus::FAILED
        );
    }

    #[test]
    fn condition_check_against_fresh_metrics() {
        let mut fresh: [Option<Metrics>; 5] = Default::default();
        assert_eq!(condition_present("graph_cycle", &fresh), None);
        fresh[1] = Some(json!({"cycle_count": 0}).as_object().unwrap().clone());
        assert_eq!(condition_present("graph_cycle", &fresh), Some(false));
        fresh[1] = Some(json!({"cycle_count": 2}).as_object().unwrap().clone());
        assert_eq!(condition_present("graph_cycle", &fresh), Some(true));
        fresh[0] = Some(json!({"queue_size": 500}).as_object().unwrap().clone());
        assert_eq!(condition_present("queue_overload", &fresh), Some(true));
        assert_eq!(condition_present("metric_anomaly", &fresh), None);
        fresh[1] = Some(json!({"cycle_count": "many"}).as_object().unwrap().clone());
        assert_eq!(condition_present("graph_cycle", &fresh), None);
    }

    #[test]
    fn formula_health_scores_the_layers_like_the_health_engine() {
        let mut layers: [Metrics; 5] = Default::default();
        assert_eq!(formula_health(&layers).unwrap(), 100.0);
        // A queue over 100 costs the orchestrator component 20 points, weighted 0.20.
        layers[0] = json!({"queue_size": 150}).as_object().unwrap().clone();
        assert!((formula_health(&layers).unwrap() - 96.0).abs() < 1e-9);
        layers[0] = json!({"queue_size": "x"}).as_object().unwrap().clone();
        assert!(formula_health(&layers).is_err());
    }

    #[test]
    fn stage_results_describe_the_cycle() {
        let mut c = cycle(vec![
            fault(
                "a",
                Some("graph"),
                Some(repair(Some(RepairStatus::SUCCESS), true, None)),
            ),
            fault("b", None, None),
        ]);
        c.faults[0].category = Some("structural".into());
        c.faults[0].critical = true;
        c.health.before = 80.0;
        c.health.after = 90.0;
        c.health.after_source = HealthSource::HealthEngine;
        c.snapshot = SnapshotRecord::Created {
            snapshot_id: "snap_1".into(),
        };
        c.outcome = c.decide_outcome();
        let detect = c.stage_result(HealingStage::STAGE_1_DETECT);
        assert_eq!(detect["faults_detected"], 2);
        assert_eq!(detect["critical_faults"], 1);
        let classify = c.stage_result(HealingStage::STAGE_2_CLASSIFY);
        assert_eq!(classify["by_category"], json!({"structural": 1}));
        let select = c.stage_result(HealingStage::STAGE_4_SELECT_STRATEGY);
        assert_eq!(select["strategies_selected"], 1);
        assert_eq!(select["unmatched_faults"], json!(["b"]));
        let health = c.stage_result(HealingStage::STAGE_8_HEALTH_CHECK);
        assert_eq!(health["health_delta"], 10.0);
        assert_eq!(health["measured"], true);
        let report = c.stage_result(HealingStage::STAGE_12_REPORT);
        assert_eq!(report["stages_completed"], 12);
        assert_eq!(report["faults_repaired"], 1);
        assert_eq!(report["outcome"], "partial");
        let meta = c.metadata();
        assert_eq!(
            meta["repair_strategies"],
            json!([{"fault_id": "a", "engine": "graph", "category": "structural"}])
        );
        assert_eq!(c.health_improvement(), 10.0);
        c.stages_completed.truncate(3);
        assert_eq!(c.health_improvement(), 0.0);
        assert!(!c.metadata().contains_key("repair_strategies"));
    }
}
