//! Layer adapters: what a layer read means as canonical metrics.
//!
//! Each layer's metrics are built in three passes, so an explicit answer always wins over a
//! derived one:
//! 1. the reference's probes (`get_queue_size()`, `get_scheduler_stats()` ...), in the
//!    reference's order, with merged dicts overwriting as the reference did;
//! 2. keys derived from the real layer classes, added only where pass 1 left them out;
//! 3. (in the caller) registered metric providers, whose dicts overwrite both.
//!
//! Values are checked against the canonical kinds ([`CANONICAL`]): a value of the wrong type
//! is dropped and reported as an issue rather than passed on to detection, where it would
//! make the whole pass fail. Missing fields are left out; nothing is filled in with a
//! constant.
//!
//! Cumulative counters become rates here. The previous sample is kept per layer (and per
//! agent); the first sample, and a sample after a counter went down (the layer reset or
//! cleared it), only set the baseline and give no rate.

use super::graph::{self, Graph, Shape};
use super::reads::{self as r, AgentSample, AgentsRead, LayerRead, ReadError};
use super::FaultKind;
use crate::engine::clock::{parse_iso, seconds_between};
use crate::engine::detection_engine::Layer;
use crate::engine::value::{type_name, Metrics};
use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// An agent whose failure rate in the window is above this is listed in `failing_agents`
/// (the detection threshold for `agent_failure_rate`).
pub const FAILING_AGENT_RATE: f64 = 0.2;
/// Agents tracked at most (counter baselines); agents beyond are ignored.
pub const MAX_TRACKED_AGENTS: usize = 16_384;
/// Task ids remembered as failed at the previous sample, at most.
pub const MAX_TRACKED_TASKS: usize = 100_000;
/// Ids listed under `failed_task_ids`, `stuck_task_ids` and `failing_agents`, at most.
pub const MAX_LISTED_IDS: usize = 50;
/// The agent loop counts as stuck when its last tick is older than this many tick periods ...
pub const STUCK_TICKS: f64 = 10.0;
/// ... and older than this many seconds.
pub const STUCK_MIN_SECONDS: f64 = 5.0;

/// What kind of value a canonical key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A finite number (not a bool).
    Number,
    /// A number, 0 to 1 by convention.
    Rate,
    /// A number >= 0.
    Count,
    /// A bool.
    Flag,
    /// A list of strings.
    Names,
    /// A list of node-id lists.
    Cycles,
    /// A string.
    Text,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Number | Kind::Rate => "a number",
            Kind::Count => "a number >= 0",
            Kind::Flag => "a bool",
            Kind::Names => "a list of str",
            Kind::Cycles => "a list of node-id lists",
            Kind::Text => "a str",
        }
    }

    fn accepts(self, v: &Value) -> bool {
        let number = || matches!(v, Value::Number(_));
        match self {
            Kind::Number | Kind::Rate => number(),
            Kind::Count => v.as_f64().is_some_and(|x| x >= 0.0),
            Kind::Flag => v.is_boolean(),
            Kind::Names => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Kind::Cycles => v.as_array().is_some_and(|a| {
                a.iter().all(|c| {
                    c.as_array()
                        .is_some_and(|n| n.iter().all(|x| x.is_string() || x.is_number()))
                })
            }),
            Kind::Text => v.is_string(),
        }
    }
}

/// One canonical metric key.
#[derive(Debug, Clone, Copy)]
pub struct Canonical {
    pub layer: Layer,
    pub key: &'static str,
    pub kind: Kind,
    pub unit: &'static str,
    /// Where the value comes from on the real layer classes (and which probe gives it).
    pub source: &'static str,
}

const fn c(
    layer: Layer,
    key: &'static str,
    kind: Kind,
    unit: &'static str,
    source: &'static str,
) -> Canonical {
    Canonical {
        layer,
        key,
        kind,
        unit,
        source,
    }
}

