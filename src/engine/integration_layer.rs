//! The integration layer: canonical metrics from the FAZA layers, registered providers and
//! actions, and a record of everything that went wrong while talking to them.
//!
//! # Where metrics come from
//! The binding reads each layer object through the methods it actually has (see
//! [`reads`]), and [`adapters`] turns the answers into the canonical keys below. Three
//! sources, in increasing precedence: values derived from the real FAZA classes, the
//! reference's duck-typed probes (an explicit answer beats a derived one), and registered
//! metric providers (whose dicts are merged last).
//!
//! # Canonical keys
//!
//! | layer | key | unit | real source |
//! |---|---|---|---|
//! | faza25 | `queue_size` | tasks | `get_queue_status()["queue_size"]`; probe `get_queue_size()` |
//! | faza25 | `error_rate` | 0-1 | Δerror / Δ(done + error) of `tasks_by_status` since the previous sample |
//! | faza25 | `task_success_rate` | 0-1 | Δdone / Δ(done + error), same window |
//! | faza25 | `scheduler_efficiency` | 0-1 | busy workers / min(workers, busy + queued); 1.0 with no work |
//! | faza25 | `stuck_task_count`, `stuck_task_ids` | tasks, ids | RUNNING tasks started more than `stuck_task_seconds` ago |
//! | faza25 | `failed_task_ids` | ids | tasks that entered ERROR since the previous sample |
//! | faza25 | `cpu_usage`, `memory_usage` | 0-1 | probe `get_resource_usage()` only |
//! | faza27 | `cycle_count`, `cycles` | count, node lists | DFS back edges over the graph's edges; `[a, b, c]` means a -> b -> c -> a |
//! | faza27 | `bottleneck_count`, `bottleneck_detected`, `bottleneck_node` | nodes, bool, id | fan-in or fan-out >= 5 distinct neighbours |
//! | faza27 | `graph_complexity` | nodes + edges | node count + edge count |
//! | faza27 | `optimization_score` | 0-1 | probe `optimizer.get_optimization_score()` only |
//! | faza28 | `agent_failure_rate` | 0-1 | worst agent's Δerror_count / max(Δtick_count, Δerror_count) |
//! | faza28 | `failing_agents` | names | agents above 0.2, worst first |
//! | faza28 | `active_agent_count` | agents | enabled agents |
//! | faza28 | `scheduler_stuck` | bool | loop running, last tick older than max(10 tick periods, 5 s) |
//! | faza28.5 | `stability_score` | 0-1 | 1 - avg_severity of recent stability issues; 0 with a critical one |
//! | faza28.5 | `anomaly_count`, `anomaly_rate` | count, 0-1 | recent anomalies; agents with anomalies / agents |
//! | faza28.5 | `feedback_health` | 0-1 | FAZA 29 feedback loop stability score |
//! | faza29 | `risk_score` | 0-100 | `get_risk()["total_risk"]` |
//! | faza29 | `takeover_active` | bool | `takeover_manager.is_takeover_active()` or state takeover / safe_mode |
//! | faza29 | `violation_count` = `governance_violations` | blocks | Δ rule engine `block_count` since the previous sample |
//! | faza29 | `override_count` | overrides | `override_system.get_stack_size()` |
//!
//! [`adapters::CANONICAL`] is the authoritative list (with the probe each key also accepts);
//! [`canonical_table_markdown`] renders it for the docs. Keys without a real source
//! (`cpu_usage`, `communication_health`, `policy_effectiveness` ...) appear only when a
//! probe or provider supplies them: nothing is filled in with a constant.
//!
//! # Rates
//! Counters in the layers are cumulative. The core keeps the previous sample (per layer, and
//! per agent for FAZA 28) and reports the change since then. The first sample, and a sample in
//! which a counter went down (the layer cleared it), only set the baseline: the rate keys are
//! absent for that sample. A window with no completed task (no tick) gives no rate either.
//!
//! # Faults of the integration
//! A layer call that raises or times out, a value of the wrong kind, a provider that fails or
//! answers garbage, a failing action, callback or event bus: each is recorded as an
//! [`IntegrationFault`] (the newest [`MAX_FAULTS`] are kept) and counted per source. The other
//! metrics of the layer, and the other layers, are still returned.

pub mod actions;
pub mod adapters;
pub mod graph;
pub mod reads;
pub mod registry;
#[cfg(test)]
mod tests;

use crate::engine::clock::iso;
use crate::engine::detection_engine::Layer;
use crate::engine::value::Metrics;
use crate::value_enum;
use adapters::Baselines;
use chrono::NaiveDateTime;
use registry::Registry;
use std::collections::VecDeque;

/// Integration faults kept (the newest).
pub const MAX_FAULTS: usize = 100;
/// Fault sources counted separately; later new sources are counted under `"(other)"`.
pub const MAX_FAULT_SOURCES: usize = 256;
/// Longest fault message kept.
pub const MAX_MESSAGE: usize = 500;
/// Seconds a layer read or a metric provider may take (asynchronous collection).
pub const DEFAULT_CALL_TIMEOUT: f64 = 5.0;
/// Seconds a repair action or state provider may take.
pub const DEFAULT_ACTION_TIMEOUT: f64 = 30.0;
/// A RUNNING task started longer ago than this is stuck.
pub const DEFAULT_STUCK_TASK_SECONDS: f64 = 300.0;

