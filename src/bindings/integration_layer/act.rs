//! Running the `trigger_faza*_action` routes against the layer objects.
//!
//! The engine (`engine::integration_layer::actions`) names the route and makes the choices
//! (which tasks to shed, which edge to cut); this file makes the calls. Every route answers
//! whether the call happened; a call that raises is an integration fault and answers False.

use super::calls::{blocking_call, Failure};
use super::pyutil::{attr, data_attr, field, is_fatal, key_text, label, method};
use super::read::{agent_manager, edge_end, edge_ends, graph_edges, MAX_TASK_SCAN};
use crate::bindings::errors::IntoPyResult;
use crate::bindings::runtime::Caller;
use crate::engine::integration_layer::actions::{self, QueuedTask, Route};
use crate::engine::repair_strategies::cycles::{Edge, GraphView};
use crate::engine::value::Metrics;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::collections::HashMap;
use std::sync::Arc;

/// What a route did.
pub enum Done {
    /// The call happened.
    Ran,
    /// Nothing to call (no such object, method, task or agent), or the layer declined.
    NotRun,
    /// A call raised or timed out.
    Failed(Failure),
}

/// The layer objects a route may use.
pub struct Targets<'py> {
    pub orchestrator: Option<Bound<'py, PyAny>>,
    pub task_graph: Option<Bound<'py, PyAny>>,
    pub optimizer: Option<Bound<'py, PyAny>>,
    pub agent_loop: Option<Bound<'py, PyAny>>,
    pub meta_layer: Option<Bound<'py, PyAny>>,
}

fn failed(py: Python<'_>, err: PyErr) -> PyResult<Done> {
    if is_fatal(py, &err) {
        return Err(err);
    }
    Ok(Done::Failed(Failure::from_err(py, err)))
}

/// Runs `f`, turning a non-fatal exception into `Done::Failed`.
fn attempt<'py>(py: Python<'py>, f: impl FnOnce() -> PyResult<Done>) -> PyResult<Done> {
    match f() {
        Ok(d) => Ok(d),
        Err(e) => failed(py, e),
    }
}

/// The reference's own method for the route, if the object has it.
pub fn reference_call<'py>(
    py: Python<'py>,
    route: Route,
    object: &Bound<'py, PyAny>,
    params: &Bound<'py, PyDict>,
) -> PyResult<Option<Done>> {
    let Some((name, param)) = actions::reference_method(route) else {
        return Ok(None);
    };
    let Some(m) = method(object, name).ok().flatten() else {
        return Ok(None);
    };
    let done = attempt(py, || {
        let result = match param {
            Some("rate") => m.call1((params
                .get_item("rate")?
                .unwrap_or_else(|| 0.5f64.into_pyobject(py).unwrap().into_any()),)),
            Some(key) => m.call1((params
                .get_item(key)?
                .unwrap_or_else(|| py.None().into_bound(py)),)),
            None => m.call0(),
        };
        result.map(|_| Done::Ran)
    })?;
    Ok(Some(done))
}

/// Runs a route on the real API.
pub fn run_route<'py>(
    py: Python<'py>,
    route: Route,
    t: &Targets<'py>,
    params: &Bound<'py, PyDict>,
    values: &Metrics,
    action_timeout: f64,
) -> PyResult<Done> {
    match route {
        Route::Throttle => match &t.orchestrator {
            Some(o) => throttle(py, o, values),
            None => Ok(Done::NotRun),
        },
        Route::Resubmit => match &t.orchestrator {
            Some(o) => resubmit(py, o, params, values),
            None => Ok(Done::NotRun),
        },
        Route::CancelTask => match &t.orchestrator {
            Some(o) => {
                let id = task_arg(params, values, "cancel_task")?;
                let Some(cancel) = method(o, "cancel_task").ok().flatten() else {
                    return Ok(Done::NotRun);
                };
                attempt(py, || {
                    Ok(if cancel.call1((id,))?.is_truthy()? {
                        Done::Ran
                    } else {
                        Done::NotRun
                    })
                })
            }
            None => Ok(Done::NotRun),
        },
        Route::BreakCycle => match &t.task_graph {
            Some(g) => break_cycle(py, g, values),
            None => Ok(Done::NotRun),
        },
        Route::Optimize => optimize(py, t),
        Route::RestartAgent | Route::IsolateAgent => {
            let name = actions::agent_param(values).ok_or_else(|| {
                PyValueError::new_err(
                    "this action needs params['agent_id'] (or 'agent_name') naming the agent",
                )
            })?;
            match &t.agent_loop {
                Some(l) => agent_action(py, route, l, &name, action_timeout, &Caller::Inline),
                None => Ok(Done::NotRun),
            }
        }
        Route::ResetMetaState => match &t.meta_layer {
            Some(m) => reset_meta(py, m),
            None => Ok(Done::NotRun),
        },
        Route::ResetScheduler => {
            let Some(l) = &t.agent_loop else {
                return Ok(Done::NotRun);
            };
            let Some(s) = attr(l, "scheduler").ok().flatten() else {
                return Ok(Done::NotRun);
            };
            let Some(reset) = method(&s, "reset").ok().flatten() else {
                return Ok(Done::NotRun);
            };
            attempt(py, || reset.call0().map(|_| Done::Ran))
        }
    }
}

