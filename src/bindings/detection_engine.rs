//! `senti_os.core.faza30.detection_engine`: DetectionEngine, DetectedFault, AnomalyDetector,
//! DetectionRule, create_detection_engine.
//!
//! The engine keeps the Python object of every fault it tracks (as the fault's handle), so a
//! persisting fault is returned as the same object and a steady pass builds no Python
//! objects at all. Layer dicts are read key by key: rule keys are matched against interned
//! strings by pointer (dict literals in Python source use interned keys), and only numbers
//! and the keys the rules read are converted.

use super::convert::{self, datetime_to_py, from_map, type_name};
use super::enums;
use super::errors::IntoPyResult;
use super::record::Lazy;
use crate::engine::detection_engine::{
    self as engine, AnomalyMethod, Change, DetectInput, Fault, Layer, Rule, DEFAULT_MAX_METRICS,
    DEFAULT_THRESHOLD, DEFAULT_WINDOW_SIZE,
};
use crate::engine::pyfmt::float_repr;
use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const MODULE: &str = "senti_os.core.faza30.detection_engine";

py_record! {
    /// A detected or predicted fault. `timestamp` is when the condition was first detected;
    /// `description` and `metrics` follow the latest observation of a persisting condition.
    pub struct DetectedFault in "senti_os.core.faza30.detection_engine" {
        req fault_id,
        req source,
        req severity,
        req fault_type,
        req description,
        opt metrics = super::record::new_dict,
        opt timestamp = super::record::now,
        opt predicted = super::record::false_,
        core Arc<Fault>,
    }
    methods {
        /// The fault as plain data: enum values, ISO timestamp, and the metrics dict itself.
        fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
            let out = PyDict::new(py);
            out.set_item("fault_id", self.fault_id.get(py)?)?;
            out.set_item("source", enum_value(self.source.get(py)?.bind(py))?)?;
            out.set_item("severity", enum_value(self.severity.get(py)?.bind(py))?)?;
            out.set_item("fault_type", self.fault_type.get(py)?)?;
            out.set_item("description", self.description.get(py)?)?;
            out.set_item("metrics", self.metrics.get(py)?)?;
            let timestamp = self.timestamp.get(py)?;
            let timestamp = timestamp.bind(py);
            if timestamp.hasattr("isoformat")? {
                out.set_item("timestamp", timestamp.call_method0("isoformat")?)?;
            } else {
                out.set_item("timestamp", timestamp)?;
            }
            out.set_item("predicted", self.predicted.get(py)?)?;
            Ok(out)
        }
    }
}

/// `member.value` for an enum member; anything else as it is.
fn enum_value<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if obj.is_instance_of::<PyString>() {
        return Ok(obj.clone());
    }
    match obj.getattr("value") {
        Ok(v) => Ok(v),
        Err(err) if err.is_instance_of::<pyo3::exceptions::PyAttributeError>(obj.py()) => {
            Ok(obj.clone())
        }
        Err(err) => Err(err),
    }
}

fn lazy_description(fault: &Arc<Fault>) -> Lazy {
    let f = fault.clone();
    Lazy::later(move |py| Ok(PyString::new(py, &f.description).into_any().unbind()))
}

fn lazy_metrics(fault: &Arc<Fault>) -> Lazy {
    let f = fault.clone();
    Lazy::later(move |py| Ok(from_map(py, &f.metrics)?.into_any().unbind()))
}

impl DetectedFault {
    fn from_engine(py: Python<'_>, fault: &Arc<Fault>) -> PyResult<Self> {
        let timestamp = fault.timestamp;
        Ok(DetectedFault {
            fault_id: Lazy::ready(PyString::new(py, &fault.fault_id).into_any().unbind()),
            source: Lazy::ready(enums::to_py(py, fault.source)?),
            severity: Lazy::ready(enums::to_py(py, fault.severity)?),
            fault_type: Lazy::ready(PyString::intern(py, fault.fault_type).into_any().unbind()),
            description: lazy_description(fault),
            metrics: lazy_metrics(fault),
            timestamp: Lazy::later(move |py| datetime_to_py(py, &timestamp)),
            predicted: Lazy::ready(
                PyBool::new(py, fault.predicted)
                    .to_owned()
                    .into_any()
                    .unbind(),
            ),
            core: Some(fault.clone()),
            modified: false,
        })
    }

    /// The engine's fault, while no attribute has been assigned from Python.
    pub fn engine_fault(&self) -> Option<&Arc<Fault>> {
        // An assigned attribute, or a metrics dict Python holds (and may have changed in
        // place), means the engine value no longer speaks for the object.
        if self.modified || self.metrics.is_materialized() {
            None
        } else {
            self.core.as_ref()
        }
    }
}

/// Points a tracked fault's object at a refreshed engine fault (same id, new values).
fn refresh(py: Python<'_>, object: &Py<DetectedFault>, fault: &Arc<Fault>) {
    let Ok(mut obj) = object.bind(py).try_borrow_mut() else {
        return;
    };
    let old_description = std::mem::replace(&mut obj.description, lazy_description(fault));
    let old_metrics = std::mem::replace(&mut obj.metrics, lazy_metrics(fault));
    obj.core = Some(fault.clone());
    // The old values may hold user objects; release them after the borrow.
    drop(obj);
    drop((old_description, old_metrics));
}

// ------------------------------------------------------------------------------------------
// Reading layer dicts
// ------------------------------------------------------------------------------------------

/// The rule keys of each layer as interned strings.
static LAYER_KEYS: PyOnceLock<Vec<Vec<Py<PyString>>>> = PyOnceLock::new();

