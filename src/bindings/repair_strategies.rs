//! `senti_os.core.faza30.repair_strategies`: RepairStrategy (subclassable), the four repair
//! engines, RepairResult and the factories.
//!
//! The engine plans and judges (`crate::engine::repair_strategies`); this file reads the
//! fault and the context, runs the planned actions and the re-measurements, and builds the
//! result. No engine lock is held while Python runs: the plan is made under the lock, the
//! actions run after it is released, and the outcome is recorded under the lock again.
//!
//! The context (a dict, or None) may hold:
//!
//! | key | used for |
//! |---|---|
//! | `classification` | `can_repair`: a ClassificationResult-like object or a dict; its `category` (member, value or text) is the keyword fallback |
//! | `actions` | dict verb -> sync callable, called with keyword parameters (see below); preferred over a layer method |
//! | `verify` | callable `verify(fault)` returning a bool (fault gone?) or a dict of fresh metrics checked against the fault |
//! | `task_graph` | FAZA 27 TaskGraph: `edges` (or `nodes` + `get_edges_from`), `remove_edge(src, dst)`, `has_cycle()` |
//! | `agent_manager` / `agent_executor` | FAZA 28: `get_agent(name)` (agent `on_shutdown(ctx)`, `on_start(ctx)`, `enabled`) or `restart_agent(name)`; an executor's `agent_manager` / `scheduler` attributes are used too |
//! | `state_context` | passed to the agent's `on_shutdown` / `on_start` (None if absent) |
//! | `scheduler` | FAZA 28 Scheduler: `reset()` |
//! | `orchestrator` | FAZA 25: `tasks` (id -> Task), `submit_task(name, executor, priority, task_type, context)`, `cancel_task(id)`, `task_queue.size()` / `get_queue_status()` |
//! | `meta_layer` | FAZA 28.5: `anomaly_detector.clear_history()`, `stability_engine.clear_history()`, `strategy_adapter.reset()` |
//! | `governance_controller` | FAZA 29: `override_system` (`clear_stack`, `instability_fallback(score)`, `get_stack_size`), `takeover_manager` (`force_recovery`, `_can_recover`), `get_takeover_state()`, `get_risk()` |
//!
//! Action verbs and the keyword parameters their callables receive: `break_cycle(src, dst,
//! cycle)`, `reset_scheduler()`, `relieve_bottleneck(node)`, `simplify_graph()`,
//! `restart_agent(name)`, `isolate_agent(name)`, `reset_cooperation()`, `flush_messages()`,
//! `reset_meta_state()`, `retry_task(task_id)`, `cancel_task(task_id)`, `shed_load(resource,
//! current, limit)`, `reprioritize_queue()`, `governance_escalate(reason, score)`,
//! `reset_overrides()`, `request_recovery()`, `adjust_threshold(name, current, limit)`,
//! `resolve_rule_conflict()`. A callable returning `False` declines (the repair FAILS, except
//! that a declined `cancel_task` only skips that task);
//! raising FAILS with the error text in `metadata["error"]`; a returned coroutine is settled
//! for now (async actions come with the auto-repair runtime).

use super::convert::{datetime_to_py, from_map, from_value, to_map, to_value, type_name};
use super::enums;
use super::record::{self, Lazy};
use crate::engine::clock::now;
use crate::engine::enums::ValueEnum;
use crate::engine::repair_strategies::budget::{
    BudgetPolicy, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_TARGETS, DEFAULT_QUIET_PERIOD,
};
use crate::engine::repair_strategies::cycles::{self, GraphView};
use crate::engine::repair_strategies::{
    claims, continues_after, handler_for, judge, judge_context_error, needs, ready_to_verify,
    recheck, recheck_probes, takeover_active, EngineKind, Evidence, FaultInfo, Handler, Offer,
    Plan, Probe, RepairStatus, Report, SkipReason, Step, StepOutcome, StrategyCore, TaskInfo, Verb,
    DEFAULT_HISTORY_SIZE,
};
use crate::engine::value::Metrics;
use chrono::NaiveDateTime;
use parking_lot::Mutex;
use pyo3::exceptions::{PyNotImplementedError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString, PyType};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Longest fault id or fault type accepted.
const MAX_NAME_LEN: usize = 4096;
// The same bounds as the integration layer's reads of the task graph and the orchestrator.
use super::integration_layer::memo::MemoSlot;
use super::integration_layer::read::{NodeIds, MAX_GRAPH_EDGES, MAX_TASK_SCAN};
use super::integration_layer::BoundCall;
/// Longest error or repr text kept in a result.
const MAX_TEXT: usize = 2000;
/// Upper bounds for the constructor keywords.
const MAX_ATTEMPTS_LIMIT: i64 = 1000;
const MAX_HISTORY_LIMIT: i64 = 1_000_000;

py_record! {
    /// The outcome of one repair: status, what was done, what it changed, and how it was verified.
    pub struct RepairResult in "senti_os.core.faza30.repair_strategies" {
        req fault_id,
        req status,
        opt actions_taken = record::new_list,
        opt success_rate = record::zero_float,
        opt duration = record::zero_float,
        opt side_effects = record::new_list,
        opt verification_passed = record::false_,
        opt metadata = record::new_dict,
        opt timestamp = record::now,
    }
}

fn str_list(py: Python<'_>, items: &[String]) -> PyResult<Py<PyAny>> {
    Ok(PyList::new(py, items)?.into_any().unbind())
}

impl RepairResult {
    pub(crate) fn from_report(
        py: Python<'_>,
        fault_id: &str,
        report: Report,
        duration: f64,
        ts: NaiveDateTime,
    ) -> PyResult<RepairResult> {
        let Report {
            status,
            verification_passed,
            success_rate,
            actions_taken,
            side_effects,
            metadata,
        } = report;
        Ok(RepairResult {
            fault_id: Lazy::ready(PyString::new(py, fault_id).into_any().unbind()),
            status: Lazy::ready(enums::to_py(py, status)?),
            actions_taken: Lazy::later(move |py| str_list(py, &actions_taken)),
            success_rate: Lazy::ready(PyFloat::new(py, success_rate).into_any().unbind()),
            duration: Lazy::ready(PyFloat::new(py, duration).into_any().unbind()),
            side_effects: Lazy::later(move |py| str_list(py, &side_effects)),
            verification_passed: Lazy::ready(
                PyBool::new(py, verification_passed)
                    .to_owned()
                    .into_any()
                    .unbind(),
            ),
            metadata: Lazy::later(move |py| {
                Ok(from_map(py, &metadata.to_map())?.into_any().unbind())
            }),
            timestamp: Lazy::later(move |py| datetime_to_py(py, &ts)),
            modified: false,
        })
    }
}

/// A finished repair as engine data.
#[derive(Clone)]
pub(crate) struct RepairDone {
    pub fault_id: String,
    pub report: Report,
    pub duration: f64,
    /// The result's timestamp: when the repair finished, not when it is first looked at.
    pub finished: NaiveDateTime,
}

impl RepairDone {
    pub fn to_py(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let r = RepairResult::from_report(
            py,
            &self.fault_id,
            self.report.clone(),
            self.duration,
            self.finished,
        )?;
        Ok(Py::new(py, r)?.into_any())
    }
}

// ------------------------------------------------------------------------------------------
// Reading faults and contexts

/// `getattr(obj, name, None)`, except that an attribute that raises something other than
/// AttributeError is reported as a TypeError naming it.
fn attr<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    what: &str,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    attr_named(obj, &PyString::new(obj.py(), name), what)
}

/// [`attr`] with the name as a Python string made once (`pyo3::intern!`), for per-edge reads.
fn attr_named<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    what: &str,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match obj.getattr(name) {
        Ok(v) if v.is_none() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(obj.py()) => Ok(None),
        Err(e) => Err(PyTypeError::new_err(format!(
            "reading {what}.{name} raised {}",
            error_text(obj.py(), &e)
        ))),
    }
}

/// A field of a fault object, or of a dict used as one.
fn fault_field<'py>(fault: &Bound<'py, PyAny>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(d) = fault.cast::<PyDict>() {
        return Ok(d.get_item(name)?.filter(|v| !v.is_none()));
    }
    attr(fault, name, "fault")
}