fn task_arg<'py>(
    params: &Bound<'py, PyDict>,
    values: &Metrics,
    what: &str,
) -> PyResult<Bound<'py, PyAny>> {
    if actions::task_param(values).is_none() {
        return Err(PyValueError::new_err(format!(
            "{what} needs params['task_id'] naming the task"
        )));
    }
    Ok(params.get_item("task_id")?.expect("checked above"))
}

fn throttle<'py>(py: Python<'py>, o: &Bound<'py, PyAny>, values: &Metrics) -> PyResult<Done> {
    let Some(cancel) = method(o, "cancel_task").ok().flatten() else {
        return Ok(Done::NotRun);
    };
    let Some(tasks) = data_attr(o, "tasks").ok().flatten() else {
        return Ok(Done::NotRun);
    };
    let Ok(tasks) = tasks.cast::<PyDict>() else {
        return Ok(Done::NotRun);
    };
    let mut queued = Vec::new();
    let mut ids = Vec::new();
    for (id, task) in tasks.iter().take(MAX_TASK_SCAN) {
        let status = field(&task, "status")?
            .and_then(|s| label(&s))
            .map(|s| s.to_lowercase());
        if status.as_deref() != Some("queued") {
            continue;
        }
        let priority = field(&task, "priority")?
            .and_then(|p| p.extract::<f64>().ok())
            .unwrap_or(5.0);
        queued.push(QueuedTask {
            id: key_text(&id)?,
            priority,
        });
        ids.push(id);
    }
    let n = actions::shed_count(values, queued.len()).py_err()?;
    let mut cancelled = 0;
    for i in actions::shed_order(&queued, n) {
        match cancel.call1((&ids[i],)) {
            Ok(r) if r.is_truthy()? => cancelled += 1,
            Ok(_) => {}
            Err(e) => return failed(py, e),
        }
    }
    Ok(if cancelled > 0 {
        Done::Ran
    } else {
        Done::NotRun
    })
}

fn resubmit<'py>(
    py: Python<'py>,
    o: &Bound<'py, PyAny>,
    params: &Bound<'py, PyDict>,
    values: &Metrics,
) -> PyResult<Done> {
    let id = task_arg(params, values, "reschedule")?;
    let Some(submit) = method(o, "submit_task").ok().flatten() else {
        return Ok(Done::NotRun);
    };
    let Some(tasks) = data_attr(o, "tasks").ok().flatten() else {
        return Ok(Done::NotRun);
    };
    attempt(py, || {
        let task = match tasks.get_item(&id) {
            Ok(t) => t,
            Err(e) if e.is_instance_of::<pyo3::exceptions::PyKeyError>(py) => {
                return Ok(Done::NotRun)
            }
            Err(e) => return Err(e),
        };
        let kwargs = PyDict::new(py);
        for name in ["name", "executor", "priority", "task_type", "context"] {
            let Some(v) = field(&task, name)? else {
                if name == "name" || name == "executor" {
                    return Ok(Done::NotRun);
                }
                continue;
            };
            // The new task gets its own copy of the context.
            let v = match v.cast::<PyDict>() {
                Ok(d) if name == "context" => d.copy()?.into_any(),
                _ => v,
            };
            kwargs.set_item(name, v)?;
        }
        submit.call((), Some(&kwargs))?;
        Ok(Done::Ran)
    })
}