/// The canonical key set. Keys of other names (from merged probe dicts or providers) pass
/// through unchecked.
pub const CANONICAL: &[Canonical] = &[
    c(Layer::Faza25, "queue_size", Kind::Count, "tasks", "get_queue_status()['queue_size']; probe get_queue_size()"),
    c(Layer::Faza25, "error_rate", Kind::Rate, "0-1", "Δerror / Δ(done + error) of get_queue_status()['tasks_by_status'] since the previous sample; probe get_queue_metrics()"),
    c(Layer::Faza25, "task_success_rate", Kind::Rate, "0-1", "Δdone / Δ(done + error), same window; probe get_scheduler_stats()['success_rate']"),
    c(Layer::Faza25, "scheduler_efficiency", Kind::Rate, "0-1", "busy workers / min(workers, busy + queued) from get_worker_status(); 1.0 with no work; probe get_scheduler_stats()['efficiency']"),
    c(Layer::Faza25, "stuck_task_count", Kind::Count, "tasks", "RUNNING tasks whose started_at is older than stuck_task_seconds"),
    c(Layer::Faza25, "stuck_task_ids", Kind::Names, "task ids", "those tasks (at most 50)"),
    c(Layer::Faza25, "failed_task_ids", Kind::Names, "task ids", "tasks that entered ERROR since the previous sample (at most 50)"),
    c(Layer::Faza25, "cpu_usage", Kind::Rate, "0-1", "probe get_resource_usage()['cpu'] only (no FAZA layer measures it)"),
    c(Layer::Faza25, "memory_usage", Kind::Rate, "0-1", "probe get_resource_usage()['memory'] only"),
    c(Layer::Faza27, "cycle_count", Kind::Count, "cycles", "DFS back edges over the graph's edges; probe len(detect_cycles())"),
    c(Layer::Faza27, "cycles", Kind::Cycles, "node-id lists", "the first 16 cycles, [a, b, c] meaning a -> b -> c -> a"),
    c(Layer::Faza27, "bottleneck_count", Kind::Count, "nodes", "nodes with fan-in or fan-out >= 5 distinct neighbours"),
    c(Layer::Faza27, "bottleneck_detected", Kind::Flag, "bool", "bottleneck_count > 0; probe optimizer.detect_bottlenecks()"),
    c(Layer::Faza27, "bottleneck_node", Kind::Text, "node id", "the bottleneck with the highest fan-in + fan-out"),
    c(Layer::Faza27, "graph_complexity", Kind::Number, "nodes + edges", "node_count + edge_count; probe get_complexity()"),
    c(Layer::Faza27, "optimization_score", Kind::Rate, "0-1", "probe optimizer.get_optimization_score() only (FAZA 27.5 has no real score)"),
    c(Layer::Faza28, "agent_failure_rate", Kind::Rate, "0-1", "worst enabled agent's Δerror_count / max(Δtick_count, Δerror_count) since the previous sample; probe get_agent_stats()['failure_rate']"),
    c(Layer::Faza28, "failing_agents", Kind::Names, "agent names", "agents whose rate is above 0.2, worst first (at most 50)"),
    c(Layer::Faza28, "active_agent_count", Kind::Count, "agents", "enabled agents from agent_manager.get_stats(); probe len(get_active_agents())"),
    c(Layer::Faza28, "scheduler_stuck", Kind::Flag, "bool", "loop running and state_context['ael_last_tick'] older than max(10 tick periods, 5 s)"),
    c(Layer::Faza28, "agent_performance", Kind::Rate, "0-1", "probe get_agent_stats()['performance'] only"),
    c(Layer::Faza28, "cooperation_score", Kind::Rate, "0-1", "probe get_agent_stats()['cooperation_score'] only"),
    c(Layer::Faza28, "communication_health", Kind::Rate, "0-1", "probe get_communication_health() only"),
    c(Layer::Faza28_5, "stability_score", Kind::Rate, "0-1", "1 - get_stability_summary()['avg_severity'], 0.0 while critical_issues > 0; probe get_stability_score()"),
    c(Layer::Faza28_5, "anomaly_count", Kind::Count, "anomalies", "get_anomaly_summary()['recent_anomalies'] (last 5 min); probe get_anomaly_count()"),
    c(Layer::Faza28_5, "anomaly_rate", Kind::Rate, "0-1", "agents_with_anomalies / total agents of the agent loop"),
    c(Layer::Faza28_5, "feedback_health", Kind::Rate, "0-1", "FAZA 29 feedback_loop.get_stability_score(); probe get_feedback_health()"),
    c(Layer::Faza28_5, "policy_effectiveness", Kind::Rate, "0-1", "probe get_policy_effectiveness() only"),
    c(Layer::Faza29, "risk_score", Kind::Number, "0-100", "get_risk()['total_risk'] (or 'overall_score')"),
    c(Layer::Faza29, "takeover_active", Kind::Flag, "bool", "takeover_manager.is_takeover_active(), or get_takeover_state() in {takeover, safe_mode} (any state but normal/warning/recovery)"),
    c(Layer::Faza29, "violation_count", Kind::Count, "blocks", "Δ get_statistics()['rule_engine']['block_count'] since the previous sample; probe get_status()['violations']"),
    c(Layer::Faza29, "governance_violations", Kind::Count, "blocks", "same value as violation_count (the name health and repair read)"),
    c(Layer::Faza29, "override_count", Kind::Count, "overrides", "override_system.get_stack_size() (active overrides); probe get_status()['override_count']"),
];

