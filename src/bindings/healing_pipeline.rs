//! `senti_os.core.faza30.healing_pipeline`: HealingPipeline, HealingContext, HealingResult,
//! create_healing_pipeline.
//!
//! One `async` function, [`run_cycle`], runs the twelve stages. Every Python callback it
//! makes (duck-typed engines, repair actions through the repair engines, `repair_context` and
//! `metrics_provider` callables, snapshot state providers, event subscribers on the Host path)
//! goes through a [`Caller`]; the GIL is attached only for short engine steps and no Rust lock
//! is held across an `await` or a Python call. The synchronous `execute_healing_cycle` drives
//! it with `Caller::Inline` on the calling thread; `execute_healing_cycle_async` runs it on the
//! shared tokio runtime with `Caller::Host` for the caller's event loop; the auto-repair loop
//! runs it on the event loop's own thread with `Caller::OnHost`.
//!
//! Our own engines are recognised and used directly: `DetectionEngine::detect`, the repair
//! engines' claim rules (`repair_strategies::claims`), `EventHooks::publish`. A repair itself
//! is one call of the engine's `repair(fault, context)` (on the host loop for the Host path,
//! so the actions it runs execute there); the plan/act split of the repair engines is not
//! needed for that.

use super::classification_engine::{ClassificationEngine, ClassificationResult};
use super::convert::{datetime_to_py, from_map, to_map, type_name};
use super::detection_engine::{DetectedFault, DetectionEngine};
use super::enums;
use super::event_hooks::EventHooks;
use super::health_engine::HealthEngine;
use super::host_proxy;
use super::record::{self, Lazy};
use super::repair_strategies::{
    AgentRepairEngine, GovernanceRepairEngine, GraphRepairEngine, RepairDone, RepairResult,
    RepairStrategy, SchedulerRepairEngine,
};
use super::runtime::{self, CallError, Caller, HostLoop};
use super::snapshot_manager::SnapshotManager;
use crate::engine::clock::{now, unique_id};
use crate::engine::detection_engine::FaultSeverity;
use crate::engine::enums::ValueEnum;
use crate::engine::event_hooks::EventType;
use crate::engine::healing_pipeline::{
    condition_present, formula_health, CycleData, CycleHistory, FaultRecord, HealingOutcome,
    HealingStage, HealthSource, LearnedRecord, LearningTable, PipelineStats, RepairRecord,
    SnapshotRecord, DEFAULT_HISTORY_SIZE, HEALTH_CRITICAL_BELOW, MAX_HISTORY_SIZE,
    MAX_STABILIZE_SECONDS, NOT_ADMITTED,
};
use crate::engine::repair_strategies::{
    claims, handler_for, EngineKind, RepairStatus, AWAITING_EVIDENCE,
};
use crate::engine::value::Metrics;
use parking_lot::Mutex;
use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The five layer parameters, in order.
const LAYER_PARAMS: [&str; 5] = [
    "faza25_metrics",
    "faza27_metrics",
    "faza28_metrics",
    "faza28_5_metrics",
    "faza29_metrics",
];
/// The same layers as `IntegrationLayer.get_all_metrics()` names them.
const LAYER_SHORT: [&str; 5] = ["faza25", "faza27", "faza28", "faza28_5", "faza29"];
// The signatures spell the defaults as literals so Python shows them: history_size=1000 (the
// engine's default, checked here) and callback_timeout=30.0 seconds.
const _: () = assert!(DEFAULT_HISTORY_SIZE == 1000);

const MAX_CALLBACK_TIMEOUT: f64 = 86_400.0;
/// Longest error text kept in a result.
const MAX_ERROR_TEXT: usize = 2000;
/// Event publishing errors remembered per cycle.
const MAX_EVENT_ERRORS: usize = 10;

py_record! {
    /// What one healing cycle worked with and produced: faults, classifications, repairs, the
    /// pre-repair snapshot, health before and after (floats, 0-100), and the result of every
    /// stage keyed by HealingStage.
    pub struct HealingContext in "senti_os.core.faza30.healing_pipeline" {
        req cycle_id,
        opt faults = record::new_list,
        opt classifications = record::new_list,
        opt repairs = record::new_list,
        opt snapshot_id = record::none,
        opt health_before = record::zero_float,
        opt health_after = record::zero_float,
        opt stage_results = record::new_dict,
        opt metadata = record::new_dict,
        opt timestamp = record::now,
    }
}

py_record! {
    /// The outcome of one healing cycle.
    pub struct HealingResult in "senti_os.core.faza30.healing_pipeline" {
        req cycle_id,
        req outcome,
        req faults_detected,
        req faults_repaired,
        req health_improvement,
        req duration,
        req stages_completed,
        req rollback_performed,
        req context,
        opt timestamp = record::now,
        core Arc<CycleData>,
    }
}

impl HealingResult {
    /// The engine record of the cycle, while no attribute has been assigned from Python.
    pub fn cycle_data(&self) -> Option<&Arc<CycleData>> {
        if self.modified {
            None
        } else {
            self.core.as_ref()
        }
    }
}

// ------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------

use super::errors::is_fatal;

/// "ExceptionType: message", as results record errors.
fn error_text(py: Python<'_>, err: &PyErr) -> String {
    super::errors::error_text(py, err, MAX_ERROR_TEXT)
}

/// `getattr(obj, name)`, None when missing or None; other errors are returned.
fn attr<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match obj.getattr(name) {
        Ok(v) if v.is_none() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_instance_of::<PyAttributeError>(obj.py()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A field of a fault object, or of a dict used as one.
fn field<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(d.get_item(name)?.filter(|v| !v.is_none()));
    }
    attr(obj, name)
}

/// The text of a str, or of an enum member's str value.
fn label(obj: &Bound<'_, PyAny>) -> Option<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return s.to_cow().ok().map(|c| c.into_owned());
    }
    let value = obj.getattr(intern!(obj.py(), "value")).ok()?;
    value
        .cast::<PyString>()
        .ok()?
        .to_cow()
        .ok()
        .map(|c| c.into_owned())
}

/// A real number attribute (bools and non-numbers give None).
fn float_of(obj: &Bound<'_, PyAny>) -> Option<f64> {
    if obj.is_instance_of::<PyBool>() {
        return None;
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Some(f.value()).filter(|v| v.is_finite());
    }
    if obj.is_instance_of::<PyInt>() {
        return obj.extract::<f64>().ok().filter(|v| v.is_finite());
    }
    None
}

fn engine_kind(obj: &Bound<'_, PyAny>) -> Option<EngineKind> {
    // Only exact instances: a Python subclass may override can_repair or repair.
    if obj.is_exact_instance_of::<GraphRepairEngine>() {
        Some(EngineKind::Graph)
    } else if obj.is_exact_instance_of::<AgentRepairEngine>() {
        Some(EngineKind::Agent)
    } else if obj.is_exact_instance_of::<SchedulerRepairEngine>() {
        Some(EngineKind::Scheduler)
    } else if obj.is_exact_instance_of::<GovernanceRepairEngine>() {
        Some(EngineKind::Governance)
    } else {
        None
    }
}

/// Checks that `obj` has the methods the pipeline calls (a raising attribute is an error too).
fn require_methods(obj: &Bound<'_, PyAny>, what: &str, methods: &[&str]) -> PyResult<()> {
    for m in methods {
        let present = obj.hasattr(*m).map_err(|e| {
            PyTypeError::new_err(format!(
                "{what}: reading .{m} raised {}",
                error_text(obj.py(), &e)
            ))
        })?;
        if !present {
            return Err(PyTypeError::new_err(format!(
                "{what} must provide {}(), got {} without it",
                m,
                type_name(obj)
            )));
        }
    }
    Ok(())
}

fn optional(obj: Option<Py<PyAny>>, py: Python<'_>) -> Option<Py<PyAny>> {
    obj.filter(|o| !o.is_none(py))
}

fn stabilize_arg(seconds: f64) -> PyResult<f64> {
    if !seconds.is_finite() || !(0.0..=MAX_STABILIZE_SECONDS).contains(&seconds) {
        return Err(PyValueError::new_err(format!(
            "stabilize_seconds must be between 0 and {MAX_STABILIZE_SECONDS}, got {}",
            crate::engine::pyfmt::float_repr(seconds)
        )));
    }
    Ok(seconds)
}

fn timeout_arg(seconds: f64) -> PyResult<Duration> {
    if !seconds.is_finite() || seconds <= 0.0 || seconds > MAX_CALLBACK_TIMEOUT {
        return Err(PyValueError::new_err(format!(
            "callback_timeout must be more than 0 and at most {MAX_CALLBACK_TIMEOUT} seconds, got {}",
            crate::engine::pyfmt::float_repr(seconds)
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn check_repair_engines(engines: &Bound<'_, PyAny>) -> PyResult<()> {
    let dict = engines.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "repair_engines must be a dict of name -> repair engine, got {}",
            type_name(engines)
        ))
    })?;
    for (k, v) in dict.iter() {
        let name = k.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "repair_engines keys must be str, got {}",
                type_name(&k)
            ))
        })?;
        if engine_kind(&v).is_none() {
            require_methods(
                &v,
                &format!("repair_engines['{}']", name.to_cow()?),
                &["can_repair", "repair"],
            )?;
        }
    }
    Ok(())
}

fn check_callable_or_none(
    obj: &Option<Py<PyAny>>,
    py: Python<'_>,
    what: &str,
    dict_ok: bool,
) -> PyResult<()> {
    let Some(o) = obj else { return Ok(()) };
    let o = o.bind(py);
    if o.is_callable() || (dict_ok && o.is_instance_of::<PyDict>()) {
        return Ok(());
    }
    let expected = if dict_ok {
        "a dict or a zero-argument callable returning one"
    } else {
        "a zero-argument callable"
    };
    Err(PyTypeError::new_err(format!(
        "{what} must be {expected}, got {}",
        type_name(o)
    )))
}

// ------------------------------------------------------------------------------------------
// The pipeline object
// ------------------------------------------------------------------------------------------

struct Parts {
    detection: Py<PyAny>,
    classification: Py<PyAny>,
    repair_engines: Py<PyAny>,
    snapshot_manager: Option<Py<PyAny>>,
    health_engine: Option<Py<PyAny>>,
    event_hooks: Option<Py<PyAny>>,
    repair_context: Option<Py<PyAny>>,
    metrics_provider: Option<Py<PyAny>>,
    dry_run: bool,
    stabilize_seconds: f64,
    callback_timeout: Duration,
}

struct State {
    stats: PipelineStats,
    history: CycleHistory<Py<HealingResult>>,
    learning: LearningTable,
    /// Which of our engine kinds have a handler for a fault type (the rules depend on the
    /// fault type only). At most `CLAIMS_MEMO_CAP` types; cleared when full.
    claims_memo: std::collections::HashMap<String, [bool; 4]>,
}

const CLAIMS_MEMO_CAP: usize = 256;

/// Runs healing cycles: detect, classify, snapshot, select a strategy, prepare, repair,
/// verify, check health, roll back when health declined, stabilize, learn, report.
///
/// HealingPipeline(detection_engine, classification_engine, repair_engines,
///                 snapshot_manager=None, health_engine=None, *, repair_context=None,
///                 metrics_provider=None, event_hooks=None, dry_run=False,
///                 stabilize_seconds=0.0, history_size=1000, callback_timeout=30.0)
///
/// - `repair_context`: a dict, or a zero-argument callable returning one, handed to the
///   repair engines with each fault (keys such as `task_graph`, `orchestrator`,
///   `agent_manager`, `actions`, `verify`; see `repair_strategies`). `classification` is set
///   per fault by the pipeline.
/// - `metrics_provider`: a zero-argument callable returning the five layer metric dicts (a
///   dict keyed `faza25_metrics`... or `faza25`..., or a sequence of five), called after the
///   repairs: verification and `health_after` come from these fresh metrics. Without it,
///   health is not measured again and `health_after` equals `health_before` (stage 8 says
///   `measured: False`); repairs are then verified by their own re-measurement.
/// - `event_hooks`: an EventHooks; each stage publishes the events that happen in it.
/// - `dry_run`: plan and report only: no snapshot, no repair, no rollback, no wait.
/// - `stabilize_seconds`: the wait of stage 10.
/// - `history_size`: cycle results kept (every outcome, skipped and failed ones too).
/// - `callback_timeout`: bound of each callback run on the host loop (async path only).
///
/// Cycles on one pipeline do not overlap: starting one while another runs raises
/// RuntimeError.
#[pyclass(module = "senti_os.core.faza30.healing_pipeline", weakref)]
pub struct HealingPipeline {
    parts: Mutex<Parts>,
    /// Shared with running cycles, which read and update it without the GIL.
    state: Arc<Mutex<State>>,
    running: Arc<AtomicBool>,
}

/// What the admission gate is told about a repair about to run.
pub struct AdmissionRequest<'a> {
    /// Health measured before the repairs (stage 5), when it was measured.
    pub health: Option<f64>,
    /// What the repair acts on (`autorepair_engine::target_key`).
    pub target: String,
    pub engine: &'a str,
    /// The fault's severity value (`"critical"` ...), when it has a readable one.
    pub severity: Option<String>,
}