fn text_field(fault: &Bound<'_, PyAny>, name: &str, default: &str) -> PyResult<String> {
    match fault_field(fault, name)? {
        None => Ok(default.to_owned()),
        Some(v) => {
            let s = v.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!("fault.{name} must be a str, got {}", type_name(&v)))
            })?;
            let s = s.to_cow()?;
            if s.chars().count() > MAX_NAME_LEN {
                return Err(PyValueError::new_err(format!(
                    "fault.{name} is too long ({} characters, at most {MAX_NAME_LEN})",
                    s.chars().count()
                )));
            }
            Ok(s.into_owned())
        }
    }
}

fn check_fault_object(fault: &Bound<'_, PyAny>) -> PyResult<()> {
    if fault.is_none() {
        return Err(PyTypeError::new_err(
            "fault must be a fault object (with fault_type, fault_id and metrics) or a dict, got None",
        ));
    }
    Ok(())
}

fn read_fault_type(fault: &Bound<'_, PyAny>) -> PyResult<String> {
    check_fault_object(fault)?;
    text_field(fault, "fault_type", "")
}

/// The fault as the engine reads it. Missing fields take the reference defaults
/// (`"unknown"`, `""`, `{}`); present fields of the wrong type are a TypeError.
fn read_fault(fault: &Bound<'_, PyAny>) -> PyResult<FaultInfo> {
    // Our detector's fault, untouched since: its engine value, without a Python round trip.
    if let Ok(ours) = fault.cast::<crate::bindings::detection_engine::DetectedFault>() {
        if let Ok(obj) = ours.try_borrow() {
            if let Some(core) = obj.engine_fault() {
                return Ok(FaultInfo {
                    fault_id: core.fault_id.clone(),
                    fault_type: core.fault_type.to_owned(),
                    metrics: Arc::new(core.metrics.clone()),
                });
            }
        }
    }
    check_fault_object(fault)?;
    let fault_id = text_field(fault, "fault_id", "unknown")?;
    let fault_type = text_field(fault, "fault_type", "")?;
    let metrics = match fault_field(fault, "metrics")? {
        None => Metrics::new(),
        Some(m) => {
            if m.cast::<PyDict>().is_err() {
                return Err(PyTypeError::new_err(format!(
                    "fault.metrics must be a dict, got {}",
                    type_name(&m)
                )));
            }
            to_map(Some(&m), "fault.metrics")?
        }
    };
    Ok(FaultInfo {
        fault_id,
        fault_type,
        metrics: Arc::new(metrics),
    })
}

fn error_text(py: Python<'_>, err: &PyErr) -> String {
    super::errors::error_text(py, err, MAX_TEXT)
}

use super::errors::is_fatal;

fn has(obj: &Bound<'_, PyAny>, name: &str) -> bool {
    obj.hasattr(name).unwrap_or(false)
}

/// A present, non-None attribute, or None (a raising attribute counts as absent).
fn sub<'py>(obj: &Bound<'py, PyAny>, name: &str) -> Option<Bound<'py, PyAny>> {
    obj.getattr(name).ok().filter(|v| !v.is_none())
}

/// The text of a string or of an enum member's string value.
fn label(obj: &Bound<'_, PyAny>) -> Option<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return s.to_cow().ok().map(|c| c.into_owned());
    }
    sub(obj, "value").and_then(|v| {
        v.cast::<PyString>()
            .ok()
            .and_then(|s| s.to_cow().ok().map(|c| c.into_owned()))
    })
}

/// The parts of the caller's context this module uses.
struct Ctx<'py> {
    dict: Option<Bound<'py, PyDict>>,
    actions: HashMap<String, Bound<'py, PyAny>>,
    verify: Option<Bound<'py, PyAny>>,
}

impl<'py> Ctx<'py> {
    fn read(context: Option<&Bound<'py, PyAny>>) -> PyResult<Ctx<'py>> {
        let dict = match context {
            None => None,
            Some(c) if c.is_none() => None,
            Some(c) => Some(c.cast::<PyDict>().cloned().map_err(|_| {
                PyTypeError::new_err(format!(
                    "context must be a dict or None, got {}",
                    type_name(c)
                ))
            })?),
        };
        // An empty context is no context: nothing to look up.
        let dict = dict.filter(|d| !d.is_empty());
        let mut ctx = Ctx {
            dict,
            actions: HashMap::new(),
            verify: None,
        };
        if let Some(actions) = ctx.get("actions")? {
            let actions = actions.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "context['actions'] must be a dict of callables, got {}",
                    type_name(&actions)
                ))
            })?;
            for (k, v) in actions.iter() {
                // Keys that are not verbs belong to someone else; they are left alone.
                let Ok(key) = k.cast::<PyString>() else {
                    continue;
                };
                let key = key.to_cow()?.into_owned();
                if Verb::from_value(&key).is_none() {
                    continue;
                }
                if !v.is_callable() {
                    return Err(PyTypeError::new_err(format!(
                        "context['actions']['{key}'] must be callable, got {}",
                        type_name(&v)
                    )));
                }
                ctx.actions.insert(key, v);
            }
        }
        if let Some(verify) = ctx.get("verify")? {
            if !verify.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "context['verify'] must be callable, got {}",
                    type_name(&verify)
                )));
            }
            ctx.verify = Some(verify);
        }
        Ok(ctx)
    }

    fn get(&self, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        match &self.dict {
            None => Ok(None),
            Some(d) => Ok(d.get_item(key)?.filter(|v| !v.is_none())),
        }
    }

    fn layer(&self, key: &str) -> Option<Bound<'py, PyAny>> {
        self.get(key).ok().flatten()
    }

    /// The classification category as text, for the keyword fallback of `can_repair`.
    fn category(&self) -> PyResult<Option<String>> {
        let Some(cls) = self.get("classification")? else {
            return Ok(None);
        };
        let category = if let Ok(d) = cls.cast::<PyDict>() {
            d.get_item("category")?.filter(|v| !v.is_none())
        } else {
            attr(&cls, "category", "context['classification']")?
        };
        let Some(category) = category else {
            return Ok(None);
        };
        if let Some(text) = label(&category) {
            return Ok(Some(text));
        }
        category.str().map(|s| Some(s.to_string())).map_err(|e| {
            PyTypeError::new_err(format!(
                "context['classification'].category cannot be read as text: {}",
                error_text(category.py(), &e)
            ))
        })
    }

    fn agents(&self) -> Option<Bound<'py, PyAny>> {
        let usable = |o: &Bound<'py, PyAny>| has(o, "get_agent") || has(o, "restart_agent");
        if let Some(m) = self.layer("agent_manager").filter(usable) {
            return Some(m);
        }
        let executor = self.layer("agent_executor")?;
        if usable(&executor) {
            return Some(executor);
        }
        sub(&executor, "agent_manager").filter(usable)
    }

    fn scheduler(&self) -> Option<Bound<'py, PyAny>> {
        if let Some(s) = self.layer("scheduler").filter(|s| has(s, "reset")) {
            return Some(s);
        }
        self.layer("agent_executor")
            .and_then(|e| sub(&e, "scheduler"))
            .filter(|s| has(s, "reset"))
    }

    fn governance_part(&self, attr_name: &str, getter: &str) -> Option<Bound<'py, PyAny>> {
        let gov = self.layer("governance_controller")?;
        if let Some(part) = sub(&gov, attr_name) {
            return Some(part);
        }
        if has(&gov, getter) {
            return gov.call_method0(getter).ok().filter(|v| !v.is_none());
        }
        None
    }

    fn override_system(&self) -> Option<Bound<'py, PyAny>> {
        self.governance_part("override_system", "get_override_system")
    }

    fn takeover_manager(&self) -> Option<Bound<'py, PyAny>> {
        self.governance_part("takeover_manager", "get_takeover_manager")
    }

    fn task_graph(&self) -> Option<Bound<'py, PyAny>> {
        self.layer("task_graph")
    }

    fn orchestrator(&self) -> Option<Bound<'py, PyAny>> {
        self.layer("orchestrator")
    }

    fn meta_parts(&self) -> Vec<(Bound<'py, PyAny>, &'static str, &'static str)> {
        let Some(meta) = self.layer("meta_layer") else {
            return Vec::new();
        };
        [
            ("anomaly_detector", "clear_history"),
            ("stability_engine", "clear_history"),
            ("strategy_adapter", "reset"),
        ]
        .into_iter()
        .filter_map(|(part, method)| {
            sub(&meta, part)
                .filter(|p| has(p, method))
                .map(|p| (p, part, method))
        })
        .collect()
    }

    /// Whether a layer object in the context can run `verb`.
    fn layer_runs(&self, verb: Verb) -> bool {
        match verb {
            Verb::BREAK_CYCLE => self.task_graph().is_some_and(|g| has(&g, "remove_edge")),
            Verb::RESET_SCHEDULER => self.scheduler().is_some(),
            Verb::RESTART_AGENT => self.agents().is_some(),
            Verb::ISOLATE_AGENT => self.agents().is_some_and(|a| has(&a, "get_agent")),
            Verb::RESET_META_STATE => !self.meta_parts().is_empty(),
            Verb::RETRY_TASK => self
                .orchestrator()
                .is_some_and(|o| has(&o, "tasks") && has(&o, "submit_task")),
            Verb::CANCEL_TASK => self.orchestrator().is_some_and(|o| has(&o, "cancel_task")),
            Verb::RESET_OVERRIDES => self
                .override_system()
                .is_some_and(|o| has(&o, "clear_stack")),
            Verb::REQUEST_RECOVERY => self
                .takeover_manager()
                .is_some_and(|t| has(&t, "force_recovery")),
            Verb::GOVERNANCE_ESCALATE => self
                .override_system()
                .is_some_and(|o| has(&o, "instability_fallback")),
            _ => false,
        }
    }

    fn offer(&self) -> Offer {
        let mut offer = Offer::default();
        for verb in Verb::ALL {
            if self.actions.contains_key(verb.value()) || self.layer_runs(*verb) {
                offer.allow(*verb);
            }
        }
        offer
    }
}