/// The canonical kind of a key, if it is canonical.
pub fn kind_of(key: &str) -> Option<Kind> {
    CANONICAL.iter().find(|c| c.key == key).map(|c| c.kind)
}

/// A problem found while reading a layer: a call that raised, or a value of the wrong kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// The call or key it concerns, e.g. `get_queue_size()`.
    pub source: String,
    pub kind: FaultKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct TaskTotals {
    done: f64,
    error: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct AgentCount {
    ticks: f64,
    errors: f64,
}

/// Agent counters by name (foldhash, seeded per process: names come from the application).
type AgentCounts = HashMap<String, AgentCount, foldhash::fast::RandomState>;

/// The previous samples the rates are computed against.
#[derive(Debug, Clone, Default)]
pub struct Baselines {
    tasks: Option<TaskTotals>,
    failed_ids: Option<HashSet<String>>,
    agents: Option<AgentCounts>,
    /// The agent loop's agent count, for the meta layer's `anomaly_rate`.
    agent_total: Option<f64>,
    block_count: Option<f64>,
}

impl Baselines {
    /// Forgets a layer's previous samples (its object was replaced).
    pub fn reset(&mut self, layer: Layer) {
        match layer {
            Layer::Faza25 => {
                self.tasks = None;
                self.failed_ids = None;
            }
            Layer::Faza28 => {
                self.agents = None;
                self.agent_total = None;
            }
            Layer::Faza29 => self.block_count = None,
            Layer::Faza27 | Layer::Faza28_5 => {}
        }
    }

    /// Takes from `other` every baseline this one does not have yet: a first look may set the
    /// starting point, but never moves one that exists.
    pub fn fill_missing_from(&mut self, other: &Baselines) {
        if self.tasks.is_none() {
            self.tasks = other.tasks;
        }
        if self.failed_ids.is_none() {
            self.failed_ids = other.failed_ids.clone();
        }
        if self.agents.is_none() {
            self.agents = other.agents.clone();
        }
        if self.agent_total.is_none() {
            self.agent_total = other.agent_total;
        }
        if self.block_count.is_none() {
            self.block_count = other.block_count;
        }
    }

    pub fn tracked_agents(&self) -> usize {
        self.agents.as_ref().map_or(0, HashMap::len)
    }
}

/// Everything the adapters need besides the read.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now: NaiveDateTime,
    pub stuck_task_seconds: f64,
}

/// Builds one layer's metrics.
struct Builder<'a> {
    read: &'a LayerRead,
    metrics: Metrics,
    issues: Vec<Issue>,
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
        _ => None,
    }
}

fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn count_value(x: f64) -> Value {
    if x.fract() == 0.0 && (0.0..9.0e15).contains(&x) {
        Value::from(x as u64)
    } else {
        float(x)
    }
}

fn names(items: impl IntoIterator<Item = String>) -> Value {
    Value::Array(
        items
            .into_iter()
            .take(MAX_LISTED_IDS)
            .map(Value::String)
            .collect(),
    )
}

impl<'a> Builder<'a> {
    fn new(read: &'a LayerRead) -> Self {
        let issues = read
            .errors()
            .map(|(call, e)| match e {
                ReadError::Raised(m) => Issue {
                    source: call.to_owned(),
                    kind: FaultKind::Raised,
                    message: m.clone(),
                },
                ReadError::Invalid(m) => Issue {
                    source: call.to_owned(),
                    kind: FaultKind::Invalid,
                    message: m.clone(),
                },
            })
            .collect();
        Builder {
            read,
            metrics: Metrics::new(),
            issues,
        }
    }

