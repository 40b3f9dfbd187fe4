//! Reading a layer object: call the methods it has, convert what they answer.
//!
//! Nothing is interpreted here; the engine's adapters decide what the answers mean. Only the
//! fields the adapters use are picked from the real classes' large results (an agent's
//! `metadata` or a task's executor would not convert, and need not). A call that raises is
//! kept as an error; KeyboardInterrupt and similar stop the read.

use super::memo::{GraphMemo, MemoSlot};
use super::pyutil::{
    attr, close_if_awaitable, data_attr, error_text, field, field_named, is_fatal, key_text, label,
    method, Handle,
};
use crate::bindings::convert::{datetime_from_py, to_value, type_name};
use crate::engine::clock::iso;
use crate::engine::detection_engine::Layer;
use crate::engine::integration_layer::graph::{Graph, GraphBuilder};
use crate::engine::integration_layer::reads::{
    self as r, AgentSample, AgentsRead, LayerRead, ReadError,
};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDateTime, PyDict, PyList, PyString, PyTuple};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Tasks scanned at most in `orchestrator.tasks` (a system of 100,000 tasks is read whole).
pub const MAX_TASK_SCAN: usize = 200_000;
/// Edges read from a task graph at most; a bigger graph is reported rather than half-read.
/// Sized for task graphs of several hundred thousand nodes.
pub const MAX_GRAPH_EDGES: usize = 1_000_000;
/// Agents read at most (a system of 10,000 agents is read whole).
pub const MAX_AGENTS: usize = 16_384;
/// Items converted from a sized answer (its length is still read in full).
const MAX_ITEMS: usize = 64;

/// The objects one layer read needs.
#[derive(Clone, Default)]
pub struct Objects {
    pub main: Option<Handle>,
    /// The optimizer for FAZA 27, the governance controller for FAZA 28.5.
    pub extra: Option<Handle>,
    /// FAZA 27: the integration layer's graph memo (see `memo.rs`).
    pub memo: Option<Arc<MemoSlot>>,
}

impl Objects {
    pub fn is_empty(&self) -> bool {
        self.main.is_none() && self.extra.is_none()
    }
}

type Converted = Result<Value, String>;

struct Reader<'py> {
    py: Python<'py>,
    out: LayerRead,
}

impl<'py> Reader<'py> {
    /// Records an error; a fatal one is handed back to stop the read.
    fn fail(&mut self, call: &'static str, err: PyErr) -> PyResult<()> {
        if is_fatal(self.py, &err) {
            return Err(err);
        }
        self.out
            .push(call, Err(ReadError::Raised(error_text(self.py, &err))));
        Ok(())
    }

    /// Calls `obj.name()` if the object has it and records the converted answer.
    fn call(
        &mut self,
        obj: &Bound<'py, PyAny>,
        name: &str,
        call: &'static str,
        convert: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<Converted>,
    ) -> PyResult<()> {
        let m = match method(obj, name) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            Err(e) => return self.fail(call, e),
        };
        self.answer(call, m.call0(), convert)
    }

    fn answer(
        &mut self,
        call: &'static str,
        result: PyResult<Bound<'py, PyAny>>,
        convert: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<Converted>,
    ) -> PyResult<()> {
        let value = match result {
            Ok(v) => v,
            Err(e) => return self.fail(call, e),
        };
        if close_if_awaitable(&value) {
            self.out.push(
                call,
                Err(ReadError::Invalid(format!(
                    "{call} returned a coroutine; layer reads must be synchronous"
                ))),
            );
            return Ok(());
        }
        match convert(&value) {
            Ok(Ok(v)) => self.out.push(call, Ok(v)),
            Ok(Err(msg)) => self
                .out
                .push(call, Err(ReadError::Invalid(format!("{call}: {msg}")))),
            Err(e) => return self.fail(call, e),
        }
        Ok(())
    }
}

/// The answer as a JSON value, as the reference used it.
fn raw(obj: &Bound<'_, PyAny>) -> PyResult<Converted> {
    Ok(to_value(obj, "the answer").map_err(|e| error_text(obj.py(), &e)))
}

/// The listed keys of a dict answer (others are left alone); a non-dict answer as is.
fn pick<'a>(keys: &'a [&'a str]) -> impl FnOnce(&Bound<'_, PyAny>) -> PyResult<Converted> + 'a {
    move |obj| {
        let Ok(d) = obj.cast::<PyDict>() else {
            return raw(obj);
        };
        let mut out = Map::new();
        for k in keys {
            if let Some(v) = d.get_item(*k)? {
                match to_value(&v, k) {
                    Ok(v) => {
                        out.insert((*k).to_owned(), v);
                    }
                    Err(e) => return Ok(Err(error_text(obj.py(), &e))),
                }
            }
        }
        Ok(Ok(Value::Object(out)))
    }
}