// ------------------------------------------------------------------------------------------
// Gathering facts from the layers

/// Original Python objects for the names the engine works with (graph nodes, task ids), so
/// actions receive what the layer gave us.
type Originals<'py> = HashMap<String, Bound<'py, PyAny>>;

fn key_text(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    Ok(obj.str()?.to_string())
}

fn number_of(obj: &Bound<'_, PyAny>) -> Option<f64> {
    if obj.cast::<PyBool>().is_ok() {
        return None;
    }
    obj.extract::<f64>().ok().filter(|v| v.is_finite())
}

/// A field of an edge given as an object, a dict, or a tuple `(src, dst[, weight])`.
fn edge_field<'py>(
    edge: &Bound<'py, PyAny>,
    names: &[&Bound<'py, PyString>],
    position: usize,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(d) = edge.cast::<PyDict>() {
        for n in names {
            if let Some(v) = d.get_item(n)? {
                return Ok(Some(v));
            }
        }
        return Ok(None);
    }
    // Bounds are checked first: building an IndexError per edge would be the slowest part.
    if let Ok(t) = edge.cast::<pyo3::types::PyTuple>() {
        return if position < t.len() {
            Ok(Some(t.get_item(position)?))
        } else {
            Ok(None)
        };
    }
    if let Ok(l) = edge.cast::<PyList>() {
        return if position < l.len() {
            Ok(Some(l.get_item(position)?))
        } else {
            Ok(None)
        };
    }
    for n in names {
        if let Some(v) = attr_named(edge, n, "edge")? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

fn iterate<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, pyo3::types::PyIterator>> {
    if let Ok(d) = obj.cast::<PyDict>() {
        return d.values().try_iter();
    }
    obj.try_iter()
}

/// The edges of a task graph as read: the engine's view (node ids interned), the edge
/// objects in read order, and the first Python object seen for each node id.
struct GraphRead<'py> {
    view: GraphView,
    edges: Vec<Bound<'py, PyAny>>,
    first: Vec<Bound<'py, PyAny>>,
}

impl<'py> GraphRead<'py> {
    /// Reads the ends of every edge. Weights and types are read by [`GraphRead::strengths`].
    fn read(graph: &Bound<'py, PyAny>) -> PyResult<Option<GraphRead<'py>>> {
        let py = graph.py();
        let source = [
            intern!(py, "source_id"),
            intern!(py, "src"),
            intern!(py, "source"),
        ];
        let target = [
            intern!(py, "target_id"),
            intern!(py, "dst"),
            intern!(py, "target"),
        ];
        let mut edges: Vec<Bound<'py, PyAny>> = Vec::new();
        let mut ids = NodeIds::keeping_objects();
        let mut push = |edge: Bound<'py, PyAny>| -> PyResult<()> {
            if edges.len() >= MAX_GRAPH_EDGES {
                return Err(PyValueError::new_err(format!(
                    "the task graph has more than {MAX_GRAPH_EDGES} edges, too many to analyse in one repair"
                )));
            }
            let src = edge_field(&edge, &source, 0)?;
            let dst = edge_field(&edge, &target, 1)?;
            let (Some(src), Some(dst)) = (src, dst) else {
                return Err(PyTypeError::new_err(format!(
                    "a task graph edge ({}) has no source_id/src or target_id/dst",
                    type_name(&edge)
                )));
            };
            let a = ids.index(&src)?;
            let b = ids.index(&dst)?;
            ids.edge(a, b);
            edges.push(edge);
            Ok(())
        };
        let mut found = false;
        if let Some(list) = attr(graph, "edges", "task_graph")?.filter(|e| !e.is_callable()) {
            for edge in iterate(&list)? {
                push(edge?)?;
            }
            found = true;
        } else if has(graph, "get_edges_from") {
            if let Some(nodes) = attr(graph, "nodes", "task_graph")?.filter(|n| !n.is_callable()) {
                // A dict of nodes iterates its ids; a list of nodes gives node objects or ids.
                let node_ids: Vec<Bound<'py, PyAny>> = if let Ok(d) = nodes.cast::<PyDict>() {
                    d.keys().iter().collect()
                } else {
                    nodes.try_iter()?.collect::<PyResult<_>>()?
                };
                for id in node_ids {
                    for edge in graph.call_method1("get_edges_from", (id,))?.try_iter()? {
                        push(edge?)?;
                    }
                }
                found = true;
            }
        }
        if !found {
            return Ok(None);
        }
        let (graph, first) = ids.finish();
        Ok(Some(GraphRead {
            view: GraphView::new(graph),
            edges,
            first,
        }))
    }

    /// Reads the weight and type of the edges that lie on a cycle (the only ones a cut can
    /// choose) and records the Python objects of their ends in `originals`, so an action is
    /// called with the graph's own ids.
    fn strengths(mut self, originals: &mut Originals<'py>) -> PyResult<GraphView> {
        for i in cycles::edges_on_cycles(self.view.graph()) {
            let i = i as usize;
            let (weight, weak) = strength_of(&self.edges[i])?;
            self.view.set_strength(i, weight, weak);
            let (a, b) = self.view.graph().edges()[i];
            for node in [a, b] {
                let name = self.view.graph().name(node);
                if !originals.contains_key(name) {
                    originals.insert(name.to_owned(), self.first[node as usize].clone());
                }
            }
        }
        Ok(self.view)
    }
}

/// An edge's weight, and whether it is WEAK.
fn strength_of(edge: &Bound<'_, PyAny>) -> PyResult<(Option<f64>, bool)> {
    let py = edge.py();
    let weight = edge_field(edge, &[intern!(py, "weight")], 2)?.and_then(|w| number_of(&w));
    let weak = edge_field(
        edge,
        &[intern!(py, "edge_type"), intern!(py, "type")],
        usize::MAX,
    )?
    .and_then(|t| label(&t))
    .is_some_and(|t| t.eq_ignore_ascii_case("weak"));
    Ok((weight, weak))
}

/// The task graph's edges, or None when the graph does not expose them. Only the edges on a
/// cycle have their weight and type read (see [`GraphRead::strengths`]). Within a healing
/// cycle of the controller, a graph its integration layer read in the cycle is checked
/// against that read instead of walked again (the rule is in `integration_layer/memo.rs`).
fn read_graph<'py>(
    graph: &Bound<'py, PyAny>,
    originals: &mut Originals<'py>,
    memo: Option<&MemoSlot>,
) -> PyResult<Option<GraphView>> {
    if let Some(view) = memo
        .and_then(|m| reuse_graph(graph, originals, m))
        .transpose()?
    {
        return Ok(Some(view));
    }
    match GraphRead::read(graph)? {
        Some(read) => read.strengths(originals).map(Some),
        None => Ok(None),
    }
}

