//! `senti_os.core.faza30.controller`: HealingController and its factories.
//!
//! The controller builds every component in the reference's order, wires them to each
//! other (repair context, state providers, metrics for re-measurement, events), and
//! delegates. Components are created through their Python classes so the controller works
//! with exactly what a user of the submodules gets.

use super::audit_journal::AuditJournal;
use super::convert::type_name;
use super::runtime;
use crate::engine::clock::{iso, now};
use crate::engine::enums::ValueEnum;
use crate::engine::event_hooks::EventType;
use chrono::NaiveDateTime;
use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::time::Instant;

const PKG: &str = "senti_os.core.faza30";

fn class<'py>(py: Python<'py>, module: &str, name: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import(format!("{PKG}.{module}"))?.getattr(name)
}

/// The layer objects a controller was built with, in constructor order.
const LAYER_ARGS: [&str; 7] = [
    "faza25_orchestrator",
    "faza27_task_graph",
    "faza27_5_optimizer",
    "faza28_agent_loop",
    "faza28_5_meta_layer",
    "faza29_governance",
    "event_bus",
];

struct Uptime {
    started: Option<Instant>,
    frozen: f64,
    running: bool,
}

/// Builds, wires and drives the FAZA 30 components.
#[pyclass(module = "senti_os.core.faza30.controller", frozen)]
pub struct HealingController {
    #[pyo3(get)]
    event_hooks: Py<PyAny>,
    #[pyo3(get)]
    integration_layer: Py<PyAny>,
    #[pyo3(get)]
    detection_engine: Py<PyAny>,
    #[pyo3(get)]
    classification_engine: Py<PyAny>,
    #[pyo3(get)]
    graph_repair_engine: Py<PyAny>,
    #[pyo3(get)]
    agent_repair_engine: Py<PyAny>,
    #[pyo3(get)]
    scheduler_repair_engine: Py<PyAny>,
    #[pyo3(get)]
    governance_repair_engine: Py<PyAny>,
    #[pyo3(get)]
    repair_engines: Py<PyAny>,
    #[pyo3(get)]
    snapshot_manager: Py<PyAny>,
    #[pyo3(get)]
    health_engine: Py<PyAny>,
    #[pyo3(get)]
    healing_pipeline: Py<PyAny>,
    #[pyo3(get)]
    autorepair_engine: Py<PyAny>,
    audit_journal: Option<Py<AuditJournal>>,
    layers: [Option<Py<PyAny>>; 7],
    config_given: Option<Py<PyAny>>,
    init_time: NaiveDateTime,
    uptime: Mutex<Uptime>,
}