/// `{"len": n, "items": [...]}`: a falsy answer is empty, as the reference read it.
fn sized(with_items: bool) -> impl FnOnce(&Bound<'_, PyAny>) -> PyResult<Converted> {
    move |obj| {
        if !obj.is_truthy()? {
            return Ok(Ok(serde_json::json!({"len": 0, "items": []})));
        }
        let Ok(len) = obj.len() else {
            return Ok(Err(format!(
                "returned {}, expected a sized collection",
                type_name(obj)
            )));
        };
        let mut items = Vec::new();
        if with_items {
            for item in obj.try_iter()?.take(MAX_ITEMS) {
                let item = item?;
                let v = match to_value(&item, "item") {
                    Ok(v) => v,
                    // A dict entry with unconvertible fields still names its node.
                    Err(_) => match item.cast::<PyDict>() {
                        Ok(d) => match d.get_item("node_id")?.or(d.get_item("node")?) {
                            Some(n) => serde_json::json!({"node_id": key_text(&n)?}),
                            None => Value::Null,
                        },
                        Err(_) => Value::Null,
                    },
                };
                items.push(v);
            }
        }
        Ok(Ok(serde_json::json!({"len": len, "items": items})))
    }
}

fn number_of(obj: &Bound<'_, PyAny>) -> Option<Value> {
    to_value(obj, "n").ok().filter(Value::is_number)
}

fn datetime_text(obj: &Bound<'_, PyAny>) -> Value {
    if obj.cast::<PyDateTime>().is_ok() {
        if let Ok(dt) = datetime_from_py(obj, "started_at") {
            return Value::String(iso(&dt));
        }
    }
    match label(obj) {
        Some(s) => Value::String(s),
        None => Value::Null,
    }
}

/// Reads one layer. `Err` only for a fatal exception (KeyboardInterrupt ...).
pub fn read_layer(py: Python<'_>, layer: Layer, objs: &Objects) -> PyResult<LayerRead> {
    let mut rd = Reader {
        py,
        out: LayerRead::new(),
    };
    let main = objs.main.as_ref().map(|h| h.bind(py).clone());
    let extra = objs.extra.as_ref().map(|h| h.bind(py).clone());
    match layer {
        Layer::Faza25 => {
            if let Some(o) = &main {
                read_orchestrator(&mut rd, o)?;
            }
        }
        Layer::Faza27 => {
            if let Some(g) = &main {
                read_graph(&mut rd, g, objs.memo.as_deref())?;
            }
            if let Some(opt) = &extra {
                rd.call(opt, "get_optimization_score", r::P_OPT_SCORE, raw)?;
                rd.call(opt, "detect_bottlenecks", r::P_OPT_BOTTLENECKS, sized(true))?;
            }
        }
        Layer::Faza28 => {
            if let Some(l) = &main {
                read_agent_loop(&mut rd, l)?;
            }
        }
        Layer::Faza28_5 => {
            if let Some(m) = &main {
                rd.call(m, "get_stability_score", r::P_STABILITY, raw)?;
                rd.call(m, "get_policy_effectiveness", r::P_POLICY, raw)?;
                rd.call(m, "get_anomaly_count", r::P_ANOMALY_COUNT, raw)?;
                rd.call(m, "get_feedback_health", r::P_FEEDBACK, raw)?;
                rd.call(
                    m,
                    "get_stability_summary",
                    r::R_STABILITY_SUMMARY,
                    pick(&["avg_severity", "critical_issues", "recent_issues"]),
                )?;
                rd.call(
                    m,
                    "get_anomaly_summary",
                    r::R_ANOMALY_SUMMARY,
                    pick(&["recent_anomalies", "agents_with_anomalies"]),
                )?;
                if let Some(g) = &extra {
                    if let Some(feedback) = part(
                        &mut rd,
                        g,
                        "feedback_loop",
                        "get_feedback_loop",
                        r::R_GOV_FEEDBACK,
                    )? {
                        rd.call(&feedback, "get_stability_score", r::R_GOV_FEEDBACK, raw)?;
                    }
                }
            }
        }
        Layer::Faza29 => {
            if let Some(g) = &main {
                read_governance(&mut rd, g)?;
            }
        }
    }
    Ok(rd.out)
}