/// The graph from the cycle's memo, when the reuse rule holds: the ends as read, the weights
/// and types of the edges on a cycle read now, and the ends of those edges as `originals`
/// (every id of a kept read is a `str`, so an equal one serves).
fn reuse_graph<'py>(
    graph: &Bound<'py, PyAny>,
    originals: &mut Originals<'py>,
    slot: &MemoSlot,
) -> Option<PyResult<GraphView>> {
    if !slot.is_open() {
        return None;
    }
    let memo = slot.take()?;
    let py = graph.py();
    let result = (|| {
        let edges = attr(graph, "edges", "task_graph")
            .ok()?
            .filter(|e| !e.is_callable());
        let kept = memo.still_holds_edges(graph, edges.as_ref())?;
        let mut view = GraphView::new(memo.edges_keeping(&kept));
        let read = (|| -> PyResult<GraphView> {
            let ends = [
                intern!(py, "source_id"),
                intern!(py, "src"),
                intern!(py, "source"),
            ];
            let targets = [
                intern!(py, "target_id"),
                intern!(py, "dst"),
                intern!(py, "target"),
            ];
            for i in cycles::edges_on_cycles(view.graph()) {
                let edge = memo.edge(py, kept[i as usize]);
                let (weight, weak) = strength_of(&edge)?;
                view.set_strength(i as usize, weight, weak);
                for (names, position) in [(&ends, 0), (&targets, 1)] {
                    if let Some(id) = edge_field(&edge, names, position)? {
                        originals.entry(key_text(&id)?).or_insert(id);
                    }
                }
            }
            Ok(view)
        })();
        Some(read)
    })();
    drop(slot.put(memo));
    result
}

fn task_status(task: &Bound<'_, PyAny>) -> Option<String> {
    let status = if let Ok(d) = task.cast::<PyDict>() {
        d.get_item("status").ok().flatten()
    } else {
        sub(task, "status")
    };
    status.and_then(|s| label(&s)).map(|s| s.to_lowercase())
}

fn task_priority(task: &Bound<'_, PyAny>) -> f64 {
    let p = if let Ok(d) = task.cast::<PyDict>() {
        d.get_item("priority").ok().flatten()
    } else {
        sub(task, "priority")
    };
    p.and_then(|p| number_of(&p)).unwrap_or(5.0)
}

/// Tasks in `orchestrator.tasks` whose status is one of `statuses`, in the registry's order.
fn read_tasks<'py>(
    orch: &Bound<'py, PyAny>,
    statuses: &[&str],
    originals: &mut Originals<'py>,
) -> PyResult<Vec<TaskInfo>> {
    let Some(tasks) = attr(orch, "tasks", "orchestrator")? else {
        return Ok(Vec::new());
    };
    let Ok(tasks) = tasks.cast::<PyDict>() else {
        return Err(PyTypeError::new_err(format!(
            "orchestrator.tasks must be a dict of id -> task, got {}",
            type_name(&tasks)
        )));
    };
    let mut out = Vec::new();
    for (i, (id, task)) in tasks.iter().enumerate() {
        if i >= MAX_TASK_SCAN {
            break;
        }
        if task_status(&task).is_some_and(|s| statuses.contains(&s.as_str())) {
            let text = key_text(&id)?;
            out.push(TaskInfo {
                id: text.clone(),
                priority: task_priority(&task),
            });
            originals.entry(text).or_insert(id);
        }
    }
    Ok(out)
}

fn gather<'py>(
    ctx: &Ctx<'py>,
    handler: Handler,
    fault: &FaultInfo,
    offer: &mut Offer,
    originals: &mut Originals<'py>,
) -> PyResult<()> {
    let want = needs(handler, fault);
    if want.graph {
        if let Some(graph) = ctx.task_graph() {
            let memo = ctx.verify.as_ref().and_then(BoundCall::layer_memo);
            offer.graph = read_graph(&graph, originals, memo.as_deref())?;
        }
    }
    if let Some(orch) = ctx.orchestrator() {
        if want.failed_tasks {
            offer.tasks = read_tasks(&orch, &["error", "failed"], originals)?;
        } else if want.queued_tasks {
            offer.tasks = read_tasks(&orch, &["queued"], originals)?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Running actions

/// Stops a repair: a KeyboardInterrupt or similar raised by a callback.
struct Fatal(PyErr);

fn returned_value(obj: &Bound<'_, PyAny>) -> Option<Value> {
    if obj.is_none() {
        return None;
    }
    match to_value(obj, "returned") {
        Ok(v) => Some(v),
        Err(_) => Some(Value::String(super::errors::shorten(
            obj.repr()
                .map(|r| r.to_string())
                .unwrap_or_else(|_| type_name(obj)),
            MAX_TEXT,
        ))),
    }
}

/// Interprets what a call gave back.
fn outcome(
    py: Python<'_>,
    via: String,
    result: PyResult<Bound<'_, PyAny>>,
) -> Result<StepOutcome, Fatal> {
    match result {
        Err(e) if is_fatal(py, &e) => Err(Fatal(e)),
        Err(e) => Ok(StepOutcome::Failed {
            via,
            error: error_text(py, &e),
        }),
        Ok(obj) => {
            // Async actions (e.g. the FAZA 28 agents' on_shutdown/on_start) are settled here.
            let obj = if has(&obj, "__await__") {
                match super::runtime::settle(&obj, &via) {
                    Ok(v) => v,
                    Err(e) if is_fatal(py, &e) => return Err(Fatal(e)),
                    Err(e) => {
                        return Ok(StepOutcome::Failed {
                            via,
                            error: error_text(py, &e),
                        })
                    }
                }
            } else {
                obj
            };
            if obj.cast::<PyBool>().is_ok_and(|b| !b.is_true()) {
                return Ok(StepOutcome::Declined {
                    via,
                    detail: "returned False".into(),
                });
            }
            Ok(StepOutcome::Done {
                via,
                returned: returned_value(&obj),
            })
        }
    }
}

/// A named call into a layer, run later by `chain`.
type Call<'py> = (
    String,
    Box<dyn FnOnce() -> PyResult<Bound<'py, PyAny>> + 'py>,
);

/// Runs a sequence of calls, stopping at the first that does not complete.
fn chain<'py>(py: Python<'py>, via: String, calls: Vec<Call<'py>>) -> Result<StepOutcome, Fatal> {
    let mut last = StepOutcome::Done {
        via: via.clone(),
        returned: None,
    };
    for (name, call) in calls {
        match outcome(py, via.clone(), call())? {
            StepOutcome::Done { returned, .. } => {
                last = StepOutcome::Done {
                    via: via.clone(),
                    returned,
                }
            }
            StepOutcome::Failed { error, .. } => {
                return Ok(StepOutcome::Failed {
                    via,
                    error: format!("{name}: {error}"),
                })
            }
            StepOutcome::Declined { detail, .. } => {
                return Ok(StepOutcome::Declined {
                    via,
                    detail: format!("{name} {detail}"),
                })
            }
        }
    }
    Ok(last)
}

fn param<'py>(
    py: Python<'py>,
    step: &Step,
    key: &str,
    originals: &Originals<'py>,
) -> PyResult<Bound<'py, PyAny>> {
    match step.params.get(key) {
        Some(Value::String(s)) if originals.contains_key(s) => Ok(originals[s].clone()),
        Some(Value::Array(items)) => {
            let list = PyList::empty(py);
            for item in items {
                match item {
                    Value::String(s) if originals.contains_key(s) => list.append(&originals[s])?,
                    other => list.append(from_value(py, other)?)?,
                }
            }
            Ok(list.into_any())
        }
        Some(v) => from_value(py, v),
        None => Ok(py.None().into_bound(py)),
    }
}

fn not_available(via: &str) -> StepOutcome {
    StepOutcome::Failed {
        via: via.into(),
        error: "the layer no longer offers this action".into(),
    }
}

