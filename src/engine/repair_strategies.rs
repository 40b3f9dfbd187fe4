//! Repair engines for the graph, agents, the scheduler and governance.
//!
//! The engine plans and judges; the binding acts. A repair goes through four steps:
//!
//! 1. **Claim and pick a handler** (`claims`, `handler_for`): keyword rules on the fault type,
//!    with the classification category as a fallback for fault types no engine handles.
//! 2. **Plan** (`StrategyCore::plan`): from the fault's metrics and what the caller's context
//!    offers (`Offer`: which action verbs can run, the task graph's edges, the orchestrator's
//!    tasks) choose the action verb(s), their parameters and target, charge per-target
//!    budgets, and say how to re-measure (`Probe`). Nothing is planned that cannot run.
//! 3. **Act and measure**: the binding runs each `Step` (a callable from the context, or the
//!    layer method), then runs the probes and the caller's `verify` callable.
//! 4. **Judge** (`judge`): SUCCESS only when a re-measurement shows the fault gone; an action
//!    that raised or declined, or a measurement that still shows the fault, is FAILED; a
//!    measured improvement, or an agent contained by isolation, is PARTIAL; a restart or
//!    retry that ran, re-measured before anything happened (no value the fault is judged by
//!    yet), is PARTIAL "awaiting_evidence": applied, judged by later measurements; any other
//!    inconclusive measurement is FAILED (inconclusive); nothing to do or no way to do it is
//!    SKIPPED.
//!
//! Which engine claims which detected fault type (the handler it runs):
//!
//! | fault type | engine | handler | action verbs |
//! |---|---|---|---|
//! | `graph_cycle` | graph | break_cycle | `break_cycle` (weakest edge per cycle) |
//! | `graph_bottleneck` | graph | bottleneck | `relieve_bottleneck` |
//! | `scheduler_deadlock` | graph and scheduler | deadlock | `break_cycle` when the task graph has a cycle, else `reset_scheduler` |
//! | `agent_failure`, `*crash*` | agent | restart_agent | `restart_agent`, then `isolate_agent` once the budget is spent |
//! | `*stall*` | agent | stall | as restart_agent, when `stall_duration` >= 10 s |
//! | `stability_degradation`, `high_anomaly_rate` | agent | meta_state | `reset_meta_state` (FAZA 28.5 damping) |
//! | `high_error_rate`, `*task_fail*` | scheduler | retry_failed | `retry_task` per failed task |
//! | `*timeout*` | scheduler | retry_timed_out | `retry_task` |
//! | `queue_overload`, `*backlog*` | scheduler | shed_queue | `shed_load`, else `cancel_task` on the lowest-priority queued tasks |
//! | `resource_exhaustion` | scheduler | shed_resource | as shed_queue |
//! | `system_takeover` | governance | takeover | `request_recovery` |
//! | `high_risk_score`, `*risk*` | governance | risk | `governance_escalate` |
//! | `governance_violation` | governance | violation | `governance_escalate` |
//! | `*override*` | governance | override | `reset_overrides` |
//!
//! plus the reference's other handlers (complexity, cooperation, communication, performance,
//! threshold, rule conflict), each acting only through a caller-supplied callable.

pub mod budget;
pub mod conditions;
pub mod cycles;

use crate::engine::clock::now;
use crate::engine::enums::ValueEnum;
use crate::engine::value::{as_number, py_str, Metrics};
use crate::value_enum;
use budget::{BudgetPolicy, BudgetState, Budgets, Grant};
use chrono::NaiveDateTime;
use conditions::{Check, Condition};
use cycles::{Cut, GraphView};
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::Arc;

value_enum! {
    pub enum RepairStatus {
        SUCCESS = "success",
        PARTIAL = "partial",
        FAILED = "failed",
        SKIPPED = "skipped",
        IN_PROGRESS = "in_progress",
    }
}

/// Repairs kept in each engine's history.
pub const DEFAULT_HISTORY_SIZE: usize = 1000;
/// Agents or tasks one repair acts on at most.
pub const MAX_TARGETS_PER_REPAIR: usize = 8;
/// Queued tasks one load-shedding repair cancels at most.
pub const MAX_CANCELLED_PER_REPAIR: usize = 20;
/// The queue length detection treats as overloaded (shedding brings the queue back to it).
pub const QUEUE_LIMIT: f64 = 100.0;
/// The resource usage the reference treats as critical.
pub const RESOURCE_LIMIT: f64 = 0.95;

// ------------------------------------------------------------------------------------------
// Engines, handlers and claims

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    Graph,
    Agent,
    Scheduler,
    Governance,
}

impl EngineKind {
    pub const ALL: [EngineKind; 4] = [
        EngineKind::Graph,
        EngineKind::Agent,
        EngineKind::Scheduler,
        EngineKind::Governance,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Graph => "graph",
            EngineKind::Agent => "agent",
            EngineKind::Scheduler => "scheduler",
            EngineKind::Governance => "governance",
        }
    }

    fn rules(self) -> &'static [Rule] {
        match self {
            EngineKind::Graph => GRAPH_RULES,
            EngineKind::Agent => AGENT_RULES,
            EngineKind::Scheduler => SCHEDULER_RULES,
            EngineKind::Governance => GOVERNANCE_RULES,
        }
    }

    /// Keywords matched against the fault type and the classification category when no
    /// engine has a handler for the fault type (the reference's keywords plus a few).
    fn keywords(self) -> &'static [&'static str] {
        match self {
            EngineKind::Graph => &[
                "cycle",
                "graph",
                "topology",
                "bottleneck",
                "deadlock",
                "structural",
                "circular",
            ],
            EngineKind::Agent => &[
                "agent",
                "cooperation",
                "communication",
                "agent_fault",
                "stability",
                "anomaly",
                "oscillation",
            ],
            EngineKind::Scheduler => &[
                "timeout",
                "resource",
                "queue",
                "scheduling",
                "operational",
                "performance",
                "error_rate",
                "backlog",
                "overload",
                "latency",
            ],
            EngineKind::Governance => &[
                "governance",
                "policy",
                "violation",
                "rule",
                "override",
                "threshold",
                "takeover",
                "risk",
                "drift",
            ],
        }
    }
}

/// What kind of repair a fault needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handler {
    BreakCycle,
    Deadlock,
    Bottleneck,
    Complexity,
    RestartAgent,
    Stall,
    Cooperation,
    Communication,
    MetaState,
    RetryTimedOut,
    RetryFailed,
    ShedQueue,
    ShedResource,
    Performance,
    Takeover,
    Risk,
    Violation,
    Threshold,
    Override,
    RuleConflict,
}

impl Handler {
    pub fn name(self) -> &'static str {
        match self {
            Handler::BreakCycle => "break_cycle",
            Handler::Deadlock => "deadlock",
            Handler::Bottleneck => "bottleneck",
            Handler::Complexity => "complexity",
            Handler::RestartAgent => "restart_agent",
            Handler::Stall => "stall",
            Handler::Cooperation => "cooperation",
            Handler::Communication => "communication",
            Handler::MetaState => "meta_state",
            Handler::RetryTimedOut => "retry_timed_out",
            Handler::RetryFailed => "retry_failed",
            Handler::ShedQueue => "shed_queue",
            Handler::ShedResource => "shed_resource",
            Handler::Performance => "performance",
            Handler::Takeover => "takeover",
            Handler::Risk => "risk",
            Handler::Violation => "violation",
            Handler::Threshold => "threshold",
            Handler::Override => "override",
            Handler::RuleConflict => "rule_conflict",
        }
    }

    /// The metric conditions that mean the fault is present.
    pub fn conditions(self) -> &'static [Condition] {
        use conditions as c;
        match self {
            Handler::BreakCycle => c::CYCLES,
            Handler::Deadlock => c::DEADLOCK,
            Handler::Bottleneck => c::BOTTLENECK,
            Handler::Complexity => c::COMPLEXITY,
            Handler::RestartAgent => c::AGENT_FAILURE,
            Handler::Stall => c::STALL,
            Handler::Cooperation => c::COOPERATION,
            Handler::Communication => c::COMMUNICATION,
            Handler::MetaState => c::META_STATE,
            Handler::RetryTimedOut | Handler::RetryFailed => c::TASK_FAILURE,
            Handler::ShedQueue => c::QUEUE,
            Handler::ShedResource => c::RESOURCE,
            Handler::Performance => c::PERFORMANCE,
            Handler::Takeover => c::TAKEOVER,
            Handler::Risk => c::RISK,
            Handler::Violation => c::VIOLATION,
            Handler::Threshold => c::THRESHOLD,
            Handler::Override => c::OVERRIDE,
            Handler::RuleConflict => c::RULE_CONFLICT,
        }
    }
}