/// A sub-object of a layer, from its attribute or its getter.
fn part<'py>(
    rd: &mut Reader<'py>,
    obj: &Bound<'py, PyAny>,
    attribute: &str,
    getter: &str,
    call: &'static str,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match attr(obj, attribute) {
        Ok(Some(p)) => return Ok(Some(p)),
        Ok(None) => {}
        Err(e) => {
            rd.fail(call, e)?;
            return Ok(None);
        }
    }
    match method(obj, getter) {
        Ok(Some(m)) => match m.call0() {
            Ok(p) if p.is_none() => Ok(None),
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                rd.fail(call, e)?;
                Ok(None)
            }
        },
        Ok(None) => Ok(None),
        Err(e) => {
            rd.fail(call, e)?;
            Ok(None)
        }
    }
}

// ------------------------------------------------------------------------------------------
// FAZA 25

fn read_orchestrator<'py>(rd: &mut Reader<'py>, o: &Bound<'py, PyAny>) -> PyResult<()> {
    rd.call(o, "get_queue_size", r::P_QUEUE_SIZE, raw)?;
    rd.call(o, "get_queue_metrics", r::P_QUEUE_METRICS, raw)?;
    rd.call(o, "get_scheduler_stats", r::P_SCHEDULER_STATS, raw)?;
    rd.call(o, "get_resource_usage", r::P_RESOURCE_USAGE, raw)?;
    rd.call(
        o,
        "get_queue_status",
        r::R_QUEUE_STATUS,
        pick(&["queue_size", "tasks_by_status"]),
    )?;
    rd.call(o, "get_worker_status", r::R_WORKER_STATUS, |status| {
        let Ok(d) = status.cast::<PyDict>() else {
            return Ok(Err(format!(
                "returned {}, expected a dict",
                type_name(status)
            )));
        };
        let workers: Vec<Bound<'_, PyAny>> = match d.get_item("workers")? {
            Some(w) if !w.is_none() => match w.try_iter() {
                Ok(it) => it.take(MAX_AGENTS).collect::<PyResult<_>>()?,
                Err(_) => return Ok(Err("'workers' is not a list".into())),
            },
            _ => Vec::new(),
        };
        let total = match d.get_item("num_workers")? {
            Some(n) => number_of(&n).unwrap_or(Value::from(workers.len())),
            None => Value::from(workers.len()),
        };
        let mut busy = 0usize;
        for w in &workers {
            if field(w, "current_task")?.is_some() {
                busy += 1;
            }
        }
        Ok(Ok(serde_json::json!({"num_workers": total, "busy": busy})))
    })?;
    match data_attr(o, "tasks") {
        Ok(Some(tasks)) => {
            let answer = task_scan(&tasks);
            rd.answer(r::R_TASKS, Ok(tasks.clone()), |_| answer)?;
        }
        Ok(None) => {
            if let Ok(Some(list)) = method(o, "list_tasks") {
                let result = list.call0();
                rd.answer(r::R_TASKS, result, |l| task_scan(l))?;
            }
        }
        Err(e) => rd.fail(r::R_TASKS, e)?,
    }
    Ok(())
}

/// Running tasks (id, start) and failed task ids from a dict of tasks or a list of task dicts.
fn task_scan(tasks: &Bound<'_, PyAny>) -> PyResult<Converted> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(d) = tasks.cast::<PyDict>() {
        d.values().iter().take(MAX_TASK_SCAN).collect()
    } else if tasks.cast::<PyList>().is_ok() || tasks.cast::<PyTuple>().is_ok() {
        tasks
            .try_iter()?
            .take(MAX_TASK_SCAN)
            .collect::<PyResult<_>>()?
    } else {
        return Ok(Err(format!(
            "tasks is {}, expected a dict of id -> task",
            type_name(tasks)
        )));
    };
    let truncated = tasks.len().unwrap_or(0) > items.len();
    let mut running = Vec::new();
    let mut failed = Vec::new();
    for t in &items {
        let Some(status) = field(t, "status")?.and_then(|s| label(&s)) else {
            continue;
        };
        let status = status.to_lowercase();
        if status != "running" && status != "error" {
            continue;
        }
        let Some(id) = field(t, "id")? else { continue };
        let id = key_text(&id)?;
        if status == "running" {
            let started = field(t, "started_at")?
                .map(|s| datetime_text(&s))
                .unwrap_or(Value::Null);
            running.push(serde_json::json!([id, started]));
        } else {
            failed.push(Value::String(id));
        }
    }
    Ok(Ok(
        serde_json::json!({"running": running, "failed": failed, "truncated": truncated}),
    ))
}

// ------------------------------------------------------------------------------------------
// FAZA 27