fn layer_keys(py: Python<'_>) -> &'static [Vec<Py<PyString>>] {
    LAYER_KEYS.get_or_init(py, || {
        Layer::ALL
            .iter()
            .map(|l| {
                l.keys()
                    .iter()
                    .map(|k| PyString::intern(py, k.name).unbind())
                    .collect()
            })
            .collect()
    })
}

fn key_path(layer: Layer, key: &str) -> String {
    format!("{}['{key}']", layer.param())
}

/// An int or float (not a bool) as a JSON number; `None` for anything else (nothing else is
/// read). NaN, infinities and integers beyond 64 bits are refused, naming the value by `path`.
/// Exact types are tested first: they are the common case and the cheapest test.
fn number_of(v: &Bound<'_, PyAny>, path: impl Fn() -> String) -> PyResult<Option<Number>> {
    let exact_float = v.is_exact_instance_of::<PyFloat>();
    if exact_float || (!v.is_exact_instance_of::<PyInt>() && v.is_instance_of::<PyFloat>()) {
        let x = v.cast::<PyFloat>().map(|f| f.value()).unwrap_or(f64::NAN);
        return match Number::from_f64(x) {
            Some(n) => Ok(Some(n)),
            None => Err(PyValueError::new_err(format!(
                "{}: {} is not a finite number",
                path(),
                float_repr(x)
            ))),
        };
    }
    // bool is an int subclass, but not a number here.
    let Ok(i) = v.cast::<PyInt>() else {
        return Ok(None);
    };
    if v.is_instance_of::<PyBool>() {
        return Ok(None);
    }
    if let Ok(x) = i.extract::<i64>() {
        return Ok(Some(x.into()));
    }
    if let Ok(x) = i.extract::<u64>() {
        return Ok(Some(x.into()));
    }
    Err(PyValueError::new_err(format!(
        "{}: integer does not fit in 64 bits",
        path()
    )))
}

/// A scalar (number, bool, None, str) as a JSON value, or `None` for containers and other
/// objects, which need a walk.
fn scalar_of(v: &Bound<'_, PyAny>, path: impl Fn() -> String) -> PyResult<Option<Value>> {
    if let Some(n) = number_of(v, path)? {
        return Ok(Some(Value::Number(n)));
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Some(Value::Bool(b.is_true())));
    }
    if v.is_none() {
        return Ok(Some(Value::Null));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Some(Value::String(s.to_cow()?.into_owned())));
    }
    Ok(None)
}

/// Reads one layer argument into `input`. `None` and `{}` leave the layer out.
fn read_layer(
    py: Python<'_>,
    arg: Option<&Bound<'_, PyAny>>,
    layer: Layer,
    input: &mut DetectInput,
) -> PyResult<()> {
    let Some(arg) = arg.filter(|a| !a.is_none()) else {
        return Ok(());
    };
    let dict = arg.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{} must be a dict or None, got {}",
            layer.param(),
            type_name(arg)
        ))
    })?;
    if dict.is_empty() {
        return Ok(());
    }
    let interned = &layer_keys(py)[layer.index()];
    let keys = layer.keys();
    let (values, numbers) = input.layer_mut(layer);
    // Containers are converted after the iteration: their walk can run Python code (a key's
    // __str__), which must not happen while the dict is being iterated.
    let mut containers: Vec<(usize, Bound<'_, PyAny>)> = Vec::new();
    // No Python code may run inside this loop (a destructor changing the dict would make the
    // iterator panic): only type checks, reads and UTF-8 copies happen here.
    for (k, v) in dict.iter() {
        let slot = match interned.iter().position(|s| s.as_ptr() == k.as_ptr()) {
            Some(slot) => Some(slot),
            None => {
                // Keys that are not str are not metrics.
                let Ok(text) = k.cast::<PyString>() else {
                    continue;
                };
                let text = text.to_cow()?;
                match keys.iter().position(|key| key.name == text) {
                    Some(slot) => Some(slot),
                    None => {
                        if let Some(number) = number_of(&v, || key_path(layer, &text))? {
                            let name = Cow::Owned(text.into_owned());
                            numbers.push(engine::LayerNumber {
                                layer,
                                slot: None,
                                name,
                                number,
                            });
                        }
                        None
                    }
                }
            }
        };
        let Some(slot) = slot else { continue };
        let key = keys[slot];
        match scalar_of(&v, || key_path(layer, key.name))? {
            Some(value) => {
                if let Value::Number(n) = &value {
                    let name = Cow::Borrowed(key.name);
                    numbers.push(engine::LayerNumber {
                        layer,
                        slot: Some(key.slot),
                        name,
                        number: n.clone(),
                    });
                }
                values.set_slot(slot, value);
            }
            None => containers.push((slot, v)),
        }
    }
    for (slot, v) in containers {
        let value = convert::to_value(&v, &key_path(layer, keys[slot].name))?;
        values.set_slot(slot, value);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// AnomalyDetector
// ------------------------------------------------------------------------------------------

/// Flags metric values far from their recent values. `method` is "zscore" (the default:
/// |x - mean| / std over the window), "mad" (median and median absolute deviation, robust to
/// earlier outliers) or "ewma" (exponentially weighted mean and variance). The first
/// `window_size // 2` values of a metric are never anomalous. At most `max_metrics` metric
/// names are kept; the least recently used are evicted beyond that.
#[pyclass(module = "senti_os.core.faza30.detection_engine", frozen, weakref)]
pub struct AnomalyDetector {
    inner: Arc<Mutex<engine::AnomalyDetector>>,
}

fn window_arg(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "window_size must be an int, got {}",
            type_name(obj)
        )));
    }
    // Out-of-range values go to the engine's range check as 0, which it refuses.
    let n = obj
        .extract::<i64>()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    if n == 0 {
        return Err(PyValueError::new_err(format!(
            "window_size must be between 2 and {}, got {}",
            engine::MAX_WINDOW_SIZE,
            obj.str()?
        )));
    }
    Ok(n)
}

fn real_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<pyo3::types::PyBytes>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a real number, got {}",
            type_name(obj)
        )));
    }
    obj.extract::<f64>().map_err(|err| {
        if err.is_instance_of::<pyo3::exceptions::PyOverflowError>(obj.py()) {
            PyValueError::new_err(format!("{what} is too large for a float"))
        } else {
            PyTypeError::new_err(format!(
                "{what} must be a real number, got {}",
                type_name(obj)
            ))
        }
    })
}

impl AnomalyDetector {
    pub fn shared(&self) -> Arc<Mutex<engine::AnomalyDetector>> {
        self.inner.clone()
    }
}

static DEQUE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

