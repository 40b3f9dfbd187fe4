//! What the binding read from one layer object, before any interpretation.
//!
//! The binding calls the methods a layer object actually has and stores each answer under the
//! name of the call, converted to a JSON value (only the fields the adapters need are picked
//! from large results). The engine then decides what the answers mean. A call that raised, or
//! whose answer could not be converted, is kept as an error so it is reported, not dropped.

use super::graph::Graph;
use serde_json::Value;

/// Why a call gave no usable value.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadError {
    /// The call raised; the text is `ExceptionType: message`.
    Raised(String),
    /// The answer could not be read (not JSON-able, NaN, wrong container, a coroutine ...).
    Invalid(String),
}

/// One agent as the agent manager lists it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentSample {
    /// `None` for an agent without a name (or an empty one): counted, not tracked.
    pub name: Option<String>,
    pub enabled: Option<bool>,
    pub tick_count: Option<f64>,
    pub error_count: Option<f64>,
}

/// The agent manager's statistics: its counts, and every agent's counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentsRead {
    pub total_agents: Option<f64>,
    pub enabled_agents: Option<f64>,
    pub agents: Vec<AgentSample>,
}

/// The answers of one layer read, in call order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerRead {
    entries: Vec<(&'static str, Result<Value, ReadError>)>,
    /// The task graph's nodes and edges, read straight into the engine's form (a JSON list
    /// of a hundred thousand edges would cost more than the analysis that reads it).
    graph: Option<Graph>,
    /// The agents, likewise (one JSON object per agent cost more than the rates).
    agents: Option<AgentsRead>,
}

impl LayerRead {
    pub fn new() -> Self {
        LayerRead::default()
    }

    pub fn push(&mut self, call: &'static str, answer: Result<Value, ReadError>) {
        self.entries.push((call, answer));
    }

    pub fn ok(&mut self, call: &'static str, value: Value) {
        self.push(call, Ok(value));
    }

    /// Records a graph read under `call`; its entry's value is null, the graph is
    /// [`LayerRead::graph`].
    pub fn set_graph(&mut self, call: &'static str, graph: Graph) {
        self.entries.push((call, Ok(Value::Null)));
        self.graph = Some(graph);
    }

    /// The graph recorded by [`LayerRead::set_graph`].
    pub fn graph(&self) -> Option<&Graph> {
        self.graph.as_ref()
    }

    /// Records the agents read under `call`; its entry's value is null, the agents are
    /// [`LayerRead::agents`].
    pub fn set_agents(&mut self, call: &'static str, agents: AgentsRead) {
        self.entries.push((call, Ok(Value::Null)));
        self.agents = Some(agents);
    }

    /// The agents recorded by [`LayerRead::set_agents`].
    pub fn agents(&self) -> Option<&AgentsRead> {
        self.agents.as_ref()
    }

    pub fn get(&self, call: &str) -> Option<&Result<Value, ReadError>> {
        self.entries
            .iter()
            .find(|(c, _)| *c == call)
            .map(|(_, r)| r)
    }

    /// The value of a call that answered.
    pub fn value(&self, call: &str) -> Option<&Value> {
        self.get(call).and_then(|r| r.as_ref().ok())
    }

