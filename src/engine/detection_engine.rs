//! Fault detection: threshold rules over layer metrics, deduplicated active faults,
//! prediction and anomaly detection.
//!
//! # Inputs
//! One metrics map per FAZA layer (25, 27, 28, 28.5, 29). A layer is examined only when its
//! map is non-empty. The rules read the keys listed in [`Layer::keys`]; besides the
//! reference's keys they accept the names the integration layer produces:
//! `governance_violations` for `violation_count`, `anomaly_count` when `anomaly_rate` is
//! absent (a fault from [`ANOMALY_COUNT_THRESHOLD`] anomalies on), `bottleneck_detected` when
//! `bottleneck_count` is absent, and `1 - task_success_rate` when `error_rate` is absent.
//! Every other top-level number of a layer (ints and floats, not bools) feeds the anomaly
//! detector under the name `"<layer>.<key>"` (for example `faza25.queue_size`).
//!
//! # Active faults
//! A condition is a rule at one severity (or an anomalous metric). While it persists it is
//! one active fault with one id: later passes return the same fault, refreshed when the
//! values behind it change. It clears when its layer's metrics are given without it, when it
//! is not observed for [`ACTIVE_WINDOW`] (five minutes, the reference's window), or when the
//! caller clears it by id. A severity change is a new condition: the old fault clears and a
//! new one opens, so an escalation is visible.
//!
//! # Bounds
//! At most one active fault per (rule, severity), [`MAX_ANOMALY_FAULTS`] anomaly faults,
//! [`MAX_FAULT_HISTORY`] faults in the history, and the anomaly detector's own metric cap.
//!
//! The engine is generic over `H`, a handle the binding attaches to each fault (its Python
//! object), so a persisting fault is handed back as the same object. Handles that leave the
//! engine are returned to the caller rather than dropped, so the binding can release them
//! after it has unlocked the engine.

use crate::engine::clock;
use crate::engine::enums::ValueEnum;
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::pyfmt;
use crate::engine::value::{self, Metrics};
use crate::value_enum;
use chrono::NaiveDateTime;
use parking_lot::Mutex;
use serde_json::{Number, Value};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

value_enum! {
    pub enum FaultSeverity {
        CRITICAL = "critical",
        HIGH = "high",
        MEDIUM = "medium",
        LOW = "low",
        INFO = "info",
    }
}

value_enum! {
    pub enum FaultSource {
        FAZA25_ORCHESTRATOR = "faza25_orchestrator",
        FAZA27_TASKGRAPH = "faza27_taskgraph",
        FAZA27_5_OPTIMIZER = "faza27_5_optimizer",
        FAZA28_AGENT_LOOP = "faza28_agent_loop",
        FAZA28_5_META_LAYER = "faza28_5_meta_layer",
        FAZA29_GOVERNANCE = "faza29_governance",
        SYSTEM = "system",
    }
}

/// How long a fault stays active without being observed again (the reference's window).
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(300);
/// Faults kept in the history (the reference's deque maxlen).
pub const MAX_FAULT_HISTORY: usize = 1000;
/// Active anomaly faults at most; further anomalies are counted but open no fault.
pub const MAX_ANOMALY_FAULTS: usize = 256;
/// `anomaly_count` (used when `anomaly_rate` is absent) raises a fault from this many recent
/// anomalies on: the health engine's penalty for anomalies is already at its maximum at 4.
pub const ANOMALY_COUNT_THRESHOLD: f64 = 5.0;
/// `predict_failures` looks at this many of the newest entries.
pub const PREDICTION_WINDOW: usize = 10;

// ------------------------------------------------------------------------------------------
// Layers and the keys the rules read
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Faza25,
    Faza27,
    Faza28,
    Faza28_5,
    Faza29,
}

/// A metric key a rule reads: its layer, its position in that layer's key list, its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub layer: Layer,
    pub slot: u8,
    pub name: &'static str,
}

/// The keys of the rules, per layer. `slot` is the index in the layer's list.
pub mod keys {
    use super::{Key, Layer::*};
    const fn key(layer: super::Layer, slot: u8, name: &'static str) -> Key {
        Key { layer, slot, name }
    }
    pub const ERROR_RATE: Key = key(Faza25, 0, "error_rate");
    pub const TASK_SUCCESS_RATE: Key = key(Faza25, 1, "task_success_rate");
    pub const FAILED_TASK_IDS: Key = key(Faza25, 2, "failed_task_ids");
    pub const TASK_ID: Key = key(Faza25, 3, "task_id");
    pub const QUEUE_SIZE: Key = key(Faza25, 4, "queue_size");
    pub const CPU_USAGE: Key = key(Faza25, 5, "cpu_usage");
    pub const MEMORY_USAGE: Key = key(Faza25, 6, "memory_usage");

    pub const CYCLE_COUNT: Key = key(Faza27, 0, "cycle_count");
    pub const CYCLES: Key = key(Faza27, 1, "cycles");
    pub const BOTTLENECK_COUNT: Key = key(Faza27, 2, "bottleneck_count");
    pub const BOTTLENECK_DETECTED: Key = key(Faza27, 3, "bottleneck_detected");
    pub const BOTTLENECK_NODE: Key = key(Faza27, 4, "bottleneck_node");
    pub const GRAPH_COMPLEXITY: Key = key(Faza27, 5, "graph_complexity");

    pub const AGENT_FAILURE_RATE: Key = key(Faza28, 0, "agent_failure_rate");
    pub const FAILING_AGENTS: Key = key(Faza28, 1, "failing_agents");
    pub const AGENT_ID: Key = key(Faza28, 2, "agent_id");
    pub const SCHEDULER_STUCK: Key = key(Faza28, 3, "scheduler_stuck");
    pub const STUCK_TASK_IDS: Key = key(Faza28, 4, "stuck_task_ids");

    pub const STABILITY_SCORE: Key = key(Faza28_5, 0, "stability_score");
    pub const ANOMALY_RATE: Key = key(Faza28_5, 1, "anomaly_rate");
    pub const ANOMALY_COUNT: Key = key(Faza28_5, 2, "anomaly_count");

    pub const VIOLATION_COUNT: Key = key(Faza29, 0, "violation_count");
    pub const GOVERNANCE_VIOLATIONS: Key = key(Faza29, 1, "governance_violations");
    pub const OVERRIDE_COUNT: Key = key(Faza29, 2, "override_count");
    pub const TAKEOVER_ACTIVE: Key = key(Faza29, 3, "takeover_active");
    pub const RISK_SCORE: Key = key(Faza29, 4, "risk_score");

    pub(super) const FAZA25: &[Key] = &[
        ERROR_RATE,
        TASK_SUCCESS_RATE,
        FAILED_TASK_IDS,
        TASK_ID,
        QUEUE_SIZE,
        CPU_USAGE,
        MEMORY_USAGE,
    ];
    pub(super) const FAZA27: &[Key] = &[
        CYCLE_COUNT,
        CYCLES,
        BOTTLENECK_COUNT,
        BOTTLENECK_DETECTED,
        BOTTLENECK_NODE,
        GRAPH_COMPLEXITY,
    ];
    pub(super) const FAZA28: &[Key] = &[
        AGENT_FAILURE_RATE,
        FAILING_AGENTS,
        AGENT_ID,
        SCHEDULER_STUCK,
        STUCK_TASK_IDS,
    ];
    pub(super) const FAZA28_5: &[Key] = &[STABILITY_SCORE, ANOMALY_RATE, ANOMALY_COUNT];
    pub(super) const FAZA29: &[Key] = &[
        VIOLATION_COUNT,
        GOVERNANCE_VIOLATIONS,
        OVERRIDE_COUNT,
        TAKEOVER_ACTIVE,
        RISK_SCORE,
    ];
}

/// The most keys one layer's rules read.
pub const MAX_LAYER_KEYS: usize = 8;

impl Layer {
    pub const ALL: [Layer; 5] = [
        Layer::Faza25,
        Layer::Faza27,
        Layer::Faza28,
        Layer::Faza28_5,
        Layer::Faza29,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The `detect_faults` parameter that carries this layer.
    pub fn param(self) -> &'static str {
        match self {
            Layer::Faza25 => "faza25_metrics",
            Layer::Faza27 => "faza27_metrics",
            Layer::Faza28 => "faza28_metrics",
            Layer::Faza28_5 => "faza28_5_metrics",
            Layer::Faza29 => "faza29_metrics",
        }
    }

    /// Short name, the prefix of this layer's anomaly-detector metric names.
    pub fn name(self) -> &'static str {
        match self {
            Layer::Faza25 => "faza25",
            Layer::Faza27 => "faza27",
            Layer::Faza28 => "faza28",
            Layer::Faza28_5 => "faza28_5",
            Layer::Faza29 => "faza29",
        }
    }

    pub fn source(self) -> FaultSource {
        match self {
            Layer::Faza25 => FaultSource::FAZA25_ORCHESTRATOR,
            Layer::Faza27 => FaultSource::FAZA27_TASKGRAPH,
            Layer::Faza28 => FaultSource::FAZA28_AGENT_LOOP,
            Layer::Faza28_5 => FaultSource::FAZA28_5_META_LAYER,
            Layer::Faza29 => FaultSource::FAZA29_GOVERNANCE,
        }
    }

    /// The keys this layer's rules read.
    pub fn keys(self) -> &'static [Key] {
        match self {
            Layer::Faza25 => keys::FAZA25,
            Layer::Faza27 => keys::FAZA27,
            Layer::Faza28 => keys::FAZA28,
            Layer::Faza28_5 => keys::FAZA28_5,
            Layer::Faza29 => keys::FAZA29,
        }
    }

    /// The key of this layer called `name`, if a rule reads it.
    pub fn key(self, name: &str) -> Option<Key> {
        self.keys().iter().copied().find(|k| k.name == name)
    }

    fn rules(self) -> &'static [Rule] {
        use Rule::*;
        match self {
            Layer::Faza25 => &[HighErrorRate, QueueOverload, ResourceExhaustion],
            Layer::Faza27 => &[GraphCycle, GraphBottleneck],
            Layer::Faza28 => &[AgentFailure, SchedulerDeadlock],
            Layer::Faza28_5 => &[StabilityDegradation, HighAnomalyRate],
            Layer::Faza29 => &[GovernanceViolation, SystemTakeover, HighRiskScore],
        }
    }

    /// Id prefix of this layer's anomaly faults.
    fn anomaly_prefix(self) -> &'static str {
        match self {
            Layer::Faza25 => "f25_metric_",
            Layer::Faza27 => "f27_metric_",
            Layer::Faza28 => "f28_metric_",
            Layer::Faza28_5 => "f285_metric_",
            Layer::Faza29 => "f29_metric_",
        }
    }
}

/// The values one layer gave for the keys its rules read (absent keys are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerValues {
    values: [Option<Value>; MAX_LAYER_KEYS],
}

impl LayerValues {
    pub fn get(&self, key: Key) -> Option<&Value> {
        self.values[key.slot as usize].as_ref()
    }

    pub fn set(&mut self, key: Key, value: Value) {
        self.values[key.slot as usize] = Some(value);
    }

    pub fn set_slot(&mut self, slot: usize, value: Value) {
        if slot < MAX_LAYER_KEYS {
            self.values[slot] = Some(value);
        }
    }

    pub fn from_map(layer: Layer, metrics: &Metrics) -> Self {
        let mut out = LayerValues::default();
        for key in layer.keys() {
            if let Some(v) = metrics.get(key.name) {
                out.set(*key, v.clone());
            }
        }
        out
    }

