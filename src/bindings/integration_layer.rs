//! `senti_os.core.faza30.integration_layer`: IntegrationLayer, create_integration_layer.
//!
//! The binding reads the layer objects (`read.rs`), runs registered callables through the
//! runtime's `Caller` (`calls.rs`) and the trigger routes (`act.rs`); the engine
//! (`engine::integration_layer`) turns what was read into canonical metrics, keeps the counter
//! baselines, the registry and the record of integration faults. No engine lock is held while
//! Python runs: handles are copied out under the lock, the lock is released, then they are
//! called.
//!
//! # For the controller and the auto-repair loop (Rust)
//! ```ignore
//! let shared = layer.borrow().shared();              // Arc<Shared>, Send + Sync
//! let metrics = shared.collect_all(&caller).await?;  // Collected, engine maps per layer
//! let ctx = shared.repair_context(py, &caller)?;     // dict for RepairStrategy.repair()
//! let states = shared.state_providers(py, &caller)?; // (name, capture, restore) for snapshots
//! ```
//! With `Caller::Host`, layer reads and providers run on the host loop (each bounded by its
//! timeout); the callables in the repair context and the state providers then wait for the
//! host loop with the GIL released when called from another thread.

mod act;
mod calls;
pub(crate) mod memo;
mod pyutil;
pub use self::pyutil::is_coroutine_function;
pub(crate) mod read;

use self::act::{Done, Targets};
use self::calls::{blocking_call, call_with, drive_ready, inline_call, wait_on_runtime, Failure};
use self::pyutil::{callable_name, field, label, Handle};
use super::convert::{datetime_to_py, from_map, to_map, type_name};
use super::errors::IntoPyResult;
use super::runtime::{self, Caller, HostLoop};
use crate::engine::clock::now;
use crate::engine::detection_engine::Layer;
use crate::engine::enums::ValueEnum;
use crate::engine::integration_layer::actions::{self, Route};
use crate::engine::integration_layer::adapters::CANONICAL;
use crate::engine::integration_layer::reads::LayerRead;
use crate::engine::integration_layer::registry::CallStats;
use crate::engine::integration_layer::{
    layer_of_source, FaultKind, IntegrationCore, Options, RepairType, DEFAULT_ACTION_TIMEOUT,
    DEFAULT_CALL_TIMEOUT, DEFAULT_STUCK_TASK_SECONDS,
};
use crate::engine::value::Metrics;
use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyCFunction, PyDict, PyList, PyString, PyTuple};
use std::sync::{Arc, Weak};
use std::time::Duration;

// The signatures spell the engine defaults as literals so Python shows them.
const _: () = assert!(DEFAULT_CALL_TIMEOUT == 5.0 && DEFAULT_ACTION_TIMEOUT == 30.0);
const _: () = assert!(DEFAULT_STUCK_TASK_SECONDS == 300.0);

/// The seven constructor arguments, in order; also the attribute names.
const SLOT_NAMES: [&str; 7] = [
    "faza25_orchestrator",
    "faza27_task_graph",
    "faza27_5_optimizer",
    "faza28_agent_loop",
    "faza28_5_meta_layer",
    "faza29_governance",
    "event_bus",
];
const ORCHESTRATOR: usize = 0;
const TASK_GRAPH: usize = 1;
const OPTIMIZER: usize = 2;
const AGENT_LOOP: usize = 3;
const META_LAYER: usize = 4;
const GOVERNANCE: usize = 5;
const EVENT_BUS: usize = 6;

type Slots = [Option<Handle>; 7];

/// A state provider's name and its bound capture and restore callables.
pub type StateCallables = (String, Py<PyAny>, Py<PyAny>);

/// The metrics of one collection: the five FAZA layers in order, then custom layers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    pub layers: Vec<(String, Metrics)>,
}

impl Collected {
    pub fn get(&self, layer: &str) -> Option<&Metrics> {
        self.layers.iter().find(|(n, _)| n == layer).map(|(_, m)| m)
    }

    pub fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (name, metrics) in &self.layers {
            out.set_item(name, from_map(py, metrics)?)?;
        }
        Ok(out)
    }
}

/// One layer of a host-side collection: its mapped read and its providers' answers (None
/// while an awaitable answer is outstanding).
struct HostLayer {
    layer: Option<Layer>,
    name: String,
    metrics: Metrics,
    present: bool,
    answers: Vec<(u64, Option<ProviderAnswer>)>,
}

/// A provider's metrics, or the kind and text of its failure.
type ProviderAnswer = Result<Metrics, (FaultKind, String)>;

struct HostBatch {
    layers: Vec<HostLayer>,
}

/// What a provider's return value means: its metrics, or why it is refused.
fn provider_answer(py: Python<'_>, v: &Bound<'_, PyAny>) -> ProviderAnswer {
    if v.cast::<PyDict>().is_err() {
        return Err((
            FaultKind::Invalid,
            format!("returned {}, expected a dict of metrics", type_name(v)),
        ));
    }
    to_map(Some(v), "the provider's metrics")
        .map_err(|e| (FaultKind::Invalid, pyutil::error_text(py, &e)))
}

/// The integration layer's state, shared with running collections and bound callables.
pub struct Shared {
    core: Mutex<IntegrationCore<Handle>>,
    slots: Mutex<Slots>,
    /// The task graph read kept while a healing cycle runs (`memo.rs`).
    graph_memo: Arc<memo::MemoSlot>,
}

impl Shared {
    /// The graph memo: the controller opens it for the length of a healing cycle.
    pub fn graph_memo(&self) -> Arc<memo::MemoSlot> {
        self.graph_memo.clone()
    }

    fn slots(&self) -> Slots {
        self.slots.lock().clone()
    }

    fn read_objects(&self, layer: Layer) -> (read::Objects, bool) {
        let s = self.slots();
        let (main, extra) = match layer {
            Layer::Faza25 => (s[ORCHESTRATOR].clone(), None),
            Layer::Faza27 => (s[TASK_GRAPH].clone(), s[OPTIMIZER].clone()),
            Layer::Faza28 => (s[AGENT_LOOP].clone(), None),
            Layer::Faza28_5 => (s[META_LAYER].clone(), s[GOVERNANCE].clone()),
            Layer::Faza29 => (s[GOVERNANCE].clone(), None),
        };
        let present = main.is_some();
        // The meta layer's entry reads the governance feedback loop only alongside the meta layer.
        let extra = if layer == Layer::Faza28_5 && main.is_none() {
            None
        } else {
            extra
        };
        let memo = (layer == Layer::Faza27).then(|| self.graph_memo.clone());
        (read::Objects { main, extra, memo }, present)
    }

    fn record(&self, source: &str, layer: Option<&str>, failure: &Failure) {
        self.core
            .lock()
            .record_fault(source, layer, failure.kind, &failure.message, now());
    }

    /// Reads a layer through the caller: in this thread, or as one call on the host loop.
    async fn read(
        &self,
        layer: Layer,
        objs: read::Objects,
        caller: &Caller,
    ) -> PyResult<LayerRead> {
        let host = match caller {
            Caller::Host { host, timeout }
                if !Python::attach(|py| calls::on_host_thread(py, host)) =>
            {
                Some((host.clone(), *timeout))
            }
            _ => None,
        };
        let Some((host, timeout)) = host else {
            return Python::attach(|py| read::read_layer(py, layer, &objs));
        };
        let slot: Arc<Mutex<Option<LayerRead>>> = Arc::new(Mutex::new(None));
        let (f, args) = Python::attach(|py| -> PyResult<_> {
            let out = slot.clone();
            let reader =
                PyCFunction::new_closure(py, None, None, move |args, _kwargs| -> PyResult<()> {
                    let read = read::read_layer(args.py(), layer, &objs)?;
                    *out.lock() = Some(read);
                    Ok(())
                })?;
            Ok((reader.into_any().unbind(), PyTuple::empty(py).unbind()))
        })?;
        let bounded = Caller::Host { host, timeout };
        match bounded.call(f, args, None).await {
            Ok(_) => Ok(slot.lock().take().unwrap_or_default()),
            Err(e) => {
                let failure = match e {
                    runtime::CallError::TimedOut(d) => Failure::new(
                        FaultKind::TimedOut,
                        format!("reading the layer timed out after {:.3}s", d.as_secs_f64()),
                    ),
                    runtime::CallError::Lost => {
                        Failure::new(FaultKind::Lost, "the event loop dropped the read".into())
                    }
                    e => Python::attach(|py| Failure::raised(e.describe(py))),
                };
                self.record(layer.name(), Some(layer.name()), &failure);
                Ok(LayerRead::new())
            }
        }
    }