    pub fn has(&self, call: &str) -> bool {
        self.get(call).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn errors(&self) -> impl Iterator<Item = (&'static str, &ReadError)> {
        self.entries
            .iter()
            .filter_map(|(c, r)| r.as_ref().err().map(|e| (*c, e)))
    }
}

// Call names. `P_*` are the reference's duck-typed probes (their answers are taken as given);
// `R_*` are reads of the real layer classes (only the listed fields are picked).

// FAZA 25 orchestrator
pub const P_QUEUE_SIZE: &str = "get_queue_size()";
pub const P_QUEUE_METRICS: &str = "get_queue_metrics()";
pub const P_SCHEDULER_STATS: &str = "get_scheduler_stats()";
pub const P_RESOURCE_USAGE: &str = "get_resource_usage()";
/// `{"queue_size": n, "tasks_by_status": {"queued", "running", "done", "error", "cancelled"}}`
pub const R_QUEUE_STATUS: &str = "get_queue_status()";
/// `{"num_workers": n, "busy": n}` (workers whose `current_task` is not None)
pub const R_WORKER_STATUS: &str = "get_worker_status()";
/// `{"running": [[id, started_at iso or null], ...], "failed": [id, ...], "truncated": bool}`
/// from `orchestrator.tasks` (or `list_tasks()`).
pub const R_TASKS: &str = "tasks";

// FAZA 27 task graph and FAZA 27.5 optimizer
pub const P_COMPLEXITY: &str = "get_complexity()";
/// `{"len": n, "items": [...]}` (items that could not be converted are null)
pub const P_DETECT_CYCLES: &str = "detect_cycles()";
pub const P_GRAPH_STATS: &str = "get_stats()";
/// The graph's nodes and edges: a typed [`Graph`] (`LayerRead::graph`), or as JSON
/// `{"nodes": [id, ...], "edges": [[src, dst], ...]}`
pub const R_EDGES: &str = "edges";
/// `{"len": n, "items": [...]}`
pub const R_FIND_CYCLES: &str = "find_all_cycles()";
/// `{"len": n, "items": [...]}`
pub const R_FIND_BOTTLENECKS: &str = "find_bottlenecks()";
pub const P_OPT_SCORE: &str = "optimizer.get_optimization_score()";
/// `{"len": n, "items": [...]}`
pub const P_OPT_BOTTLENECKS: &str = "optimizer.detect_bottlenecks()";

// FAZA 28 agent loop
pub const P_AGENT_STATS: &str = "get_agent_stats()";
pub const P_COMM_HEALTH: &str = "get_communication_health()";
/// `{"len": n, "items": []}`
pub const P_ACTIVE_AGENTS: &str = "get_active_agents()";
/// `{"running": bool, "iteration": n, "tick_rate": seconds}` from `AELController.get_stats()`
pub const R_LOOP_STATS: &str = "get_stats()";
/// The agents: typed ([`AgentsRead`], `LayerRead::agents`), or as JSON
/// `{"total_agents": n, "enabled_agents": n, "agents": [{"name", "enabled", "tick_count", "error_count"}]}`
pub const R_AGENTS: &str = "agent_manager.get_stats()";
/// `state_context.get("ael_last_tick")`: an iso text or null
pub const R_LAST_TICK: &str = "state_context.get('ael_last_tick')";

// FAZA 28.5 meta layer
pub const P_STABILITY: &str = "get_stability_score()";
pub const P_POLICY: &str = "get_policy_effectiveness()";
pub const P_ANOMALY_COUNT: &str = "get_anomaly_count()";
pub const P_FEEDBACK: &str = "get_feedback_health()";
/// `{"avg_severity": x, "critical_issues": n, "recent_issues": n}`
pub const R_STABILITY_SUMMARY: &str = "get_stability_summary()";
/// `{"recent_anomalies": n, "agents_with_anomalies": n}`
pub const R_ANOMALY_SUMMARY: &str = "get_anomaly_summary()";
/// The FAZA 29 feedback loop's `get_stability_score()` (read for the meta layer's entry)
pub const R_GOV_FEEDBACK: &str = "governance.feedback_loop.get_stability_score()";

// FAZA 29 governance
/// `{"overall_score" | "total_risk" | "risk_score": x}` (picked), or the raw answer if not a dict
pub const P_RISK: &str = "get_risk()";
/// `{"violations": n, "override_count": n}` (picked), or the raw answer if not a dict
pub const P_STATUS: &str = "get_status()";
/// The state's text (an Enum member's value), or the raw answer
pub const P_TAKEOVER_STATE: &str = "get_takeover_state()";
pub const R_TAKEOVER_ACTIVE: &str = "takeover_manager.is_takeover_active()";
/// `{"block_count": n}` from `get_statistics()["rule_engine"]`
pub const R_GOV_STATS: &str = "get_statistics()";
pub const R_OVERRIDE_STACK: &str = "override_system.get_stack_size()";
