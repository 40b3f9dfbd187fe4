//! Repairs whose callbacks are coroutines, run by the auto-repair loop.
//!
//! A repair engine is synchronous: on the host loop's thread it cannot await a coroutine
//! action that really suspends. So when a repair's actions include coroutine functions, the
//! loop runs that repair on a blocking thread of the runtime instead, with a copy of the
//! context in which every call into the host's objects is made on the host loop (coroutines
//! awaited there, each call bounded by its timeout) while the blocking thread waits with the
//! GIL released. Plain data read from the context is read directly.

use super::integration_layer::{is_coroutine_function, BoundCall};
use super::repair_strategies::RepairStrategy;
use super::runtime::{self, CallError, Caller, HostLoop};
use crate::engine::repair_strategies::EngineKind;
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple,
};
use std::time::Duration;

/// A host object seen from another thread: attributes are read here, methods run on the
/// host loop.
#[pyclass(module = "senti_os.core.faza30._native", frozen)]
pub struct HostProxy {
    target: Py<PyAny>,
    host: HostLoop,
    timeout: Duration,
}

/// A callable of the host, called on the host loop; a coroutine result is awaited there.
#[pyclass(module = "senti_os.core.faza30._native", frozen)]
pub struct HostMethod {
    f: Py<PyAny>,
    host: HostLoop,
    timeout: Duration,
}

fn is_plain(v: &Bound<'_, PyAny>) -> bool {
    v.is_none()
        || v.is_instance_of::<PyBool>()
        || v.is_instance_of::<PyInt>()
        || v.is_instance_of::<PyFloat>()
        || v.is_instance_of::<PyString>()
        || v.is_instance_of::<PyBytes>()
        || v.is_instance_of::<PyList>()
        || v.is_instance_of::<PyTuple>()
        || v.is_instance_of::<PyDict>()
        || v.is_instance_of::<PySet>()
        || v.is_instance_of::<PyFrozenSet>()
}

/// Plain data as is, callables as `HostMethod`, other objects as `HostProxy`.
fn wrap(
    py: Python<'_>,
    v: Bound<'_, PyAny>,
    host: &HostLoop,
    timeout: Duration,
) -> PyResult<Py<PyAny>> {
    if is_plain(&v) {
        return Ok(v.unbind());
    }
    if let Ok(b) = v.cast::<BoundCall>() {
        let caller = Caller::Host {
            host: host.clone(),
            timeout,
        };
        return Ok(Py::new(py, b.get().rebound(caller))?.into_any());
    }
    if v.is_callable() {
        return Ok(Py::new(
            py,
            HostMethod {
                f: v.unbind(),
                host: host.clone(),
                timeout,
            },
        )?
        .into_any());
    }
    Ok(Py::new(
        py,
        HostProxy {
            target: v.unbind(),
            host: host.clone(),
            timeout,
        },
    )?
    .into_any())
}

#[pymethods]
impl HostProxy {
    fn __getattr__(&self, py: Python<'_>, name: &Bound<'_, PyString>) -> PyResult<Py<PyAny>> {
        let v = self.target.bind(py).getattr(name)?;
        wrap(py, v, &self.host, self.timeout)
    }

    fn __bool__(&self, py: Python<'_>) -> PyResult<bool> {
        self.target.bind(py).is_truthy()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<host proxy of {}>", self.target.bind(py).repr()?))
    }
}

#[pymethods]
impl HostMethod {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let running = py
            .import("asyncio")
            .and_then(|m| m.call_method0("get_running_loop"));
        if running.is_ok_and(|l| l.is(self.host.event_loop(py).bind(py))) {
            // Already on the host loop (waiting for it here would deadlock).
            return self.f.bind(py).call(args, kwargs).map(Bound::unbind);
        }
        let caller = Caller::Host {
            host: self.host.clone(),
            timeout: self.timeout,
        };
        let (f, args, kwargs) = (
            self.f.clone_ref(py),
            args.clone().unbind(),
            kwargs.map(|k| k.clone().unbind()),
        );
        let outcome = py.detach(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            runtime::tokio_runtime().spawn(async move {
                let _ = tx.send(caller.call(f, args, kwargs).await);
            });
            rx.recv().unwrap_or(Err(CallError::Lost))
        });
        match outcome {
            Ok(v) => Ok(v),
            Err(CallError::Raised(e)) => Err(e),
            Err(CallError::TimedOut(d)) => Err(PyTimeoutError::new_err(format!(
                "timed out after {:.3}s",
                d.as_secs_f64()
            ))),
            Err(CallError::Lost) => Err(PyRuntimeError::new_err("the event loop dropped the call")),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<host call of {}>", self.f.bind(py).repr()?))
    }
}

/// Whether a repair with this context must run off the host loop: one of its actions is a
/// coroutine function.
pub fn needs_off_host(ctx: &Bound<'_, PyDict>) -> bool {
    let py = ctx.py();
    let Ok(Some(actions)) = ctx.get_item("actions") else {
        return false;
    };
    let Ok(actions) = actions.cast::<PyDict>() else {
        return false;
    };
    actions
        .values()
        .iter()
        .any(|a| match a.cast::<BoundCall>() {
            Ok(b) => b.get().is_coroutine_function(py),
            Err(_) => is_coroutine_function(&a),
        })
}

/// The context as a repair off the host loop sees it (see the module doc).
fn off_host_context<'py>(
    ctx: &Bound<'py, PyDict>,
    host: &HostLoop,
    timeout: Duration,
) -> PyResult<Bound<'py, PyDict>> {
    let py = ctx.py();
    let out = PyDict::new(py);
    for (k, v) in ctx.iter() {
        let key = k.extract::<String>().unwrap_or_default();
        if key == "classification" {
            out.set_item(k, v)?;
        } else if let (true, Ok(actions)) = (key == "actions", v.cast::<PyDict>()) {
            let wrapped = PyDict::new(py);
            for (verb, a) in actions.iter() {
                wrapped.set_item(verb, wrap(py, a, host, timeout)?)?;
            }
            out.set_item(k, wrapped)?;
        } else {
            out.set_item(k, wrap(py, v, host, timeout)?)?;
        }
    }
    Ok(out)
}

/// Runs `engine.repair(fault, ctx)` of one of our engines on a blocking thread, its calls
/// into the host made on the host loop. `Err` once the interpreter is exiting.
pub async fn repair_off_host(
    engine: Py<PyAny>,
    kind: EngineKind,
    fault: Py<PyAny>,
    ctx: Py<PyDict>,
    host: HostLoop,
    timeout: Duration,
) -> Result<PyResult<Py<PyAny>>, runtime::Exiting> {
    // Through the runtime handle: the caller may be a future stepped on the host thread.
    let job = runtime::tokio_runtime().spawn_blocking(move || {
        runtime::attach(move |py| -> PyResult<Py<PyAny>> {
            let ctx = off_host_context(ctx.bind(py), &host, timeout)?;
            let base = engine
                .bind(py)
                .cast::<RepairStrategy>()
                .map_err(PyErr::from)?;
            let base = base.try_borrow().map_err(PyErr::from)?;
            let result = base.repair_as(py, kind, fault.bind(py), Some(ctx.as_any()))?;
            Ok(Py::new(py, result)?.into_any())
        })
    });
    match job.await {
        Ok(done) => done,
        Err(_) => Ok(Err(PyRuntimeError::new_err(
            "the off-loop repair task failed",
        ))),
    }
}