    fn invalid(&mut self, source: &str, message: String) {
        self.issues.push(Issue {
            source: source.to_owned(),
            kind: FaultKind::Invalid,
            message,
        });
    }

    fn value(&self, call: &str) -> Option<&'a Value> {
        self.read.value(call)
    }

    /// A dict answer, or an issue when the call answered something else.
    fn object(&mut self, call: &str) -> Option<&'a Map<String, Value>> {
        let v = self.value(call)?;
        match v {
            Value::Object(m) => Some(m),
            other => {
                self.invalid(
                    call,
                    format!("{call} returned {}, expected a dict", type_name(other)),
                );
                None
            }
        }
    }

    /// Sets `key` (overwriting) if `v` is of its kind; otherwise reports `source`.
    fn set(&mut self, key: &str, v: &Value, source: &str) {
        match kind_of(key) {
            Some(kind) if !kind.accepts(v) => self.invalid(
                source,
                format!(
                    "{source} gave {key}={} ({}), expected {}",
                    short(v),
                    type_name(v),
                    kind.describe()
                ),
            ),
            _ => {
                self.metrics.insert(key.to_owned(), v.clone());
            }
        }
    }

    /// Sets a derived value unless an explicit one is already there.
    fn derive(&mut self, key: &str, v: Value) {
        if !self.metrics.contains_key(key) {
            self.metrics.insert(key.to_owned(), v);
        }
    }

    /// Merges a dict answer key by key (the reference's `metrics.update(...)`).
    fn merge(&mut self, call: &str) {
        if let Some(m) = self.object(call) {
            for (k, v) in m {
                self.set(k, v, call);
            }
        }
    }

    /// A probe answering one number for `key`.
    fn number_probe(&mut self, call: &str, key: &str) {
        if let Some(v) = self.value(call) {
            self.set(key, v, call);
        }
    }

    /// `field` of a dict answer, renamed to `key` when present.
    fn field(&mut self, m: &Map<String, Value>, field: &str, key: &str, call: &str) {
        if let Some(v) = m.get(field).filter(|v| !v.is_null()) {
            self.set(key, v, call);
        }
    }

    /// `{"len": n, "items": [...]}` of a sized answer.
    fn sized(&mut self, call: &str) -> Option<(usize, &'a [Value])> {
        let v = self.value(call)?;
        let len = v.get("len").and_then(Value::as_u64);
        let items = v.get("items").and_then(Value::as_array);
        match (len, items) {
            (Some(n), Some(items)) => Some((n as usize, items.as_slice())),
            _ => {
                self.invalid(
                    call,
                    format!("{call} returned {}, expected a sized collection", short(v)),
                );
                None
            }
        }
    }

    fn finish(self) -> (Metrics, Vec<Issue>) {
        (self.metrics, self.issues)
    }
}

