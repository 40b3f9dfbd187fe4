//! `senti_os.core.faza30.autorepair_engine`: AutorepairEngine, AutorepairConfig,
//! create_autorepair_engine.
//!
//! The loop's task runs on the extension's tokio runtime. Each iteration
//! asks the policy (engine side: mode, cooldown, throttle) whether to run a healing cycle; a
//! cycle collects metrics and runs the pipeline through a `Caller`, so every Python call
//! happens on the host's event-loop thread and is bounded by the callback timeout. The
//! iterations run as one future stepped on the host loop (`spawn_on_host` with
//! `Caller::OnHost`), timed by that loop's own timer, under a tokio task that watches the
//! host loop: no cross-thread wakeup per cycle, and the host loop runs its other callbacks
//! between the cycle's steps. The GIL is never held while the loop waits.

use super::audit_journal::AuditJournal;
use super::convert::{datetime_to_py, type_name};
use super::enums;
use super::errors::IntoPyResult;
use super::healing_pipeline::{
    run_cycle as run_pipeline_cycle, Admission, AdmissionRequest, CycleOptions, HealingPipeline,
};
use super::integration_layer::memo::MemoSlot;
use super::integration_layer::IntegrationLayer;
use super::runtime::{self, CallError, Caller, HostLoop};
use crate::engine::audit_journal::EntryKind;
use crate::engine::autorepair_engine::throttle::ThrottleEvent;
use crate::engine::autorepair_engine::{
    check_count, check_seconds, target_key, AutorepairMode, AutorepairPolicy, AutorepairSettings,
    CycleDecision, RepairOutcome, RepairRecord, ThrottleState, MIN_INTERVAL_SECONDS,
};
use crate::engine::clock::{iso, now};
use crate::engine::detection_engine::FaultSeverity;
use crate::engine::enums::ValueEnum;
use crate::engine::event_hooks::EventType;
use crate::engine::repair_strategies::AWAITING_EVIDENCE;
use crate::engine::EngineError;
use chrono::NaiveDateTime;
use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

// ---------------------------------------------------------------------------------------
// AutorepairConfig
// ---------------------------------------------------------------------------------------

/// The loop's settings. Every assignment is validated, so the loop never reads a bad value.
#[pyclass(module = "senti_os.core.faza30.autorepair_engine", frozen, eq)]
pub struct AutorepairConfig {
    settings: Mutex<AutorepairSettings>,
}

impl PartialEq for AutorepairConfig {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other) || *self.settings.lock() == *other.settings.lock()
    }
}

impl AutorepairConfig {
    pub fn settings(&self) -> AutorepairSettings {
        self.settings.lock().clone()
    }

    fn update(
        &self,
        f: impl FnOnce(&mut AutorepairSettings) -> Result<(), EngineError>,
    ) -> PyResult<()> {
        let mut next = self.settings();
        f(&mut next).py_err()?;
        next.validate().py_err()?;
        *self.settings.lock() = next;
        Ok(())
    }
}

fn float_arg(v: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number, got bool"
        )));
    }
    v.extract::<f64>()
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a number, got {}", type_name(v))))
}

fn int_arg(v: &Bound<'_, PyAny>, name: &str) -> PyResult<i64> {
    if v.is_instance_of::<pyo3::types::PyBool>() || !v.is_instance_of::<pyo3::types::PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, got {}",
            type_name(v)
        )));
    }
    v.extract::<i64>()
        .map_err(|_| PyValueError::new_err(format!("{name} is out of range")))
}

fn bool_arg(v: &Bound<'_, PyAny>, name: &str) -> PyResult<bool> {
    v.cast::<pyo3::types::PyBool>()
        .map(|b| b.is_true())
        .map_err(|_| PyTypeError::new_err(format!("{name} must be a bool, got {}", type_name(v))))
}

/// Sets one named field from a Python value; the names are the dataclass fields.
fn set_field(s: &mut AutorepairSettings, name: &str, v: &Bound<'_, PyAny>) -> PyResult<()> {
    match name {
        "mode" => s.mode = enums::from_py::<AutorepairMode>(v, "mode")?,
        "interval_seconds" => {
            s.interval_seconds =
                check_seconds(name, float_arg(v, name)?, MIN_INTERVAL_SECONDS).py_err()?
        }
        "max_repairs_per_minute" => {
            s.max_repairs_per_minute = check_count(name, int_arg(v, name)?).py_err()?
        }
        "max_repairs_per_hour" => {
            s.max_repairs_per_hour = check_count(name, int_arg(v, name)?).py_err()?
        }
        "cooldown_seconds" => {
            s.cooldown_seconds = check_seconds(name, float_arg(v, name)?, 0.0).py_err()?
        }
        "min_health_for_repair" => s.min_health_for_repair = float_arg(v, name)?,
        "enable_snapshots" => s.enable_snapshots = bool_arg(v, name)?,
        "enable_rollback" => s.enable_rollback = bool_arg(v, name)?,
        "dry_run" => s.dry_run = bool_arg(v, name)?,
        "callback_timeout_seconds" => {
            s.callback_timeout_seconds = check_seconds(name, float_arg(v, name)?, 0.001).py_err()?
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "AutorepairConfig has no field {other:?}; fields: {}",
                CONFIG_FIELDS.join(", ")
            )))
        }
    }
    Ok(())
}

const CONFIG_FIELDS: [&str; 10] = [
    "mode",
    "interval_seconds",
    "max_repairs_per_minute",
    "max_repairs_per_hour",
    "cooldown_seconds",
    "min_health_for_repair",
    "enable_snapshots",
    "enable_rollback",
    "dry_run",
    "callback_timeout_seconds",
];

fn field_value(py: Python<'_>, s: &AutorepairSettings, name: &str) -> PyResult<Py<PyAny>> {
    Ok(match name {
        "mode" => enums::to_py(py, s.mode)?,
        "interval_seconds" => s.interval_seconds.into_pyobject(py)?.into_any().unbind(),
        "max_repairs_per_minute" => s
            .max_repairs_per_minute
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "max_repairs_per_hour" => s
            .max_repairs_per_hour
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "cooldown_seconds" => s.cooldown_seconds.into_pyobject(py)?.into_any().unbind(),
        "min_health_for_repair" => s
            .min_health_for_repair
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        "enable_snapshots" => pyo3::types::PyBool::new(py, s.enable_snapshots)
            .to_owned()
            .into_any()
            .unbind(),
        "enable_rollback" => pyo3::types::PyBool::new(py, s.enable_rollback)
            .to_owned()
            .into_any()
            .unbind(),
        "dry_run" => pyo3::types::PyBool::new(py, s.dry_run)
            .to_owned()
            .into_any()
            .unbind(),
        _ => s
            .callback_timeout_seconds
            .into_pyobject(py)?
            .into_any()
            .unbind(),
    })
}

