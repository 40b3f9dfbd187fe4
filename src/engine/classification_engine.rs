//! Fault classification: category, subcategory, priority, root cause and actions.
//!
//! The algorithm is the reference's keyword scoring, with its defects fixed:
//! - every fault type the detector emits scores above zero in a fitting category (the keyword
//!   lists are extended), and a fault that matches nothing is `UNKNOWN`, not `OPERATIONAL`;
//! - the pattern cache is keyed by (fault type, source value), keeps the real score and is
//!   bounded (least recently used entry goes first);
//! - multi-word subcategories match fault types in their underscore form;
//! - affected components come in a fixed order;
//! - priority follows the severity's value, not a substring of its `str()`;
//! - the history is bounded, and metric aliases (`failure_rate`, `violation_count` ...) count.
//!
//! The engine is generic over the history item `H`, so the binding keeps the Python result
//! objects (callers get back the same objects) while tests use plain values.

use crate::engine::detection_engine::{FaultSeverity, FaultSource};
use crate::engine::enums::ValueEnum;
use crate::engine::error::EngineResult;
use crate::engine::pynum::Num;
use crate::engine::value::{self, Metrics};
use crate::value_enum;
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

value_enum! {
    pub enum FaultCategory {
        OPERATIONAL = "operational",
        STRUCTURAL = "structural",
        AGENT_FAULT = "agent_fault",
        GOVERNANCE_DRIFT = "governance_drift",
        STABILITY_THREAT = "stability_threat",
        UNKNOWN = "unknown",
    }
}

value_enum! {
    pub enum RepairPriority {
        IMMEDIATE = "immediate",
        URGENT = "urgent",
        HIGH = "high",
        MEDIUM = "medium",
        LOW = "low",
        DEFERRED = "deferred",
    }
}

/// Results kept for `get_recent_classifications` (the reference kept every one).
pub const DEFAULT_HISTORY_CAP: usize = 1000;
/// (fault type, source) patterns kept in the cache (the reference never dropped any).
pub const DEFAULT_CACHE_CAP: usize = 1024;
/// A category is cached once its score is above this.
pub const CACHE_THRESHOLD: f64 = 0.85;
/// Fault types and source texts longer than this are classified but not cached, so the cache
/// holds at most `cap` short keys whatever callers send.
pub const MAX_CACHED_KEY_LEN: usize = 256;
const KEYWORD_SCORE: f64 = 0.15;

/// The five categories that are scored, in tie-break order (the first maximum wins).
const SCORED: [FaultCategory; 5] = [
    FaultCategory::OPERATIONAL,
    FaultCategory::STRUCTURAL,
    FaultCategory::AGENT_FAULT,
    FaultCategory::GOVERNANCE_DRIFT,
    FaultCategory::STABILITY_THREAT,
];

/// Keywords per scored category, each worth 0.15 once when it occurs in the fault type or the
/// description (case-insensitive). The first part of each list is the reference's; the rest
/// lets every fault type the detector emits land in a fitting category.
static KEYWORDS: [&[&str]; 5] = [
    &[
        "timeout",
        "execution",
        "runtime",
        "task_failed",
        "agent_error",
        "performance",
        "latency",
        "resource",
        // high_error_rate, queue_overload, predicted_error_spike, resource_exhaustion, metric_anomaly
        "error",
        "queue",
        "overload",
        "backlog",
        "spike",
        "exhaust",
        "throughput",
        "metric",
    ],
    &[
        "cycle",
        "graph",
        "topology",
        "bottleneck",
        "deadlock",
        "dependency",
        "circular",
        "structure",
        "node",
        "edge",
    ],
    &[
        "agent",
        "cooperation",
        "communication",
        "message",
        "handoff",
        "delegation",
        "agent_crash",
        "agent_stall",
        // high_anomaly_rate: the meta layer's anomaly rate is the share of agents behaving abnormally
        "anomaly",
    ],
    &[
        "governance",
        "policy",
        "violation",
        "rule",
        "override",
        "permission",
        "threshold",
        "limit",
        "constraint",
        // high_risk_score: FAZA 29's governance risk
        "risk",
    ],
    &[
        "instability",
        "oscillation",
        "cascade",
        "runaway",
        "instable",
        "unstable",
        "divergence",
        "chaos",
        "thrashing",
        // stability_degradation, system_takeover
        "stability",
        "takeover",
    ],
];

/// Subcategory candidates per scored category, checked in order.
static SUBCATEGORIES: [[&str; 4]; 5] = [
    [
        "execution_timeout",
        "resource_exhaustion",
        "task_failure",
        "performance_degradation",
    ],
    [
        "circular_dependency",
        "bottleneck",
        "graph_complexity",
        "topology_issue",
    ],
    [
        "agent_crash",
        "cooperation_failure",
        "communication_breakdown",
        "agent_stall",
    ],
    [
        "policy_violation",
        "threshold_breach",
        "rule_conflict",
        "override_abuse",
    ],
    [
        "oscillation",
        "cascade_failure",
        "runaway_process",
        "feedback_loop",
    ],
];

/// `<category>_general`, in category order (UNKNOWN last).
static GENERAL_SUBCATEGORIES: [&str; 6] = [
    "operational_general",
    "structural_general",
    "agent_fault_general",
    "governance_drift_general",
    "stability_threat_general",
    "unknown_general",
];

/// Components each category affects, after the fault's source.
static COMPONENTS: [&[&str]; 6] = [
    &["orchestrator", "scheduler"],
    &["task_graph", "graph_optimizer"],
    &["agent_execution_loop", "agent_coordinator"],
    &["governance_engine", "policy_manager"],
    &["feedback_loop", "meta_layer", "takeover_manager"],
    &[],
];

pub const IMMEDIATE_ACTION: &str = "IMMEDIATE ACTION REQUIRED - Consider system takeover";

/// Three recommended actions per category.
static ACTIONS: [[&str; 3]; 6] = [
    [
        "Retry failed task with exponential backoff",
        "Scale resources if resource exhaustion detected",
        "Reschedule task to different agent/slot",
    ],
    [
        "Break circular dependencies",
        "Optimize graph topology",
        "Redistribute bottleneck load",
    ],
    [
        "Restart failing agent",
        "Reassign tasks to healthy agents",
        "Investigate agent cooperation issues",
    ],
    [
        "Review and adjust governance policies",
        "Investigate override usage patterns",
        "Recalibrate thresholds",
    ],
    [
        "Engage FAZA 29 takeover if needed",
        "Apply feedback loop damping",
        "Reduce system load temporarily",
    ],
    // The reference produced none for an unclassified fault; an operator still needs a lead.
    [
        "Collect diagnostics for the unclassified fault",
        "Review the fault's metrics and description by hand",
        "Add a classification rule if the fault recurs",
    ],
];

/// Every fixed text a result can carry, so a binding can build each one once.
pub fn fixed_texts() -> impl Iterator<Item = &'static str> {
    SUBCATEGORIES
        .iter()
        .flatten()
        .chain(GENERAL_SUBCATEGORIES.iter())
        .chain(COMPONENTS.iter().flat_map(|c| c.iter()))
        .chain(ACTIONS.iter().flatten())
        .chain(std::iter::once(&IMMEDIATE_ACTION))
        .copied()
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// A metric the classifier reads from `fault.metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKey {
    ExecutionTime,
    ErrorCount,
    CpuUsage,
    MemoryUsage,
    CycleCount,
    GraphComplexity,
    BottleneckDetected,
    AgentFailureRate,
    CooperationScore,
    AgentAnomalyDetected,
    GovernanceViolations,
    PolicyDrift,
    OverrideCount,
    StabilityScore,
    OscillationDetected,
    CascadeRisk,
}

const METRIC_KEY_COUNT: usize = 16;