fn read_graph<'py>(
    rd: &mut Reader<'py>,
    g: &Bound<'py, PyAny>,
    memo: Option<&MemoSlot>,
) -> PyResult<()> {
    rd.call(g, "get_complexity", r::P_COMPLEXITY, raw)?;
    rd.call(g, "detect_cycles", r::P_DETECT_CYCLES, sized(true))?;
    match read_shape(g, memo) {
        Ok(Some(Ok(graph))) => rd.out.set_graph(r::R_EDGES, graph),
        Ok(Some(Err(msg))) => rd.out.push(r::R_EDGES, Err(ReadError::Invalid(msg))),
        Ok(None) => rd.call(g, "get_stats", r::P_GRAPH_STATS, raw)?,
        Err(e) => rd.fail(r::R_EDGES, e)?,
    }
    rd.call(g, "find_all_cycles", r::R_FIND_CYCLES, sized(true))?;
    rd.call(g, "find_bottlenecks", r::R_FIND_BOTTLENECKS, sized(true))?;
    Ok(())
}

/// An edge end: `source_id`/`src`/`source` (or position 0) and `target_id`/`dst`/`target`.
pub fn edge_end<'py>(
    edge: &Bound<'py, PyAny>,
    names: &[&str],
    position: usize,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Some(found) = positional(edge, position)? {
        return Ok(found);
    }
    for n in names {
        if let Some(v) = field(edge, n)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// Item `position` of a tuple or list edge (`Some(None)` when it is too short); `None` for
/// other edges.
fn positional<'py>(
    edge: &Bound<'py, PyAny>,
    position: usize,
) -> PyResult<Option<Option<Bound<'py, PyAny>>>> {
    if let Ok(t) = edge.cast::<PyTuple>() {
        return Ok(Some(if position < t.len() {
            Some(t.get_item(position)?)
        } else {
            None
        }));
    }
    if let Ok(l) = edge.cast::<PyList>() {
        return Ok(Some(if position < l.len() {
            Some(l.get_item(position)?)
        } else {
            None
        }));
    }
    Ok(None)
}

/// An edge's source and target, each `None` when missing.
pub type Ends<'py> = (Option<Bound<'py, PyAny>>, Option<Bound<'py, PyAny>>);

/// Both ends of an edge, as [`edge_end`] reads them, with the attribute names made once.
pub fn edge_ends<'py>(edge: &Bound<'py, PyAny>) -> PyResult<Ends<'py>> {
    let py = edge.py();
    let end = |position: usize,
               names: [&Bound<'py, PyString>; 3]|
     -> PyResult<Option<Bound<'py, PyAny>>> {
        if let Some(found) = positional(edge, position)? {
            return Ok(found);
        }
        for n in names {
            if let Some(v) = field_named(edge, n)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    };
    let src = end(
        0,
        [
            intern!(py, "source_id"),
            intern!(py, "src"),
            intern!(py, "source"),
        ],
    )?;
    let dst = end(
        1,
        [
            intern!(py, "target_id"),
            intern!(py, "dst"),
            intern!(py, "target"),
        ],
    )?;
    Ok((src, dst))
}

/// Node ids interned as a graph is read: the index of each id's text (as [`key_text`] gives
/// it), and, when asked for, the first Python object seen for each.
pub struct NodeIds<'py> {
    ids: GraphBuilder,
    first: Option<Vec<Bound<'py, PyAny>>>,
}

impl<'py> NodeIds<'py> {
    pub fn new() -> Self {
        NodeIds {
            ids: GraphBuilder::new(),
            first: None,
        }
    }

    /// Also keeps the first object of each id (to hand a layer its own ids back).
    pub fn keeping_objects() -> Self {
        NodeIds {
            ids: GraphBuilder::new(),
            first: Some(Vec::new()),
        }
    }

    /// The index of a node id, added if new.
    pub fn index(&mut self, node: &Bound<'py, PyAny>) -> PyResult<u32> {
        let text = Self::text(node)?;
        Ok(self.index_text(&text, node))
    }

    /// A node id's text, as [`key_text`] gives it (without a copy for a str).
    pub fn text<'a>(node: &'a Bound<'py, PyAny>) -> PyResult<std::borrow::Cow<'a, str>> {
        match node.cast::<PyString>() {
            Ok(text) => text.to_cow(),
            Err(_) => Ok(std::borrow::Cow::Owned(key_text(node)?)),
        }
    }

    /// The index of the id `text` (read from `node`), added if new.
    pub fn index_text(&mut self, text: &str, node: &Bound<'py, PyAny>) -> u32 {
        let i = self.ids.node(text);
        if let Some(first) = &mut self.first {
            if i as usize == first.len() {
                first.push(node.clone());
            }
        }
        i
    }