value_enum! {
    /// The reference's four repair callback types.
    pub enum RepairType {
        GRAPH_REPAIR = "graph_repair",
        AGENT_REPAIR = "agent_repair",
        SCHEDULER_REPAIR = "scheduler_repair",
        GOVERNANCE_REPAIR = "governance_repair",
    }
}

/// How a call into a layer or a registered callable failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Raised,
    TimedOut,
    /// The answer was unusable (wrong type, NaN, not a dict ...).
    Invalid,
    /// The host event loop dropped the call.
    Lost,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Raised => "raised",
            FaultKind::TimedOut => "timed_out",
            FaultKind::Invalid => "invalid",
            FaultKind::Lost => "lost",
        }
    }
}

/// One thing that went wrong while talking to a layer or a registered callable.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationFault {
    /// What failed, e.g. `faza25.get_queue_status()`, `provider faza28:probe`, `event_bus`.
    pub source: String,
    /// The layer concerned, when there is one.
    pub layer: Option<String>,
    pub kind: FaultKind,
    pub message: String,
    pub timestamp: NaiveDateTime,
}

/// Errors per fault source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStats {
    pub source: String,
    pub errors: u64,
    pub last_error: String,
    pub last_error_at: NaiveDateTime,
}

/// The counters `get_statistics()` reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Per layer, in `Layer::ALL` order: collections that queried an object or provider.
    pub queries: [u64; 5],
    pub total_metrics_collected: u64,
    pub repair_actions_executed: u64,
    pub repair_actions_failed: u64,
    pub callbacks_executed: u64,
    pub callback_errors: u64,
    pub events_published: u64,
    pub event_errors: u64,
    pub faults_recorded: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// A RUNNING task older than this (seconds) is stuck.
    pub stuck_task_seconds: f64,
    /// Seconds a layer read or provider may take when collected asynchronously.
    pub call_timeout: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            stuck_task_seconds: DEFAULT_STUCK_TASK_SECONDS,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }
}

/// The layer of a standard name (`"faza25"` ... `"faza29"`).
pub fn layer_named(name: &str) -> Option<Layer> {
    Layer::ALL.iter().copied().find(|l| l.name() == name)
}

/// The layer a fault came from, by its `FaultSource` value (or a layer name).
pub fn layer_of_source(source: &str) -> Option<Layer> {
    match source {
        "faza25_orchestrator" => Some(Layer::Faza25),
        "faza27_taskgraph" | "faza27_5_optimizer" | "faza27_5" => Some(Layer::Faza27),
        "faza28_agent_loop" => Some(Layer::Faza28),
        "faza28_5_meta_layer" => Some(Layer::Faza28_5),
        "faza29_governance" => Some(Layer::Faza29),
        other => layer_named(other),
    }
}

fn clip(message: &str) -> String {
    if message.chars().count() <= MAX_MESSAGE {
        return message.to_owned();
    }
    message.chars().take(MAX_MESSAGE).collect::<String>() + "..."
}

/// The integration layer's state: counter baselines, statistics, recorded faults and the
/// registry of callables (handles of type `H`).
#[derive(Debug)]
pub struct IntegrationCore<H> {
    pub options: Options,
    baselines: Baselines,
    counters: Counters,
    faults: VecDeque<IntegrationFault>,
    sources: Vec<SourceStats>,
    registry: Registry<H>,
}

impl<H: Clone> IntegrationCore<H> {
    pub fn new(options: Options) -> Self {
        IntegrationCore {
            options,
            baselines: Baselines::default(),
            counters: Counters::default(),
            faults: VecDeque::new(),
            sources: Vec::new(),
            registry: Registry::default(),
        }
    }

    pub fn registry(&self) -> &Registry<H> {
        &self.registry
    }