pub type Admission =
    std::sync::Arc<dyn Fn(&AdmissionRequest<'_>) -> Result<(), String> + Send + Sync>;

/// Per-call overrides of the pipeline's settings (None keeps the pipeline's value).
pub struct CycleOptions {
    /// Asked before each repair; a refusal (with its reason) skips that repair. The
    /// auto-repair loop passes its throttle here, so limits count repairs, not cycles.
    pub admission: Option<Admission>,
    pub dry_run: Option<bool>,
    pub stabilize_seconds: Option<f64>,
    pub repair_context: Option<Py<PyAny>>,
    pub metrics_provider: Option<Py<PyAny>>,
    /// Marks the result's metadata (`forced: True`); the auto-repair loop sets it for a
    /// cycle it ran on request. It changes nothing else.
    pub forced: bool,
    /// False skips the pre-repair snapshot (the loop's `enable_snapshots`).
    pub snapshots: bool,
    /// False reports a health decline without restoring (the loop's `enable_rollback`).
    pub rollback: bool,
}

impl Default for CycleOptions {
    fn default() -> Self {
        CycleOptions {
            admission: None,
            dry_run: None,
            stabilize_seconds: None,
            repair_context: None,
            metrics_provider: None,
            forced: false,
            snapshots: true,
            rollback: true,
        }
    }
}

impl HealingPipeline {
    /// Statistics for the controller and the auto-repair loop.
    pub fn statistics(&self) -> PipelineStats {
        self.state.lock().stats
    }

    /// The newest `limit` results, newest first.
    pub fn recent(&self, py: Python<'_>, limit: usize) -> Vec<Py<HealingResult>> {
        self.state
            .lock()
            .history
            .newest_first(limit)
            .map(|r| r.clone_ref(py))
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn build_pipeline(
    py: Python<'_>,
    detection_engine: Py<PyAny>,
    classification_engine: Py<PyAny>,
    repair_engines: Option<Py<PyAny>>,
    snapshot_manager: Option<Py<PyAny>>,
    health_engine: Option<Py<PyAny>>,
    repair_context: Option<Py<PyAny>>,
    metrics_provider: Option<Py<PyAny>>,
    event_hooks: Option<Py<PyAny>>,
    dry_run: bool,
    stabilize_seconds: f64,
    history_size: i64,
    callback_timeout: f64,
) -> PyResult<HealingPipeline> {
    check_detection(detection_engine.bind(py))?;
    check_classification(classification_engine.bind(py))?;
    let repair_engines = match optional(repair_engines, py) {
        Some(e) => e,
        None => PyDict::new(py).into_any().unbind(),
    };
    check_repair_engines(repair_engines.bind(py))?;
    let snapshot_manager = optional(snapshot_manager, py);
    if let Some(s) = &snapshot_manager {
        check_snapshot_manager(s.bind(py))?;
    }
    let health_engine = optional(health_engine, py);
    if let Some(h) = &health_engine {
        require_methods(h.bind(py), "health_engine", &["compute_health_score"])?;
    }
    let event_hooks = optional(event_hooks, py);
    if let Some(h) = &event_hooks {
        check_hooks(h.bind(py))?;
    }
    let repair_context = optional(repair_context, py);
    check_callable_or_none(&repair_context, py, "repair_context", true)?;
    let metrics_provider = optional(metrics_provider, py);
    check_callable_or_none(&metrics_provider, py, "metrics_provider", false)?;
    let stabilize_seconds = stabilize_arg(stabilize_seconds)?;
    if !(1..=MAX_HISTORY_SIZE as i64).contains(&history_size) {
        return Err(PyValueError::new_err(format!(
            "history_size must be between 1 and {MAX_HISTORY_SIZE}, got {history_size}"
        )));
    }
    let callback_timeout = timeout_arg(callback_timeout)?;
    Ok(HealingPipeline {
        parts: Mutex::new(Parts {
            detection: detection_engine,
            classification: classification_engine,
            repair_engines,
            snapshot_manager,
            health_engine,
            event_hooks,
            repair_context,
            metrics_provider,
            dry_run,
            stabilize_seconds,
            callback_timeout,
        }),
        state: Arc::new(Mutex::new(State {
            stats: PipelineStats::default(),
            history: CycleHistory::new(history_size as usize),
            learning: LearningTable::default(),
            claims_memo: Default::default(),
        })),
        running: Arc::new(AtomicBool::new(false)),
    })
}

fn check_detection(obj: &Bound<'_, PyAny>) -> PyResult<()> {
    if obj.is_none() {
        return Err(PyTypeError::new_err(
            "detection_engine must be a DetectionEngine, got None",
        ));
    }
    if obj.is_instance_of::<DetectionEngine>() {
        return Ok(());
    }
    require_methods(obj, "detection_engine", &["detect_faults"])
}

fn check_classification(obj: &Bound<'_, PyAny>) -> PyResult<()> {
    if obj.is_none() {
        return Err(PyTypeError::new_err(
            "classification_engine must be a ClassificationEngine, got None",
        ));
    }
    require_methods(obj, "classification_engine", &["classify_fault"])
}

fn check_snapshot_manager(obj: &Bound<'_, PyAny>) -> PyResult<()> {
    if obj.is_instance_of::<SnapshotManager>() {
        return Ok(());
    }
    require_methods(
        obj,
        "snapshot_manager",
        &["create_snapshot", "restore_snapshot"],
    )
}

pub(crate) fn check_hooks(obj: &Bound<'_, PyAny>) -> PyResult<()> {
    if obj.is_instance_of::<EventHooks>() {
        return Ok(());
    }
    require_methods(obj, "event_hooks", &["publish_event"])
}

/// The metric arguments: each must be a dict or None (TypeError naming it otherwise).
fn metrics_args(args: [Option<&Bound<'_, PyAny>>; 5]) -> PyResult<[Option<Py<PyAny>>; 5]> {
    let mut out: [Option<Py<PyAny>>; 5] = Default::default();
    for (i, arg) in args.into_iter().enumerate() {
        let Some(a) = arg.filter(|a| !a.is_none()) else {
            continue;
        };
        if !a.is_instance_of::<PyDict>() {
            return Err(PyTypeError::new_err(format!(
                "{} must be a dict or None, got {}",
                LAYER_PARAMS[i],
                type_name(a)
            )));
        }
        out[i] = Some(a.clone().unbind());
    }
    Ok(out)
}

#[pymethods]
impl HealingPipeline {
    #[new]
    #[pyo3(signature = (
        detection_engine, classification_engine, repair_engines, snapshot_manager=None, health_engine=None, *,
        repair_context=None, metrics_provider=None, event_hooks=None, dry_run=false, stabilize_seconds=0.0,
        history_size=1000, callback_timeout=30.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        detection_engine: Py<PyAny>,
        classification_engine: Py<PyAny>,
        repair_engines: Option<Py<PyAny>>,
        snapshot_manager: Option<Py<PyAny>>,
        health_engine: Option<Py<PyAny>>,
        repair_context: Option<Py<PyAny>>,
        metrics_provider: Option<Py<PyAny>>,
        event_hooks: Option<Py<PyAny>>,
        dry_run: bool,
        stabilize_seconds: f64,
        #[pyo3(from_py_with = super::convert::i64_param)] history_size: i64,
        callback_timeout: f64,
    ) -> PyResult<Self> {
        build_pipeline(
            py,
            detection_engine,
            classification_engine,
            repair_engines,
            snapshot_manager,
            health_engine,
            repair_context,
            metrics_provider,
            event_hooks,
            dry_run,
            stabilize_seconds,
            history_size,
            callback_timeout,
        )
    }

    /// Runs one healing cycle and returns its HealingResult. The metric arguments are dicts
    /// or None, by position or keyword; the keyword-only arguments override the pipeline's
    /// settings for this call.
    #[pyo3(signature = (
        faza25_metrics=None, faza27_metrics=None, faza28_metrics=None, faza28_5_metrics=None, faza29_metrics=None, *,
        dry_run=None, stabilize_seconds=None, repair_context=None, metrics_provider=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn execute_healing_cycle(
        slf: &Bound<'_, Self>,
        faza25_metrics: Option<&Bound<'_, PyAny>>,
        faza27_metrics: Option<&Bound<'_, PyAny>>,
        faza28_metrics: Option<&Bound<'_, PyAny>>,
        faza28_5_metrics: Option<&Bound<'_, PyAny>>,
        faza29_metrics: Option<&Bound<'_, PyAny>>,
        dry_run: Option<bool>,
        stabilize_seconds: Option<f64>,
        repair_context: Option<Py<PyAny>>,
        metrics_provider: Option<Py<PyAny>>,
    ) -> PyResult<Py<HealingResult>> {
        let py = slf.py();
        let metrics = metrics_args([
            faza25_metrics,
            faza27_metrics,
            faza28_metrics,
            faza28_5_metrics,
            faza29_metrics,
        ])?;
        let options = cycle_options(
            py,
            dry_run,
            stabilize_seconds,
            repair_context,
            metrics_provider,
        )?;
        runtime::block_on(run_cycle(
            slf.clone().unbind(),
            Caller::Inline,
            metrics,
            options,
        ))
    }

    /// `execute_healing_cycle` as an awaitable, for asyncio code: the cycle runs on the
    /// engine's runtime, and every Python callback runs on this event loop (awaited when it is
    /// a coroutine, bounded by `callback_timeout`).
    #[pyo3(signature = (
        faza25_metrics=None, faza27_metrics=None, faza28_metrics=None, faza28_5_metrics=None, faza29_metrics=None, *,
        dry_run=None, stabilize_seconds=None, repair_context=None, metrics_provider=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn execute_healing_cycle_async<'py>(
        slf: &Bound<'py, Self>,
        faza25_metrics: Option<&Bound<'py, PyAny>>,
        faza27_metrics: Option<&Bound<'py, PyAny>>,
        faza28_metrics: Option<&Bound<'py, PyAny>>,
        faza28_5_metrics: Option<&Bound<'py, PyAny>>,
        faza29_metrics: Option<&Bound<'py, PyAny>>,
        dry_run: Option<bool>,
        stabilize_seconds: Option<f64>,
        repair_context: Option<Py<PyAny>>,
        metrics_provider: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let metrics = metrics_args([
            faza25_metrics,
            faza27_metrics,
            faza28_metrics,
            faza28_5_metrics,
            faza29_metrics,
        ])?;
        let options = cycle_options(
            py,
            dry_run,
            stabilize_seconds,
            repair_context,
            metrics_provider,
        )?;
        let host = HostLoop::current(py).ok_or_else(|| {
            PyRuntimeError::new_err(
                "execute_healing_cycle_async needs a running event loop; await it from a coroutine",
            )
        })?;
        let timeout = slf.borrow().parts.lock().callback_timeout;
        let pipeline = slf.clone().unbind();
        let caller = Caller::Host {
            host: host.clone(),
            timeout,
        };
        runtime::spawn_awaitable(py, &host, async move {
            run_cycle(pipeline, caller, metrics, options)
                .await
                .map(|r| r.into_any())
        })
    }

    /// Counters (the five outcome counters add up to `total_cycles`), running means, and
    /// the sizes of the history and the learning table.
    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (s, history, learned) = {
            let st = self.state.lock();
            (st.stats, st.history.len(), st.learning.len())
        };
        let d = PyDict::new(py);
        d.set_item("total_cycles", s.total_cycles)?;
        d.set_item("successful_cycles", s.successful_cycles)?;
        d.set_item("failed_cycles", s.failed_cycles)?;
        d.set_item("rollback_cycles", s.rollback_cycles)?;
        d.set_item("avg_duration", s.avg_duration)?;
        d.set_item("avg_health_improvement", s.avg_health_improvement)?;
        d.set_item("partial_cycles", s.partial_cycles)?;
        d.set_item("skipped_cycles", s.skipped_cycles)?;
        d.set_item("dry_run_cycles", s.dry_run_cycles)?;
        d.set_item("history_size", history)?;
        d.set_item("learned_pairs", learned)?;
        Ok(d)
    }

    /// The newest `limit` cycle results, newest first (0 gives none).
    #[pyo3(signature = (limit=10))]
    fn get_recent_cycles(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = super::convert::i64_param)] limit: i64,
    ) -> PyResult<Vec<Py<HealingResult>>> {
        if limit < 0 {
            return Err(PyValueError::new_err(format!(
                "limit must be 0 or more, got {limit}"
            )));
        }
        Ok(self.recent(py, limit as usize))
    }

    /// What the pipeline has learned: one dict per (fault type, engine) pair with attempts,
    /// successes, partials, failures, skipped, success_rate and the selection score.
    fn get_learning_table<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let entries: Vec<(String, String, LearnedRecord)> = {
            let st = self.state.lock();
            st.learning
                .entries()
                .into_iter()
                .map(|(t, e, r)| (t.to_owned(), e.to_owned(), r))
                .collect()
        };
        let out = PyList::empty(py);
        for (t, e, r) in entries {
            let d = PyDict::new(py);
            d.set_item("fault_type", t)?;
            d.set_item("engine", e)?;
            d.set_item("attempts", r.attempts)?;
            d.set_item("successes", r.successes)?;
            d.set_item("partials", r.partials)?;
            d.set_item("failures", r.failures)?;
            d.set_item("skipped", r.skipped)?;
            d.set_item("success_rate", r.success_rate())?;
            d.set_item("score", r.score())?;
            out.append(d)?;
        }
        Ok(out)
    }

    /// Forgets what was learned.
    fn reset_learning(&self) {
        self.state.lock().learning.clear();
    }

    #[getter]
    fn detection_engine(&self, py: Python<'_>) -> Py<PyAny> {
        self.parts.lock().detection.clone_ref(py)
    }
    #[setter]
    fn set_detection_engine(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        check_detection(value)?;
        let old = std::mem::replace(&mut self.parts.lock().detection, value.clone().unbind());
        drop(old);
        Ok(())
    }

    #[getter]
    fn classification_engine(&self, py: Python<'_>) -> Py<PyAny> {
        self.parts.lock().classification.clone_ref(py)
    }
    #[setter]
    fn set_classification_engine(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        check_classification(value)?;
        let old = std::mem::replace(
            &mut self.parts.lock().classification,
            value.clone().unbind(),
        );
        drop(old);
        Ok(())
    }

    /// The repair engines, name -> engine (the dict given; changes to it apply to the next cycle).
    #[getter]
    fn repair_engines(&self, py: Python<'_>) -> Py<PyAny> {
        self.parts.lock().repair_engines.clone_ref(py)
    }
    #[setter]
    fn set_repair_engines(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        check_repair_engines(value)?;
        let old = std::mem::replace(
            &mut self.parts.lock().repair_engines,
            value.clone().unbind(),
        );
        drop(old);
        Ok(())
    }

    #[getter]
    fn snapshot_manager(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.parts
            .lock()
            .snapshot_manager
            .as_ref()
            .map(|o| o.clone_ref(py))
    }
    #[setter]
    fn set_snapshot_manager(&self, value: Option<Py<PyAny>>) -> PyResult<()> {
        let value = Python::attach(|py| -> PyResult<_> {
            let v = optional(value, py);
            if let Some(s) = &v {
                check_snapshot_manager(s.bind(py))?;
            }
            Ok(v)
        })?;
        let old = std::mem::replace(&mut self.parts.lock().snapshot_manager, value);
        drop(old);
        Ok(())
    }

    #[getter]
    fn health_engine(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.parts
            .lock()
            .health_engine
            .as_ref()
            .map(|o| o.clone_ref(py))
    }
    #[setter]
    fn set_health_engine(&self, value: Option<Py<PyAny>>) -> PyResult<()> {
        let value = Python::attach(|py| -> PyResult<_> {
            let v = optional(value, py);
            if let Some(h) = &v {
                require_methods(h.bind(py), "health_engine", &["compute_health_score"])?;
            }
            Ok(v)
        })?;
        let old = std::mem::replace(&mut self.parts.lock().health_engine, value);
        drop(old);
        Ok(())
    }

    #[getter]
    fn event_hooks(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.parts
            .lock()
            .event_hooks
            .as_ref()
            .map(|o| o.clone_ref(py))
    }
    #[setter]
    fn set_event_hooks(&self, value: Option<Py<PyAny>>) -> PyResult<()> {
        let value = Python::attach(|py| -> PyResult<_> {
            let v = optional(value, py);
            if let Some(h) = &v {
                check_hooks(h.bind(py))?;
            }
            Ok(v)
        })?;
        let old = std::mem::replace(&mut self.parts.lock().event_hooks, value);
        drop(old);
        Ok(())
    }

    #[getter]
    fn repair_context(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.parts
            .lock()
            .repair_context
            .as_ref()
            .map(|o| o.clone_ref(py))
    }
    #[setter]
    fn set_repair_context(&self, value: Option<Py<PyAny>>) -> PyResult<()> {
        let value = Python::attach(|py| -> PyResult<_> {
            let v = optional(value, py);
            check_callable_or_none(&v, py, "repair_context", true)?;
            Ok(v)
        })?;
        let old = std::mem::replace(&mut self.parts.lock().repair_context, value);
        drop(old);
        Ok(())
    }

    #[getter]
    fn metrics_provider(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.parts
            .lock()
            .metrics_provider
            .as_ref()
            .map(|o| o.clone_ref(py))
    }
    #[setter]
    fn set_metrics_provider(&self, value: Option<Py<PyAny>>) -> PyResult<()> {
        let value = Python::attach(|py| -> PyResult<_> {
            let v = optional(value, py);
            check_callable_or_none(&v, py, "metrics_provider", false)?;
            Ok(v)
        })?;
        let old = std::mem::replace(&mut self.parts.lock().metrics_provider, value);
        drop(old);
        Ok(())
    }

    #[getter]
    fn dry_run(&self) -> bool {
        self.parts.lock().dry_run
    }
    #[setter]
    fn set_dry_run(&self, value: bool) {
        self.parts.lock().dry_run = value;
    }

    #[getter]
    fn stabilize_seconds(&self) -> f64 {
        self.parts.lock().stabilize_seconds
    }
    #[setter]
    fn set_stabilize_seconds(&self, value: f64) -> PyResult<()> {
        let v = stabilize_arg(value)?;
        self.parts.lock().stabilize_seconds = v;
        Ok(())
    }

    #[getter]
    fn callback_timeout(&self) -> f64 {
        self.parts.lock().callback_timeout.as_secs_f64()
    }
    #[setter]
    fn set_callback_timeout(&self, value: f64) -> PyResult<()> {
        let v = timeout_arg(value)?;
        self.parts.lock().callback_timeout = v;
        Ok(())
    }

    #[getter]
    fn history_size(&self) -> usize {
        self.state.lock().history.cap()
    }

    /// Whether a cycle is running on this pipeline now.
    fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        // Locks held by another thread are skipped this round rather than waited for.
        if let Some(p) = self.parts.try_lock() {
            visit.call(&p.detection)?;
            visit.call(&p.classification)?;
            visit.call(&p.repair_engines)?;
            for o in [
                &p.snapshot_manager,
                &p.health_engine,
                &p.event_hooks,
                &p.repair_context,
                &p.metrics_provider,
            ]
            .into_iter()
            .flatten()
            {
                visit.call(o)?;
            }
        }
        if let Some(s) = self.state.try_lock() {
            for r in s.history.iter() {
                visit.call(r)?;
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        let p = self.parts.get_mut();
        p.snapshot_manager = None;
        p.health_engine = None;
        p.event_hooks = None;
        p.repair_context = None;
        p.metrics_provider = None;
        let history = self.state.lock().history.take_all();
        drop(history);
    }
}