    /// A number, as Python compares it (bools count); `None` when absent or None.
    fn number(&self, key: Key) -> EngineResult<Option<f64>> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => value::as_number(v).map(Some).ok_or_else(|| {
                EngineError::wrong_type(format!(
                    "{}['{}'] must be a number, got {}",
                    key.layer.param(),
                    key.name,
                    value::type_name(v)
                ))
            }),
        }
    }

    fn present(&self, key: Key) -> bool {
        !matches!(self.get(key), None | Some(Value::Null))
    }

    fn truthy(&self, key: Key) -> bool {
        self.get(key).is_some_and(value::truthy)
    }

    /// The value as given, or `default` when absent.
    fn value_or(&self, key: Key, default: f64) -> Value {
        match self.get(key) {
            Some(v) if !v.is_null() => v.clone(),
            _ => float_value(default),
        }
    }

    /// Copies a reading the classifier uses into `metrics` when the layer gave it as a number;
    /// anything else is left out rather than handed on to be refused downstream.
    fn pass_through_number(&self, key: Key, metrics: &mut Metrics) {
        if let Some(v) = self.get(key) {
            if value::as_number(v).is_some() {
                metrics.insert(key.name.to_string(), v.clone());
            }
        }
    }

    /// Copies the key into `metrics` when the layer gave it (ids a repair needs).
    fn pass_through(&self, key: Key, metrics: &mut Metrics) {
        if let Some(v) = self.get(key) {
            if !v.is_null() {
                metrics.insert(key.name.to_string(), v.clone());
            }
        }
    }
}

fn float_value(v: f64) -> Value {
    Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The metric name of a number fed to the anomaly detector: a rule key, or any other key.
pub type MetricName = Cow<'static, str>;

/// What one `detect_faults` call was given.
#[derive(Debug, Default, Clone)]
pub struct DetectInput {
    layers: [Option<LayerValues>; 5],
    /// Every top-level number of the given layers, in order, for the anomaly detector.
    numbers: Vec<LayerNumber>,
}

/// A number a layer gave, for the anomaly detector.
#[derive(Debug, Clone)]
pub struct LayerNumber {
    pub layer: Layer,
    /// The key's slot when a rule reads it (see [`Layer::keys`]).
    pub slot: Option<u8>,
    pub name: MetricName,
    pub number: Number,
}

impl DetectInput {
    pub fn set_layer(&mut self, layer: Layer, values: LayerValues) {
        self.layers[layer.index()] = Some(values);
    }

    pub fn layer(&self, layer: Layer) -> Option<&LayerValues> {
        self.layers[layer.index()].as_ref()
    }

    /// The layer's values (marking the layer as given) and the list of numbers, to fill both
    /// in one pass over a layer's metrics.
    pub fn layer_mut(&mut self, layer: Layer) -> (&mut LayerValues, &mut Vec<LayerNumber>) {
        (
            self.layers[layer.index()].get_or_insert_with(LayerValues::default),
            &mut self.numbers,
        )
    }

    pub fn with_capacity(numbers: usize) -> Self {
        DetectInput {
            layers: Default::default(),
            numbers: Vec::with_capacity(numbers),
        }
    }

    pub fn push_number(&mut self, layer: Layer, name: MetricName, number: Number) {
        let slot = layer.key(&name).map(|k| k.slot);
        self.numbers.push(LayerNumber {
            layer,
            slot,
            name,
            number,
        });
    }

    /// Builds the input from plain maps, the way the binding does from Python dicts: an
    /// empty map counts as not given, and every number (not bool) feeds the detector.
    pub fn from_maps(layers: [Option<&Metrics>; 5]) -> Self {
        let mut input = DetectInput::default();
        for (layer, metrics) in Layer::ALL.into_iter().zip(layers) {
            let Some(metrics) = metrics.filter(|m| !m.is_empty()) else {
                continue;
            };
            input.set_layer(layer, LayerValues::from_map(layer, metrics));
            for (name, v) in metrics {
                if let Value::Number(n) = v {
                    let (slot, name): (_, MetricName) = match layer.key(name) {
                        Some(k) => (Some(k.slot), Cow::Borrowed(k.name)),
                        None => (None, Cow::Owned(name.clone())),
                    };
                    input.numbers.push(LayerNumber {
                        layer,
                        slot,
                        name,
                        number: n.clone(),
                    });
                }
            }
        }
        input
    }
}

// ------------------------------------------------------------------------------------------
// Rules
// ------------------------------------------------------------------------------------------

/// Every detection rule, in evaluation order (layer by layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    HighErrorRate,
    QueueOverload,
    ResourceExhaustion,
    GraphCycle,
    GraphBottleneck,
    AgentFailure,
    SchedulerDeadlock,
    StabilityDegradation,
    HighAnomalyRate,
    GovernanceViolation,
    SystemTakeover,
    HighRiskScore,
}

pub const ERROR_RATE_THRESHOLD: f64 = 0.3;
pub const ERROR_RATE_HIGH: f64 = 0.5;
pub const QUEUE_SIZE_THRESHOLD: f64 = 100.0;
pub const RESOURCE_THRESHOLD: f64 = 0.95;
pub const BOTTLENECK_THRESHOLD: f64 = 5.0;
pub const AGENT_FAILURE_THRESHOLD: f64 = 0.2;
pub const STABILITY_THRESHOLD: f64 = 0.5;
pub const ANOMALY_RATE_THRESHOLD: f64 = 0.4;
pub const RISK_HIGH: f64 = 70.0;
pub const RISK_CRITICAL: f64 = 90.0;

impl Rule {
    pub const ALL: [Rule; 12] = [
        Rule::HighErrorRate,
        Rule::QueueOverload,
        Rule::ResourceExhaustion,
        Rule::GraphCycle,
        Rule::GraphBottleneck,
        Rule::AgentFailure,
        Rule::SchedulerDeadlock,
        Rule::StabilityDegradation,
        Rule::HighAnomalyRate,
        Rule::GovernanceViolation,
        Rule::SystemTakeover,
        Rule::HighRiskScore,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The rule's name, which is also the type of the faults it raises.
    pub fn name(self) -> &'static str {
        self.fault_type()
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn fault_type(self) -> &'static str {
        match self {
            Rule::HighErrorRate => "high_error_rate",
            Rule::QueueOverload => "queue_overload",
            Rule::ResourceExhaustion => "resource_exhaustion",
            Rule::GraphCycle => "graph_cycle",
            Rule::GraphBottleneck => "graph_bottleneck",
            Rule::AgentFailure => "agent_failure",
            Rule::SchedulerDeadlock => "scheduler_deadlock",
            Rule::StabilityDegradation => "stability_degradation",
            Rule::HighAnomalyRate => "high_anomaly_rate",
            Rule::GovernanceViolation => "governance_violation",
            Rule::SystemTakeover => "system_takeover",
            Rule::HighRiskScore => "high_risk_score",
        }
    }

    pub fn layer(self) -> Layer {
        match self {
            Rule::HighErrorRate | Rule::QueueOverload | Rule::ResourceExhaustion => Layer::Faza25,
            Rule::GraphCycle | Rule::GraphBottleneck => Layer::Faza27,
            Rule::AgentFailure | Rule::SchedulerDeadlock => Layer::Faza28,
            Rule::StabilityDegradation | Rule::HighAnomalyRate => Layer::Faza28_5,
            Rule::GovernanceViolation | Rule::SystemTakeover | Rule::HighRiskScore => Layer::Faza29,
        }
    }

    pub fn source(self) -> FaultSource {
        match self {
            // Host resources are not a layer's own fault (the reference's rule said SYSTEM).
            Rule::ResourceExhaustion => FaultSource::SYSTEM,
            other => other.layer().source(),
        }
    }