    /// An edge between two indices.
    pub fn edge(&mut self, source: u32, target: u32) {
        self.ids.edge(source, target);
    }

    /// Ids read so far.
    pub fn count(&self) -> usize {
        self.ids.node_count()
    }

    /// The graph, and the first object of each id if they were kept.
    pub fn finish(self) -> (Graph, Vec<Bound<'py, PyAny>>) {
        (self.ids.finish(), self.first.unwrap_or_default())
    }
}

impl Default for NodeIds<'_> {
    fn default() -> Self {
        NodeIds::new()
    }
}

/// Node ids and edge objects read from a graph.
pub type GraphParts<'py> = (Vec<Bound<'py, PyAny>>, Vec<Bound<'py, PyAny>>);

/// What a walk over a graph is handed, object by object.
pub trait GraphVisitor<'py> {
    /// The graph's `nodes` and `edges` (when it has them), before they are walked.
    fn containers(
        &mut self,
        _nodes: Option<&Bound<'py, PyAny>>,
        _edges: Option<&Bound<'py, PyAny>>,
    ) {
    }
    fn node(&mut self, id: &Bound<'py, PyAny>) -> PyResult<()>;
    fn edge(&mut self, edge: &Bound<'py, PyAny>) -> PyResult<()>;
}

impl<'py> GraphVisitor<'py> for GraphParts<'py> {
    fn node(&mut self, id: &Bound<'py, PyAny>) -> PyResult<()> {
        self.0.push(id.clone());
        Ok(())
    }
    fn edge(&mut self, edge: &Bound<'py, PyAny>) -> PyResult<()> {
        self.1.push(edge.clone());
        Ok(())
    }
}

/// The graph's node ids and edges as Python objects, collected (see [`visit_graph`]).
pub fn graph_edges<'py>(g: &Bound<'py, PyAny>) -> PyResult<Option<GraphParts<'py>>> {
    let mut parts: GraphParts<'py> = (Vec::new(), Vec::new());
    let found = visit_graph(g, &mut parts)?;
    Ok(found.then_some(parts))
}

/// Walks the graph's node ids (the keys of `nodes`, or each node's `node_id`), then its
/// edges: the `edges` list (or dict values), else `get_edges_from(node)` for each node.
/// False when the graph exposes neither. Each object is handed over as it is read, so a
/// large graph is walked once, while its objects are in the cache.
pub fn visit_graph<'py>(
    g: &Bound<'py, PyAny>,
    visitor: &mut impl GraphVisitor<'py>,
) -> PyResult<bool> {
    let too_many = || {
        pyo3::exceptions::PyValueError::new_err(format!(
            "the task graph has more than {MAX_GRAPH_EDGES} nodes or edges, too many to analyse"
        ))
    };
    let nodes = data_attr(g, "nodes")?;
    if nodes
        .as_ref()
        .is_some_and(|n| n.len().is_ok_and(|l| l > MAX_GRAPH_EDGES))
    {
        return Err(too_many());
    }
    let edge_list = data_attr(g, "edges")?;
    visitor.containers(nodes.as_ref(), edge_list.as_ref());
    let from = match (&edge_list, &nodes) {
        (None, Some(_)) => method(g, "get_edges_from")?,
        _ => None,
    };
    // The node ids are kept only when the edges must be asked for node by node.
    let mut kept: Vec<Bound<'py, PyAny>> = Vec::new();
    if let Some(n) = &nodes {
        // A dict's ids are the keys it holds when the read begins (reading an id may run
        // code that changes the dict).
        let (ids, is_dict) = match n.cast::<PyDict>() {
            Ok(d) => (d.keys().into_any(), true),
            Err(_) => (n.clone(), false),
        };
        for node in ids.try_iter()? {
            let node = node?;
            let id = if is_dict {
                node
            } else {
                field(&node, "node_id")?.unwrap_or(node)
            };
            visitor.node(&id)?;
            if from.is_some() {
                kept.push(id);
            }
        }
    }
    let mut count = 0usize;
    let mut edge = |e: Bound<'py, PyAny>| -> PyResult<()> {
        count += 1;
        if count > MAX_GRAPH_EDGES {
            return Err(too_many());
        }
        visitor.edge(&e)
    };
    if let Some(list) = edge_list {
        let it = if let Ok(d) = list.cast::<PyDict>() {
            d.values().try_iter()?
        } else {
            list.try_iter()?
        };
        for e in it {
            edge(e?)?;
        }
        return Ok(true);
    }
    if let Some(from) = from {
        for id in &kept {
            for e in from.call1((id,))?.try_iter()? {
                edge(e?)?;
            }
        }
        return Ok(true);
    }
    Ok(false)
}

