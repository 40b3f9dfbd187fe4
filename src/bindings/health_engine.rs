//! `senti_os.core.faza30.health_engine`: HealthEngine, HealthScore, HealthTrend,
//! HealthComponent, create_health_engine.
//!
//! Only the keys the engine uses are read from each metrics dict (see `input::KeySet`), and the
//! parts of a score callers seldom read (components, metadata, timestamp) are built on access.

use super::input::{
    count_arg, dict_arg, num_from_py, timestamp_at, truthy, wall_micros, KeySet, Members,
};
use super::record::{self, Lazy, LazySource};
use crate::engine::health_engine::{
    from_alias, Component, Health, HealthEngine as Engine, HealthLevel, Readings, Trend,
    TrendDirection, DEFAULT_HISTORY_SIZE, DEFAULT_TREND_WINDOW,
};
use crate::engine::pynum::Num;
use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};
use pyo3::{PyTraverseError, PyVisit};
use std::sync::Arc;

py_record! {
    /// One component of a health score: its name, score (0-100), weight and details.
    pub struct HealthComponent in "senti_os.core.faza30.health_engine" {
        req name,
        req score,
        req weight,
        opt details = record::new_dict,
    }
}

py_record! {
    /// A system health score: overall (0-100), level, the six components, time and metadata.
    pub struct HealthScore in "senti_os.core.faza30.health_engine" {
        req overall_score,
        req level,
        opt components = record::new_list,
        opt timestamp = record::now,
        opt metadata = record::new_dict,
        core Health,
    }
}

py_record! {
    /// The health trend over a window: direction, slope per sample, R² confidence, window size,
    /// the scores analysed and the predicted next score.
    pub struct HealthTrend in "senti_os.core.faza30.health_engine" {
        req direction,
        req slope,
        req confidence,
        req window_size,
        opt recent_scores = record::new_list,
        opt prediction = record::zero_float,
        opt timestamp = record::now,
    }
}

static LEVELS: Members<HealthLevel> = Members::new();
static DIRECTIONS: Members<TrendDirection> = Members::new();

/// The keys each component reads (its four, then its alias), in `Component::ALL` order.
static KEYS: [KeySet; 6] = [
    KeySet::new(Component::Faza25.names()),
    KeySet::new(Component::Faza27.names()),
    KeySet::new(Component::Faza28.names()),
    KeySet::new(Component::Faza28_5.names()),
    KeySet::new(Component::Faza29.names()),
    KeySet::new(Component::Faza30.names()),
];

/// The component names as Python strings, made once.
fn component_names(py: Python<'_>) -> &[Py<PyString>; 6] {
    static NAMES: PyOnceLock<[Py<PyString>; 6]> = PyOnceLock::new();
    NAMES.get_or_init(py, || {
        Component::ALL.map(|c| PyString::intern(py, c.name()).unbind())
    })
}

/// One component's readings: each key, or the alias when the key it stands for is missing or
/// None.
fn read_component(component: Component, dict: &Bound<'_, PyDict>) -> PyResult<Readings> {
    let keys = &KEYS[component as usize];
    let is_flag = |i: usize| i < 4 && component.is_flag(i);
    let plain = if component.alias_target().is_some() {
        keys.read_plain_numbers::<5>(dict, is_flag)
    } else {
        keys.read_plain_numbers::<4>(dict, is_flag)
            .map(|[a, b, c, d]| [a, b, c, d, None])
    };
    if let Some(values) = plain {
        let mut out: Readings = [values[0], values[1], values[2], values[3]];
        if let (Some(target), Some(v)) = (component.alias_target(), values[4]) {
            if out[target].is_none() {
                out[target] = Some(from_alias(component, target, v));
            }
        }
        return Ok(out);
    }
    let what = |i: usize| format!("{}['{}']", component.argument(), component.names()[i]);
    let values: [Option<Bound<'_, PyAny>>; 5] = if component.alias_target().is_some() {
        KEYS[component as usize].read_slots::<5>(dict, &what)?
    } else {
        let [a, b, c, d] = KEYS[component as usize].read_slots::<4>(dict, &what)?;
        [a, b, c, d, None]
    };
    let mut out: Readings = [None; 4];
    for (i, slot) in out.iter_mut().enumerate() {
        let Some(v) = values[i].as_ref().filter(|v| !v.is_none()) else {
            continue;
        };
        *slot = if component.is_flag(i) {
            Some(Num::Bool(truthy(v, &|| what(i))?))
        } else {
            num_from_py(v, &|| what(i))?
        };
    }
    if let (Some(target), Some(v)) = (component.alias_target(), values[4].as_ref()) {
        if out[target].is_none() {
            out[target] = num_from_py(v, &|| what(4))?.map(|r| from_alias(component, target, r));
        }
    }
    Ok(out)
}

fn float(py: Python<'_>, v: f64) -> Py<PyAny> {
    PyFloat::new(py, v).into_any().unbind()
}