#[pymethods]
impl AnomalyDetector {
    #[new]
    #[pyo3(
        signature = (window_size=None, threshold=None, *, method="zscore", max_metrics=DEFAULT_MAX_METRICS),
        text_signature = "(window_size=20, threshold=3.0, *, method='zscore', max_metrics=10000)"
    )]
    fn py_new(
        window_size: Option<&Bound<'_, PyAny>>,
        threshold: Option<&Bound<'_, PyAny>>,
        method: &str,
        max_metrics: usize,
    ) -> PyResult<Self> {
        let window = window_size
            .map(window_arg)
            .transpose()?
            .unwrap_or(DEFAULT_WINDOW_SIZE);
        let threshold = threshold
            .map(|t| real_arg(t, "threshold"))
            .transpose()?
            .unwrap_or(DEFAULT_THRESHOLD);
        let method = AnomalyMethod::parse(method).py_err()?;
        let detector =
            engine::AnomalyDetector::new(window, threshold, method, max_metrics).py_err()?;
        Ok(AnomalyDetector {
            inner: Arc::new(Mutex::new(detector)),
        })
    }

    /// Whether `value` is anomalous for `metric_name`; the value is then added to its window.
    fn detect_anomaly(
        &self,
        metric_name: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let name = metric_name
            .cast::<PyString>()
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "metric_name must be a str, got {}",
                    type_name(metric_name)
                ))
            })?
            .to_cow()?;
        engine::AnomalyDetector::check_name(&name).py_err()?;
        let x = match value.cast::<PyFloat>() {
            Ok(f) => f.value(),
            Err(_) => real_arg(value, "value")?,
        };
        if !x.is_finite() {
            return Err(PyValueError::new_err(format!(
                "value must be a finite number, got {}",
                float_repr(x)
            )));
        }
        Ok(self.inner.lock().observe(&name, x))
    }

    /// Scores a whole series as a new detector with these settings would, fed the values one
    /// by one (each value against the window of values before it); nothing is stored.
    /// `values`: a float64 buffer (read in place) or a list/tuple of numbers. The keyword
    /// arguments override the detector's settings for this call. The GIL is released while
    /// scoring. A NaN or infinity raises ValueError naming its position.
    #[pyo3(signature = (values, *, method=None, window_size=None, threshold=None))]
    fn detect_series(
        &self,
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
        method: Option<&Bound<'_, PyAny>>,
        window_size: Option<&Bound<'_, PyAny>>,
        threshold: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<SeriesAnomalies> {
        let current = self.inner.lock().settings();
        let method = match method {
            None => current.method,
            Some(m) => {
                let name = m.cast::<PyString>().map_err(|_| {
                    PyTypeError::new_err(format!("method must be a str, got {}", type_name(m)))
                })?;
                AnomalyMethod::parse(&name.to_cow()?).py_err()?
            }
        };
        let window = window_size
            .map(window_arg)
            .transpose()?
            .unwrap_or(current.window_size);
        let threshold = threshold
            .map(|t| real_arg(t, "threshold"))
            .transpose()?
            .unwrap_or(current.threshold);
        let settings = engine::AnomalySettings::new(window, threshold, method).py_err()?;
        let series = series_arg(values, "values")?;
        let slice = series.as_slice();
        let score = py
            .detach(|| engine::detect_series(slice, settings))
            .py_err()?;
        Ok(SeriesAnomalies::new(score, settings))
    }

    /// Feeds one series per metric, `series[k]` to `names[k]` in order, as
    /// `detect_anomaly` would value by value; returns one `SeriesAnomalies` per name. A bad
    /// name or value anywhere raises before anything is recorded. The GIL is released while
    /// scoring.
    fn detect_batch(
        &self,
        py: Python<'_>,
        names: &Bound<'_, PyAny>,
        series: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<SeriesAnomalies>> {
        let names = sequence_arg(names, "names")?;
        let series = sequence_arg(series, "series")?;
        if names.len() != series.len() {
            return Err(PyValueError::new_err(format!(
                "names and series must have the same length, got {} and {}",
                names.len(),
                series.len()
            )));
        }
        let names = names
            .iter()
            .enumerate()
            .map(|(k, name)| name_arg(&name, || format!("names[{k}]")))
            .collect::<PyResult<Vec<String>>>()?;
        let values = series
            .iter()
            .enumerate()
            .map(|(k, s)| series_arg(&s, &format!("series[{k}]")))
            .collect::<PyResult<Vec<SeriesValues>>>()?;
        let batch: Vec<(&str, &[f64])> = names
            .iter()
            .zip(&values)
            .map(|(name, v)| (name.as_str(), v.as_slice()))
            .collect();
        let (scores, settings) = py.detach(|| {
            let mut detector = self.inner.lock();
            (detector.observe_series(&batch), detector.settings())
        });
        let scores = scores.py_err()?;
        Ok(scores
            .into_iter()
            .map(|score| SeriesAnomalies::new(score, settings))
            .collect())
    }

    /// One value for each of many metrics: a `{name: value}` mapping or an iterable of
    /// `(name, value)` pairs, observed in order as `detect_anomaly` would. Returns the names
    /// whose value was anomalous, in input order. A bad name or value raises before anything
    /// is recorded.
    fn observe_many<'py>(
        &self,
        py: Python<'py>,
        observations: &Bound<'py, PyAny>,
    ) -> PyResult<Vec<Bound<'py, PyString>>> {
        let pairs: Vec<Bound<'py, PyAny>> = if let Ok(d) = observations.cast::<PyDict>() {
            // A copy: converting a value may run Python code that changes the dict.
            d.items().iter().collect()
        } else if observations.is_instance_of::<PyString>()
            || observations.is_instance_of::<pyo3::types::PyBytes>()
        {
            return Err(PyTypeError::new_err(format!(
                "observations must be a mapping or an iterable of (metric_name, value) pairs, \
                 got {}",
                type_name(observations)
            )));
        } else {
            observations
                .try_iter()
                .map_err(|_| {
                    PyTypeError::new_err(format!(
                        "observations must be a mapping or an iterable of (metric_name, value) \
                         pairs, got {}",
                        type_name(observations)
                    ))
                })?
                .collect::<PyResult<_>>()?
        };
        let mut keys = Vec::with_capacity(pairs.len());
        let mut names = Vec::with_capacity(pairs.len());
        let mut values = Vec::with_capacity(pairs.len());
        for (i, pair) in pairs.iter().enumerate() {
            let (key, value) = match pair.cast::<PyTuple>() {
                Ok(t) if t.len() == 2 => (t.get_item(0)?, t.get_item(1)?),
                _ => match pair.cast::<PyList>() {
                    Ok(l) if l.len() == 2 => (l.get_item(0)?, l.get_item(1)?),
                    _ => {
                        return Err(PyTypeError::new_err(format!(
                            "observations[{i}] must be a (metric_name, value) pair, got {}",
                            type_name(pair)
                        )))
                    }
                },
            };
            let name = name_arg(&key, || format!("the metric name of observations[{i}]"))?;
            let x = match value.cast::<PyFloat>() {
                Ok(f) => f.value(),
                Err(_) => real_arg(&value, &format!("the value for {name:?}"))?,
            };
            keys.push(key.cast_into::<PyString>()?);
            names.push(name);
            values.push(x);
        }
        let items: Vec<(&str, f64)> = names.iter().map(String::as_str).zip(values).collect();
        let flags = py
            .detach(|| self.inner.lock().observe_many(&items))
            .py_err()?;
        Ok(keys
            .into_iter()
            .zip(flags)
            .filter_map(|(key, hit)| hit.then_some(key))
            .collect())
    }

    #[getter]
    fn window_size(&self) -> usize {
        self.inner.lock().window_size()
    }

    /// Shrinking keeps each metric's newest values.
    #[setter]
    fn set_window_size(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = window_arg(value)?;
        self.inner.lock().set_window_size(n).py_err()
    }

    #[getter]
    fn threshold(&self) -> f64 {
        self.inner.lock().threshold()
    }

    #[setter]
    fn set_threshold(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let t = real_arg(value, "threshold")?;
        self.inner.lock().set_threshold(t).py_err()
    }

    #[getter]
    fn method(&self) -> &'static str {
        self.inner.lock().method().name()
    }

    #[getter]
    fn max_metrics(&self) -> usize {
        self.inner.lock().max_metrics()
    }

    /// A copy of each metric's recent values: `{name: deque(values, maxlen=window_size)}`,
    /// metrics in first-seen order.
    #[getter]
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (window, series): (usize, Vec<(String, Vec<f64>)>) = {
            let d = self.inner.lock();
            (
                d.window_size(),
                d.series()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.iter().copied().collect()))
                    .collect(),
            )
        };
        let deque = DEQUE.get_or_try_init(py, || -> PyResult<_> {
            Ok(py.import("collections")?.getattr("deque")?.unbind())
        })?;
        let out = PyDict::new(py);
        for (name, values) in series {
            out.set_item(name, deque.bind(py).call1((values, window))?)?;
        }
        Ok(out)
    }

    /// Forgets every metric's values.
    fn clear(&self) {
        self.inner.lock().clear();
    }

    fn __len__(&self) -> usize {
        self.inner.lock().len()
    }

    fn __repr__(&self) -> String {
        let d = self.inner.lock();
        format!(
            "AnomalyDetector(window_size={}, threshold={}, method={:?}, metrics={})",
            d.window_size(),
            float_repr(d.threshold()),
            d.method().name(),
            d.len()
        )
    }
}