impl HealingController {
    #[allow(clippy::too_many_arguments)]
    fn build(
        py: Python<'_>,
        layers: [Option<Py<PyAny>>; 7],
        autorepair_config: Option<Py<PyAny>>,
        snapshot_dir: Option<Py<PyAny>>,
        max_snapshots: usize,
        stabilize_seconds: f64,
        audit_journal_dir: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let init_time = now();
        let layer = |i: usize| -> Py<PyAny> {
            layers[i]
                .as_ref()
                .map(|o| o.clone_ref(py))
                .unwrap_or_else(|| py.None())
        };
        let bus = layer(6);

        let event_hooks = class(py, "event_hooks", "EventHooks")?.call1((bus.clone_ref(py),))?;
        let kwargs = PyDict::new(py);
        for (i, name) in LAYER_ARGS.iter().enumerate() {
            kwargs.set_item(name, layer(i))?;
        }
        let integration_layer =
            class(py, "integration_layer", "IntegrationLayer")?.call((), Some(&kwargs))?;
        let detection_engine = class(py, "detection_engine", "DetectionEngine")?.call0()?;
        let classification_engine =
            class(py, "classification_engine", "ClassificationEngine")?.call0()?;
        let graph = class(py, "repair_strategies", "GraphRepairEngine")?.call0()?;
        let agent = class(py, "repair_strategies", "AgentRepairEngine")?.call0()?;
        let scheduler = class(py, "repair_strategies", "SchedulerRepairEngine")?.call0()?;
        let governance = class(py, "repair_strategies", "GovernanceRepairEngine")?.call0()?;
        let repair_engines = PyDict::new(py);
        repair_engines.set_item("graph", &graph)?;
        repair_engines.set_item("agent", &agent)?;
        repair_engines.set_item("scheduler", &scheduler)?;
        repair_engines.set_item("governance", &governance)?;
        let sm_kwargs = PyDict::new(py);
        sm_kwargs.set_item("snapshot_dir", snapshot_dir.unwrap_or_else(|| py.None()))?;
        sm_kwargs.set_item("max_snapshots", max_snapshots)?;
        let snapshot_manager =
            class(py, "snapshot_manager", "SnapshotManager")?.call((), Some(&sm_kwargs))?;
        let health_engine = class(py, "health_engine", "HealthEngine")?.call0()?;

        let p_kwargs = PyDict::new(py);
        p_kwargs.set_item("snapshot_manager", &snapshot_manager)?;
        p_kwargs.set_item("health_engine", &health_engine)?;
        p_kwargs.set_item("event_hooks", &event_hooks)?;
        p_kwargs.set_item("stabilize_seconds", stabilize_seconds)?;
        if let Ok(ctx) = integration_layer.getattr("get_repair_context") {
            p_kwargs.set_item("repair_context", ctx)?;
        }
        // Fresh metrics after the repairs: verification and health_after are measured.
        p_kwargs.set_item(
            "metrics_provider",
            integration_layer.getattr("get_all_metrics")?,
        )?;
        let healing_pipeline = class(py, "healing_pipeline", "HealingPipeline")?.call(
            (&detection_engine, &classification_engine, &repair_engines),
            Some(&p_kwargs),
        )?;
        let config = autorepair_config
            .as_ref()
            .map(|c| c.clone_ref(py))
            .unwrap_or_else(|| py.None());
        // The journal lives in the snapshot folder's `audit` subfolder unless told otherwise;
        // `audit_journal_dir=False` runs without one.
        let journal_arg = audit_journal_dir.map(|d| d.into_bound(py));
        let audit_journal = match journal_arg {
            Some(d) if d.is_instance_of::<pyo3::types::PyBool>() && !d.is_truthy()? => None,
            Some(d) if d.is_instance_of::<pyo3::types::PyBool>() => {
                return Err(PyTypeError::new_err(
                    "audit_journal_dir must be a folder (str or os.PathLike), None or False, got True",
                ))
            }
            given => {
                let dir = match given.filter(|d| !d.is_none()) {
                    Some(d) => d,
                    None => py.import("os")?.getattr("path")?.call_method1(
                        "join",
                        (snapshot_manager.getattr("snapshot_dir")?, "audit"),
                    )?,
                };
                let j = AuditJournal::open(py, &dir, 4 * 1024 * 1024, 8, "batched", 100)?;
                Some(Py::new(py, j)?)
            }
        };
        let ar_kwargs = PyDict::new(py);
        ar_kwargs.set_item(
            "audit_journal",
            audit_journal.as_ref().map(|j| j.clone_ref(py)),
        )?;
        let autorepair_engine = class(py, "autorepair_engine", "AutorepairEngine")?.call(
            (&healing_pipeline, &integration_layer, &event_hooks, config),
            Some(&ar_kwargs),
        )?;

        let controller = HealingController {
            event_hooks: event_hooks.unbind(),
            integration_layer: integration_layer.unbind(),
            detection_engine: detection_engine.unbind(),
            classification_engine: classification_engine.unbind(),
            graph_repair_engine: graph.unbind(),
            agent_repair_engine: agent.unbind(),
            scheduler_repair_engine: scheduler.unbind(),
            governance_repair_engine: governance.unbind(),
            repair_engines: repair_engines.into_any().unbind(),
            snapshot_manager: snapshot_manager.unbind(),
            health_engine: health_engine.unbind(),
            healing_pipeline: healing_pipeline.unbind(),
            autorepair_engine: autorepair_engine.unbind(),
            audit_journal,
            layers,
            config_given: autorepair_config,
            init_time,
            uptime: Mutex::new(Uptime {
                started: None,
                frozen: 0.0,
                running: false,
            }),
        };
        controller.publish(
            py,
            EventType::CONTROLLER_INITIALIZED,
            &[(
                "timestamp",
                iso(&init_time).into_pyobject(py)?.into_any().unbind(),
            )],
        )?;
        Ok(controller)
    }