fn cycle_options(
    py: Python<'_>,
    dry_run: Option<bool>,
    stabilize_seconds: Option<f64>,
    repair_context: Option<Py<PyAny>>,
    metrics_provider: Option<Py<PyAny>>,
) -> PyResult<CycleOptions> {
    let stabilize_seconds = stabilize_seconds.map(stabilize_arg).transpose()?;
    let repair_context = optional(repair_context, py);
    check_callable_or_none(&repair_context, py, "repair_context", true)?;
    let metrics_provider = optional(metrics_provider, py);
    check_callable_or_none(&metrics_provider, py, "metrics_provider", false)?;
    Ok(CycleOptions {
        dry_run,
        stabilize_seconds,
        repair_context,
        metrics_provider,
        ..Default::default()
    })
}

/// create_healing_pipeline(detection_engine, classification_engine, repair_engines,
/// snapshot_manager=None, health_engine=None, **keyword settings of HealingPipeline)
#[pyfunction]
#[pyo3(signature = (
    detection_engine, classification_engine, repair_engines, snapshot_manager=None, health_engine=None, *,
    repair_context=None, metrics_provider=None, event_hooks=None, dry_run=false, stabilize_seconds=0.0,
    history_size=1000, callback_timeout=30.0
))]
#[allow(clippy::too_many_arguments)]
pub fn create_healing_pipeline(
    py: Python<'_>,
    detection_engine: Py<PyAny>,
    classification_engine: Py<PyAny>,
    repair_engines: Option<Py<PyAny>>,
    snapshot_manager: Option<Py<PyAny>>,
    health_engine: Option<Py<PyAny>>,
    repair_context: Option<Py<PyAny>>,
    metrics_provider: Option<Py<PyAny>>,
    event_hooks: Option<Py<PyAny>>,
    dry_run: bool,
    stabilize_seconds: f64,
    #[pyo3(from_py_with = super::convert::i64_param)] history_size: i64,
    callback_timeout: f64,
) -> PyResult<HealingPipeline> {
    build_pipeline(
        py,
        detection_engine,
        classification_engine,
        repair_engines,
        snapshot_manager,
        health_engine,
        repair_context,
        metrics_provider,
        event_hooks,
        dry_run,
        stabilize_seconds,
        history_size,
        callback_timeout,
    )
}

// ------------------------------------------------------------------------------------------
// Events
// ------------------------------------------------------------------------------------------

/// Publishes a batch of events on the host loop (one round trip per batch).
#[pyclass(module = "senti_os.core.faza30.healing_pipeline")]
struct EventBatch {
    hooks: Py<PyAny>,
    events: Mutex<Vec<(EventType, Py<PyDict>)>>,
}

#[pymethods]
impl EventBatch {
    fn __call__(&self, py: Python<'_>) -> Vec<String> {
        let events = std::mem::take(&mut *self.events.lock());
        let mut errors = Vec::new();
        for (t, data) in events {
            if let Err(e) = publish_one(py, self.hooks.bind(py), t, data.into_bound(py)) {
                errors.push(error_text(py, &e));
            }
        }
        errors
    }
}

/// Publishing errors collected by a `PublishThen` on the host loop.
type SharedErrors = std::sync::Arc<Mutex<Vec<String>>>;

/// Publishes a batch of events, then calls `f` with the arguments given: the events queued
/// before a callback ride on that callback's host round trip instead of one of their own.
#[pyclass(module = "senti_os.core.faza30.healing_pipeline")]
struct PublishThen {
    batch: EventBatch,
    f: Py<PyAny>,
    errors: SharedErrors,
}

#[pymethods]
impl PublishThen {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let errors = self.batch.__call__(py);
        self.errors.lock().extend(errors);
        self.f.bind(py).call(args, kwargs).map(Bound::unbind)
    }
}

fn publish_one(
    py: Python<'_>,
    hooks: &Bound<'_, PyAny>,
    t: EventType,
    data: Bound<'_, PyDict>,
) -> PyResult<()> {
    if let Ok(native) = hooks.cast::<EventHooks>() {
        return native.borrow().publish(py, t, Some(data));
    }
    hooks
        .call_method1(intern!(py, "publish_event"), (t.value(), data))
        .map(|_| ())
}

/// `verify(fault)` for the repair engines when the caller gave a metrics provider but no
/// `verify` of its own: it asks the provider for fresh metrics and returns the fault's layer
/// (all layers merged for a fault type no detection rule raises), so a repair is judged on
/// the same fresh measurement as the pipeline's verification.
#[pyclass(module = "senti_os.core.faza30.healing_pipeline")]
struct FreshVerifier {
    provider: Py<PyAny>,
}

#[pymethods]
impl FreshVerifier {
    fn __call__(&self, py: Python<'_>, fault: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let answer = self.provider.bind(py).call0()?;
        let (fresh, _) = parse_fresh(&answer)
            .map_err(|e| PyTypeError::new_err(format!("metrics_provider {e}")))?;
        let fault_type = field(fault, intern!(py, "fault_type"))?
            .and_then(|t| label(&t))
            .unwrap_or_default();
        let layer = crate::engine::detection_engine::Rule::from_name(&fault_type)
            .map(|r| r.layer().index());
        let out = PyDict::new(py);
        for (i, d) in fresh.dicts.iter().enumerate() {
            if let Some(d) = d {
                if layer.is_none_or(|l| l == i) {
                    out.update(d.bind(py).as_mapping())?;
                }
            }
        }
        Ok(out.into_any().unbind())
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.provider)
    }
}

/// Publishes the cycle's events: at once on the Inline path, batched on the Host path and
/// sent to the host loop before the next callback and at the end of each stage, so the order
/// relative to callbacks is kept.
struct Emitter {
    hooks: Option<Py<PyAny>>,
    batched: bool,
    pending: Vec<(EventType, Py<PyDict>)>,
    errors: Vec<String>,
    error_count: usize,
}

impl Emitter {
    fn active(&self) -> bool {
        self.hooks.is_some()
    }

    fn note_error(&mut self, e: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_EVENT_ERRORS {
            self.errors.push(e);
        }
    }