fn run_step<'py>(
    py: Python<'py>,
    ctx: &Ctx<'py>,
    step: &Step,
    originals: &Originals<'py>,
) -> Result<StepOutcome, Fatal> {
    let verb = step.verb;
    let fatal_or_failed = |via: &str, e: PyErr| -> Result<StepOutcome, Fatal> {
        if is_fatal(py, &e) {
            Err(Fatal(e))
        } else {
            Ok(StepOutcome::Failed {
                via: via.into(),
                error: error_text(py, &e),
            })
        }
    };
    if let Some(callable) = ctx.actions.get(verb.value()) {
        let via = format!("actions['{}']", verb.value());
        let kwargs = PyDict::new(py);
        for key in step.params.keys() {
            match param(py, step, key, originals) {
                Ok(v) => kwargs.set_item(key, v).map_err(Fatal)?,
                Err(e) => return fatal_or_failed(&via, e),
            }
        }
        return outcome(py, via, callable.call((), Some(&kwargs)));
    }
    let p = |key: &str| param(py, step, key, originals);
    match verb {
        Verb::BREAK_CYCLE => {
            let Some(graph) = ctx.task_graph() else {
                return Ok(not_available("task_graph.remove_edge"));
            };
            let via = "task_graph.remove_edge".to_string();
            let (src, dst) = match (p("src"), p("dst")) {
                (Ok(s), Ok(d)) => (s, d),
                (Err(e), _) | (_, Err(e)) => return fatal_or_failed(&via, e),
            };
            outcome(py, via, graph.call_method1("remove_edge", (src, dst)))
        }
        Verb::RESET_SCHEDULER => {
            let Some(s) = ctx.scheduler() else {
                return Ok(not_available("scheduler.reset"));
            };
            outcome(py, "scheduler.reset".into(), s.call_method0("reset"))
        }
        Verb::RESTART_AGENT | Verb::ISOLATE_AGENT => run_agent_step(py, ctx, step, verb),
        Verb::RESET_META_STATE => {
            let parts = ctx.meta_parts();
            if parts.is_empty() {
                return Ok(not_available("meta_layer"));
            }
            let names: Vec<String> = parts
                .iter()
                .map(|(_, part, method)| format!("{part}.{method}"))
                .collect();
            let via = format!("meta_layer.{{{}}}", names.join(", "));
            let calls = parts
                .into_iter()
                .map(|(obj, part, method)| {
                    let call: Box<dyn FnOnce() -> PyResult<Bound<'py, PyAny>> + 'py> =
                        Box::new(move || obj.call_method0(method));
                    (format!("{part}.{method}()"), call)
                })
                .collect();
            chain(py, via, calls)
        }
        Verb::RETRY_TASK => run_retry(py, ctx, step, originals),
        Verb::CANCEL_TASK => {
            let Some(orch) = ctx.orchestrator() else {
                return Ok(not_available("orchestrator.cancel_task"));
            };
            let via = "orchestrator.cancel_task".to_string();
            match p("task_id") {
                Ok(id) => outcome(py, via, orch.call_method1("cancel_task", (id,))),
                Err(e) => fatal_or_failed(&via, e),
            }
        }
        Verb::RESET_OVERRIDES => {
            let Some(os) = ctx.override_system() else {
                return Ok(not_available("override_system.clear_stack"));
            };
            outcome(
                py,
                "governance_controller.override_system.clear_stack".into(),
                os.call_method0("clear_stack"),
            )
        }
        Verb::GOVERNANCE_ESCALATE => {
            let Some(os) = ctx.override_system() else {
                return Ok(not_available("override_system.instability_fallback"));
            };
            let via = "governance_controller.override_system.instability_fallback".to_string();
            match p("score") {
                Ok(score) => outcome(py, via, os.call_method1("instability_fallback", (score,))),
                Err(e) => fatal_or_failed(&via, e),
            }
        }
        Verb::REQUEST_RECOVERY => {
            let Some(tm) = ctx.takeover_manager() else {
                return Ok(not_available("takeover_manager.force_recovery"));
            };
            let via = "governance_controller.takeover_manager.force_recovery".to_string();
            // The takeover manager's own cooldown decides whether recovery is allowed yet.
            if has(&tm, "_can_recover") {
                match tm.call_method0("_can_recover").and_then(|v| v.is_truthy()) {
                    Ok(false) => {
                        return Ok(StepOutcome::Declined {
                            via,
                            detail: "recovery is not allowed yet (_can_recover() is False)".into(),
                        })
                    }
                    Ok(true) => {}
                    Err(e) => return fatal_or_failed(&via, e),
                }
            }
            outcome(py, via, tm.call_method0("force_recovery"))
        }
        _ => Ok(StepOutcome::Failed {
            via: "context".into(),
            error: format!("no action available for {}", verb.value()),
        }),
    }
}

fn run_agent_step<'py>(
    py: Python<'py>,
    ctx: &Ctx<'py>,
    step: &Step,
    verb: Verb,
) -> Result<StepOutcome, Fatal> {
    let Some(agents) = ctx.agents() else {
        return Ok(not_available("agent_manager"));
    };
    let name = step.target.clone().unwrap_or_default();
    if verb == Verb::RESTART_AGENT && has(&agents, "restart_agent") {
        return outcome(
            py,
            "agent_manager.restart_agent".into(),
            agents.call_method1("restart_agent", (name,)),
        );
    }
    let via = if verb == Verb::RESTART_AGENT {
        "agent.on_shutdown + agent.on_start".to_string()
    } else {
        "agent.enabled = False".to_string()
    };
    let agent = match agents.call_method1("get_agent", (name.clone(),)) {
        Ok(a) if a.is_none() => {
            return Ok(StepOutcome::Failed {
                via,
                error: format!("agent {name:?} not found (get_agent returned None)"),
            })
        }
        Ok(a) => a,
        Err(e) if is_fatal(py, &e) => return Err(Fatal(e)),
        Err(e) => {
            return Ok(StepOutcome::Failed {
                via,
                error: format!("get_agent: {}", error_text(py, &e)),
            })
        }
    };
    if verb == Verb::ISOLATE_AGENT {
        return outcome(
            py,
            via,
            agent
                .setattr("enabled", false)
                .map(|_| py.None().into_bound(py)),
        );
    }
    if !has(&agent, "on_shutdown") && !has(&agent, "on_start") {
        return Ok(StepOutcome::Failed {
            via,
            error: format!("agent {name:?} has neither on_shutdown nor on_start"),
        });
    }
    let state = ctx
        .layer("state_context")
        .unwrap_or_else(|| py.None().into_bound(py));
    let mut calls: Vec<Call<'py>> = Vec::new();
    for hook in ["on_shutdown", "on_start"] {
        if has(&agent, hook) {
            let (a, s) = (agent.clone(), state.clone());
            calls.push((
                format!("{hook}()"),
                Box::new(move || a.call_method1(hook, (s,))),
            ));
        }
    }
    chain(py, via, calls)
}

/// Resubmits a task with its original name, executor, priority, type and (copied) context.
fn run_retry<'py>(
    py: Python<'py>,
    ctx: &Ctx<'py>,
    step: &Step,
    originals: &Originals<'py>,
) -> Result<StepOutcome, Fatal> {
    let via = "orchestrator.submit_task".to_string();
    let Some(orch) = ctx.orchestrator() else {
        return Ok(not_available(&via));
    };
    let attempt = || -> PyResult<Result<Bound<'py, PyAny>, String>> {
        let id = param(py, step, "task_id", originals)?;
        let Some(tasks) = attr(&orch, "tasks", "orchestrator")? else {
            return Ok(Err("orchestrator has no tasks registry".into()));
        };
        let task = match tasks.get_item(&id) {
            Ok(t) => t,
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(py) => {
                return Ok(Err(format!(
                    "task {} not found in orchestrator.tasks",
                    key_text(&id)?
                )))
            }
            Err(e) => return Err(e),
        };
        let kwargs = PyDict::new(py);
        for field in ["name", "executor", "priority", "task_type", "context"] {
            let value = if let Ok(d) = task.cast::<PyDict>() {
                d.get_item(field)?
            } else {
                attr(&task, field, "task")?
            };
            let Some(value) = value else {
                if field == "name" || field == "executor" {
                    return Ok(Err(format!("task {} has no {field}", key_text(&id)?)));
                }
                continue;
            };
            // The retry gets its own copy of the context dict.
            let value = match value.cast::<PyDict>() {
                Ok(d) if field == "context" => d.copy()?.into_any(),
                _ => value,
            };
            kwargs.set_item(field, value)?;
        }
        Ok(Ok(orch.call_method("submit_task", (), Some(&kwargs))?))
    };
    match attempt() {
        Ok(Ok(new_id)) => outcome(py, via, Ok(new_id)),
        Ok(Err(msg)) => Ok(StepOutcome::Failed { via, error: msg }),
        Err(e) => outcome(py, via, Err(e)),
    }
}

// ------------------------------------------------------------------------------------------
// Measuring again

fn measured(source: &str, key: &str, value: Value) -> Evidence {
    let mut metrics = Metrics::new();
    metrics.insert(key.into(), value);
    Evidence::Measured {
        source: source.into(),
        metrics,
    }
}

fn number_value(obj: &Bound<'_, PyAny>) -> Option<Value> {
    number_of(obj).and_then(|v| serde_json::Number::from_f64(v).map(Value::Number))
}

