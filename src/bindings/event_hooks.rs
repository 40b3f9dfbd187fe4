//! `senti_os.core.faza30.event_hooks`: EventHooks, FazaEvent, create_event_hooks.

use super::convert::{datetime_to_py, type_name};
use super::enums;
use super::record::{self, Lazy};
use crate::engine::clock::{iso, now};
use crate::engine::enums::ValueEnum;
use crate::engine::event_hooks::{EventStore, EventType};
use chrono::NaiveDateTime;
use parking_lot::Mutex;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use std::sync::Arc;

py_record! {
    /// One published event: its type value, payload, time and source.
    pub struct FazaEvent in "senti_os.core.faza30.event_hooks" {
        req event_type,
        opt data = record::new_dict,
        opt timestamp = record::now,
        opt source = record::faza30_str,
    }
}

impl FazaEvent {
    fn from_engine(py: Python<'_>, t: EventType, data: &Payload, ts: NaiveDateTime) -> FazaEvent {
        let data = match data {
            Some(d) => Lazy::ready(d.clone_ref(py)),
            None => Lazy::later(record::new_dict),
        };
        FazaEvent {
            event_type: Lazy::ready(PyString::new(py, t.value()).into_any().unbind()),
            data,
            timestamp: Lazy::later(move |py| datetime_to_py(py, &ts)),
            source: Lazy::later(record::faza30_str),
            modified: false,
        }
    }
}

type Callback = Arc<Py<PyAny>>;
/// The payload dict as given by the publisher; None stands for `{}`.
type Payload = Option<Arc<Py<PyAny>>>;

/// Publishes FAZA 30 events to local subscribers and, when one is set, to the FAZA 28 bus.
#[pyclass(module = "senti_os.core.faza30.event_hooks")]
pub struct EventHooks {
    store: Mutex<EventStore<Payload, Callback>>,
    bus: Mutex<Option<Py<PyAny>>>,
}

fn limit_arg(limit: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    let limit = super::convert::int_arg(limit, what)?;
    if limit < 0 {
        return Err(PyValueError::new_err(format!(
            "{what} must be 0 or more, got {limit}"
        )));
    }
    Ok(limit as usize)
}

impl EventHooks {
    pub fn new_with_bus(event_bus: Option<Py<PyAny>>) -> Self {
        EventHooks {
            store: Mutex::new(EventStore::default()),
            bus: Mutex::new(event_bus),
        }
    }

    /// Publishes from Rust (the controller and pipeline use this).
    pub fn publish(
        &self,
        py: Python<'_>,
        t: EventType,
        data: Option<Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let payload: Payload = data.map(|d| Arc::new(d.into_any().unbind()));
        let published = self.store.lock().publish(t, payload.clone(), now());
        drop(published.evicted);
        if !published.subscribers.is_empty() {
            let event = Py::new(
                py,
                FazaEvent::from_engine(py, t, &payload, published.timestamp),
            )?;
            for callback in &published.subscribers {
                if let Err(err) = callback.bind(py).call1((event.clone_ref(py),)) {
                    self.store.lock().record_subscriber_error();
                    err.write_unraisable(py, Some(callback.bind(py)));
                }
            }
        }
        let bus = self.bus.lock().as_ref().map(|b| b.clone_ref(py));
        if let Some(bus) = bus {
            if let Err(err) = forward_to_bus(py, bus.bind(py), t, &payload, &published.timestamp) {
                self.store.lock().record_bus_error();
                err.write_unraisable(py, Some(bus.bind(py)));
            }
        }
        Ok(())
    }

    fn events_to_py(
        py: Python<'_>,
        events: Vec<(EventType, Payload, NaiveDateTime)>,
    ) -> PyResult<Vec<Py<FazaEvent>>> {
        events
            .into_iter()
            .map(|(t, d, ts)| Py::new(py, FazaEvent::from_engine(py, t, &d, ts)))
            .collect()
    }
}