// ------------------------------------------------------------------------------------------
// Series input: float64 buffers without copying, or lists/tuples of numbers
// ------------------------------------------------------------------------------------------

/// The buffer protocol entry points. pyo3 exposes them only from the 3.11 limited API; the
/// functions and the `Py_buffer` layout are the same in every CPython 3 (PEP 3118), and this
/// build supports 3.9+, so they are declared here. On Windows the stable-ABI import library
/// of 3.9/3.10 lacks them, so there buffers are read through `memoryview.tobytes()` (a copy).
#[cfg(not(windows))]
mod buffer_ffi {
    use pyo3::ffi::{PyObject, Py_ssize_t};
    use std::ffi::{c_char, c_int, c_void};

    #[repr(C)]
    pub struct PyBufferView {
        pub buf: *mut c_void,
        pub obj: *mut PyObject,
        pub len: Py_ssize_t,
        pub itemsize: Py_ssize_t,
        pub readonly: c_int,
        pub ndim: c_int,
        pub format: *mut c_char,
        pub shape: *mut Py_ssize_t,
        pub strides: *mut Py_ssize_t,
        pub suboffsets: *mut Py_ssize_t,
        pub internal: *mut c_void,
    }

    /// PyBUF_STRIDES | PyBUF_FORMAT, read-only: any 1-D buffer, its layout described.
    pub const PYBUF_RECORDS_RO: c_int = 0x0018 | 0x0004;

    extern "C" {
        pub fn PyObject_GetBuffer(
            obj: *mut PyObject,
            view: *mut PyBufferView,
            flags: c_int,
        ) -> c_int;
        pub fn PyBuffer_Release(view: *mut PyBufferView);
    }
}

/// An exported buffer, released (under the GIL) when dropped. Boxed: some exporters point
/// `shape` into the view itself, so it must not move.
#[cfg(not(windows))]
struct BufferGuard(Box<buffer_ffi::PyBufferView>);

#[cfg(not(windows))]
impl Drop for BufferGuard {
    fn drop(&mut self) {
        Python::attach(|_| unsafe { buffer_ffi::PyBuffer_Release(&mut *self.0) });
    }
}

/// A series of float64 values, borrowed from a Python buffer or converted.
enum SeriesValues {
    #[cfg(not(windows))]
    Borrowed {
        guard: BufferGuard,
        len: usize,
    },
    Owned(Vec<f64>),
}

impl SeriesValues {
    fn as_slice(&self) -> &[f64] {
        match self {
            #[cfg(not(windows))]
            // SAFETY: the guard keeps the exporter's memory alive and unresized while this
            // borrow lives; the pointer was checked to be 8-aligned and to cover `len` f64s,
            // and the buffer is read-only, so no one writes it while we read without the GIL.
            SeriesValues::Borrowed { guard, len } => unsafe {
                std::slice::from_raw_parts(guard.0.buf as *const f64, *len)
            },
            SeriesValues::Owned(v) => v,
        }
    }
}

const SERIES_TYPES: &str = "a float64 buffer (array.array('d'), a numpy float64 array, a \
     memoryview, bytes/bytearray of native float64) or a list/tuple of numbers";

/// How the buffer's items are to be read.
enum ItemKind {
    Float64,
    RawBytes,
}

fn item_kind(format: &str, itemsize: usize) -> Option<ItemKind> {
    let native = format
        .strip_prefix(['@', '='])
        .or_else(|| {
            format
                .strip_prefix('<')
                .filter(|_| cfg!(target_endian = "little"))
        })
        .unwrap_or(format);
    match (native, itemsize) {
        ("d", 8) => Some(ItemKind::Float64),
        ("B" | "b" | "c", 1) => Some(ItemKind::RawBytes),
        _ => None,
    }
}

/// Native float64 values from raw bytes (any alignment).
fn f64s_from_bytes(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .collect()
}