fn probe_error(py: Python<'_>, source: &str, e: PyErr) -> Result<Option<Evidence>, Fatal> {
    if is_fatal(py, &e) {
        return Err(Fatal(e));
    }
    Ok(Some(Evidence::Error {
        source: source.into(),
        error: error_text(py, &e),
    }))
}

fn run_probe<'py>(
    py: Python<'py>,
    ctx: &Ctx<'py>,
    probe: &Probe,
) -> Result<Option<Evidence>, Fatal> {
    match probe {
        Probe::HasCycle => {
            let Some(graph) = ctx.task_graph() else {
                return Ok(None);
            };
            if has(&graph, "has_cycle") {
                let source = "task_graph.has_cycle()";
                return match graph.call_method0("has_cycle").and_then(|v| v.is_truthy()) {
                    Ok(b) => Ok(Some(measured(source, "has_cycle", Value::Bool(b)))),
                    Err(e) => probe_error(py, source, e),
                };
            }
            let source = "task_graph edges (cycle search)";
            match GraphRead::read(&graph) {
                Ok(Some(read)) => Ok(Some(measured(
                    source,
                    "has_cycle",
                    Value::Bool(cycles::has_cycle(&read.view)),
                ))),
                Ok(None) => Ok(None),
                Err(e) => probe_error(py, source, e),
            }
        }
        Probe::QueueSize => {
            let Some(orch) = ctx.orchestrator() else {
                return Ok(None);
            };
            if let Some(queue) = sub(&orch, "task_queue").filter(|q| has(q, "size")) {
                let source = "orchestrator.task_queue.size()";
                return match queue.call_method0("size") {
                    Ok(v) => Ok(number_value(&v).map(|n| measured(source, "queue_size", n))),
                    Err(e) => probe_error(py, source, e),
                };
            }
            if has(&orch, "get_queue_status") {
                let source = "orchestrator.get_queue_status()";
                return match orch
                    .call_method0("get_queue_status")
                    .and_then(|s| s.get_item("queue_size"))
                {
                    Ok(v) => Ok(number_value(&v).map(|n| measured(source, "queue_size", n))),
                    Err(e) => probe_error(py, source, e),
                };
            }
            let source = "orchestrator.tasks (queued)";
            let mut originals = Originals::new();
            match read_tasks(&orch, &["queued"], &mut originals) {
                Ok(t) if has(&orch, "tasks") => {
                    Ok(Some(measured(source, "queue_size", Value::from(t.len()))))
                }
                Ok(_) => Ok(None),
                Err(e) => probe_error(py, source, e),
            }
        }
        Probe::OverrideStack => {
            let Some(os) = ctx.override_system().filter(|o| has(o, "get_stack_size")) else {
                return Ok(None);
            };
            let source = "override_system.get_stack_size()";
            match os.call_method0("get_stack_size") {
                Ok(v) => Ok(number_value(&v).map(|n| measured(source, "override_count", n))),
                Err(e) => probe_error(py, source, e),
            }
        }
        Probe::TakeoverState => {
            let Some(gov) = ctx.layer("governance_controller") else {
                return Ok(None);
            };
            if has(&gov, "get_takeover_state") {
                let source = "governance_controller.get_takeover_state()";
                return match gov.call_method0("get_takeover_state") {
                    Ok(v) => Ok(label(&v).map(|s| {
                        measured(source, "takeover_active", Value::Bool(takeover_active(&s)))
                    })),
                    Err(e) => probe_error(py, source, e),
                };
            }
            let Some(tm) = ctx
                .takeover_manager()
                .filter(|t| has(t, "is_takeover_active"))
            else {
                return Ok(None);
            };
            let source = "takeover_manager.is_takeover_active()";
            match tm
                .call_method0("is_takeover_active")
                .and_then(|v| v.is_truthy())
            {
                Ok(b) => Ok(Some(measured(source, "takeover_active", Value::Bool(b)))),
                Err(e) => probe_error(py, source, e),
            }
        }
        Probe::RiskScore => {
            let Some(gov) = ctx
                .layer("governance_controller")
                .filter(|g| has(g, "get_risk"))
            else {
                return Ok(None);
            };
            let source = "governance_controller.get_risk()";
            let risk = match gov.call_method0("get_risk") {
                Ok(r) => r,
                Err(e) => return probe_error(py, source, e),
            };
            let Ok(risk) = risk.cast::<PyDict>() else {
                return Ok(None);
            };
            for key in ["total_risk", "overall_score", "risk_score"] {
                if let Ok(Some(v)) = risk.get_item(key) {
                    if let Some(n) = number_value(&v) {
                        return Ok(Some(measured(source, "risk_score", n)));
                    }
                }
            }
            Ok(None)
        }
        Probe::AgentEnabled(name) => {
            let Some(agents) = ctx.agents().filter(|a| has(a, "get_agent")) else {
                return Ok(None);
            };
            let source = "agent_manager.get_agent().enabled";
            match agents.call_method1("get_agent", (name.clone(),)) {
                Ok(a) if a.is_none() => Ok(Some(Evidence::Error {
                    source: source.into(),
                    error: format!("agent {name:?} not found"),
                })),
                Ok(a) => match a.getattr("enabled").and_then(|e| e.is_truthy()) {
                    Ok(enabled) => Ok(Some(Evidence::Enabled {
                        source: source.into(),
                        agent: name.clone(),
                        enabled,
                    })),
                    Err(e) => probe_error(py, source, e),
                },
                Err(e) => probe_error(py, source, e),
            }
        }
    }
}

fn run_verify<'py>(
    py: Python<'py>,
    verify: &Bound<'py, PyAny>,
    fault: &Bound<'py, PyAny>,
) -> Result<Evidence, Fatal> {
    let source = "verify(fault)".to_string();
    match verify.call1((fault,)) {
        Err(e) if is_fatal(py, &e) => Err(Fatal(e)),
        Err(e) => Ok(Evidence::Error {
            source,
            error: error_text(py, &e),
        }),
        Ok(v) => {
            if let Ok(b) = v.cast::<PyBool>() {
                return Ok(Evidence::Verdict {
                    source,
                    passed: b.is_true(),
                });
            }
            if v.cast::<PyDict>().is_ok() {
                return Ok(match to_map(Some(&v), "verify() result") {
                    Ok(metrics) => Evidence::Measured { source, metrics },
                    Err(e) => Evidence::Invalid {
                        source,
                        message: error_text(py, &e),
                    },
                });
            }
            if has(&v, "__await__") {
                return Ok(match super::runtime::settle(&v, "verify") {
                    Ok(settled) if settled.cast::<PyBool>().is_ok() => Evidence::Verdict {
                        source,
                        passed: settled.is_truthy().unwrap_or(false),
                    },
                    Ok(settled) => match to_map(Some(&settled), "verify() result") {
                        Ok(metrics) => Evidence::Measured { source, metrics },
                        Err(e) => Evidence::Invalid {
                            source,
                            message: error_text(py, &e),
                        },
                    },
                    Err(e) => Evidence::Invalid {
                        source,
                        message: error_text(py, &e),
                    },
                });
            }
            Ok(Evidence::Invalid {
                source,
                message: format!(
                    "returned {}, expected a bool or a dict of metrics",
                    type_name(&v)
                ),
            })
        }
    }
}

fn measure<'py>(
    py: Python<'py>,
    ctx: &Ctx<'py>,
    handler: Handler,
    probes: &[Probe],
    fault: &Bound<'py, PyAny>,
) -> Result<Vec<Evidence>, Fatal> {
    let mut evidence = Vec::new();
    for probe in probes {
        if let Some(ev) = run_probe(py, ctx, probe)? {
            evidence.push(ev);
        }
    }
    if let Some(verify) = &ctx.verify {
        if !probe_settles(handler, &evidence, verify) {
            evidence.push(run_verify(py, verify, fault)?);
        }
    }
    Ok(evidence)
}

/// Whether the probes' evidence already settles a cycle fault, so that the integration
/// layer's own `verify(fault)` is not called: `has_cycle()` on the task graph (or the cycle
/// search over its re-read edges), measured after the cuts, is the authoritative check, and
/// that verify would read and analyse the whole graph again for `cycle_count`, which is 0
/// exactly when there is no cycle. A `verify` the caller supplied is always called.
fn probe_settles(handler: Handler, evidence: &[Evidence], verify: &Bound<'_, PyAny>) -> bool {
    handler == Handler::BreakCycle
        && evidence.iter().any(|e| match e {
            Evidence::Measured { metrics, .. } => metrics.contains_key("has_cycle"),
            _ => false,
        })
        && BoundCall::is_layer_verify(verify)
}