    /// Runs the providers registered for `layer_name`, merging their dicts into `into`.
    async fn run_providers(
        &self,
        layer_name: &str,
        caller: &Caller,
        into: &mut Metrics,
    ) -> PyResult<bool> {
        let providers = self.core.lock().registry().providers_for(layer_name);
        for (id, handle, timeout) in &providers {
            let args = Python::attach(|py| PyTuple::empty(py).unbind());
            let started = std::time::Instant::now();
            let called = call_with(caller, handle, args, None, *timeout).await?;
            let took = started.elapsed().as_secs_f64();
            let answer = match called {
                Ok(_) if took > *timeout => Err(late_answer(took, *timeout)),
                Ok(v) => Python::attach(|py| {
                    let v = v.bind(py);
                    if v.cast::<PyDict>().is_err() {
                        return Err((
                            FaultKind::Invalid,
                            format!("returned {}, expected a dict of metrics", type_name(v)),
                        ));
                    }
                    to_map(Some(v), "the provider's metrics")
                        .map_err(|e| (FaultKind::Invalid, pyutil::error_text(py, &e)))
                }),
                Err(f) => Err((f.kind, f.message)),
            };
            self.core
                .lock()
                .merge_provider(layer_name, *id, answer, into, now());
        }
        Ok(!providers.is_empty())
    }

    /// Collects one FAZA layer: its object (if any), then its providers.
    pub async fn collect_layer(&self, layer: Layer, caller: &Caller) -> PyResult<Metrics> {
        self.collect_layer_as(layer, caller, true).await
    }

    /// `collect_layer`; `advance` false leaves the rate baselines where they are.
    pub async fn collect_layer_as(
        &self,
        layer: Layer,
        caller: &Caller,
        advance: bool,
    ) -> PyResult<Metrics> {
        let (objs, present) = self.read_objects(layer);
        let mut metrics = if objs.is_empty() {
            Metrics::new()
        } else {
            let read = self.read(layer, objs, caller).await?;
            self.core.lock().map_layer_as(layer, &read, now(), advance)
        };
        let provided = self
            .run_providers(layer.name(), caller, &mut metrics)
            .await?;
        self.core
            .lock()
            .finish_layer(Some(layer), present || provided, &metrics);
        Ok(metrics)
    }

    /// Collects a custom layer (providers only).
    pub async fn collect_custom(&self, name: &str, caller: &Caller) -> PyResult<Metrics> {
        let mut metrics = Metrics::new();
        self.run_providers(name, caller, &mut metrics).await?;
        self.core.lock().finish_layer(None, true, &metrics);
        Ok(metrics)
    }

    /// Collects every layer: faza25, faza27, faza28, faza28_5, faza29, then custom layers.
    pub async fn collect_all(&self, caller: &Caller) -> PyResult<Collected> {
        self.collect_all_as(caller, true).await
    }

    /// `collect_all`; `advance` false leaves the rate baselines where they are.
    pub async fn collect_all_as(&self, caller: &Caller, advance: bool) -> PyResult<Collected> {
        let mut out = Collected::default();
        for layer in Layer::ALL {
            let m = self.collect_layer_as(layer, caller, advance).await?;
            out.layers.push((layer.name().to_owned(), m));
        }
        let custom = self.core.lock().registry().custom_layers();
        for name in custom {
            let m = self.collect_custom(&name, caller).await?;
            out.layers.push((name, m));
        }
        Ok(out)
    }

    /// Collects every layer on the host loop's own thread in one step, for the auto-repair
    /// loop: one host callback instead of one per layer and provider. Layer reads and
    /// synchronous providers run here; providers that return an awaitable are awaited together
    /// on this loop afterwards (each bounded by its timeout), so a coroutine provider may
    /// really suspend. Returns the `get_all_metrics()` dict, or an awaitable giving it.
    pub fn collect_on_host<'py>(
        self: &Arc<Self>,
        py: Python<'py>,
        advance: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut batch = HostBatch { layers: Vec::new() };
        let mut pending: Vec<(usize, usize, Bound<'py, PyAny>, f64)> = Vec::new();
        let custom = self.core.lock().registry().custom_layers();
        let names: Vec<(Option<Layer>, String)> = Layer::ALL
            .iter()
            .map(|l| (Some(*l), l.name().to_owned()))
            .chain(custom.into_iter().map(|n| (None, n)))
            .collect();
        for (li, (layer, name)) in names.into_iter().enumerate() {
            let (metrics, present) = match layer {
                Some(l) => {
                    let (objs, present) = self.read_objects(l);
                    let metrics = if objs.is_empty() {
                        Metrics::new()
                    } else {
                        let read = read::read_layer(py, l, &objs)?;
                        self.core.lock().map_layer_as(l, &read, now(), advance)
                    };
                    (metrics, present)
                }
                None => (Metrics::new(), true),
            };
            let providers = self.core.lock().registry().providers_for(&name);
            let mut answers = Vec::with_capacity(providers.len());
            for (pi, (id, handle, timeout)) in providers.iter().enumerate() {
                let started = std::time::Instant::now();
                let called = handle.bind(py).call0();
                let took = started.elapsed().as_secs_f64();
                let answer = match called {
                    Err(e) if pyutil::is_fatal(py, &e) => return Err(e),
                    Err(e) => Some(Err((FaultKind::Raised, pyutil::error_text(py, &e)))),
                    Ok(v) if pyutil::is_awaitable(&v) => {
                        pending.push((li, pi, v, *timeout));
                        None
                    }
                    Ok(_) if took > *timeout => Some(Err(late_answer(took, *timeout))),
                    Ok(v) => Some(provider_answer(py, &v)),
                };
                answers.push((*id, answer));
            }
            batch.layers.push(HostLayer {
                layer,
                name,
                metrics,
                present,
                answers,
            });
        }
        if pending.is_empty() {
            return Ok(self.finish_batch(py, batch)?.into_any());
        }
        // The awaitables are awaited on this loop; the batch completes when they have.
        let slots: Vec<(usize, usize, f64)> =
            pending.iter().map(|(l, p, _, t)| (*l, *p, *t)).collect();
        let items = PyList::empty(py);
        for (_, _, aw, timeout) in &pending {
            items.append((aw, *timeout))?;
        }
        let shared = self.clone();
        let batch = Mutex::new(Some(batch));
        let then = PyCFunction::new_closure(
            py,
            None,
            None,
            move |args, _kwargs| -> PyResult<Py<PyAny>> {
                let py = args.py();
                let mut batch = batch
                    .lock()
                    .take()
                    .ok_or_else(|| PyRuntimeError::new_err("collection already completed"))?;
                let results = args.get_item(0)?;
                for (i, (l, p, timeout)) in slots.iter().enumerate() {
                    let r = results.get_item(i)?;
                    let answer = if r.is_instance_of::<pyo3::exceptions::PyBaseException>() {
                        let err = PyErr::from_value(r);
                        if calls::is_timeout(py, &err) {
                            Err((
                                FaultKind::TimedOut,
                                format!("timed out after {timeout:.3}s"),
                            ))
                        } else if pyutil::is_fatal(py, &err) {
                            return Err(err);
                        } else {
                            Err((FaultKind::Raised, pyutil::error_text(py, &err)))
                        }
                    } else {
                        provider_answer(py, &r)
                    };
                    batch.layers[*l].answers[*p].1 = Some(answer);
                }
                Ok(shared.finish_batch(py, batch)?.into_any().unbind())
            },
        )?;
        runtime::gather_bounded(py, items, then.into_any())
    }