/// Interns a graph as it is walked.
struct Interning<'py> {
    ids: NodeIds<'py>,
    /// The first edge without two ends, described; the edges after it are not read.
    missing_end: Option<String>,
    /// An error raised while reading an id or an edge (not while walking the graph).
    failed: bool,
    /// What a graph memo needs, while the read can still be kept (see `memo.rs`).
    record: Option<Recording<'py>>,
}

/// The objects a full read met, for a [`GraphMemo`].
#[derive(Default)]
struct Recording<'py> {
    nodes: Option<Bound<'py, PyAny>>,
    node_keys: Vec<Py<PyAny>>,
    edges: Vec<Py<PyAny>>,
    /// Names read from the node dict (counted at the first edge).
    listed: Option<usize>,
}

/// A non-empty `str`: an id whose text cannot change while it is held.
fn plain_id(id: &Bound<'_, PyAny>) -> bool {
    id.cast_exact::<PyString>()
        .is_ok_and(|s| s.to_cow().is_ok_and(|t| !t.is_empty()))
}

impl Interning<'_> {
    fn attempt<T>(&mut self, r: PyResult<T>) -> PyResult<T> {
        self.failed |= r.is_err();
        r
    }
}

impl<'py> GraphVisitor<'py> for Interning<'py> {
    fn containers(&mut self, nodes: Option<&Bound<'py, PyAny>>, edges: Option<&Bound<'py, PyAny>>) {
        let keepable = nodes.is_none_or(|n| n.cast_exact::<PyDict>().is_ok())
            && edges.is_some_and(|e| e.cast_exact::<PyList>().is_ok());
        match (&mut self.record, keepable) {
            (Some(r), true) => r.nodes = nodes.cloned(),
            _ => self.record = None,
        }
    }

    fn node(&mut self, id: &Bound<'py, PyAny>) -> PyResult<()> {
        if let Some(r) = &mut self.record {
            if plain_id(id) {
                r.node_keys.push(id.clone().unbind());
            } else {
                self.record = None;
            }
        }
        let text = NodeIds::text(id);
        let text = self.attempt(text)?;
        // An empty id is not a node (as the analysis always read it).
        if !text.is_empty() {
            self.ids.index_text(&text, id);
        }
        Ok(())
    }

    fn edge(&mut self, edge: &Bound<'py, PyAny>) -> PyResult<()> {
        if self.missing_end.is_some() {
            return Ok(());
        }
        let ends = edge_ends(edge);
        let (Some(src), Some(dst)) = self.attempt(ends)? else {
            self.missing_end = Some(format!(
                "an edge ({}) has no source_id/src or target_id/dst",
                type_name(edge)
            ));
            return Ok(());
        };
        if let Some(r) = &mut self.record {
            if edge.cast::<PyDict>().is_err() && plain_id(&src) && plain_id(&dst) {
                r.listed.get_or_insert(self.ids.count());
                r.edges.push(edge.clone().unbind());
            } else {
                self.record = None;
            }
        }
        let a = NodeIds::text(&src);
        let a = self.attempt(a)?;
        let b = NodeIds::text(&dst);
        let b = self.attempt(b)?;
        // An edge with an empty end is left out, its other end too.
        if !a.is_empty() && !b.is_empty() {
            let (a, b) = (self.ids.index_text(&a, &src), self.ids.index_text(&b, &dst));
            self.ids.edge(a, b);
        }
        Ok(())
    }
}

/// The graph's node ids and edges, interned; an error text, or `None` (no edges exposed).
/// A ValueError from walking the graph (too many edges ...) is the error text; one from
/// reading an id or an edge is raised, as any other error. While a healing cycle runs, a
/// graph read before in the cycle is checked against that read instead of walked again.
fn read_shape(
    g: &Bound<'_, PyAny>,
    memo: Option<&MemoSlot>,
) -> PyResult<Option<Result<Graph, String>>> {
    let memo = memo.filter(|m| m.is_open());
    if let Some(slot) = memo {
        if let Some(reused) = reuse_shape(g, slot) {
            return Ok(Some(Ok(reused)));
        }
    }
    let mut walk = Interning {
        ids: NodeIds::new(),
        missing_end: None,
        failed: false,
        record: memo.map(|_| Recording::default()),
    };
    let found = visit_graph(g, &mut walk);
    if let (Ok(true), None, Some(slot), Some(r)) =
        (&found, &walk.missing_end, memo, walk.record.take())
    {
        let (graph, _) = std::mem::take(&mut walk.ids).finish();
        let listed = r.listed.unwrap_or(graph.node_count());
        let nodes = r.nodes.map(|n| (n.unbind(), r.node_keys));
        let shape = graph.clone();
        if let Some(m) = GraphMemo::new(g.clone().unbind(), nodes, r.edges, graph, listed) {
            drop(slot.replace(m));
        }
        return Ok(Some(Ok(shape)));
    }
    match found {
        Ok(false) => Ok(None),
        Ok(true) => Ok(Some(match walk.missing_end {
            Some(msg) => Err(msg),
            None => Ok(walk.ids.finish().0),
        })),
        Err(e) if !walk.failed && e.is_instance_of::<pyo3::exceptions::PyValueError>(g.py()) => {
            Ok(Some(Err(error_text(g.py(), &e))))
        }
        Err(e) => Err(e),
    }
}