/// Sends an event to a FAZA 28 EventBus through its real API, `emit(type, source, data)`;
/// buses that only have the reference's `publish(name, data)` get that call instead.
fn forward_to_bus(
    py: Python<'_>,
    bus: &Bound<'_, PyAny>,
    t: EventType,
    payload: &Payload,
    ts: &NaiveDateTime,
) -> PyResult<()> {
    if !bus.is_truthy()? {
        return Ok(());
    }
    let message = PyDict::new(py);
    if let Some(data) = payload {
        message.update(data.bind(py).cast::<pyo3::types::PyMapping>()?)?;
    }
    message.set_item("timestamp", iso(ts))?;
    message.set_item("source", "faza30")?;
    let name = format!("faza30.{}", t.value());
    if bus.hasattr("emit")? {
        let kwargs = PyDict::new(py);
        kwargs.set_item("data", message)?;
        bus.call_method("emit", (name, "faza30"), Some(&kwargs))?;
    } else if bus.hasattr("publish")? {
        bus.call_method1("publish", (name, message))?;
    }
    Ok(())
}

fn event_type_arg(obj: &Bound<'_, PyAny>) -> PyResult<EventType> {
    enums::from_py::<EventType>(obj, "event_type")
}

fn data_arg<'py>(data: Option<&Bound<'py, PyAny>>) -> PyResult<Option<Bound<'py, PyDict>>> {
    match data {
        None => Ok(None),
        Some(d) if d.is_none() => Ok(None),
        Some(d) => d.cast::<PyDict>().map(|d| Some(d.clone())).map_err(|_| {
            PyTypeError::new_err(format!("data must be a dict or None, got {}", type_name(d)))
        }),
    }
}

#[pymethods]
impl EventHooks {
    #[new]
    #[pyo3(signature = (event_bus=None))]
    fn py_new(event_bus: Option<Py<PyAny>>) -> Self {
        EventHooks::new_with_bus(event_bus.filter(|b| !Python::attach(|py| b.is_none(py))))
    }

    /// The FAZA 28 event bus events are forwarded to, or None.
    #[getter]
    fn event_bus(&self, py: Python<'_>) -> Py<PyAny> {
        self.bus
            .lock()
            .as_ref()
            .map(|b| b.clone_ref(py))
            .unwrap_or_else(|| py.None())
    }

    #[setter]
    fn set_event_bus(&self, py: Python<'_>, bus: Py<PyAny>) {
        let old = std::mem::replace(
            &mut *self.bus.lock(),
            if bus.is_none(py) { None } else { Some(bus) },
        );
        drop(old);
    }

    /// Does nothing: the cost of calling it is the floor every method call pays, which the
    /// benchmarks (scripts/bench_api.py) report hot calls against. Not public API.
    fn _noop(&self) {}

    /// Publishes an event. `event_type` is an EventType or its value; other strings are
    /// refused, so a typo cannot create a new event type.
    #[pyo3(signature = (event_type, data=None))]
    fn publish_event(
        &self,
        py: Python<'_>,
        event_type: &Bound<'_, PyAny>,
        data: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let t = event_type_arg(event_type)?;
        let data = data_arg(data)?;
        self.publish(py, t, data)
    }