    /// Merges the providers' answers into each layer's metrics, in registration order.
    fn finish_batch<'py>(&self, py: Python<'py>, batch: HostBatch) -> PyResult<Bound<'py, PyDict>> {
        let mut out = Collected::default();
        for mut layer in batch.layers {
            let provided = !layer.answers.is_empty();
            {
                let mut core = self.core.lock();
                for (id, answer) in layer.answers {
                    let answer = answer.unwrap_or_else(|| {
                        Err((FaultKind::Lost, "the provider gave no answer".into()))
                    });
                    core.merge_provider(&layer.name, id, answer, &mut layer.metrics, now());
                }
                core.finish_layer(layer.layer, layer.present || provided, &layer.metrics);
            }
            // A custom layer appears only when it has providers (as in collect_all).
            out.layers.push((layer.name, layer.metrics));
        }
        out.to_py(py)
    }

    /// Re-collects what a fault's layer reports now (all FAZA layers merged when the fault's
    /// source names none), from synchronous code.
    fn verify_metrics(
        self: &Arc<Self>,
        py: Python<'_>,
        caller: &Caller,
        fault: &Bound<'_, PyAny>,
    ) -> PyResult<Metrics> {
        let source = field(fault, "source")?.and_then(|s| label(&s));
        let layer = source.as_deref().and_then(layer_of_source);
        let wait_for_host =
            matches!(caller, Caller::Host { host, .. } if !calls::on_host_thread(py, host));
        let (shared, caller) = (self.clone(), caller.clone());
        let work = async move {
            match layer {
                Some(l) => shared.collect_layer(l, &caller).await,
                None => {
                    let mut merged = Metrics::new();
                    for l in Layer::ALL {
                        merged.extend(shared.collect_layer(l, &caller).await?);
                    }
                    Ok(merged)
                }
            }
        };
        if wait_for_host {
            wait_on_runtime(py, work)
        } else {
            drive_ready(work)
        }
    }

    /// The context a repair engine needs: the layer objects by the names it reads, the
    /// registered actions (`actions`) and a `verify(fault)` that measures again.
    pub fn repair_context<'py>(
        self: &Arc<Self>,
        py: Python<'py>,
        caller: &Caller,
    ) -> PyResult<Bound<'py, PyDict>> {
        let s = self.slots();
        let ctx = PyDict::new(py);
        let obj = |i: usize| s[i].as_ref().map(|h| h.bind(py).clone());
        if let Some(g) = obj(TASK_GRAPH) {
            ctx.set_item("task_graph", g)?;
        }
        if let Some(o) = obj(ORCHESTRATOR) {
            ctx.set_item("orchestrator", o)?;
        }
        if let Some(opt) = obj(OPTIMIZER) {
            ctx.set_item("optimizer", opt)?;
        }
        if let Some(l) = obj(AGENT_LOOP) {
            ctx.set_item("agent_executor", &l)?;
            if let Ok(Some(m)) = read::agent_manager(&l) {
                ctx.set_item("agent_manager", m)?;
            }
            for part in ["scheduler", "state_context"] {
                if let Ok(Some(p)) = pyutil::attr(&l, part) {
                    ctx.set_item(part, p)?;
                }
            }
        }
        if let Some(m) = obj(META_LAYER) {
            ctx.set_item("meta_layer", m)?;
        }
        if let Some(g) = obj(GOVERNANCE) {
            ctx.set_item("governance_controller", g)?;
        }
        if let Some(b) = obj(EVENT_BUS) {
            ctx.set_item("event_bus", b)?;
        }
        let bound = |target: CallTarget| BoundCall {
            shared: Arc::downgrade(self),
            target,
            caller: caller.clone(),
        };
        let actions = PyDict::new(py);
        // Restarting a FAZA 28 agent awaits its async hooks, which the repair engine cannot.
        if s[AGENT_LOOP].is_some() {
            actions.set_item(
                "restart_agent",
                Py::new(py, bound(CallTarget::RestartAgent))?,
            )?;
        }
        let verbs: Vec<String> = self
            .core
            .lock()
            .registry()
            .actions()
            .iter()
            .map(|a| a.verb.clone())
            .collect();
        for verb in verbs {
            actions.set_item(&verb, Py::new(py, bound(CallTarget::Action(verb.clone())))?)?;
        }
        ctx.set_item("actions", actions)?;
        ctx.set_item("verify", Py::new(py, bound(CallTarget::Verify))?)?;
        Ok(ctx)
    }

    /// The registered state providers as (name, capture, restore) callables bound to `caller`
    /// and their timeouts, for `SnapshotManager.register_state_provider`.
    pub fn state_providers(
        self: &Arc<Self>,
        py: Python<'_>,
        caller: &Caller,
    ) -> PyResult<Vec<StateCallables>> {
        let names: Vec<String> = self
            .core
            .lock()
            .registry()
            .states()
            .iter()
            .map(|s| s.name.clone())
            .collect();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let make = |target: CallTarget| -> PyResult<Py<PyAny>> {
                Ok(Py::new(
                    py,
                    BoundCall {
                        shared: Arc::downgrade(self),
                        target,
                        caller: caller.clone(),
                    },
                )?
                .into_any())
            };
            out.push((
                name.clone(),
                make(CallTarget::Capture(name.clone()))?,
                make(CallTarget::Restore(name))?,
            ));
        }
        Ok(out)
    }
}

// ------------------------------------------------------------------------------------------
// Callables handed to the repair engines and the snapshot manager

#[derive(Debug, Clone)]
enum CallTarget {
    Action(String),
    Capture(String),
    Restore(String),
    Verify,
    RestartAgent,
}

/// A registered callable (or a built-in one) bound to the integration layer: each call is
/// made through the runtime with the callable's timeout, and counted in the statistics.
/// Failures raise (the original exception, or TimeoutError).
#[pyclass(module = "senti_os.core.faza30.integration_layer", frozen)]
pub struct BoundCall {
    shared: Weak<Shared>,
    target: CallTarget,
    caller: Caller,
}

impl BoundCall {
    /// Whether `obj` is an integration layer's own `verify(fault)` (it re-collects the fault's
    /// layer).
    pub fn is_layer_verify(obj: &Bound<'_, PyAny>) -> bool {
        obj.cast::<BoundCall>()
            .is_ok_and(|b| matches!(b.get().target, CallTarget::Verify))
    }

    /// The graph memo of the integration layer `obj` belongs to, if it is one of its
    /// callables and the layer still exists.
    pub fn layer_memo(obj: &Bound<'_, PyAny>) -> Option<Arc<memo::MemoSlot>> {
        let call = obj.cast::<BoundCall>().ok()?;
        call.get().shared.upgrade().map(|s| s.graph_memo())
    }

    /// The same callable, its calls made through `caller` (the auto-repair loop hands repairs
    /// that run off the host loop a copy bound to `Caller::Host`).
    pub fn rebound(&self, caller: Caller) -> BoundCall {
        BoundCall {
            shared: self.shared.clone(),
            target: self.target.clone(),
            caller,
        }
    }