fn break_cycle<'py>(py: Python<'py>, g: &Bound<'py, PyAny>, values: &Metrics) -> PyResult<Done> {
    let Some(remove) = method(g, "remove_edge").ok().flatten() else {
        return Ok(Done::NotRun);
    };
    attempt(py, || {
        let Some((_, edges)) = graph_edges(g)? else {
            return Ok(Done::NotRun);
        };
        let mut originals: HashMap<String, Bound<'py, PyAny>> = HashMap::new();
        let mut read = Vec::with_capacity(edges.len());
        for e in &edges {
            let (Some(src), Some(dst)) = edge_ends(e)? else {
                continue;
            };
            let weight = edge_end(e, &["weight"], 2)?
                .and_then(|w| w.extract::<f64>().ok())
                .filter(|w| w.is_finite());
            let weak = field(e, "edge_type")?
                .and_then(|t| label(&t))
                .is_some_and(|t| t.eq_ignore_ascii_case("weak"));
            let (s, d) = (key_text(&src)?, key_text(&dst)?);
            originals.entry(s.clone()).or_insert(src);
            originals.entry(d.clone()).or_insert(dst);
            read.push(Edge {
                src: s,
                dst: d,
                weight,
                weak,
            });
        }
        let view = GraphView::from_edges(read);
        let Some((src, dst)) = actions::cycle_cut(&view, values) else {
            return Ok(Done::NotRun);
        };
        let arg = |name: &String| -> Bound<'py, PyAny> {
            originals
                .get(name)
                .cloned()
                .unwrap_or_else(|| pyo3::types::PyString::new(py, name).into_any())
        };
        remove.call1((arg(&src), arg(&dst)))?;
        Ok(Done::Ran)
    })
}

fn optimize<'py>(py: Python<'py>, t: &Targets<'py>) -> PyResult<Done> {
    let Some(opt) = &t.optimizer else {
        return Ok(Done::NotRun);
    };
    let Some(run) = method(opt, "optimize").ok().flatten() else {
        return Ok(Done::NotRun);
    };
    attempt(py, || {
        // The reference called optimize(); the FAZA 27.5 manager needs the graph.
        let inspect = py.import("inspect")?;
        let takes_none = match inspect.call_method1("signature", (&run,)) {
            Ok(sig) => sig.call_method1("bind", PyTuple::empty(py)).is_ok(),
            Err(_) => true,
        };
        if takes_none {
            run.call0()?;
        } else if let Some(g) = &t.task_graph {
            run.call1((g,))?;
        } else {
            return Ok(Done::NotRun);
        }
        Ok(Done::Ran)
    })
}

/// Restart (on_shutdown then on_start, coroutines awaited) or isolation (enabled = False).
pub fn agent_action<'py>(
    py: Python<'py>,
    route: Route,
    l: &Bound<'py, PyAny>,
    name: &str,
    timeout: f64,
    caller: &Caller,
) -> PyResult<Done> {
    let manager = match agent_manager(l) {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(Done::NotRun),
        Err(e) => return failed(py, e),
    };
    let Some(get) = method(&manager, "get_agent").ok().flatten() else {
        return Ok(Done::NotRun);
    };
    let agent = match get.call1((name,)) {
        Ok(a) if a.is_none() => return Ok(Done::NotRun),
        Ok(a) => a,
        Err(e) => return failed(py, e),
    };
    if route == Route::IsolateAgent {
        return attempt(py, || agent.setattr("enabled", false).map(|_| Done::Ran));
    }
    let context = attr(l, "state_context")
        .ok()
        .flatten()
        .unwrap_or_else(|| py.None().into_bound(py));
    let mut ran = false;
    for hook in ["on_shutdown", "on_start"] {
        let Some(h) = method(&agent, hook).ok().flatten() else {
            continue;
        };
        let args = PyTuple::new(py, [&context])?.unbind();
        match blocking_call(py, caller, &Arc::new(h.unbind()), args, None, timeout)? {
            Ok(_) => ran = true,
            Err(f) => return Ok(Done::Failed(f.context(hook))),
        }
    }
    Ok(if ran { Done::Ran } else { Done::NotRun })
}

fn reset_meta<'py>(py: Python<'py>, meta: &Bound<'py, PyAny>) -> PyResult<Done> {
    let mut ran = false;
    for (part, call) in [
        ("anomaly_detector", "clear_history"),
        ("stability_engine", "clear_history"),
        ("strategy_adapter", "reset"),
    ] {
        let Some(p) = attr(meta, part).ok().flatten() else {
            continue;
        };
        let Some(m) = method(&p, call).ok().flatten() else {
            continue;
        };
        if let Err(e) = m.call0() {
            return failed(py, e);
        }
        ran = true;
    }
    Ok(if ran { Done::Ran } else { Done::NotRun })
}