fn score_result(
    py: Python<'_>,
    health: Health,
    dicts: [Option<Py<PyDict>>; 6],
    micros: i64,
) -> PyResult<HealthScore> {
    let [components, timestamp, metadata] = Lazy::shared(
        Arc::new(ScoreSource {
            health,
            dicts,
            micros,
        }),
        [COMPONENTS, TIMESTAMP, METADATA],
    );
    Ok(HealthScore {
        overall_score: Lazy::ready(float(py, health.overall)),
        level: Lazy::ready(LEVELS.get(py, health.level)?),
        components,
        timestamp,
        metadata,
        core: Some(health),
        modified: false,
    })
}

const COMPONENTS: u8 = 0;
const TIMESTAMP: u8 = 1;
const METADATA: u8 = 2;
const RECENT: u8 = 3;

/// What a score's deferred fields are built from.
struct ScoreSource {
    health: Health,
    /// The metrics dicts passed (None for None or an empty dict).
    dicts: [Option<Py<PyDict>>; 6],
    micros: i64,
}

impl LazySource for ScoreSource {
    fn make(&self, py: Python<'_>, field: u8) -> PyResult<Py<PyAny>> {
        let names = component_names(py);
        match field {
            COMPONENTS => {
                let list = PyList::empty(py);
                for (i, c) in Component::ALL.iter().enumerate() {
                    // The dict passed, or a new {} for None or an empty dict, as the reference did.
                    let metrics = match &self.dicts[i] {
                        Some(d) => d.clone_ref(py),
                        None => PyDict::new(py).unbind(),
                    };
                    let details = PyDict::new(py);
                    details.set_item(intern!(py, "metrics"), metrics)?;
                    let component = HealthComponent {
                        name: Lazy::ready(names[i].clone_ref(py).into_any()),
                        score: Lazy::ready(float(py, self.health.components[i])),
                        weight: Lazy::ready(float(py, c.weight())),
                        details: Lazy::ready(details.into_any().unbind()),
                        modified: false,
                    };
                    list.append(Py::new(py, component)?)?;
                }
                Ok(list.into_any().unbind())
            }
            TIMESTAMP => timestamp_at(py, self.micros),
            _ => {
                let meta = PyDict::new(py);
                meta.set_item(intern!(py, "component_count"), Component::ALL.len())?;
                meta.set_item(
                    intern!(py, "lowest_component"),
                    names[self.health.lowest as usize].bind(py),
                )?;
                meta.set_item(
                    intern!(py, "highest_component"),
                    names[self.health.highest as usize].bind(py),
                )?;
                Ok(meta.into_any().unbind())
            }
        }
    }

    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        for dict in self.dicts.iter().flatten() {
            visit.call(dict)?;
        }
        Ok(())
    }
}

/// What a trend's deferred fields are built from.
struct TrendSource {
    recent: Vec<f64>,
    micros: i64,
}

impl LazySource for TrendSource {
    fn make(&self, py: Python<'_>, field: u8) -> PyResult<Py<PyAny>> {
        match field {
            RECENT => Ok(PyList::new(py, &self.recent)?.into_any().unbind()),
            _ => timestamp_at(py, self.micros),
        }
    }
}

fn trend_result(py: Python<'_>, trend: Trend, micros: i64) -> PyResult<HealthTrend> {
    let window = trend.recent.len();
    let [recent_scores, timestamp] = Lazy::shared(
        Arc::new(TrendSource {
            recent: trend.recent,
            micros,
        }),
        [RECENT, TIMESTAMP],
    );
    Ok(HealthTrend {
        direction: Lazy::ready(DIRECTIONS.get(py, trend.direction)?),
        slope: Lazy::ready(float(py, trend.slope)),
        confidence: Lazy::ready(float(py, trend.confidence)),
        window_size: Lazy::ready(window.into_pyobject(py)?.into_any().unbind()),
        recent_scores,
        prediction: Lazy::ready(float(py, trend.prediction)),
        timestamp,
        modified: false,
    })
}

/// Scores system health (0-100) from the layers' metrics and analyses its trend.
///
/// Canonical metric keys, per argument (aliases in brackets are read when the key is missing
/// or None):
/// - faza25_metrics: queue_size, task_success_rate [error_rate, as 1 - error_rate],
///   scheduler_efficiency, cpu_usage
/// - faza27_metrics: graph_complexity, cycle_count, bottleneck_detected [bottleneck_count,
///   non-zero means detected], optimization_score
/// - faza28_metrics: agent_failure_rate [failure_rate], cooperation_score, agent_performance,
///   communication_health
/// - faza28_5_metrics: stability_score, policy_effectiveness, anomaly_count, feedback_health
/// - faza29_metrics: governance_violations [violation_count], takeover_active, override_count,
///   risk_score (0-100)
/// - faza30_metrics: active_faults, repair_success_rate, critical_faults, failed_healing_cycles
#[pyclass(module = "senti_os.core.faza30.health_engine")]
pub struct HealthEngine {
    engine: Mutex<Engine>,
}