    fn publish(&self, py: Python<'_>, t: EventType, items: &[(&str, Py<PyAny>)]) -> PyResult<()> {
        let data = PyDict::new(py);
        for (k, v) in items {
            data.set_item(k, v)?;
        }
        self.event_hooks
            .bind(py)
            .call_method1("publish_event", (t.value(), data))?;
        Ok(())
    }

    fn uptime_seconds(&self) -> f64 {
        let u = self.uptime.lock();
        match (u.running, u.started) {
            (true, Some(t)) => t.elapsed().as_secs_f64(),
            _ => u.frozen,
        }
    }

    /// The faza30 component of health: FAZA 30's own state (the reference never supplied it).
    fn self_metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let det = self
            .detection_engine
            .bind(py)
            .call_method0("get_statistics")?;
        let pipe = self
            .healing_pipeline
            .bind(py)
            .call_method0("get_statistics")?;
        let auto = self
            .autorepair_engine
            .bind(py)
            .call_method0("get_statistics")?;
        let out = PyDict::new(py);
        out.set_item("active_faults", det.get_item("active_faults")?)?;
        out.set_item("critical_faults", det.get_item("critical_active")?)?;
        let attempted: f64 = auto.get_item("repairs_attempted")?.extract()?;
        if attempted > 0.0 {
            out.set_item("repair_success_rate", auto.get_item("success_rate")?)?;
        }
        out.set_item("failed_healing_cycles", pipe.get_item("failed_cycles")?)?;
        Ok(out)
    }

    fn cycle_summary<'py>(
        py: Python<'py>,
        result: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        out.set_item("cycle_id", result.getattr("cycle_id")?)?;
        out.set_item("outcome", result.getattr("outcome")?.getattr("value")?)?;
        out.set_item("faults_detected", result.getattr("faults_detected")?)?;
        out.set_item("faults_repaired", result.getattr("faults_repaired")?)?;
        out.set_item("health_improvement", result.getattr("health_improvement")?)?;
        Ok(out)
    }

    fn same_wiring(
        &self,
        py: Python<'_>,
        layers: &[Option<Py<PyAny>>; 7],
        config: &Option<Py<PyAny>>,
    ) -> bool {
        let same = |a: &Option<Py<PyAny>>, b: &Option<Py<PyAny>>| match (a, b) {
            (_, None) => true,
            (Some(x), Some(y)) => x.as_ptr() == y.as_ptr(),
            (None, Some(y)) => y.is_none(py),
        };
        layers
            .iter()
            .zip(self.layers.iter())
            .all(|(given, have)| same(have, given))
            && same(&self.config_given, config)
    }
}

fn layer_args(args: [Option<Py<PyAny>>; 7], py: Python<'_>) -> [Option<Py<PyAny>>; 7] {
    args.map(|o| o.filter(|v| !v.is_none(py)))
}