impl MetricKey {
    /// Flags are read for their truthiness; every other key must hold a number.
    pub fn is_flag(self) -> bool {
        matches!(
            self,
            MetricKey::BottleneckDetected
                | MetricKey::AgentAnomalyDetected
                | MetricKey::OscillationDetected
        )
    }
}

/// Every name the classifier reads: the canonical key, or an alias used by the detector or
/// the integration layer (`true` in the last column). A canonical key wins over its alias.
pub const METRIC_NAMES: [(&str, MetricKey, bool); 21] = [
    ("execution_time", MetricKey::ExecutionTime, false),
    ("error_count", MetricKey::ErrorCount, false),
    ("cpu_usage", MetricKey::CpuUsage, false),
    ("memory_usage", MetricKey::MemoryUsage, false),
    ("cycle_count", MetricKey::CycleCount, false),
    ("graph_complexity", MetricKey::GraphComplexity, false),
    ("bottleneck_detected", MetricKey::BottleneckDetected, false),
    ("agent_failure_rate", MetricKey::AgentFailureRate, false),
    ("cooperation_score", MetricKey::CooperationScore, false),
    (
        "agent_anomaly_detected",
        MetricKey::AgentAnomalyDetected,
        false,
    ),
    (
        "governance_violations",
        MetricKey::GovernanceViolations,
        false,
    ),
    ("policy_drift", MetricKey::PolicyDrift, false),
    ("override_count", MetricKey::OverrideCount, false),
    ("stability_score", MetricKey::StabilityScore, false),
    (
        "oscillation_detected",
        MetricKey::OscillationDetected,
        false,
    ),
    ("cascade_risk", MetricKey::CascadeRisk, false),
    // The detector's agent fault carries `failure_rate`, its governance fault `violation_count`,
    // its bottleneck fault `bottleneck_count` and its resource rule `cpu` / `memory`.
    ("failure_rate", MetricKey::AgentFailureRate, true),
    ("violation_count", MetricKey::GovernanceViolations, true),
    ("bottleneck_count", MetricKey::BottleneckDetected, true),
    ("cpu", MetricKey::CpuUsage, true),
    ("memory", MetricKey::MemoryUsage, true),
];

/// Metric maps up to this size are walked rather than looked up name by name.
const SMALL_MAP: usize = 8;

/// The names of `METRIC_NAMES` alone, in the same order.
pub static METRIC_NAME_LIST: [&str; METRIC_NAMES.len()] = {
    let mut out = [""; METRIC_NAMES.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = METRIC_NAMES[i].0;
        i += 1;
    }
    out
};

/// The readings a classification needs, extracted from the fault's metrics up front. Flags are
/// stored as `Num::Bool` of the value's truthiness.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultMetrics {
    slots: [Option<Num>; METRIC_KEY_COUNT],
    /// Bit per key: the slot holds the canonical key's reading, which an alias may not replace.
    canonical: u32,
}

impl FaultMetrics {
    pub const EMPTY: FaultMetrics = FaultMetrics {
        slots: [None; METRIC_KEY_COUNT],
        canonical: 0,
    };

    /// Records a reading. A canonical key replaces an alias reading; an alias never replaces a
    /// canonical reading. `None` (a missing or None value) records nothing.
    pub fn put(&mut self, key: MetricKey, alias: bool, reading: Option<Num>) {
        let Some(reading) = reading else { return };
        let bit = 1u32 << key as u32;
        if alias && self.canonical & bit != 0 {
            return;
        }
        if !alias {
            self.canonical |= bit;
        }
        self.slots[key as usize] = Some(reading);
    }

    /// Reads every known key out of an engine metrics map.
    pub fn from_map(map: &Metrics) -> EngineResult<FaultMetrics> {
        let mut out = FaultMetrics::default();
        // `put` does not depend on the order readings arrive in, so a small map (a fault's
        // usual one or two readings) is walked instead of hashed once per known name.
        if map.len() <= SMALL_MAP {
            for (name, v) in map {
                if let Some((name, key, alias)) = METRIC_NAMES
                    .iter()
                    .find(|(known, _, _)| *known == name.as_str())
                {
                    out.put(*key, *alias, Self::reading(name, *key, v)?);
                }
            }
        } else {
            for (name, key, alias) in METRIC_NAMES.iter() {
                if let Some(v) = map.get(*name) {
                    out.put(*key, *alias, Self::reading(name, *key, v)?);
                }
            }
        }
        Ok(out)
    }

    /// What `put` records for `name`'s value `v`: flags by truthiness, None as missing.
    fn reading(name: &str, key: MetricKey, v: &serde_json::Value) -> EngineResult<Option<Num>> {
        if key.is_flag() {
            return Ok(if v.is_null() {
                None
            } else {
                Some(Num::Bool(value::truthy(v)))
            });
        }
        // The path is only spelled out for an error, so good readings allocate nothing.
        match Num::from_value(v, name) {
            Ok(reading) => Ok(reading),
            Err(_) => Num::from_value(v, &format!("fault.metrics['{name}']")),
        }
    }

    pub fn get(&self, key: MetricKey) -> Option<Num> {
        self.slots[key as usize]
    }

    /// `metrics.get(key, 0) > bound`.
    fn above(&self, key: MetricKey, bound: f64) -> bool {
        self.get(key).is_some_and(|n| n.gt(bound))
    }

    /// `metrics.get(key, 1.0) < bound`.
    fn below(&self, key: MetricKey, bound: f64) -> bool {
        self.get(key).is_some_and(|n| n.lt(bound))
    }

    fn flag(&self, key: MetricKey) -> bool {
        self.get(key).is_some_and(Num::truthy)
    }
}

// ---------------------------------------------------------------------------------------------
// Fault input

/// An enum-valued attribute of a fault (severity or source) as found on the fault object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag<'a, E> {
    /// Missing, None or otherwise falsy.
    Absent,
    Member(E),
    /// Anything else, given by its `str()`. The value (`"critical"`) or the member form
    /// (`"FaultSeverity.CRITICAL"`) in any case is recognised as the member.
    Text(&'a str),
}

impl<'a, E: ValueEnum> Tag<'a, E> {
    pub fn member(&self) -> Option<E> {
        match *self {
            Tag::Absent => None,
            Tag::Member(m) => Some(m),
            Tag::Text(text) => parse_member(text),
        }
    }

    /// `str(x) if x else "unknown"`, as metadata shows it.
    pub fn label(&self) -> Cow<'a, str> {
        match *self {
            Tag::Absent => Cow::Borrowed("unknown"),
            Tag::Member(m) => Cow::Owned(m.py_str()),
            Tag::Text(text) => Cow::Borrowed(text),
        }
    }
}

fn parse_member<E: ValueEnum>(text: &str) -> Option<E> {
    let text = text.trim();
    let name = match text.split_once('.') {
        Some((class, name)) if class.eq_ignore_ascii_case(E::CLASS) => name,
        _ => text,
    };
    E::ALL
        .iter()
        .copied()
        .find(|m| m.value().eq_ignore_ascii_case(name) || m.name().eq_ignore_ascii_case(name))
}

/// An owned `Tag`, for results that render their labels later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedTag<E> {
    Absent,
    Member(E),
    Text(String),
}

impl<E: Copy> OwnedTag<E> {
    pub fn as_tag(&self) -> Tag<'_, E> {
        match self {
            OwnedTag::Absent => Tag::Absent,
            OwnedTag::Member(m) => Tag::Member(*m),
            OwnedTag::Text(t) => Tag::Text(t),
        }
    }
}

impl<E: Copy> From<Tag<'_, E>> for OwnedTag<E> {
    fn from(tag: Tag<'_, E>) -> Self {
        match tag {
            Tag::Absent => OwnedTag::Absent,
            Tag::Member(m) => OwnedTag::Member(m),
            Tag::Text(t) => OwnedTag::Text(t.to_owned()),
        }
    }
}