    pub fn id_prefix(self) -> &'static str {
        match self {
            Rule::HighErrorRate => "f25_err_",
            Rule::QueueOverload => "f25_queue_",
            Rule::ResourceExhaustion => "resource_",
            Rule::GraphCycle => "f27_cycle_",
            Rule::GraphBottleneck => "f27_bottleneck_",
            Rule::AgentFailure => "f28_agent_",
            Rule::SchedulerDeadlock => "f28_deadlock_",
            Rule::StabilityDegradation => "f285_stability_",
            Rule::HighAnomalyRate => "f285_anomaly_",
            Rule::GovernanceViolation => "f29_violation_",
            Rule::SystemTakeover => "f29_takeover_",
            Rule::HighRiskScore => "f29_risk_",
        }
    }

    /// Every key the rule reads. A persisting fault is refreshed only when one of them
    /// changed, which keeps a steady condition free of any formatting work.
    fn inputs(self) -> &'static [Key] {
        use keys::*;
        match self {
            Rule::HighErrorRate => &[ERROR_RATE, TASK_SUCCESS_RATE, FAILED_TASK_IDS, TASK_ID],
            Rule::QueueOverload => &[QUEUE_SIZE],
            Rule::ResourceExhaustion => &[CPU_USAGE, MEMORY_USAGE],
            Rule::GraphCycle => &[CYCLE_COUNT, CYCLES],
            Rule::GraphBottleneck => &[
                BOTTLENECK_COUNT,
                BOTTLENECK_DETECTED,
                BOTTLENECK_NODE,
                GRAPH_COMPLEXITY,
            ],
            Rule::AgentFailure => &[AGENT_FAILURE_RATE, FAILING_AGENTS, AGENT_ID],
            Rule::SchedulerDeadlock => &[SCHEDULER_STUCK, STUCK_TASK_IDS],
            Rule::StabilityDegradation => &[STABILITY_SCORE],
            Rule::HighAnomalyRate => &[ANOMALY_RATE, ANOMALY_COUNT],
            Rule::GovernanceViolation => &[VIOLATION_COUNT, GOVERNANCE_VIOLATIONS, OVERRIDE_COUNT],
            Rule::SystemTakeover => &[TAKEOVER_ACTIVE],
            Rule::HighRiskScore => &[RISK_SCORE],
        }
    }

    /// The severity of the condition when it holds. Fails (naming the key) when a key the
    /// rule compares holds something that is not a number.
    pub fn check(self, m: &LayerValues) -> EngineResult<Option<FaultSeverity>> {
        use keys::*;
        use FaultSeverity::*;
        let severity = match self {
            Rule::HighErrorRate => {
                let rate = error_rate(m)?.map(|(v, _)| v).unwrap_or(0.0);
                (rate > ERROR_RATE_THRESHOLD).then_some(if rate > ERROR_RATE_HIGH {
                    HIGH
                } else {
                    MEDIUM
                })
            }
            Rule::QueueOverload => {
                (m.number(QUEUE_SIZE)?.unwrap_or(0.0) > QUEUE_SIZE_THRESHOLD).then_some(MEDIUM)
            }
            Rule::ResourceExhaustion => exhausted_resource(m)?.map(|_| CRITICAL),
            Rule::GraphCycle => (m.number(CYCLE_COUNT)?.unwrap_or(0.0) > 0.0).then_some(CRITICAL),
            Rule::GraphBottleneck => {
                let hit = match m.number(BOTTLENECK_COUNT)? {
                    Some(count) => count > BOTTLENECK_THRESHOLD,
                    None => m.truthy(BOTTLENECK_DETECTED),
                };
                hit.then_some(MEDIUM)
            }
            Rule::AgentFailure => (m.number(AGENT_FAILURE_RATE)?.unwrap_or(0.0)
                > AGENT_FAILURE_THRESHOLD)
                .then_some(HIGH),
            Rule::SchedulerDeadlock => m.truthy(SCHEDULER_STUCK).then_some(CRITICAL),
            Rule::StabilityDegradation => {
                (m.number(STABILITY_SCORE)?.unwrap_or(1.0) < STABILITY_THRESHOLD).then_some(HIGH)
            }
            Rule::HighAnomalyRate => {
                let hit = match m.number(ANOMALY_RATE)? {
                    Some(rate) => rate > ANOMALY_RATE_THRESHOLD,
                    None => m.number(ANOMALY_COUNT)?.unwrap_or(0.0) >= ANOMALY_COUNT_THRESHOLD,
                };
                hit.then_some(MEDIUM)
            }
            Rule::GovernanceViolation => (violations(m)?.unwrap_or(0.0) > 0.0).then_some(HIGH),
            Rule::SystemTakeover => m.truthy(TAKEOVER_ACTIVE).then_some(CRITICAL),
            Rule::HighRiskScore => {
                let risk = m.number(RISK_SCORE)?.unwrap_or(0.0);
                if risk > RISK_CRITICAL {
                    Some(CRITICAL)
                } else if risk > RISK_HIGH {
                    Some(HIGH)
                } else {
                    None
                }
            }
        };
        Ok(severity)
    }

    /// The description and metrics of a fault raised by this rule. Call only after `check`
    /// returned a severity (so every key it reads holds a number where one is needed).
    fn describe(self, m: &LayerValues) -> (String, Metrics) {
        use keys::*;
        let mut metrics = Metrics::new();
        let num = |k: Key, default: f64| m.number(k).ok().flatten().unwrap_or(default);
        let description = match self {
            Rule::HighErrorRate => {
                let (rate, derived) = error_rate(m).ok().flatten().unwrap_or((0.0, false));
                if derived {
                    metrics.insert("error_rate".into(), float_value(rate));
                    metrics.insert(
                        "task_success_rate".into(),
                        m.value_or(TASK_SUCCESS_RATE, 1.0),
                    );
                } else {
                    metrics.insert("error_rate".into(), m.value_or(ERROR_RATE, rate));
                }
                m.pass_through(FAILED_TASK_IDS, &mut metrics);
                m.pass_through(TASK_ID, &mut metrics);
                format!("High orchestrator error rate: {}", pyfmt::percent(rate, 2))
            }
            Rule::QueueOverload => {
                let v = m.value_or(QUEUE_SIZE, 0.0);
                let text = format!("Task queue overloaded: {} tasks", value::py_str(&v));
                metrics.insert("queue_size".into(), v);
                text
            }
            Rule::ResourceExhaustion => {
                let (resource, usage) =
                    exhausted_resource(m).ok().flatten().unwrap_or(("cpu", 0.0));
                let cpu = m.value_or(CPU_USAGE, 0.0);
                let memory = m.value_or(MEMORY_USAGE, 0.0);
                // The reference's keys, the classification's keys, and the scheduler repair's.
                metrics.insert("cpu".into(), cpu.clone());
                metrics.insert("memory".into(), memory.clone());
                metrics.insert("cpu_usage".into(), cpu);
                metrics.insert("memory_usage".into(), memory);
                metrics.insert("resource_type".into(), Value::String(resource.into()));
                metrics.insert("usage".into(), float_value(usage));
                format!(
                    "System resources exhausted: {resource} usage at {}",
                    pyfmt::percent(usage, 2)
                )
            }
            Rule::GraphCycle => {
                let v = m.value_or(CYCLE_COUNT, 0.0);
                let text = format!("Graph contains {} cycle(s)", value::py_str(&v));
                metrics.insert("cycle_count".into(), v);
                m.pass_through(CYCLES, &mut metrics);
                text
            }
            Rule::GraphBottleneck => {
                let text = if m.present(BOTTLENECK_COUNT) {
                    let v = m.value_or(BOTTLENECK_COUNT, 0.0);
                    let text = format!("Graph has {} bottlenecks", value::py_str(&v));
                    metrics.insert("bottleneck_count".into(), v);
                    text
                } else {
                    "Graph bottleneck detected".to_string()
                };
                // The classification reads the flag, whichever key raised the fault.
                metrics.insert("bottleneck_detected".into(), Value::Bool(true));
                m.pass_through(BOTTLENECK_NODE, &mut metrics);
                m.pass_through_number(GRAPH_COMPLEXITY, &mut metrics);
                text
            }
            Rule::AgentFailure => {
                let rate = num(AGENT_FAILURE_RATE, 0.0);
                let v = m.value_or(AGENT_FAILURE_RATE, 0.0);
                // `failure_rate` is the reference's key, `agent_failure_rate` the classifier's.
                metrics.insert("failure_rate".into(), v.clone());
                metrics.insert("agent_failure_rate".into(), v);
                m.pass_through(FAILING_AGENTS, &mut metrics);
                m.pass_through(AGENT_ID, &mut metrics);
                format!("High agent failure rate: {}", pyfmt::percent(rate, 2))
            }
            Rule::SchedulerDeadlock => {
                metrics.insert("stuck".into(), Value::Bool(true));
                m.pass_through(STUCK_TASK_IDS, &mut metrics);
                "Scheduler deadlock detected".to_string()
            }
            Rule::StabilityDegradation => {
                let score = num(STABILITY_SCORE, 1.0);
                metrics.insert("stability_score".into(), m.value_or(STABILITY_SCORE, 1.0));
                format!("Low stability score: {}", pyfmt::fixed(score, 2))
            }
            Rule::HighAnomalyRate => {
                if m.present(ANOMALY_RATE) {
                    let rate = num(ANOMALY_RATE, 0.0);
                    metrics.insert("anomaly_rate".into(), m.value_or(ANOMALY_RATE, 0.0));
                    format!("High anomaly rate: {}", pyfmt::percent(rate, 2))
                } else {
                    let v = m.value_or(ANOMALY_COUNT, 0.0);
                    let text = format!("High anomaly count: {}", value::py_str(&v));
                    metrics.insert("anomaly_count".into(), v);
                    text
                }
            }
            Rule::GovernanceViolation => {
                let key = if m.present(VIOLATION_COUNT) {
                    VIOLATION_COUNT
                } else {
                    GOVERNANCE_VIOLATIONS
                };
                let v = m.value_or(key, 0.0);
                let text = format!("Governance violations detected: {}", value::py_str(&v));
                // `violation_count` is the reference's key; classification and repair read
                // `governance_violations`.
                metrics.insert("violation_count".into(), v.clone());
                metrics.insert("governance_violations".into(), v);
                m.pass_through_number(OVERRIDE_COUNT, &mut metrics);
                text
            }
            Rule::SystemTakeover => {
                metrics.insert("takeover".into(), Value::Bool(true));
                "System takeover active".to_string()
            }
            Rule::HighRiskScore => {
                let v = m.value_or(RISK_SCORE, 0.0);
                let text = format!("High governance risk score: {}", value::py_str(&v));
                metrics.insert("risk_score".into(), v);
                text
            }
        };
        (description, metrics)
    }
}

impl Rule {
    /// Evaluates the rule on one layer's values as a fault of its own (not tracked by any
    /// engine).
    pub fn evaluate(self, values: &LayerValues) -> EngineResult<Option<Fault>> {
        let Some(severity) = self.check(values)? else {
            return Ok(None);
        };
        let (description, metrics) = self.describe(values);
        Ok(Some(Fault {
            serial: 0,
            fault_id: clock::unique_id(self.id_prefix()),
            source: self.source(),
            severity,
            fault_type: self.fault_type(),
            description,
            metrics,
            timestamp: clock::now(),
            predicted: false,
        }))
    }
}

/// The orchestrator error rate and whether it was derived from `task_success_rate`.
fn error_rate(m: &LayerValues) -> EngineResult<Option<(f64, bool)>> {
    if let Some(rate) = m.number(keys::ERROR_RATE)? {
        return Ok(Some((rate, false)));
    }
    Ok(m.number(keys::TASK_SUCCESS_RATE)?
        .map(|success| (1.0 - success, true)))
}

/// The exhausted resource (the more used one when both are) and its usage.
fn exhausted_resource(m: &LayerValues) -> EngineResult<Option<(&'static str, f64)>> {
    let cpu = m.number(keys::CPU_USAGE)?.unwrap_or(0.0);
    let memory = m.number(keys::MEMORY_USAGE)?.unwrap_or(0.0);
    Ok(
        match (cpu > RESOURCE_THRESHOLD, memory > RESOURCE_THRESHOLD) {
            (false, false) => None,
            (true, false) => Some(("cpu", cpu)),
            (false, true) => Some(("memory", memory)),
            (true, true) => Some(if memory > cpu {
                ("memory", memory)
            } else {
                ("cpu", cpu)
            }),
        },
    )
}

fn violations(m: &LayerValues) -> EngineResult<Option<f64>> {
    match m.number(keys::VIOLATION_COUNT)? {
        Some(v) => Ok(Some(v)),
        None => m.number(keys::GOVERNANCE_VIOLATIONS),
    }
}

// ------------------------------------------------------------------------------------------
// Faults
// ------------------------------------------------------------------------------------------

/// One detected (or predicted) fault. Shared immutably; a refresh makes a new value with the
/// same id, serial and timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Order of detection within this engine (0 for faults it does not track).
    pub serial: u64,
    pub fault_id: String,
    pub source: FaultSource,
    pub severity: FaultSeverity,
    pub fault_type: &'static str,
    pub description: String,
    pub metrics: Metrics,
    /// When the condition was first detected.
    pub timestamp: NaiveDateTime,
    pub predicted: bool,
}

impl Fault {
    /// The same fault (id, serial, first-detection time) described by newer values.
    fn refreshed(&self, description: String, metrics: Metrics) -> Fault {
        Fault {
            serial: self.serial,
            fault_id: self.fault_id.clone(),
            source: self.source,
            severity: self.severity,
            fault_type: self.fault_type,
            description,
            metrics,
            timestamp: self.timestamp,
            predicted: self.predicted,
        }
    }
}

/// How a fault returned by a pass relates to the previous passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Opened by this pass.
    New,
    /// Seen before, with the same values.
    Same,
    /// Seen before; its description and metrics were refreshed from new values.
    Updated,
}

/// A fault returned by a pass, with the handle attached to it (if any).
#[derive(Debug)]
pub struct Detected<H> {
    pub fault: Arc<Fault>,
    pub handle: Option<H>,
    pub change: Change,
}