/// A handler rule: the fault type (lowercased) contains one of `any` and none of `none`.
struct Rule {
    any: &'static [&'static str],
    none: &'static [&'static str],
    handler: Handler,
}

const fn rule(
    any: &'static [&'static str],
    none: &'static [&'static str],
    handler: Handler,
) -> Rule {
    Rule { any, none, handler }
}

const GRAPH_RULES: &[Rule] = &[
    rule(&["cycle", "circular"], &[], Handler::BreakCycle),
    rule(&["deadlock"], &[], Handler::Deadlock),
    rule(&["bottleneck"], &[], Handler::Bottleneck),
    rule(&["complexity"], &[], Handler::Complexity),
];
const AGENT_RULES: &[Rule] = &[
    rule(&["crash", "failure"], &["task"], Handler::RestartAgent),
    rule(&["stall"], &[], Handler::Stall),
    rule(&["cooperation"], &[], Handler::Cooperation),
    rule(&["communication"], &[], Handler::Communication),
    rule(
        &["stability", "anomaly", "oscillation"],
        &[],
        Handler::MetaState,
    ),
];
const SCHEDULER_RULES: &[Rule] = &[
    rule(&["timeout"], &[], Handler::RetryTimedOut),
    rule(&["deadlock", "stuck"], &[], Handler::Deadlock),
    rule(
        &["error_rate", "task_fail", "failed_task"],
        &[],
        Handler::RetryFailed,
    ),
    rule(&["queue", "backlog", "overload"], &[], Handler::ShedQueue),
    rule(&["resource"], &[], Handler::ShedResource),
    rule(&["performance", "latency"], &[], Handler::Performance),
];
const GOVERNANCE_RULES: &[Rule] = &[
    rule(&["takeover"], &[], Handler::Takeover),
    rule(&["risk"], &[], Handler::Risk),
    rule(&["violation"], &[], Handler::Violation),
    rule(&["threshold", "breach"], &[], Handler::Threshold),
    rule(&["override"], &[], Handler::Override),
    rule(&["conflict"], &[], Handler::RuleConflict),
];

/// The handler `kind` runs for a fault type, if any (first matching rule).
pub fn handler_for(kind: EngineKind, fault_type: &str) -> Option<Handler> {
    let ft = lowercase(fault_type);
    kind.rules()
        .iter()
        .find(|r| r.any.iter().any(|k| ft.contains(k)) && !r.none.iter().any(|k| ft.contains(k)))
        .map(|r| r.handler)
}

/// Fault types are nearly always lower case already: copy only when they are not.
fn lowercase(text: &str) -> std::borrow::Cow<'_, str> {
    if text
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        std::borrow::Cow::Owned(text.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Whether `kind` claims the fault. A fault type some engine has a handler for is claimed by
/// exactly the engines with a handler (so a takeover is never claimed by the scheduler just
/// because the classifier called it "operational"). Any other fault type falls back to the
/// keywords, matched against the fault type and the category, as the reference did.
pub fn claims(kind: EngineKind, fault_type: &str, category: Option<&str>) -> bool {
    if EngineKind::ALL
        .iter()
        .any(|k| handler_for(*k, fault_type).is_some())
    {
        return handler_for(kind, fault_type).is_some();
    }
    let ft = lowercase(fault_type);
    let cat = category.map(str::to_lowercase).unwrap_or_default();
    kind.keywords()
        .iter()
        .any(|k| ft.contains(k) || cat.contains(k))
}

// ------------------------------------------------------------------------------------------
// Action verbs, offers and plans

value_enum! {
    /// The action verbs a repair can run. A caller supplies any of them as a callable in
    /// `context["actions"][verb]` (called with the keyword parameters listed in the binding's
    /// documentation); several also run through a layer object from the context.
    pub enum Verb {
        BREAK_CYCLE = "break_cycle",
        RESET_SCHEDULER = "reset_scheduler",
        RELIEVE_BOTTLENECK = "relieve_bottleneck",
        SIMPLIFY_GRAPH = "simplify_graph",
        RESTART_AGENT = "restart_agent",
        ISOLATE_AGENT = "isolate_agent",
        RESET_COOPERATION = "reset_cooperation",
        FLUSH_MESSAGES = "flush_messages",
        RESET_META_STATE = "reset_meta_state",
        RETRY_TASK = "retry_task",
        CANCEL_TASK = "cancel_task",
        SHED_LOAD = "shed_load",
        REPRIORITIZE_QUEUE = "reprioritize_queue",
        GOVERNANCE_ESCALATE = "governance_escalate",
        RESET_OVERRIDES = "reset_overrides",
        REQUEST_RECOVERY = "request_recovery",
        ADJUST_THRESHOLD = "adjust_threshold",
        RESOLVE_RULE_CONFLICT = "resolve_rule_conflict",
    }
}

impl Verb {
    /// Whether the action's effect shows only through later activity: a restarted agent must
    /// tick, a resubmitted task must finish, before any measurement can tell.
    pub fn shows_effect_later(self) -> bool {
        matches!(self, Verb::RESTART_AGENT | Verb::RETRY_TASK)
    }
}

/// A task as the orchestrator lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInfo {
    pub id: String,
    /// FAZA 25 priority: higher is more important (default 5).
    pub priority: f64,
}

/// What the caller's context offers the planner.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    available: u32,
    /// The task graph's edges, when the handler wants them and the context has a graph.
    pub graph: Option<GraphView>,
    /// Failed tasks (retry handlers) or queued tasks (shedding), in the orchestrator's order.
    pub tasks: Vec<TaskInfo>,
}

impl Offer {
    pub fn allow(&mut self, verb: Verb) {
        self.available |= 1 << verb.index();
    }
    pub fn has(&self, verb: Verb) -> bool {
        self.available & (1 << verb.index()) != 0
    }
    pub fn with(mut self, verbs: &[Verb]) -> Self {
        for v in verbs {
            self.allow(*v);
        }
        self
    }
}

/// Which context facts a handler wants gathered before planning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub graph: bool,
    pub failed_tasks: bool,
    pub queued_tasks: bool,
}

/// What the binding must gather for this fault (only what the handler will use).
pub fn needs(handler: Handler, fault: &FaultInfo) -> Needs {
    match handler {
        Handler::BreakCycle | Handler::Deadlock => Needs {
            graph: true,
            ..Needs::default()
        },
        Handler::RetryTimedOut | Handler::RetryFailed => Needs {
            failed_tasks: task_targets(&fault.metrics).is_empty(),
            ..Needs::default()
        },
        Handler::ShedQueue | Handler::ShedResource => Needs {
            queued_tasks: true,
            ..Needs::default()
        },
        _ => Needs::default(),
    }
}

/// The fault as the engine reads it (duck-typed from any object by the binding).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultInfo {
    pub fault_id: String,
    pub fault_type: String,
    /// Shared with the report's metadata, which hands Python its own copy when read.
    pub metrics: Arc<Metrics>,
}

/// One action to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub verb: Verb,
    /// Keyword parameters, in the order the callable receives them.
    pub params: Metrics,
    /// The agent, task or edge acted on.
    pub target: Option<String>,
    /// A human line for `actions_taken`.
    pub describe: String,
}

/// A re-measurement the binding runs after acting, when the context can provide it.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// `task_graph.has_cycle()`, or a cycle search over the re-read edges -> `has_cycle`.
    HasCycle,
    /// The orchestrator's queue length -> `queue_size`.
    QueueSize,
    /// `override_system.get_stack_size()` -> `override_count`.
    OverrideStack,
    /// `get_takeover_state()` -> `takeover_active`.
    TakeoverState,
    /// `get_risk()["total_risk"]` -> `risk_score`.
    RiskScore,
    /// The named agent's `enabled` attribute (confirms an isolation).
    AgentEnabled(String),
}