fn check_byte_length(len: usize, what: &str) -> PyResult<()> {
    if len % 8 != 0 {
        return Err(PyValueError::new_err(format!(
            "{what} holds {len} bytes, not a whole number of float64 values (8 bytes each)"
        )));
    }
    Ok(())
}

#[cfg(not(windows))]
fn buffer_series(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<SeriesValues>> {
    use buffer_ffi::*;
    let mut view = Box::new(PyBufferView {
        buf: std::ptr::null_mut(),
        obj: std::ptr::null_mut(),
        len: 0,
        itemsize: 0,
        readonly: 0,
        ndim: 0,
        format: std::ptr::null_mut(),
        shape: std::ptr::null_mut(),
        strides: std::ptr::null_mut(),
        suboffsets: std::ptr::null_mut(),
        internal: std::ptr::null_mut(),
    });
    // SAFETY: a valid object and a zeroed view; on success the view is released by the guard.
    if unsafe { PyObject_GetBuffer(obj.as_ptr(), &mut *view, PYBUF_RECORDS_RO) } != 0 {
        let err = PyErr::fetch(obj.py());
        if err.is_instance_of::<pyo3::exceptions::PyBufferError>(obj.py()) {
            // It is a buffer, but cannot be described as asked (for example indirect).
            return Err(PyTypeError::new_err(format!(
                "{what}: this buffer cannot be read as float64 values: {err}"
            )));
        }
        return Ok(None);
    }
    let guard = BufferGuard(view);
    let v = &*guard.0;
    let format = if v.format.is_null() {
        "B".to_string()
    } else {
        // SAFETY: the exporter's NUL-terminated format string, alive while the view is.
        unsafe { std::ffi::CStr::from_ptr(v.format) }
            .to_string_lossy()
            .into_owned()
    };
    let itemsize = usize::try_from(v.itemsize).unwrap_or(0);
    let kind = item_kind(&format, itemsize).ok_or_else(|| {
        PyTypeError::new_err(format!(
            "{what} must hold float64 values (format 'd'), got a buffer of format {format:?} \
             with {itemsize}-byte items"
        ))
    })?;
    if v.ndim != 1 {
        return Err(PyValueError::new_err(format!(
            "{what} must be one-dimensional, got a {}-dimensional buffer",
            v.ndim
        )));
    }
    let total = usize::try_from(v.len).unwrap_or(0);
    let count = total / itemsize.max(1);
    // SAFETY: ndim == 1, so shape and strides (when given) have one entry each.
    let stride = if v.strides.is_null() {
        v.itemsize
    } else {
        unsafe { *v.strides }
    };
    let raw = matches!(kind, ItemKind::RawBytes);
    if raw {
        check_byte_length(total, what)?;
    }
    if stride == v.itemsize {
        // Scored without the GIL, so only memory nobody may write meanwhile is borrowed; a
        // writable buffer is copied first (with the GIL held), which costs one memcpy.
        if v.readonly != 0 && ((v.buf as usize) % std::mem::align_of::<f64>() == 0 || total == 0) {
            let len = total / 8;
            if total == 0 {
                return Ok(Some(SeriesValues::Owned(Vec::new())));
            }
            return Ok(Some(SeriesValues::Borrowed { guard, len }));
        }
        // SAFETY: `total` bytes from the exporter's contiguous memory.
        let bytes = unsafe { std::slice::from_raw_parts(v.buf as *const u8, total) };
        return Ok(Some(SeriesValues::Owned(f64s_from_bytes(bytes))));
    }
    // Strided (for example memoryview[::2]): gather the items, then read them.
    let mut bytes = Vec::with_capacity(total);
    for k in 0..count {
        // SAFETY: item k of a 1-D strided view starts at buf + k * stride.
        let item = unsafe {
            std::slice::from_raw_parts((v.buf as *const u8).offset(k as isize * stride), itemsize)
        };
        bytes.extend_from_slice(item);
    }
    Ok(Some(SeriesValues::Owned(f64s_from_bytes(&bytes))))
}

#[cfg(windows)]
fn buffer_series(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<SeriesValues>> {
    let py = obj.py();
    let Ok(view) = py.import("builtins")?.getattr("memoryview")?.call1((obj,)) else {
        return Ok(None);
    };
    let format: String = view.getattr("format")?.extract()?;
    let itemsize: usize = view.getattr("itemsize")?.extract()?;
    let ndim: usize = view.getattr("ndim")?.extract()?;
    if item_kind(&format, itemsize).is_none() {
        return Err(PyTypeError::new_err(format!(
            "{what} must hold float64 values (format 'd'), got a buffer of format {format:?} \
             with {itemsize}-byte items"
        )));
    }
    if ndim != 1 {
        return Err(PyValueError::new_err(format!(
            "{what} must be one-dimensional, got a {ndim}-dimensional buffer"
        )));
    }
    let bytes = view.call_method0("tobytes")?;
    let bytes = bytes.cast::<pyo3::types::PyBytes>()?.as_bytes();
    check_byte_length(bytes.len(), what)?;
    Ok(Some(SeriesValues::Owned(f64s_from_bytes(bytes))))
}

/// Reads a series argument. Lists and tuples are converted item by item (the slower path);
/// anything else must export a 1-D buffer of float64 (or raw bytes holding them).
fn series_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<SeriesValues> {
    let items = if let Ok(list) = obj.cast::<PyList>() {
        Some(list.to_tuple())
    } else {
        obj.cast::<PyTuple>().ok().cloned()
    };
    if let Some(items) = items {
        let mut values = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            values.push(match item.cast::<PyFloat>() {
                Ok(f) => f.value(),
                // The message is only built on failure.
                Err(_) => item
                    .extract::<f64>()
                    .ok()
                    .filter(|_| !item.is_instance_of::<PyString>())
                    .map_or_else(|| real_arg(&item, &format!("{what}[{i}]")), Ok)?,
            });
        }
        return Ok(SeriesValues::Owned(values));
    }
    if !obj.is_instance_of::<PyString>() {
        if let Some(series) = buffer_series(obj, what)? {
            return Ok(series);
        }
    }
    Err(PyTypeError::new_err(format!(
        "{what} must be {SERIES_TYPES}, got {}",
        type_name(obj)
    )))
}

/// A list or tuple argument, as a tuple (a snapshot: later changes to a list do not matter).
fn sequence_arg<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyTuple>> {
    if let Ok(list) = obj.cast::<PyList>() {
        return Ok(list.to_tuple());
    }
    obj.cast::<PyTuple>().cloned().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a list or tuple, got {}",
            type_name(obj)
        ))
    })
}