/// The result of one detection pass.
#[derive(Debug)]
pub struct Detection<H> {
    /// The faults present in the given layers, in rule order, anomalies last.
    pub faults: Vec<Detected<H>>,
    /// Handles of faults that left the engine (cleared, expired or out of the history).
    pub dropped: Vec<H>,
    pub opened: usize,
    pub cleared: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetectionStats {
    /// New faults detected (a persisting condition counts once).
    pub faults_detected: u64,
    pub critical_faults: u64,
    pub high_faults: u64,
    pub medium_faults: u64,
    pub low_faults: u64,
    /// Anomalous values the anomaly detector reported during detection passes.
    pub anomalies_detected: u64,
    pub predictions_made: u64,
    /// Detection passes run (`detect_faults` calls that succeeded).
    pub total_detections: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statistics {
    pub stats: DetectionStats,
    pub active_faults: usize,
    pub critical_active: usize,
}

#[derive(Debug)]
struct Active<H> {
    fault: Arc<Fault>,
    handle: Option<H>,
    layer: Layer,
    /// The values the fault was built from, to tell a steady condition from a changed one.
    inputs: Vec<Option<Value>>,
    last_seen: Instant,
    seen_pass: u64,
}

/// Number of (rule, severity) conditions.
const RULE_SLOTS: usize = Rule::ALL.len() * FaultSeverity::ALL.len();

pub struct DetectionEngine<H = ()> {
    /// One slot per (rule, severity).
    rule_faults: Vec<Option<Active<H>>>,
    /// Anomaly faults per (layer, metric).
    anomaly_faults: HashMap<(Layer, String), Active<H>>,
    history: VecDeque<(Arc<Fault>, Option<H>)>,
    stats: DetectionStats,
    anomaly: Arc<Mutex<AnomalyDetector>>,
    window: Duration,
    pass: u64,
    next_serial: u64,
    /// Scratch for "<layer>.<key>" detector names.
    name_buf: String,
    /// Where each rule key's series is in the anomaly detector, to skip the name lookup.
    series_at: [[Option<SeriesRef>; MAX_LAYER_KEYS]; 5],
}

impl<H: Clone> Default for DetectionEngine<H> {
    fn default() -> Self {
        Self::new(Arc::new(Mutex::new(AnomalyDetector::default())))
    }
}

impl<H: Clone> DetectionEngine<H> {
    pub fn new(anomaly: Arc<Mutex<AnomalyDetector>>) -> Self {
        DetectionEngine {
            rule_faults: (0..RULE_SLOTS).map(|_| None).collect(),
            anomaly_faults: HashMap::new(),
            history: VecDeque::new(),
            stats: DetectionStats::default(),
            anomaly,
            window: ACTIVE_WINDOW,
            pass: 0,
            next_serial: 1,
            name_buf: String::new(),
            series_at: [[None; MAX_LAYER_KEYS]; 5],
        }
    }

    /// Changes how long an unobserved fault stays active (default five minutes).
    pub fn set_active_window(&mut self, window: Duration) {
        self.window = window;
    }

    pub fn active_window(&self) -> Duration {
        self.window
    }

    pub fn anomaly_detector(&self) -> &Arc<Mutex<AnomalyDetector>> {
        &self.anomaly
    }

    pub fn set_anomaly_detector(&mut self, detector: Arc<Mutex<AnomalyDetector>>) {
        self.anomaly = detector;
        self.series_at = [[None; MAX_LAYER_KEYS]; 5];
    }

    pub fn detect(&mut self, input: &DetectInput) -> EngineResult<Detection<H>> {
        self.detect_at(input, Instant::now())
    }

    /// One detection pass at time `now`. Nothing changes when it fails.
    pub fn detect_at(&mut self, input: &DetectInput, now: Instant) -> EngineResult<Detection<H>> {
        // Evaluate every rule first: a bad value anywhere leaves the engine untouched.
        let mut hits: Vec<(Rule, FaultSeverity)> = Vec::new();
        for layer in Layer::ALL {
            if let Some(values) = input.layer(layer) {
                for rule in layer.rules() {
                    if let Some(severity) = rule.check(values)? {
                        hits.push((*rule, severity));
                    }
                }
            }
        }
        let anomalies = self.feed_anomaly_detector(input);

        self.pass += 1;
        self.stats.total_detections += 1;
        self.stats.anomalies_detected += anomalies.len() as u64;
        let mut out = Detection {
            faults: Vec::with_capacity(hits.len() + anomalies.len()),
            dropped: Vec::new(),
            opened: 0,
            cleared: 0,
        };

        for (rule, severity) in hits {
            let Some(values) = input.layer(rule.layer()) else {
                continue;
            };
            let slot = rule.index() * FaultSeverity::ALL.len() + severity.index();
            let pass = self.pass;
            let window = self.window;
            if let Some(active) = self.rule_faults[slot]
                .as_mut()
                .filter(|a| is_fresh(a, now, window))
            {
                let same = rule
                    .inputs()
                    .iter()
                    .zip(&active.inputs)
                    .all(|(k, old)| values.get(*k) == old.as_ref());
                let change = if same {
                    Change::Same
                } else {
                    let (description, metrics) = rule.describe(values);
                    active.fault = Arc::new(active.fault.refreshed(description, metrics));
                    active.inputs = rule
                        .inputs()
                        .iter()
                        .map(|k| values.get(*k).cloned())
                        .collect();
                    Change::Updated
                };
                active.last_seen = now;
                active.seen_pass = pass;
                out.faults.push(Detected {
                    fault: active.fault.clone(),
                    handle: active.handle.clone(),
                    change,
                });
                continue;
            }
            let (description, metrics) = rule.describe(values);
            let fault = self.open(
                rule.id_prefix(),
                rule.source(),
                severity,
                rule.fault_type(),
                description,
                metrics,
            );
            let inputs = rule
                .inputs()
                .iter()
                .map(|k| values.get(*k).cloned())
                .collect();
            let active = Active {
                fault: fault.clone(),
                handle: None,
                layer: rule.layer(),
                inputs,
                last_seen: now,
                seen_pass: pass,
            };
            if let Some(stale) = self.rule_faults[slot].replace(active) {
                out.dropped.extend(stale.handle);
            }
            self.record_new(&fault, &mut out.dropped);
            out.opened += 1;
            out.faults.push(Detected {
                fault,
                handle: None,
                change: Change::New,
            });
        }

        for index in anomalies {
            let n = &input.numbers[index];
            self.observe_anomaly(n.layer, &n.name, &n.number, now, &mut out);
        }

        out.cleared = self.clear_unobserved(input, now, &mut out.dropped);
        Ok(out)
    }

    /// Feeds every number to the anomaly detector; returns the indices of anomalous ones.
    fn feed_anomaly_detector(&mut self, input: &DetectInput) -> Vec<usize> {
        let mut anomalous = Vec::new();
        if input.numbers.is_empty() {
            return anomalous;
        }
        let mut detector = self.anomaly.lock();
        for (i, n) in input.numbers.iter().enumerate() {
            let Some(v) = n.number.as_f64() else { continue };
            if n.name.len() > MAX_METRIC_NAME_LEN {
                continue;
            }
            let cached = n
                .slot
                .map(|slot| &mut self.series_at[n.layer.index()][slot as usize]);
            let hit = match cached.as_deref().copied().flatten() {
                Some(at) => detector.observe_at(at, v),
                None => None,
            };
            let is_anomaly = match hit {
                Some(is_anomaly) => is_anomaly,
                None => {
                    self.name_buf.clear();
                    self.name_buf.push_str(n.layer.name());
                    self.name_buf.push('.');
                    self.name_buf.push_str(&n.name);
                    let (is_anomaly, at) = detector.observe_named(&self.name_buf, v);
                    if let Some(cache) = cached {
                        *cache = Some(at);
                    }
                    is_anomaly
                }
            };
            if is_anomaly {
                anomalous.push(i);
            }
        }
        anomalous
    }

    fn observe_anomaly(
        &mut self,
        layer: Layer,
        name: &str,
        number: &Number,
        now: Instant,
        out: &mut Detection<H>,
    ) {
        let value = Value::Number(number.clone());
        let pass = self.pass;
        let window = self.window;
        let key = (layer, name.to_string());
        if let Some(active) = self
            .anomaly_faults
            .get_mut(&key)
            .filter(|a| is_fresh(a, now, window))
        {
            let change = if active.inputs.first().and_then(|v| v.as_ref()) == Some(&value) {
                Change::Same
            } else {
                let (description, metrics) = describe_anomaly(layer, name, &value);
                active.fault = Arc::new(active.fault.refreshed(description, metrics));
                active.inputs = vec![Some(value)];
                Change::Updated
            };
            active.last_seen = now;
            active.seen_pass = pass;
            out.faults.push(Detected {
                fault: active.fault.clone(),
                handle: active.handle.clone(),
                change,
            });
            return;
        }
        if !self.anomaly_faults.contains_key(&key)
            && self.anomaly_faults.len() >= MAX_ANOMALY_FAULTS
        {
            return;
        }
        let (description, metrics) = describe_anomaly(layer, name, &value);
        let fault = self.open(
            layer.anomaly_prefix(),
            layer.source(),
            FaultSeverity::LOW,
            ANOMALY_FAULT_TYPE,
            description,
            metrics,
        );
        let active = Active {
            fault: fault.clone(),
            handle: None,
            layer,
            inputs: vec![Some(value)],
            last_seen: now,
            seen_pass: pass,
        };
        if let Some(stale) = self.anomaly_faults.insert(key, active) {
            out.dropped.extend(stale.handle);
        }
        self.record_new(&fault, &mut out.dropped);
        out.opened += 1;
        out.faults.push(Detected {
            fault,
            handle: None,
            change: Change::New,
        });
    }

    fn open(
        &mut self,
        prefix: &str,
        source: FaultSource,
        severity: FaultSeverity,
        fault_type: &'static str,
        description: String,
        metrics: Metrics,
    ) -> Arc<Fault> {
        let serial = self.next_serial;
        self.next_serial += 1;
        Arc::new(Fault {
            serial,
            fault_id: clock::unique_id(prefix),
            source,
            severity,
            fault_type,
            description,
            metrics,
            timestamp: clock::now(),
            predicted: false,
        })
    }

    fn record_new(&mut self, fault: &Arc<Fault>, dropped: &mut Vec<H>) {
        self.stats.faults_detected += 1;
        match fault.severity {
            FaultSeverity::CRITICAL => self.stats.critical_faults += 1,
            FaultSeverity::HIGH => self.stats.high_faults += 1,
            FaultSeverity::MEDIUM => self.stats.medium_faults += 1,
            FaultSeverity::LOW => self.stats.low_faults += 1,
            FaultSeverity::INFO => {}
        }
        self.history.push_back((fault.clone(), None));
        while self.history.len() > MAX_FAULT_HISTORY {
            if let Some((_, handle)) = self.history.pop_front() {
                dropped.extend(handle);
            }
        }
    }

    /// Closes the faults of the given layers that this pass did not observe, and every fault
    /// not observed within the active window.
    fn clear_unobserved(
        &mut self,
        input: &DetectInput,
        now: Instant,
        dropped: &mut Vec<H>,
    ) -> usize {
        let pass = self.pass;
        let window = self.window;
        let gone = |a: &Active<H>| {
            (input.layer(a.layer).is_some() && a.seen_pass != pass) || !is_fresh(a, now, window)
        };
        let mut cleared = 0;
        for slot in self.rule_faults.iter_mut() {
            if slot.as_ref().is_some_and(gone) {
                if let Some(active) = slot.take() {
                    dropped.extend(active.handle);
                    cleared += 1;
                }
            }
        }
        if !self.anomaly_faults.is_empty() {
            self.anomaly_faults.retain(|_, a| {
                if gone(a) {
                    dropped.extend(a.handle.take());
                    cleared += 1;
                    false
                } else {
                    true
                }
            });
        }
        cleared
    }

    /// Attaches a handle to a fault (in the active set and in the history). The binding calls
    /// this after creating the Python object of a new fault.
    pub fn attach(&mut self, serial: u64, handle: H) {
        let active = self
            .rule_faults
            .iter_mut()
            .flatten()
            .chain(self.anomaly_faults.values_mut())
            .find(|a| a.fault.serial == serial);
        if let Some(active) = active {
            if active.handle.is_none() {
                active.handle = Some(handle.clone());
            }
        }
        if let Ok(i) = self
            .history
            .binary_search_by_key(&serial, |(f, _)| f.serial)
        {
            let entry = &mut self.history[i].1;
            if entry.is_none() {
                *entry = Some(handle);
            }
        }
    }

    fn actives(&self) -> impl Iterator<Item = &Active<H>> {
        self.rule_faults
            .iter()
            .flatten()
            .chain(self.anomaly_faults.values())
    }

    /// The active faults, oldest first.
    pub fn active_faults(&self) -> Vec<(Arc<Fault>, Option<H>)> {
        self.active_faults_at(Instant::now())
    }

    pub fn active_faults_at(&self, now: Instant) -> Vec<(Arc<Fault>, Option<H>)> {
        let mut out: Vec<_> = self
            .actives()
            .filter(|a| is_fresh(a, now, self.window))
            .map(|a| (a.fault.clone(), a.handle.clone()))
            .collect();
        out.sort_by_key(|(f, _)| f.serial);
        out
    }

    /// The active faults of CRITICAL severity, oldest first.
    pub fn critical_faults(&self) -> Vec<(Arc<Fault>, Option<H>)> {
        let mut out = self.active_faults();
        out.retain(|(f, _)| f.severity == FaultSeverity::CRITICAL);
        out
    }

    /// The newest faults detected (at most [`MAX_FAULT_HISTORY`]), oldest first, cleared ones
    /// included.
    pub fn history(&self) -> impl Iterator<Item = &(Arc<Fault>, Option<H>)> {
        self.history.iter()
    }

    /// Closes the active faults with these ids; returns how many were closed and their handles.
    pub fn clear_resolved(&mut self, fault_ids: &[&str]) -> (usize, Vec<H>) {
        let mut dropped = Vec::new();
        if fault_ids.is_empty() {
            return (0, dropped);
        }
        let ids: std::collections::HashSet<&str> = fault_ids.iter().copied().collect();
        let mut cleared = 0;
        for slot in self.rule_faults.iter_mut() {
            if slot
                .as_ref()
                .is_some_and(|a| ids.contains(a.fault.fault_id.as_str()))
            {
                if let Some(active) = slot.take() {
                    dropped.extend(active.handle);
                    cleared += 1;
                }
            }
        }
        self.anomaly_faults.retain(|_, a| {
            if ids.contains(a.fault.fault_id.as_str()) {
                dropped.extend(a.handle.take());
                cleared += 1;
                false
            } else {
                true
            }
        });
        (cleared, dropped)
    }

    pub fn stats(&self) -> DetectionStats {
        self.stats
    }

    /// Counters plus the active and critical-active counts: O(active faults).
    pub fn statistics(&self) -> Statistics {
        self.statistics_at(Instant::now())
    }

    pub fn statistics_at(&self, now: Instant) -> Statistics {
        let (mut active, mut critical) = (0, 0);
        for a in self.actives().filter(|a| is_fresh(a, now, self.window)) {
            active += 1;
            if a.fault.severity == FaultSeverity::CRITICAL {
                critical += 1;
            }
        }
        Statistics {
            stats: self.stats,
            active_faults: active,
            critical_active: critical,
        }
    }

    /// Every handle the engine holds (for the garbage collector's traversal). A fault that is
    /// both active and in the history yields clones of its handle twice.
    pub fn handles(&self) -> impl Iterator<Item = &H> {
        self.actives()
            .filter_map(|a| a.handle.as_ref())
            .chain(self.history.iter().filter_map(|(_, h)| h.as_ref()))
    }

    /// Predicts an error-rate spike from the trend of the newest [`PREDICTION_WINDOW`]
    /// entries: the mean of the last five above 1.5 times the mean of the five before, and
    /// above 0.1. The prediction is returned, not stored.
    pub fn predict_failures(&mut self, history: &[Metrics]) -> EngineResult<Vec<Fault>> {
        if history.len() < PREDICTION_WINDOW {
            return Ok(Vec::new());
        }
        let start = history.len() - PREDICTION_WINDOW;
        self.predict_from_tail(&history[start..], start)
    }

    /// `predict_failures` given only the newest [`PREDICTION_WINDOW`] entries, the first of
    /// which is entry `start` of the caller's history (for error messages).
    pub fn predict_from_tail(
        &mut self,
        tail: &[Metrics],
        start: usize,
    ) -> EngineResult<Vec<Fault>> {
        if tail.len() != PREDICTION_WINDOW {
            return Ok(Vec::new());
        }
        let mut rates = [0.0f64; PREDICTION_WINDOW];
        for (i, entry) in tail.iter().enumerate() {
            let number = |key: &str| -> EngineResult<Option<f64>> {
                match entry.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => value::as_number(v).map(Some).ok_or_else(|| {
                        EngineError::wrong_type(format!(
                            "metrics_history[{}]['{key}'] must be a number, got {}",
                            start + i,
                            value::type_name(v)
                        ))
                    }),
                }
            };
            rates[i] = match number(keys::ERROR_RATE.name)? {
                Some(rate) => rate,
                None => number(keys::TASK_SUCCESS_RATE.name)?
                    .map(|s| 1.0 - s)
                    .unwrap_or(0.0),
            };
        }
        // Sequential sums in entry order, as Python's sum() adds them.
        let older = rates[..5].iter().fold(0.0, |acc, v| acc + v) / 5.0;
        let recent = rates[5..].iter().fold(0.0, |acc, v| acc + v) / 5.0;
        if !(recent > older * 1.5 && recent > 0.1) {
            return Ok(Vec::new());
        }
        self.stats.predictions_made += 1;
        let mut metrics = Metrics::new();
        metrics.insert("trend".into(), Value::String("increasing".into()));
        metrics.insert("rate".into(), float_value(recent));
        Ok(vec![Fault {
            serial: 0,
            fault_id: clock::unique_id("pred_err_"),
            source: FaultSource::SYSTEM,
            severity: FaultSeverity::MEDIUM,
            fault_type: "predicted_error_spike",
            description: "Error rate trend suggests upcoming spike".to_string(),
            metrics,
            timestamp: clock::now(),
            predicted: true,
        }])
    }
}

fn is_fresh<H>(active: &Active<H>, now: Instant, window: Duration) -> bool {
    now.saturating_duration_since(active.last_seen) <= window
}

/// The fault type of an anomalous metric value.
pub const ANOMALY_FAULT_TYPE: &str = "metric_anomaly";

fn describe_anomaly(layer: Layer, name: &str, value: &Value) -> (String, Metrics) {
    let mut metrics = Metrics::new();
    metrics.insert("metric".into(), Value::String(name.to_string()));
    metrics.insert("value".into(), value.clone());
    metrics.insert("layer".into(), Value::String(layer.name().to_string()));
    (
        format!(
            "Anomalous {} value in {}: {}",
            name,
            layer.name(),
            value::py_str(value)
        ),
        metrics,
    )
}

// ------------------------------------------------------------------------------------------
// Anomaly detector
// ------------------------------------------------------------------------------------------

mod batch;
pub use batch::{detect_series, AnomalySettings, SeriesScore};

/// How the detector scores a value against its metric's recent values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyMethod {
    /// `|x - mean| / std` over the window (population std), as the reference does.
    ZScore,
    /// `0.6745 * |x - median| / MAD` over the window: robust to the outliers it looks for.
    Mad,
    /// `|x - m| / s` against an exponentially weighted mean and variance with
    /// `alpha = 2 / (window_size + 1)`.
    Ewma,
}