    /// Whether calling it may await a coroutine: a registered action or state callable that
    /// is a coroutine function (`verify` and the built-in restart are not).
    pub fn is_coroutine_function(&self, py: Python<'_>) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let handle = match &self.target {
            CallTarget::Action(verb) => shared
                .core
                .lock()
                .registry()
                .action(verb)
                .map(|(_, h, _)| h),
            CallTarget::Capture(name) | CallTarget::Restore(name) => {
                let capture = matches!(self.target, CallTarget::Capture(_));
                let core = shared.core.lock();
                let found = core
                    .registry()
                    .states()
                    .iter()
                    .find(|s| &s.name == name)
                    .map(|s| {
                        if capture {
                            s.capture.clone()
                        } else {
                            s.restore.clone()
                        }
                    });
                found
            }
            CallTarget::Verify | CallTarget::RestartAgent => None,
        };
        handle.is_some_and(|h| pyutil::is_coroutine_function(h.bind(py)))
    }

    fn shared(&self) -> PyResult<Arc<Shared>> {
        self.shared.upgrade().ok_or_else(|| {
            PyRuntimeError::new_err("the integration layer this callable belongs to is gone")
        })
    }
}

#[pymethods]
impl BoundCall {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let shared = self.shared()?;
        let (source, handle, timeout, id) = match &self.target {
            CallTarget::Verify => {
                let fault = args
                    .get_item(0)
                    .map_err(|_| PyTypeError::new_err("verify() takes the fault to check"))?;
                let metrics = shared.verify_metrics(py, &self.caller, &fault)?;
                return Ok(from_map(py, &metrics)?.into_any().unbind());
            }
            CallTarget::RestartAgent => {
                let name = kwargs
                    .and_then(|k| k.get_item("name").ok().flatten())
                    .or_else(|| args.get_item(0).ok())
                    .ok_or_else(|| {
                        PyTypeError::new_err("restart_agent() takes the agent's name")
                    })?;
                let name = pyutil::key_text(&name)?;
                let agent_loop = shared.slots()[AGENT_LOOP].clone();
                let Some(l) = agent_loop else {
                    return Ok(PyBool::new(py, false).to_owned().into_any().unbind());
                };
                let done = act::agent_action(
                    py,
                    Route::RestartAgent,
                    l.bind(py),
                    &name,
                    DEFAULT_ACTION_TIMEOUT,
                    &self.caller,
                )?;
                return finish_done(
                    &shared,
                    py,
                    &format!("action restart_agent({name})"),
                    Some("faza28"),
                    done,
                );
            }
            CallTarget::Action(verb) => {
                let found = shared.core.lock().registry().action(verb);
                let (id, h, t) = found.ok_or_else(|| {
                    PyRuntimeError::new_err(format!(
                        "repair action {verb:?} is no longer registered"
                    ))
                })?;
                (format!("action {verb}"), h, t, id)
            }
            CallTarget::Capture(name) | CallTarget::Restore(name) => {
                let capture = matches!(self.target, CallTarget::Capture(_));
                let found = shared
                    .core
                    .lock()
                    .registry()
                    .states()
                    .iter()
                    .find(|s| &s.name == name)
                    .map(|s| {
                        (
                            s.id,
                            if capture {
                                s.capture.clone()
                            } else {
                                s.restore.clone()
                            },
                            s.timeout,
                        )
                    });
                let (id, h, t) = found.ok_or_else(|| {
                    PyRuntimeError::new_err(format!(
                        "state provider {name:?} is no longer registered"
                    ))
                })?;
                (
                    format!(
                        "state {name}.{}",
                        if capture { "capture" } else { "restore" }
                    ),
                    h,
                    t,
                    id,
                )
            }
        };
        let called = blocking_call(
            py,
            &self.caller,
            &handle,
            args.clone().unbind(),
            kwargs.map(|k| k.clone().unbind()),
            timeout,
        )?;
        drop(handle);
        let failure = called.as_ref().err().map(|f| (f.kind, f.message.clone()));
        {
            let mut core = shared.core.lock();
            let f = failure.as_ref().map(|(k, m)| (*k, m.as_str()));
            match &self.target {
                CallTarget::Action(_) => {
                    core.registry_mut().record_action(id, f, now());
                    core.note_action(f.is_none());
                }
                _ => core.registry_mut().record_state(id, f, now()),
            }
            if let Some((kind, message)) = &failure {
                core.record_fault(&source, None, *kind, message, now());
            }
        }
        called.map_err(Failure::into_py_err)
    }

    fn __repr__(&self) -> String {
        match &self.target {
            CallTarget::Action(v) => format!("<repair action {v:?} of an IntegrationLayer>"),
            CallTarget::Capture(n) => format!("<state capture {n:?} of an IntegrationLayer>"),
            CallTarget::Restore(n) => format!("<state restore {n:?} of an IntegrationLayer>"),
            CallTarget::Verify => "<verify(fault) of an IntegrationLayer>".into(),
            CallTarget::RestartAgent => "<restart_agent(name) of an IntegrationLayer>".into(),
        }
    }
}

fn finish_done(
    shared: &Shared,
    py: Python<'_>,
    source: &str,
    layer: Option<&str>,
    done: Done,
) -> PyResult<Py<PyAny>> {
    match done {
        Done::Ran => {
            shared.core.lock().note_action(true);
            Ok(PyBool::new(py, true).to_owned().into_any().unbind())
        }
        Done::NotRun => Ok(PyBool::new(py, false).to_owned().into_any().unbind()),
        Done::Failed(f) => {
            {
                let mut core = shared.core.lock();
                core.note_action(false);
                core.record_fault(source, layer, f.kind, &f.message, now());
            }
            Err(f.into_py_err())
        }
    }
}

// ------------------------------------------------------------------------------------------
// The class

fn opt_obj(obj: Option<Bound<'_, PyAny>>) -> Option<Handle> {
    obj.filter(|o| !o.is_none()).map(|o| Arc::new(o.unbind()))
}

fn text_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    obj.cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a str, got {}", type_name(obj))))?
        .to_cow()
        .map(|c| c.into_owned())
}

fn params_arg<'py>(
    py: Python<'py>,
    params: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    match params {
        None => Ok(PyDict::new(py)),
        Some(p) if p.is_none() => Ok(PyDict::new(py)),
        Some(p) => p.cast::<PyDict>().cloned().map_err(|_| {
            PyTypeError::new_err(format!(
                "params must be a dict or None, got {}",
                type_name(p)
            ))
        }),
    }
}

/// The parameters the trigger routes read, as engine values; other keys (which may hold any
/// object, for a registered action) are left alone.
fn route_values(params: &Bound<'_, PyDict>) -> PyResult<Metrics> {
    let mut out = Metrics::new();
    for key in [
        "task_id",
        "agent_id",
        "agent_name",
        "name",
        "agent",
        "rate",
        "count",
        "cycle",
        "src",
        "dst",
        "source_id",
        "target_id",
    ] {
        if let Some(v) = params.get_item(key)? {
            out.insert(
                key.to_owned(),
                super::convert::to_value(&v, &format!("params['{key}']"))?,
            );
        }
    }
    Ok(out)
}

fn callable_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Handle> {
    if !obj.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be callable, got {}",
            type_name(obj)
        )));
    }
    Ok(Arc::new(obj.clone().unbind()))
}

fn timeout_arg(timeout: f64) -> PyResult<f64> {
    crate::engine::integration_layer::registry::check_timeout(timeout).py_err()
}

fn repair_type_arg(obj: &Bound<'_, PyAny>) -> PyResult<RepairType> {
    let text = text_arg(obj, "repair_type")?;
    RepairType::from_value(&text).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown repair_type {text:?}; expected one of {}",
            RepairType::values_list()
        ))
    })
}