#[pymethods]
impl HealingController {
    #[new]
    #[pyo3(signature = (faza25_orchestrator=None, faza27_task_graph=None, faza27_5_optimizer=None,
        faza28_agent_loop=None, faza28_5_meta_layer=None, faza29_governance=None, event_bus=None,
        autorepair_config=None, *, snapshot_dir=None, max_snapshots=50, stabilize_seconds=0.0,
        audit_journal_dir=None))]
    #[allow(clippy::too_many_arguments)]
    fn py_new(
        py: Python<'_>,
        faza25_orchestrator: Option<Py<PyAny>>,
        faza27_task_graph: Option<Py<PyAny>>,
        faza27_5_optimizer: Option<Py<PyAny>>,
        faza28_agent_loop: Option<Py<PyAny>>,
        faza28_5_meta_layer: Option<Py<PyAny>>,
        faza29_governance: Option<Py<PyAny>>,
        event_bus: Option<Py<PyAny>>,
        autorepair_config: Option<Py<PyAny>>,
        snapshot_dir: Option<Py<PyAny>>,
        #[pyo3(from_py_with = super::convert::usize_param)] max_snapshots: usize,
        stabilize_seconds: f64,
        audit_journal_dir: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        if !stabilize_seconds.is_finite() || stabilize_seconds < 0.0 {
            return Err(PyValueError::new_err(format!(
                "stabilize_seconds must be a finite number >= 0, got {stabilize_seconds}"
            )));
        }
        let layers = layer_args(
            [
                faza25_orchestrator,
                faza27_task_graph,
                faza27_5_optimizer,
                faza28_agent_loop,
                faza28_5_meta_layer,
                faza29_governance,
                event_bus,
            ],
            py,
        );
        let config = autorepair_config.filter(|c| !c.is_none(py));
        if let Some(c) = &config {
            let cls = class(py, "autorepair_engine", "AutorepairConfig")?;
            if !c.bind(py).is_instance(&cls)? {
                return Err(PyTypeError::new_err(format!(
                    "autorepair_config must be an AutorepairConfig, got {}",
                    type_name(c.bind(py))
                )));
            }
        }
        Self::build(
            py,
            layers,
            config,
            snapshot_dir.filter(|d| !d.is_none(py)),
            max_snapshots,
            stabilize_seconds,
            audit_journal_dir,
        )
    }

    /// The controller's audit journal (None when built with `audit_journal_dir=False`).
    fn get_audit_journal(&self, py: Python<'_>) -> Option<Py<AuditJournal>> {
        self.audit_journal.as_ref().map(|j| j.clone_ref(py))
    }

    /// Starts the auto-repair loop: `await controller.start()`.
    fn start<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        runtime::as_coroutine(slf.py(), slf.getattr("_start_now")?, vec![])
    }

    /// Stops the auto-repair loop: `await controller.stop()`.
    fn stop<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        runtime::as_coroutine(slf.py(), slf.getattr("_stop_now")?, vec![])
    }

    fn _start_now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let auto = self.autorepair_engine.bind(py);
        let awaitable = auto.call_method0("_start_now")?;
        let started = {
            let mut u = self.uptime.lock();
            if u.running {
                false
            } else {
                u.running = true;
                u.started = Some(Instant::now());
                true
            }
        };
        if started {
            let mode = auto
                .getattr("config")?
                .getattr("mode")?
                .getattr("value")?
                .unbind();
            self.publish(py, EventType::CONTROLLER_STARTED, &[("mode", mode)])?;
        }
        Ok(awaitable)
    }

    fn _stop_now<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.get();
        let awaitable = this.autorepair_engine.bind(py).call_method0("_stop_now")?;
        let was_running = {
            let mut u = this.uptime.lock();
            let was = u.running;
            if let Some(t) = u.started {
                u.frozen = t.elapsed().as_secs_f64();
            }
            u.running = false;
            was
        };
        if was_running {
            let uptime = this.uptime_seconds().into_pyobject(py)?.into_any().unbind();
            this.publish(
                py,
                EventType::CONTROLLER_STOPPED,
                &[("uptime_seconds", uptime)],
            )?;
        }
        Ok(awaitable)
    }

    /// Whether the auto-repair loop runs (false once its event loop has closed, even
    /// without `stop()`).
    fn is_running(&self, py: Python<'_>) -> bool {
        let loop_running = self
            .autorepair_engine
            .bind(py)
            .call_method0("is_running")
            .and_then(|v| v.is_truthy())
            .unwrap_or(false);
        let mut u = self.uptime.lock();
        if u.running && !loop_running {
            if let Some(t) = u.started {
                u.frozen = t.elapsed().as_secs_f64();
            }
            u.running = false;
        }
        u.running
    }

    /// Seconds since `start()` (0.0 before it), live while running.
    fn get_uptime(&self) -> f64 {
        self.uptime_seconds()
    }

    #[getter]
    fn _initialized(&self) -> bool {
        true
    }

    #[getter]
    fn _running(&self) -> bool {
        self.uptime.lock().running
    }

    #[getter]
    fn _init_time(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        super::convert::datetime_to_py(py, &self.init_time)
    }

    fn get_detection_engine(&self, py: Python<'_>) -> Py<PyAny> {
        self.detection_engine.clone_ref(py)
    }
    fn get_classification_engine(&self, py: Python<'_>) -> Py<PyAny> {
        self.classification_engine.clone_ref(py)
    }
    fn get_repair_engines(&self, py: Python<'_>) -> Py<PyAny> {
        self.repair_engines.clone_ref(py)
    }
    fn get_healing_pipeline(&self, py: Python<'_>) -> Py<PyAny> {
        self.healing_pipeline.clone_ref(py)
    }
    fn get_snapshot_manager(&self, py: Python<'_>) -> Py<PyAny> {
        self.snapshot_manager.clone_ref(py)
    }
    fn get_health_engine(&self, py: Python<'_>) -> Py<PyAny> {
        self.health_engine.clone_ref(py)
    }
    fn get_autorepair_engine(&self, py: Python<'_>) -> Py<PyAny> {
        self.autorepair_engine.clone_ref(py)
    }
    fn get_integration_layer(&self, py: Python<'_>) -> Py<PyAny> {
        self.integration_layer.clone_ref(py)
    }
    fn get_event_hooks(&self, py: Python<'_>) -> Py<PyAny> {
        self.event_hooks.clone_ref(py)
    }

    /// Health from the layers' current metrics plus FAZA 30's own state. Looking does not
    /// record: the trend comes from the healing cycles, not from how often callers poll.
    fn get_health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        // Looking must not take the rate deltas the loop will read.
        let peek = PyDict::new(py);
        peek.set_item("advance_baselines", false)?;
        let metrics =
            self.integration_layer
                .bind(py)
                .call_method("get_all_metrics", (), Some(&peek))?;
        let kwargs = PyDict::new(py);
        for (key, kw) in [
            ("faza25", "faza25_metrics"),
            ("faza27", "faza27_metrics"),
            ("faza28", "faza28_metrics"),
            ("faza28_5", "faza28_5_metrics"),
            ("faza29", "faza29_metrics"),
        ] {
            if let Ok(v) = metrics.get_item(key) {
                kwargs.set_item(kw, v)?;
            }
        }
        kwargs.set_item("faza30_metrics", self.self_metrics(py)?)?;
        kwargs.set_item("record", false)?;
        let health = self.health_engine.bind(py);
        let score = health.call_method("compute_health_score", (), Some(&kwargs))?;
        let trend = health.call_method0("analyze_trend")?;
        let out = PyDict::new(py);
        out.set_item("overall_score", score.getattr("overall_score")?)?;
        out.set_item("level", score.getattr("level")?.getattr("value")?)?;
        let components = PyList::empty(py);
        for c in score.getattr("components")?.try_iter()? {
            let c = c?;
            let d = PyDict::new(py);
            d.set_item("name", c.getattr("name")?)?;
            d.set_item("score", c.getattr("score")?)?;
            d.set_item("weight", c.getattr("weight")?)?;
            components.append(d)?;
        }
        out.set_item("components", components)?;
        let t = PyDict::new(py);
        t.set_item("direction", trend.getattr("direction")?.getattr("value")?)?;
        t.set_item("slope", trend.getattr("slope")?)?;
        t.set_item("confidence", trend.getattr("confidence")?)?;
        t.set_item("prediction", trend.getattr("prediction")?)?;
        out.set_item("trend", t)?;
        let ts = score.getattr("timestamp")?.call_method0("isoformat")?;
        out.set_item("timestamp", ts)?;
        Ok(out)
    }

    /// Status in time that follows the active faults, not the history.
    fn get_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let auto = self.autorepair_engine.bind(py);
        let det_stats = self
            .detection_engine
            .bind(py)
            .call_method0("get_statistics")?;
        let recent = self
            .healing_pipeline
            .bind(py)
            .call_method1("get_recent_cycles", (5,))?;
        let recent_len = recent.len()?;
        let last = if recent_len > 0 {
            // Newest first: [0] is the latest cycle.
            recent
                .get_item(0)?
                .getattr("outcome")?
                .getattr("value")?
                .unbind()
        } else {
            py.None()
        };
        let out = PyDict::new(py);
        out.set_item("running", self.is_running(py))?;
        out.set_item("uptime_seconds", self.uptime_seconds())?;
        out.set_item(
            "autorepair_mode",
            auto.getattr("config")?.getattr("mode")?.getattr("value")?,
        )?;
        out.set_item(
            "throttle_state",
            auto.call_method0("get_throttle_state")?.getattr("value")?,
        )?;
        out.set_item("active_faults", det_stats.get_item("active_faults")?)?;
        out.set_item("critical_faults", det_stats.get_item("critical_active")?)?;
        out.set_item("recent_healing_cycles", recent_len)?;
        out.set_item("last_healing_success", last)?;
        out.set_item(
            "integration_status",
            self.integration_layer
                .bind(py)
                .call_method0("get_integration_status")?,
        )?;
        out.set_item("timestamp", iso(&now()))?;
        Ok(out)
    }

    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let controller = PyDict::new(py);
        controller.set_item("initialized", true)?;
        controller.set_item("running", self.is_running(py))?;
        controller.set_item("uptime_seconds", self.uptime_seconds())?;
        out.set_item("controller", controller)?;
        out.set_item(
            "detection",
            self.detection_engine
                .bind(py)
                .call_method0("get_statistics")?,
        )?;
        out.set_item(
            "classification",
            self.classification_engine
                .bind(py)
                .call_method0("get_statistics")?,
        )?;
        let repair = PyDict::new(py);
        for (name, engine) in [
            ("graph", &self.graph_repair_engine),
            ("agent", &self.agent_repair_engine),
            ("scheduler", &self.scheduler_repair_engine),
            ("governance", &self.governance_repair_engine),
        ] {
            repair.set_item(name, engine.bind(py).call_method0("get_statistics")?)?;
        }
        out.set_item("repair", repair)?;
        out.set_item(
            "pipeline",
            self.healing_pipeline
                .bind(py)
                .call_method0("get_statistics")?,
        )?;
        out.set_item(
            "snapshots",
            self.snapshot_manager
                .bind(py)
                .call_method0("get_statistics")?,
        )?;
        out.set_item(
            "health",
            self.health_engine.bind(py).call_method0("get_statistics")?,
        )?;
        out.set_item(
            "autorepair",
            self.autorepair_engine
                .bind(py)
                .call_method0("get_statistics")?,
        )?;
        out.set_item(
            "integration",
            self.integration_layer
                .bind(py)
                .call_method0("get_statistics")?,
        )?;
        out.set_item(
            "events",
            self.event_hooks.bind(py).call_method0("get_statistics")?,
        )?;
        Ok(out)
    }

    /// Runs one healing cycle now (no sleep) and returns its summary.
    fn force_healing_cycle<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let result = self
            .autorepair_engine
            .bind(py)
            .call_method0("force_healing_cycle")?;
        if result.is_none() {
            let out = PyDict::new(py);
            out.set_item("error", "No healing cycle executed")?;
            return Ok(out);
        }
        Self::cycle_summary(py, &result)
    }

    /// The awaitable variant of `force_healing_cycle`, for asyncio callers.
    fn force_healing_cycle_async<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let glue = py.import(format!("{PKG}._runtime"))?;
        let auto = slf
            .get()
            .autorepair_engine
            .bind(py)
            .getattr("force_healing_cycle_async")?;
        let summarize = slf.getattr("_summarize")?;
        glue.getattr("then")?.call1((auto, summarize))
    }

    fn _summarize<'py>(
        &self,
        py: Python<'py>,
        result: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        Self::cycle_summary(py, &result)
    }

    #[pyo3(signature = (snapshot_type=None))]
    fn create_snapshot<'py>(
        &self,
        py: Python<'py>,
        snapshot_type: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let snapshot_type = match snapshot_type {
            Some(t) => t,
            None => pyo3::types::PyString::new(py, "manual").into_any(),
        };
        let metadata = PyDict::new(py);
        metadata.set_item("controller", "faza30")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("snapshot_type", snapshot_type)?;
        kwargs.set_item("metadata", metadata)?;
        self.snapshot_manager
            .bind(py)
            .call_method("create_snapshot", (), Some(&kwargs))
    }

    fn restore_snapshot<'py>(
        &self,
        py: Python<'py>,
        snapshot_id: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.snapshot_manager
            .bind(py)
            .call_method1("restore_snapshot", (snapshot_id,))
    }

    fn set_autorepair_mode(&self, py: Python<'_>, mode: Bound<'_, PyAny>) -> PyResult<()> {
        // The engine checks the mode (a member or its value) and names what is wrong.
        self.autorepair_engine
            .bind(py)
            .call_method1("set_mode", (mode,))?;
        Ok(())
    }

    /// Active faults; with `include_resolved`, also those resolved but still in the history.
    #[pyo3(signature = (include_resolved=false))]
    fn get_faults<'py>(
        &self,
        py: Python<'py>,
        include_resolved: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let det = self.detection_engine.bind(py);
        let active = det.call_method0("get_active_faults")?;
        let faults = PyList::empty(py);
        let mut critical = 0usize;
        let mut seen = std::collections::HashSet::new();
        let describe = |f: &Bound<'py, PyAny>, resolved: bool| -> PyResult<Bound<'py, PyDict>> {
            let d = PyDict::new(py);
            d.set_item("fault_id", f.getattr("fault_id")?)?;
            d.set_item("source", f.getattr("source")?.str()?)?;
            d.set_item("severity", f.getattr("severity")?.str()?)?;
            d.set_item("fault_type", f.getattr("fault_type")?)?;
            d.set_item("description", f.getattr("description")?)?;
            if include_resolved {
                d.set_item("resolved", resolved)?;
            }
            Ok(d)
        };
        for f in active.try_iter()? {
            let f = f?;
            if f.getattr("severity")?
                .getattr("value")?
                .extract::<String>()?
                == "critical"
            {
                critical += 1;
            }
            seen.insert(f.getattr("fault_id")?.extract::<String>()?);
            faults.append(describe(&f, false)?)?;
        }
        let active_count = faults.len();
        if include_resolved {
            for f in det.getattr("fault_history")?.try_iter()? {
                let f = f?;
                let id: String = f.getattr("fault_id")?.extract()?;
                if seen.insert(id) {
                    faults.append(describe(&f, true)?)?;
                }
            }
        }
        let out = PyDict::new(py);
        out.set_item("active_faults", active_count)?;
        out.set_item("critical_faults", critical)?;
        out.set_item("faults", faults)?;
        Ok(out)
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        for o in [
            &self.event_hooks,
            &self.integration_layer,
            &self.detection_engine,
            &self.classification_engine,
            &self.graph_repair_engine,
            &self.agent_repair_engine,
            &self.scheduler_repair_engine,
            &self.governance_repair_engine,
            &self.repair_engines,
            &self.snapshot_manager,
            &self.health_engine,
            &self.healing_pipeline,
            &self.autorepair_engine,
        ] {
            visit.call(o)?;
        }
        for o in self.layers.iter().flatten() {
            visit.call(o)?;
        }
        if let Some(c) = &self.config_given {
            visit.call(c)?;
        }
        Ok(())
    }
}