    /// Publishes (or queues) an event whose payload `fill` builds; nothing is built without hooks.
    fn emit(
        &mut self,
        py: Python<'_>,
        t: EventType,
        fill: impl FnOnce(&Bound<'_, PyDict>) -> PyResult<()>,
    ) {
        let Some(hooks) = &self.hooks else { return };
        let data = PyDict::new(py);
        if let Err(e) = fill(&data) {
            self.note_error(error_text(py, &e));
            return;
        }
        if self.batched {
            self.pending.push((t, data.unbind()));
            return;
        }
        let hooks = hooks.clone_ref(py);
        if let Err(e) = publish_one(py, hooks.bind(py), t, data) {
            self.note_error(error_text(py, &e));
        }
    }

    /// `f`, or on the Host path with events queued, a `PublishThen` that publishes them first
    /// in the same host callback; its publishing errors land in the returned list.
    fn piggyback(&mut self, f: Py<PyAny>) -> (Py<PyAny>, Option<SharedErrors>) {
        if self.pending.is_empty() {
            return (f, None);
        }
        let Some(hooks) = &self.hooks else {
            return (f, None);
        };
        let events = std::mem::take(&mut self.pending);
        let errors = std::sync::Arc::new(Mutex::new(Vec::new()));
        let made = runtime::attach(|py| {
            let batch = EventBatch {
                hooks: hooks.clone_ref(py),
                events: Mutex::new(events),
            };
            Py::new(
                py,
                PublishThen {
                    batch,
                    f: f.clone_ref(py),
                    errors: errors.clone(),
                },
            )
            .map(|p| p.into_any())
        });
        match made {
            Ok(Ok(wrapped)) => (wrapped, Some(errors)),
            Ok(Err(e)) => {
                let _ = runtime::attach(|py| self.note_error(error_text(py, &e)));
                (f, None)
            }
            Err(_) => (f, None),
        }
    }

    async fn flush(&mut self, caller: &Caller) {
        if self.pending.is_empty() {
            return;
        }
        let Some(hooks) = &self.hooks else { return };
        let events = std::mem::take(&mut self.pending);
        let made = runtime::attach(|py| -> PyResult<(Py<PyAny>, Py<PyTuple>)> {
            let batch = EventBatch {
                hooks: hooks.clone_ref(py),
                events: Mutex::new(events),
            };
            Ok((Py::new(py, batch)?.into_any(), PyTuple::empty(py).unbind()))
        });
        let (batch, args) = match made {
            Ok(Ok(parts)) => parts,
            Ok(Err(e)) => {
                let _ = runtime::attach(|py| self.note_error(error_text(py, &e)));
                return;
            }
            Err(_) => return,
        };
        let outcome = caller.call(batch, args, None).await;
        let _ = runtime::attach(|py| match outcome {
            Ok(errors) => {
                let errors: Vec<String> = errors.bind(py).extract().unwrap_or_default();
                for e in errors {
                    self.note_error(e);
                }
            }
            Err(e) => self.note_error(e.describe(py)),
        });
    }
}

// ------------------------------------------------------------------------------------------
// The cycle
// ------------------------------------------------------------------------------------------

/// `Python::attach` that refuses once the interpreter is exiting: the cycle may run on a
/// runtime thread, which must not enter Python then.
fn gil<R>(f: impl FnOnce(Python<'_>) -> R) -> Result<R, Stop> {
    runtime::attach(f).map_err(|_| Stop::Exiting)
}

/// Why a cycle stopped early.
enum Stop {
    /// The interpreter is exiting: the cycle is abandoned without touching Python.
    Exiting,
    /// A stage failed: the cycle ends FAILED with the error recorded.
    Stage(String),
    /// The caller's input was refused (TypeError/ValueError from reading the metrics): raised,
    /// nothing recorded.
    Input(PyErr),
    /// KeyboardInterrupt and the like: raised after the cycle is recorded as FAILED.
    Fatal(PyErr),
}

/// How a callback failed.
enum CallFail {
    Error(String),
    Fatal(PyErr),
    Exiting,
}

impl From<CallFail> for Stop {
    fn from(f: CallFail) -> Self {
        match f {
            CallFail::Error(e) => Stop::Stage(e),
            CallFail::Fatal(e) => Stop::Fatal(e),
            CallFail::Exiting => Stop::Exiting,
        }
    }
}

impl From<Stop> for CallFail {
    fn from(s: Stop) -> Self {
        match s {
            Stop::Stage(e) => CallFail::Error(e),
            Stop::Fatal(e) | Stop::Input(e) => CallFail::Fatal(e),
            Stop::Exiting => CallFail::Exiting,
        }
    }
}

fn call_fail(py: Python<'_>, e: PyErr) -> CallFail {
    if is_fatal(py, &e) {
        CallFail::Fatal(e)
    } else {
        CallFail::Error(error_text(py, &e))
    }
}

fn stage_fail(py: Python<'_>, e: PyErr) -> Stop {
    Stop::from(call_fail(py, e))
}

struct EngineSlot {
    name: String,
    object: Py<PyAny>,
    kind: Option<EngineKind>,
}

/// The fresh layer metrics returned by the metrics provider.
struct Fresh {
    dicts: [Option<Py<PyDict>>; 5],
    maps: [Option<Metrics>; 5],
}

struct Cycle {
    caller: Caller,
    state: Arc<Mutex<State>>,
    inline: bool,
    detection: Py<PyAny>,
    classification: Py<PyAny>,
    engines: Vec<EngineSlot>,
    snapshot_manager: Option<Py<PyAny>>,
    health_engine: Option<Py<PyAny>>,
    repair_context: Option<Py<PyAny>>,
    metrics_provider: Option<Py<PyAny>>,
    stabilize_seconds: f64,
    admission: Option<Admission>,
    snapshots: bool,
    rollback: bool,
    metrics: [Option<Py<PyAny>>; 5],
    data: CycleData,
    faults: Vec<Py<PyAny>>,
    classifications: Vec<Option<Py<PyAny>>>,
    repairs: Vec<Option<RepairSlot>>,
    context: Option<Py<PyDict>>,
    fresh: Option<Fresh>,
    emitter: Emitter,
    started: Instant,
}

/// Resets the pipeline's "running" flag when the cycle ends, however it ends.
struct RunningGuard(Arc<AtomicBool>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

const EXITING: &str = "the interpreter is exiting; the healing cycle was abandoned";

/// Runs one healing cycle of `pipeline`, calling Python through `caller`, and returns its
/// result (also recorded in the pipeline's history and statistics).
///
/// This is the entry point for the auto-repair loop: call it on the tokio runtime with
/// `Caller::Host { host, timeout }`, or stepped on the host loop with `Caller::OnHost`;
/// `metrics` are the five layer dicts (or None) in the
/// order faza25, faza27, faza28, faza28_5, faza29. The GIL is attached only for short
/// steps (through `runtime::attach`, so nothing enters Python once the interpreter exits)
/// and never held, nor any lock, while awaiting a callback. It returns `Err` only for refused
/// input (a metric that is not a dict, or a value detection cannot read), for a cycle already
/// running on this pipeline, for KeyboardInterrupt-like exceptions from callbacks, and when
/// the interpreter is exiting; every other failure is recorded in a FAILED result.
pub async fn run_cycle(
    pipeline: Py<HealingPipeline>,
    caller: Caller,
    metrics: [Option<Py<PyAny>>; 5],
    options: CycleOptions,
) -> PyResult<Py<HealingResult>> {
    let started = gil(|py| start_cycle(py, &pipeline, caller, metrics, options));
    let (mut cycle, running) = match started {
        Ok(Ok(parts)) => parts,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(PyRuntimeError::new_err(EXITING)),
    };
    cycle.emit(EventType::HEALING_CYCLE_STARTED, |c, d| {
        d.set_item("cycle_id", &c.data.cycle_id)
    });
    let stopped = cycle.run_stages().await;
    cycle.emitter.flush(&cycle.caller).await;
    let fatal = match stopped {
        Ok(()) => None,
        Err(Stop::Exiting) => return Err(PyRuntimeError::new_err(EXITING)),
        Err(Stop::Input(e)) => {
            let text = gil(|py| error_text(py, &e)).unwrap_or_default();
            cycle.emit(EventType::HEALING_CYCLE_FAILED, |c, d| {
                d.set_item("cycle_id", &c.data.cycle_id)?;
                d.set_item("error", &text)
            });
            cycle.emitter.flush(&cycle.caller).await;
            let _ = gil(move |_| drop((cycle, running)));
            return Err(e);
        }
        Err(Stop::Stage(error)) => {
            cycle.fail(error);
            None
        }
        Err(Stop::Fatal(e)) => {
            let text = gil(|py| error_text(py, &e)).unwrap_or_default();
            cycle.fail(text);
            Some(e)
        }
    };
    let result = cycle.finish();
    cycle.emitter.flush(&cycle.caller).await;
    // Python objects are released while attached, before the caller resumes.
    let _ = gil(move |_| drop((cycle, running)));
    match (fatal, result) {
        (Some(e), _) => Err(e),
        (None, Ok(r)) => Ok(r),
        (None, Err(Stop::Exiting)) => Err(PyRuntimeError::new_err(EXITING)),
        (None, Err(Stop::Stage(e))) => Err(PyRuntimeError::new_err(e)),
        (None, Err(Stop::Fatal(e) | Stop::Input(e))) => Err(e),
    }
}

/// Checks the arguments, claims the pipeline and takes what the cycle needs from it.
fn start_cycle(
    py: Python<'_>,
    pipeline: &Py<HealingPipeline>,
    caller: Caller,
    metrics: [Option<Py<PyAny>>; 5],
    options: CycleOptions,
) -> PyResult<(Cycle, RunningGuard)> {
    let p = pipeline.bind(py).borrow();
    // Refuse bad metric types before anything else happens.
    for (i, m) in metrics.iter().enumerate() {
        if let Some(m) = m {
            if !m.bind(py).is_instance_of::<PyDict>() {
                return Err(PyTypeError::new_err(format!(
                    "{} must be a dict or None, got {}",
                    LAYER_PARAMS[i],
                    type_name(m.bind(py))
                )));
            }
        }
    }
    let (
        repair_engines,
        detection,
        classification,
        snapshot_manager,
        health_engine,
        hooks,
        context,
        provider,
        dry_run,
        stabilize,
    ) = {
        let parts = p.parts.lock();
        (
            parts.repair_engines.clone_ref(py),
            parts.detection.clone_ref(py),
            parts.classification.clone_ref(py),
            parts.snapshot_manager.as_ref().map(|o| o.clone_ref(py)),
            parts.health_engine.as_ref().map(|o| o.clone_ref(py)),
            parts.event_hooks.as_ref().map(|o| o.clone_ref(py)),
            parts.repair_context.as_ref().map(|o| o.clone_ref(py)),
            parts.metrics_provider.as_ref().map(|o| o.clone_ref(py)),
            parts.dry_run,
            parts.stabilize_seconds,
        )
    };
    // The engines as listed now (the dict may change between cycles).
    let mut engines = Vec::new();
    if let Ok(dict) = repair_engines.bind(py).cast::<PyDict>() {
        for (k, v) in dict.iter() {
            let name = k.cast::<PyString>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "repair_engines keys must be str, got {}",
                    type_name(&k)
                ))
            })?;
            engines.push(EngineSlot {
                name: name.to_cow()?.into_owned(),
                kind: engine_kind(&v),
                object: v.unbind(),
            });
        }
    }
    if p.running
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(PyRuntimeError::new_err(
            "a healing cycle is already running on this pipeline; cycles do not overlap",
        ));
    }
    let guard = RunningGuard(p.running.clone());
    let inline = matches!(caller, Caller::Inline);
    let cycle = Cycle {
        inline,
        detection,
        classification,
        engines,
        snapshot_manager,
        health_engine,
        repair_context: options.repair_context.or(context),
        metrics_provider: options.metrics_provider.or(provider),
        stabilize_seconds: options.stabilize_seconds.unwrap_or(stabilize),
        admission: options.admission,
        snapshots: options.snapshots,
        rollback: options.rollback,
        metrics,
        data: CycleData::new(
            unique_id("healing_"),
            now(),
            options.dry_run.unwrap_or(dry_run),
            options.forced,
        ),
        faults: Vec::new(),
        classifications: Vec::new(),
        repairs: Vec::new(),
        context: None,
        fresh: None,
        emitter: Emitter {
            hooks,
            batched: !inline,
            pending: Vec::new(),
            errors: Vec::new(),
            error_count: 0,
        },
        started: Instant::now(),
        state: p.state.clone(),
        caller,
    };
    Ok((cycle, guard))
}