/// Whether two callables are the same: identical, or equal (a bound method fetched again).
fn same_callable(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> bool {
    a.is(b) || a.eq(b).unwrap_or(false)
}

fn stats_dict<'py>(py: Python<'py>, s: &CallStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("calls", s.calls)?;
    d.set_item("errors", s.errors)?;
    d.set_item("timeouts", s.timeouts)?;
    d.set_item("last_error", s.last_error.as_deref())?;
    d.set_item(
        "last_error_at",
        s.last_error_at
            .map(|t| datetime_to_py(py, &t))
            .transpose()?,
    )?;
    Ok(d)
}

/// Connects FAZA 30 to the FAZA layers: canonical metrics from the real layer classes (and
/// from the reference's duck-typed probes), registered metric providers, repair actions and
/// state providers, trigger actions that call the real APIs, and events to the FAZA 28 bus.
/// Whatever fails on the way is recorded (`get_integration_faults()`), never swallowed.
#[pyclass(module = "senti_os.core.faza30.integration_layer", weakref)]
pub struct IntegrationLayer {
    shared: Arc<Shared>,
}

impl IntegrationLayer {
    /// The state a running collection or the controller holds on to.
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    fn slot(&self, py: Python<'_>, i: usize) -> Py<PyAny> {
        self.shared.slots.lock()[i]
            .as_ref()
            .map(|h| h.clone_ref(py))
            .unwrap_or_else(|| py.None())
    }

    fn set_slot(&self, i: usize, value: Option<Bound<'_, PyAny>>) {
        let new = opt_obj(value);
        let old = {
            let mut slots = self.shared.slots.lock();
            std::mem::replace(&mut slots[i], new.clone())
        };
        let same = match (&old, &new) {
            (Some(a), Some(b)) => a.as_ptr() == b.as_ptr(),
            (None, None) => true,
            _ => false,
        };
        if !same {
            let layer = match i {
                ORCHESTRATOR => Some(Layer::Faza25),
                AGENT_LOOP => Some(Layer::Faza28),
                GOVERNANCE => Some(Layer::Faza29),
                _ => None,
            };
            if let Some(l) = layer {
                self.shared.core.lock().reset_layer(l);
            }
        }
        drop(old);
    }

    fn collect_sync(&self, py: Python<'_>, layer: Layer) -> PyResult<Py<PyDict>> {
        let metrics = drive_ready(self.shared.collect_layer(layer, &Caller::Inline))?;
        Ok(from_map(py, &metrics)?.unbind())
    }

    fn trigger(
        &self,
        py: Python<'_>,
        layer: Layer,
        action: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let action = text_arg(action, "action")?;
        let params = params_arg(py, params)?;
        let values = route_values(&params)?;
        let source = format!("trigger {}.{}", layer.name(), action);
        let registered = self.shared.core.lock().registry().action(&action);
        if let Some((id, handle, timeout)) = registered {
            let called = inline_call(
                py,
                handle.bind(py),
                &PyTuple::empty(py),
                Some(&params),
                timeout,
            )?;
            let done = match called {
                Ok(v) if v.bind(py).cast::<PyBool>().is_ok_and(|b| !b.is_true()) => Done::NotRun,
                Ok(_) => Done::Ran,
                Err(f) => Done::Failed(f),
            };
            let failure = match &done {
                Done::Failed(f) => Some((f.kind, f.message.clone())),
                _ => None,
            };
            self.shared.core.lock().registry_mut().record_action(
                id,
                failure.as_ref().map(|(k, m)| (*k, m.as_str())),
                now(),
            );
            return self.finish_trigger(&source, layer, done);
        }
        let Some(route) = actions::route(layer, &action) else {
            return Ok(false);
        };
        let s = self.shared.slots();
        let obj = |i: usize| s[i].as_ref().map(|h| h.bind(py).clone());
        let targets = Targets {
            orchestrator: obj(ORCHESTRATOR),
            task_graph: obj(TASK_GRAPH),
            optimizer: obj(OPTIMIZER),
            agent_loop: obj(AGENT_LOOP),
            meta_layer: obj(META_LAYER),
        };
        let primary = match layer {
            Layer::Faza25 => targets.orchestrator.clone(),
            Layer::Faza27 => targets.task_graph.clone(),
            _ => targets.agent_loop.clone(),
        };
        let reference = match &primary {
            Some(p) => act::reference_call(py, route, p, &params)?,
            None => None,
        };
        let done = match reference {
            Some(d) => d,
            None => act::run_route(
                py,
                route,
                &targets,
                &params,
                &values,
                DEFAULT_ACTION_TIMEOUT,
            )?,
        };
        self.finish_trigger(&source, layer, done)
    }

    fn finish_trigger(&self, source: &str, layer: Layer, done: Done) -> PyResult<bool> {
        // The failure (and the exception it holds) is dropped after the lock is released.
        match &done {
            Done::Ran => self.shared.core.lock().note_action(true),
            Done::NotRun => {}
            Done::Failed(f) => {
                let mut core = self.shared.core.lock();
                core.note_action(false);
                core.record_fault(source, Some(layer.name()), f.kind, &f.message, now());
            }
        }
        Ok(matches!(done, Done::Ran))
    }
}