/// One pymethods block (pyo3 allows one per class) with a validated property per field.
macro_rules! config_methods {
    ($( ($get:ident, $set:ident, $name:literal) ),* ; $($rest:tt)*) => {
        #[pymethods]
        impl AutorepairConfig {
            $(
                #[getter($get)]
                fn $get(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                    field_value(py, &self.settings(), $name)
                }
                #[setter($get)]
                fn $set(&self, value: Bound<'_, PyAny>) -> PyResult<()> {
                    let mut next = self.settings();
                    set_field(&mut next, $name, &value)?;
                    next.validate().py_err()?;
                    *self.settings.lock() = next;
                    Ok(())
                }
            )*
            $($rest)*
        }
    };
}

config_methods! {
    (mode, set_mode, "mode"),
    (interval_seconds, set_interval_seconds, "interval_seconds"),
    (max_repairs_per_minute, set_max_repairs_per_minute, "max_repairs_per_minute"),
    (max_repairs_per_hour, set_max_repairs_per_hour, "max_repairs_per_hour"),
    (cooldown_seconds, set_cooldown_seconds, "cooldown_seconds"),
    (min_health_for_repair, set_min_health_for_repair, "min_health_for_repair"),
    (enable_snapshots, set_enable_snapshots, "enable_snapshots"),
    (enable_rollback, set_enable_rollback, "enable_rollback"),
    (dry_run, set_dry_run, "dry_run"),
    (callback_timeout_seconds, set_callback_timeout_seconds, "callback_timeout_seconds");

    #[new]
    #[pyo3(signature = (mode=None, interval_seconds=None, max_repairs_per_minute=None, max_repairs_per_hour=None,
        cooldown_seconds=None, min_health_for_repair=None, enable_snapshots=None, enable_rollback=None,
        dry_run=None, callback_timeout_seconds=None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        mode: Option<Bound<'_, PyAny>>,
        interval_seconds: Option<Bound<'_, PyAny>>,
        max_repairs_per_minute: Option<Bound<'_, PyAny>>,
        max_repairs_per_hour: Option<Bound<'_, PyAny>>,
        cooldown_seconds: Option<Bound<'_, PyAny>>,
        min_health_for_repair: Option<Bound<'_, PyAny>>,
        enable_snapshots: Option<Bound<'_, PyAny>>,
        enable_rollback: Option<Bound<'_, PyAny>>,
        dry_run: Option<Bound<'_, PyAny>>,
        callback_timeout_seconds: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut s = AutorepairSettings::default();
        let given = [
            mode,
            interval_seconds,
            max_repairs_per_minute,
            max_repairs_per_hour,
            cooldown_seconds,
            min_health_for_repair,
            enable_snapshots,
            enable_rollback,
            dry_run,
            callback_timeout_seconds,
        ];
        for (name, value) in CONFIG_FIELDS.iter().zip(given.iter()) {
            if let Some(v) = value {
                set_field(&mut s, name, v)?;
            }
        }
        s.validate().py_err()?;
        Ok(AutorepairConfig { settings: Mutex::new(s) })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let s = self.settings();
        let parts: PyResult<Vec<String>> = CONFIG_FIELDS
            .iter()
            .map(|name| Ok(format!("{name}={}", field_value(py, &s, name)?.bind(py).repr()?.to_cow()?)))
            .collect();
        Ok(format!("AutorepairConfig({})", parts?.join(", ")))
    }

    /// The field names, in order.
    #[classattr]
    fn __match_args__(py: Python<'_>) -> PyResult<Py<PyTuple>> {
        Ok(PyTuple::new(py, CONFIG_FIELDS)?.unbind())
    }
}

// ---------------------------------------------------------------------------------------
// AutorepairEngine
// ---------------------------------------------------------------------------------------