/// The process-wide controller of `get_healing_controller`.
static GLOBAL: Mutex<Option<Py<HealingController>>> = Mutex::new(None);

/// Returns the process-wide controller, building it on first use (or with `force_new`).
/// Called again with other layers or another config it refuses with ValueError instead of
/// silently ignoring them.
#[pyfunction]
#[pyo3(signature = (faza25_orchestrator=None, faza27_task_graph=None, faza27_5_optimizer=None,
    faza28_agent_loop=None, faza28_5_meta_layer=None, faza29_governance=None, event_bus=None,
    autorepair_config=None, force_new=false))]
#[allow(clippy::too_many_arguments)]
pub fn get_healing_controller(
    py: Python<'_>,
    faza25_orchestrator: Option<Py<PyAny>>,
    faza27_task_graph: Option<Py<PyAny>>,
    faza27_5_optimizer: Option<Py<PyAny>>,
    faza28_agent_loop: Option<Py<PyAny>>,
    faza28_5_meta_layer: Option<Py<PyAny>>,
    faza29_governance: Option<Py<PyAny>>,
    event_bus: Option<Py<PyAny>>,
    autorepair_config: Option<Py<PyAny>>,
    force_new: bool,
) -> PyResult<Py<HealingController>> {
    let layers = layer_args(
        [
            faza25_orchestrator,
            faza27_task_graph,
            faza27_5_optimizer,
            faza28_agent_loop,
            faza28_5_meta_layer,
            faza29_governance,
            event_bus,
        ],
        py,
    );
    let config = autorepair_config.filter(|c| !c.is_none(py));
    if !force_new {
        let existing = GLOBAL.lock().as_ref().map(|c| c.clone_ref(py));
        if let Some(existing) = existing {
            if existing.get().same_wiring(py, &layers, &config) {
                return Ok(existing);
            }
            return Err(PyValueError::new_err(
                "get_healing_controller() already built a controller wired to other layers or another \
                 autorepair_config; pass force_new=True to replace it, or use create_healing_controller() \
                 for an independent one",
            ));
        }
    }
    // Built without holding the lock: construction runs Python code.
    let built = Py::new(
        py,
        HealingController::build(py, layers, config, None, 50, 0.0, None)?,
    )?;
    let mut slot = GLOBAL.lock();
    if !force_new {
        if let Some(existing) = slot.as_ref() {
            // Another thread won the race; everyone gets the same controller.
            return Ok(existing.clone_ref(py));
        }
    }
    let old = slot.replace(built.clone_ref(py));
    drop(slot);
    drop(old);
    Ok(built)
}