impl Probe {
    pub fn name(&self) -> &'static str {
        match self {
            Probe::HasCycle => "has_cycle",
            Probe::QueueSize => "queue_size",
            Probe::OverrideStack => "override_stack",
            Probe::TakeoverState => "takeover_state",
            Probe::RiskScore => "risk_score",
            Probe::AgentEnabled(_) => "agent_enabled",
        }
    }
}

/// The state of one target's budget when the plan was made.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetNote {
    pub target: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub exhausted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    NoHandler,
    ConditionAbsent,
    NoTarget,
    NoAction,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::NoHandler => "no_handler",
            SkipReason::ConditionAbsent => "condition_absent",
            SkipReason::NoTarget => "no_target",
            SkipReason::NoAction => "no_action",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActPlan {
    pub handler: Handler,
    pub steps: Vec<Step>,
    pub probes: Vec<Probe>,
    /// The plan contains an isolation or leaves a target unrepaired: the best outcome is PARTIAL.
    pub contained: bool,
    /// Lines for `actions_taken` before the steps (what was decided and why).
    pub notes: Vec<String>,
    pub budget: Vec<BudgetNote>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Act(ActPlan),
    Skip {
        handler: Option<Handler>,
        reason: SkipReason,
        message: String,
    },
    /// Every target's budget is spent and nothing else can be done.
    GiveUp {
        handler: Handler,
        message: String,
        budget: Vec<BudgetNote>,
    },
}

impl Plan {
    pub fn handler(&self) -> Option<Handler> {
        match self {
            Plan::Act(a) => Some(a.handler),
            Plan::Skip { handler, .. } => *handler,
            Plan::GiveUp { handler, .. } => Some(*handler),
        }
    }
}

fn params(pairs: Vec<(&str, Value)>) -> Metrics {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn step(verb: Verb, pairs: Vec<(&str, Value)>, target: Option<String>, describe: String) -> Step {
    Step {
        verb,
        params: params(pairs),
        target,
        describe,
    }
}

/// The names in `keys` (strings) and `list_keys` (lists of strings), deduplicated, capped.
fn names_from(metrics: &Metrics, keys: &[&str], list_keys: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |v: &Value| {
        let name = match v {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        if !out.contains(&name) && out.len() < MAX_TARGETS_PER_REPAIR {
            out.push(name);
        }
    };
    for k in keys {
        if let Some(v) = metrics.get(*k) {
            push(v);
        }
    }
    for k in list_keys {
        if let Some(Value::Array(items)) = metrics.get(*k) {
            for item in items {
                push(item);
            }
        }
    }
    out
}

/// Agents named by the fault: `agent_name`, `agent_id`, `agent`, then the lists
/// `failing_agents` and `agents`.
pub fn agent_targets(metrics: &Metrics) -> Vec<String> {
    names_from(
        metrics,
        &["agent_name", "agent_id", "agent"],
        &["failing_agents", "agents"],
    )
}

/// Tasks named by the fault: `task_id`, then the lists `task_ids`, `failed_task_ids` (what
/// detection passes through) and `failed_tasks`.
pub fn task_targets(metrics: &Metrics) -> Vec<String> {
    names_from(
        metrics,
        &["task_id"],
        &["task_ids", "failed_task_ids", "failed_tasks"],
    )
}

/// Node lists under `metrics["cycles"]` (lists of strings or numbers).
fn listed_cycles(metrics: &Metrics) -> Vec<Vec<String>> {
    let Some(Value::Array(cycles)) = metrics.get("cycles") else {
        return Vec::new();
    };
    cycles
        .iter()
        .filter_map(|c| match c {
            Value::Array(nodes) => {
                let names: Vec<String> = nodes.iter().map(py_str).collect();
                (!names.is_empty()).then_some(names)
            }
            _ => None,
        })
        .collect()
}

fn no_action(handler: Handler, verbs: &[Verb], hint: &str) -> Plan {
    let names: Vec<&str> = verbs.iter().map(|v| v.value()).collect();
    Plan::Skip {
        handler: Some(handler),
        reason: SkipReason::NoAction,
        message: format!("no action available for {} ({hint})", names.join(" or ")),
    }
}

fn no_target(handler: Handler, message: impl Into<String>) -> Plan {
    Plan::Skip {
        handler: Some(handler),
        reason: SkipReason::NoTarget,
        message: message.into(),
    }
}

fn metric_value(metrics: &Metrics, key: &str) -> Value {
    metrics.get(key).cloned().unwrap_or(Value::Null)
}

fn metric_number(metrics: &Metrics, key: &str) -> Option<f64> {
    metrics.get(key).and_then(as_number)
}

fn show(v: f64) -> String {
    crate::engine::pyfmt::float_repr(v)
}

fn cut_steps(cuts: &[Cut]) -> Vec<Step> {
    cuts.iter()
        .map(|cut| {
            let e = &cut.edge;
            let mut strength = Vec::new();
            if e.weak {
                strength.push("weak".to_string());
            }
            if let Some(w) = e.weight {
                strength.push(format!("weight {}", show(w)));
            }
            let strength = if strength.is_empty() {
                String::new()
            } else {
                format!(" ({})", strength.join(", "))
            };
            let mut ring = cut.cycle.clone();
            if let Some(first) = cut.cycle.first() {
                ring.push(first.clone());
            }
            step(
                Verb::BREAK_CYCLE,
                vec![
                    ("src", Value::String(e.src.clone())),
                    ("dst", Value::String(e.dst.clone())),
                    (
                        "cycle",
                        Value::Array(cut.cycle.iter().cloned().map(Value::String).collect()),
                    ),
                ],
                Some(format!("{} -> {}", e.src, e.dst)),
                format!(
                    "break_cycle: remove edge {} -> {}{strength} from cycle {}",
                    e.src,
                    e.dst,
                    ring.join(" -> ")
                ),
            )
        })
        .collect()
}

/// Plans cycle cuts from the graph (when read) or from the listed cycles.
fn plan_cycle_cuts(handler: Handler, fault: &FaultInfo, offer: &Offer) -> Result<ActPlan, Plan> {
    let mut notes = Vec::new();
    let (cuts, probes) = if let Some(view) = &offer.graph {
        let plan = cycles::plan_cuts(view, cycles::MAX_EDGES_REMOVED);
        if plan.cuts.is_empty() {
            return Err(Plan::Skip {
                handler: Some(handler),
                reason: SkipReason::ConditionAbsent,
                message: format!(
                    "nothing to repair: the task graph ({} edges) has no cycle",
                    view.edge_count()
                ),
            });
        }
        if !plan.acyclic_after {
            notes.push(format!(
                "more cycles remain than one repair removes ({} edges); the rest are left for the next repair",
                cycles::MAX_EDGES_REMOVED
            ));
        }
        (plan.cuts, vec![Probe::HasCycle])
    } else {
        let listed = listed_cycles(&fault.metrics);
        if listed.is_empty() {
            return Err(no_target(
                handler,
                "no cycle to break: the context has no readable task_graph and fault.metrics has no 'cycles' list",
            ));
        }
        (
            cycles::plan_cuts_from_listed(&listed, None, cycles::MAX_EDGES_REMOVED),
            Vec::new(),
        )
    };
    notes.insert(
        0,
        format!("{} cycle(s) to break at the weakest edge", cuts.len()),
    );
    Ok(ActPlan {
        handler,
        steps: cut_steps(&cuts),
        probes,
        contained: false,
        notes,
        budget: Vec::new(),
    })
}

fn single(handler: Handler, s: Step, probes: Vec<Probe>) -> Plan {
    Plan::Act(ActPlan {
        handler,
        steps: vec![s],
        probes,
        contained: false,
        notes: Vec::new(),
        budget: Vec::new(),
    })
}

// ------------------------------------------------------------------------------------------
// Outcomes, evidence and the verdict

/// What running one step did.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The action ran. `via` names what ran it (`actions['x']`, `task_graph.remove_edge`).
    Done {
        via: String,
        returned: Option<Value>,
    },
    /// The action ran and answered `False` (or a layer refused, e.g. a recovery cooldown).
    Declined { via: String, detail: String },
    /// The action raised (or could not be run); `error` is the exception text.
    Failed { via: String, error: String },
}

/// One re-measurement after acting.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// A yes/no answer (the caller's `verify` returning a bool).
    Verdict { source: String, passed: bool },
    /// Fresh metrics, checked against the fault's conditions.
    Measured { source: String, metrics: Metrics },
    /// Whether an agent is enabled after an isolation.
    Enabled {
        source: String,
        agent: String,
        enabled: bool,
    },
    /// The measurement raised.
    Error { source: String, error: String },
    /// The measurement answered something unusable.
    Invalid { source: String, message: String },
}