fn name_arg(obj: &Bound<'_, PyAny>, what: impl Fn() -> String) -> PyResult<String> {
    let name = obj
        .cast::<PyString>()
        .map_err(|_| {
            PyTypeError::new_err(format!("{} must be a str, got {}", what(), type_name(obj)))
        })?
        .to_cow()?;
    engine::AnomalyDetector::check_name(&name).py_err()?;
    Ok(name.into_owned())
}

/// The anomalies found in one series: `count` values scored, `anomalies` of them flagged,
/// at positions `indices`; `flags` has one byte per value (1 where anomalous). The lists and
/// bytes are built when first read.
#[pyclass(module = "senti_os.core.faza30.detection_engine", frozen)]
pub struct SeriesAnomalies {
    score: engine::SeriesScore,
    settings: engine::AnomalySettings,
    indices: PyOnceLock<Py<PyList>>,
    flags: PyOnceLock<Py<pyo3::types::PyBytes>>,
}

impl SeriesAnomalies {
    fn new(score: engine::SeriesScore, settings: engine::AnomalySettings) -> Self {
        SeriesAnomalies {
            score,
            settings,
            indices: PyOnceLock::new(),
            flags: PyOnceLock::new(),
        }
    }
}

#[pymethods]
impl SeriesAnomalies {
    /// How many values were scored.
    #[getter]
    fn count(&self) -> usize {
        self.score.count
    }

    /// How many were anomalous.
    #[getter]
    fn anomalies(&self) -> usize {
        self.score.indices.len()
    }

    /// Positions of the anomalous values, ascending.
    #[getter]
    fn indices(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        self.indices
            .get_or_try_init(py, || Ok(PyList::new(py, &self.score.indices)?.unbind()))
            .map(|l| l.clone_ref(py))
    }

    /// One byte per value: 1 where anomalous, else 0.
    #[getter]
    fn flags(&self, py: Python<'_>) -> PyResult<Py<pyo3::types::PyBytes>> {
        self.flags
            .get_or_try_init(py, || {
                Ok(pyo3::types::PyBytes::new(py, &self.score.flags()).unbind())
            })
            .map(|b| b.clone_ref(py))
    }

    #[getter]
    fn method(&self) -> &'static str {
        self.settings.method.name()
    }

    #[getter]
    fn window_size(&self) -> usize {
        self.settings.window_size
    }

    #[getter]
    fn threshold(&self) -> f64 {
        self.settings.threshold
    }

    fn __repr__(&self) -> String {
        format!(
            "SeriesAnomalies(count={}, anomalies={}, method={:?}, window_size={}, threshold={})",
            self.score.count,
            self.score.indices.len(),
            self.settings.method.name(),
            self.settings.window_size,
            float_repr(self.settings.threshold)
        )
    }
}

// ------------------------------------------------------------------------------------------
// DetectionRule
// ------------------------------------------------------------------------------------------

/// One detection rule, callable on a layer's metrics dict: returns the fault it raises (a
/// new, untracked `DetectedFault`) or None.
#[pyclass(module = "senti_os.core.faza30.detection_engine", frozen)]
pub struct DetectionRule {
    rule: Rule,
}

#[pymethods]
impl DetectionRule {
    #[getter]
    fn name(&self) -> &'static str {
        self.rule.name()
    }

    /// The `detect_faults` parameter whose metrics this rule reads.
    #[getter]
    fn layer(&self) -> &'static str {
        self.rule.layer().param()
    }

    fn __call__(
        &self,
        py: Python<'_>,
        metrics: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<DetectedFault>>> {
        let layer = self.rule.layer();
        let mut input = DetectInput::default();
        read_layer(py, Some(metrics), layer, &mut input)?;
        let values = input.layer(layer).cloned().unwrap_or_default();
        match self.rule.evaluate(&values).py_err()? {
            Some(fault) => Ok(Some(Py::new(
                py,
                DetectedFault::from_engine(py, &Arc::new(fault))?,
            )?)),
            None => Ok(None),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<DetectionRule {} on {}>",
            self.rule.name(),
            self.rule.layer().param()
        )
    }
}

// ------------------------------------------------------------------------------------------
// DetectionEngine
// ------------------------------------------------------------------------------------------

type Handle = Arc<Py<DetectedFault>>;

/// Detects faults in the metrics of the FAZA layers.
///
/// A persisting condition is one active fault (the same object, the same id) until it clears:
/// when its layer's metrics are given without it, when it is not seen for
/// `active_window_seconds` (300, the reference's window), or through
/// `clear_resolved_faults`. Statistics count each new fault once; `total_detections` is the
/// number of `detect_faults` passes run. Numeric layer metrics feed `anomaly_detector`; an
/// anomalous value raises a LOW `metric_anomaly` fault and counts in `anomalies_detected`.
#[pyclass(module = "senti_os.core.faza30.detection_engine", weakref)]
pub struct DetectionEngine {
    core: Mutex<engine::DetectionEngine<Handle>>,
    detector: Mutex<Py<AnomalyDetector>>,
    rules: OnceLock<Py<PyDict>>,
}

static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Logs at INFO on the module's logger. Logging problems never fail a detection.
fn log_info(py: Python<'_>, message: String) {
    let logger = LOGGER.get_or_try_init(py, || -> PyResult<_> {
        Ok(py
            .import("logging")?
            .call_method1("getLogger", (MODULE,))?
            .unbind())
    });
    if let Ok(logger) = logger {
        if let Err(err) = logger.bind(py).call_method1("info", (message,)) {
            err.write_unraisable(py, None);
        }
    }
}

fn fault_ids_arg(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if obj.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "fault_ids must be a list of fault id strings, not a single str",
        ));
    }
    let ok_container = obj.is_instance_of::<PyList>()
        || obj.is_instance_of::<PyTuple>()
        || obj.is_instance_of::<PySet>()
        || obj.is_instance_of::<PyFrozenSet>();
    if !ok_container {
        return Err(PyTypeError::new_err(format!(
            "fault_ids must be a list, tuple or set of str, got {}",
            type_name(obj)
        )));
    }
    let mut ids = Vec::new();
    for (i, item) in obj.try_iter()?.enumerate() {
        let item = item?;
        let s = item.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "fault_ids[{i}] must be a str, got {}",
                type_name(&item)
            ))
        })?;
        ids.push(s.to_cow()?.into_owned());
    }
    Ok(ids)
}