impl Cycle {
    fn emit(
        &mut self,
        t: EventType,
        fill: impl FnOnce(&Cycle, &Bound<'_, PyDict>) -> PyResult<()>,
    ) {
        if !self.emitter.active() {
            return;
        }
        let mut emitter = std::mem::replace(
            &mut self.emitter,
            Emitter {
                hooks: None,
                batched: false,
                pending: Vec::new(),
                errors: Vec::new(),
                error_count: 0,
            },
        );
        let _ = runtime::attach(|py| emitter.emit(py, t, |d| fill(self, d)));
        self.emitter = emitter;
    }

    /// Calls `f(*args, **kwargs)` through the caller (events queued so far go first, in the
    /// same host callback).
    async fn call(
        &mut self,
        f: Py<PyAny>,
        args: Py<PyTuple>,
        kwargs: Option<Py<PyDict>>,
    ) -> Result<Py<PyAny>, CallFail> {
        let (f, publish_errors) = self.emitter.piggyback(f);
        let called = self.caller.call(f, args, kwargs).await;
        if let Some(errors) = publish_errors {
            for e in std::mem::take(&mut *errors.lock()) {
                self.emitter.note_error(e);
            }
        }
        match called {
            Ok(v) => Ok(v),
            Err(CallError::Raised(e)) => gil(|py| call_fail(py, e))
                .map_err(CallFail::from)
                .and_then(Err),
            Err(other) => {
                Err(gil(|py| CallFail::Error(other.describe(py))).unwrap_or(CallFail::Exiting))
            }
        }
    }

    /// Calls the method `name` of `obj` through the caller.
    async fn call_method(
        &mut self,
        obj: &Py<PyAny>,
        name: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
        kwargs: Option<Py<PyDict>>,
    ) -> Result<Py<PyAny>, CallFail> {
        let prepared = gil(|py| -> Result<(Py<PyAny>, Py<PyTuple>), CallFail> {
            let method = obj.bind(py).getattr(name).map_err(|e| call_fail(py, e))?;
            let args = args(py).map_err(|e| call_fail(py, e))?;
            Ok((method.unbind(), args.unbind()))
        })??;
        self.call(prepared.0, prepared.1, kwargs).await
    }

    /// Calls the method `name` of one of our own objects on this thread (Inline path only).
    fn call_direct<'py>(
        py: Python<'py>,
        obj: &Py<PyAny>,
        name: &Bound<'py, PyString>,
        args: Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> Result<Py<PyAny>, CallFail> {
        obj.bind(py)
            .call_method(name, args, kwargs)
            .map(Bound::unbind)
            .map_err(|e| call_fail(py, e))
    }

    fn mark(&mut self, stage: HealingStage) {
        self.data.stages_completed.push(stage);
    }

    fn next_stage(&self) -> HealingStage {
        HealingStage::ALL[self
            .data
            .stages_completed
            .len()
            .min(HealingStage::ALL.len() - 1)]
    }

    fn fail(&mut self, error: String) {
        self.data.failed_stage = Some(self.next_stage());
        self.data.error = Some(error);
        self.data.outcome = HealingOutcome::FAILED;
    }

    /// On the host loop (`Caller::OnHost`) the loop gets a turn between stages.
    async fn run_stages(&mut self) -> Result<(), Stop> {
        self.detect().await?;
        self.mark(HealingStage::STAGE_1_DETECT);
        if self.faults.is_empty() {
            self.data.outcome = HealingOutcome::SKIPPED;
            return Ok(());
        }
        self.caller.yield_point().await;
        self.classify().await?;
        self.mark(HealingStage::STAGE_2_CLASSIFY);
        self.caller.yield_point().await;
        self.snapshot().await?;
        self.mark(HealingStage::STAGE_3_SNAPSHOT);
        self.caller.yield_point().await;
        self.select().await?;
        self.mark(HealingStage::STAGE_4_SELECT_STRATEGY);
        self.caller.yield_point().await;
        self.prepare().await?;
        self.mark(HealingStage::STAGE_5_PREPARE);
        self.caller.yield_point().await;
        self.execute().await?;
        self.mark(HealingStage::STAGE_6_EXECUTE_REPAIR);
        self.caller.yield_point().await;
        self.verify().await?;
        self.mark(HealingStage::STAGE_7_VERIFY);
        self.caller.yield_point().await;
        self.health_check().await?;
        self.mark(HealingStage::STAGE_8_HEALTH_CHECK);
        self.caller.yield_point().await;
        self.rollback().await?;
        self.mark(HealingStage::STAGE_9_ROLLBACK);
        self.caller.yield_point().await;
        self.emitter.flush(&self.caller).await;
        self.stabilize().await?;
        self.mark(HealingStage::STAGE_10_STABILIZE);
        self.learn();
        self.mark(HealingStage::STAGE_11_LEARN);
        self.mark(HealingStage::STAGE_12_REPORT);
        self.data.outcome = self.data.decide_outcome();
        Ok(())
    }

    // -- Stage 1 ------------------------------------------------------------------------------

    async fn detect(&mut self) -> Result<(), Stop> {
        let native = gil(|py| -> Result<Option<Vec<Py<PyAny>>>, Stop> {
            let det = self.detection.bind(py);
            let Ok(engine) = det.cast::<DetectionEngine>() else {
                return Ok(None);
            };
            let Ok(engine) = engine.try_borrow() else {
                return Ok(None);
            };
            let bound: Vec<Option<Bound<'_, PyAny>>> = self
                .metrics
                .iter()
                .map(|m| m.as_ref().map(|m| m.bind(py).clone()))
                .collect();
            let layers = [
                bound[0].as_ref(),
                bound[1].as_ref(),
                bound[2].as_ref(),
                bound[3].as_ref(),
                bound[4].as_ref(),
            ];
            match engine.detect(py, layers) {
                Ok(faults) => Ok(Some(faults.into_iter().map(|f| f.into_any()).collect())),
                Err(e) if is_fatal(py, &e) => Err(Stop::Fatal(e)),
                // Our detection refuses only what it cannot read in the caller's metrics.
                Err(e) => Err(Stop::Input(e)),
            }
        })??;
        let faults = match native {
            Some(f) => f,
            None => {
                let (detection, metrics) = gil(|py| {
                    let m: Vec<Option<Py<PyAny>>> = self
                        .metrics
                        .iter()
                        .map(|m| m.as_ref().map(|m| m.clone_ref(py)))
                        .collect();
                    (self.detection.clone_ref(py), m)
                })?;
                let found = self
                    .call_method(
                        &detection,
                        "detect_faults",
                        move |py| {
                            // The reference passes `metrics or {}` by position.
                            let items: Vec<Py<PyAny>> = metrics
                                .into_iter()
                                .map(|m| m.unwrap_or_else(|| PyDict::new(py).into_any().unbind()))
                                .collect();
                            PyTuple::new(py, items)
                        },
                        None,
                    )
                    .await?;
                gil(|py| -> Result<Vec<Py<PyAny>>, Stop> {
                    let found = found.bind(py);
                    let iter = found.try_iter().map_err(|_| {
                        Stop::Stage(format!(
                            "TypeError: detect_faults() returned {}, expected a list of faults",
                            type_name(found)
                        ))
                    })?;
                    let mut out = Vec::new();
                    for item in iter {
                        out.push(item.map_err(|e| stage_fail(py, e))?.unbind());
                    }
                    Ok(out)
                })??
            }
        };
        let records = gil(|py| -> Result<Vec<FaultRecord>, Stop> {
            faults
                .iter()
                .map(|f| read_fault(f.bind(py)).map_err(|e| stage_fail(py, e)))
                .collect()
        })??;
        self.faults = faults;
        self.data.faults = records;
        if self.emitter.active() {
            for i in 0..self.faults.len() {
                self.emit(EventType::FAULT_DETECTED, |c, d| {
                    let py = d.py();
                    let f = c.faults[i].bind(py);
                    d.set_item("fault_id", &c.data.faults[i].fault_id)?;
                    d.set_item("severity", severity_value(f)?)?;
                    d.set_item("fault_type", &c.data.faults[i].fault_type)
                });
                if self.data.faults[i].critical {
                    self.emit(EventType::CRITICAL_FAULT, |c, d| {
                        let py = d.py();
                        let f = c.faults[i].bind(py);
                        d.set_item("fault_id", &c.data.faults[i].fault_id)?;
                        d.set_item("description", field(f, intern!(py, "description"))?)
                    });
                }
            }
        }
        Ok(())
    }

    // -- Stage 2 ------------------------------------------------------------------------------

    async fn classify(&mut self) -> Result<(), Stop> {
        let n = self.faults.len();
        self.classifications = Vec::with_capacity(n);
        let classification = gil(|py| self.classification.clone_ref(py))?;
        for i in 0..n {
            let native = gil(|py| classify_native(py, &classification, self.faults[i].bind(py)))?;
            let result = match native {
                Some(r) => r,
                None => {
                    let fault = gil(|py| self.faults[i].clone_ref(py))?;
                    self.call_method(
                        &classification,
                        "classify_fault",
                        move |py| PyTuple::new(py, [fault]),
                        None,
                    )
                    .await
                }
            };
            match result {
                Ok(r) => {
                    let category =
                        gil(|py| category_of(r.bind(py)).map_err(|e| stage_fail(py, e)))??;
                    self.data.faults[i].category = category;
                    self.classifications.push(Some(r));
                    self.emit(EventType::FAULT_CLASSIFIED, |c, d| {
                        let py = d.py();
                        d.set_item("fault_id", &c.data.faults[i].fault_id)?;
                        d.set_item("category", &c.data.faults[i].category)?;
                        if let Some(r) = &c.classifications[i] {
                            let r = r.bind(py);
                            d.set_item("confidence", attr(r, intern!(py, "confidence"))?)?;
                            let priority =
                                attr(r, intern!(py, "repair_priority"))?.and_then(|p| label(&p));
                            d.set_item("repair_priority", priority)?;
                        }
                        Ok(())
                    });
                }
                Err(CallFail::Fatal(e)) => return Err(Stop::Fatal(e)),
                Err(CallFail::Exiting) => return Err(Stop::Exiting),
                Err(CallFail::Error(e)) => {
                    self.data.faults[i].classification_error = Some(e.clone());
                    self.classifications.push(None);
                    self.emit(EventType::CLASSIFICATION_FAILED, |c, d| {
                        d.set_item("fault_id", &c.data.faults[i].fault_id)?;
                        d.set_item("error", &e)
                    });
                }
            }
        }
        Ok(())
    }

    // -- Stage 3 ------------------------------------------------------------------------------

    async fn snapshot(&mut self) -> Result<(), Stop> {
        if self.data.dry_run {
            self.data.snapshot = SnapshotRecord::DryRun;
            return Ok(());
        }
        if !self.snapshots {
            self.data.snapshot = SnapshotRecord::Disabled;
            return Ok(());
        }
        let Some(manager) = gil(|py| self.snapshot_manager.as_ref().map(|m| m.clone_ref(py)))?
        else {
            self.data.snapshot = SnapshotRecord::NoManager;
            return Ok(());
        };
        // Our manager, callable here (no providers to run on the host loop, or the Inline
        // path): straight to its Rust entry point, with the metadata as engine values.
        let native = gil(|py| -> Option<PyResult<String>> {
            let m = manager.bind(py).cast::<SnapshotManager>().ok()?;
            let m = m.try_borrow().ok()?;
            if !self.inline && m.has_providers() {
                return None;
            }
            let mut meta = serde_json::Map::new();
            meta.insert("cycle_id".into(), self.data.cycle_id.clone().into());
            meta.insert("fault_count".into(), self.faults.len().into());
            Some(m.create_pre_repair(py, meta))
        })?;
        if let Some(created) = native {
            let created = match created {
                Ok(id) => Ok(id),
                Err(e) => Err(gil(|py| call_fail(py, e))?),
            };
            self.data.snapshot = match created {
                Ok(snapshot_id) => SnapshotRecord::Created { snapshot_id },
                Err(CallFail::Fatal(e)) => return Err(Stop::Fatal(e)),
                Err(CallFail::Exiting) => return Err(Stop::Exiting),
                Err(CallFail::Error(error)) => SnapshotRecord::Failed { error },
            };
            self.emit_snapshot_created();
            return Ok(());
        }
        // Any other manager gets the reference call; ours with state providers, on the Host
        // path, is called on the host loop, where its providers run.
        let (kwargs, ours) = gil(|py| -> PyResult<(Py<PyDict>, bool)> {
            let meta = PyDict::new(py);
            meta.set_item("cycle_id", &self.data.cycle_id)?;
            meta.set_item("fault_count", self.faults.len())?;
            let kw = PyDict::new(py);
            let ours = manager.bind(py).cast::<SnapshotManager>().is_ok();
            if !ours {
                kw.set_item("snapshot_type", "pre_repair")?;
            }
            kw.set_item("metadata", meta)?;
            Ok((kw.unbind(), ours))
        })?
        .map_err(|e| gil(|py| stage_fail(py, e)).unwrap_or(Stop::Exiting))?;
        let method = if ours {
            "_create_pre_repair"
        } else {
            "create_snapshot"
        };
        let created = self
            .call_method(&manager, method, |py| Ok(PyTuple::empty(py)), Some(kwargs))
            .await;
        self.data.snapshot = match created {
            Ok(id) => gil(|py| match id.bind(py).cast::<PyString>() {
                Ok(s) => SnapshotRecord::Created {
                    snapshot_id: s.to_cow().map(|c| c.into_owned()).unwrap_or_default(),
                },
                Err(_) => SnapshotRecord::Failed {
                    error: format!(
                        "create_snapshot() returned {}, expected the snapshot id",
                        type_name(id.bind(py))
                    ),
                },
            })?,
            Err(CallFail::Fatal(e)) => return Err(Stop::Fatal(e)),
            Err(CallFail::Exiting) => return Err(Stop::Exiting),
            Err(CallFail::Error(error)) => SnapshotRecord::Failed { error },
        };
        self.emit_snapshot_created();
        Ok(())
    }

    fn emit_snapshot_created(&mut self) {
        if let SnapshotRecord::Created { .. } = &self.data.snapshot {
            self.emit(EventType::SNAPSHOT_CREATED, |c, d| {
                d.set_item("snapshot_id", c.data.snapshot.snapshot_id())?;
                d.set_item("snapshot_type", "pre_repair")?;
                d.set_item("cycle_id", &c.data.cycle_id)
            });
        }
    }

    // -- Stage 4 ------------------------------------------------------------------------------

    async fn select(&mut self) -> Result<(), Stop> {
        let any_native = self.engines.iter().any(|e| e.kind.is_some());
        for i in 0..self.faults.len() {
            // Our engines' claims, worked out once per fault for all four kinds.
            let native_claims = if any_native {
                self.native_claims(i)
            } else {
                [false; 4]
            };
            let mut candidates: Vec<usize> = Vec::new();
            for e in 0..self.engines.len() {
                let claimed = match self.engines[e].kind {
                    Some(kind) => native_claims[kind_index(kind)],
                    None => self.duck_claims(i, e).await?,
                };
                if claimed {
                    candidates.push(e);
                }
            }
            let names: Vec<&str> = candidates
                .iter()
                .map(|&e| self.engines[e].name.as_str())
                .collect();
            // A short lock; no Python runs under it.
            let chosen = self
                .state
                .lock()
                .learning
                .choose(&self.data.faults[i].fault_type, &names);
            let f = &mut self.data.faults[i];
            f.engine = chosen.map(|c| names[c].to_string());
            f.candidates = names.iter().map(|s| s.to_string()).collect();
        }
        Ok(())
    }

    /// `can_repair(fault, {"classification": ...})` of a duck-typed engine; an error is
    /// recorded for the fault and counts as "does not claim".
    async fn duck_claims(&mut self, i: usize, e: usize) -> Result<bool, Stop> {
        let (engine, fault, cls) = gil(|py| {
            (
                self.engines[e].object.clone_ref(py),
                self.faults[i].clone_ref(py),
                self.classifications[i].as_ref().map(|c| c.clone_ref(py)),
            )
        })?;
        let answer = self
            .call_method(
                &engine,
                "can_repair",
                move |py| {
                    let ctx = PyDict::new(py);
                    ctx.set_item("classification", cls)?;
                    PyTuple::new(py, [fault, ctx.into_any().unbind()])
                },
                None,
            )
            .await
            .and_then(|v| gil(|py| v.bind(py).is_truthy().map_err(|e| call_fail(py, e)))?);
        match answer {
            Ok(b) => Ok(b),
            Err(CallFail::Error(err)) => {
                self.data.faults[i]
                    .claim_errors
                    .push((self.engines[e].name.clone(), err));
                Ok(false)
            }
            Err(other) => Err(other.into()),
        }
    }

    // -- Stage 5 ------------------------------------------------------------------------------

    async fn prepare(&mut self) -> Result<(), Stop> {
        let (before, source) = self.measure_health(false).await?;
        self.data.health.before = before;
        self.data.health.before_source = source;
        // The repair context: a dict, or a callable returning one.
        let given = gil(|py| {
            self.repair_context
                .as_ref()
                .map(|c| (c.clone_ref(py), c.bind(py).is_instance_of::<PyDict>()))
        })?;
        let context = match given {
            None => Ok(None),
            Some((c, true)) => Ok(Some(c)),
            Some((c, false)) => {
                let args = gil(|py| PyTuple::empty(py).unbind())?;
                self.call(c, args, None).await.map(Some)
            }
        };
        match context {
            Ok(None) => {}
            Ok(Some(ctx)) => gil(|py| {
                let ctx = ctx.bind(py);
                if ctx.is_none() {
                    return;
                }
                match ctx.cast::<PyDict>() {
                    Ok(d) => {
                        self.data.context_keys = d
                            .keys()
                            .iter()
                            .filter_map(|k| k.cast::<PyString>().ok().map(|s| s.to_string()))
                            .collect();
                        self.context = Some(d.clone().unbind());
                    }
                    Err(_) => {
                        self.data.context_error = Some(format!(
                            "repair_context() returned {}, expected a dict",
                            type_name(ctx)
                        ));
                    }
                }
            })?,
            Err(CallFail::Error(e)) => self.data.context_error = Some(e),
            Err(other) => return Err(other.into()),
        }
        self.bridge_verify()?;
        Ok(())
    }

    /// Lets the repair engines verify against the metrics provider (see `FreshVerifier`) when
    /// the context has no `verify`. A coroutine provider cannot be called from inside a
    /// synchronous repair, so it is not bridged.
    fn bridge_verify(&mut self) -> Result<(), Stop> {
        if self.data.dry_run {
            return Ok(());
        }
        gil(|py| -> PyResult<()> {
            let Some(provider) = &self.metrics_provider else {
                return Ok(());
            };
            if let Some(ctx) = &self.context {
                if ctx.bind(py).contains("verify")? {
                    return Ok(());
                }
            }
            let inspect = py.import("inspect")?;
            if inspect
                .call_method1("iscoroutinefunction", (provider.bind(py),))?
                .is_truthy()?
            {
                return Ok(());
            }
            let ctx = match &self.context {
                Some(c) => c.bind(py).copy()?,
                None => PyDict::new(py),
            };
            ctx.set_item(
                "verify",
                Py::new(
                    py,
                    FreshVerifier {
                        provider: provider.clone_ref(py),
                    },
                )?,
            )?;
            self.context = Some(ctx.unbind());
            self.data.verify_from_provider = true;
            Ok(())
        })?
        .map_err(|e| gil(|py| stage_fail(py, e)).unwrap_or(Stop::Exiting))
    }

    /// Health from the metrics given (`after`: the fresh metrics, where refreshed).
    async fn measure_health(&mut self, after: bool) -> Result<(f64, HealthSource), Stop> {
        let (layers, engine) = gil(|py| {
            let layers: [Option<Py<PyAny>>; 5] = std::array::from_fn(|i| {
                let fresh = if after {
                    self.fresh.as_ref().and_then(|f| f.dicts[i].as_ref())
                } else {
                    None
                };
                match fresh {
                    Some(d) => Some(d.clone_ref(py).into_any()),
                    None => self.metrics[i].as_ref().map(|m| m.clone_ref(py)),
                }
            });
            (layers, self.health_engine.as_ref().map(|h| h.clone_ref(py)))
        })?;
        let Some(engine) = engine else {
            let maps = gil(|py| -> Result<[Metrics; 5], Stop> {
                let mut out: [Metrics; 5] = Default::default();
                for (i, l) in layers.iter().enumerate() {
                    out[i] = to_map(l.as_ref().map(|l| l.bind(py)), LAYER_PARAMS[i])
                        .map_err(|e| stage_fail(py, e))?;
                }
                Ok(out)
            })??;
            let score =
                formula_health(&maps).map_err(|e| Stop::Stage(format!("ValueError: {e}")))?;
            return Ok((score, HealthSource::Formula));
        };
        if let Some(score) = gil(|py| health_native(py, &engine, &layers, after))? {
            return score
                .map(|s| (s, HealthSource::HealthEngine))
                .map_err(|e| gil(|py| stage_fail(py, e)).unwrap_or(Stop::Exiting));
        }
        let kwargs = gil(|py| -> PyResult<Py<PyDict>> {
            let kw = PyDict::new(py);
            for (i, l) in layers.iter().enumerate() {
                kw.set_item(LAYER_PARAMS[i], l)?;
            }
            Ok(kw.unbind())
        })?
        .map_err(|e| gil(|py| stage_fail(py, e)).unwrap_or(Stop::Exiting))?;
        let score = self
            .call_method(
                &engine,
                "compute_health_score",
                |py| Ok(PyTuple::empty(py)),
                Some(kwargs),
            )
            .await?;
        gil(|py| {
            let s = score.bind(py);
            let value = match float_of(s) {
                Some(v) => Some(v),
                None => attr(s, intern!(py, "overall_score"))
                    .map_err(|e| stage_fail(py, e))?
                    .and_then(|v| float_of(&v)),
            };
            value.map(|v| (v, HealthSource::HealthEngine)).ok_or_else(|| {
                Stop::Stage(format!(
                    "TypeError: compute_health_score() returned {}, expected a HealthScore or a number",
                    type_name(s)
                ))
            })
        })?
    }

    // -- Stage 6 ------------------------------------------------------------------------------

    async fn execute(&mut self) -> Result<(), Stop> {
        self.repairs = (0..self.faults.len()).map(|_| None).collect();
        if self.data.dry_run {
            return Ok(());
        }
        for i in 0..self.faults.len() {
            if i > 0 {
                // On the host loop one repair per step.
                self.caller.yield_point().await;
            }
            let Some(engine_name) = self.data.faults[i].engine.clone() else {
                continue;
            };
            let Some(slot) = self.engines.iter().position(|e| e.name == engine_name) else {
                continue;
            };
            if let Some(gate) = self.admission.clone() {
                // Our detector's fault gives both from its engine value (reading the Python
                // attribute would build the metrics dict); any other fault is read as Python.
                let (severity, metrics) = gil(|py| {
                    let f = self.faults[i].bind(py);
                    let ours = f.cast::<DetectedFault>().ok().and_then(|d| {
                        let d = d.try_borrow().ok()?;
                        let core = d.engine_fault()?;
                        Some((Some(core.severity.value().to_owned()), core.metrics.clone()))
                    });
                    ours.unwrap_or_else(|| {
                        let severity = f
                            .getattr(intern!(py, "severity"))
                            .and_then(|s| s.getattr(intern!(py, "value")).or(Ok(s)))
                            .and_then(|v| v.extract::<String>())
                            .ok();
                        let metrics = f
                            .getattr(intern!(py, "metrics"))
                            .ok()
                            .and_then(|m| to_map(Some(&m), "fault.metrics").ok())
                            .unwrap_or_default();
                        (severity, metrics)
                    })
                })?;
                let fault_type = &self.data.faults[i].fault_type;
                let measured = self.data.health.before_source != HealthSource::NotMeasured;
                let request = AdmissionRequest {
                    health: measured.then_some(self.data.health.before),
                    target: crate::engine::autorepair_engine::target_key(fault_type, &metrics),
                    engine: &engine_name,
                    severity,
                };
                let admitted = gate(&request);
                if let Err(reason) = admitted {
                    let record = RepairRecord {
                        engine: engine_name.clone(),
                        status: Some(RepairStatus::SKIPPED),
                        success_rate: 0.0,
                        duration: 0.0,
                        verification_passed: false,
                        error: Some(format!("{NOT_ADMITTED}{reason}")),
                        still_present: None,
                        awaiting_evidence: false,
                    };
                    let fault_id = self.data.faults[i].fault_id.clone();
                    let object = gil(|py| skipped_result(py, &fault_id, &record))?;
                    self.data.faults[i].repair = Some(record);
                    self.repairs[i] = object.map(RepairSlot::Object);
                    self.emit(EventType::AUTOREPAIR_THROTTLED, |c, d| {
                        d.set_item("fault_id", &c.data.faults[i].fault_id)?;
                        d.set_item("reason", &reason)
                    });
                    continue;
                }
                self.data.faults[i].admitted_target = Some(request.target);
            }
            self.emit(EventType::REPAIR_STARTED, |c, d| {
                d.set_item("fault_id", &c.data.faults[i].fault_id)?;
                d.set_item("repair_type", &engine_name)
            });
            let native = if self.inline {
                self.engines[slot].kind
            } else {
                None
            };
            let prepared = gil(|py| -> PyResult<_> {
                let ctx = match (&self.context, native) {
                    // Our engines never read the classification from the context: the
                    // caller's dict as it is.
                    (Some(c), Some(_)) => c.clone_ref(py),
                    (None, Some(_)) => PyDict::new(py).unbind(),
                    // Others get the caller's context plus this fault's classification, in a
                    // new dict.
                    (c, None) => {
                        let ctx = match c {
                            Some(c) => c.bind(py).copy()?,
                            None => PyDict::new(py),
                        };
                        ctx.set_item(
                            intern!(py, "classification"),
                            self.classifications[i].as_ref().map(|c| c.clone_ref(py)),
                        )?;
                        ctx.unbind()
                    }
                };
                Ok((
                    self.engines[slot].object.clone_ref(py),
                    self.faults[i].clone_ref(py),
                    ctx,
                ))
            })?;
            let (engine, fault, ctx) =
                prepared.map_err(|e| gil(|py| stage_fail(py, e)).unwrap_or(Stop::Exiting))?;
            // Host path: a repair with coroutine actions runs off the host loop (host_proxy).
            let off_host = match (&self.caller, self.engines[slot].kind) {
                (Caller::Host { host, timeout } | Caller::OnHost { host, timeout }, Some(kind))
                    if gil(|py| host_proxy::needs_off_host(ctx.bind(py)))? =>
                {
                    Some((kind, host.clone(), *timeout))
                }
                _ => None,
            };
            let started = Instant::now();
            let outcome = if let Some((kind, host, timeout)) = off_host {
                self.emitter.flush(&self.caller).await;
                match host_proxy::repair_off_host(engine, kind, fault, ctx, host, timeout).await {
                    Ok(Ok(r)) => Ok(RepairSlot::Object(r)),
                    Ok(Err(e)) => Err(gil(|py| call_fail(py, e))?),
                    Err(_) => Err(CallFail::Exiting),
                }
            } else if let Some(kind) = native {
                // Our engine, on this thread: straight to its Rust entry point; its result stays
                // engine data until someone looks at it.
                gil(|py| -> Result<RepairSlot, CallFail> {
                    let base = engine
                        .bind(py)
                        .cast::<RepairStrategy>()
                        .map_err(|e| call_fail(py, e.into()))?;
                    let base = base.try_borrow().map_err(|e| call_fail(py, e.into()))?;
                    let done =
                        base.repair_report(py, kind, fault.bind(py), Some(ctx.bind(py).as_any()));
                    done.map(RepairSlot::Native).map_err(|e| call_fail(py, e))
                })?
            } else {
                // On the Host path the whole repair runs on the host loop, so the actions the
                // engine calls run there too.
                self.call_method(
                    &engine,
                    "repair",
                    move |py| PyTuple::new(py, [fault, ctx.into_any()]),
                    None,
                )
                .await
                .map(RepairSlot::Object)
            };
            let elapsed = started.elapsed().as_secs_f64();
            let fault_id = self.data.faults[i].fault_id.clone();
            let (record, object) = match outcome {
                Ok(RepairSlot::Native(done)) => (
                    native_record(&done, &engine_name),
                    Some(RepairSlot::Native(done)),
                ),
                Ok(RepairSlot::Object(result)) => {
                    let (record, object) =
                        gil(|py| read_repair(py, result, &engine_name, &fault_id, elapsed))?;
                    (record, object.map(RepairSlot::Object))
                }
                Err(CallFail::Error(error)) => {
                    let record = RepairRecord {
                        engine: engine_name.clone(),
                        status: None,
                        success_rate: 0.0,
                        duration: elapsed,
                        verification_passed: false,
                        error: Some(error),
                        still_present: None,
                        awaiting_evidence: false,
                    };
                    let object = gil(|py| failed_result(py, &fault_id, &record))?;
                    (record, object.map(RepairSlot::Object))
                }
                Err(other) => return Err(other.into()),
            };
            let status = record.effective_status();
            self.data.faults[i].repair = Some(record);
            self.repairs[i] = object;
            self.emit(EventType::REPAIR_COMPLETED, |c, d| {
                let r = c.data.faults[i].repair.as_ref();
                d.set_item("fault_id", &c.data.faults[i].fault_id)?;
                d.set_item("repair_type", r.map(|r| r.engine.as_str()))?;
                d.set_item("success", status == RepairStatus::SUCCESS)?;
                d.set_item("duration", r.map(|r| r.duration))?;
                d.set_item("status", status.value())
            });
            if status == RepairStatus::FAILED {
                self.emit(EventType::REPAIR_FAILED, |c, d| {
                    let r = c.data.faults[i].repair.as_ref();
                    d.set_item("fault_id", &c.data.faults[i].fault_id)?;
                    d.set_item("repair_type", r.map(|r| r.engine.as_str()))?;
                    d.set_item("error", r.and_then(|r| r.error.as_deref()))
                });
            }
        }
        Ok(())
    }

    // -- Stage 7 ------------------------------------------------------------------------------

    async fn verify(&mut self) -> Result<(), Stop> {
        if self.data.dry_run {
            return Ok(());
        }
        let provider = gil(|py| self.metrics_provider.as_ref().map(|p| p.clone_ref(py)))?;
        if let Some(provider) = provider {
            let args = gil(|py| PyTuple::empty(py).unbind())?;
            match self.call(provider, args, None).await {
                Ok(v) => match gil(|py| parse_fresh(v.bind(py)))? {
                    Ok((fresh, refreshed)) => {
                        self.data.health.refreshed_layers = refreshed;
                        self.fresh = Some(fresh);
                    }
                    Err(e) => self.data.health.after_note = Some(format!("metrics_provider: {e}")),
                },
                Err(CallFail::Error(e)) => {
                    self.data.health.after_note = Some(format!("metrics_provider raised {e}"))
                }
                Err(other) => return Err(other.into()),
            }
        }
        if let Some(fresh) = &self.fresh {
            self.data.verification_source = "fresh_metrics";
            for f in self.data.faults.iter_mut() {
                let present = condition_present(&f.fault_type, &fresh.maps);
                if let Some(r) = f.repair.as_mut() {
                    r.still_present = present;
                }
            }
        }
        for i in 0..self.data.faults.len() {
            let Some(r) = &self.data.faults[i].repair else {
                continue;
            };
            // Fresh metrics that do not mention the fault yet (a restart nothing has ticked
            // since) are not evidence that it is gone.
            let gone = r.still_present == Some(false) && !r.awaiting_evidence;
            let verified = r.verified();
            if verified {
                self.emit(EventType::REPAIR_VERIFIED, |c, d| {
                    d.set_item("fault_id", &c.data.faults[i].fault_id)?;
                    d.set_item(
                        "repair_type",
                        c.data.faults[i].repair.as_ref().map(|r| r.engine.as_str()),
                    )?;
                    d.set_item("source", c.data.verification_source)
                });
            }
            if gone {
                self.emit(EventType::FAULT_RESOLVED, |c, d| {
                    d.set_item("fault_id", &c.data.faults[i].fault_id)
                });
            }
        }
        Ok(())
    }

    // -- Stage 8 ------------------------------------------------------------------------------

    async fn health_check(&mut self) -> Result<(), Stop> {
        if self.fresh.is_some() {
            let (after, source) = self.measure_health(true).await?;
            self.data.health.after = after;
            self.data.health.after_source = source;
        } else {
            self.data.health.after = self.data.health.before;
            self.data.health.after_source = HealthSource::NotMeasured;
            if self.data.health.after_note.is_none() {
                self.data.health.after_note = Some(if self.data.dry_run {
                    "dry run: health was not measured again".into()
                } else {
                    "no metrics_provider: health was not measured again, so health_after equals health_before".into()
                });
            }
        }
        let h = self.data.health.clone();
        let payload = |c: &Cycle, d: &Bound<'_, PyDict>| -> PyResult<()> {
            d.set_item("cycle_id", &c.data.cycle_id)?;
            d.set_item("health_before", h.before)?;
            d.set_item("health_after", h.after)?;
            d.set_item("health_delta", h.delta())
        };
        if h.after < h.before {
            self.emit(EventType::HEALTH_DEGRADED, payload);
        } else if h.after > h.before {
            self.emit(EventType::HEALTH_IMPROVED, payload);
        }
        if h.after < HEALTH_CRITICAL_BELOW {
            self.emit(EventType::HEALTH_CRITICAL, |_, d| {
                d.set_item("overall_score", h.after)
            });
        }
        Ok(())
    }