impl AnomalyMethod {
    pub const NAMES: &'static str = "zscore, mad, ewma";

    pub fn parse(name: &str) -> EngineResult<Self> {
        match name {
            "zscore" => Ok(AnomalyMethod::ZScore),
            "mad" => Ok(AnomalyMethod::Mad),
            "ewma" => Ok(AnomalyMethod::Ewma),
            other => Err(EngineError::invalid(format!(
                "method must be one of {}, got {other:?}",
                Self::NAMES
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AnomalyMethod::ZScore => "zscore",
            AnomalyMethod::Mad => "mad",
            AnomalyMethod::Ewma => "ewma",
        }
    }
}

pub const DEFAULT_WINDOW_SIZE: usize = 20;
pub const DEFAULT_THRESHOLD: f64 = 3.0;
/// Largest window accepted: each metric keeps up to this many values.
pub const MAX_WINDOW_SIZE: usize = 10_000;
/// Metrics tracked by default; the least recently used are evicted beyond it.
pub const DEFAULT_MAX_METRICS: usize = 10_000;
/// Upper bound for `max_metrics`.
pub const MAX_MAX_METRICS: usize = 1_000_000;
/// Longest metric name accepted (bytes of UTF-8).
pub const MAX_METRIC_NAME_LEN: usize = 1024;

fn check_window_size(window_size: usize) -> EngineResult<()> {
    if !(2..=MAX_WINDOW_SIZE).contains(&window_size) {
        return Err(EngineError::invalid(format!(
            "window_size must be between 2 and {MAX_WINDOW_SIZE}, got {window_size}"
        )));
    }
    Ok(())
}

fn check_threshold(threshold: f64) -> EngineResult<()> {
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(EngineError::invalid(format!(
            "threshold must be a finite number above 0, got {}",
            pyfmt::float_repr(threshold)
        )));
    }
    Ok(())
}

/// The consistency constant that makes the MAD comparable to a standard deviation.
const MAD_SCALE: f64 = 0.6745;

#[derive(Debug, Clone)]
struct Series {
    name: Box<str>,
    values: VecDeque<f64>,
    /// How many of the newest values equal the newest one (a flat window is common and has
    /// an answer known without the arithmetic).
    run: usize,
    ewma_mean: f64,
    ewma_var: f64,
    seen: u64,
    last_used: u64,
    created: u64,
}

/// Flags values far from a metric's recent values. Bounded: `window_size` values per metric,
/// `max_metrics` metrics (the least recently used eighth is evicted when full).
#[derive(Debug)]
pub struct AnomalyDetector {
    window_size: usize,
    threshold: f64,
    method: AnomalyMethod,
    max_metrics: usize,
    series: Vec<Series>,
    index: HashMap<Box<str>, usize, FxBuildHasher>,
    /// Changes whenever positions in `series` change; unique across detectors, so a
    /// [`SeriesRef`] taken from one detector never resolves in another.
    epoch: u64,
    tick: u64,
    scratch: Vec<f64>,
}

/// Where a metric's series was in a detector, valid while the detector's epoch is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesRef {
    index: usize,
    epoch: u64,
}

static NEXT_EPOCH: AtomicU64 = AtomicU64::new(1);

fn new_epoch() -> u64 {
    NEXT_EPOCH.fetch_add(1, Ordering::Relaxed)
}

impl Clone for AnomalyDetector {
    fn clone(&self) -> Self {
        AnomalyDetector {
            series: self.series.clone(),
            index: self.index.clone(),
            epoch: new_epoch(),
            scratch: Vec::new(),
            ..*self
        }
    }
}

impl Default for AnomalyDetector {
    fn default() -> Self {
        AnomalyDetector {
            window_size: DEFAULT_WINDOW_SIZE,
            threshold: DEFAULT_THRESHOLD,
            method: AnomalyMethod::ZScore,
            max_metrics: DEFAULT_MAX_METRICS,
            series: Vec::new(),
            index: HashMap::default(),
            epoch: new_epoch(),
            tick: 0,
            scratch: Vec::new(),
        }
    }
}

impl AnomalyDetector {
    pub fn new(
        window_size: usize,
        threshold: f64,
        method: AnomalyMethod,
        max_metrics: usize,
    ) -> EngineResult<Self> {
        let mut detector = AnomalyDetector {
            method,
            ..AnomalyDetector::default()
        };
        detector.set_window_size(window_size)?;
        detector.set_threshold(threshold)?;
        if !(1..=MAX_MAX_METRICS).contains(&max_metrics) {
            return Err(EngineError::invalid(format!(
                "max_metrics must be between 1 and {MAX_MAX_METRICS}, got {max_metrics}"
            )));
        }
        detector.max_metrics = max_metrics;
        Ok(detector)
    }