// ------------------------------------------------------------------------------------------
// The classes

static EPOCH: OnceLock<Instant> = OnceLock::new();

fn monotonic() -> f64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// The abstract base of the repair engines. Subclass it in Python and implement
/// `can_repair(fault, context)` and `repair(fault, context)`; `self._update_statistics(result)`
/// records a result in the statistics.
#[pyclass(subclass, module = "senti_os.core.faza30.repair_strategies")]
pub struct RepairStrategy {
    kind: Option<EngineKind>,
    core: Mutex<StrategyCore>,
    /// A callable returning seconds, used for budget windows instead of the monotonic clock.
    clock: Option<Py<PyAny>>,
}

impl RepairStrategy {
    fn build(
        py: Python<'_>,
        kind: Option<EngineKind>,
        max_attempts: i64,
        quiet_period: f64,
        history_size: i64,
        clock: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        if !(0..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
            return Err(PyValueError::new_err(format!(
                "max_attempts must be between 0 and {MAX_ATTEMPTS_LIMIT}, got {max_attempts}"
            )));
        }
        if !quiet_period.is_finite() || quiet_period < 0.0 {
            return Err(PyValueError::new_err(format!(
                "quiet_period must be a finite number of seconds >= 0, got {quiet_period}"
            )));
        }
        if !(1..=MAX_HISTORY_LIMIT).contains(&history_size) {
            return Err(PyValueError::new_err(format!(
                "history_size must be between 1 and {MAX_HISTORY_LIMIT}, got {history_size}"
            )));
        }
        let clock = match clock {
            Some(c) if c.is_none(py) => None,
            Some(c) if !c.bind(py).is_callable() => {
                return Err(PyTypeError::new_err(format!(
                    "clock must be a callable returning seconds, got {}",
                    type_name(c.bind(py))
                )))
            }
            other => other,
        };
        let policy = BudgetPolicy {
            max_attempts: max_attempts as u32,
            quiet_period,
            max_targets: DEFAULT_MAX_TARGETS,
        };
        Ok(RepairStrategy {
            kind,
            core: Mutex::new(StrategyCore::new(kind, policy, history_size as usize)),
            clock,
        })
    }

    fn now(&self, py: Python<'_>) -> PyResult<f64> {
        let Some(clock) = &self.clock else {
            return Ok(monotonic());
        };
        let value = clock.bind(py).call0()?;
        let seconds = number_of(&value).ok_or_else(|| {
            PyValueError::new_err(format!(
                "clock() must return a finite number of seconds, got {}",
                type_name(&value)
            ))
        })?;
        Ok(seconds)
    }

    fn can_repair_as(
        &self,
        kind: EngineKind,
        fault: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let fault_type = read_fault_type(fault)?;
        let ctx = Ctx::read(context)?;
        let category = ctx.category()?;
        Ok(claims(kind, &fault_type, category.as_deref()))
    }