fn window_seconds_arg(seconds: f64) -> PyResult<Duration> {
    if !(0.0..=1e9).contains(&seconds) {
        return Err(PyValueError::new_err(format!(
            "active_window_seconds must be between 0 and 1e9, got {}",
            float_repr(seconds)
        )));
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl DetectionEngine {
    pub fn create(py: Python<'_>) -> PyResult<Self> {
        let detector = AnomalyDetector {
            inner: Arc::new(Mutex::new(engine::AnomalyDetector::default())),
        };
        let shared = detector.shared();
        Ok(DetectionEngine {
            core: Mutex::new(engine::DetectionEngine::new(shared)),
            detector: Mutex::new(Py::new(py, detector)?),
            rules: OnceLock::new(),
        })
    }

    /// One detection pass over Python layer dicts (for the pipeline and the controller).
    pub fn detect(
        &self,
        py: Python<'_>,
        layers: [Option<&Bound<'_, PyAny>>; 5],
    ) -> PyResult<Vec<Py<DetectedFault>>> {
        let mut input = DetectInput::with_capacity(16);
        for (layer, arg) in Layer::ALL.into_iter().zip(layers) {
            read_layer(py, arg, layer, &mut input)?;
        }
        let detection = self.core.lock().detect(&input).py_err()?;

        let mut out = Vec::with_capacity(detection.faults.len());
        let mut created: Vec<(u64, Handle)> = Vec::new();
        for found in &detection.faults {
            match &found.handle {
                Some(handle) => {
                    if found.change == Change::Updated {
                        refresh(py, handle, &found.fault);
                    }
                    out.push(handle.clone_ref(py));
                }
                None => {
                    let object = Py::new(py, DetectedFault::from_engine(py, &found.fault)?)?;
                    created.push((found.fault.serial, Arc::new(object.clone_ref(py))));
                    out.push(object);
                }
            }
        }
        if !created.is_empty() {
            // `out` holds a reference to each, so none is released under the lock.
            let mut core = self.core.lock();
            for (serial, handle) in created {
                core.attach(serial, handle);
            }
        }
        if detection.opened > 0 || detection.cleared > 0 {
            log_info(
                py,
                format!(
                    "Detected {} new fault(s), {} cleared",
                    detection.opened, detection.cleared
                ),
            );
        }
        drop(detection);
        Ok(out)
    }

    /// Python objects for engine faults, creating (and attaching) the missing ones.
    fn objects(
        &self,
        py: Python<'_>,
        faults: Vec<(Arc<Fault>, Option<Handle>)>,
    ) -> PyResult<Vec<Py<DetectedFault>>> {
        let mut out = Vec::with_capacity(faults.len());
        let mut created = Vec::new();
        for (fault, handle) in faults {
            match handle {
                Some(h) => out.push(h.clone_ref(py)),
                None => {
                    let object = Py::new(py, DetectedFault::from_engine(py, &fault)?)?;
                    created.push((fault.serial, Arc::new(object.clone_ref(py))));
                    out.push(object);
                }
            }
        }
        if !created.is_empty() {
            let mut core = self.core.lock();
            for (serial, handle) in created {
                core.attach(serial, handle);
            }
        }
        Ok(out)
    }

    pub fn statistics(&self) -> engine::Statistics {
        self.core.lock().statistics()
    }

    pub fn active(&self, py: Python<'_>) -> PyResult<Vec<Py<DetectedFault>>> {
        let faults = self.core.lock().active_faults();
        self.objects(py, faults)
    }
}

#[pymethods]
impl DetectionEngine {
    #[new]
    #[pyo3(signature = (*, active_window_seconds=300.0))]
    fn py_new(py: Python<'_>, active_window_seconds: f64) -> PyResult<Self> {
        let window = window_seconds_arg(active_window_seconds)?;
        let engine = DetectionEngine::create(py)?;
        engine.core.lock().set_active_window(window);
        Ok(engine)
    }

    /// Detects the faults present in the given layers (dicts or None; `{}` counts as not
    /// given) and returns them: persisting conditions as the same objects as before.
    #[pyo3(signature = (faza25_metrics=None, faza27_metrics=None, faza28_metrics=None, faza28_5_metrics=None, faza29_metrics=None))]
    fn detect_faults(
        &self,
        py: Python<'_>,
        faza25_metrics: Option<&Bound<'_, PyAny>>,
        faza27_metrics: Option<&Bound<'_, PyAny>>,
        faza28_metrics: Option<&Bound<'_, PyAny>>,
        faza28_5_metrics: Option<&Bound<'_, PyAny>>,
        faza29_metrics: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<DetectedFault>>> {
        self.detect(
            py,
            [
                faza25_metrics,
                faza27_metrics,
                faza28_metrics,
                faza28_5_metrics,
                faza29_metrics,
            ],
        )
    }

    /// Predicts an error-rate spike from the last 10 entries of `metrics_history` (a list of
    /// dicts with `error_rate`, or `task_success_rate`). Predictions are not tracked.
    fn predict_failures(
        &self,
        py: Python<'_>,
        metrics_history: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<Py<DetectedFault>>> {
        let list = metrics_history.cast::<PyList>().ok();
        let tuple = metrics_history.cast::<PyTuple>().ok();
        let len = match (&list, &tuple) {
            (Some(l), _) => l.len(),
            (_, Some(t)) => t.len(),
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "metrics_history must be a list of dicts, got {}",
                    type_name(metrics_history)
                )))
            }
        };
        if len < engine::PREDICTION_WINDOW {
            return Ok(Vec::new());
        }
        // Only the newest entries matter; the rest of the list is never read.
        let start = len - engine::PREDICTION_WINDOW;
        let mut entries: Vec<Map<String, Value>> = Vec::with_capacity(engine::PREDICTION_WINDOW);
        for i in start..len {
            let item = match (&list, &tuple) {
                (Some(l), _) => l.get_item(i)?,
                (_, Some(t)) => t.get_item(i)?,
                _ => unreachable!("checked above"),
            };
            let item = &item;
            let dict = item.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "metrics_history[{i}] must be a dict, got {}",
                    type_name(item)
                ))
            })?;
            let mut entry = Map::new();
            for key in [
                engine::keys::ERROR_RATE.name,
                engine::keys::TASK_SUCCESS_RATE.name,
            ] {
                if let Some(v) = dict.get_item(key)? {
                    let path = || format!("metrics_history[{i}]['{key}']");
                    let value = match scalar_of(&v, path)? {
                        Some(value) => value,
                        None => convert::to_value(&v, &path())?,
                    };
                    entry.insert(key.to_string(), value);
                }
            }
            entries.push(entry);
        }
        let predicted = self
            .core
            .lock()
            .predict_from_tail(&entries, start)
            .py_err()?;
        predicted
            .into_iter()
            .map(|f| Py::new(py, DetectedFault::from_engine(py, &Arc::new(f))?))
            .collect()
    }

    /// The active faults, oldest first.
    fn get_active_faults(&self, py: Python<'_>) -> PyResult<Vec<Py<DetectedFault>>> {
        self.active(py)
    }

    /// The active CRITICAL faults, oldest first.
    fn get_critical_faults(&self, py: Python<'_>) -> PyResult<Vec<Py<DetectedFault>>> {
        let faults = self.core.lock().critical_faults();
        self.objects(py, faults)
    }

    /// Closes the active faults with these ids (a list, tuple or set of str); returns how
    /// many were closed. A condition that persists is detected again as a new fault.
    fn clear_resolved_faults(
        &self,
        py: Python<'_>,
        fault_ids: &Bound<'_, PyAny>,
    ) -> PyResult<usize> {
        let ids = fault_ids_arg(fault_ids)?;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (cleared, dropped) = self.core.lock().clear_resolved(&refs);
        drop(dropped);
        if cleared > 0 {
            log_info(py, format!("Cleared {cleared} resolved fault(s)"));
        }
        Ok(cleared)
    }

    /// Counters (`faults_detected` counts each new fault once; `anomalies_detected` the
    /// anomalous values seen during detection; `total_detections` the detection passes run),
    /// then `active_faults` and `critical_active`. Costs O(active faults).
    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.statistics();
        let out = stats_dict(py, &s.stats, false)?;
        out.set_item(pyo3::intern!(py, "active_faults"), s.active_faults)?;
        out.set_item(pyo3::intern!(py, "critical_active"), s.critical_active)?;
        out.set_item(
            pyo3::intern!(py, "total_detections"),
            s.stats.total_detections,
        )?;
        Ok(out)
    }

    /// A copy of the counters, `total_detections` included.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.core.lock().stats();
        stats_dict(py, &s, true)
    }

    /// The detector fed with the layers' numeric metrics. Assign another AnomalyDetector to
    /// change its settings.
    #[getter]
    fn anomaly_detector(&self, py: Python<'_>) -> Py<AnomalyDetector> {
        self.detector.lock().clone_ref(py)
    }

    #[setter]
    fn set_anomaly_detector(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let detector = value.cast::<AnomalyDetector>().map_err(|_| {
            PyTypeError::new_err(format!(
                "anomaly_detector must be an AnomalyDetector, got {}",
                type_name(value)
            ))
        })?;
        self.core
            .lock()
            .set_anomaly_detector(detector.get().shared());
        let old = std::mem::replace(&mut *self.detector.lock(), detector.clone().unbind());
        drop(old);
        Ok(())
    }

    /// The active faults (a new list).
    #[getter]
    fn detected_faults(&self, py: Python<'_>) -> PyResult<Vec<Py<DetectedFault>>> {
        self.active(py)
    }

    /// The last 1000 faults detected, oldest first, cleared ones included (a new list).
    #[getter]
    fn fault_history(&self, py: Python<'_>) -> PyResult<Vec<Py<DetectedFault>>> {
        let faults: Vec<_> = self.core.lock().history().cloned().collect();
        self.objects(py, faults)
    }

    /// `{rule name: DetectionRule}`; each rule is callable on one layer's metrics dict.
    #[getter]
    fn detection_rules(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        if let Some(rules) = self.rules.get() {
            return Ok(rules.clone_ref(py));
        }
        let dict = PyDict::new(py);
        for rule in Rule::ALL {
            dict.set_item(rule.name(), Py::new(py, DetectionRule { rule })?)?;
        }
        // Two threads may race to build it; the first dict wins and both return it.
        let _ = self.rules.set(dict.unbind());
        Ok(self
            .rules
            .get()
            .map(|r| r.clone_ref(py))
            .unwrap_or_else(|| PyDict::new(py).unbind()))
    }

    #[getter]
    fn active_window_seconds(&self) -> f64 {
        self.core.lock().active_window().as_secs_f64()
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        // A lock held by another thread is skipped this round rather than waited for.
        if let Some(detector) = self.detector.try_lock() {
            visit.call(&*detector)?;
        }
        if let Some(core) = self.core.try_lock() {
            // A fault's handle is shared by its active entry and its history entry, and it
            // is one reference: visit it once, or the collector miscounts.
            let mut seen = std::collections::HashSet::new();
            for handle in core.handles() {
                if seen.insert(Arc::as_ptr(handle)) {
                    visit.call(&**handle)?;
                }
            }
        }
        if let Some(rules) = self.rules.get() {
            visit.call(rules)?;
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        let core = self.core.get_mut();
        let detector = core.anomaly_detector().clone();
        let window = core.active_window();
        *core = engine::DetectionEngine::new(detector);
        core.set_active_window(window);
    }
}

fn stats_dict<'py>(
    py: Python<'py>,
    s: &engine::DetectionStats,
    with_total: bool,
) -> PyResult<Bound<'py, PyDict>> {
    use pyo3::intern;
    let out = PyDict::new(py);
    out.set_item(intern!(py, "faults_detected"), s.faults_detected)?;
    out.set_item(intern!(py, "critical_faults"), s.critical_faults)?;
    out.set_item(intern!(py, "high_faults"), s.high_faults)?;
    out.set_item(intern!(py, "medium_faults"), s.medium_faults)?;
    out.set_item(intern!(py, "low_faults"), s.low_faults)?;
    out.set_item(intern!(py, "anomalies_detected"), s.anomalies_detected)?;
    out.set_item(intern!(py, "predictions_made"), s.predictions_made)?;
    if with_total {
        out.set_item(intern!(py, "total_detections"), s.total_detections)?;
    }
    Ok(out)
}

#[pyfunction]
pub fn create_detection_engine(py: Python<'_>) -> PyResult<DetectionEngine> {
    DetectionEngine::create(py)
}