/// What a repair produced, ready to become a `RepairResult`.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub status: RepairStatus,
    pub verification_passed: bool,
    pub success_rate: f64,
    pub actions_taken: Vec<String>,
    pub side_effects: Vec<String>,
    pub metadata: ReportMeta,
}

/// `metadata["reason"]` of a repair whose actions all ran but whose re-measurement came before
/// any activity could show their effect (a restart, a retry): PARTIAL, not verified.
pub const AWAITING_EVIDENCE: &str = "awaiting_evidence";

impl Report {
    /// Applied, and not judged yet: see [`AWAITING_EVIDENCE`].
    pub fn awaiting_evidence(&self) -> bool {
        self.status == RepairStatus::PARTIAL
            && self.metadata.get("reason").as_ref().and_then(Value::as_str)
                == Some(AWAITING_EVIDENCE)
    }
}

/// A report's metadata. What every report carries (the fault's type and metrics, the engine,
/// the handler) is kept as values and what the judgement adds as a map; the dict is built
/// only when read, which most results never are.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportMeta {
    kind: EngineKind,
    handler: Option<Handler>,
    fault_type: String,
    metrics: Arc<Metrics>,
    added: Metrics,
}

impl ReportMeta {
    fn new(kind: EngineKind, fault: &FaultInfo, handler: Option<Handler>) -> Self {
        ReportMeta {
            kind,
            handler,
            fault_type: fault.fault_type.clone(),
            metrics: fault.metrics.clone(),
            added: Map::new(),
        }
    }

    fn insert(&mut self, key: &str, value: Value) {
        self.added.insert(key.to_owned(), value);
    }

    /// One entry, as `to_map()[key]` would give it.
    pub fn get(&self, key: &str) -> Option<Value> {
        match key {
            "fault_type" => Some(Value::String(self.fault_type.clone())),
            // A copy: callers may change the result without touching the fault (D48).
            "metrics" => Some(Value::Object((*self.metrics).clone())),
            "engine" => Some(Value::String(self.kind.name().into())),
            "handler" => Some(
                self.handler
                    .map(|h| Value::String(h.name().into()))
                    .unwrap_or(Value::Null),
            ),
            _ => self.added.get(key).cloned(),
        }
    }