    // -- Stage 9 ------------------------------------------------------------------------------

    async fn rollback(&mut self) -> Result<(), Stop> {
        if self.data.dry_run || !self.data.health.declined() {
            return Ok(());
        }
        self.data.rollback.needed = true;
        let id = self.data.snapshot.snapshot_id().map(str::to_owned);
        self.data.rollback.snapshot_id = id.clone();
        if !self.rollback {
            self.data.rollback.disabled = true;
            self.data.rollback.reason =
                Some("health declined after repair; not restored: rollback disabled (enable_rollback=False)".into());
            return Ok(());
        }
        let manager = gil(|py| self.snapshot_manager.as_ref().map(|m| m.clone_ref(py)))?;
        let (Some(id), Some(manager)) = (id, manager) else {
            self.data.rollback.reason = Some(match &self.data.snapshot {
                SnapshotRecord::Failed { error } => {
                    format!("no pre-repair snapshot to restore: it failed ({error})")
                }
                SnapshotRecord::Disabled => {
                    "no pre-repair snapshot to restore: snapshots disabled (enable_snapshots=False)"
                        .into()
                }
                _ => "no pre-repair snapshot to restore (no snapshot manager)".into(),
            });
            return Ok(());
        };
        let (native, has_report) = gil(|py| {
            let m = manager.bind(py);
            let native = m.is_instance_of::<SnapshotManager>();
            (
                native,
                native || m.hasattr("get_last_restore").unwrap_or(false),
            )
        })?;
        // Our manager restores through its state providers: inline only on the Inline path.
        let restored = if native && self.inline {
            gil(|py| {
                let args = PyTuple::new(py, [id.as_str()]).map_err(|e| call_fail(py, e))?;
                Self::call_direct(py, &manager, intern!(py, "restore_snapshot"), args, None)
            })?
        } else {
            let id = id.clone();
            self.call_method(
                &manager,
                "restore_snapshot",
                move |py| PyTuple::new(py, [id]),
                None,
            )
            .await
        };
        let ok = match restored {
            Ok(v) => gil(|py| v.bind(py).is_truthy().unwrap_or(false))?,
            Err(CallFail::Error(e)) => {
                self.data.rollback.restore_ok = Some(false);
                self.data.rollback.reason = Some(format!("restore_snapshot raised {e}"));
                return Ok(());
            }
            Err(other) => return Err(other.into()),
        };
        self.data.rollback.restore_ok = Some(ok);
        // What was restored: the manager's report of its last restore, when it has one.
        if has_report {
            let report = if native {
                gil(|py| {
                    Self::call_direct(
                        py,
                        &manager,
                        intern!(py, "get_last_restore"),
                        PyTuple::empty(py),
                        None,
                    )
                })?
            } else {
                self.call_method(
                    &manager,
                    "get_last_restore",
                    |py| Ok(PyTuple::empty(py)),
                    None,
                )
                .await
            };
            match report {
                Ok(r) => gil(|py| read_restore_report(r.bind(py), &mut self.data.rollback))?,
                Err(CallFail::Error(e)) => {
                    self.data.rollback.reason = Some(format!("get_last_restore raised {e}"))
                }
                Err(other) => return Err(other.into()),
            }
        }
        let rb = &mut self.data.rollback;
        rb.performed = ok && rb.restored.as_ref().is_none_or(|r| !r.is_empty());
        if rb.reason.is_none() || (ok && rb.performed) {
            rb.reason = Some(if rb.performed {
                "health declined after repair: the pre-repair state was restored".into()
            } else if !ok {
                "health declined after repair, but the pre-repair snapshot could not be restored"
                    .into()
            } else {
                "health declined after repair, but nothing was restored: the snapshot manager has no state provider"
                    .into()
            });
        }
        if ok {
            self.emit(EventType::SNAPSHOT_RESTORED, |c, d| {
                d.set_item("snapshot_id", &c.data.rollback.snapshot_id)
            });
        }
        if self.data.rollback.performed {
            self.emit(EventType::ROLLBACK_PERFORMED, |c, d| {
                d.set_item("cycle_id", &c.data.cycle_id)?;
                d.set_item("snapshot_id", &c.data.rollback.snapshot_id)?;
                d.set_item("restored", &c.data.rollback.restored)
            });
        }
        Ok(())
    }