    pub fn window_size(&self) -> usize {
        self.window_size
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    pub fn method(&self) -> AnomalyMethod {
        self.method
    }

    pub fn max_metrics(&self) -> usize {
        self.max_metrics
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Changes the window; each metric keeps its newest `window_size` values.
    pub fn set_window_size(&mut self, window_size: usize) -> EngineResult<()> {
        check_window_size(window_size)?;
        self.window_size = window_size;
        for s in self.series.iter_mut() {
            while s.values.len() > window_size {
                s.values.pop_front();
            }
            s.run = s.run.min(s.values.len());
        }
        Ok(())
    }

    pub fn set_threshold(&mut self, threshold: f64) -> EngineResult<()> {
        check_threshold(threshold)?;
        self.threshold = threshold;
        Ok(())
    }

    /// Checks a metric name before it is stored.
    pub fn check_name(name: &str) -> EngineResult<()> {
        if name.len() > MAX_METRIC_NAME_LEN {
            return Err(EngineError::invalid(format!(
                "metric_name is {} bytes long; at most {MAX_METRIC_NAME_LEN} are accepted",
                name.len()
            )));
        }
        Ok(())
    }

    /// Whether `value` is anomalous for `name`, then records it. The first `window_size / 2`
    /// values of a metric are never anomalous, nor is any value while the spread is zero.
    /// A non-finite value is refused (returns false, not recorded).
    pub fn observe(&mut self, name: &str, value: f64) -> bool {
        self.observe_named(name, value).0
    }

    /// `observe`, also returning where the metric's series is, for `observe_at`.
    pub fn observe_named(&mut self, name: &str, value: f64) -> (bool, SeriesRef) {
        if !value.is_finite() {
            // Epoch 0 is never handed out, so this position never resolves.
            return (false, SeriesRef { index: 0, epoch: 0 });
        }
        let index = match self.index.get(name) {
            Some(&i) => i,
            None => self.insert(name),
        };
        (
            self.observe_index(index, value),
            SeriesRef {
                index,
                epoch: self.epoch,
            },
        )
    }

    /// `observe` through a remembered position; `None` when the position is no longer valid
    /// (the detector evicted or cleared metrics since, or it is another detector).
    pub fn observe_at(&mut self, at: SeriesRef, value: f64) -> Option<bool> {
        (at.epoch == self.epoch && at.index < self.series.len())
            .then(|| self.observe_index(at.index, value))
    }

    fn observe_index(&mut self, index: usize, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        self.tick += 1;
        let settings = (self.window_size, self.threshold, self.method);
        let series = &mut self.series[index];
        series.last_used = self.tick;
        score(series, settings, &mut self.scratch, value)
    }

    fn insert(&mut self, name: &str) -> usize {
        if self.series.len() >= self.max_metrics {
            self.evict();
        }
        self.tick += 1;
        self.series.push(Series {
            name: name.into(),
            values: VecDeque::with_capacity(self.window_size.min(64)),
            run: 0,
            ewma_mean: 0.0,
            ewma_var: 0.0,
            seen: 0,
            last_used: self.tick,
            created: self.tick,
        });
        let index = self.series.len() - 1;
        self.index.insert(name.into(), index);
        index
    }

    /// Drops the least recently used eighth of the metrics (at least one).
    fn evict(&mut self) {
        let drop_count = (self.series.len() / 8).max(1);
        let mut ages: Vec<u64> = self.series.iter().map(|s| s.last_used).collect();
        let (_, cutoff, _) = ages.select_nth_unstable(drop_count - 1);
        let cutoff = *cutoff;
        self.series.retain(|s| s.last_used > cutoff);
        self.reindex();
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, s) in self.series.iter().enumerate() {
            self.index.insert(s.name.clone(), i);
        }
        self.epoch = new_epoch();
    }

    /// Each metric's recent values, oldest first, metrics in first-seen order.
    pub fn series(&self) -> Vec<(&str, &VecDeque<f64>)> {
        let mut out: Vec<&Series> = self.series.iter().collect();
        out.sort_by_key(|s| s.created);
        out.into_iter().map(|s| (&*s.name, &s.values)).collect()
    }

    pub fn clear(&mut self) {
        self.series.clear();
        self.reindex();
    }
}

fn score(
    series: &mut Series,
    (window, threshold, method): (usize, f64, AnomalyMethod),
    scratch: &mut Vec<f64>,
    value: f64,
) -> bool {
    let warm = series.values.len() >= window / 2;
    // The window holds copies of this very value: every deviation is the same rounding
    // residue, so the z-score is 1 up to rounding (or the spread is 0) and the MAD is 0.
    let flat = series.run >= series.values.len() && series.values.back() == Some(&value);
    let anomalous = match method {
        AnomalyMethod::ZScore if warm && flat && threshold >= FLAT_WINDOW_MAX_Z => false,
        AnomalyMethod::Mad if flat => false,
        AnomalyMethod::ZScore if warm => {
            let (older, newer) = series.values.as_slices();
            zscore_exact(older, newer, value, threshold)
        }
        AnomalyMethod::Mad if warm => {
            scratch.clear();
            scratch.extend(series.values.iter().copied());
            let median = median_in_place(scratch);
            for x in scratch.iter_mut() {
                *x = (*x - median).abs();
            }
            let mad = median_in_place(scratch);
            mad != 0.0 && (MAD_SCALE * (value - median) / mad).abs() > threshold
        }
        AnomalyMethod::Ewma => {
            let std = series.ewma_var.sqrt();
            let hit = series.seen as usize >= window / 2
                && std > 0.0
                && ((value - series.ewma_mean) / std).abs() > threshold;
            if series.seen == 0 {
                series.ewma_mean = value;
            } else {
                let alpha = 2.0 / (window as f64 + 1.0);
                let diff = value - series.ewma_mean;
                let step = alpha * diff;
                series.ewma_mean += step;
                series.ewma_var = (1.0 - alpha) * (series.ewma_var + diff * step);
            }
            hit
        }
        _ => false,
    };
    series.seen += 1;
    series.run = if series.values.back() == Some(&value) {
        series.run + 1
    } else {
        1
    };
    if series.values.len() >= window {
        series.values.pop_front();
    }
    series.values.push_back(value);
    series.run = series.run.min(series.values.len());
    anomalous
}

/// The z-score decision over the window `older ++ newer` (oldest first), computed directly:
/// the definition of the answer, which the batch path reproduces exactly.
fn zscore_exact(older: &[f64], newer: &[f64], value: f64, threshold: f64) -> bool {
    let n = (older.len() + newer.len()) as f64;
    let mean = older.iter().chain(newer).fold(0.0, |acc, x| acc + x) / n;
    let variance = older
        .iter()
        .chain(newer)
        .fold(0.0, |acc, x| acc + (x - mean) * (x - mean))
        / n;
    // Python's `variance ** 0.5`.
    let std = variance.powf(0.5);
    std != 0.0 && ((value - mean) / std).abs() > threshold
}

/// A z-score computed over a window of identical values stays below this (it is 1 up to a
/// few ulps, at most about 1.2 when the squared deviations are subnormal).
const FLAT_WINDOW_MAX_Z: f64 = 2.0;

/// FxHash (as in rustc): much cheaper than SipHash for the short metric names hashed on every
/// observation. Names come from the caller's own metrics, and their number is capped.
#[derive(Debug, Clone, Copy, Default)]
pub struct FxBuildHasher;

impl std::hash::BuildHasher for FxBuildHasher {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

pub struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

fn median_in_place(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Metrics {
        v.as_object().cloned().unwrap_or_default()
    }

    /// Input with one layer's map given.
    fn one(layer: Layer, v: Value) -> DetectInput {
        let m = map(v);
        let mut layers: [Option<&Metrics>; 5] = [None; 5];
        layers[layer.index()] = Some(&m);
        DetectInput::from_maps(layers)
    }

    fn faults8() -> DetectInput {
        let maps = [
            map(json!({"error_rate": 0.6, "queue_size": 500})),
            map(json!({"cycle_count": 2, "bottleneck_count": 2})),
            map(json!({"agent_failure_rate": 0.5, "scheduler_stuck": true})),
            map(json!({"stability_score": 0.2, "anomaly_rate": 0.9})),
            map(json!({"violation_count": 3, "takeover_active": false})),
        ];
        DetectInput::from_maps([
            Some(&maps[0]),
            Some(&maps[1]),
            Some(&maps[2]),
            Some(&maps[3]),
            Some(&maps[4]),
        ])
    }

    fn engine() -> DetectionEngine<u32> {
        DetectionEngine::default()
    }

    fn types(d: &Detection<u32>) -> Vec<&'static str> {
        d.faults.iter().map(|f| f.fault.fault_type).collect()
    }

    #[test]
    fn reference_rules_keep_types_severities_ids_descriptions_and_metrics() {
        let mut e = engine();
        let d = e.detect(&faults8()).unwrap();
        assert_eq!(
            types(&d),
            vec![
                "high_error_rate",
                "queue_overload",
                "graph_cycle",
                "agent_failure",
                "scheduler_deadlock",
                "stability_degradation",
                "high_anomaly_rate",
                "governance_violation"
            ]
        );
        let by_type = |t: &str| {
            d.faults
                .iter()
                .find(|f| f.fault.fault_type == t)
                .unwrap()
                .fault
                .clone()
        };

        let err = by_type("high_error_rate");
        assert_eq!(err.severity, FaultSeverity::HIGH);
        assert_eq!(err.source, FaultSource::FAZA25_ORCHESTRATOR);
        assert!(err.fault_id.starts_with("f25_err_"), "{}", err.fault_id);
        assert_eq!(err.description, "High orchestrator error rate: 60.00%");
        assert_eq!(
            Value::Object(err.metrics.clone()),
            json!({"error_rate": 0.6})
        );

        let queue = by_type("queue_overload");
        assert_eq!(
            (queue.severity, queue.description.as_str()),
            (FaultSeverity::MEDIUM, "Task queue overloaded: 500 tasks")
        );
        assert!(queue.fault_id.starts_with("f25_queue_"));

        let cycle = by_type("graph_cycle");
        assert_eq!(
            (cycle.severity, cycle.description.as_str()),
            (FaultSeverity::CRITICAL, "Graph contains 2 cycle(s)")
        );
        assert_eq!(
            Value::Object(cycle.metrics.clone()),
            json!({"cycle_count": 2})
        );

        let agent = by_type("agent_failure");
        assert_eq!(agent.description, "High agent failure rate: 50.00%");
        assert_eq!(
            Value::Object(agent.metrics.clone()),
            json!({"failure_rate": 0.5, "agent_failure_rate": 0.5})
        );
        assert!(agent.fault_id.starts_with("f28_agent_"));

        let deadlock = by_type("scheduler_deadlock");
        assert_eq!(deadlock.severity, FaultSeverity::CRITICAL);
        assert_eq!(
            Value::Object(deadlock.metrics.clone()),
            json!({"stuck": true})
        );

        let stability = by_type("stability_degradation");
        assert_eq!(
            (stability.severity, stability.description.as_str()),
            (FaultSeverity::HIGH, "Low stability score: 0.20")
        );
        assert!(stability.fault_id.starts_with("f285_stability_"));

        let anomaly = by_type("high_anomaly_rate");
        assert_eq!(anomaly.description, "High anomaly rate: 90.00%");
        assert_eq!(anomaly.source, FaultSource::FAZA28_5_META_LAYER);

        let violation = by_type("governance_violation");
        assert_eq!(violation.description, "Governance violations detected: 3");
        assert_eq!(
            Value::Object(violation.metrics.clone()),
            json!({"violation_count": 3, "governance_violations": 3})
        );
        assert!(d.faults.iter().all(|f| !f.fault.predicted));
    }

    #[test]
    fn thresholds_are_strict_and_error_rate_splits_medium_and_high() {
        let mut e = engine();
        let d = e
            .detect(&one(
                Layer::Faza25,
                json!({"error_rate": 0.3, "queue_size": 100}),
            ))
            .unwrap();
        assert!(d.faults.is_empty());
        let d = e
            .detect(&one(Layer::Faza25, json!({"error_rate": 0.4})))
            .unwrap();
        assert_eq!(d.faults[0].fault.severity, FaultSeverity::MEDIUM);
        let d = e
            .detect(&one(Layer::Faza27, json!({"bottleneck_count": 6})))
            .unwrap();
        assert_eq!(d.faults[0].fault.description, "Graph has 6 bottlenecks");
        assert_eq!(
            d.faults[0].fault.metrics["bottleneck_detected"],
            json!(true)
        );
        let d = e
            .detect(&one(Layer::Faza29, json!({"takeover_active": true})))
            .unwrap();
        assert_eq!(types(&d), vec!["system_takeover"]);
        assert_eq!(d.faults[0].fault.severity, FaultSeverity::CRITICAL);
        assert!(d.faults[0].fault.fault_id.starts_with("f29_takeover_"));
    }

    #[test]
    fn risk_score_is_high_above_70_and_critical_above_90() {
        let mut e = engine();
        assert!(e
            .detect(&one(Layer::Faza29, json!({"risk_score": 70})))
            .unwrap()
            .faults
            .is_empty());
        let d = e
            .detect(&one(Layer::Faza29, json!({"risk_score": 85})))
            .unwrap();
        let f = &d.faults[0].fault;
        assert!(f.fault_type.contains("risk"));
        assert_eq!(
            (f.severity, f.source),
            (FaultSeverity::HIGH, FaultSource::FAZA29_GOVERNANCE)
        );
        assert_eq!(f.description, "High governance risk score: 85");
        assert!(f.fault_id.starts_with("f29_risk_"));
        let d = e
            .detect(&one(Layer::Faza29, json!({"risk_score": 95.5})))
            .unwrap();
        assert_eq!(d.faults[0].fault.severity, FaultSeverity::CRITICAL);
        assert_eq!(d.faults[0].fault.metrics["risk_score"], json!(95.5));
    }

    #[test]
    fn resource_rule_names_the_exhausted_resource() {
        let mut e = engine();
        assert!(e
            .detect(&one(Layer::Faza25, json!({"cpu_usage": 0.95})))
            .unwrap()
            .faults
            .is_empty());
        let d = e
            .detect(&one(
                Layer::Faza25,
                json!({"cpu_usage": 0.97, "memory_usage": 0.5}),
            ))
            .unwrap();
        let f = &d.faults[0].fault;
        assert_eq!(
            (f.fault_type, f.severity, f.source),
            (
                "resource_exhaustion",
                FaultSeverity::CRITICAL,
                FaultSource::SYSTEM
            )
        );
        assert!(f.fault_id.starts_with("resource_"));
        assert_eq!(f.metrics["resource_type"], json!("cpu"));
        assert_eq!(f.metrics["usage"], json!(0.97));
        assert_eq!(f.metrics["cpu"], json!(0.97));
        assert_eq!(f.metrics["memory"], json!(0.5));
        let d = e
            .detect(&one(
                Layer::Faza25,
                json!({"cpu_usage": 0.96, "memory_usage": 0.99}),
            ))
            .unwrap();
        assert_eq!(d.faults[0].fault.metrics["resource_type"], json!("memory"));
        assert_eq!(d.faults[0].fault.metrics["usage"], json!(0.99));
    }