#[pymethods]
impl IntegrationLayer {
    /// Layer objects are all optional; "present" means not None. `call_timeout` bounds each
    /// layer read and is the default provider timeout when collecting asynchronously;
    /// `stuck_task_seconds` is how long a RUNNING task may run before it counts as stuck.
    #[new]
    #[pyo3(signature = (faza25_orchestrator=None, faza27_task_graph=None, faza27_5_optimizer=None, faza28_agent_loop=None, faza28_5_meta_layer=None, faza29_governance=None, event_bus=None, *, call_timeout=5.0, stuck_task_seconds=300.0))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        faza25_orchestrator: Option<Bound<'_, PyAny>>,
        faza27_task_graph: Option<Bound<'_, PyAny>>,
        faza27_5_optimizer: Option<Bound<'_, PyAny>>,
        faza28_agent_loop: Option<Bound<'_, PyAny>>,
        faza28_5_meta_layer: Option<Bound<'_, PyAny>>,
        faza29_governance: Option<Bound<'_, PyAny>>,
        event_bus: Option<Bound<'_, PyAny>>,
        call_timeout: f64,
        stuck_task_seconds: f64,
    ) -> PyResult<Self> {
        let call_timeout = timeout_arg(call_timeout)?;
        if !stuck_task_seconds.is_finite() || stuck_task_seconds <= 0.0 {
            return Err(PyValueError::new_err(format!(
                "stuck_task_seconds must be a number of seconds above 0, got {stuck_task_seconds}"
            )));
        }
        let slots: Slots = [
            opt_obj(faza25_orchestrator),
            opt_obj(faza27_task_graph),
            opt_obj(faza27_5_optimizer),
            opt_obj(faza28_agent_loop),
            opt_obj(faza28_5_meta_layer),
            opt_obj(faza29_governance),
            opt_obj(event_bus),
        ];
        let core = IntegrationCore::new(Options {
            stuck_task_seconds,
            call_timeout,
        });
        Ok(IntegrationLayer {
            shared: Arc::new(Shared {
                core: Mutex::new(core),
                slots: Mutex::new(slots),
                graph_memo: Arc::default(),
            }),
        })
    }

    #[getter]
    fn faza25_orchestrator(&self, py: Python<'_>) -> Py<PyAny> {
        self.slot(py, ORCHESTRATOR)
    }
    #[setter]
    fn set_faza25_orchestrator(&self, value: Option<Bound<'_, PyAny>>) {
        self.set_slot(ORCHESTRATOR, value)
    }
    #[getter]
    fn faza27_task_graph(&self, py: Python<'_>) -> Py<PyAny> {
        self.slot(py, TASK_GRAPH)
    }
    #[setter]
    fn set_faza27_task_graph(&self, value: Option<Bound<'_, PyAny>>) {
        self.set_slot(TASK_GRAPH, value)
    }
    #[getter]
    fn faza27_5_optimizer(&self, py: Python<'_>) -> Py<PyAny> {
        self.slot(py, OPTIMIZER)
    }
    #[setter]
    fn set_faza27_5_optimizer(&self, value: Option<Bound<'_, PyAny>>) {
        self.set_slot(OPTIMIZER, value)
    }
    #[getter]
    fn faza28_agent_loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.slot(py, AGENT_LOOP)
    }
    #[setter]
    fn set_faza28_agent_loop(&self, value: Option<Bound<'_, PyAny>>) {
        self.set_slot(AGENT_LOOP, value)
    }
    #[getter]
    fn faza28_5_meta_layer(&self, py: Python<'_>) -> Py<PyAny> {
        self.slot(py, META_LAYER)
    }
    #[setter]
    fn set_faza28_5_meta_layer(&self, value: Option<Bound<'_, PyAny>>) {
        self.set_slot(META_LAYER, value)
    }
    #[getter]
    fn faza29_governance(&self, py: Python<'_>) -> Py<PyAny> {
        self.slot(py, GOVERNANCE)
    }
    #[setter]
    fn set_faza29_governance(&self, value: Option<Bound<'_, PyAny>>) {
        self.set_slot(GOVERNANCE, value)
    }
    #[getter]
    fn event_bus(&self, py: Python<'_>) -> Py<PyAny> {
        self.slot(py, EVENT_BUS)
    }
    #[setter]
    fn set_event_bus(&self, value: Option<Bound<'_, PyAny>>) {
        self.set_slot(EVENT_BUS, value)
    }

    /// The registered repair callbacks per type (a copy: register through
    /// `register_repair_callback`).
    #[getter]
    fn _repair_callbacks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let lists: Vec<(RepairType, Vec<Handle>)> = {
            let core = self.shared.core.lock();
            RepairType::ALL
                .iter()
                .map(|t| (*t, core.registry().callbacks(*t)))
                .collect()
        };
        let out = PyDict::new(py);
        for (t, handles) in lists {
            let list = PyList::empty(py);
            for h in handles {
                list.append(h.bind(py))?;
            }
            out.set_item(t.value(), list)?;
        }
        Ok(out)
    }

    /// FAZA 25 metrics (see `canonical_metrics()`); `{}` without an orchestrator or provider.
    fn get_faza25_metrics(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.collect_sync(py, Layer::Faza25)
    }

    /// FAZA 27 metrics from the task graph and the FAZA 27.5 optimizer.
    fn get_faza27_metrics(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.collect_sync(py, Layer::Faza27)
    }

    fn get_faza28_metrics(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.collect_sync(py, Layer::Faza28)
    }

    fn get_faza28_5_metrics(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.collect_sync(py, Layer::Faza28_5)
    }

    fn get_faza29_metrics(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.collect_sync(py, Layer::Faza29)
    }

    /// `{"faza25": ..., "faza27": ..., "faza28": ..., "faza28_5": ..., "faza29": ...}`, then one
    /// entry per custom layer that has providers. Rates are measured since the previous
    /// collection; `advance_baselines=False` measures without moving that point, for callers
    /// that only look (the controller's `get_health`).
    #[pyo3(signature = (*, advance_baselines=true))]
    fn get_all_metrics<'py>(
        &self,
        py: Python<'py>,
        advance_baselines: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        drive_ready(
            self.shared
                .collect_all_as(&Caller::Inline, advance_baselines),
        )?
        .to_py(py)
    }

    /// For the auto-repair loop, called on the host loop's thread: `get_all_metrics()` in one
    /// step, its coroutine providers awaited on that loop. Returns the dict, or an awaitable
    /// that gives it.
    #[pyo3(signature = (*, advance_baselines=true))]
    fn _collect_on_host<'py>(
        &self,
        py: Python<'py>,
        advance_baselines: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.shared.collect_on_host(py, advance_baselines)
    }

    /// `await layer.collect_async()`: `get_all_metrics()` with every layer read and provider
    /// run on this event loop, each bounded by its timeout, and coroutine providers awaited.
    fn collect_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let host = HostLoop::current(py).ok_or_else(|| {
            PyRuntimeError::new_err("collect_async() must be awaited inside a running event loop")
        })?;
        let timeout = self.shared.core.lock().options.call_timeout;
        let host_for_result = host.clone();
        let caller = Caller::Host {
            host,
            timeout: Duration::from_secs_f64(timeout),
        };
        let shared = self.shared.clone();
        runtime::spawn_awaitable(py, &host_for_result, async move {
            let collected = shared.collect_all(&caller).await?;
            runtime::attach(|py| collected.to_py(py).map(|d| d.into_any().unbind()))
                .map_err(|_| PyRuntimeError::new_err("the interpreter is exiting"))?
        })
    }

    /// Runs a FAZA 25 action: `throttle` (cancels the lowest-priority queued tasks, keeping
    /// `params["rate"]` of the queue, default 0.5, or cancelling `params["count"]`),
    /// `reschedule` / `retry_task` (resubmits `params["task_id"]`), `cancel_task`. A repair
    /// action registered under the same name is called instead (with `**params`). True only
    /// when the call happened.
    #[pyo3(signature = (action, params=None))]
    fn trigger_faza25_action(
        &self,
        py: Python<'_>,
        action: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.trigger(py, Layer::Faza25, action, params)
    }

    /// Runs a FAZA 27 action: `break_cycle` (removes the weakest edge of `params["cycle"]`,
    /// or of the first cycle found, or `params["src"]` -> `params["dst"]`) or `optimize`.
    #[pyo3(signature = (action, params=None))]
    fn trigger_faza27_action(
        &self,
        py: Python<'_>,
        action: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.trigger(py, Layer::Faza27, action, params)
    }

    /// Runs a FAZA 28 action: `restart_agent` (`on_shutdown` then `on_start` of
    /// `params["agent_id"]`), `isolate_agent`, `reset_cooperation` (resets the meta layer's
    /// history and strategy), `reset_scheduler`.
    #[pyo3(signature = (action, params=None))]
    fn trigger_faza28_action(
        &self,
        py: Python<'_>,
        action: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.trigger(py, Layer::Faza28, action, params)
    }

    /// Adds a callback for `graph_repair`, `agent_repair`, `scheduler_repair` or
    /// `governance_repair`; any other type is a ValueError.
    fn register_repair_callback(
        &self,
        repair_type: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let t = repair_type_arg(repair_type)?;
        let handle = callable_arg(callback, "callback")?;
        self.shared
            .core
            .lock()
            .registry_mut()
            .add_callback(t, handle)
            .py_err()
    }

    /// Calls each callback of the type with `params`, in order. A callback that raises is
    /// recorded as an integration fault and the others still run. Returns how many succeeded.
    #[pyo3(signature = (repair_type, params=None))]
    fn execute_repair_callbacks(
        &self,
        py: Python<'_>,
        repair_type: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<usize> {
        let t = repair_type_arg(repair_type)?;
        let params = params_arg(py, params)?;
        let callbacks = self.shared.core.lock().registry().callbacks(t);
        let mut ok = 0;
        for cb in callbacks {
            let args = PyTuple::new(py, [params.as_any()])?;
            let called = inline_call(py, cb.bind(py), &args, None, DEFAULT_ACTION_TIMEOUT)?;
            match &called {
                Ok(_) => {
                    ok += 1;
                    self.shared.core.lock().counters_mut().callbacks_executed += 1;
                }
                Err(f) => {
                    let source = format!(
                        "repair_callback {}:{}",
                        t.value(),
                        callable_name(cb.bind(py))
                    );
                    let mut core = self.shared.core.lock();
                    core.counters_mut().callback_errors += 1;
                    core.record_fault(&source, None, f.kind, &f.message, now());
                }
            }
        }
        Ok(ok)
    }

    /// Sends `faza30.<event_type>` to the event bus: `emit(name, "faza30", data=event_data)` on
    /// a FAZA 28 EventBus, `publish(name, event_data)` on a bus that has only that. Without a
    /// bus nothing happens; a bus that fails is recorded, not raised.
    #[pyo3(signature = (event_type, event_data=None))]
    fn publish_event(
        &self,
        py: Python<'_>,
        event_type: &Bound<'_, PyAny>,
        event_data: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let name = match label(event_type) {
            Some(t) => t,
            None => {
                return Err(PyTypeError::new_err(format!(
                    "event_type must be a str, got {}",
                    type_name(event_type)
                )))
            }
        };
        let data = params_arg(py, event_data).map_err(|_| {
            PyTypeError::new_err(format!(
                "event_data must be a dict or None, got {}",
                event_data.map(type_name).unwrap_or_default()
            ))
        })?;
        let Some(bus) = self.shared.slots()[EVENT_BUS].clone() else {
            return Ok(());
        };
        let bus = bus.bind(py);
        let full = format!("faza30.{name}");
        let result = (|| -> PyResult<bool> {
            if let Some(emit) = pyutil::method(bus, "emit")? {
                let kwargs = PyDict::new(py);
                kwargs.set_item("data", &data)?;
                emit.call((&full, "faza30"), Some(&kwargs))?;
                return Ok(true);
            }
            if let Some(publish) = pyutil::method(bus, "publish")? {
                publish.call1((&full, &data))?;
                return Ok(true);
            }
            Ok(false)
        })();
        let (kind, message) = match result {
            Ok(true) => {
                self.shared.core.lock().counters_mut().events_published += 1;
                return Ok(());
            }
            Ok(false) => (
                FaultKind::Invalid,
                format!(
                    "the event bus ({}) has neither emit nor publish",
                    type_name(bus)
                ),
            ),
            Err(e) if pyutil::is_fatal(py, &e) => return Err(e),
            Err(e) => (FaultKind::Raised, pyutil::error_text(py, &e)),
        };
        let mut core = self.shared.core.lock();
        core.counters_mut().event_errors += 1;
        core.record_fault("event_bus", None, kind, &message, now());
        Ok(())
    }

    /// Which objects are set (not None), per layer and for the event bus.
    fn get_integration_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.shared.slots();
        let out = PyDict::new(py);
        for (i, key) in [
            "faza25_integrated",
            "faza27_integrated",
            "faza27_5_integrated",
            "faza28_integrated",
            "faza28_5_integrated",
            "faza29_integrated",
            "event_bus_integrated",
        ]
        .iter()
        .enumerate()
        {
            out.set_item(key, s[i].is_some())?;
        }
        Ok(out)
    }

    /// The reference's counters (`faza25_queries` ... `repair_actions_executed`,
    /// `integrated_layers`, `integration_status`), then this layer's own: failed actions,
    /// callbacks, events, integration faults per source, and each provider's, action's and
    /// state provider's calls and errors.
    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let status = self.get_integration_status(py)?;
        let integrated = status
            .values()
            .iter()
            .filter(|v| v.is_truthy().unwrap_or(false))
            .count();
        // Copy everything out first: building Python objects may run Python code (a collection,
        // a finalizer) that calls back into this layer.
        let (c, sources, providers, actions, states, tracked) = {
            let core = self.shared.core.lock();
            let r = core.registry();
            (
                *core.counters(),
                core.fault_sources().to_vec(),
                r.providers()
                    .iter()
                    .map(|p| (p.layer.clone(), p.label.clone(), p.timeout, p.stats.clone()))
                    .collect::<Vec<_>>(),
                r.actions()
                    .iter()
                    .map(|a| (a.verb.clone(), a.timeout, a.stats.clone()))
                    .collect::<Vec<_>>(),
                r.states()
                    .iter()
                    .map(|s| (s.name.clone(), s.timeout, s.stats.clone()))
                    .collect::<Vec<_>>(),
                core.baselines().tracked_agents(),
            )
        };
        let out = PyDict::new(py);
        for (layer, n) in Layer::ALL.iter().zip(c.queries) {
            out.set_item(format!("{}_queries", layer.name()), n)?;
        }
        out.set_item("total_metrics_collected", c.total_metrics_collected)?;
        out.set_item("repair_actions_executed", c.repair_actions_executed)?;
        out.set_item("integrated_layers", integrated)?;
        out.set_item("integration_status", status)?;
        out.set_item("repair_actions_failed", c.repair_actions_failed)?;
        out.set_item("callbacks_executed", c.callbacks_executed)?;
        out.set_item("callback_errors", c.callback_errors)?;
        out.set_item("events_published", c.events_published)?;
        out.set_item("event_errors", c.event_errors)?;
        out.set_item("integration_faults", c.faults_recorded)?;
        let by_source = PyDict::new(py);
        for s in &sources {
            let d = PyDict::new(py);
            d.set_item("errors", s.errors)?;
            d.set_item("last_error", &s.last_error)?;
            d.set_item("last_error_at", datetime_to_py(py, &s.last_error_at)?)?;
            by_source.set_item(&s.source, d)?;
        }
        out.set_item("faults_by_source", by_source)?;
        let list = PyList::empty(py);
        for (layer, label, timeout, stats) in &providers {
            let d = stats_dict(py, stats)?;
            d.set_item("layer", layer)?;
            d.set_item("name", label)?;
            d.set_item("timeout", timeout)?;
            list.append(d)?;
        }
        out.set_item("providers", list)?;
        for (key, entries) in [("repair_actions", &actions), ("state_providers", &states)] {
            let dict = PyDict::new(py);
            for (name, timeout, stats) in entries {
                let d = stats_dict(py, stats)?;
                d.set_item("timeout", timeout)?;
                dict.set_item(name, d)?;
            }
            out.set_item(key, dict)?;
        }
        out.set_item("tracked_agents", tracked)?;
        Ok(out)
    }

    /// What went wrong while talking to the layers and registered callables, oldest first
    /// (the newest 100): dicts with `source`, `layer`, `kind` (raised, timed_out, invalid,
    /// lost), `message` and `timestamp`.
    fn get_integration_faults<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let faults: Vec<_> = self.shared.core.lock().faults().cloned().collect();
        let out = PyList::empty(py);
        for f in faults {
            let d = PyDict::new(py);
            d.set_item("source", &f.source)?;
            d.set_item("layer", f.layer.as_deref())?;
            d.set_item("kind", f.kind.as_str())?;
            d.set_item("message", &f.message)?;
            d.set_item("timestamp", datetime_to_py(py, &f.timestamp)?)?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Empties the fault list (the counts in `get_statistics()` stay); returns how many.
    fn clear_integration_faults(&self) -> usize {
        self.shared.core.lock().clear_faults()
    }

    /// Registers `provider()` (sync or coroutine function) whose dict is merged into `layer`'s
    /// metrics on every collection (over the layer's own values). `layer` is faza25, faza27,
    /// faza28, faza28_5, faza29 or a custom name (which then appears in `get_all_metrics()`).
    /// Registering the same callable for the layer again updates its timeout and name.
    #[pyo3(signature = (layer, provider, timeout=5.0, name=None))]
    fn register_metric_provider(
        &self,
        layer: &Bound<'_, PyAny>,
        provider: &Bound<'_, PyAny>,
        timeout: f64,
        name: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let layer = text_arg(layer, "layer")?;
        let handle = callable_arg(provider, "provider")?;
        let label = match name {
            Some(n) if !n.is_none() => text_arg(n, "name")?,
            _ => callable_name(provider),
        };
        let existing = self.shared.core.lock().registry().providers_for(&layer);
        let same = existing
            .iter()
            .find(|(_, h, _)| same_callable(h.bind(provider.py()), provider))
            .map(|(id, _, _)| *id);
        let replaced = self
            .shared
            .core
            .lock()
            .registry_mut()
            .add_provider(&layer, &label, handle, timeout, same)
            .py_err()?;
        drop(replaced);
        Ok(())
    }

    /// Removes a provider of `layer`, given as the callable or its name. True if one was removed.
    fn unregister_metric_provider(
        &self,
        layer: &Bound<'_, PyAny>,
        provider: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let layer = text_arg(layer, "layer")?;
        let by_name = provider.cast::<PyString>().ok().map(|s| s.to_string());
        let candidates: Vec<(u64, Handle, String)> = {
            let core = self.shared.core.lock();
            core.registry()
                .providers()
                .iter()
                .filter(|p| p.layer == layer)
                .map(|p| (p.id, p.handle.clone(), p.label.clone()))
                .collect()
        };
        let found = candidates.iter().find(|(_, h, label)| match &by_name {
            Some(n) => label == n,
            None => same_callable(h.bind(provider.py()), provider),
        });
        let Some((id, _, _)) = found else {
            return Ok(false);
        };
        let removed = self.shared.core.lock().registry_mut().remove_provider(*id);
        Ok(removed.is_some())
    }

    /// Registers the callable for repair verb `verb` (sync or coroutine function, called with
    /// keyword parameters). The repair context hands it to the repair engines under
    /// `actions[verb]`, and `trigger_faza*_action(verb, params)` calls it. Replaces an earlier
    /// action for the verb.
    #[pyo3(signature = (verb, action, timeout=30.0))]
    fn register_repair_action(
        &self,
        verb: &Bound<'_, PyAny>,
        action: &Bound<'_, PyAny>,
        timeout: f64,
    ) -> PyResult<()> {
        let verb = text_arg(verb, "verb")?;
        let handle = callable_arg(action, "action")?;
        let old = self
            .shared
            .core
            .lock()
            .registry_mut()
            .set_action(&verb, handle, timeout)
            .py_err()?;
        drop(old);
        Ok(())
    }

    fn unregister_repair_action(&self, verb: &Bound<'_, PyAny>) -> PyResult<bool> {
        let verb = text_arg(verb, "verb")?;
        let old = self.shared.core.lock().registry_mut().remove_action(&verb);
        Ok(old.is_some())
    }

    /// Registers a state provider for snapshots: `capture()` returns a JSON-able section and
    /// `restore(section)` puts it back (each sync or a coroutine function).
    #[pyo3(signature = (name, capture, restore, timeout=30.0))]
    fn register_state_provider(
        &self,
        name: &Bound<'_, PyAny>,
        capture: &Bound<'_, PyAny>,
        restore: &Bound<'_, PyAny>,
        timeout: f64,
    ) -> PyResult<()> {
        let name = text_arg(name, "name")?;
        let c = callable_arg(capture, "capture")?;
        let r = callable_arg(restore, "restore")?;
        let old = self
            .shared
            .core
            .lock()
            .registry_mut()
            .set_state(&name, c, r, timeout)
            .py_err()?;
        drop(old);
        Ok(())
    }

    fn unregister_state_provider(&self, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        let name = text_arg(name, "name")?;
        let old = self.shared.core.lock().registry_mut().remove_state(&name);
        Ok(old.is_some())
    }

    /// The context for `RepairStrategy.repair(fault, context)`: `task_graph`, `orchestrator`,
    /// `agent_manager`, `agent_executor`, `scheduler`, `state_context`, `meta_layer`,
    /// `governance_controller` (those that are set), `actions` (registered repair actions by
    /// verb, plus a `restart_agent` that awaits the agent's async hooks when an agent loop is
    /// set) and `verify(fault)`, which collects the fault's layer again and returns its metrics.
    fn get_repair_context<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.shared.repair_context(py, &Caller::Inline)
    }

    /// The registered state providers: name -> (capture, restore), ready for
    /// `SnapshotManager.register_state_provider(name, capture, restore)`.
    fn get_state_providers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for (name, capture, restore) in self.shared.state_providers(py, &Caller::Inline)? {
            out.set_item(name, PyTuple::new(py, [capture, restore])?)?;
        }
        Ok(out)
    }

    /// The canonical metric keys: dicts with `layer`, `key`, `kind`, `unit` and `source`.
    #[staticmethod]
    fn canonical_metrics(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
        let out = PyList::empty(py);
        for c in CANONICAL {
            let d = PyDict::new(py);
            d.set_item("layer", c.layer.name())?;
            d.set_item("key", c.key)?;
            d.set_item("kind", format!("{:?}", c.kind).to_lowercase())?;
            d.set_item("unit", c.unit)?;
            d.set_item("source", c.source)?;
            out.append(d)?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        let s = self.shared.slots();
        let set: Vec<&str> = SLOT_NAMES
            .iter()
            .zip(s.iter())
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
        format!(
            "<IntegrationLayer: {}>",
            if set.is_empty() {
                "no layers".to_string()
            } else {
                set.join(", ")
            }
        )
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        // The collector runs with the GIL held; state locked by another thread is skipped
        // this round rather than waited for.
        if let Some(slots) = self.shared.slots.try_lock() {
            for h in slots.iter().flatten() {
                visit.call(&**h)?;
            }
        }
        if let Some(core) = self.shared.core.try_lock() {
            for h in core.registry().handles() {
                visit.call(&**h)?;
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        let slots = std::mem::take(&mut *self.shared.slots.lock());
        let registry = std::mem::take(self.shared.core.lock().registry_mut());
        drop(slots);
        drop(registry);
    }
}

/// Same as `IntegrationLayer(...)`.
#[pyfunction]
#[pyo3(signature = (faza25_orchestrator=None, faza27_task_graph=None, faza27_5_optimizer=None, faza28_agent_loop=None, faza28_5_meta_layer=None, faza29_governance=None, event_bus=None, *, call_timeout=5.0, stuck_task_seconds=300.0))]
#[allow(clippy::too_many_arguments)]
pub fn create_integration_layer(
    faza25_orchestrator: Option<Bound<'_, PyAny>>,
    faza27_task_graph: Option<Bound<'_, PyAny>>,
    faza27_5_optimizer: Option<Bound<'_, PyAny>>,
    faza28_agent_loop: Option<Bound<'_, PyAny>>,
    faza28_5_meta_layer: Option<Bound<'_, PyAny>>,
    faza29_governance: Option<Bound<'_, PyAny>>,
    event_bus: Option<Bound<'_, PyAny>>,
    call_timeout: f64,
    stuck_task_seconds: f64,
) -> PyResult<IntegrationLayer> {
    IntegrationLayer::py_new(
        faza25_orchestrator,
        faza27_task_graph,
        faza27_5_optimizer,
        faza28_agent_loop,
        faza28_5_meta_layer,
        faza29_governance,
        event_bus,
        call_timeout,
        stuck_task_seconds,
    )
}

/// A synchronous provider cannot be interrupted: one that answers after its timeout is
/// recorded as timed out and its late answer is not used, as the asynchronous path decides.
fn late_answer(took: f64, timeout: f64) -> (FaultKind, String) {
    (
        FaultKind::TimedOut,
        format!("answered after {took:.3}s, beyond its timeout of {timeout:.3}s; the answer was not used"),
    )
}