fn short(v: &Value) -> String {
    let text = crate::engine::value::py_repr(v);
    if text.chars().count() > 80 {
        text.chars().take(80).collect::<String>() + "..."
    } else {
        text
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Node lists from listed cycles, closing repeats dropped.
fn listed_cycles(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .filter_map(|c| c.as_array())
        .map(|nodes| graph::normalize_cycle(nodes.iter().filter_map(text).collect()))
        .filter(|c| !c.is_empty())
        .take(graph::MAX_LISTED_CYCLES)
        .map(|c| Value::Array(c.into_iter().map(Value::String).collect()))
        .collect()
}

/// The node a bottleneck entry names: a str, or a dict's `node_id` / `node`.
fn bottleneck_name(item: &Value) -> Option<String> {
    match item {
        Value::Object(m) => m.get("node_id").or_else(|| m.get("node")).and_then(text),
        other => text(other),
    }
}

// ------------------------------------------------------------------------------------------
// FAZA 25

pub fn faza25(b: &mut Baselines, read: &LayerRead, cx: &Context) -> (Metrics, Vec<Issue>) {
    let mut out = Builder::new(read);
    out.number_probe(r::P_QUEUE_SIZE, "queue_size");
    out.merge(r::P_QUEUE_METRICS);
    if let Some(m) = out.object(r::P_SCHEDULER_STATS) {
        out.field(
            m,
            "efficiency",
            "scheduler_efficiency",
            r::P_SCHEDULER_STATS,
        );
        out.field(m, "success_rate", "task_success_rate", r::P_SCHEDULER_STATS);
    }
    if let Some(m) = out.object(r::P_RESOURCE_USAGE) {
        out.field(m, "cpu", "cpu_usage", r::P_RESOURCE_USAGE);
        out.field(m, "memory", "memory_usage", r::P_RESOURCE_USAGE);
    }

    let mut queued: Option<f64> = None;
    if let Some(status) = out.object(r::R_QUEUE_STATUS) {
        if let Some(q) = status
            .get("queue_size")
            .and_then(number)
            .filter(|q| *q >= 0.0)
        {
            queued = Some(q);
            out.derive("queue_size", count_value(q));
        }
        let counts = status.get("tasks_by_status");
        let done = counts.and_then(|c| c.get("done")).and_then(number);
        let error = counts.and_then(|c| c.get("error")).and_then(number);
        if let (Some(done), Some(error)) = (done, error) {
            let now = TaskTotals { done, error };
            if let Some(prev) = b.tasks.filter(|p| done >= p.done && error >= p.error) {
                let (dd, de) = (done - prev.done, error - prev.error);
                if dd + de > 0.0 {
                    out.derive("error_rate", float(de / (dd + de)));
                    out.derive("task_success_rate", float(dd / (dd + de)));
                }
            }
            b.tasks = Some(now);
        }
    }
    if let Some(workers) = out.object(r::R_WORKER_STATUS) {
        let total = workers.get("num_workers").and_then(number).unwrap_or(0.0);
        let busy = workers
            .get("busy")
            .and_then(number)
            .unwrap_or(0.0)
            .min(total);
        if total > 0.0 {
            let capacity = total.min(busy + queued.unwrap_or(0.0));
            let efficiency = if capacity <= 0.0 {
                1.0
            } else {
                busy / capacity
            };
            out.derive("scheduler_efficiency", float(efficiency));
        }
    }
    if let Some(tasks) = out.object(r::R_TASKS) {
        let running = tasks
            .get("running")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let stuck: Vec<String> = running
            .iter()
            .filter_map(|t| {
                let pair = t.as_array()?;
                let id = pair.first().and_then(text)?;
                let started = pair.get(1).and_then(Value::as_str).and_then(parse_iso)?;
                (seconds_between(&started, &cx.now) > cx.stuck_task_seconds).then_some(id)
            })
            .collect();
        out.derive("stuck_task_count", Value::from(stuck.len()));
        out.derive("stuck_task_ids", names(stuck));
        let failed: Vec<String> = tasks
            .get("failed")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(text)
                    .take(MAX_TRACKED_TASKS)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(prev) = &b.failed_ids {
            out.derive(
                "failed_task_ids",
                names(failed.iter().filter(|id| !prev.contains(*id)).cloned()),
            );
        }
        b.failed_ids = Some(failed.into_iter().collect());
    }
    out.finish()
}

// ------------------------------------------------------------------------------------------
// FAZA 27 / 27.5

fn shape_of(v: &Value) -> Option<Shape> {
    let nodes = v
        .get("nodes")?
        .as_array()?
        .iter()
        .filter_map(text)
        .collect();
    let edges = v
        .get("edges")?
        .as_array()?
        .iter()
        .filter_map(|e| {
            let pair = e.as_array()?;
            Some((text(pair.first()?)?, text(pair.get(1)?)?))
        })
        .collect();
    Some(Shape { nodes, edges })
}

pub fn faza27(read: &LayerRead) -> (Metrics, Vec<Issue>) {
    let mut out = Builder::new(read);
    out.number_probe(r::P_COMPLEXITY, "graph_complexity");
    for call in [r::P_DETECT_CYCLES, r::R_FIND_CYCLES] {
        if let Some((len, items)) = out.sized(call) {
            out.derive("cycle_count", Value::from(len));
            out.derive("cycles", Value::Array(listed_cycles(items)));
        }
    }
    // A graph whose edges were read is measured from them; `get_stats()` is merged only for
    // other objects (the reference merged it whole).
    let parsed: Option<Graph> = match (read.graph(), out.value(r::R_EDGES)) {
        (Some(_), _) | (None, None) => None,
        (None, Some(v)) => match shape_of(v) {
            Some(s) => Some(Graph::from_shape(&s)),
            None => {
                out.invalid(
                    r::R_EDGES,
                    format!("the graph's edges could not be read: {}", short(v)),
                );
                None
            }
        },
    };
    let shape = read.graph().or(parsed.as_ref());
    if shape.is_none() && !read.has(r::R_EDGES) {
        out.merge(r::P_GRAPH_STATS);
    }
    out.number_probe(r::P_OPT_SCORE, "optimization_score");
    if let Some((len, items)) = out.sized(r::P_OPT_BOTTLENECKS) {
        out.set(
            "bottleneck_detected",
            &Value::Bool(len > 0),
            r::P_OPT_BOTTLENECKS,
        );
        out.derive("bottleneck_count", Value::from(len));
        if let Some(node) = items.first().and_then(bottleneck_name) {
            out.derive("bottleneck_node", Value::String(node));
        }
    }
    if let Some((len, items)) = out.sized(r::R_FIND_BOTTLENECKS) {
        out.derive("bottleneck_count", Value::from(len));
        out.derive("bottleneck_detected", Value::Bool(len > 0));
        if let Some(node) = items.first().and_then(bottleneck_name) {
            out.derive("bottleneck_node", Value::String(node));
        }
    }
    if let Some(g) = shape {
        let a = graph::analyse(g, graph::BOTTLENECK_THRESHOLD);
        out.derive("cycle_count", Value::from(a.cycle_count));
        out.derive(
            "cycles",
            Value::Array(
                a.cycles
                    .into_iter()
                    .map(|c| Value::Array(c.into_iter().map(Value::String).collect()))
                    .collect(),
            ),
        );
        out.derive("bottleneck_count", Value::from(a.bottlenecks.len()));
        out.derive(
            "bottleneck_detected",
            Value::Bool(!a.bottlenecks.is_empty()),
        );
        if let Some(top) = a.bottlenecks.into_iter().next() {
            out.derive("bottleneck_node", Value::String(top.node));
        }
        out.derive("graph_complexity", Value::from(a.complexity));
    }
    out.finish()
}

// ------------------------------------------------------------------------------------------
// FAZA 28

/// The agents from their JSON form (a read recorded as JSON, as in tests).
fn agents_of(stats: &Map<String, Value>) -> AgentsRead {
    let agents = stats
        .get("agents")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    AgentsRead {
        total_agents: stats.get("total_agents").and_then(number),
        enabled_agents: stats.get("enabled_agents").and_then(number),
        agents: agents
            .iter()
            .map(|a| AgentSample {
                name: a.get("name").and_then(text),
                enabled: a.get("enabled").and_then(Value::as_bool),
                tick_count: a.get("tick_count").and_then(number),
                error_count: a.get("error_count").and_then(number),
            })
            .collect(),
    }
}

pub fn faza28(b: &mut Baselines, read: &LayerRead, cx: &Context) -> (Metrics, Vec<Issue>) {
    let mut out = Builder::new(read);
    if let Some(m) = out.object(r::P_AGENT_STATS) {
        out.field(m, "failure_rate", "agent_failure_rate", r::P_AGENT_STATS);
        out.field(m, "performance", "agent_performance", r::P_AGENT_STATS);
        out.field(
            m,
            "cooperation_score",
            "cooperation_score",
            r::P_AGENT_STATS,
        );
    }
    out.number_probe(r::P_COMM_HEALTH, "communication_health");
    if let Some((len, _)) = out.sized(r::P_ACTIVE_AGENTS) {
        out.set("active_agent_count", &Value::from(len), r::P_ACTIVE_AGENTS);
    }

    let parsed = match read.agents() {
        Some(_) => None,
        None => out.object(r::R_AGENTS).map(agents_of),
    };
    if let Some(stats) = read.agents().or(parsed.as_ref()) {
        let agents = &stats.agents;
        let enabled_count = agents.iter().filter(|a| a.enabled != Some(false)).count();
        let enabled = stats.enabled_agents.unwrap_or(enabled_count as f64);
        out.derive("active_agent_count", count_value(enabled.max(0.0)));
        b.agent_total = Some(stats.total_agents.unwrap_or(agents.len() as f64));

        let previous = b.agents.take();
        let mut current: AgentCounts = AgentCounts::with_capacity_and_hasher(
            agents.len().min(MAX_TRACKED_AGENTS),
            Default::default(),
        );
        let mut rates: Vec<(&str, f64)> = Vec::new();
        for a in agents.iter().take(MAX_TRACKED_AGENTS) {
            let Some(name) = a.name.as_deref() else {
                continue;
            };
            let (Some(ticks), Some(errors)) = (a.tick_count, a.error_count) else {
                continue;
            };
            let now = AgentCount { ticks, errors };
            let prev = previous.as_ref().and_then(|p| p.get(name)).copied();
            current.insert(name.to_owned(), now);
            let disabled = a.enabled == Some(false);
            let Some(prev) = prev.filter(|p| ticks >= p.ticks && errors >= p.errors) else {
                continue;
            };
            let (dt, de) = (ticks - prev.ticks, errors - prev.errors);
            // A tick that raises before the base on_tick runs is counted only as an error, so
            // attempts are at least the larger of the two deltas.
            let attempts = dt.max(de);
            if attempts > 0.0 && !disabled {
                rates.push((name, de / attempts));
            }
        }
        if previous.is_some() && !current.is_empty() {
            if let Some(worst) = rates.iter().map(|(_, r)| *r).reduce(f64::max) {
                out.derive("agent_failure_rate", float(worst));
            }
            let mut failing: Vec<&(&str, f64)> = rates
                .iter()
                .filter(|(_, r)| *r > FAILING_AGENT_RATE)
                .collect();
            failing.sort_by(|a, b| b.1.total_cmp(&a.1));
            out.derive(
                "failing_agents",
                names(failing.into_iter().map(|(n, _)| (*n).to_owned())),
            );
        }
        b.agents = Some(current);
    }

    if let Some(stats) = out.object(r::R_LOOP_STATS) {
        let running = stats.get("running").and_then(Value::as_bool);
        let tick_rate = stats
            .get("tick_rate")
            .and_then(number)
            .filter(|t| *t > 0.0)
            .unwrap_or(1.0);
        let last_tick = out
            .value(r::R_LAST_TICK)
            .and_then(Value::as_str)
            .and_then(parse_iso);
        match (running, last_tick) {
            (Some(false), _) => out.derive("scheduler_stuck", Value::Bool(false)),
            (Some(true), Some(last)) => {
                let limit = (STUCK_TICKS * tick_rate).max(STUCK_MIN_SECONDS);
                out.derive(
                    "scheduler_stuck",
                    Value::Bool(seconds_between(&last, &cx.now) > limit),
                );
            }
            _ => {}
        }
    }
    out.finish()
}

// ------------------------------------------------------------------------------------------
// FAZA 28.5

pub fn faza28_5(b: &Baselines, read: &LayerRead) -> (Metrics, Vec<Issue>) {
    let mut out = Builder::new(read);
    out.number_probe(r::P_STABILITY, "stability_score");
    out.number_probe(r::P_POLICY, "policy_effectiveness");
    out.number_probe(r::P_ANOMALY_COUNT, "anomaly_count");
    out.number_probe(r::P_FEEDBACK, "feedback_health");
    if let Some(s) = out.object(r::R_STABILITY_SUMMARY) {
        let critical = s.get("critical_issues").and_then(number).unwrap_or(0.0);
        if critical > 0.0 {
            out.derive("stability_score", float(0.0));
        } else if let Some(severity) = s.get("avg_severity").and_then(number) {
            out.derive("stability_score", float((1.0 - severity).clamp(0.0, 1.0)));
        }
    }
    if let Some(a) = out.object(r::R_ANOMALY_SUMMARY) {
        if let Some(n) = a
            .get("recent_anomalies")
            .and_then(number)
            .filter(|n| *n >= 0.0)
        {
            out.derive("anomaly_count", count_value(n));
        }
        let with = a.get("agents_with_anomalies").and_then(number);
        if let (Some(with), Some(total)) = (with, b.agent_total.filter(|t| *t > 0.0)) {
            out.derive("anomaly_rate", float((with / total).clamp(0.0, 1.0)));
        }
    }
    if let Some(v) = out.value(r::R_GOV_FEEDBACK) {
        match number(v) {
            Some(x) => out.derive("feedback_health", float(x)),
            None => out.invalid(
                r::R_GOV_FEEDBACK,
                format!("returned {}, expected a number", type_name(v)),
            ),
        }
    }
    out.finish()
}

// ------------------------------------------------------------------------------------------
// FAZA 29

/// What a takeover state means. The known FAZA 29 states decide by name; any other non-empty
/// state counts as a takeover, as the reference treated everything but "normal".
pub fn takeover_from_state(state: &Value) -> Option<bool> {
    match state {
        Value::Null => Some(false),
        Value::Bool(b) => Some(*b),
        Value::String(s) => Some(!matches!(
            s.to_lowercase().as_str(),
            "" | "normal" | "warning" | "recovery"
        )),
        _ => None,
    }
}

pub fn faza29(b: &mut Baselines, read: &LayerRead) -> (Metrics, Vec<Issue>) {
    let mut out = Builder::new(read);
    if let Some(risk) = out.object(r::P_RISK) {
        if let Some(v) = ["overall_score", "total_risk", "risk_score"]
            .iter()
            .find_map(|k| risk.get(*k))
        {
            out.set("risk_score", v, r::P_RISK);
        }
    }
    if let Some(status) = out.object(r::P_STATUS) {
        out.field(status, "violations", "governance_violations", r::P_STATUS);
        out.field(status, "override_count", "override_count", r::P_STATUS);
    }
    let from_state = match out.value(r::P_TAKEOVER_STATE) {
        Some(v) => {
            let t = takeover_from_state(v);
            if t.is_none() {
                out.invalid(
                    r::P_TAKEOVER_STATE,
                    format!("returned {}, expected a state name", short(v)),
                );
            }
            t
        }
        None => None,
    };
    let from_manager = match out.value(r::R_TAKEOVER_ACTIVE) {
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            out.invalid(
                r::R_TAKEOVER_ACTIVE,
                format!("returned {}, expected a bool", type_name(other)),
            );
            None
        }
        None => None,
    };
    if from_state.is_some() || from_manager.is_some() {
        let active = from_state.unwrap_or(false) || from_manager.unwrap_or(false);
        out.set("takeover_active", &Value::Bool(active), r::P_TAKEOVER_STATE);
    }
    if let Some(stats) = out.object(r::R_GOV_STATS) {
        if let Some(blocks) = stats.get("block_count").and_then(number) {
            if let Some(prev) = b.block_count.filter(|p| blocks >= *p) {
                out.derive("violation_count", count_value(blocks - prev));
            }
            b.block_count = Some(blocks);
        }
    }
    if let Some(v) = out.value(r::R_OVERRIDE_STACK) {
        match number(v).filter(|n| *n >= 0.0) {
            Some(n) => out.derive("override_count", count_value(n)),
            None => out.invalid(
                r::R_OVERRIDE_STACK,
                format!("returned {}, expected a count", short(v)),
            ),
        }
    }
    // Detection reads `violation_count`; health, classification and repair read
    // `governance_violations`. Both carry the same value.
    if let Some(v) = out.metrics.get("governance_violations").cloned() {
        out.derive("violation_count", v);
    }
    if let Some(v) = out.metrics.get("violation_count").cloned() {
        out.derive("governance_violations", v);
    }
    out.finish()
}

/// Checks a provider's (or any merged) dict against the canonical kinds: returns the keys
/// that pass and an issue per dropped key.
pub fn check_metrics(source: &str, metrics: Metrics) -> (Metrics, Vec<Issue>) {
    let mut kept = Metrics::new();
    let mut issues = Vec::new();
    for (k, v) in metrics {
        match kind_of(&k) {
            Some(kind) if !kind.accepts(&v) => issues.push(Issue {
                source: source.to_owned(),
                kind: FaultKind::Invalid,
                message: format!(
                    "{source} gave {k}={} ({}), expected {}",
                    short(&v),
                    type_name(&v),
                    kind.describe()
                ),
            }),
            _ => {
                kept.insert(k, v);
            }
        }
    }
    (kept, issues)
}