    #[test]
    fn alias_keys_raise_the_same_faults() {
        let mut e = engine();
        let d = e
            .detect(&one(Layer::Faza29, json!({"governance_violations": 4})))
            .unwrap();
        assert_eq!(types(&d), vec!["governance_violation"]);
        assert_eq!(
            Value::Object(d.faults[0].fault.metrics.clone()),
            json!({"violation_count": 4, "governance_violations": 4})
        );

        assert!(e
            .detect(&one(Layer::Faza28_5, json!({"anomaly_count": 4})))
            .unwrap()
            .faults
            .is_empty());
        let d = e
            .detect(&one(Layer::Faza28_5, json!({"anomaly_count": 5})))
            .unwrap();
        assert_eq!(types(&d), vec!["high_anomaly_rate"]);
        assert_eq!(d.faults[0].fault.description, "High anomaly count: 5");
        // The rate wins when both are given.
        assert!(e
            .detect(&one(
                Layer::Faza28_5,
                json!({"anomaly_rate": 0.1, "anomaly_count": 9})
            ))
            .unwrap()
            .faults
            .is_empty());

        let d = e
            .detect(&one(
                Layer::Faza27,
                json!({"bottleneck_detected": true, "bottleneck_node": "n7"}),
            ))
            .unwrap();
        assert_eq!(types(&d), vec!["graph_bottleneck"]);
        assert_eq!(d.faults[0].fault.description, "Graph bottleneck detected");
        assert_eq!(d.faults[0].fault.metrics["bottleneck_node"], json!("n7"));

        let d = e
            .detect(&one(Layer::Faza25, json!({"task_success_rate": 0.25})))
            .unwrap();
        assert_eq!(types(&d), vec!["high_error_rate"]);
        let f = &d.faults[0].fault;
        assert_eq!(f.severity, FaultSeverity::HIGH);
        assert_eq!(f.description, "High orchestrator error rate: 75.00%");
        assert_eq!(f.metrics["error_rate"], json!(0.75));
        assert_eq!(f.metrics["task_success_rate"], json!(0.25));
        // error_rate wins over the derived rate.
        assert!(e
            .detect(&one(
                Layer::Faza25,
                json!({"error_rate": 0.1, "task_success_rate": 0.1})
            ))
            .unwrap()
            .faults
            .is_empty());
    }

    #[test]
    fn repair_targets_pass_through() {
        let mut e = engine();
        let d = e
            .detect(&one(
                Layer::Faza27,
                json!({"cycle_count": 1, "cycles": [["a", "b", "a"]]}),
            ))
            .unwrap();
        assert_eq!(
            d.faults[0].fault.metrics["cycles"],
            json!([["a", "b", "a"]])
        );
        let d = e
            .detect(&one(Layer::Faza28, json!({"agent_failure_rate": 0.9, "failing_agents": ["x"], "agent_id": "x", "scheduler_stuck": 1, "stuck_task_ids": ["t1"]})))
            .unwrap();
        assert_eq!(d.faults[0].fault.metrics["failing_agents"], json!(["x"]));
        assert_eq!(d.faults[0].fault.metrics["agent_id"], json!("x"));
        assert_eq!(d.faults[1].fault.metrics["stuck_task_ids"], json!(["t1"]));
        let d = e
            .detect(&one(
                Layer::Faza25,
                json!({"error_rate": 0.9, "failed_task_ids": ["t9"], "task_id": "t9"}),
            ))
            .unwrap();
        assert_eq!(d.faults[0].fault.metrics["failed_task_ids"], json!(["t9"]));
        assert_eq!(d.faults[0].fault.metrics["task_id"], json!("t9"));
    }

    #[test]
    fn a_persisting_condition_is_one_fault() {
        let mut e = engine();
        let first = e.detect(&faults8()).unwrap();
        assert_eq!(first.opened, 8);
        assert!(first.faults.iter().all(|f| f.change == Change::New));
        for _ in 0..5 {
            let again = e.detect(&faults8()).unwrap();
            assert_eq!(again.opened, 0);
            assert_eq!(again.faults.len(), 8);
            for (a, b) in first.faults.iter().zip(&again.faults) {
                assert!(Arc::ptr_eq(&a.fault, &b.fault));
                assert_eq!(b.change, Change::Same);
            }
        }
        let s = e.statistics();
        assert_eq!(s.stats.faults_detected, 8);
        assert_eq!(s.stats.critical_faults, 2);
        assert_eq!(s.stats.high_faults, 4);
        assert_eq!(s.stats.medium_faults, 2);
        assert_eq!(s.stats.total_detections, 6);
        assert_eq!((s.active_faults, s.critical_active), (8, 2));
        assert_eq!(e.history().count(), 8);
    }

    #[test]
    fn changed_values_refresh_the_fault_but_keep_its_id() {
        let mut e = engine();
        let a = e
            .detect(&one(Layer::Faza25, json!({"queue_size": 150})))
            .unwrap()
            .faults
            .remove(0);
        let b = e
            .detect(&one(Layer::Faza25, json!({"queue_size": 180})))
            .unwrap()
            .faults
            .remove(0);
        assert_eq!(b.change, Change::Updated);
        assert_eq!(a.fault.fault_id, b.fault.fault_id);
        assert_eq!(a.fault.timestamp, b.fault.timestamp);
        assert_eq!(b.fault.description, "Task queue overloaded: 180 tasks");
        assert_eq!(b.fault.metrics["queue_size"], json!(180));
        assert_eq!(e.stats().faults_detected, 1);
    }

    #[test]
    fn a_severity_change_opens_a_new_fault_and_clears_the_old() {
        let mut e = engine();
        let medium = e
            .detect(&one(Layer::Faza25, json!({"error_rate": 0.4})))
            .unwrap();
        let high = e
            .detect(&one(Layer::Faza25, json!({"error_rate": 0.7})))
            .unwrap();
        assert_eq!(high.opened, 1);
        assert_eq!(high.cleared, 1);
        assert_ne!(
            medium.faults[0].fault.fault_id,
            high.faults[0].fault.fault_id
        );
        let active = e.active_faults();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].0.severity, FaultSeverity::HIGH);
        assert_eq!(e.stats().medium_faults, 1);
        assert_eq!(e.stats().high_faults, 1);
    }

    #[test]
    fn a_condition_clears_only_when_its_layer_reports_without_it() {
        let mut e = engine();
        e.detect(&one(Layer::Faza27, json!({"cycle_count": 1})))
            .unwrap();
        // Another layer's report says nothing about the graph.
        let d = e
            .detect(&one(Layer::Faza25, json!({"queue_size": 1})))
            .unwrap();
        assert_eq!((d.faults.len(), d.cleared), (0, 0));
        assert_eq!(e.active_faults().len(), 1);
        // An empty map is "not given".
        e.detect(&one(Layer::Faza27, json!({}))).unwrap();
        assert_eq!(e.active_faults().len(), 1);
        let d = e
            .detect(&one(Layer::Faza27, json!({"cycle_count": 0})))
            .unwrap();
        assert_eq!(d.cleared, 1);
        assert!(e.active_faults().is_empty());
        assert_eq!(e.history().count(), 1);
    }

    #[test]
    fn an_unobserved_fault_expires_after_the_window() {
        let mut e = engine();
        let t0 = Instant::now();
        let first = e
            .detect_at(&one(Layer::Faza27, json!({"cycle_count": 1})), t0)
            .unwrap();
        let later = t0 + ACTIVE_WINDOW - Duration::from_secs(1);
        assert_eq!(e.active_faults_at(later).len(), 1);
        let expired = t0 + ACTIVE_WINDOW + Duration::from_secs(1);
        assert!(e.active_faults_at(expired).is_empty());
        assert_eq!(e.statistics_at(expired).active_faults, 0);
        // Seen again after expiry: a new fault.
        let again = e
            .detect_at(&one(Layer::Faza27, json!({"cycle_count": 1})), expired)
            .unwrap();
        assert_eq!(again.opened, 1);
        assert_ne!(
            first.faults[0].fault.fault_id,
            again.faults[0].fault.fault_id
        );
        // Observation keeps it alive.
        let t1 = expired + ACTIVE_WINDOW - Duration::from_secs(5);
        e.detect_at(&one(Layer::Faza27, json!({"cycle_count": 1})), t1)
            .unwrap();
        assert_eq!(e.active_faults_at(t1 + Duration::from_secs(60)).len(), 1);
    }

    #[test]
    fn clearing_by_id_closes_the_fault_and_a_recurrence_is_new() {
        let mut e = engine();
        let d = e.detect(&faults8()).unwrap();
        for (i, f) in d.faults.iter().enumerate() {
            e.attach(f.fault.serial, i as u32);
        }
        let ids: Vec<&str> = d.faults[..3]
            .iter()
            .map(|f| f.fault.fault_id.as_str())
            .collect();
        let (n, handles) = e.clear_resolved(&[ids[0], ids[1], ids[2], ids[0], "nope"]);
        assert_eq!(n, 3);
        assert_eq!(handles, vec![0, 1, 2]);
        assert_eq!(e.active_faults().len(), 5);
        assert_eq!(e.clear_resolved(&[ids[0]]).0, 0);
        let again = e.detect(&faults8()).unwrap();
        assert_eq!(again.opened, 3);
        assert_eq!(e.stats().faults_detected, 11);
        // Handles come back with the faults that kept them.
        assert_eq!(again.faults[3].handle, Some(3));
    }

    #[test]
    fn history_is_bounded_and_returns_evicted_handles() {
        let mut e = engine();
        let on = one(Layer::Faza25, json!({"queue_size": 150}));
        let off = one(Layer::Faza25, json!({"queue_size": 1}));
        let mut dropped = Vec::new();
        for i in 0..(MAX_FAULT_HISTORY as u32 + 50) {
            let d = e.detect(&on).unwrap();
            e.attach(d.faults[0].fault.serial, i);
            dropped.extend(d.dropped);
            dropped.extend(e.detect(&off).unwrap().dropped);
        }
        assert_eq!(e.history().count(), MAX_FAULT_HISTORY);
        assert_eq!(e.stats().faults_detected, MAX_FAULT_HISTORY as u64 + 50);
        // Each fault's handle leaves twice: once on clearing, once on eviction.
        assert_eq!(dropped.iter().filter(|h| **h < 50).count(), 100);
        assert_eq!(e.history().next().map(|(_, h)| *h), Some(Some(50)));
    }

    #[test]
    fn ids_are_unique_even_when_made_back_to_back() {
        let mut e = engine();
        let mut ids = std::collections::HashSet::new();
        let on = one(Layer::Faza25, json!({"queue_size": 150}));
        for _ in 0..500 {
            let id = e.detect(&on).unwrap().faults[0].fault.fault_id.clone();
            assert_eq!(e.clear_resolved(&[id.as_str()]).0, 1);
            ids.insert(id);
        }
        assert_eq!(ids.len(), 500);
    }

    #[test]
    fn bad_values_fail_naming_the_key_and_change_nothing() {
        let mut e = engine();
        e.detect(&faults8()).unwrap();
        let before = e.statistics();
        let err = e
            .detect(&one(Layer::Faza25, json!({"queue_size": "lots"})))
            .unwrap_err();
        assert!(matches!(err, EngineError::WrongType(_)));
        assert!(
            err.to_string().contains("faza25_metrics['queue_size']"),
            "{err}"
        );
        assert!(err.to_string().contains("str"), "{err}");
        let err = e
            .detect(&one(Layer::Faza29, json!({"risk_score": [1]})))
            .unwrap_err();
        assert!(err.to_string().contains("risk_score"), "{err}");
        assert_eq!(e.statistics(), before);
        // Nulls count as absent; flags take any truthiness.
        assert!(e
            .detect(&one(
                Layer::Faza25,
                json!({"queue_size": null, "error_rate": null})
            ))
            .unwrap()
            .faults
            .is_empty());
        assert_eq!(
            types(
                &e.detect(&one(Layer::Faza28, json!({"scheduler_stuck": "yes"})))
                    .unwrap()
            ),
            vec!["scheduler_deadlock"]
        );
    }

    #[test]
    fn python_formatting_of_values() {
        let mut e = engine();
        let d = e
            .detect(&one(
                Layer::Faza25,
                json!({"queue_size": 150.0, "error_rate": true}),
            ))
            .unwrap();
        assert_eq!(
            d.faults[0].fault.description,
            "High orchestrator error rate: 100.00%"
        );
        assert_eq!(d.faults[0].fault.metrics["error_rate"], json!(true));
        assert_eq!(
            d.faults[1].fault.description,
            "Task queue overloaded: 150.0 tasks"
        );
        let d = e
            .detect(&one(Layer::Faza28_5, json!({"stability_score": 0.125})))
            .unwrap();
        assert_eq!(d.faults[0].fault.description, "Low stability score: 0.12");
    }