struct RunState {
    running: bool,
    started: Option<Instant>,
    uptime_frozen: f64,
    stop: Option<watch::Sender<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Inner {
    pipeline: Py<PyAny>,
    integration: Option<Py<PyAny>>,
    hooks: Option<Py<PyAny>>,
    config: Mutex<Py<AutorepairConfig>>,
    policy: Mutex<AutorepairPolicy>,
    run: Mutex<RunState>,
    last_repair_time: Mutex<Option<NaiveDateTime>>,
    /// Wakes the loop for a cycle now (a forced cycle requested while the loop runs).
    wake: tokio::sync::Notify,
    /// The monotonic origin of the throttle's clock.
    epoch: Instant,
    /// Where every cycle, repair, rollback and escalation is recorded, if anywhere.
    journal: Option<Arc<crate::engine::audit_journal::AuditJournal>>,
}

impl Inner {
    fn now_secs(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    fn settings(&self) -> AutorepairSettings {
        self.config.lock().get().settings()
    }

    fn uptime(&self) -> f64 {
        let run = self.run.lock();
        match (run.running, run.started) {
            (true, Some(t)) => t.elapsed().as_secs_f64(),
            _ => run.uptime_frozen,
        }
    }

    /// Publishes an event through the hooks with `caller`, so subscribers run where the
    /// caller runs Python. Failures are counted, never raised into the loop.
    async fn publish(&self, caller: &Caller, t: EventType, items: Vec<(&'static str, Py<PyAny>)>) {
        let Some(hooks) = self.hooks.as_ref() else {
            return;
        };
        let call = runtime::attach(|py| -> PyResult<(Py<PyAny>, Py<PyTuple>)> {
            let data = PyDict::new(py);
            for (k, v) in &items {
                data.set_item(k, v.bind(py))?;
            }
            let method = hooks.bind(py).getattr("publish_event")?.unbind();
            let args = PyTuple::new(
                py,
                [PyString::new(py, t.value()).into_any(), data.into_any()],
            )?
            .unbind();
            Ok((method, args))
        });
        let ok = match call {
            Ok(Ok((method, args))) => caller.call1(method, args).await.is_ok(),
            Ok(Err(_)) => false,
            Err(runtime::Exiting) => return,
        };
        if !ok {
            self.policy.lock().stats.callback_errors += 1;
        }
    }
}

const EXITING: &str = "the interpreter is exiting";

/// `get_all_metrics()` keys and the pipeline's matching keyword arguments.
const LAYER_KEYS: [&str; 5] = ["faza25", "faza27", "faza28", "faza28_5", "faza29"];
const LAYER_KWARGS: [&str; 5] = [
    "faza25_metrics",
    "faza27_metrics",
    "faza28_metrics",
    "faza28_5_metrics",
    "faza29_metrics",
];

/// Enters Python from a runtime thread; fails once the interpreter is exiting.
fn with_py<R>(f: impl FnOnce(Python<'_>) -> R) -> Result<R, String> {
    runtime::attach(f).map_err(|_| EXITING.to_string())
}

fn none_result() -> PyResult<Py<PyAny>> {
    runtime::attach(|py| py.None()).map_err(|_| PyRuntimeError::new_err(EXITING))
}

fn py_str(py: Python<'_>, s: &str) -> Py<PyAny> {
    PyString::new(py, s).into_any().unbind()
}

fn py_f64(py: Python<'_>, v: f64) -> Py<PyAny> {
    pyo3::types::PyFloat::new(py, v).into_any().unbind()
}

/// What the loop learns from a pipeline result, read under the GIL.
struct CycleSummary {
    cycle_id: Py<PyAny>,
    outcome: Py<PyAny>,
    faults_detected: Py<PyAny>,
    faults_repaired: Py<PyAny>,
    health_improvement: Py<PyAny>,
    repairs: Vec<RepairRecord>,
}

fn attr_str(obj: &Bound<'_, PyAny>, name: &str) -> Option<String> {
    obj.getattr(name).ok().and_then(|v| {
        if let Ok(s) = v.extract::<String>() {
            Some(s)
        } else {
            v.getattr("value")
                .ok()
                .and_then(|x| x.extract::<String>().ok())
        }
    })
}

/// The throttle's view of a repair: the target (`target_key` of the fault type and metrics)
/// and the engine, the same keys the admission gate asks about before the repair.
fn repair_record(repair: &Bound<'_, PyAny>) -> Option<RepairRecord> {
    let status = attr_str(repair, "status")?;
    if status == "skipped" {
        // Nothing ran (or the gate refused it): no repair to count.
        return None;
    }
    let metadata = repair.getattr("metadata").ok();
    let md = metadata
        .as_ref()
        .and_then(|m| m.cast::<PyDict>().ok().cloned());
    let text = |key: &str| -> Option<String> {
        md.as_ref()
            .and_then(|d| d.get_item(key).ok().flatten())
            .and_then(|v| v.extract::<String>().ok())
    };
    let fault_type = text("fault_type")
        .or_else(|| attr_str(repair, "fault_id"))
        .unwrap_or_else(|| "unknown".into());
    let metrics = md
        .as_ref()
        .and_then(|d| d.get_item("metrics").ok().flatten())
        .and_then(|m| super::convert::to_map(Some(&m), "metrics").ok())
        .unwrap_or_default();
    let target = target_key(&fault_type, &metrics);
    let action = text("engine")
        .or_else(|| text("handler"))
        .unwrap_or_else(|| "repair".into());
    let outcome = match status.as_str() {
        "success" => RepairOutcome::Succeeded,
        "partial" if text("reason").as_deref() == Some(AWAITING_EVIDENCE) => {
            RepairOutcome::AwaitingEvidence
        }
        _ => RepairOutcome::Failed,
    };
    Some(RepairRecord {
        target,
        action,
        outcome,
    })
}

/// The gate the pipeline asks before each repair: mode, cooldown (unless forced), global
/// windows, per-target backoff and quarantine, per-action circuit breaker.
fn admission_gate(inner: &Arc<Inner>, forced: bool) -> Admission {
    let inner = inner.clone();
    Arc::new(move |req: &AdmissionRequest<'_>| {
        let severity = req
            .severity
            .as_deref()
            .and_then(FaultSeverity::from_value)
            .unwrap_or(FaultSeverity::MEDIUM);
        // A system this unhealthy is more likely harmed than helped by automatic repairs
        // (Cluster API's maxUnhealthy short circuit): hold back and let a human decide.
        let floor = inner.settings().min_health_for_repair;
        if let Some(health) = req.health.filter(|h| *h < floor) {
            return Err(format!(
                "health {health:.1} is below min_health_for_repair {floor:.1}: repairs held back, escalate to an operator"
            ));
        }
        let now = inner.now_secs();
        inner
            .policy
            .lock()
            .admit(severity, &req.target, req.engine, now, forced)
            .map_err(|d| d.reason())
    })
}

/// The repairs our pipeline ran, keyed as its admission gate asked about them; None for a
/// result that is not our pipeline's (or was changed from Python).
fn admitted_repairs(result: &Bound<'_, PyAny>) -> Option<Vec<RepairRecord>> {
    let result = result
        .cast::<super::healing_pipeline::HealingResult>()
        .ok()?;
    let result = result.try_borrow().ok()?;
    let data = result.cycle_data()?;
    Some(
        data.faults
            .iter()
            .filter_map(|f| {
                let target = f.admitted_target.as_ref()?;
                let repair = f.repair.as_ref()?;
                (repair.status != Some(crate::engine::repair_strategies::RepairStatus::SKIPPED))
                    .then(|| RepairRecord {
                        target: target.clone(),
                        action: repair.engine.clone(),
                        outcome: RepairOutcome::of(repair),
                    })
            })
            .collect(),
    )
}

fn summarize(result: &Bound<'_, PyAny>) -> PyResult<CycleSummary> {
    let py = result.py();
    let outcome = result.getattr("outcome")?;
    let outcome_value = outcome
        .getattr("value")
        .map(|v| v.unbind())
        .unwrap_or_else(|_| outcome.clone().unbind());
    let mut repairs = Vec::new();
    if let Some(admitted) = admitted_repairs(result) {
        repairs = admitted;
    } else if let Ok(context) = result.getattr("context") {
        if let Ok(list) = context.getattr("repairs") {
            if let Ok(iter) = list.try_iter() {
                for r in iter.flatten() {
                    if let Some(rec) = repair_record(&r) {
                        repairs.push(rec);
                    }
                }
            }
        }
    }
    Ok(CycleSummary {
        cycle_id: result.getattr("cycle_id")?.unbind(),
        outcome: outcome_value,
        faults_detected: result.getattr("faults_detected")?.unbind(),
        faults_repaired: result.getattr("faults_repaired")?.unbind(),
        health_improvement: result
            .getattr("health_improvement")
            .map(|v| v.unbind())
            .unwrap_or_else(|_| py_f64(py, 0.0)),
        repairs,
    })
}

/// Our integration layer's one-step host collection (`_collect_on_host`), if `layer` is one.
fn host_collector(layer: &Bound<'_, PyAny>) -> Option<Py<PyAny>> {
    if !layer.is_instance_of::<super::integration_layer::IntegrationLayer>() {
        return None;
    }
    layer.getattr("_collect_on_host").ok().map(|m| m.unbind())
}

/// The pipeline's metrics provider for a cycle on the host loop: when it is the integration
/// layer's own `get_all_metrics`, the one-step collection takes its place, so coroutine
/// providers are awaited when the pipeline measures again after repairs.
fn host_provider(
    py: Python<'_>,
    pipeline: &Py<HealingPipeline>,
    integration: Option<&Py<PyAny>>,
    host_collect: Option<&Py<PyAny>>,
) -> Option<Py<PyAny>> {
    let (layer, collect) = (integration?, host_collect?);
    let provider = pipeline.bind(py).getattr("metrics_provider").ok()?;
    let owner = provider.getattr("__self__").ok()?;
    let name = provider.getattr("__name__").ok()?;
    let is_ours = owner.is(layer.bind(py)) && name.extract::<String>().ok()? == "get_all_metrics";
    is_ours.then(|| collect.clone_ref(py))
}

/// Keeps our integration layer's task graph read for the length of one cycle (see
/// `integration_layer/memo.rs`), and drops it when the cycle ends, however it ends.
struct GraphMemoScope(Option<Arc<MemoSlot>>);

impl GraphMemoScope {
    fn open(inner: &Inner) -> Result<Self, String> {
        let slot = with_py(|py| {
            let layer = inner.integration.as_ref()?.bind(py);
            let layer = layer.cast::<IntegrationLayer>().ok()?;
            let slot = layer.borrow().shared().graph_memo();
            Some(slot)
        })?;
        if let Some(s) = &slot {
            s.open();
        }
        Ok(GraphMemoScope(slot))
    }
}

impl Drop for GraphMemoScope {
    fn drop(&mut self) {
        if let Some(memo) = self.0.as_ref().and_then(|s| s.close()) {
            // Its references to the graph's objects go with the GIL held.
            let _ = runtime::attach(move |_| drop(memo));
        }
    }
}

/// Runs one healing cycle: collect metrics, run the pipeline, feed the throttle, publish.
async fn run_cycle(
    inner: &Arc<Inner>,
    caller: &Caller,
    forced: bool,
) -> Result<Option<Py<PyAny>>, String> {
    let started = Instant::now();
    let _graph_memo = GraphMemoScope::open(inner)?;
    // Metrics from the integration layer, called where the caller runs Python.
    // On the host loop our integration layer collects in one step and awaits coroutine
    // providers there; elsewhere (and for other layers) `get_all_metrics` is called.
    let on_host = matches!(caller, Caller::Host { .. } | Caller::OnHost { .. });
    let host_collect = match inner.integration.as_ref() {
        Some(layer) if on_host => with_py(|py| host_collector(layer.bind(py)))?,
        _ => None,
    };
    let metrics: Option<Py<PyAny>> = match inner.integration.as_ref() {
        Some(layer) => {
            let method = match host_collect.as_ref() {
                Some(m) => Ok(with_py(|py| m.clone_ref(py))?),
                None => with_py(|py| {
                    layer
                        .bind(py)
                        .getattr("get_all_metrics")
                        .map(|m| m.unbind())
                })?,
            };
            match method {
                Ok(m) => {
                    let args = with_py(|py| PyTuple::empty(py).unbind())?;
                    match caller.call1(m, args).await {
                        Ok(v) => Some(v),
                        Err(e) => {
                            return Err(with_py(|py| {
                                format!("collecting metrics failed: {}", e.describe(py))
                            })?)
                        }
                    }
                }
                Err(_) => None,
            }
        }
        None => None,
    };
    // Our pipeline runs its cycle as an async task here, calling through `caller` for
    // callbacks; any other pipeline object is called as a whole through it.
    let native = with_py(|py| {
        inner
            .pipeline
            .bind(py)
            .cast::<HealingPipeline>()
            .ok()
            .map(|p| p.clone().unbind())
    })?;
    let native_pipeline = native.is_some();
    let result = if let Some(pipeline) = native {
        let layers = with_py(|py| -> [Option<Py<PyAny>>; 5] {
            let mut out: [Option<Py<PyAny>>; 5] = Default::default();
            if let Some(m) = metrics.as_ref() {
                for (slot, key) in out.iter_mut().zip(LAYER_KEYS) {
                    *slot = m
                        .bind(py)
                        .get_item(key)
                        .ok()
                        .filter(|v| !v.is_none())
                        .map(|v| v.unbind());
                }
            }
            out
        })?;
        let settings = inner.settings();
        let options = CycleOptions {
            forced,
            admission: Some(admission_gate(inner, forced)),
            // The loop's dry run plans and reports without acting.
            dry_run: settings.dry_run.then_some(true),
            snapshots: settings.enable_snapshots,
            rollback: settings.enable_rollback,
            metrics_provider: with_py(|py| {
                host_provider(
                    py,
                    &pipeline,
                    inner.integration.as_ref(),
                    host_collect.as_ref(),
                )
            })?,
            ..Default::default()
        };
        let result = run_pipeline_cycle(pipeline, caller.clone(), layers, options)
            .await
            .map_err(|e| {
                with_py(|py| {
                    format!(
                        "healing cycle failed: {}",
                        CallError::Raised(e).describe(py)
                    )
                })
                .unwrap_or_else(|e| e)
            })?;
        result.into_any()
    } else {
        let call = with_py(|py| -> PyResult<(Py<PyAny>, Py<PyDict>)> {
            let kwargs = PyDict::new(py);
            if let Some(m) = metrics.as_ref() {
                let m = m.bind(py);
                for (key, kw) in LAYER_KEYS.iter().zip(LAYER_KWARGS) {
                    if let Ok(v) = m.get_item(key) {
                        kwargs.set_item(kw, v)?;
                    }
                }
            }
            Ok((
                inner
                    .pipeline
                    .bind(py)
                    .getattr("execute_healing_cycle")?
                    .unbind(),
                kwargs.unbind(),
            ))
        })?
        .map_err(|e| e.to_string())?;
        let (method, kwargs) = call;
        let args = with_py(|py| PyTuple::empty(py).unbind())?;
        caller.call(method, args, Some(kwargs)).await.map_err(|e| {
            with_py(|py| format!("healing cycle failed: {}", e.describe(py))).unwrap_or_else(|e| e)
        })?
    };
    let summary = with_py(|py| summarize(result.bind(py)))?.map_err(|e| e.to_string())?;
    let now_s = inner.now_secs();
    let events = {
        let mut policy = inner.policy.lock();
        let events = policy.record_repairs(&summary.repairs, now_s);
        policy.record_duration(started.elapsed().as_secs_f64());
        events
    };
    if !summary.repairs.is_empty() {
        *inner.last_repair_time.lock() = Some(now());
    }
    if let Some(journal) = &inner.journal {
        let cycle = with_py(|py| journal_cycle(py, result.bind(py), &summary, forced))?;
        // The iteration runs on the host's event loop: the writes (and a due fsync) go to a
        // blocking thread, and the loop goes on once they are done.
        let (journal, repairs, logged) = (journal.clone(), summary.repairs.clone(), events.clone());
        let _ = runtime::tokio_runtime()
            .spawn_blocking(move || journal_cycle_entries(&journal, cycle, &repairs, &logged))
            .await;
    }
    for event in events {
        if let ThrottleEvent::Quarantined {
            target,
            repairs_in_window,
        } = &event
        {
            let items = with_py(|py| {
                vec![
                    ("reason", py_str(py, &format!("{target} quarantined: repaired {repairs_in_window} times within the flap window; escalating"))),
                    ("target", py_str(py, target)),
                    ("escalation", pyo3::types::PyBool::new(py, true).to_owned().into_any().unbind()),
                ]
            })?;
            inner
                .publish(caller, EventType::AUTOREPAIR_BLOCKED, items)
                .await;
        }
    }
    if native_pipeline {
        // Our pipeline published the cycle's own events.
        return Ok(Some(result));
    }
    let items = with_py(|py| {
        vec![
            ("cycle_id", summary.cycle_id.clone_ref(py)),
            ("outcome", summary.outcome.clone_ref(py)),
            ("faults_detected", summary.faults_detected.clone_ref(py)),
            ("faults_repaired", summary.faults_repaired.clone_ref(py)),
            (
                "health_improvement",
                summary.health_improvement.clone_ref(py),
            ),
            (
                "forced",
                pyo3::types::PyBool::new(py, forced)
                    .to_owned()
                    .into_any()
                    .unbind(),
            ),
        ]
    })?;
    inner
        .publish(caller, EventType::HEALING_CYCLE_COMPLETED, items)
        .await;
    Ok(Some(result))
}

/// One iteration's Python work, run on the host loop's thread: the throttle notice, the
/// cycle and its failure event. False once the interpreter is exiting.
async fn iteration_on_host(
    inner: &Arc<Inner>,
    caller: &Caller,
    notice: Option<(EventType, &'static str)>,
    run: bool,
) -> bool {
    if let Some((t, reason)) = notice {
        let Ok(items) = runtime::attach(|py| vec![("reason", py_str(py, reason))]) else {
            return false;
        };
        inner.publish(caller, t, items).await;
    }
    if !run {
        return true;
    }
    match run_cycle(inner, caller, false).await {
        Ok(result) => runtime::attach(move |_| drop(result)).is_ok(),
        Err(message) => {
            inner.policy.lock().stats.callback_errors += 1;
            let Ok(items) = runtime::attach(|py| vec![("error", py_str(py, &message))]) else {
                return false;
            };
            inner
                .publish(caller, EventType::HEALING_CYCLE_FAILED, items)
                .await;
            true
        }
    }
}

/// How often the supervising tokio task checks that the host loop still exists.
const HOST_CHECK_SECONDS: f64 = 0.25;

/// The loop's iterations, as one future stepped on the host loop's thread. Its waits use the
/// host loop's own timer (`loop.call_later`): a wakeup sent from another thread at an
/// arbitrary moment would make asyncio's next select round its timeout up to the next whole
/// millisecond (epoll's resolution) and so delay the host's own timers by up to 1 ms. Stop
/// and forced cycles still wake it from any thread.
async fn host_loop(inner: Arc<Inner>, host: HostLoop, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        let iteration_start = Instant::now();
        let settings = inner.settings();
        let (decision, changed) = {
            let mut policy = inner.policy.lock();
            let _ = policy.apply(settings.clone());
            policy.begin_iteration(inner.now_secs(), false)
        };
        let notice = match changed {
            Some(ThrottleState::BLOCKED) => Some((
                EventType::AUTOREPAIR_BLOCKED,
                "per-minute repair limit reached",
            )),
            Some(ThrottleState::THROTTLED) => Some((
                EventType::AUTOREPAIR_THROTTLED,
                "above 80% of the hourly repair limit: critical faults only",
            )),
            _ => None,
        };
        let caller = Caller::OnHost {
            host: host.clone(),
            timeout: Duration::from_secs_f64(settings.callback_timeout_seconds),
        };
        let run = decision == CycleDecision::Run;
        runtime::start_host_slice();
        if (run || notice.is_some()) && !iteration_on_host(&inner, &caller, notice, run).await {
            break;
        }
        let elapsed = iteration_start.elapsed().as_secs_f64();
        let wait = (settings.interval_seconds - elapsed).max(MIN_INTERVAL_SECONDS);
        tokio::select! {
            biased;
            _ = stop.changed() => {}
            _ = inner.wake.notified() => { inner.policy.lock().throttle.clear_cooldown(); }
            slept = caller.sleep(Duration::from_secs_f64(wait)) => {
                if slept.is_err() {
                    break;
                }
            }
        }
    }
}

/// The snapshot store of the pipeline's manager, when both are ours.
fn pipeline_store(
    py: Python<'_>,
    pipeline: &Py<PyAny>,
) -> Option<Arc<crate::engine::snapshot_manager::SnapshotManager>> {
    let manager = pipeline.bind(py).getattr("snapshot_manager").ok()?;
    let manager = manager
        .cast::<super::snapshot_manager::SnapshotManager>()
        .ok()?;
    let store = manager.try_borrow().ok()?.store();
    Some(store)
}

/// The loop's task on the tokio runtime: runs `host_loop` on the host loop and watches that
/// loop; a loop that closed without stop() (e.g. `asyncio.run(engine.start())` returned)
/// ends it.
async fn loop_task(inner: Arc<Inner>, host: HostLoop, stop: watch::Receiver<bool>) {
    if let Ok((mut done, handle)) =
        runtime::spawn_on_host(&host, host_loop(inner.clone(), host.clone(), stop))
    {
        loop {
            tokio::select! {
                _ = &mut done => break,
                _ = tokio::time::sleep(Duration::from_secs_f64(HOST_CHECK_SECONDS)) => {
                    if runtime::attach(|py| host.is_closed(py)).unwrap_or(true) {
                        handle.abandon();
                        break;
                    }
                }
            }
        }
    }
    // Pre-repair snapshots still waiting for this loop's manager's writer are on disk once
    // stop() returns (other managers in the process keep their own pace).
    if let Ok(Some(store)) = runtime::attach(|py| pipeline_store(py, &inner.pipeline)) {
        let _ = tokio::task::spawn_blocking(move || store.flush_deferred()).await;
    }
    let mut run = inner.run.lock();
    if let Some(t) = run.started {
        run.uptime_frozen = t.elapsed().as_secs_f64();
    }
    run.running = false;
}

/// How far back the journal is replayed into the throttle: its longest window (the hourly
/// limit; backoff resets after 10 minutes and quarantines last 30).
const RECOVERY_WINDOW_SECONDS: f64 = 3600.0;

/// The last hour's repairs from the journal, each with its age in seconds, oldest first.
fn journalled_repairs(
    journal: &crate::engine::audit_journal::AuditJournal,
) -> Vec<(f64, RepairRecord)> {
    let now = crate::engine::audit_journal::now_unix();
    journal
        .since(now - RECOVERY_WINDOW_SECONDS, Some(EntryKind::REPAIR))
        .into_iter()
        .filter_map(|e| {
            let record = RepairRecord {
                target: e.data.get("target")?.as_str()?.to_owned(),
                action: e.data.get("action")?.as_str()?.to_owned(),
                outcome: RepairOutcome::from_journal(&e.data)?,
            };
            Some(((now - e.ts).max(0.0), record))
        })
        .collect()
}

/// What the journal keeps of a cycle.
fn journal_cycle(
    py: Python<'_>,
    result: &Bound<'_, PyAny>,
    summary: &CycleSummary,
    forced: bool,
) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let text = |o: &Py<PyAny>| o.bind(py).str().map(|s| s.to_string()).unwrap_or_default();
    let int = |o: &Py<PyAny>| o.bind(py).extract::<i64>().unwrap_or(0);
    let mut m = serde_json::Map::new();
    m.insert("cycle_id".into(), Value::from(text(&summary.cycle_id)));
    m.insert("outcome".into(), Value::from(text(&summary.outcome)));
    m.insert(
        "faults_detected".into(),
        Value::from(int(&summary.faults_detected)),
    );
    m.insert(
        "faults_repaired".into(),
        Value::from(int(&summary.faults_repaired)),
    );
    let improvement = summary
        .health_improvement
        .bind(py)
        .extract::<f64>()
        .unwrap_or(0.0);
    m.insert(
        "health_improvement".into(),
        Value::from(if improvement.is_finite() {
            improvement
        } else {
            0.0
        }),
    );
    let rollback = result
        .getattr("rollback_performed")
        .and_then(|v| v.is_truthy())
        .unwrap_or(false);
    m.insert("rollback_performed".into(), Value::from(rollback));
    m.insert("forced".into(), Value::from(forced));
    m
}

/// Appends a cycle's entries: the cycle, each repair, a rollback, each escalation. A journal
/// that cannot be written is counted in its statistics; the loop goes on.
fn journal_cycle_entries(
    journal: &crate::engine::audit_journal::AuditJournal,
    cycle: serde_json::Map<String, serde_json::Value>,
    repairs: &[RepairRecord],
    events: &[ThrottleEvent],
) {
    use serde_json::Value;
    let cycle_id = cycle.get("cycle_id").cloned().unwrap_or(Value::Null);
    let rollback = cycle
        .get("rollback_performed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let _ = journal.append(EntryKind::CYCLE, cycle);
    for r in repairs {
        let mut m = serde_json::Map::new();
        m.insert("cycle_id".into(), cycle_id.clone());
        m.insert("target".into(), Value::from(r.target.clone()));
        m.insert("action".into(), Value::from(r.action.clone()));
        // `succeeded` for readers of entries written before outcomes existed.
        m.insert(
            "succeeded".into(),
            Value::from(r.outcome == RepairOutcome::Succeeded),
        );
        m.insert("outcome".into(), Value::from(r.outcome.as_str()));
        let _ = journal.append(EntryKind::REPAIR, m);
    }
    if rollback {
        let mut m = serde_json::Map::new();
        m.insert("cycle_id".into(), cycle_id.clone());
        let _ = journal.append(EntryKind::ROLLBACK, m);
    }
    for e in events {
        let mut m = serde_json::Map::new();
        m.insert("cycle_id".into(), cycle_id.clone());
        match e {
            ThrottleEvent::Quarantined {
                target,
                repairs_in_window,
            } => {
                m.insert("event".into(), Value::from("quarantined"));
                m.insert("target".into(), Value::from(target.clone()));
                m.insert("repairs_in_window".into(), Value::from(*repairs_in_window));
            }
            ThrottleEvent::BreakerOpened {
                action,
                consecutive_failures,
            } => {
                m.insert("event".into(), Value::from("breaker_opened"));
                m.insert("action".into(), Value::from(action.clone()));
                m.insert(
                    "consecutive_failures".into(),
                    Value::from(*consecutive_failures),
                );
            }
            ThrottleEvent::BreakerClosed { action } => {
                m.insert("event".into(), Value::from("breaker_closed"));
                m.insert("action".into(), Value::from(action.clone()));
            }
        }
        let _ = journal.append(EntryKind::ESCALATION, m);
    }
}

/// Runs healing cycles continuously on the extension's tokio runtime, throttled per repair.
#[pyclass(module = "senti_os.core.faza30.autorepair_engine", frozen)]
pub struct AutorepairEngine {
    inner: Arc<Inner>,
}

impl AutorepairEngine {
    pub fn build(
        py: Python<'_>,
        healing_pipeline: Py<PyAny>,
        integration_layer: Option<Py<PyAny>>,
        event_hooks: Option<Py<PyAny>>,
        config: Option<Py<AutorepairConfig>>,
        journal: Option<Arc<crate::engine::audit_journal::AuditJournal>>,
    ) -> PyResult<Self> {
        let config = match config {
            Some(c) => c,
            None => Py::new(
                py,
                AutorepairConfig {
                    settings: Mutex::new(AutorepairSettings::default()),
                },
            )?,
        };
        let settings = config.get().settings();
        let mut policy = AutorepairPolicy::new(settings);
        if let Some(j) = &journal {
            // A restarted host resumes its limits, backoff, quarantines and breakers.
            policy.recover(&journalled_repairs(j), 0.0);
        }
        Ok(AutorepairEngine {
            inner: Arc::new(Inner {
                pipeline: healing_pipeline,
                integration: integration_layer.filter(|o| !o.is_none(py)),
                hooks: event_hooks.filter(|o| !o.is_none(py)),
                config: Mutex::new(config),
                policy: Mutex::new(policy),
                run: Mutex::new(RunState {
                    running: false,
                    started: None,
                    uptime_frozen: 0.0,
                    stop: None,
                    task: None,
                }),
                last_repair_time: Mutex::new(None),
                wake: tokio::sync::Notify::new(),
                epoch: Instant::now(),
                journal,
            }),
        })
    }

    fn publish_now(
        &self,
        py: Python<'_>,
        t: EventType,
        items: Vec<(&'static str, Py<PyAny>)>,
    ) -> PyResult<()> {
        let Some(hooks) = self.inner.hooks.as_ref() else {
            return Ok(());
        };
        let data = PyDict::new(py);
        for (k, v) in items {
            data.set_item(k, v)?;
        }
        hooks
            .bind(py)
            .call_method1("publish_event", (t.value(), data))?;
        Ok(())
    }

    fn stats_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let uptime = self.inner.uptime();
        let running = self.inner.run.lock().running;
        let now_s = self.inner.now_secs();
        let (stats, mode, state, minute, hour, success, dry_run, tracked) = {
            let mut p = self.inner.policy.lock();
            let _ = p.apply(self.inner.settings());
            let state = p.throttle.state(now_s);
            let minute = p.throttle.repairs_last_minute(now_s);
            let hour = p.throttle.repairs_last_hour(now_s);
            (
                p.stats.clone(),
                p.settings.mode,
                state,
                minute,
                hour,
                p.success_rate(),
                p.settings.dry_run,
                p.throttle.tracked_targets(),
            )
        };
        let out = PyDict::new(py);
        out.set_item("total_cycles", stats.total_cycles)?;
        out.set_item("healing_cycles_triggered", stats.healing_cycles_triggered)?;
        out.set_item("repairs_attempted", stats.repairs_attempted)?;
        out.set_item("repairs_successful", stats.repairs_successful)?;
        out.set_item("repairs_awaiting_evidence", stats.repairs_awaiting_evidence)?;
        out.set_item("throttled_count", stats.throttled_count)?;
        out.set_item("blocked_count", stats.blocked_count)?;
        out.set_item("avg_cycle_duration", stats.avg_cycle_duration)?;
        out.set_item("uptime_seconds", uptime)?;
        out.set_item("running", running)?;
        out.set_item("mode", mode.value())?;
        out.set_item("throttle_state", state.value())?;
        out.set_item("repairs_last_minute", minute)?;
        out.set_item("repairs_last_hour", hour)?;
        out.set_item("success_rate", success)?;
        let last = *self.inner.last_repair_time.lock();
        out.set_item("last_repair_time", last.map(|t| iso(&t)))?;
        out.set_item("dry_run", dry_run)?;
        out.set_item("escalations", stats.escalations)?;
        out.set_item("recovered_repairs", stats.recovered_repairs)?;
        out.set_item(
            "audit_journal",
            self.inner
                .journal
                .as_ref()
                .map(|j| j.dir().display().to_string()),
        )?;
        out.set_item("callback_errors", stats.callback_errors)?;
        out.set_item("tracked_targets", tracked)?;
        Ok(out)
    }
}

#[pymethods]
impl AutorepairEngine {
    #[new]
    #[pyo3(signature = (healing_pipeline, integration_layer=None, event_hooks=None, config=None, *, audit_journal=None))]
    fn py_new(
        py: Python<'_>,
        healing_pipeline: Py<PyAny>,
        integration_layer: Option<Py<PyAny>>,
        event_hooks: Option<Py<PyAny>>,
        config: Option<Bound<'_, PyAny>>,
        audit_journal: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let journal = match audit_journal.filter(|j| !j.is_none()) {
            None => None,
            Some(j) => Some(
                j.cast::<AuditJournal>()
                    .map_err(|_| {
                        PyTypeError::new_err(format!(
                            "audit_journal must be an AuditJournal, got {}",
                            type_name(&j)
                        ))
                    })?
                    .get()
                    .engine(),
            ),
        };
        let config = match config {
            None => None,
            Some(c) if c.is_none() => None,
            Some(c) => Some(
                c.cast::<AutorepairConfig>()
                    .map_err(|_| {
                        PyTypeError::new_err(format!(
                            "config must be an AutorepairConfig, got {}",
                            type_name(&c)
                        ))
                    })?
                    .clone()
                    .unbind(),
            ),
        };
        if healing_pipeline.is_none(py) {
            return Err(PyTypeError::new_err(
                "healing_pipeline must be a HealingPipeline, got None",
            ));
        }
        if let Some(h) = event_hooks.as_ref().filter(|h| !h.is_none(py)) {
            super::healing_pipeline::check_hooks(h.bind(py))?;
        }
        Self::build(
            py,
            healing_pipeline,
            integration_layer,
            event_hooks,
            config,
            journal,
        )
    }

    #[getter]
    fn healing_pipeline(&self, py: Python<'_>) -> Py<PyAny> {
        self.inner.pipeline.clone_ref(py)
    }

    #[getter]
    fn integration_layer(&self, py: Python<'_>) -> Py<PyAny> {
        self.inner
            .integration
            .as_ref()
            .map(|o| o.clone_ref(py))
            .unwrap_or_else(|| py.None())
    }

    #[getter]
    fn event_hooks(&self, py: Python<'_>) -> Py<PyAny> {
        self.inner
            .hooks
            .as_ref()
            .map(|o| o.clone_ref(py))
            .unwrap_or_else(|| py.None())
    }

    /// The live configuration object.
    #[getter(config)]
    fn config_attr(&self, py: Python<'_>) -> Py<AutorepairConfig> {
        self.inner.config.lock().clone_ref(py)
    }

    #[setter(config)]
    fn set_config_attr(&self, config: Bound<'_, PyAny>) -> PyResult<()> {
        let c = config.cast::<AutorepairConfig>().map_err(|_| {
            PyTypeError::new_err(format!(
                "config must be an AutorepairConfig, got {}",
                type_name(&config)
            ))
        })?;
        *self.inner.config.lock() = c.clone().unbind();
        Ok(())
    }

    /// Time of the last repair the loop ran (None before any).
    #[getter]
    fn _last_repair_time(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match *self.inner.last_repair_time.lock() {
            Some(t) => datetime_to_py(py, &t),
            None => Ok(py.None()),
        }
    }

    #[getter]
    fn _running(&self) -> bool {
        self.inner.run.lock().running
    }

    /// Starts the loop on the extension's runtime: `await engine.start()`. Python callbacks
    /// run on the loop that awaits it.
    fn start<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        runtime::as_coroutine(slf.py(), slf.getattr("_start_now")?, vec![])
    }

    /// Stops the loop and waits for the iteration in progress: `await engine.stop()`.
    fn stop<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        runtime::as_coroutine(slf.py(), slf.getattr("_stop_now")?, vec![])
    }