    pub fn registry_mut(&mut self) -> &mut Registry<H> {
        &mut self.registry
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    pub fn baselines(&self) -> &Baselines {
        &self.baselines
    }

    /// Forgets a layer's previous samples (its object was replaced).
    pub fn reset_layer(&mut self, layer: Layer) {
        self.baselines.reset(layer);
    }

    /// Turns one layer read into canonical metrics, recording its issues as faults.
    pub fn map_layer(
        &mut self,
        layer: Layer,
        read: &reads::LayerRead,
        now: NaiveDateTime,
    ) -> Metrics {
        self.map_layer_as(layer, read, now, true)
    }

    /// `map_layer`. With `advance` false the rates are computed against the current baselines
    /// without moving them (only a missing one is set), so an observer such as a health check
    /// does not take the deltas the loop will read.
    pub fn map_layer_as(
        &mut self,
        layer: Layer,
        read: &reads::LayerRead,
        now: NaiveDateTime,
        advance: bool,
    ) -> Metrics {
        let cx = adapters::Context {
            now,
            stuck_task_seconds: self.options.stuck_task_seconds,
        };
        let mut scratch = if advance {
            None
        } else {
            Some(self.baselines.clone())
        };
        let baselines = match scratch.as_mut() {
            Some(b) => b,
            None => &mut self.baselines,
        };
        let (metrics, issues) = match layer {
            Layer::Faza25 => adapters::faza25(baselines, read, &cx),
            Layer::Faza27 => adapters::faza27(read),
            Layer::Faza28 => adapters::faza28(baselines, read, &cx),
            Layer::Faza28_5 => adapters::faza28_5(baselines, read),
            Layer::Faza29 => adapters::faza29(baselines, read),
        };
        if let Some(looked) = scratch {
            self.baselines.fill_missing_from(&looked);
        }
        for issue in issues {
            self.record_fault(
                &format!("{}.{}", layer.name(), issue.source),
                Some(layer.name()),
                issue.kind,
                &issue.message,
                now,
            );
        }
        metrics
    }

    /// Merges a provider's answer into `into` (its keys overwrite), or records its failure.
    /// Values of the wrong canonical kind are dropped and recorded.
    pub fn merge_provider(
        &mut self,
        layer: &str,
        provider_id: u64,
        answer: Result<Metrics, (FaultKind, String)>,
        into: &mut Metrics,
        now: NaiveDateTime,
    ) {
        let label = self
            .registry
            .providers()
            .iter()
            .find(|p| p.id == provider_id)
            .map(|p| p.label.clone())
            .unwrap_or_else(|| format!("#{provider_id}"));
        let source = format!("provider {layer}:{label}");
        match answer {
            Ok(metrics) => {
                let (kept, issues) = adapters::check_metrics(&source, metrics);
                let first = issues.first().map(|i| (i.kind, i.message.clone()));
                self.registry.record_provider(
                    provider_id,
                    first.as_ref().map(|(k, m)| (*k, m.as_str())),
                    now,
                );
                for issue in issues {
                    self.record_fault(&source, Some(layer), issue.kind, &issue.message, now);
                }
                for (k, v) in kept {
                    into.insert(k, v);
                }
            }
            Err((kind, message)) => {
                self.registry
                    .record_provider(provider_id, Some((kind, &message)), now);
                self.record_fault(&source, Some(layer), kind, &message, now);
            }
        }
    }

    /// Counts one collection of a layer.
    pub fn finish_layer(&mut self, layer: Option<Layer>, queried: bool, metrics: &Metrics) {
        if queried {
            if let Some(l) = layer {
                self.counters.queries[l.index()] += 1;
            }
        }
        self.counters.total_metrics_collected += metrics.len() as u64;
    }

    /// Records a fault and counts it under its source.
    pub fn record_fault(
        &mut self,
        source: &str,
        layer: Option<&str>,
        kind: FaultKind,
        message: &str,
        now: NaiveDateTime,
    ) {
        let message = clip(message);
        self.counters.faults_recorded += 1;
        let key = if self.sources.iter().any(|s| s.source == source)
            || self.sources.len() < MAX_FAULT_SOURCES
        {
            source
        } else {
            "(other)"
        };
        match self.sources.iter_mut().find(|s| s.source == key) {
            Some(s) => {
                s.errors += 1;
                s.last_error = message.clone();
                s.last_error_at = now;
            }
            None => self.sources.push(SourceStats {
                source: key.to_owned(),
                errors: 1,
                last_error: message.clone(),
                last_error_at: now,
            }),
        }
        if self.faults.len() >= MAX_FAULTS {
            self.faults.pop_front();
        }
        self.faults.push_back(IntegrationFault {
            source: source.to_owned(),
            layer: layer.map(str::to_owned),
            kind,
            message,
            timestamp: now,
        });
    }

    /// The recorded faults, oldest first.
    pub fn faults(&self) -> impl Iterator<Item = &IntegrationFault> {
        self.faults.iter()
    }

    /// Empties the fault list (the per-source counts stay); returns how many were removed.
    pub fn clear_faults(&mut self) -> usize {
        let n = self.faults.len();
        self.faults.clear();
        n
    }

    pub fn fault_sources(&self) -> &[SourceStats] {
        &self.sources
    }

    /// Records the outcome of a repair action or trigger.
    pub fn note_action(&mut self, ran: bool) {
        if ran {
            self.counters.repair_actions_executed += 1;
        } else {
            self.counters.repair_actions_failed += 1;
        }
    }
}

/// The canonical key table as markdown (for the docs).
pub fn canonical_table_markdown() -> String {
    let mut out = String::from("| layer | key | kind | unit | source |\n|---|---|---|---|---|\n");
    for c in adapters::CANONICAL {
        let kind = format!("{:?}", c.kind).to_lowercase();
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            c.layer.name(),
            c.key,
            kind,
            c.unit,
            c.source
        ));
    }
    out
}

/// A fault's timestamp as the statistics show it.
pub fn fault_time(f: &IntegrationFault) -> String {
    iso(&f.timestamp)
}