/// What the classifier reads from a fault.
#[derive(Debug, Clone, Copy)]
pub struct FaultView<'a> {
    pub fault_type: &'a str,
    pub severity: Tag<'a, FaultSeverity>,
    pub source: Tag<'a, FaultSource>,
    pub description: &'a str,
    pub metrics: &'a FaultMetrics,
}

impl Default for FaultView<'_> {
    /// The reference's defaults for a fault that has none of the attributes.
    fn default() -> Self {
        FaultView {
            fault_type: "unknown",
            severity: Tag::Absent,
            source: Tag::Absent,
            description: "",
            metrics: &FaultMetrics::EMPTY,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Result

/// The root cause, kept as the facts that produce its text so that the text is only built
/// when someone reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RootCause {
    category: FaultCategory,
    /// Bit i: the category's i-th phrase applies.
    phrases: u8,
    /// The number the first STRUCTURAL or GOVERNANCE_DRIFT phrase prints.
    count: Option<Num>,
}

impl RootCause {
    fn analyse(category: FaultCategory, m: &FaultMetrics) -> RootCause {
        use MetricKey::*;
        let checks: [bool; 3] = match category {
            FaultCategory::OPERATIONAL => [
                m.above(CpuUsage, 0.9),
                m.above(MemoryUsage, 0.9),
                m.above(ExecutionTime, 30.0),
            ],
            FaultCategory::STRUCTURAL => {
                [m.above(CycleCount, 0.0), m.flag(BottleneckDetected), false]
            }
            FaultCategory::AGENT_FAULT => [
                m.above(AgentFailureRate, 0.3),
                m.below(CooperationScore, 0.5),
                false,
            ],
            FaultCategory::GOVERNANCE_DRIFT => [
                m.above(GovernanceViolations, 0.0),
                m.above(OverrideCount, 5.0),
                false,
            ],
            FaultCategory::STABILITY_THREAT => [
                m.below(StabilityScore, 0.5),
                m.flag(OscillationDetected),
                false,
            ],
            FaultCategory::UNKNOWN => [false; 3],
        };
        let phrases = checks
            .iter()
            .enumerate()
            .fold(0u8, |acc, (i, hit)| acc | (u8::from(*hit) << i));
        let count = match category {
            FaultCategory::STRUCTURAL => m.get(CycleCount),
            FaultCategory::GOVERNANCE_DRIFT => m.get(GovernanceViolations),
            _ => None,
        };
        RootCause {
            category,
            phrases,
            count,
        }
    }

    /// The text: the applicable phrases joined with `"; "`, or a fallback naming the fault type.
    pub fn text(&self, fault_type: &str) -> String {
        let count = || self.count.map(Num::py_str).unwrap_or_default();
        let mut parts: Vec<Cow<'static, str>> = Vec::with_capacity(3);
        for i in 0..3 {
            if self.phrases & (1 << i) == 0 {
                continue;
            }
            let phrase: Cow<'static, str> = match (self.category, i) {
                (FaultCategory::OPERATIONAL, 0) => "CPU resource exhaustion".into(),
                (FaultCategory::OPERATIONAL, 1) => "Memory pressure".into(),
                (FaultCategory::OPERATIONAL, _) => "Task execution timeout".into(),
                (FaultCategory::STRUCTURAL, 0) => {
                    format!("Circular dependencies detected ({} cycles)", count()).into()
                }
                (FaultCategory::STRUCTURAL, _) => "Graph bottleneck".into(),
                (FaultCategory::AGENT_FAULT, 0) => "High agent failure rate".into(),
                (FaultCategory::AGENT_FAULT, _) => "Agent cooperation breakdown".into(),
                (FaultCategory::GOVERNANCE_DRIFT, 0) => {
                    format!("{} governance violations", count()).into()
                }
                (FaultCategory::GOVERNANCE_DRIFT, _) => "Excessive override usage".into(),
                (FaultCategory::STABILITY_THREAT, 0) => "System instability detected".into(),
                (FaultCategory::STABILITY_THREAT, _) => "Feedback oscillation".into(),
                (FaultCategory::UNKNOWN, _) => continue,
            };
            parts.push(phrase);
        }
        if parts.is_empty() {
            format!("Unknown root cause for {fault_type}")
        } else {
            parts.join("; ")
        }
    }
}

/// The outcome of classifying one fault. Texts that depend on the fault (root cause,
/// components, metadata) are rendered on demand from the fault's own attributes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Classification {
    pub category: FaultCategory,
    pub confidence: f64,
    pub subcategory: &'static str,
    pub priority: RepairPriority,
    pub root_cause: RootCause,
    /// Whether the category and confidence came from the pattern cache.
    pub cached: bool,
}