/// The graph from the cycle's memo, if the reuse rule holds (any error: `None`, and the full
/// read that follows meets it again).
fn reuse_shape(g: &Bound<'_, PyAny>, slot: &MemoSlot) -> Option<Graph> {
    let memo = slot.take()?;
    let shape = (|| {
        let nodes = data_attr(g, "nodes").ok()?;
        let edges = data_attr(g, "edges").ok()?;
        let kept = memo.still_holds(g, nodes.as_ref(), edges.as_ref())?;
        Some(memo.shape_keeping(&kept))
    })();
    drop(slot.put(memo));
    shape
}

// ------------------------------------------------------------------------------------------
// FAZA 28

/// The agent manager of an agent loop (`.agent_manager`), or the object itself when it is one.
pub fn agent_manager<'py>(l: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Some(m) = attr(l, "agent_manager")? {
        return Ok(Some(m));
    }
    let looks_like_manager = method(l, "get_agent")?.is_some()
        && (method(l, "get_stats")?.is_some() || attr(l, "agents")?.is_some());
    Ok(looks_like_manager.then(|| l.clone()))
}

fn agent_entry(a: &Bound<'_, PyAny>) -> PyResult<Option<AgentSample>> {
    let py = a.py();
    let Some(name) = field_named(a, intern!(py, "name"))? else {
        return Ok(None);
    };
    let name = Some(key_text(&name)?).filter(|n| !n.is_empty());
    let enabled = match field_named(a, intern!(py, "enabled"))? {
        Some(e) => Some(e.is_truthy()?),
        None => None,
    };
    let count = |k: &Bound<'_, PyString>| -> PyResult<Option<f64>> {
        Ok(field_named(a, k)?
            .and_then(|v| number_of(&v))
            .and_then(|v| v.as_f64()))
    };
    let tick_count = count(intern!(py, "tick_count"))?;
    let error_count = count(intern!(py, "error_count"))?;
    Ok(Some(AgentSample {
        name,
        enabled,
        tick_count,
        error_count,
    }))
}

/// The agents and their counts from a manager's stats dict, or from its `agents` registry.
fn agents_value(
    stats: Option<&Bound<'_, PyAny>>,
    manager: Option<&Bound<'_, PyAny>>,
) -> PyResult<Result<AgentsRead, String>> {
    let mut out = AgentsRead::default();
    let list: Vec<Bound<'_, PyAny>> = if let Some(s) = stats {
        let Ok(d) = s.cast::<PyDict>() else {
            return Ok(Err(format!("returned {}, expected a dict", type_name(s))));
        };
        let count = |k: &str| -> PyResult<Option<f64>> {
            Ok(d.get_item(k)?
                .and_then(|v| number_of(&v))
                .and_then(|v| v.as_f64()))
        };
        out.total_agents = count("total_agents")?;
        out.enabled_agents = count("enabled_agents")?;
        match d.get_item("agents")? {
            Some(a) => a.try_iter()?.take(MAX_AGENTS).collect::<PyResult<_>>()?,
            None => Vec::new(),
        }
    } else if let Some(registry) = manager.map(|m| attr(m, "agents")).transpose()?.flatten() {
        if let Ok(d) = registry.cast::<PyDict>() {
            d.values().iter().take(MAX_AGENTS).collect()
        } else {
            registry
                .try_iter()?
                .take(MAX_AGENTS)
                .collect::<PyResult<_>>()?
        }
    } else {
        return Ok(Err("no agent statistics".into()));
    };
    out.agents.reserve(list.len());
    for a in &list {
        if let Some(v) = agent_entry(a)? {
            out.agents.push(v);
        }
    }
    Ok(Ok(out))
}