    fn subscribe(
        &self,
        event_type: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let t = event_type_arg(event_type)?;
        if !callback.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "callback must be callable, got {}",
                type_name(callback)
            )));
        }
        self.store
            .lock()
            .subscribe(t, Arc::new(callback.clone().unbind()));
        Ok(())
    }

    /// Removes the first subscription of `callback` (compared with `==`, so a bound method
    /// fetched again still matches). Returns whether one was removed.
    fn unsubscribe(
        &self,
        event_type: &Bound<'_, PyAny>,
        callback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let py = event_type.py();
        let t = event_type_arg(event_type)?;
        let current = self.store.lock().subscribers(t);
        let found = current.iter().position(|c| {
            c.as_ptr() == callback.as_ptr() || c.bind(py).eq(callback).unwrap_or(false)
        });
        let Some(index) = found else { return Ok(false) };
        let target = current[index].clone();
        let removed = self
            .store
            .lock()
            .remove_subscriber_at(t, index, |c| Arc::ptr_eq(c, &target));
        drop(current);
        Ok(removed.is_some())
    }

    #[pyo3(signature = (limit=None), text_signature = "($self, limit=50)")]
    fn get_event_history(
        &self,
        py: Python<'_>,
        limit: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<FazaEvent>>> {
        let limit = match limit {
            Some(l) => limit_arg(&l, "limit")?,
            None => 50,
        };
        let events: Vec<_> = {
            let store = self.store.lock();
            store
                .history(limit)
                .map(|e| (e.event_type, e.data.clone(), e.timestamp))
                .collect()
        };
        Self::events_to_py(py, events)
    }

    #[pyo3(signature = (event_type, limit=None), text_signature = "($self, event_type, limit=20)")]
    fn get_events_by_type(
        &self,
        py: Python<'_>,
        event_type: &Bound<'_, PyAny>,
        limit: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<FazaEvent>>> {
        let t = event_type_arg(event_type)?;
        let limit = match limit {
            Some(l) => limit_arg(&l, "limit")?,
            None => 20,
        };
        let events: Vec<_> = {
            let store = self.store.lock();
            store
                .history_of(t, limit)
                .into_iter()
                .map(|e| (e.event_type, e.data.clone(), e.timestamp))
                .collect()
        };
        Self::events_to_py(py, events)
    }

    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.store.lock().stats();
        let out = PyDict::new(py);
        out.set_item("total_events_published", stats.total_events_published)?;
        let by_type = PyDict::new(py);
        for (t, n) in &stats.events_by_type {
            by_type.set_item(t.value(), n)?;
        }
        out.set_item("events_by_type", by_type)?;
        out.set_item("subscriptions_active", stats.subscriptions_active)?;
        out.set_item("history_size", stats.history_size)?;
        out.set_item("event_types_seen", stats.events_by_type.len())?;
        let top = PyList::empty(py);
        for (t, n) in &stats.top_events {
            top.append(PyTuple::new(
                py,
                [
                    t.value().into_pyobject(py)?.into_any(),
                    n.into_pyobject(py)?.into_any(),
                ],
            )?)?;
        }
        out.set_item("top_events", top)?;
        out.set_item("subscriber_errors", stats.subscriber_errors)?;
        out.set_item("bus_errors", stats.bus_errors)?;
        Ok(out)
    }

    /// Empties the history; the statistics stay.
    fn clear_history(&self) {
        let old = self.store.lock().clear_history();
        drop(old);
    }

    fn publish_fault_detected(
        &self,
        py: Python<'_>,
        fault_id: Py<PyAny>,
        severity: Py<PyAny>,
        fault_type: Py<PyAny>,
    ) -> PyResult<()> {
        self.publish_kv(
            py,
            EventType::FAULT_DETECTED,
            &[
                ("fault_id", fault_id),
                ("severity", severity),
                ("fault_type", fault_type),
            ],
        )
    }
    fn publish_fault_resolved(&self, py: Python<'_>, fault_id: Py<PyAny>) -> PyResult<()> {
        self.publish_kv(py, EventType::FAULT_RESOLVED, &[("fault_id", fault_id)])
    }
    fn publish_critical_fault(
        &self,
        py: Python<'_>,
        fault_id: Py<PyAny>,
        description: Py<PyAny>,
    ) -> PyResult<()> {
        self.publish_kv(
            py,
            EventType::CRITICAL_FAULT,
            &[("fault_id", fault_id), ("description", description)],
        )
    }
    fn publish_repair_started(
        &self,
        py: Python<'_>,
        fault_id: Py<PyAny>,
        repair_type: Py<PyAny>,
    ) -> PyResult<()> {
        self.publish_kv(
            py,
            EventType::REPAIR_STARTED,
            &[("fault_id", fault_id), ("repair_type", repair_type)],
        )
    }
    fn publish_repair_completed(
        &self,
        py: Python<'_>,
        fault_id: Py<PyAny>,
        repair_type: Py<PyAny>,
        success: Py<PyAny>,
        duration: Py<PyAny>,
    ) -> PyResult<()> {
        self.publish_kv(
            py,
            EventType::REPAIR_COMPLETED,
            &[
                ("fault_id", fault_id),
                ("repair_type", repair_type),
                ("success", success),
                ("duration", duration),
            ],
        )
    }
    fn publish_healing_cycle_started(&self, py: Python<'_>, cycle_id: Py<PyAny>) -> PyResult<()> {
        self.publish_kv(
            py,
            EventType::HEALING_CYCLE_STARTED,
            &[("cycle_id", cycle_id)],
        )
    }
    fn publish_healing_cycle_completed(
        &self,
        py: Python<'_>,
        cycle_id: Py<PyAny>,
        outcome: Py<PyAny>,
        faults_detected: Py<PyAny>,
        faults_repaired: Py<PyAny>,
        health_improvement: Py<PyAny>,
    ) -> PyResult<()> {
        self.publish_kv(
            py,
            EventType::HEALING_CYCLE_COMPLETED,
            &[
                ("cycle_id", cycle_id),
                ("outcome", outcome),
                ("faults_detected", faults_detected),
                ("faults_repaired", faults_repaired),
                ("health_improvement", health_improvement),
            ],
        )
    }
    fn publish_health_computed(
        &self,
        py: Python<'_>,
        overall_score: Py<PyAny>,
        level: Py<PyAny>,
    ) -> PyResult<()> {
        self.publish_kv(
            py,
            EventType::HEALTH_COMPUTED,
            &[("overall_score", overall_score), ("level", level)],
        )
    }
    fn publish_health_critical(&self, py: Python<'_>, overall_score: Py<PyAny>) -> PyResult<()> {
        self.publish_kv(
            py,
            EventType::HEALTH_CRITICAL,
            &[("overall_score", overall_score)],
        )
    }
    fn publish_snapshot_created(
        &self,
        py: Python<'_>,
        snapshot_id: Py<PyAny>,
        snapshot_type: Py<PyAny>,
    ) -> PyResult<()> {
        self.publish_kv(
            py,
            EventType::SNAPSHOT_CREATED,
            &[
                ("snapshot_id", snapshot_id),
                ("snapshot_type", snapshot_type),
            ],
        )
    }
    fn publish_snapshot_restored(&self, py: Python<'_>, snapshot_id: Py<PyAny>) -> PyResult<()> {
        self.publish_kv(
            py,
            EventType::SNAPSHOT_RESTORED,
            &[("snapshot_id", snapshot_id)],
        )
    }
    fn publish_autorepair_throttled(&self, py: Python<'_>, reason: Py<PyAny>) -> PyResult<()> {
        self.publish_kv(py, EventType::AUTOREPAIR_THROTTLED, &[("reason", reason)])
    }
    fn publish_autorepair_blocked(&self, py: Python<'_>, reason: Py<PyAny>) -> PyResult<()> {
        self.publish_kv(py, EventType::AUTOREPAIR_BLOCKED, &[("reason", reason)])
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        // The collector runs with the GIL held; a store locked by another thread is skipped
        // this round rather than waited for.
        if let Some(bus) = self.bus.try_lock() {
            if let Some(b) = bus.as_ref() {
                visit.call(b)?;
            }
        }
        if let Some(store) = self.store.try_lock() {
            for t in EventType::ALL {
                for c in store.subscribers(*t) {
                    visit.call(&*c)?;
                }
            }
            for e in store.history(usize::MAX) {
                if let Some(d) = &e.data {
                    visit.call(&**d)?;
                }
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        *self.bus.get_mut() = None;
        *self.store.get_mut() = EventStore::default();
    }
}

impl EventHooks {
    fn publish_kv(
        &self,
        py: Python<'_>,
        t: EventType,
        items: &[(&str, Py<PyAny>)],
    ) -> PyResult<()> {
        let data = PyDict::new(py);
        for (k, v) in items {
            data.set_item(k, v.bind(py))?;
        }
        self.publish(py, t, Some(data))
    }
}

#[pyfunction]
#[pyo3(signature = (event_bus=None))]
pub fn create_event_hooks(event_bus: Option<Py<PyAny>>) -> EventHooks {
    EventHooks::py_new(event_bus)
}