    #[test]
    fn anomalies_open_a_low_fault_per_metric_and_clear_when_normal() {
        let mut e = engine();
        for i in 0..12 {
            let d = e
                .detect(&one(
                    Layer::Faza25,
                    json!({"queue_size": 10 + (i % 3), "label": "x"}),
                ))
                .unwrap();
            assert!(d.faults.is_empty());
        }
        let d = e
            .detect(&one(Layer::Faza25, json!({"queue_size": 90, "label": "x"})))
            .unwrap();
        assert_eq!(types(&d), vec![ANOMALY_FAULT_TYPE]);
        let f = d.faults[0].fault.clone();
        assert_eq!(
            (f.severity, f.source),
            (FaultSeverity::LOW, FaultSource::FAZA25_ORCHESTRATOR)
        );
        assert!(f.fault_id.starts_with("f25_metric_"), "{}", f.fault_id);
        assert_eq!(
            Value::Object(f.metrics.clone()),
            json!({"metric": "queue_size", "value": 90, "layer": "faza25"})
        );
        assert_eq!(f.description, "Anomalous queue_size value in faza25: 90");
        let s = e.stats();
        assert_eq!(
            (s.anomalies_detected, s.low_faults, s.faults_detected),
            (1, 1, 1)
        );
        // Back to normal: the anomaly fault clears.
        let d = e
            .detect(&one(Layer::Faza25, json!({"queue_size": 11})))
            .unwrap();
        assert!(d.faults.is_empty());
        assert_eq!(d.cleared, 1);
        let names: Vec<String> = e
            .anomaly_detector()
            .lock()
            .series()
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(names, vec!["faza25.queue_size"]);
    }

    #[test]
    fn steady_metrics_never_look_anomalous() {
        let mut e = engine();
        for _ in 0..50 {
            assert_eq!(e.detect(&faults8()).unwrap().faults.len(), 8);
        }
        assert_eq!(e.stats().anomalies_detected, 0);
    }

    #[test]
    fn prediction_follows_the_error_trend_of_the_last_ten_entries() {
        let mut e = engine();
        let rising: Vec<Metrics> = (0..12)
            .map(|i| map(json!({"error_rate": if i < 7 { 0.05 } else { 0.3 }})))
            .collect();
        assert!(e.predict_failures(&rising[..9]).unwrap().is_empty());
        let p = e.predict_failures(&rising).unwrap();
        assert_eq!(p.len(), 1);
        let f = &p[0];
        assert!(f.predicted && f.fault_id.starts_with("pred_err_"));
        assert_eq!(
            (f.fault_type, f.severity, f.source),
            (
                "predicted_error_spike",
                FaultSeverity::MEDIUM,
                FaultSource::SYSTEM
            )
        );
        assert_eq!(f.metrics["trend"], json!("increasing"));
        assert_eq!(f.metrics["rate"], json!(0.3));
        assert_eq!(e.stats().predictions_made, 1);
        assert!(e.active_faults().is_empty());
        let flat: Vec<Metrics> = (0..10).map(|_| map(json!({"risk_score": 50}))).collect();
        assert!(e.predict_failures(&flat).unwrap().is_empty());
        let bad: Vec<Metrics> = (0..10)
            .map(|i| map(json!({"error_rate": if i == 4 { json!("x") } else { json!(0.1) }})))
            .collect();
        let err = e.predict_failures(&bad).unwrap_err().to_string();
        assert!(err.contains("metrics_history[4]['error_rate']"), "{err}");
    }

    #[test]
    fn single_rules_evaluate_without_state() {
        let f = Rule::ResourceExhaustion
            .evaluate(&LayerValues::from_map(
                Layer::Faza25,
                &map(json!({"memory_usage": 0.99})),
            ))
            .unwrap()
            .unwrap();
        assert_eq!(f.metrics["resource_type"], json!("memory"));
        assert!(Rule::GraphCycle
            .evaluate(&LayerValues::default())
            .unwrap()
            .is_none());
        assert_eq!(
            Rule::from_name("high_risk_score"),
            Some(Rule::HighRiskScore)
        );
        assert!(Rule::ALL.iter().all(|r| r.layer().rules().contains(r)));
        for layer in Layer::ALL {
            assert!(layer.keys().len() <= MAX_LAYER_KEYS);
            assert!(layer
                .keys()
                .iter()
                .enumerate()
                .all(|(i, k)| k.slot as usize == i && k.layer == layer));
        }
    }

    // --- anomaly detector -----------------------------------------------------------------

    fn detector(method: AnomalyMethod) -> AnomalyDetector {
        AnomalyDetector::new(20, 3.0, method, 100).unwrap()
    }

    #[test]
    fn zscore_warms_up_ignores_zero_spread_and_flags_spikes() {
        let mut d = detector(AnomalyMethod::ZScore);
        // Nine values are too few (window 20 needs 10), even for a huge one.
        for i in 0..9 {
            assert!(!d.observe("m", if i == 8 { 1e6 } else { 1.0 }));
        }
        let mut d = detector(AnomalyMethod::ZScore);
        for _ in 0..15 {
            assert!(!d.observe("flat", 5.0));
        }
        assert!(!d.observe("flat", 500.0), "zero spread never flags");
        let mut d = detector(AnomalyMethod::ZScore);
        for i in 0..10 {
            d.observe("m", 10.0 + (i % 2) as f64);
        }
        assert!(!d.observe("m", 11.5));
        assert!(d.observe("m", 30.0));
        assert_eq!(d.series()[0].1.len(), 12);
    }

    #[test]
    fn zscore_matches_the_reference_arithmetic() {
        // mean 2.5, population std sqrt(1.25); z of 6.0 is 3.13 > 3.
        let mut d = AnomalyDetector::new(8, 3.0, AnomalyMethod::ZScore, 10).unwrap();
        for v in [1.0, 2.0, 3.0, 4.0] {
            assert!(!d.observe("m", v));
        }
        assert!(d.observe("m", 6.0));
        let mut d = AnomalyDetector::new(8, 3.0, AnomalyMethod::ZScore, 10).unwrap();
        for v in [1.0, 2.0, 3.0, 4.0] {
            d.observe("m", v);
        }
        assert!(!d.observe("m", 5.8)); // z = 2.95
    }

    #[test]
    fn a_flat_window_answers_like_the_full_arithmetic() {
        // 0.6 summed 20 times leaves a rounding residue, so the spread is tiny but not zero:
        // a repeat scores about 1, a different value scores enormous.
        for threshold in [3.0, 0.5] {
            let mut d = AnomalyDetector::new(20, threshold, AnomalyMethod::ZScore, 10).unwrap();
            for _ in 0..20 {
                d.observe("x", 0.6);
            }
            let mut reference = d.clone();
            reference.series.iter_mut().for_each(|s| s.run = 0); // forces the arithmetic
            assert_eq!(
                d.observe("x", 0.6),
                reference.observe("x", 0.6),
                "threshold {threshold}"
            );
            assert!(d.observe("x", 0.61));
        }
    }

    #[test]
    fn mad_is_robust_to_earlier_outliers() {
        let mut z = detector(AnomalyMethod::ZScore);
        let mut m = detector(AnomalyMethod::Mad);
        let values = [
            10.0, 11.0, 10.0, 12.0, 11.0, 10.0, 500.0, 11.0, 10.0, 12.0, 11.0,
        ];
        for v in values {
            z.observe("x", v);
            m.observe("x", v);
        }
        // The earlier outlier inflates the std so much that z-score misses a clear spike.
        assert!(!z.observe("x", 60.0));
        assert!(m.observe("x", 60.0));
        assert!(!m.observe("x", 11.0));
    }

    #[test]
    fn ewma_flags_a_jump_after_warm_up() {
        let mut d = detector(AnomalyMethod::Ewma);
        for i in 0..30 {
            assert!(!d.observe("x", 100.0 + (i % 3) as f64));
        }
        assert!(d.observe("x", 200.0));
        assert_eq!(AnomalyMethod::parse("ewma").unwrap(), AnomalyMethod::Ewma);
        assert!(AnomalyMethod::parse("median").is_err());
    }

    #[test]
    fn detector_settings_are_validated() {
        assert!(AnomalyDetector::new(1, 3.0, AnomalyMethod::ZScore, 10).is_err());
        assert!(AnomalyDetector::new(MAX_WINDOW_SIZE + 1, 3.0, AnomalyMethod::ZScore, 10).is_err());
        assert!(AnomalyDetector::new(20, 0.0, AnomalyMethod::ZScore, 10).is_err());
        assert!(AnomalyDetector::new(20, f64::NAN, AnomalyMethod::ZScore, 10).is_err());
        assert!(AnomalyDetector::new(20, f64::INFINITY, AnomalyMethod::ZScore, 10).is_err());
        assert!(AnomalyDetector::new(20, 3.0, AnomalyMethod::ZScore, 0).is_err());
        let mut d = AnomalyDetector::new(2, 0.5, AnomalyMethod::ZScore, 1).unwrap();
        assert!(!d.observe("x", f64::NAN));
        assert!(d.is_empty());
        assert!(AnomalyDetector::check_name(&"x".repeat(MAX_METRIC_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn detector_evicts_the_least_recently_used_metrics() {
        let mut d = AnomalyDetector::new(20, 3.0, AnomalyMethod::ZScore, 16).unwrap();
        for i in 0..16 {
            d.observe(&format!("m{i}"), 1.0);
        }
        d.observe("m0", 1.0); // m0 is now the most recent
        d.observe("new", 1.0);
        assert_eq!(d.len(), 15); // 16 full: two evicted (an eighth), one added
        let names: Vec<&str> = d.series().iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"m0") && names.contains(&"new"));
        assert!(!names.contains(&"m1") && !names.contains(&"m2"));
        for i in 0..1000 {
            d.observe(&format!("churn{i}"), 1.0);
        }
        assert!(d.len() <= 16);
    }

    #[test]
    fn remembered_positions_survive_only_while_the_layout_holds() {
        let mut d = AnomalyDetector::new(20, 3.0, AnomalyMethod::ZScore, 8).unwrap();
        let (_, at_a) = d.observe_named("a", 1.0);
        let (_, at_b) = d.observe_named("b", 2.0);
        assert_eq!(d.observe_at(at_a, 1.0), Some(false));
        assert_eq!(d.series()[0].1.len(), 2);
        // A clone is another detector: positions taken from the original do not resolve.
        let mut copy = d.clone();
        assert_eq!(copy.observe_at(at_b, 2.0), None);
        for i in 0..10 {
            d.observe(&format!("m{i}"), 0.0); // fills up and evicts
        }
        assert_eq!(d.observe_at(at_a, 1.0), None);
        let (_, again) = d.observe_named("a", 1.0);
        assert_eq!(d.observe_at(again, 1.0), Some(false));
        d.clear();
        assert_eq!(d.observe_at(again, 1.0), None);
    }

    #[test]
    fn the_engine_feeds_rule_keys_through_remembered_positions() {
        let mut e = engine();
        e.detect(&faults8()).unwrap();
        // Another detector swapped in starts empty and receives the next pass.
        let fresh = Arc::new(Mutex::new(AnomalyDetector::default()));
        e.set_anomaly_detector(fresh.clone());
        e.detect(&faults8()).unwrap();
        e.detect(&faults8()).unwrap();
        let d = fresh.lock();
        assert_eq!(d.len(), 8);
        assert!(d.series().iter().all(|(_, v)| v.len() == 2));
    }

    #[test]
    fn shrinking_the_window_keeps_the_newest_values() {
        let mut d = detector(AnomalyMethod::ZScore);
        for i in 0..20 {
            d.observe("x", i as f64);
        }
        d.set_window_size(5).unwrap();
        assert_eq!(
            d.series()[0].1.iter().copied().collect::<Vec<_>>(),
            vec![15.0, 16.0, 17.0, 18.0, 19.0]
        );
        assert!(d.set_window_size(1).is_err());
        assert!(d.set_threshold(-1.0).is_err());
        assert_eq!(d.window_size(), 5);
    }
}