fn read_agent_loop<'py>(rd: &mut Reader<'py>, l: &Bound<'py, PyAny>) -> PyResult<()> {
    rd.call(l, "get_agent_stats", r::P_AGENT_STATS, raw)?;
    rd.call(l, "get_communication_health", r::P_COMM_HEALTH, raw)?;
    rd.call(l, "get_active_agents", r::P_ACTIVE_AGENTS, sized(false))?;
    let manager = match agent_manager(l) {
        Ok(m) => m,
        Err(e) => {
            rd.fail(r::R_AGENTS, e)?;
            None
        }
    };
    let Some(manager) = manager else {
        return Ok(());
    };
    let is_loop = !manager.is(l);
    let mut manager_stats: Option<Bound<'py, PyAny>> = None;
    if is_loop {
        // AELController.get_stats() already holds the manager's stats; one call serves both.
        if let Ok(Some(get)) = method(l, "get_stats") {
            match get.call0() {
                Ok(stats) => {
                    if let Ok(d) = stats.cast::<PyDict>() {
                        manager_stats = d
                            .get_item("agent_manager")?
                            .filter(|m| m.cast::<PyDict>().is_ok());
                    }
                    rd.answer(
                        r::R_LOOP_STATS,
                        Ok(stats),
                        pick(&["running", "iteration", "tick_rate"]),
                    )?;
                }
                Err(e) => rd.fail(r::R_LOOP_STATS, e)?,
            }
        }
        if let Ok(Some(state)) = attr(l, "state_context") {
            if let Ok(Some(get)) = method(&state, "get") {
                let tick = get.call1(("ael_last_tick",));
                rd.answer(r::R_LAST_TICK, tick, |t| {
                    Ok(Ok(if t.is_none() {
                        Value::Null
                    } else {
                        datetime_text(t)
                    }))
                })?;
            }
        }
    }
    if manager_stats.is_none() {
        if let Ok(Some(get)) = method(&manager, "get_stats") {
            match get.call0() {
                Ok(s) => manager_stats = Some(s),
                Err(e) => return rd.fail(r::R_AGENTS, e),
            }
        }
    }
    let call = r::R_AGENTS;
    if close_if_awaitable(&manager) {
        rd.out.push(
            call,
            Err(ReadError::Invalid(format!(
                "{call} returned a coroutine; layer reads must be synchronous"
            ))),
        );
        return Ok(());
    }
    match agents_value(manager_stats.as_ref(), Some(&manager)) {
        Ok(Ok(agents)) => rd.out.set_agents(call, agents),
        Ok(Err(msg)) => rd
            .out
            .push(call, Err(ReadError::Invalid(format!("{call}: {msg}")))),
        Err(e) => rd.fail(call, e)?,
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// FAZA 29

fn read_governance<'py>(rd: &mut Reader<'py>, g: &Bound<'py, PyAny>) -> PyResult<()> {
    rd.call(
        g,
        "get_risk",
        r::P_RISK,
        pick(&["overall_score", "total_risk", "risk_score"]),
    )?;
    rd.call(
        g,
        "get_status",
        r::P_STATUS,
        pick(&["violations", "override_count"]),
    )?;
    rd.call(g, "get_takeover_state", r::P_TAKEOVER_STATE, |s| {
        if s.is_none() {
            return Ok(Ok(Value::Null));
        }
        if let Some(text) = label(s) {
            return Ok(Ok(Value::String(text)));
        }
        raw(s)
    })?;
    if let Some(tm) = part(
        rd,
        g,
        "takeover_manager",
        "get_takeover_manager",
        r::R_TAKEOVER_ACTIVE,
    )? {
        rd.call(&tm, "is_takeover_active", r::R_TAKEOVER_ACTIVE, |v| {
            Ok(Ok(Value::Bool(v.is_truthy()?)))
        })?;
    }
    rd.call(g, "get_statistics", r::R_GOV_STATS, |s| {
        let blocks = s
            .cast::<PyDict>()
            .ok()
            .and_then(|d| d.get_item("rule_engine").ok().flatten())
            .and_then(|re| {
                re.cast::<PyDict>()
                    .ok()
                    .and_then(|d| d.get_item("block_count").ok().flatten())
            });
        Ok(Ok(match blocks.and_then(|b| number_of(&b)) {
            Some(n) => serde_json::json!({"block_count": n}),
            None => serde_json::json!({}),
        }))
    })?;
    if let Some(os) = part(
        rd,
        g,
        "override_system",
        "get_override_system",
        r::R_OVERRIDE_STACK,
    )? {
        rd.call(&os, "get_stack_size", r::R_OVERRIDE_STACK, raw)?;
    }
    Ok(())
}