/// Always a new, independent controller.
#[pyfunction]
#[pyo3(signature = (faza25_orchestrator=None, faza27_task_graph=None, faza27_5_optimizer=None,
    faza28_agent_loop=None, faza28_5_meta_layer=None, faza29_governance=None, event_bus=None,
    autorepair_config=None, *, snapshot_dir=None, max_snapshots=50, stabilize_seconds=0.0,
    audit_journal_dir=None))]
#[allow(clippy::too_many_arguments)]
pub fn create_healing_controller(
    py: Python<'_>,
    faza25_orchestrator: Option<Py<PyAny>>,
    faza27_task_graph: Option<Py<PyAny>>,
    faza27_5_optimizer: Option<Py<PyAny>>,
    faza28_agent_loop: Option<Py<PyAny>>,
    faza28_5_meta_layer: Option<Py<PyAny>>,
    faza29_governance: Option<Py<PyAny>>,
    event_bus: Option<Py<PyAny>>,
    autorepair_config: Option<Py<PyAny>>,
    snapshot_dir: Option<Py<PyAny>>,
    #[pyo3(from_py_with = super::convert::usize_param)] max_snapshots: usize,
    stabilize_seconds: f64,
    audit_journal_dir: Option<Py<PyAny>>,
) -> PyResult<HealingController> {
    HealingController::py_new(
        py,
        faza25_orchestrator,
        faza27_task_graph,
        faza27_5_optimizer,
        faza28_agent_loop,
        faza28_5_meta_layer,
        faza29_governance,
        event_bus,
        autorepair_config,
        snapshot_dir,
        max_snapshots,
        stabilize_seconds,
        audit_journal_dir,
    )
}