#[pymethods]
impl HealthEngine {
    /// `history_size` (an int, at least 1) is how many overall scores the history keeps.
    #[new]
    #[pyo3(signature = (history_size=None), text_signature = "(history_size=100)")]
    pub fn py_new(history_size: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let size = match history_size {
            Some(h) => count_arg(h, "history_size", 1)?,
            None => DEFAULT_HISTORY_SIZE,
        };
        let engine = Engine::new(size).map_err(super::errors::to_py_err)?;
        Ok(HealthEngine {
            engine: Mutex::new(engine),
        })
    }

    #[getter]
    fn history_size(&self) -> usize {
        self.engine.lock().history_size()
    }

    /// The component weights, in scoring order (a new dict each time; they sum to 1.0).
    #[getter]
    fn _component_weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        for c in Component::ALL {
            out.set_item(c.name(), c.weight())?;
        }
        Ok(out)
    }

    /// Scores the six components and records the overall score. Each argument is a dict or
    /// None; wrong types raise TypeError and NaN or infinite values ValueError, naming the key,
    /// before anything is recorded. `record=False` scores without adding to the history, so
    /// a caller that only looks does not change the trend.
    #[pyo3(signature = (faza25_metrics=None, faza27_metrics=None, faza28_metrics=None, faza28_5_metrics=None, faza29_metrics=None, faza30_metrics=None, *, record=true))]
    #[allow(clippy::too_many_arguments)]
    pub fn compute_health_score(
        &self,
        py: Python<'_>,
        faza25_metrics: Option<&Bound<'_, PyAny>>,
        faza27_metrics: Option<&Bound<'_, PyAny>>,
        faza28_metrics: Option<&Bound<'_, PyAny>>,
        faza28_5_metrics: Option<&Bound<'_, PyAny>>,
        faza29_metrics: Option<&Bound<'_, PyAny>>,
        faza30_metrics: Option<&Bound<'_, PyAny>>,
        record: bool,
    ) -> PyResult<Py<HealthScore>> {
        let args = [
            faza25_metrics,
            faza27_metrics,
            faza28_metrics,
            faza28_5_metrics,
            faza29_metrics,
            faza30_metrics,
        ];
        let mut readings: [Readings; 6] = [[None; 4]; 6];
        let mut dicts: [Option<Py<PyDict>>; 6] = Default::default();
        for (i, c) in Component::ALL.iter().enumerate() {
            let Some(dict) = dict_arg(args[i], c.argument())? else {
                continue;
            };
            if dict.is_empty() {
                continue;
            }
            readings[i] = read_component(*c, dict)?;
            dicts[i] = Some(dict.clone().unbind());
        }
        let micros = wall_micros();
        let health = if record {
            self.engine.lock().compute(&readings)
        } else {
            crate::engine::health_engine::score(&readings)
        };
        Py::new(py, score_result(py, health, dicts, micros)?)
    }

    /// The trend over the newest `window_size` scores (0 analyses none; negative is a
    /// ValueError). With fewer than two scores the trend is STABLE with slope 0.0 and predicts
    /// the latest score (100.0 with no history). `window_size` on the result is the number of
    /// scores analysed.
    #[pyo3(signature = (window_size=None), text_signature = "($self, window_size=10)")]
    fn analyze_trend(
        &self,
        py: Python<'_>,
        window_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<HealthTrend>> {
        let window = match window_size {
            Some(w) => count_arg(w, "window_size", 0)?,
            None => DEFAULT_TREND_WINDOW,
        };
        let micros = wall_micros();
        let trend = self.engine.lock().trend(window);
        Py::new(py, trend_result(py, trend, micros)?)
    }

    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (stats, trend) = {
            let engine = self.engine.lock();
            (engine.stats(), engine.trend(DEFAULT_TREND_WINDOW))
        };
        let out = PyDict::new(py);
        out.set_item("total_scores_computed", stats.total_scores_computed)?;
        out.set_item("avg_health", stats.avg_health)?;
        out.set_item("min_health", stats.min_health)?;
        out.set_item("max_health", stats.max_health)?;
        out.set_item("history_size", stats.history_size)?;
        out.set_item(
            "current_trend",
            crate::engine::enums::ValueEnum::value(trend.direction),
        )?;
        out.set_item("trend_slope", trend.slope)?;
        Ok(out)
    }

    /// The newest `limit` overall scores, oldest first (0 gives none; negative is a ValueError).
    #[pyo3(signature = (limit=None), text_signature = "($self, limit=50)")]
    fn get_health_history(&self, limit: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<f64>> {
        let limit = match limit {
            Some(l) => count_arg(l, "limit", 0)?,
            None => 50,
        };
        Ok(self.engine.lock().history(limit))
    }
}

#[pyfunction]
#[pyo3(signature = (history_size=None), text_signature = "(history_size=100)")]
pub fn create_health_engine(history_size: Option<&Bound<'_, PyAny>>) -> PyResult<HealthEngine> {
    HealthEngine::py_new(history_size)
}