    // -- Stage 10 -----------------------------------------------------------------------------

    async fn stabilize(&mut self) -> Result<(), Stop> {
        let seconds = self.stabilize_seconds;
        self.data.stabilize.requested = seconds;
        if self.data.dry_run {
            self.data.stabilize.note = Some("dry run: no wait".into());
            return Ok(());
        }
        if seconds <= 0.0 {
            return Ok(());
        }
        let started = Instant::now();
        let d = Duration::from_secs_f64(seconds);
        // Inline: the GIL is released while this thread waits; on a loop: its timer.
        self.caller.sleep(d).await.map_err(|_| Stop::Exiting)?;
        self.data.stabilize.waited = started.elapsed().as_secs_f64();
        Ok(())
    }

    // -- Stage 11 -----------------------------------------------------------------------------

    fn learn(&mut self) {
        if self.data.dry_run {
            return;
        }
        let mut learned = Vec::new();
        {
            let mut st = self.state.lock();
            for f in &self.data.faults {
                if let Some(r) = &f.repair {
                    let rec = st
                        .learning
                        .record(&f.fault_type, &r.engine, r.learned_status());
                    learned.push((f.fault_type.clone(), r.engine.clone(), rec));
                }
            }
        }
        self.data.learned = learned;
    }

    // -- Results ------------------------------------------------------------------------------

    /// Builds the result, records it in the pipeline's history and statistics, and publishes
    /// the end-of-cycle event.
    fn finish(&mut self) -> Result<Py<HealingResult>, Stop> {
        self.data.duration = self.started.elapsed().as_secs_f64().max(1e-9);
        if self.emitter.error_count > 0 {
            // Recorded for the caller; a failing subscriber does not fail the cycle.
            self.data.event_errors = std::mem::take(&mut self.emitter.errors);
        }
        let data = Arc::new(std::mem::replace(
            &mut self.data,
            CycleData::new(String::new(), now(), false, false),
        ));
        let made = gil(
            |py| -> PyResult<(Py<HealingResult>, Option<Py<HealingResult>>)> {
                let objects = Arc::new(CycleObjects {
                    faults: std::mem::take(&mut self.faults),
                    classifications: self.classifications.drain(..).flatten().collect(),
                    repairs: self.repairs.drain(..).flatten().collect(),
                });
                let result = Py::new(py, make_result(py, &data, objects)?)?;
                let evicted = {
                    let mut st = self.state.lock();
                    st.stats.record(
                        data.outcome,
                        data.duration,
                        data.health_improvement(),
                        data.dry_run,
                    );
                    st.history.push(result.clone_ref(py))
                };
                Ok((result, evicted))
            },
        )?;
        let (result, evicted) =
            made.map_err(|e| gil(|py| stage_fail(py, e)).unwrap_or(Stop::Exiting))?;
        // The evicted result is released after the lock, with the GIL.
        let _ = gil(move |_| drop(evicted));
        let t = if data.error.is_some() {
            EventType::HEALING_CYCLE_FAILED
        } else {
            EventType::HEALING_CYCLE_COMPLETED
        };
        if self.emitter.active() {
            let tally = data.tally();
            let (outcome, faults, improvement) = (
                data.outcome.value(),
                data.faults.len(),
                data.health_improvement(),
            );
            let error = data.error.clone();
            self.emit(t, |_, d| {
                d.set_item("cycle_id", &data.cycle_id)?;
                d.set_item("outcome", outcome)?;
                d.set_item("faults_detected", faults)?;
                d.set_item("faults_repaired", tally.repaired)?;
                d.set_item("health_improvement", improvement)?;
                if let Some(e) = &error {
                    d.set_item("error", e)?;
                }
                Ok(())
            });
        }
        Ok(result)
    }
}

impl Cycle {
    /// Whether each of our four engine kinds claims fault `i` (as `repair_strategies::claims`
    /// decides), with the handler rules of a fault type read once per pipeline.
    fn native_claims(&self, i: usize) -> [bool; 4] {
        let f = &self.data.faults[i];
        let memo = self
            .state
            .lock()
            .claims_memo
            .get(f.fault_type.as_str())
            .copied();
        let handled = match memo {
            Some(h) => h,
            None => {
                let h = EngineKind::ALL.map(|k| handler_for(k, &f.fault_type).is_some());
                let mut st = self.state.lock();
                if st.claims_memo.len() >= CLAIMS_MEMO_CAP {
                    st.claims_memo.clear();
                }
                st.claims_memo.insert(f.fault_type.clone(), h);
                h
            }
        };
        if handled.iter().any(|h| *h) {
            handled
        } else {
            // No handler anywhere: the keyword fallback, which reads the category too.
            EngineKind::ALL.map(|k| claims(k, &f.fault_type, f.category.as_deref()))
        }
    }
}