    pub(crate) fn repair_as(
        &self,
        py: Python<'_>,
        kind: EngineKind,
        fault: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RepairResult> {
        let done = self.repair_report(py, kind, fault, context)?;
        RepairResult::from_report(
            py,
            &done.fault_id,
            done.report,
            done.duration,
            done.finished,
        )
    }

    /// The repair as engine data: the pipeline keeps it so and makes the `RepairResult` only
    /// if someone looks at it.
    pub(crate) fn repair_report(
        &self,
        py: Python<'_>,
        kind: EngineKind,
        fault: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RepairDone> {
        let started = Instant::now();
        let info = read_fault(fault)?;
        let ctx = Ctx::read(context)?;
        let handler = handler_for(kind, &info.fault_type);
        let mut offer = Offer::default();
        let mut originals = Originals::new();
        if let Some(h) = handler {
            offer = ctx.offer();
            if let Err(e) = gather(&ctx, h, &info, &mut offer, &mut originals) {
                if is_fatal(py, &e) {
                    return Err(e);
                }
                let report = judge_context_error(kind, &info, Some(h), &error_text(py, &e));
                let plan = Plan::Skip {
                    handler: Some(h),
                    reason: SkipReason::NoAction,
                    message: String::new(),
                };
                return self.finish(py, &info, report, &[], &plan, started);
            }
        }
        let now = self.now(py)?;
        let plan = self.core.lock().plan(&info, &offer, now);
        let mut outcomes = Vec::new();
        let mut evidence = Vec::new();
        let mut fatal: Option<PyErr> = None;
        if let Plan::Act(act) = &plan {
            for step in &act.steps {
                match run_step(py, &ctx, step, &originals) {
                    Ok(o) => {
                        let go_on = continues_after(step, &o);
                        outcomes.push(o);
                        if !go_on {
                            break;
                        }
                    }
                    Err(Fatal(e)) => {
                        outcomes.push(StepOutcome::Failed {
                            via: "callback".into(),
                            error: error_text(py, &e),
                        });
                        fatal = Some(e);
                        break;
                    }
                }
            }
            if fatal.is_none() && ready_to_verify(act, &outcomes) {
                match measure(py, &ctx, act.handler, &act.probes, fault) {
                    Ok(ev) => evidence = ev,
                    Err(Fatal(e)) => {
                        evidence.push(Evidence::Error {
                            source: "verification".into(),
                            error: error_text(py, &e),
                        });
                        fatal = Some(e);
                    }
                }
            }
        }
        let report = judge(kind, &info, &plan, &outcomes, &evidence);
        let result = self.finish(py, &info, report, &outcomes, &plan, started);
        match fatal {
            Some(e) => Err(e),
            None => result,
        }
    }

    fn finish(
        &self,
        _py: Python<'_>,
        info: &FaultInfo,
        report: Report,
        outcomes: &[StepOutcome],
        plan: &Plan,
        started: Instant,
    ) -> PyResult<RepairDone> {
        let duration = started.elapsed().as_secs_f64();
        self.core
            .lock()
            .record(info, &report, outcomes, plan, duration);
        Ok(RepairDone {
            fault_id: info.fault_id.clone(),
            report,
            duration,
            finished: now(),
        })
    }
}

fn status_of(result: &Bound<'_, PyAny>) -> PyResult<RepairStatus> {
    let status = attr(result, "status", "result")?.ok_or_else(|| {
        PyTypeError::new_err(format!(
            "result must have a status (a RepairStatus), got {}",
            type_name(result)
        ))
    })?;
    enums::from_py::<RepairStatus>(&status, "result.status")
}

#[pymethods]
impl RepairStrategy {
    #[new]
    #[classmethod]
    #[pyo3(signature = (*_args, **_kwargs))]
    fn py_new(
        cls: &Bound<'_, PyType>,
        _args: &Bound<'_, pyo3::types::PyTuple>,
        _kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let py = cls.py();
        let base = py.get_type::<RepairStrategy>();
        let mut missing = Vec::new();
        for method in ["can_repair", "repair"] {
            if cls.is(&base) || cls.getattr(method)?.is(&base.getattr(method)?) {
                missing.push(method);
            }
        }
        if !missing.is_empty() {
            return Err(PyTypeError::new_err(format!(
                "Can't instantiate abstract class {} without an implementation for abstract methods {}",
                cls.name()?,
                missing.iter().map(|m| format!("'{m}'")).collect::<Vec<_>>().join(", ")
            )));
        }
        RepairStrategy::build(
            py,
            None,
            DEFAULT_MAX_ATTEMPTS as i64,
            DEFAULT_QUIET_PERIOD,
            DEFAULT_HISTORY_SIZE as i64,
            None,
        )
    }

    /// Whether this strategy claims the fault. Abstract.
    #[pyo3(signature = (fault, context=None))]
    fn can_repair(
        &self,
        fault: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let _ = (fault, context);
        Err(PyNotImplementedError::new_err(
            "RepairStrategy.can_repair is abstract; a subclass implements it",
        ))
    }

    /// Repairs the fault and returns a RepairResult. Abstract.
    #[pyo3(signature = (fault, context=None))]
    fn repair(
        &self,
        fault: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RepairResult> {
        let _ = (fault, context);
        Err(PyNotImplementedError::new_err(
            "RepairStrategy.repair is abstract; a subclass implements it",
        ))
    }

    /// Whether the repair holds: the result must be SUCCESS, and when the context can measure
    /// the fault again (the task graph, the orchestrator queue, governance, or `verify`), the
    /// fresh measurement decides; otherwise the result's own `verification_passed` does.
    #[pyo3(signature = (fault, result, context=None))]
    fn verify_repair(
        &self,
        py: Python<'_>,
        fault: &Bound<'_, PyAny>,
        result: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if status_of(result)? != RepairStatus::SUCCESS {
            return Ok(false);
        }
        let recorded = match attr(result, "verification_passed", "result")? {
            Some(v) => v.is_truthy()?,
            None => false,
        };
        let Some(kind) = self.kind else {
            return Ok(recorded);
        };
        let info = read_fault(fault)?;
        let ctx = Ctx::read(context)?;
        let Some(handler) = handler_for(kind, &info.fault_type) else {
            return Ok(recorded);
        };
        let evidence =
            measure(py, &ctx, handler, &recheck_probes(handler), fault).map_err(|Fatal(e)| e)?;
        Ok(recheck(handler, &info, &evidence).unwrap_or(recorded))
    }

    /// Counters (they add up: successful + failed + partial + skipped == total), the mean
    /// duration, the success rate and the history size.
    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (s, history_size, targets) = {
            let core = self.core.lock();
            (core.stats(), core.history_len(), core.budget_targets())
        };
        let out = PyDict::new(py);
        out.set_item("total_repairs", s.total_repairs)?;
        out.set_item("successful_repairs", s.successful_repairs)?;
        out.set_item("failed_repairs", s.failed_repairs)?;
        out.set_item("partial_repairs", s.partial_repairs)?;
        out.set_item("skipped_repairs", s.skipped_repairs)?;
        out.set_item("avg_duration", s.avg_duration)?;
        out.set_item("success_rate", s.success_rate())?;
        out.set_item("history_size", history_size)?;
        out.set_item("actions_run", s.actions_run)?;
        out.set_item("actions_failed", s.actions_failed)?;
        out.set_item("budget_targets", targets)?;
        Ok(out)
    }

    /// The newest `limit` repairs, oldest first, as dicts.
    #[pyo3(signature = (limit=10))]
    fn get_repair_history<'py>(&self, py: Python<'py>, limit: i64) -> PyResult<Bound<'py, PyList>> {
        if limit < 0 {
            return Err(PyValueError::new_err(format!(
                "limit must be 0 or more, got {limit}"
            )));
        }
        let entries = self.core.lock().history(limit as usize);
        let out = PyList::empty(py);
        for e in entries {
            let d = PyDict::new(py);
            d.set_item("fault_id", &e.fault_id)?;
            d.set_item("fault_type", &e.fault_type)?;
            d.set_item("status", enums::to_py(py, e.status)?)?;
            d.set_item("duration", e.duration)?;
            d.set_item("timestamp", datetime_to_py(py, &e.timestamp)?)?;
            d.set_item("handler", e.handler)?;
            d.set_item("actions", e.actions)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// The per-target budgets (`agent:<name>`, `task:<id>`): attempts in the current window,
    /// the limit, seconds since the target was last seen, and whether it is used up.
    fn get_budgets<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let now = self.now(py)?;
        let (states, max) = {
            let core = self.core.lock();
            (core.budget_states(now), core.budget_policy().max_attempts)
        };
        let out = PyDict::new(py);
        for s in states {
            let d = PyDict::new(py);
            d.set_item("attempts", s.attempts)?;
            d.set_item("max_attempts", max)?;
            d.set_item("seconds_since_last", s.seconds_since_last)?;
            d.set_item("exhausted", s.exhausted)?;
            out.set_item(s.target, d)?;
        }
        Ok(out)
    }

    /// Forgets one target's budget (e.g. after re-enabling an isolated agent), or all of
    /// them. Returns how many were removed.
    #[pyo3(signature = (target=None))]
    fn reset_budgets(&self, target: Option<String>) -> usize {
        self.core.lock().reset_budgets(target.as_deref())
    }

    /// Records a result made by a subclass (status and duration are read from it).
    fn _update_statistics(&self, result: &Bound<'_, PyAny>) -> PyResult<()> {
        let status = status_of(result)?;
        let duration = attr(result, "duration", "result")?
            .and_then(|d| number_of(&d))
            .unwrap_or(0.0);
        let text = |name: &str| -> PyResult<String> {
            Ok(attr(result, name, "result")?
                .and_then(|v| label(&v))
                .unwrap_or_default())
        };
        let fault_id = text("fault_id")?;
        let fault_type = attr(result, "metadata", "result")?
            .and_then(|m| {
                m.cast::<PyDict>()
                    .ok()
                    .and_then(|d| d.get_item("fault_type").ok().flatten())
            })
            .and_then(|v| label(&v))
            .unwrap_or_default();
        self.core
            .lock()
            .record_result(fault_id, fault_type, status, duration);
        Ok(())
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        if let Some(c) = &self.clock {
            visit.call(c)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.clock = None;
    }
}

/// Declares one of the four engines: a RepairStrategy subclass with built-in handlers.
macro_rules! repair_engine {
    ($name:ident, $kind:expr, $factory:ident, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(extends = RepairStrategy, subclass, module = "senti_os.core.faza30.repair_strategies")]
        pub struct $name;

        impl $name {
            fn init(py: Python<'_>, max_attempts: i64, quiet_period: f64, history_size: i64, clock: Option<Py<PyAny>>) -> PyResult<PyClassInitializer<Self>> {
                let base = RepairStrategy::build(py, Some($kind), max_attempts, quiet_period, history_size, clock)?;
                Ok(PyClassInitializer::from(base).add_subclass($name))
            }
        }

        #[pymethods]
        impl $name {
            /// `max_attempts` restarts or retries per target before escalating; budgets reset
            /// after `quiet_period` seconds without a fault for the target (default 600);
            /// `history_size` repairs are kept; `clock` (a callable returning seconds)
            /// replaces the monotonic clock for budget windows.
            #[new]
            #[pyo3(signature = (*, max_attempts=DEFAULT_MAX_ATTEMPTS as i64, quiet_period=DEFAULT_QUIET_PERIOD, history_size=DEFAULT_HISTORY_SIZE as i64, clock=None))]
            fn py_new(py: Python<'_>, max_attempts: i64, quiet_period: f64, history_size: i64, clock: Option<Py<PyAny>>) -> PyResult<PyClassInitializer<Self>> {
                Self::init(py, max_attempts, quiet_period, history_size, clock)
            }

            /// Whether this engine claims the fault (a real bool).
            #[pyo3(signature = (fault, context=None))]
            fn can_repair(slf: PyRef<'_, Self>, fault: &Bound<'_, PyAny>, context: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
                slf.as_super().can_repair_as($kind, fault, context)
            }

            /// Plans, runs and verifies the repair of `fault` with what `context` offers.
            #[pyo3(signature = (fault, context=None))]
            fn repair(slf: PyRef<'_, Self>, fault: &Bound<'_, PyAny>, context: Option<&Bound<'_, PyAny>>) -> PyResult<RepairResult> {
                let py = fault.py();
                slf.as_super().repair_as(py, $kind, fault, context)
            }
        }

        #[pyfunction]
        #[pyo3(signature = (*, max_attempts=DEFAULT_MAX_ATTEMPTS as i64, quiet_period=DEFAULT_QUIET_PERIOD, history_size=DEFAULT_HISTORY_SIZE as i64, clock=None))]
        pub fn $factory(py: Python<'_>, max_attempts: i64, quiet_period: f64, history_size: i64, clock: Option<Py<PyAny>>) -> PyResult<Py<$name>> {
            Py::new(py, $name::init(py, max_attempts, quiet_period, history_size, clock)?)
        }
    };
}

repair_engine!(
    GraphRepairEngine,
    EngineKind::Graph,
    create_graph_repair_engine,
    "Repairs the task graph: breaks cycles at their weakest edge, resolves deadlocks, relieves bottlenecks."
);
repair_engine!(
    AgentRepairEngine,
    EngineKind::Agent,
    create_agent_repair_engine,
    "Repairs agents: restarts a failing agent within its budget, then isolates it; damps the meta layer."
);
repair_engine!(
    SchedulerRepairEngine,
    EngineKind::Scheduler,
    create_scheduler_repair_engine,
    "Repairs scheduling: retries failed tasks within their budget, sheds load, resets a stuck scheduler."
);
repair_engine!(
    GovernanceRepairEngine,
    EngineKind::Governance,
    create_governance_repair_engine,
    "Repairs governance: escalates violations and risk, clears override abuse, requests takeover recovery."
);