    /// The metadata dict: fault_type, metrics, engine, handler, then what the judgement added.
    pub fn to_map(&self) -> Metrics {
        let mut m = Map::new();
        for key in ["fault_type", "metrics", "engine", "handler"] {
            if let Some(v) = self.get(key) {
                m.insert(key.into(), v);
            }
        }
        for (k, v) in &self.added {
            m.insert(k.clone(), v.clone());
        }
        m
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Passed,
    Improved,
    Failed,
    Errored,
    Inconclusive,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Improved => "improved",
            Verdict::Failed => "failed",
            Verdict::Errored => "error",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

fn success_rate(status: RepairStatus) -> f64 {
    match status {
        RepairStatus::SUCCESS => 1.0,
        RepairStatus::PARTIAL => 0.5,
        _ => 0.0,
    }
}

fn budget_json(notes: &[BudgetNote]) -> Value {
    Value::Array(
        notes
            .iter()
            .map(|n| {
                json!({"target": n.target, "attempts": n.attempts, "max_attempts": n.max_attempts, "exhausted": n.exhausted})
            })
            .collect(),
    )
}

fn side_effect(s: &Step, returned: &Option<Value>) -> String {
    let target = s.target.clone().unwrap_or_default();
    match s.verb {
        Verb::BREAK_CYCLE => format!("edge {target} removed from the task graph"),
        Verb::RESTART_AGENT => format!("agent {target} restarted"),
        Verb::ISOLATE_AGENT => format!("agent {target} disabled (enabled=False) until re-enabled"),
        Verb::RETRY_TASK => match returned {
            Some(Value::String(id)) => format!("task {target} resubmitted as {id}"),
            _ => format!("task {target} resubmitted"),
        },
        Verb::CANCEL_TASK => format!("queued task {target} cancelled"),
        Verb::RESET_META_STATE => "meta-layer anomaly and stability history cleared".into(),
        Verb::RESET_OVERRIDES => "governance override stack cleared".into(),
        Verb::REQUEST_RECOVERY => "governance takeover recovery forced".into(),
        Verb::GOVERNANCE_ESCALATE => "escalated to governance".into(),
        Verb::RESET_SCHEDULER => "agent scheduler state reset".into(),
        Verb::SHED_LOAD => "load shed".into(),
        _ => format!("{} applied", s.verb.value()),
    }
}

/// Whether the run goes on after `outcome`. A failure stops it; a decline stops it too,
/// except for `cancel_task`, where a task that started running meanwhile is simply not
/// shed and the queue measurement decides.
pub fn continues_after(step: &Step, outcome: &StepOutcome) -> bool {
    match outcome {
        StepOutcome::Done { .. } => true,
        StepOutcome::Declined { .. } => step.verb == Verb::CANCEL_TASK,
        StepOutcome::Failed { .. } => false,
    }
}

/// Whether every step ran far enough for the result to be measured.
pub fn ready_to_verify(act: &ActPlan, outcomes: &[StepOutcome]) -> bool {
    outcomes.len() == act.steps.len()
        && act
            .steps
            .iter()
            .zip(outcomes)
            .all(|(s, o)| continues_after(s, o))
}

/// Turns a plan, what its steps did and what was measured afterwards into a report.
/// `outcomes` has one entry per step that ran, in order (a run stops at the first failure).
pub fn judge(
    kind: EngineKind,
    fault: &FaultInfo,
    plan: &Plan,
    outcomes: &[StepOutcome],
    evidence: &[Evidence],
) -> Report {
    let mut metadata = ReportMeta::new(kind, fault, plan.handler());
    let act = match plan {
        Plan::Skip {
            reason, message, ..
        } => {
            metadata.insert("reason", Value::String(reason.as_str().into()));
            return Report {
                status: RepairStatus::SKIPPED,
                verification_passed: false,
                success_rate: 0.0,
                actions_taken: vec![message.clone()],
                side_effects: Vec::new(),
                metadata,
            };
        }
        Plan::GiveUp {
            message, budget, ..
        } => {
            metadata.insert("reason", Value::String("budget_exhausted".into()));
            metadata.insert("budget", budget_json(budget));
            return Report {
                status: RepairStatus::FAILED,
                verification_passed: false,
                success_rate: 0.0,
                actions_taken: vec![message.clone()],
                side_effects: Vec::new(),
                metadata,
            };
        }
        Plan::Act(a) => a,
    };

    let mut actions_taken = act.notes.clone();
    let mut side_effects = Vec::new();
    let mut action_meta = Vec::new();
    let mut first_error: Option<String> = None;
    let mut declined = false;
    for (i, s) in act.steps.iter().enumerate() {
        let mut entry = Map::new();
        entry.insert("verb".into(), Value::String(s.verb.value().into()));
        entry.insert("params".into(), Value::Object(s.params.clone()));
        entry.insert(
            "target".into(),
            s.target.clone().map(Value::String).unwrap_or(Value::Null),
        );
        match outcomes.get(i) {
            Some(StepOutcome::Done { via, returned }) => {
                actions_taken.push(format!("{} via {via}: done", s.describe));
                side_effects.push(side_effect(s, returned));
                entry.insert("via".into(), Value::String(via.clone()));
                entry.insert("outcome".into(), Value::String("done".into()));
                if let Some(r) = returned {
                    entry.insert("returned".into(), r.clone());
                }
            }
            Some(o @ StepOutcome::Declined { via, detail }) => {
                actions_taken.push(format!("{} via {via}: declined ({detail})", s.describe));
                entry.insert("via".into(), Value::String(via.clone()));
                entry.insert("outcome".into(), Value::String("declined".into()));
                entry.insert("detail".into(), Value::String(detail.clone()));
                if !continues_after(s, o) {
                    declined = true;
                }
            }
            Some(StepOutcome::Failed { via, error }) => {
                actions_taken.push(format!("{} via {via}: failed: {error}", s.describe));
                entry.insert("via".into(), Value::String(via.clone()));
                entry.insert("outcome".into(), Value::String("error".into()));
                entry.insert("error".into(), Value::String(error.clone()));
                first_error.get_or_insert_with(|| format!("{}: {error}", s.verb.value()));
            }
            None => {
                actions_taken.push(format!(
                    "{}: not run (an earlier action failed)",
                    s.describe
                ));
                entry.insert("outcome".into(), Value::String("not_run".into()));
            }
        }
        action_meta.push(Value::Object(entry));
    }
    metadata.insert("actions", Value::Array(action_meta));
    if !act.budget.is_empty() {
        metadata.insert("budget", budget_json(&act.budget));
    }

    let all_done = first_error.is_none() && !declined && ready_to_verify(act, outcomes);
    let (status, verdict) = if let Some(err) = &first_error {
        metadata.insert("error", Value::String(err.clone()));
        metadata.insert("reason", Value::String("action_failed".into()));
        (RepairStatus::FAILED, None)
    } else if !all_done {
        metadata.insert("reason", Value::String("action_declined".into()));
        (RepairStatus::FAILED, None)
    } else {
        let Weighed {
            verdict,
            checks,
            still_enabled,
            contained_all,
            nothing_measured_yet,
        } = weigh(act, fault, evidence, &mut actions_taken);
        // Every target restarted or retried, and the only measurement came before the effect
        // could show: applied, awaiting evidence. Anything else inconclusive stays FAILED.
        let awaiting = verdict == Verdict::Inconclusive
            && nothing_measured_yet
            && !act.contained
            && act.steps.iter().all(|s| s.verb.shows_effect_later());
        if verdict == Verdict::Inconclusive {
            actions_taken.push(if awaiting {
                "nothing measured since the action yet (no value this fault is judged by): applied, awaiting evidence from later measurements".into()
            } else {
                "no conclusive re-measurement: the fault is not known to be gone".into()
            });
        }
        let mut verification = Map::new();
        verification.insert("verdict".into(), Value::String(verdict.as_str().into()));
        verification.insert("checks".into(), Value::Array(checks));
        metadata.insert("verification", Value::Object(verification));
        let status = if still_enabled {
            RepairStatus::FAILED
        } else {
            match verdict {
                Verdict::Passed if !act.contained => RepairStatus::SUCCESS,
                Verdict::Passed | Verdict::Improved => RepairStatus::PARTIAL,
                Verdict::Inconclusive if act.contained && contained_all => RepairStatus::PARTIAL,
                Verdict::Inconclusive if awaiting => RepairStatus::PARTIAL,
                _ => RepairStatus::FAILED,
            }
        };
        let reason = match (status, verdict) {
            (RepairStatus::SUCCESS, _) => None,
            (_, _) if still_enabled => Some("isolation_not_confirmed"),
            (RepairStatus::PARTIAL, Verdict::Improved) => Some("improved"),
            (RepairStatus::PARTIAL, Verdict::Inconclusive) if awaiting => Some(AWAITING_EVIDENCE),
            (RepairStatus::PARTIAL, _) => Some("contained"),
            (_, Verdict::Failed) => Some("verification_failed"),
            (_, Verdict::Errored) => Some("verification_error"),
            _ => Some("inconclusive"),
        };
        if let Some(r) = reason {
            metadata.insert("reason", Value::String(r.into()));
        }
        (status, Some(verdict))
    };
    Report {
        status,
        verification_passed: verdict == Some(Verdict::Passed),
        success_rate: success_rate(status),
        actions_taken,
        side_effects,
        metadata,
    }
}

/// What the evidence says.
struct Weighed {
    verdict: Verdict,
    /// One JSON entry per check.
    checks: Vec<Value>,
    /// An isolated agent is still enabled.
    still_enabled: bool,
    /// There were isolations and every one was confirmed.
    contained_all: bool,
    /// There was evidence, and all of it was fresh metrics without any value the fault is
    /// judged by: nothing has happened since the action (no tick, no finished task).
    nothing_measured_yet: bool,
}

/// Weighs the evidence against the fault's conditions.
fn weigh(
    act: &ActPlan,
    fault: &FaultInfo,
    evidence: &[Evidence],
    actions_taken: &mut Vec<String>,
) -> Weighed {
    let conditions = act.handler.conditions();
    let mut checks = Vec::new();
    let mut results: Vec<Check> = Vec::new();
    let mut errored = false;
    let mut still_enabled = false;
    let mut nothing_measured_yet = !evidence.is_empty();
    let isolations = act
        .steps
        .iter()
        .filter(|s| s.verb == Verb::ISOLATE_AGENT)
        .count();
    let mut confirmed = 0;
    for ev in evidence {
        match ev {
            Evidence::Verdict { source, passed } => {
                nothing_measured_yet = false;
                let r = if *passed {
                    Check::Cleared
                } else {
                    Check::Persists
                };
                results.push(r);
                actions_taken.push(format!(
                    "verified with {source}: {}",
                    if *passed {
                        "fault gone"
                    } else {
                        "fault still present"
                    }
                ));
                checks.push(json!({"source": source, "result": r.as_str(), "value": passed}));
            }
            Evidence::Measured { source, metrics } => {
                // A key present but unreadable is an unusable answer, not the absence of one.
                if conditions.iter().any(|c| metrics.contains_key(c.key)) {
                    nothing_measured_yet = false;
                }
                let (r, notes) = conditions::check(conditions, &fault.metrics, metrics);
                results.push(r);
                let shown = if notes.is_empty() {
                    "no value this fault is judged by".to_string()
                } else {
                    notes.join(", ")
                };
                actions_taken.push(format!("verified with {source}: {shown} -> {}", r.as_str()));
                checks.push(json!({"source": source, "result": r.as_str(), "values": Value::Object(metrics.clone())}));
            }
            Evidence::Enabled {
                source,
                agent,
                enabled,
            } => {
                nothing_measured_yet = false;
                if *enabled {
                    still_enabled = true;
                } else {
                    confirmed += 1;
                }
                let r = if *enabled {
                    "still_enabled"
                } else {
                    "isolated"
                };
                actions_taken.push(format!(
                    "checked {source}: agent {agent} enabled={}",
                    if *enabled { "True" } else { "False" }
                ));
                checks.push(json!({"source": source, "result": r, "agent": agent}));
            }
            Evidence::Error { source, error } => {
                errored = true;
                nothing_measured_yet = false;
                actions_taken.push(format!("verification with {source} failed: {error}"));
                checks.push(json!({"source": source, "result": "error", "error": error}));
            }
            Evidence::Invalid { source, message } => {
                results.push(Check::Unknown);
                nothing_measured_yet = false;
                actions_taken.push(format!("verification with {source} is unusable: {message}"));
                checks.push(json!({"source": source, "result": "unknown", "error": message}));
            }
        }
    }
    let verdict = if results.contains(&Check::Persists) {
        Verdict::Failed
    } else if errored {
        Verdict::Errored
    } else if results.contains(&Check::Improved) {
        Verdict::Improved
    } else if results.contains(&Check::Cleared) {
        Verdict::Passed
    } else {
        Verdict::Inconclusive
    };
    Weighed {
        verdict,
        checks,
        still_enabled,
        contained_all: isolations > 0 && confirmed == isolations,
        nothing_measured_yet,
    }
}

/// The layer measurements that can re-check a fault of this kind later (`verify_repair`).
pub fn recheck_probes(handler: Handler) -> Vec<Probe> {
    match handler {
        Handler::BreakCycle | Handler::Deadlock => vec![Probe::HasCycle],
        Handler::ShedQueue => vec![Probe::QueueSize],
        Handler::Override => vec![Probe::OverrideStack],
        Handler::Takeover => vec![Probe::TakeoverState],
        Handler::Risk => vec![Probe::RiskScore],
        _ => Vec::new(),
    }
}

/// Whether fresh evidence shows the fault gone: `Some(true)` cleared, `Some(false)` still
/// there (or a check raised), `None` when nothing conclusive was measured.
pub fn recheck(handler: Handler, fault: &FaultInfo, evidence: &[Evidence]) -> Option<bool> {
    let mut cleared = false;
    for ev in evidence {
        let result = match ev {
            Evidence::Verdict { passed, .. } => {
                if *passed {
                    Check::Cleared
                } else {
                    Check::Persists
                }
            }
            Evidence::Measured { metrics, .. } => {
                conditions::check(handler.conditions(), &fault.metrics, metrics).0
            }
            Evidence::Error { .. } => return Some(false),
            Evidence::Enabled { .. } | Evidence::Invalid { .. } => Check::Unknown,
        };
        match result {
            Check::Persists | Check::Improved => return Some(false),
            Check::Cleared => cleared = true,
            Check::Unknown => {}
        }
    }
    cleared.then_some(true)
}

/// A report for a repair that could not start because reading the context raised.
pub fn judge_context_error(
    kind: EngineKind,
    fault: &FaultInfo,
    handler: Option<Handler>,
    error: &str,
) -> Report {
    let mut metadata = ReportMeta::new(kind, fault, handler);
    metadata.insert("reason", Value::String("context_error".into()));
    metadata.insert("error", Value::String(error.into()));
    Report {
        status: RepairStatus::FAILED,
        verification_passed: false,
        success_rate: 0.0,
        actions_taken: vec![format!("could not read the context: {error}")],
        side_effects: Vec::new(),
        metadata,
    }
}

/// What a measurement of the takeover state means: active in "takeover" and "safe_mode".
pub fn takeover_active(state: &str) -> bool {
    matches!(state.to_lowercase().as_str(), "takeover" | "safe_mode")
}

// ------------------------------------------------------------------------------------------
// Statistics, history and the per-engine core

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    pub total_repairs: u64,
    pub successful_repairs: u64,
    pub failed_repairs: u64,
    pub partial_repairs: u64,
    pub skipped_repairs: u64,
    pub avg_duration: f64,
    pub actions_run: u64,
    pub actions_failed: u64,
}

impl Stats {
    pub fn success_rate(&self) -> f64 {
        if self.total_repairs == 0 {
            0.0
        } else {
            self.successful_repairs as f64 / self.total_repairs as f64
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub fault_id: String,
    pub fault_type: String,
    pub status: RepairStatus,
    pub duration: f64,
    pub timestamp: NaiveDateTime,
    pub handler: Option<&'static str>,
    /// `verb target` for each action that ran.
    pub actions: Vec<String>,
}

/// Per-engine state: statistics, a bounded history and the per-target budgets.
#[derive(Debug, Clone)]
pub struct StrategyCore {
    kind: Option<EngineKind>,
    stats: Stats,
    history: VecDeque<HistoryEntry>,
    history_size: usize,
    budgets: Budgets,
}

impl StrategyCore {
    /// `kind` is None for a strategy written in Python, which only records results.
    pub fn new(kind: Option<EngineKind>, policy: BudgetPolicy, history_size: usize) -> Self {
        StrategyCore {
            kind,
            stats: Stats::default(),
            history: VecDeque::new(),
            history_size: history_size.max(1),
            budgets: Budgets::new(policy),
        }
    }

    pub fn kind(&self) -> Option<EngineKind> {
        self.kind
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    pub fn budget_policy(&self) -> BudgetPolicy {
        self.budgets.policy()
    }

    /// The newest `limit` entries, oldest first.
    pub fn history(&self, limit: usize) -> Vec<HistoryEntry> {
        let skip = self.history.len().saturating_sub(limit);
        self.history.iter().skip(skip).cloned().collect()
    }

    pub fn budget_states(&self, now: f64) -> Vec<BudgetState> {
        self.budgets.states(now)
    }

    pub fn budget_targets(&self) -> usize {
        self.budgets.len()
    }

    pub fn reset_budgets(&mut self, target: Option<&str>) -> usize {
        self.budgets.reset(target)
    }

    /// Plans the repair of `fault` with what `offer` provides, charging budgets at `now`.
    pub fn plan(&mut self, fault: &FaultInfo, offer: &Offer, now: f64) -> Plan {
        let Some(kind) = self.kind else {
            return Plan::Skip {
                handler: None,
                reason: SkipReason::NoHandler,
                message: "this strategy has no built-in handlers".into(),
            };
        };
        let Some(handler) = handler_for(kind, &fault.fault_type) else {
            return Plan::Skip {
                handler: None,
                reason: SkipReason::NoHandler,
                message: format!(
                    "no {} repair strategy for fault type '{}'",
                    kind.name(),
                    fault.fault_type
                ),
            };
        };
        if let Some(fine) = conditions::absent(handler.conditions(), &fault.metrics) {
            return Plan::Skip {
                handler: Some(handler),
                reason: SkipReason::ConditionAbsent,
                message: format!("nothing to repair: {fine}"),
            };
        }
        let m = &fault.metrics;
        match handler {
            Handler::BreakCycle => {
                if !offer.has(Verb::BREAK_CYCLE) {
                    return no_action(
                        handler,
                        &[Verb::BREAK_CYCLE],
                        "needs actions['break_cycle'] or a task_graph with remove_edge",
                    );
                }
                cut_plan(plan_cycle_cuts(handler, fault, offer))
            }
            Handler::Deadlock => {
                let graph_cycle = offer.graph.as_ref().is_some_and(cycles::has_cycle);
                let listed = offer.graph.is_none() && !listed_cycles(m).is_empty();
                if offer.has(Verb::BREAK_CYCLE) && (graph_cycle || listed) {
                    return cut_plan(plan_cycle_cuts(handler, fault, offer));
                }
                if offer.has(Verb::RESET_SCHEDULER) {
                    return single(
                        handler,
                        step(
                            Verb::RESET_SCHEDULER,
                            vec![],
                            None,
                            "reset_scheduler: reset the stuck agent scheduler".into(),
                        ),
                        Vec::new(),
                    );
                }
                no_action(
                    handler,
                    &[Verb::BREAK_CYCLE, Verb::RESET_SCHEDULER],
                    "needs a task_graph holding a cycle, or actions['reset_scheduler'] or a scheduler with reset()",
                )
            }
            Handler::Bottleneck => {
                if !offer.has(Verb::RELIEVE_BOTTLENECK) {
                    return no_action(
                        handler,
                        &[Verb::RELIEVE_BOTTLENECK],
                        "needs actions['relieve_bottleneck']",
                    );
                }
                let node = metric_value(m, "bottleneck_node");
                let describe = format!("relieve_bottleneck: node {}", py_str(&node));
                let target = (!node.is_null()).then(|| py_str(&node));
                single(
                    handler,
                    step(
                        Verb::RELIEVE_BOTTLENECK,
                        vec![("node", node)],
                        target,
                        describe,
                    ),
                    Vec::new(),
                )
            }
            Handler::Complexity => self.simple(
                handler,
                offer,
                Verb::SIMPLIFY_GRAPH,
                vec![],
                "simplify_graph: reduce graph complexity",
            ),
            Handler::RestartAgent | Handler::Stall => self.plan_agents(handler, m, offer, now),
            Handler::Cooperation => self.simple(
                handler,
                offer,
                Verb::RESET_COOPERATION,
                vec![],
                "reset_cooperation: reset the agent cooperation protocol",
            ),
            Handler::Communication => self.simple(
                handler,
                offer,
                Verb::FLUSH_MESSAGES,
                vec![],
                "flush_messages: flush stale agent messages",
            ),
            Handler::MetaState => {
                if !offer.has(Verb::RESET_META_STATE) {
                    return no_action(
                        handler,
                        &[Verb::RESET_META_STATE],
                        "needs actions['reset_meta_state'] or a meta_layer",
                    );
                }
                single(
                    handler,
                    step(
                        Verb::RESET_META_STATE,
                        vec![],
                        None,
                        "reset_meta_state: damp the meta layer (clear anomaly and stability history, reset strategy)"
                            .into(),
                    ),
                    Vec::new(),
                )
            }
            Handler::RetryTimedOut | Handler::RetryFailed => {
                self.plan_retries(handler, m, offer, now)
            }
            Handler::ShedQueue | Handler::ShedResource => plan_shedding(handler, m, offer),
            Handler::Performance => self.simple(
                handler,
                offer,
                Verb::REPRIORITIZE_QUEUE,
                vec![],
                "reprioritize_queue: reorder the task queue",
            ),
            Handler::Takeover => {
                if !offer.has(Verb::REQUEST_RECOVERY) {
                    return no_action(
                        handler,
                        &[Verb::REQUEST_RECOVERY],
                        "needs actions['request_recovery'] or a governance_controller with a takeover_manager",
                    );
                }
                single(
                    handler,
                    step(
                        Verb::REQUEST_RECOVERY,
                        vec![],
                        None,
                        "request_recovery: ask governance to leave takeover".into(),
                    ),
                    vec![Probe::TakeoverState],
                )
            }
            Handler::Risk => {
                let risk = metric_number(m, "risk_score").unwrap_or(100.0);
                let score = (risk / 100.0).clamp(0.0, 1.0);
                self.escalate(
                    handler,
                    offer,
                    score,
                    format!("{}: risk_score={}", fault.fault_type, show(risk)),
                    vec![Probe::RiskScore],
                )
            }
            Handler::Violation => {
                let n = metric_number(m, "violation_count")
                    .or_else(|| metric_number(m, "governance_violations"))
                    .unwrap_or(1.0);
                let score = (n / 10.0).clamp(0.1, 1.0);
                self.escalate(
                    handler,
                    offer,
                    score,
                    format!("{}: {} violation(s)", fault.fault_type, show(n)),
                    Vec::new(),
                )
            }
            Handler::Threshold => {
                let name = metric_value(m, "threshold_name");
                let current = metric_value(m, "current_value");
                let limit = metric_value(m, "threshold_value");
                let describe = format!(
                    "adjust_threshold: {} = {} (limit {})",
                    py_str(&name),
                    py_str(&current),
                    py_str(&limit)
                );
                let target = (!name.is_null()).then(|| py_str(&name));
                if !offer.has(Verb::ADJUST_THRESHOLD) {
                    return no_action(
                        handler,
                        &[Verb::ADJUST_THRESHOLD],
                        "needs actions['adjust_threshold']",
                    );
                }
                single(
                    handler,
                    step(
                        Verb::ADJUST_THRESHOLD,
                        vec![("name", name), ("current", current), ("limit", limit)],
                        target,
                        describe,
                    ),
                    Vec::new(),
                )
            }
            Handler::Override => {
                if !offer.has(Verb::RESET_OVERRIDES) {
                    return no_action(
                        handler,
                        &[Verb::RESET_OVERRIDES],
                        "needs actions['reset_overrides'] or a governance_controller with an override_system",
                    );
                }
                single(
                    handler,
                    step(
                        Verb::RESET_OVERRIDES,
                        vec![],
                        None,
                        "reset_overrides: clear the governance override stack".into(),
                    ),
                    vec![Probe::OverrideStack],
                )
            }
            Handler::RuleConflict => self.simple(
                handler,
                offer,
                Verb::RESOLVE_RULE_CONFLICT,
                vec![],
                "resolve_rule_conflict: resolve conflicting governance rules",
            ),
        }
    }

    fn simple(
        &self,
        handler: Handler,
        offer: &Offer,
        verb: Verb,
        p: Vec<(&str, Value)>,
        describe: &str,
    ) -> Plan {
        if !offer.has(verb) {
            return no_action(
                handler,
                &[verb],
                &format!("needs actions['{}']", verb.value()),
            );
        }
        single(handler, step(verb, p, None, describe.into()), Vec::new())
    }

    fn escalate(
        &self,
        handler: Handler,
        offer: &Offer,
        score: f64,
        reason: String,
        probes: Vec<Probe>,
    ) -> Plan {
        if !offer.has(Verb::GOVERNANCE_ESCALATE) {
            return no_action(
                handler,
                &[Verb::GOVERNANCE_ESCALATE],
                "needs actions['governance_escalate'] or a governance_controller with an override_system",
            );
        }
        let describe = format!(
            "governance_escalate: {reason} (instability score {})",
            show(score)
        );
        single(
            handler,
            step(
                Verb::GOVERNANCE_ESCALATE,
                vec![("reason", Value::String(reason)), ("score", json!(score))],
                None,
                describe,
            ),
            probes,
        )
    }

    /// Restart each named agent while its budget lasts, then isolate it.
    fn plan_agents(&mut self, handler: Handler, m: &Metrics, offer: &Offer, now: f64) -> Plan {
        let names = agent_targets(m);
        if names.is_empty() {
            return no_target(
                handler,
                "no agent named in the fault's metrics (agent_name, agent_id, agent or failing_agents)",
            );
        }
        let can_restart = offer.has(Verb::RESTART_AGENT);
        let can_isolate = offer.has(Verb::ISOLATE_AGENT);
        if !can_restart && !can_isolate {
            return no_action(
                handler,
                &[Verb::RESTART_AGENT, Verb::ISOLATE_AGENT],
                "needs actions['restart_agent'] or an agent_manager / agent_executor",
            );
        }
        let max = self.budgets.policy().max_attempts;
        let mut steps = Vec::new();
        let mut probes = Vec::new();
        let mut notes = Vec::new();
        let mut budget = Vec::new();
        let mut unrepaired = false;
        for name in names {
            let key = format!("agent:{name}");
            match self.budgets.peek(&key, now) {
                Grant::Attempt(_) if can_restart => {
                    let Grant::Attempt(n) = self.budgets.request(&key, now) else {
                        continue;
                    };
                    budget.push(BudgetNote {
                        target: key,
                        attempts: n,
                        max_attempts: max,
                        exhausted: false,
                    });
                    steps.push(step(
                        Verb::RESTART_AGENT,
                        vec![("name", Value::String(name.clone()))],
                        Some(name.clone()),
                        format!("restart_agent: {name} (attempt {n} of {max})"),
                    ));
                }
                Grant::Attempt(_) => {
                    notes.push(format!("no action available for restart_agent ({name} is within its restart budget)"));
                    unrepaired = true;
                }
                Grant::Exhausted(_) => {
                    let Grant::Exhausted(n) = self.budgets.request(&key, now) else {
                        continue;
                    };
                    budget.push(BudgetNote {
                        target: key,
                        attempts: n,
                        max_attempts: max,
                        exhausted: true,
                    });
                    if can_isolate {
                        steps.push(step(
                            Verb::ISOLATE_AGENT,
                            vec![("name", Value::String(name.clone()))],
                            Some(name.clone()),
                            format!("isolate_agent: {name} (restart budget of {max} used up)"),
                        ));
                        probes.push(Probe::AgentEnabled(name));
                    } else {
                        notes.push(format!(
                            "restart budget of {max} used up for {name} and no action available for isolate_agent"
                        ));
                        unrepaired = true;
                    }
                }
            }
        }
        if steps.is_empty() {
            if budget.iter().any(|b| b.exhausted) {
                return Plan::GiveUp {
                    handler,
                    message: notes.join("; "),
                    budget,
                };
            }
            return no_action(
                handler,
                &[Verb::RESTART_AGENT],
                "needs actions['restart_agent'] or an agent_manager / agent_executor",
            );
        }
        let contained = unrepaired || steps.iter().any(|s| s.verb == Verb::ISOLATE_AGENT);
        Plan::Act(ActPlan {
            handler,
            steps,
            probes,
            contained,
            notes,
            budget,
        })
    }

    /// Retry each failed task while its budget lasts; give up on it after that.
    fn plan_retries(&mut self, handler: Handler, m: &Metrics, offer: &Offer, now: f64) -> Plan {
        let mut ids = task_targets(m);
        if ids.is_empty() {
            ids = offer
                .tasks
                .iter()
                .take(MAX_TARGETS_PER_REPAIR)
                .map(|t| t.id.clone())
                .collect();
        }
        if ids.is_empty() {
            return no_target(handler, "no task to retry: the fault names none (task_id, task_ids, failed_tasks) and the orchestrator lists no failed task");
        }
        if !offer.has(Verb::RETRY_TASK) {
            return no_action(
                handler,
                &[Verb::RETRY_TASK],
                "needs actions['retry_task'] or an orchestrator with tasks and submit_task",
            );
        }
        let max = self.budgets.policy().max_attempts;
        let mut steps = Vec::new();
        let mut notes = Vec::new();
        let mut budget = Vec::new();
        for id in ids {
            let key = format!("task:{id}");
            match self.budgets.request(&key, now) {
                Grant::Attempt(n) => {
                    budget.push(BudgetNote {
                        target: key,
                        attempts: n,
                        max_attempts: max,
                        exhausted: false,
                    });
                    steps.push(step(
                        Verb::RETRY_TASK,
                        vec![("task_id", Value::String(id.clone()))],
                        Some(id.clone()),
                        format!("retry_task: {id} (retry {n} of {max})"),
                    ));
                }
                Grant::Exhausted(n) => {
                    budget.push(BudgetNote {
                        target: key,
                        attempts: n,
                        max_attempts: max,
                        exhausted: true,
                    });
                    notes.push(format!(
                        "task {id} was retried {n} times; giving up on it until it has been quiet"
                    ));
                }
            }
        }
        if steps.is_empty() {
            return Plan::GiveUp {
                handler,
                message: notes.join("; "),
                budget,
            };
        }
        let contained = !notes.is_empty();
        Plan::Act(ActPlan {
            handler,
            steps,
            probes: Vec::new(),
            contained,
            notes,
            budget,
        })
    }
}

/// Shed load: the caller's `shed_load`, else cancel the lowest-priority queued tasks.
fn plan_shedding(handler: Handler, m: &Metrics, offer: &Offer) -> Plan {
    let queue = handler == Handler::ShedQueue;
    let (resource, current, limit) = if queue {
        (
            "queue".to_string(),
            metric_number(m, "queue_size"),
            QUEUE_LIMIT,
        )
    } else {
        let usage = ["usage", "cpu", "memory", "cpu_usage", "memory_usage"]
            .iter()
            .filter_map(|k| metric_number(m, k).map(|v| (*k, v)))
            .fold(None::<(&str, f64)>, |best, (k, v)| match best {
                Some((_, b)) if b >= v => best,
                _ => Some((k, v)),
            });
        let name = match m.get("resource_type") {
            Some(Value::String(s)) => s.clone(),
            _ => usage
                .map(|(k, _)| k.trim_end_matches("_usage").to_string())
                .unwrap_or_else(|| "resource".into()),
        };
        (name, usage.map(|(_, v)| v), RESOURCE_LIMIT)
    };
    let probes = if queue {
        vec![Probe::QueueSize]
    } else {
        Vec::new()
    };
    if offer.has(Verb::SHED_LOAD) {
        let describe = format!(
            "shed_load: {resource} at {} (limit {})",
            current.map(show).unwrap_or_else(|| "unknown".into()),
            show(limit)
        );
        let current = current.map(|c| json!(c)).unwrap_or(Value::Null);
        return single(
            handler,
            step(
                Verb::SHED_LOAD,
                vec![
                    ("resource", Value::String(resource)),
                    ("current", current),
                    ("limit", json!(limit)),
                ],
                None,
                describe,
            ),
            probes,
        );
    }
    if !offer.has(Verb::CANCEL_TASK) {
        return no_action(
            handler,
            &[Verb::SHED_LOAD, Verb::CANCEL_TASK],
            "needs actions['shed_load'] or an orchestrator with tasks and cancel_task",
        );
    }
    if offer.tasks.is_empty() {
        return no_target(handler, "no queued task to cancel");
    }
    let queued = offer.tasks.len();
    let wanted = if queue {
        let size = current.unwrap_or(queued as f64);
        (size - QUEUE_LIMIT).ceil().max(1.0) as usize
    } else {
        queued.div_ceil(10).max(1)
    };
    let count = wanted.min(MAX_CANCELLED_PER_REPAIR).min(queued);
    // Lowest priority first; among equals the newest, which has waited least.
    let mut order: Vec<(usize, &TaskInfo)> = offer.tasks.iter().enumerate().collect();
    order.sort_by(|a, b| a.1.priority.total_cmp(&b.1.priority).then(b.0.cmp(&a.0)));
    let steps: Vec<Step> = order
        .into_iter()
        .take(count)
        .map(|(_, t)| {
            step(
                Verb::CANCEL_TASK,
                vec![("task_id", Value::String(t.id.clone()))],
                Some(t.id.clone()),
                format!("cancel_task: {} (priority {})", t.id, show(t.priority)),
            )
        })
        .collect();
    let mut notes = vec![format!(
        "shedding {count} of {queued} queued task(s), lowest priority first"
    )];
    if count < wanted {
        notes.push(format!(
            "{} more would be needed; at most {MAX_CANCELLED_PER_REPAIR} per repair",
            wanted - count
        ));
    }
    Plan::Act(ActPlan {
        handler,
        steps,
        probes,
        contained: false,
        notes,
        budget: Vec::new(),
    })
}

fn cut_plan(planned: Result<ActPlan, Plan>) -> Plan {
    match planned {
        Ok(act) => Plan::Act(act),
        Err(plan) => plan,
    }
}

impl StrategyCore {
    /// Records a finished repair.
    pub fn record(
        &mut self,
        fault: &FaultInfo,
        report: &Report,
        outcomes: &[StepOutcome],
        plan: &Plan,
        duration: f64,
    ) {
        let mut actions = Vec::new();
        if let Plan::Act(a) = plan {
            for (s, o) in a.steps.iter().zip(outcomes) {
                self.stats.actions_run += 1;
                if matches!(o, StepOutcome::Failed { .. }) {
                    self.stats.actions_failed += 1;
                }
                actions.push(match &s.target {
                    Some(t) => format!("{} {t}", s.verb.value()),
                    None => s.verb.value().to_string(),
                });
            }
        }
        self.push(HistoryEntry {
            fault_id: fault.fault_id.clone(),
            fault_type: fault.fault_type.clone(),
            status: report.status,
            duration,
            timestamp: now(),
            handler: plan.handler().map(Handler::name),
            actions,
        });
    }

    /// Records a result produced elsewhere (a strategy written in Python).
    pub fn record_result(
        &mut self,
        fault_id: String,
        fault_type: String,
        status: RepairStatus,
        duration: f64,
    ) {
        self.push(HistoryEntry {
            fault_id,
            fault_type,
            status,
            duration,
            timestamp: now(),
            handler: None,
            actions: Vec::new(),
        });
    }

    fn push(&mut self, entry: HistoryEntry) {
        let s = &mut self.stats;
        s.total_repairs += 1;
        match entry.status {
            RepairStatus::SUCCESS => s.successful_repairs += 1,
            RepairStatus::FAILED => s.failed_repairs += 1,
            RepairStatus::PARTIAL => s.partial_repairs += 1,
            // IN_PROGRESS is never produced here; count it with the skipped so totals add up.
            RepairStatus::SKIPPED | RepairStatus::IN_PROGRESS => s.skipped_repairs += 1,
        }
        let n = s.total_repairs as f64;
        let d = if entry.duration.is_finite() {
            entry.duration.max(0.0)
        } else {
            0.0
        };
        s.avg_duration = (s.avg_duration * (n - 1.0) + d) / n;
        self.history.push_back(entry);
        while self.history.len() > self.history_size {
            self.history.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;