fn kind_index(kind: EngineKind) -> usize {
    EngineKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

/// Our ClassificationEngine, called directly; None for any other classifier.
fn classify_native(
    py: Python<'_>,
    engine: &Py<PyAny>,
    fault: &Bound<'_, PyAny>,
) -> Option<Result<Py<PyAny>, CallFail>> {
    let engine = engine.bind(py).cast::<ClassificationEngine>().ok()?;
    let engine = engine.try_borrow().ok()?;
    Some(
        engine
            .classify_fault(py, fault)
            .map(|r| r.into_any())
            .map_err(|e| call_fail(py, e)),
    )
}

/// Our HealthEngine, called directly; None for any other health engine. `record` adds the
/// score to its history (the pipeline records the health after each cycle's repairs, so the
/// trend follows the healing cycles).
fn health_native(
    py: Python<'_>,
    engine: &Py<PyAny>,
    layers: &[Option<Py<PyAny>>; 5],
    record: bool,
) -> Option<PyResult<f64>> {
    let engine = engine.bind(py).cast::<HealthEngine>().ok()?;
    let engine = engine.try_borrow().ok()?;
    let b: Vec<Option<Bound<'_, PyAny>>> = layers
        .iter()
        .map(|l| l.as_ref().map(|l| l.bind(py).clone()))
        .collect();
    let score = engine.compute_health_score(
        py,
        b[0].as_ref(),
        b[1].as_ref(),
        b[2].as_ref(),
        b[3].as_ref(),
        b[4].as_ref(),
        None,
        record,
    );
    Some(score.and_then(|s| {
        let s = s.bind(py).borrow();
        match s.core.as_ref().filter(|_| !s.modified) {
            Some(h) => Ok(h.overall),
            None => float_of(&s.overall_score.get(py)?.into_bound(py))
                .ok_or_else(|| PyTypeError::new_err("HealthScore.overall_score is not a number")),
        }
    }))
}

/// The category of a classification result, as its value (`"structural"`).
fn category_of(result: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if let Ok(ours) = result.cast::<ClassificationResult>() {
        if let Ok(r) = ours.try_borrow() {
            if let Some(c) = r.core.as_ref().filter(|_| !r.modified) {
                return Ok(Some(c.category.value().to_owned()));
            }
        }
    }
    Ok(attr(result, intern!(result.py(), "category"))?.and_then(|c| label(&c)))
}

/// The Python objects of a finished cycle, shared by the lazy fields of its context.
struct CycleObjects {
    faults: Vec<Py<PyAny>>,
    classifications: Vec<Py<PyAny>>,
    repairs: Vec<RepairSlot>,
}

/// What a repair engine returned, and then the repair result in a cycle's context: a Python
/// object, or our engine's report, which becomes a `RepairResult` when the context's repairs
/// are first read.
// Nearly every slot holds our report, so boxing it would only add an allocation per repair.
#[allow(clippy::large_enum_variant)]
enum RepairSlot {
    Object(Py<PyAny>),
    Native(RepairDone),
}

fn native_record(done: &RepairDone, engine: &str) -> RepairRecord {
    let r = &done.report;
    let error = if r.status == RepairStatus::FAILED {
        r.metadata.get("error").map(|e| match e {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    } else {
        None
    };
    RepairRecord {
        engine: engine.to_owned(),
        status: Some(r.status),
        success_rate: r.success_rate,
        duration: done.duration,
        verification_passed: r.verification_passed,
        error,
        still_present: None,
        awaiting_evidence: r.awaiting_evidence(),
    }
}

fn list_of(py: Python<'_>, items: &[Py<PyAny>]) -> PyResult<Py<PyAny>> {
    Ok(PyList::new(py, items.iter().map(|i| i.clone_ref(py)))?
        .into_any()
        .unbind())
}

fn repairs_list(py: Python<'_>, slots: &[RepairSlot]) -> PyResult<Py<PyAny>> {
    let list = PyList::empty(py);
    for slot in slots {
        match slot {
            RepairSlot::Object(o) => list.append(o.clone_ref(py))?,
            RepairSlot::Native(done) => list.append(done.to_py(py)?)?,
        }
    }
    Ok(list.into_any().unbind())
}

fn make_context(
    py: Python<'_>,
    data: &Arc<CycleData>,
    objects: &Arc<CycleObjects>,
) -> PyResult<HealingContext> {
    let (o1, o2, o3) = (objects.clone(), objects.clone(), objects.clone());
    let (d1, d2, d3) = (data.clone(), data.clone(), data.clone());
    Ok(HealingContext {
        cycle_id: Lazy::ready(PyString::new(py, &data.cycle_id).into_any().unbind()),
        faults: Lazy::later(move |py| list_of(py, &o1.faults)),
        classifications: Lazy::later(move |py| list_of(py, &o2.classifications)),
        repairs: Lazy::later(move |py| repairs_list(py, &o3.repairs)),
        snapshot_id: Lazy::ready(match data.snapshot.snapshot_id() {
            Some(id) => PyString::new(py, id).into_any().unbind(),
            None => py.None(),
        }),
        health_before: Lazy::ready(PyFloat::new(py, data.health.before).into_any().unbind()),
        health_after: Lazy::ready(PyFloat::new(py, data.health.after).into_any().unbind()),
        stage_results: Lazy::later(move |py| {
            let out = PyDict::new(py);
            for stage in &d1.stages_completed {
                out.set_item(
                    enums::to_py(py, *stage)?,
                    from_map(py, &d1.stage_result(*stage))?,
                )?;
            }
            Ok(out.into_any().unbind())
        }),
        metadata: Lazy::later(move |py| Ok(from_map(py, &d2.metadata())?.into_any().unbind())),
        timestamp: Lazy::later(move |py| datetime_to_py(py, &d3.started)),
        modified: false,
    })
}

fn make_result(
    py: Python<'_>,
    data: &Arc<CycleData>,
    objects: Arc<CycleObjects>,
) -> PyResult<HealingResult> {
    let tally = data.tally();
    let ended = now();
    let (d1, d2) = (data.clone(), data.clone());
    Ok(HealingResult {
        cycle_id: Lazy::ready(PyString::new(py, &data.cycle_id).into_any().unbind()),
        outcome: Lazy::ready(enums::to_py(py, data.outcome)?),
        faults_detected: Lazy::ready(data.faults.len().into_pyobject(py)?.into_any().unbind()),
        faults_repaired: Lazy::ready(tally.repaired.into_pyobject(py)?.into_any().unbind()),
        health_improvement: Lazy::ready(
            PyFloat::new(py, data.health_improvement())
                .into_any()
                .unbind(),
        ),
        duration: Lazy::ready(PyFloat::new(py, data.duration).into_any().unbind()),
        stages_completed: Lazy::later(move |py| {
            let list = PyList::empty(py);
            for s in &d1.stages_completed {
                list.append(enums::to_py(py, *s)?)?;
            }
            Ok(list.into_any().unbind())
        }),
        rollback_performed: Lazy::ready(
            PyBool::new(py, data.rollback.performed)
                .to_owned()
                .into_any()
                .unbind(),
        ),
        context: Lazy::later(move |py| {
            Ok(Py::new(py, make_context(py, &d2, &objects)?)?.into_any())
        }),
        timestamp: Lazy::later(move |py| datetime_to_py(py, &ended)),
        core: Some(data.clone()),
        modified: false,
    })
}

// ------------------------------------------------------------------------------------------
// Reading faults, repairs, restore reports and fresh metrics
// ------------------------------------------------------------------------------------------

/// The fault as the pipeline tracks it: ours are read from the engine value, others
/// duck-typed (`fault_id`, `fault_type`, `severity`).
fn read_fault(fault: &Bound<'_, PyAny>) -> PyResult<FaultRecord> {
    let py = fault.py();
    if let Ok(ours) = fault.cast::<DetectedFault>() {
        if let Ok(obj) = ours.try_borrow() {
            if let Some(core) = obj.engine_fault() {
                return Ok(FaultRecord {
                    fault_id: core.fault_id.clone(),
                    fault_type: core.fault_type.to_owned(),
                    critical: core.severity == FaultSeverity::CRITICAL,
                    ..FaultRecord::default()
                });
            }
        }
    }
    let text = |name: &Bound<'_, PyString>, default: &str| -> PyResult<String> {
        Ok(match field(fault, name)? {
            Some(v) => match v.cast::<PyString>() {
                Ok(s) => s.to_cow()?.into_owned(),
                Err(_) => v.str()?.to_cow()?.into_owned(),
            },
            None => default.to_owned(),
        })
    };
    let fault_id = text(intern!(py, "fault_id"), "unknown")?;
    let fault_type = text(intern!(py, "fault_type"), "unknown")?;
    let critical = match field(fault, intern!(py, "severity"))? {
        None => false,
        Some(s) => match label(&s) {
            Some(l) => l.to_lowercase().contains("critical"),
            None => s.str()?.to_cow()?.to_lowercase().contains("critical"),
        },
    };
    Ok(FaultRecord {
        fault_id,
        fault_type,
        critical,
        ..FaultRecord::default()
    })
}

fn severity_value<'py>(fault: &Bound<'py, PyAny>) -> PyResult<Option<String>> {
    Ok(field(fault, intern!(fault.py(), "severity"))?.and_then(|s| label(&s)))
}

/// Reads a repair engine's result; anything unreadable makes the repair FAILED with the
/// reason recorded.
fn read_repair(
    py: Python<'_>,
    result: Py<PyAny>,
    engine: &str,
    fault_id: &str,
    elapsed: f64,
) -> (RepairRecord, Option<Py<PyAny>>) {
    let r = result.bind(py);
    let mut record = RepairRecord {
        engine: engine.to_owned(),
        status: None,
        success_rate: 0.0,
        duration: elapsed,
        verification_passed: false,
        error: None,
        still_present: None,
        awaiting_evidence: false,
    };
    let status = attr(r, intern!(py, "status")).ok().flatten();
    match status
        .as_ref()
        .map(|s| enums::from_py::<RepairStatus>(s, "status"))
    {
        Some(Ok(s)) => record.status = Some(s),
        Some(Err(e)) => {
            record.error = Some(format!(
                "repair() returned an unreadable status: {}",
                error_text(py, &e)
            ))
        }
        None => {
            record.error = Some(format!(
                "repair() returned {} without a status, expected a RepairResult",
                type_name(r)
            ))
        }
    }
    if record.status.is_some() {
        record.verification_passed = attr(r, intern!(py, "verification_passed"))
            .ok()
            .flatten()
            .and_then(|v| v.is_truthy().ok())
            .unwrap_or(false);
        record.success_rate = attr(r, intern!(py, "success_rate"))
            .ok()
            .flatten()
            .and_then(|v| float_of(&v))
            .unwrap_or(0.0);
        if let Some(d) = attr(r, intern!(py, "duration"))
            .ok()
            .flatten()
            .and_then(|v| float_of(&v))
        {
            record.duration = d;
        }
        // A failed repair says why in its metadata, a partial one whether it awaits evidence
        // (read only then: building it costs).
        if matches!(
            record.status,
            Some(RepairStatus::FAILED | RepairStatus::PARTIAL)
        ) {
            if let Some(Ok(meta)) = attr(r, intern!(py, "metadata"))
                .ok()
                .flatten()
                .map(|m| m.cast_into::<PyDict>())
            {
                if record.status == Some(RepairStatus::FAILED) {
                    if let Ok(Some(e)) = meta.get_item("error") {
                        record.error = label(&e).or_else(|| e.str().ok().map(|s| s.to_string()));
                    }
                } else if let Ok(Some(reason)) = meta.get_item("reason") {
                    record.awaiting_evidence = reason
                        .cast::<PyString>()
                        .ok()
                        .and_then(|s| s.to_str().ok().map(|s| s == AWAITING_EVIDENCE))
                        .unwrap_or(false);
                }
            }
        }
        (record, Some(result))
    } else {
        let object = failed_result(py, fault_id, &record);
        (record, object)
    }
}

/// A FAILED RepairResult standing for a repair that raised or returned nothing usable.
fn failed_result(py: Python<'_>, fault_id: &str, record: &RepairRecord) -> Option<Py<PyAny>> {
    status_result(py, fault_id, record, RepairStatus::FAILED)
}

/// The result of a repair the admission gate refused.
fn skipped_result(py: Python<'_>, fault_id: &str, record: &RepairRecord) -> Option<Py<PyAny>> {
    status_result(py, fault_id, record, RepairStatus::SKIPPED)
}

fn status_result(
    py: Python<'_>,
    fault_id: &str,
    record: &RepairRecord,
    status: RepairStatus,
) -> Option<Py<PyAny>> {
    let error = record.error.clone().unwrap_or_default();
    let engine = record.engine.clone();
    let ts = now();
    let result = RepairResult {
        fault_id: Lazy::ready(PyString::new(py, fault_id).into_any().unbind()),
        status: Lazy::ready(enums::to_py(py, status).ok()?),
        actions_taken: Lazy::later(record::new_list),
        success_rate: Lazy::ready(PyFloat::new(py, 0.0).into_any().unbind()),
        duration: Lazy::ready(PyFloat::new(py, record.duration).into_any().unbind()),
        side_effects: Lazy::later(record::new_list),
        verification_passed: Lazy::ready(PyBool::new(py, false).to_owned().into_any().unbind()),
        metadata: Lazy::later(move |py| {
            let d = PyDict::new(py);
            d.set_item("error", &error)?;
            d.set_item("engine", &engine)?;
            Ok(d.into_any().unbind())
        }),
        timestamp: Lazy::later(move |py| datetime_to_py(py, &ts)),
        modified: false,
    };
    Py::new(py, result).ok().map(|r| r.into_any())
}

/// Reads `get_last_restore()`: restored, failed, missing, error.
fn read_restore_report(
    report: &Bound<'_, PyAny>,
    rb: &mut crate::engine::healing_pipeline::RollbackRecord,
) {
    let Ok(d) = report.cast::<PyDict>() else {
        return;
    };
    let strings = |key: &str| -> Option<Vec<String>> {
        let v = d.get_item(key).ok().flatten()?;
        let list = v.cast::<PyList>().ok()?;
        Some(list.iter().filter_map(|i| label(&i)).collect())
    };
    rb.restored = strings("restored");
    rb.missing = strings("missing").unwrap_or_default();
    if let Ok(Some(f)) = d.get_item("failed") {
        if let Ok(f) = f.cast::<PyDict>() {
            rb.failed = f
                .iter()
                .filter_map(|(k, v)| Some((label(&k)?, label(&v).unwrap_or_default())))
                .collect();
        }
    }
    if let Ok(Some(e)) = d.get_item("error") {
        if let Some(e) = label(&e) {
            rb.reason = Some(format!("restore reported: {e}"));
        }
    }
}

/// The metrics provider's answer: a dict keyed by parameter (`faza25_metrics`) or layer
/// (`faza25`) name, or a sequence of five. Each layer is a dict or None.
fn parse_fresh(obj: &Bound<'_, PyAny>) -> Result<(Fresh, Vec<&'static str>), String> {
    let py = obj.py();
    let mut items: [Option<Bound<'_, PyAny>>; 5] = Default::default();
    if let Ok(d) = obj.cast::<PyDict>() {
        for i in 0..5 {
            let v = match d
                .get_item(LAYER_PARAMS[i])
                .map_err(|e| error_text(py, &e))?
            {
                Some(v) => Some(v),
                None => d.get_item(LAYER_SHORT[i]).map_err(|e| error_text(py, &e))?,
            };
            items[i] = v.filter(|v| !v.is_none());
        }
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let seq: Vec<Bound<'_, PyAny>> = obj
            .try_iter()
            .map_err(|e| error_text(py, &e))?
            .filter_map(Result::ok)
            .collect();
        if seq.len() != 5 {
            return Err(format!(
                "returned a sequence of {} items, expected the five layer dicts",
                seq.len()
            ));
        }
        for (i, v) in seq.into_iter().enumerate() {
            items[i] = Some(v).filter(|v| !v.is_none());
        }
    } else {
        return Err(format!(
            "returned {}, expected a dict of the five layer metric dicts",
            type_name(obj)
        ));
    }
    let mut fresh = Fresh {
        dicts: Default::default(),
        maps: Default::default(),
    };
    let mut refreshed = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(v) = item else { continue };
        let d = v
            .cast::<PyDict>()
            .map_err(|_| format!("{} must be a dict, got {}", LAYER_PARAMS[i], type_name(&v)))?;
        let map = to_map(Some(d.as_any()), LAYER_PARAMS[i]).map_err(|e| error_text(py, &e))?;
        fresh.dicts[i] = Some(d.clone().unbind());
        fresh.maps[i] = Some(map);
        refreshed.push(LAYER_PARAMS[i]);
    }
    Ok((fresh, refreshed))
}