impl Classification {
    /// The recommended actions: the IMMEDIATE warning first when it applies, then the
    /// category's three actions.
    pub fn recommended_actions(&self) -> impl Iterator<Item = &'static str> {
        let immediate = (self.priority == RepairPriority::IMMEDIATE).then_some(IMMEDIATE_ACTION);
        immediate
            .into_iter()
            .chain(ACTIONS[self.category.index()].iter().copied())
    }

    /// The affected components: the source's `str()` (when there is a source), then the
    /// category's components, each once, in that order.
    pub fn affected_components<'a>(&self, source: &Tag<'a, FaultSource>) -> Vec<Cow<'a, str>> {
        let mut out: Vec<Cow<'a, str>> = Vec::with_capacity(4);
        match *source {
            Tag::Absent => {}
            Tag::Member(m) => out.push(Cow::Owned(m.py_str())),
            Tag::Text(t) => out.push(Cow::Borrowed(t)),
        }
        for name in COMPONENTS[self.category.index()] {
            if !out.iter().any(|c| c == name) {
                out.push(Cow::Borrowed(name));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Keyword matching

/// One scan of a text finds every keyword and subcategory form in it. The text is lower-cased
/// once; patterns are bucketed by their first two bytes and checked by their first four before
/// a full comparison, so each text position costs a table load and rarely more.
struct Matcher {
    patterns: [&'static [u8]; MAX_PATTERNS],
    /// The first four bytes of each pattern (every pattern has at least four).
    heads: [u32; MAX_PATTERNS],
    /// Per bucket (`bucket(first byte, second byte)`), its range in `candidates`.
    buckets: Box<[(u8, u8); 1024]>,
    /// Pattern numbers grouped by bucket.
    candidates: [u8; MAX_PATTERNS],
    /// Per scored category, the bits of its keywords.
    keywords: [u128; 5],
    /// Per scored category and candidate: the bits of the spaced and underscore forms.
    subcategories: [[(u128, u128); 4]; 5],
}

const MAX_PATTERNS: usize = 128;

/// Lower-case letters 1..=26, `_` 27, space 28, anything else 0 (no pattern starts there).
static FOLD: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            c @ b'a'..=b'z' => c - b'a' + 1,
            b'_' => 27,
            b' ' => 28,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// Texts up to this length are lower-cased on the stack.
const STACK_TEXT: usize = 128;

fn head(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl Matcher {
    fn get() -> &'static Matcher {
        static MATCHER: OnceLock<Matcher> = OnceLock::new();
        MATCHER.get_or_init(Matcher::build)
    }

    fn build() -> Matcher {
        let mut patterns: Vec<&'static [u8]> = Vec::new();
        let mut bit_of = |p: &'static str| -> u128 {
            let p = p.as_bytes();
            let i = patterns.iter().position(|q| *q == p).unwrap_or_else(|| {
                patterns.push(p);
                patterns.len() - 1
            });
            1u128 << i
        };
        let mut keywords = [0u128; 5];
        for (i, list) in KEYWORDS.iter().enumerate() {
            for kw in list.iter() {
                keywords[i] |= bit_of(kw);
            }
        }
        let mut subcategories = [[(0u128, 0u128); 4]; 5];
        for (i, cands) in SUBCATEGORIES.iter().enumerate() {
            for (j, cand) in cands.iter().enumerate() {
                let spaced: &'static str = Box::leak(cand.replace('_', " ").into_boxed_str());
                subcategories[i][j] = (bit_of(spaced), bit_of(cand));
            }
        }
        assert!(
            patterns.len() <= MAX_PATTERNS,
            "the pattern masks hold 128 patterns"
        );
        assert!(patterns
            .iter()
            .all(|p| p.len() >= 4 && p.iter().all(|b| !b.is_ascii_uppercase())));
        let mut heads = [0u32; MAX_PATTERNS];
        let mut table: [&'static [u8]; MAX_PATTERNS] = [b""; MAX_PATTERNS];
        for (i, p) in patterns.iter().enumerate() {
            heads[i] = head(p);
            table[i] = p;
        }
        let mut order: Vec<usize> = (0..patterns.len()).collect();
        order.sort_by_key(|i| bucket(patterns[*i][0], patterns[*i][1]));
        let mut candidates = [0u8; MAX_PATTERNS];
        let mut buckets = Box::new([(0u8, 0u8); 1024]);
        for (slot, i) in order.iter().enumerate() {
            candidates[slot] = *i as u8;
            let b = bucket(patterns[*i][0], patterns[*i][1]);
            if buckets[b].0 == buckets[b].1 {
                buckets[b] = (slot as u8, slot as u8);
            }
            buckets[b].1 = slot as u8 + 1;
        }
        Matcher {
            patterns: table,
            heads,
            buckets,
            candidates,
            keywords,
            subcategories,
        }
    }

    /// The patterns occurring in `text.lower()`.
    fn scan(&self, text: &str) -> u128 {
        if !text.is_ascii() {
            // A few non-ASCII characters lower-case to ASCII letters (the Kelvin sign to `k`),
            // so non-ASCII text is lower-cased in full.
            return self.scan_lower(text.to_lowercase().as_bytes());
        }
        if text.len() > STACK_TEXT {
            return self.scan_lower(text.to_ascii_lowercase().as_bytes());
        }
        let mut buf = [0u8; STACK_TEXT];
        let lower = &mut buf[..text.len()];
        lower.copy_from_slice(text.as_bytes());
        lower.make_ascii_lowercase();
        self.scan_lower(lower)
    }

    fn scan_lower(&self, text: &[u8]) -> u128 {
        let mut found = 0u128;
        // Every pattern has at least four bytes, so only 4-byte windows can start one.
        for (i, w) in text.windows(4).enumerate() {
            let (start, end) = self.buckets[bucket(w[0], w[1])];
            if start == end {
                continue;
            }
            let h = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            for k in &self.candidates[start as usize..end as usize] {
                let k = *k as usize & (MAX_PATTERNS - 1);
                if self.heads[k] == h && text[i + 4..].starts_with(&self.patterns[k][4..]) {
                    found |= 1u128 << k;
                }
            }
        }
        found
    }
}

fn bucket(a: u8, b: u8) -> usize {
    ((FOLD[a as usize] as usize) << 5 | FOLD[b as usize] as usize) & 1023
}

/// The scores of the five scored categories, in `SCORED` order.
fn category_scores(found: u128, m: &FaultMetrics) -> [f64; 5] {
    use MetricKey::*;
    let matcher = Matcher::get();
    let mut scores = [0.0f64; 5];
    for (i, score) in scores.iter_mut().enumerate() {
        // 0.15 added once per keyword, in sequence, as the reference adds it.
        for _ in 0..(found & matcher.keywords[i]).count_ones() {
            *score += KEYWORD_SCORE;
        }
    }
    // Metric bonuses, in the reference's order within each category.
    let bonuses: [[(bool, f64); 3]; 5] = [
        [
            (m.above(ExecutionTime, 10.0), 0.2),
            (m.above(ErrorCount, 0.0), 0.15),
            (m.above(CpuUsage, 0.9), 0.1),
        ],
        [
            (m.above(CycleCount, 0.0), 0.3),
            (m.above(GraphComplexity, 100.0), 0.2),
            (m.flag(BottleneckDetected), 0.2),
        ],
        [
            (m.above(AgentFailureRate, 0.1), 0.25),
            (m.below(CooperationScore, 0.5), 0.2),
            (m.flag(AgentAnomalyDetected), 0.25),
        ],
        [
            (m.above(GovernanceViolations, 0.0), 0.3),
            (m.above(PolicyDrift, 0.2), 0.2),
            (m.above(OverrideCount, 5.0), 0.15),
        ],
        [
            (m.below(StabilityScore, 0.5), 0.3),
            (m.flag(OscillationDetected), 0.25),
            (m.above(CascadeRisk, 0.7), 0.2),
        ],
    ];
    for (score, list) in scores.iter_mut().zip(bonuses.iter()) {
        for (hit, bonus) in list {
            if *hit {
                *score += bonus;
            }
        }
        *score = score.min(1.0);
    }
    scores
}

fn subcategory(category: FaultCategory, type_found: u128, description_found: u128) -> &'static str {
    if let Some(i) = SCORED.iter().position(|c| *c == category) {
        let matcher = Matcher::get();
        for (j, (spaced, underscored)) in matcher.subcategories[i].iter().enumerate() {
            if description_found & spaced != 0 || type_found & underscored != 0 {
                return SUBCATEGORIES[i][j];
            }
        }
    }
    GENERAL_SUBCATEGORIES[category.index()]
}

fn repair_priority(
    category: FaultCategory,
    severity: Option<FaultSeverity>,
    m: &FaultMetrics,
) -> RepairPriority {
    use MetricKey::*;
    use RepairPriority::*;
    if severity == Some(FaultSeverity::CRITICAL) {
        return IMMEDIATE;
    }
    match category {
        FaultCategory::STABILITY_THREAT => IMMEDIATE,
        FaultCategory::GOVERNANCE_DRIFT if m.above(GovernanceViolations, 10.0) => URGENT,
        FaultCategory::GOVERNANCE_DRIFT => HIGH,
        FaultCategory::STRUCTURAL if m.above(CycleCount, 5.0) => URGENT,
        FaultCategory::STRUCTURAL => HIGH,
        FaultCategory::AGENT_FAULT if m.above(AgentFailureRate, 0.5) => URGENT,
        FaultCategory::AGENT_FAULT => MEDIUM,
        FaultCategory::OPERATIONAL if severity == Some(FaultSeverity::HIGH) => HIGH,
        FaultCategory::OPERATIONAL => MEDIUM,
        // An unclassified fault is as urgent as its severity says.
        FaultCategory::UNKNOWN => match severity {
            Some(FaultSeverity::HIGH) => HIGH,
            Some(FaultSeverity::MEDIUM) => MEDIUM,
            Some(FaultSeverity::INFO) => DEFERRED,
            _ => LOW,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Cache

/// The source part of a cache key: a member, whatever form it came in, or other text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SourceKey {
    None,
    Member(FaultSource),
    Text(Box<str>),
}

impl SourceKey {
    fn matches(&self, tag: &Tag<'_, FaultSource>) -> bool {
        match (self, tag.member(), tag) {
            (SourceKey::Member(a), Some(b), _) => *a == b,
            (SourceKey::None, None, Tag::Absent) => true,
            (SourceKey::Text(a), None, Tag::Text(b)) => &**a == *b,
            _ => false,
        }
    }

    fn of(tag: &Tag<'_, FaultSource>) -> SourceKey {
        match (tag.member(), tag) {
            (Some(m), _) => SourceKey::Member(m),
            (None, Tag::Text(t)) => SourceKey::Text((*t).into()),
            _ => SourceKey::None,
        }
    }
}

struct CacheEntry {
    source: SourceKey,
    category: FaultCategory,
    score: f64,
    last_used: u64,
}

/// Category and score per (fault type, source), least recently used entry evicted first.
struct PatternCache {
    by_type: HashMap<Box<str>, Vec<CacheEntry>>,
    len: usize,
    cap: usize,
    clock: u64,
}

impl PatternCache {
    fn new(cap: usize) -> Self {
        PatternCache {
            by_type: HashMap::new(),
            len: 0,
            cap,
            clock: 0,
        }
    }

    fn get(
        &mut self,
        fault_type: &str,
        source: &Tag<'_, FaultSource>,
    ) -> Option<(FaultCategory, f64)> {
        if self.len == 0 {
            return None;
        }
        self.clock += 1;
        let entry = self
            .by_type
            .get_mut(fault_type)?
            .iter_mut()
            .find(|e| e.source.matches(source))?;
        entry.last_used = self.clock;
        Some((entry.category, entry.score))
    }

    fn insert(
        &mut self,
        fault_type: &str,
        source: &Tag<'_, FaultSource>,
        category: FaultCategory,
        score: f64,
    ) {
        let long_source = matches!(source, Tag::Text(t) if t.len() > MAX_CACHED_KEY_LEN);
        if self.cap == 0 || fault_type.len() > MAX_CACHED_KEY_LEN || long_source {
            return;
        }
        if self.len >= self.cap {
            self.evict_oldest();
        }
        self.clock += 1;
        let entry = CacheEntry {
            source: SourceKey::of(source),
            category,
            score,
            last_used: self.clock,
        };
        self.by_type
            .entry(fault_type.into())
            .or_default()
            .push(entry);
        self.len += 1;
    }

    /// O(cap), paid only when a new pattern arrives at a full cache.
    fn evict_oldest(&mut self) {
        let oldest = self
            .by_type
            .iter()
            .flat_map(|(t, entries)| {
                entries
                    .iter()
                    .enumerate()
                    .map(move |(i, e)| (e.last_used, t, i))
            })
            .min_by_key(|(used, _, _)| *used)
            .map(|(_, t, i)| (t.clone(), i));
        if let Some((fault_type, i)) = oldest {
            if let Some(entries) = self.by_type.get_mut(&fault_type) {
                entries.swap_remove(i);
                if entries.is_empty() {
                    self.by_type.remove(&fault_type);
                }
                self.len -= 1;
            }
        }
    }

    fn clear(&mut self) {
        self.by_type.clear();
        self.len = 0;
    }
}

// ---------------------------------------------------------------------------------------------
// Engine

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassificationStats {
    pub total_classifications: u64,
    /// Counts per category, in `FaultCategory::ALL` order.
    pub by_category: [u64; 6],
    /// Counts per priority, in `RepairPriority::ALL` order.
    pub by_priority: [u64; 6],
    pub avg_confidence: f64,
    pub history_size: usize,
    pub pattern_cache_size: usize,
}

/// Fault types whose keyword scan is remembered (the detector emits about fifteen).
const TYPE_MEMO_CAP: usize = 32;

pub struct ClassificationEngine<H> {
    cache: PatternCache,
    /// Recent fault types and the patterns found in them, replaced round-robin.
    type_memo: Vec<(Box<str>, u128)>,
    type_memo_next: usize,
    history: VecDeque<H>,
    history_cap: usize,
    total: u64,
    by_category: [u64; 6],
    by_priority: [u64; 6],
    avg_confidence: f64,
}

impl<H> Default for ClassificationEngine<H> {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY_CAP, DEFAULT_CACHE_CAP)
    }
}

impl<H> ClassificationEngine<H> {
    pub fn new(history_cap: usize, cache_cap: usize) -> Self {
        ClassificationEngine {
            cache: PatternCache::new(cache_cap),
            type_memo: Vec::with_capacity(TYPE_MEMO_CAP),
            type_memo_next: 0,
            history: VecDeque::with_capacity(history_cap.min(1024)),
            history_cap,
            total: 0,
            by_category: [0; 6],
            by_priority: [0; 6],
            avg_confidence: 0.0,
        }
    }

    /// Classifies a fault and counts it in the statistics. The caller then `record`s whatever
    /// it keeps as the history entry.
    pub fn classify(&mut self, fault: &FaultView<'_>) -> Classification {
        let type_found = self.fault_type_patterns(fault.fault_type);
        let description_found = Matcher::get().scan(fault.description);

        let cached = self.cache.get(fault.fault_type, &fault.source);
        let (category, confidence) = match cached {
            Some(hit) => hit,
            None => {
                let scores = category_scores(type_found | description_found, fault.metrics);
                let mut best = 0;
                for i in 1..scores.len() {
                    if scores[i] > scores[best] {
                        best = i;
                    }
                }
                let (category, confidence) = if scores[best] > 0.0 {
                    (SCORED[best], scores[best])
                } else {
                    (FaultCategory::UNKNOWN, 0.0)
                };
                if confidence > CACHE_THRESHOLD {
                    self.cache
                        .insert(fault.fault_type, &fault.source, category, confidence);
                }
                (category, confidence)
            }
        };

        let result = Classification {
            category,
            confidence,
            subcategory: subcategory(category, type_found, description_found),
            priority: repair_priority(category, fault.severity.member(), fault.metrics),
            root_cause: RootCause::analyse(category, fault.metrics),
            cached: cached.is_some(),
        };
        self.count(&result);
        result
    }

    /// The patterns in a fault type. Fault types repeat, so recent ones are remembered.
    fn fault_type_patterns(&mut self, fault_type: &str) -> u128 {
        if let Some((_, found)) = self.type_memo.iter().find(|(t, _)| **t == *fault_type) {
            return *found;
        }
        let found = Matcher::get().scan(fault_type);
        if fault_type.len() <= MAX_CACHED_KEY_LEN {
            let entry = (Box::from(fault_type), found);
            if self.type_memo.len() < TYPE_MEMO_CAP {
                self.type_memo.push(entry);
            } else {
                self.type_memo[self.type_memo_next] = entry;
                self.type_memo_next = (self.type_memo_next + 1) % TYPE_MEMO_CAP;
            }
        }
        found
    }

    fn count(&mut self, result: &Classification) {
        self.total += 1;
        self.by_category[result.category.index()] += 1;
        self.by_priority[result.priority.index()] += 1;
        // The running mean as the reference computes it, for identical float results.
        let n = self.total as f64;
        self.avg_confidence = (self.avg_confidence * (n - 1.0) + result.confidence) / n;
    }

    /// Appends a history entry; returns the entry pushed out, for the caller to drop once any
    /// lock around the engine is released.
    pub fn record(&mut self, item: H) -> Option<H> {
        if self.history_cap == 0 {
            return Some(item);
        }
        self.history.push_back(item);
        if self.history.len() > self.history_cap {
            self.history.pop_front()
        } else {
            None
        }
    }

    /// The newest `limit` entries, oldest first (`limit` 0 gives none).
    pub fn recent(&self, limit: usize) -> impl Iterator<Item = &H> {
        self.history
            .iter()
            .skip(self.history.len().saturating_sub(limit))
    }

    pub fn stats(&self) -> ClassificationStats {
        ClassificationStats {
            total_classifications: self.total,
            by_category: self.by_category,
            by_priority: self.by_priority,
            avg_confidence: self.avg_confidence,
            history_size: self.history.len(),
            pattern_cache_size: self.cache.len,
        }
    }

    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Takes the history out (for a collector that must drop it outside a lock).
    pub fn take_history(&mut self) -> VecDeque<H> {
        std::mem::take(&mut self.history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Engine = ClassificationEngine<u32>;

    /// Test metrics, leaked so views can borrow them for the whole test.
    fn metrics(v: serde_json::Value) -> &'static FaultMetrics {
        Box::leak(Box::new(
            FaultMetrics::from_map(v.as_object().unwrap()).unwrap(),
        ))
    }

    fn fault<'a>(
        fault_type: &'a str,
        severity: FaultSeverity,
        source: FaultSource,
        description: &'a str,
        m: serde_json::Value,
    ) -> FaultView<'a> {
        FaultView {
            fault_type,
            severity: Tag::Member(severity),
            source: Tag::Member(source),
            description,
            metrics: metrics(m),
        }
    }

    /// The faults the detector emits, with its descriptions and metric keys.
    fn detector_faults() -> Vec<(FaultView<'static>, FaultCategory, RepairPriority)> {
        use FaultCategory::*;
        use FaultSeverity as S;
        use FaultSource as Src;
        use RepairPriority as P;
        vec![
            (
                fault(
                    "high_error_rate",
                    S::HIGH,
                    Src::FAZA25_ORCHESTRATOR,
                    "High orchestrator error rate: 60.00%",
                    json!({"error_rate": 0.6}),
                ),
                OPERATIONAL,
                P::HIGH,
            ),
            (
                fault(
                    "high_error_rate",
                    S::MEDIUM,
                    Src::FAZA25_ORCHESTRATOR,
                    "High orchestrator error rate: 40.00%",
                    json!({"error_rate": 0.4}),
                ),
                OPERATIONAL,
                P::MEDIUM,
            ),
            (
                fault(
                    "queue_overload",
                    S::MEDIUM,
                    Src::FAZA25_ORCHESTRATOR,
                    "Task queue overloaded: 150 tasks",
                    json!({"queue_size": 150}),
                ),
                OPERATIONAL,
                P::MEDIUM,
            ),
            (
                fault(
                    "graph_cycle",
                    S::CRITICAL,
                    Src::FAZA27_TASKGRAPH,
                    "Graph contains 2 cycle(s)",
                    json!({"cycle_count": 2}),
                ),
                STRUCTURAL,
                P::IMMEDIATE,
            ),
            (
                fault(
                    "graph_bottleneck",
                    S::MEDIUM,
                    Src::FAZA27_TASKGRAPH,
                    "Graph has 9 bottlenecks",
                    json!({"bottleneck_count": 9}),
                ),
                STRUCTURAL,
                P::HIGH,
            ),
            (
                fault(
                    "agent_failure",
                    S::HIGH,
                    Src::FAZA28_AGENT_LOOP,
                    "High agent failure rate: 30.00%",
                    json!({"failure_rate": 0.3}),
                ),
                AGENT_FAULT,
                P::MEDIUM,
            ),
            (
                fault(
                    "agent_failure",
                    S::HIGH,
                    Src::FAZA28_AGENT_LOOP,
                    "High agent failure rate: 60.00%",
                    json!({"failure_rate": 0.6}),
                ),
                AGENT_FAULT,
                P::URGENT,
            ),
            (
                fault(
                    "scheduler_deadlock",
                    S::CRITICAL,
                    Src::FAZA28_AGENT_LOOP,
                    "Scheduler deadlock detected",
                    json!({"stuck": true}),
                ),
                STRUCTURAL,
                P::IMMEDIATE,
            ),
            (
                fault(
                    "stability_degradation",
                    S::HIGH,
                    Src::FAZA28_5_META_LAYER,
                    "Low stability score: 0.20",
                    json!({"stability_score": 0.2}),
                ),
                STABILITY_THREAT,
                P::IMMEDIATE,
            ),
            (
                fault(
                    "high_anomaly_rate",
                    S::MEDIUM,
                    Src::FAZA28_5_META_LAYER,
                    "High anomaly rate: 90.00%",
                    json!({"anomaly_rate": 0.9}),
                ),
                AGENT_FAULT,
                P::MEDIUM,
            ),
            (
                fault(
                    "governance_violation",
                    S::HIGH,
                    Src::FAZA29_GOVERNANCE,
                    "Governance violations detected: 3",
                    json!({"violation_count": 3}),
                ),
                GOVERNANCE_DRIFT,
                P::HIGH,
            ),
            (
                fault(
                    "governance_violation",
                    S::HIGH,
                    Src::FAZA29_GOVERNANCE,
                    "Governance violations detected: 12",
                    json!({"violation_count": 12}),
                ),
                GOVERNANCE_DRIFT,
                P::URGENT,
            ),
            (
                fault(
                    "system_takeover",
                    S::CRITICAL,
                    Src::FAZA29_GOVERNANCE,
                    "System takeover active",
                    json!({"takeover": true}),
                ),
                STABILITY_THREAT,
                P::IMMEDIATE,
            ),
            (
                fault(
                    "high_risk_score",
                    S::HIGH,
                    Src::FAZA29_GOVERNANCE,
                    "High governance risk score: 80",
                    json!({"risk_score": 80}),
                ),
                GOVERNANCE_DRIFT,
                P::HIGH,
            ),
            (
                fault(
                    "high_risk_score",
                    S::CRITICAL,
                    Src::FAZA29_GOVERNANCE,
                    "High governance risk score: 95",
                    json!({"risk_score": 95}),
                ),
                GOVERNANCE_DRIFT,
                P::IMMEDIATE,
            ),
            (
                fault(
                    "resource_exhaustion",
                    S::CRITICAL,
                    Src::SYSTEM,
                    "System resources exhausted",
                    json!({"cpu": 0.97, "memory": 0.5}),
                ),
                OPERATIONAL,
                P::IMMEDIATE,
            ),
            (
                fault(
                    "predicted_error_spike",
                    S::MEDIUM,
                    Src::SYSTEM,
                    "Error rate trend suggests upcoming spike",
                    json!({"trend": "increasing", "rate": 0.3}),
                ),
                OPERATIONAL,
                P::MEDIUM,
            ),
            (
                fault(
                    "metric_anomaly",
                    S::MEDIUM,
                    Src::SYSTEM,
                    "Metric anomaly: queue_size = 900 (z = 4.1)",
                    json!({"metric": "queue_size", "value": 900}),
                ),
                OPERATIONAL,
                P::MEDIUM,
            ),
        ]
    }

    #[test]
    fn every_detector_fault_gets_a_fitting_category_and_priority() {
        for (view, category, priority) in detector_faults() {
            let r = Engine::default().classify(&view);
            assert_eq!(
                (r.category, r.priority),
                (category, priority),
                "{}: {}",
                view.fault_type,
                view.description
            );
            assert!(r.confidence > 0.0, "{} scored 0", view.fault_type);
        }
    }

    #[test]
    fn exact_scores_follow_the_reference_arithmetic() {
        let mut engine = Engine::default();
        let faults = detector_faults();
        let score = |i: usize, engine: &mut Engine| engine.classify(&faults[i].0).confidence;
        // graph_cycle: "cycle" and "graph" (0.15 + 0.15), then cycle_count > 0 (+0.3).
        assert_eq!(score(3, &mut engine), 0.15 + 0.15 + 0.3);
        // graph_bottleneck: two keywords, and the bottleneck_count alias counts as detected.
        assert_eq!(score(4, &mut engine), 0.15 + 0.15 + 0.2);
        // agent_failure: "agent", then the failure_rate alias above 0.1 (+0.25).
        assert_eq!(score(5, &mut engine), 0.15 + 0.25);
        // governance_violation: two keywords and the violation_count alias (+0.3).
        assert_eq!(score(10, &mut engine), 0.15 + 0.15 + 0.3);
        // resource_exhaustion: "resource", "exhaust", and the `cpu` alias above 0.9 (+0.1).
        assert_eq!(score(15, &mut engine), 0.15 + 0.15 + 0.1);
        // queue_overload: "queue", "overload".
        assert_eq!(score(2, &mut engine), 0.15 + 0.15);
    }

    #[test]
    fn the_score_is_capped_at_one() {
        let view = FaultView {
            fault_type: "cycle_graph_topology_bottleneck_deadlock",
            description: "circular dependency structure node edge",
            metrics: metrics(
                json!({"cycle_count": 3, "graph_complexity": 500, "bottleneck_detected": true}),
            ),
            ..FaultView::default()
        };
        let r = Engine::default().classify(&view);
        assert_eq!((r.category, r.confidence), (FaultCategory::STRUCTURAL, 1.0));
    }

    #[test]
    fn nothing_matched_is_unknown_with_zero_confidence() {
        let view = FaultView {
            fault_type: "mystery",
            description: "something odd",
            ..FaultView::default()
        };
        let r = Engine::default().classify(&view);
        assert_eq!(r.category, FaultCategory::UNKNOWN);
        assert_eq!(r.confidence, 0.0);
        assert_eq!(r.subcategory, "unknown_general");
        assert_eq!(r.priority, RepairPriority::LOW);
        assert_eq!(
            r.root_cause.text("mystery"),
            "Unknown root cause for mystery"
        );
        assert_eq!(r.recommended_actions().count(), 3);
        assert!(r.affected_components(&Tag::Absent).is_empty());
        let severe = FaultView {
            severity: Tag::Member(FaultSeverity::HIGH),
            ..view
        };
        assert_eq!(
            Engine::default().classify(&severe).priority,
            RepairPriority::HIGH
        );
        let info = FaultView {
            severity: Tag::Member(FaultSeverity::INFO),
            ..view
        };
        assert_eq!(
            Engine::default().classify(&info).priority,
            RepairPriority::DEFERRED
        );
    }

    #[test]
    fn ties_go_to_the_earliest_category() {
        // One OPERATIONAL keyword ("queue") and one AGENT_FAULT keyword ("message").
        let view = FaultView {
            fault_type: "message_queue",
            ..FaultView::default()
        };
        let r = Engine::default().classify(&view);
        assert_eq!(
            (r.category, r.confidence),
            (FaultCategory::OPERATIONAL, 0.15)
        );
    }

    #[test]
    fn keywords_match_case_insensitively_and_count_once() {
        let view = FaultView {
            fault_type: "GRAPH_problem",
            description: "Graph graph GRAPH",
            ..FaultView::default()
        };
        assert_eq!(Engine::default().classify(&view).confidence, 0.15);
        // Non-ASCII text is lower-cased in full: the Kelvin sign becomes `k`.
        let kelvin = FaultView {
            fault_type: "x",
            description: "networ\u{212A} bottleneck",
            ..FaultView::default()
        };
        assert_eq!(
            Engine::default().classify(&kelvin).category,
            FaultCategory::STRUCTURAL
        );
    }

    #[test]
    fn subcategories_match_underscores_in_the_type_and_spaces_in_the_description() {
        let by_type = FaultView {
            fault_type: "resource_exhaustion",
            ..FaultView::default()
        };
        assert_eq!(
            Engine::default().classify(&by_type).subcategory,
            "resource_exhaustion"
        );
        let by_description = FaultView {
            fault_type: "x",
            description: "Circular dependency in graph",
            ..FaultView::default()
        };
        assert_eq!(
            Engine::default().classify(&by_description).subcategory,
            "circular_dependency"
        );
        // The spaced form is not looked for in the fault type, nor the underscore form in the text.
        let mixed = FaultView {
            fault_type: "graph",
            description: "circular_dependency",
            ..FaultView::default()
        };
        assert_eq!(
            Engine::default().classify(&mixed).subcategory,
            "structural_general"
        );
    }

    #[test]
    fn priority_reads_severity_values_not_substrings() {
        let base = FaultView {
            fault_type: "queue_overload",
            ..FaultView::default()
        };
        let with = |severity| {
            Engine::default()
                .classify(&FaultView { severity, ..base })
                .priority
        };
        assert_eq!(
            with(Tag::Member(FaultSeverity::CRITICAL)),
            RepairPriority::IMMEDIATE
        );
        assert_eq!(with(Tag::Text("critical")), RepairPriority::IMMEDIATE);
        assert_eq!(
            with(Tag::Text("FaultSeverity.CRITICAL")),
            RepairPriority::IMMEDIATE
        );
        assert_eq!(with(Tag::Text("High")), RepairPriority::HIGH);
        assert_eq!(with(Tag::Member(FaultSeverity::HIGH)), RepairPriority::HIGH);
        // The reference matched substrings: "not critical" was IMMEDIATE, "highway" HIGH.
        assert_eq!(with(Tag::Text("not critical")), RepairPriority::MEDIUM);
        assert_eq!(with(Tag::Text("highway")), RepairPriority::MEDIUM);
        assert_eq!(with(Tag::Absent), RepairPriority::MEDIUM);
    }

    #[test]
    fn priority_escalates_on_metric_levels() {
        let gov = |n: i64| FaultView {
            fault_type: "governance_violation",
            metrics: metrics(json!({"governance_violations": n})),
            ..FaultView::default()
        };
        assert_eq!(
            Engine::default().classify(&gov(10)).priority,
            RepairPriority::HIGH
        );
        assert_eq!(
            Engine::default().classify(&gov(11)).priority,
            RepairPriority::URGENT
        );
        let cycles = |n: i64| FaultView {
            fault_type: "graph_cycle",
            metrics: metrics(json!({"cycle_count": n})),
            ..FaultView::default()
        };
        assert_eq!(
            Engine::default().classify(&cycles(5)).priority,
            RepairPriority::HIGH
        );
        assert_eq!(
            Engine::default().classify(&cycles(6)).priority,
            RepairPriority::URGENT
        );
    }

    #[test]
    fn root_causes_join_phrases_in_order() {
        let view = FaultView {
            fault_type: "task_timeout",
            metrics: metrics(
                json!({"cpu_usage": 0.95, "memory_usage": 0.99, "execution_time": 45}),
            ),
            ..FaultView::default()
        };
        let r = Engine::default().classify(&view);
        assert_eq!(r.category, FaultCategory::OPERATIONAL);
        assert_eq!(
            r.root_cause.text(view.fault_type),
            "CPU resource exhaustion; Memory pressure; Task execution timeout"
        );
        let cycles = FaultView {
            fault_type: "graph_cycle",
            metrics: metrics(json!({"cycle_count": 3, "bottleneck_detected": true})),
            ..FaultView::default()
        };
        let r = Engine::default().classify(&cycles);
        assert_eq!(
            r.root_cause.text("graph_cycle"),
            "Circular dependencies detected (3 cycles); Graph bottleneck"
        );
        let gov = FaultView {
            fault_type: "governance_violation",
            metrics: metrics(json!({"violation_count": 4.0, "override_count": 6})),
            ..FaultView::default()
        };
        let r = Engine::default().classify(&gov);
        assert_eq!(
            r.root_cause.text("governance_violation"),
            "4.0 governance violations; Excessive override usage"
        );
    }

    #[test]
    fn canonical_metric_keys_win_over_aliases() {
        let m = metrics(json!({"failure_rate": 0.9, "agent_failure_rate": 0.05}));
        assert_eq!(m.get(MetricKey::AgentFailureRate), Some(Num::Float(0.05)));
        let m = metrics(json!({"agent_failure_rate": 0.05, "failure_rate": 0.9}));
        assert_eq!(m.get(MetricKey::AgentFailureRate), Some(Num::Float(0.05)));
        let m = metrics(json!({"agent_failure_rate": null, "failure_rate": 0.9}));
        assert_eq!(m.get(MetricKey::AgentFailureRate), Some(Num::Float(0.9)));
        assert!(FaultMetrics::from_map(json!({"cpu_usage": "hot"}).as_object().unwrap()).is_err());
        // A flag takes any value by its truthiness.
        let m = metrics(json!({"oscillation_detected": "yes", "bottleneck_detected": []}));
        assert_eq!(m.get(MetricKey::OscillationDetected), Some(Num::Bool(true)));
        assert_eq!(m.get(MetricKey::BottleneckDetected), Some(Num::Bool(false)));
    }

    #[test]
    fn components_are_ordered_and_deduplicated() {
        let view = FaultView {
            fault_type: "stability_degradation",
            source: Tag::Member(FaultSource::FAZA28_5_META_LAYER),
            metrics: metrics(json!({"stability_score": 0.1})),
            ..FaultView::default()
        };
        let r = Engine::default().classify(&view);
        assert_eq!(
            r.affected_components(&view.source),
            vec![
                "FaultSource.FAZA28_5_META_LAYER",
                "feedback_loop",
                "meta_layer",
                "takeover_manager"
            ]
        );
        assert_eq!(
            r.affected_components(&Tag::Text("meta_layer")),
            vec!["meta_layer", "feedback_loop", "takeover_manager"]
        );
        let actions: Vec<_> = r.recommended_actions().collect();
        assert_eq!(actions.len(), 4);
        assert_eq!(actions[0], IMMEDIATE_ACTION);
        assert_eq!(actions[1], "Engage FAZA 29 takeover if needed");
    }

    fn high_scoring<'a>(fault_type: &'a str, description: &'a str) -> FaultView<'a> {
        FaultView {
            fault_type,
            source: Tag::Member(FaultSource::FAZA27_TASKGRAPH),
            description,
            metrics: metrics(json!({"cycle_count": 2})),
            ..FaultView::default()
        }
    }

    #[test]
    fn cache_keeps_the_real_score_and_keys_by_source_value() {
        let mut engine = Engine::default();
        // cycle, graph, topology, dependency (0.6) + cycle_count (0.3) = 0.9 > 0.85: cached.
        let first = engine.classify(&high_scoring("graph_cycle", "graph topology dependency"));
        assert!(!first.cached);
        assert!((first.confidence - 0.9).abs() < 1e-12 && first.confidence > CACHE_THRESHOLD);
        assert_eq!(engine.stats().pattern_cache_size, 1);
        // Same type and source: the cached category with the score it had, not a fixed 0.95.
        let again = engine.classify(&high_scoring("graph_cycle", ""));
        assert!(again.cached);
        assert_eq!(
            (again.category, again.confidence),
            (FaultCategory::STRUCTURAL, first.confidence)
        );
        // The source given as its value string is the same key.
        let as_text = FaultView {
            source: Tag::Text("faza27_taskgraph"),
            ..high_scoring("graph_cycle", "")
        };
        assert!(engine.classify(&as_text).cached);
        // Another source is another key.
        let other = FaultView {
            source: Tag::Member(FaultSource::SYSTEM),
            ..high_scoring("graph_cycle", "")
        };
        assert!(!engine.classify(&other).cached);
        engine.clear_cache();
        assert_eq!(engine.stats().pattern_cache_size, 0);
        assert!(!engine.classify(&high_scoring("graph_cycle", "")).cached);
    }

    #[test]
    fn cache_is_bounded_and_evicts_the_least_recently_used() {
        let mut engine: Engine = ClassificationEngine::new(10, 2);
        let text = "graph topology dependency";
        engine.classify(&high_scoring("a_cycle", text));
        engine.classify(&high_scoring("b_cycle", text));
        // Touch a_cycle, so b_cycle is the least recently used.
        assert!(engine.classify(&high_scoring("a_cycle", "")).cached);
        engine.classify(&high_scoring("c_cycle", text));
        assert_eq!(engine.stats().pattern_cache_size, 2);
        assert!(engine.classify(&high_scoring("a_cycle", "")).cached);
        assert!(engine.classify(&high_scoring("c_cycle", "")).cached);
        assert!(!engine.classify(&high_scoring("b_cycle", "")).cached);
    }

    #[test]
    fn remembered_fault_types_score_as_when_first_seen() {
        let mut engine = Engine::default();
        let faults = detector_faults();
        let first: Vec<_> = faults.iter().map(|(v, _, _)| engine.classify(v)).collect();
        // Enough other fault types to cycle the memo, then the same faults again.
        for i in 0..(2 * TYPE_MEMO_CAP) {
            let name = format!("filler_{i}_queue");
            engine.classify(&FaultView {
                fault_type: &name,
                ..FaultView::default()
            });
        }
        for ((view, _, _), before) in faults.iter().zip(&first) {
            assert_eq!(engine.classify(view), *before, "{}", view.fault_type);
        }
        assert!(engine.type_memo.len() <= TYPE_MEMO_CAP);
    }

    #[test]
    fn long_fault_types_are_not_cached() {
        let mut engine = Engine::default();
        let long_type = format!("graph_cycle_{}", "x".repeat(MAX_CACHED_KEY_LEN));
        let r = engine.classify(&high_scoring(&long_type, "graph topology dependency"));
        assert!(r.confidence > CACHE_THRESHOLD);
        assert_eq!(engine.stats().pattern_cache_size, 0);
    }

    #[test]
    fn history_is_bounded_and_stats_count_every_classification() {
        let mut engine: Engine = ClassificationEngine::new(3, 10);
        let faults = detector_faults();
        for (i, (view, _, _)) in faults.iter().enumerate().take(5) {
            engine.classify(view);
            let evicted = engine.record(i as u32);
            assert_eq!(evicted, if i >= 3 { Some(i as u32 - 3) } else { None });
        }
        assert_eq!(
            engine.recent(10).copied().collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert_eq!(engine.recent(2).copied().collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(engine.recent(0).count(), 0);
        let stats = engine.stats();
        assert_eq!(stats.total_classifications, 5);
        assert_eq!(stats.history_size, 3);
        assert_eq!(stats.by_category.iter().sum::<u64>(), 5);
        assert_eq!(stats.by_category[FaultCategory::OPERATIONAL.index()], 3);
        assert_eq!(stats.by_category[FaultCategory::STRUCTURAL.index()], 2);
        assert_eq!(stats.by_priority[RepairPriority::IMMEDIATE.index()], 1);
        let confidences = [0.15, 0.15, 0.3, 0.6, 0.5];
        let mut mean = 0.0;
        for (i, c) in confidences.iter().enumerate() {
            let n = (i + 1) as f64;
            mean = (mean * (n - 1.0) + c) / n;
        }
        assert_eq!(stats.avg_confidence, mean);
    }

    #[test]
    fn metadata_labels_use_the_member_form() {
        let tag: Tag<'_, FaultSeverity> = Tag::Member(FaultSeverity::HIGH);
        assert_eq!(tag.label(), "FaultSeverity.HIGH");
        assert_eq!(Tag::<FaultSeverity>::Absent.label(), "unknown");
        assert_eq!(Tag::<FaultSeverity>::Text("weird").label(), "weird");
        assert_eq!(
            OwnedTag::from(Tag::<FaultSource>::Text("x")).as_tag(),
            Tag::Text("x")
        );
    }

    #[test]
    fn fixed_texts_cover_every_static_result_text() {
        let texts: Vec<_> = fixed_texts().collect();
        assert!(texts.contains(&IMMEDIATE_ACTION));
        assert!(texts.contains(&"unknown_general"));
        assert!(texts.contains(&"takeover_manager"));
        assert_eq!(texts.len(), 20 + 6 + 11 + 18 + 1);
    }
}