    /// The awaitable variant of `force_healing_cycle` for asyncio callers: callbacks run on
    /// the running loop and coroutine callbacks are awaited.
    fn force_healing_cycle_async<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        runtime::as_coroutine(slf.py(), slf.getattr("_force_now")?, vec![])
    }

    fn _start_now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let host = HostLoop::current(py).ok_or_else(|| {
            PyRuntimeError::new_err("start() must be awaited inside a running asyncio event loop")
        })?;
        let started = {
            let mut run = self.inner.run.lock();
            if run.running {
                false
            } else {
                let (tx, rx) = watch::channel(false);
                run.running = true;
                run.started = Some(Instant::now());
                run.stop = Some(tx);
                let inner = self.inner.clone();
                let handle = runtime::tokio_runtime().spawn(loop_task(inner, host, rx));
                run.task = Some(handle);
                true
            }
        };
        if started {
            let s = self.inner.settings();
            self.publish_now(
                py,
                EventType::AUTOREPAIR_STARTED,
                vec![
                    ("mode", py_str(py, s.mode.value())),
                    ("interval", py_f64(py, s.interval_seconds)),
                ],
            )?;
        }
        let host = HostLoop::current(py)
            .ok_or_else(|| PyRuntimeError::new_err("no running event loop"))?;
        runtime::spawn_awaitable(py, &host, async { none_result() })
    }

    fn _stop_now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (task, was_running) = {
            let mut run = self.inner.run.lock();
            let was_running = run.running || run.task.is_some();
            if let Some(tx) = run.stop.take() {
                let _ = tx.send(true);
            }
            (run.task.take(), was_running)
        };
        let inner = self.inner.clone();
        let hooks = self.inner.hooks.as_ref().map(|h| h.clone_ref(py));
        let host = HostLoop::current(py).ok_or_else(|| {
            PyRuntimeError::new_err("stop() must be awaited inside a running asyncio event loop")
        })?;
        runtime::spawn_awaitable(py, &host, async move {
            if let Some(task) = task {
                let _ = task.await;
            }
            {
                let mut run = inner.run.lock();
                if let Some(t) = run.started {
                    run.uptime_frozen = t.elapsed().as_secs_f64();
                }
                run.running = false;
            }
            if was_running {
                if let Some(hooks) = hooks {
                    let uptime = inner.uptime();
                    runtime::attach(|py| -> PyResult<()> {
                        let data = PyDict::new(py);
                        data.set_item("uptime_seconds", uptime)?;
                        // Called from the runtime thread; the hooks are thread-safe and
                        // subscribers of this final event run here.
                        hooks.bind(py).call_method1(
                            "publish_event",
                            (EventType::AUTOREPAIR_STOPPED.value(), data),
                        )?;
                        drop(hooks);
                        Ok(())
                    })
                    .map_err(|_| PyRuntimeError::new_err(EXITING))??;
                }
            }
            none_result()
        })
    }

    fn set_mode(&self, py: Python<'_>, mode: Bound<'_, PyAny>) -> PyResult<()> {
        let new = enums::from_py::<AutorepairMode>(&mode, "mode")?;
        let config = self.inner.config.lock().clone_ref(py);
        let old = config.get().settings().mode;
        config.get().update(|s| {
            s.mode = new;
            Ok(())
        })?;
        self.publish_now(
            py,
            EventType::AUTOREPAIR_MODE_CHANGED,
            vec![
                ("old_mode", py_str(py, old.value())),
                ("new_mode", py_str(py, new.value())),
            ],
        )
    }

    /// Sets the interval; values below 1 ms are refused rather than silently clamped.
    fn set_interval(&self, py: Python<'_>, interval_seconds: Bound<'_, PyAny>) -> PyResult<()> {
        let v = check_seconds(
            "interval_seconds",
            float_arg(&interval_seconds, "interval_seconds")?,
            MIN_INTERVAL_SECONDS,
        )
        .py_err()?;
        let config = self.inner.config.lock().clone_ref(py);
        config.get().update(|s| {
            s.interval_seconds = v;
            Ok(())
        })
    }

    /// Runs one healing cycle now in this thread, bypassing the cooldown (not the throttle),
    /// and returns its result.
    fn force_healing_cycle(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.publish_now(
            py,
            EventType::FORCED_HEALING_CYCLE,
            vec![("timestamp", py_str(py, &iso(&now())))],
        )?;
        self.inner.policy.lock().throttle.clear_cooldown();
        let inner = self.inner.clone();
        // While the loop is in the middle of a cycle on this pipeline, a second one cannot run
        // here (and this thread may be the loop the cycle's callbacks need): the loop is woken
        // to run the next cycle at once, and the newest finished cycle is returned.
        let busy = inner
            .pipeline
            .bind(py)
            .call_method0("is_running")
            .and_then(|v| v.is_truthy())
            .unwrap_or(false);
        if busy {
            inner.wake.notify_one();
            let pipeline = inner.pipeline.bind(py);
            let running = || {
                pipeline
                    .call_method0("is_running")
                    .and_then(|v| v.is_truthy())
                    .unwrap_or(false)
            };
            // From another thread, wait (GIL released) for the loop's cycle to finish; on the
            // loop's own thread that would deadlock, so only a finished cycle can be returned.
            let on_loop_thread = !py
                .import("asyncio")?
                .call_method0("_get_running_loop")?
                .is_none();
            if !on_loop_thread {
                let patience = inner.settings().callback_timeout_seconds * 4.0 + 5.0;
                let deadline = Instant::now() + Duration::from_secs_f64(patience);
                while running() && Instant::now() < deadline {
                    py.detach(|| std::thread::sleep(Duration::from_millis(2)));
                }
            }
            let recent = pipeline.call_method1("get_recent_cycles", (1,))?;
            if recent.len()? > 0 {
                return Ok(recent.get_item(0)?.unbind());
            }
            return Err(PyRuntimeError::new_err(
                "the loop's first healing cycle is still running; await force_healing_cycle_async() \
                 from the event loop to get its result",
            ));
        }
        // Counted only when it runs here (the loop counts the cycles it runs).
        let (decision, _) = inner.policy.lock().begin_iteration(inner.now_secs(), true);
        if let CycleDecision::Skip(reason) = decision {
            return Err(PyRuntimeError::new_err(format!(
                "forced cycle not run: {reason}"
            )));
        }
        match runtime::block_on(run_cycle(&inner, &Caller::Inline, true)) {
            Ok(Some(result)) => Ok(result),
            Ok(None) => Ok(py.None()),
            Err(message) => Err(PyRuntimeError::new_err(message)),
        }
    }

    fn _force_now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let host = HostLoop::current(py).ok_or_else(|| {
            PyRuntimeError::new_err(
                "force_healing_cycle_async() must be awaited inside a running event loop",
            )
        })?;
        self.publish_now(
            py,
            EventType::FORCED_HEALING_CYCLE,
            vec![("timestamp", py_str(py, &iso(&now())))],
        )?;
        let inner = self.inner.clone();
        let timeout = Duration::from_secs_f64(inner.settings().callback_timeout_seconds);
        let host_for_result = host.clone();
        runtime::spawn_awaitable(py, &host_for_result, async move {
            let caller = Caller::Host { host, timeout };
            // A cycle of the loop in progress is waited for (without blocking the event loop).
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline
                && runtime::attach(|py| {
                    inner
                        .pipeline
                        .bind(py)
                        .call_method0("is_running")
                        .and_then(|v| v.is_truthy())
                        .unwrap_or(false)
                })
                .unwrap_or(false)
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            inner.policy.lock().throttle.clear_cooldown();
            let _ = inner.policy.lock().begin_iteration(inner.now_secs(), true);
            match run_cycle(&inner, &caller, true).await {
                Ok(Some(result)) => Ok(result),
                Ok(None) => none_result(),
                Err(message) => Err(PyRuntimeError::new_err(message)),
            }
        })
    }

    fn get_throttle_state(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let now_s = self.inner.now_secs();
        let state = self.inner.policy.lock().throttle.state(now_s);
        enums::to_py(py, state)
    }

    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        self.stats_dict(py)
    }

    fn get_config(&self, py: Python<'_>) -> Py<AutorepairConfig> {
        self.inner.config.lock().clone_ref(py)
    }

    /// Updates configuration fields by name. Every value is validated first; an unknown
    /// name or a bad value raises and changes nothing.
    #[pyo3(signature = (**kwargs))]
    fn update_config(&self, py: Python<'_>, kwargs: Option<Bound<'_, PyDict>>) -> PyResult<()> {
        let Some(kwargs) = kwargs else { return Ok(()) };
        let config = self.inner.config.lock().clone_ref(py);
        let mut next = config.get().settings();
        let mut names = Vec::new();
        for (k, v) in kwargs.iter() {
            let name: String = k.extract()?;
            set_field(&mut next, &name, &v)?;
            names.push(name);
        }
        next.validate().py_err()?;
        *config.get().settings.lock() = next;
        let list = pyo3::types::PyList::new(py, &names)?.into_any().unbind();
        self.publish_now(
            py,
            EventType::AUTOREPAIR_CONFIG_UPDATED,
            vec![("updated_params", list)],
        )
    }

    fn is_running(&self) -> bool {
        self.inner.run.lock().running
    }

    /// Seconds since `start()`, live while running.
    fn get_uptime(&self) -> f64 {
        self.inner.uptime()
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.inner.pipeline)?;
        if let Some(o) = &self.inner.integration {
            visit.call(o)?;
        }
        if let Some(o) = &self.inner.hooks {
            visit.call(o)?;
        }
        Ok(())
    }
}

#[pyfunction]
#[pyo3(signature = (healing_pipeline, integration_layer=None, event_hooks=None, config=None, *, audit_journal=None))]
pub fn create_autorepair_engine(
    py: Python<'_>,
    healing_pipeline: Py<PyAny>,
    integration_layer: Option<Py<PyAny>>,
    event_hooks: Option<Py<PyAny>>,
    config: Option<Bound<'_, PyAny>>,
    audit_journal: Option<Bound<'_, PyAny>>,
) -> PyResult<AutorepairEngine> {
    AutorepairEngine::py_new(
        py,
        healing_pipeline,
        integration_layer,
        event_hooks,
        config,
        audit_journal,
    )
}
