//! How the engine calls Python.
//!
//! Every callback (metric provider, repair action, state provider) goes through a `Caller`:
//! - `Caller::Inline` calls in the current thread; used by the synchronous API.
//! - `Caller::Host` runs the call on the host's asyncio event-loop thread (the real FAZA
//!   layers are asyncio code that is not thread-safe), awaits coroutine results there, and
//!   bounds the call by a timeout; used by the auto-repair loop on its tokio thread.
//!
//! Both are awaited the same way, so one `async` code path serves both; synchronous callers
//! drive it with `block_on`. The GIL is never held while waiting for the host loop.

use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

const GLUE_MODULE: &str = "senti_os.core.faza30._runtime";

static GLUE: PyOnceLock<(Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();

fn glue(py: Python<'_>) -> PyResult<&'static (Py<PyAny>, Py<PyAny>)> {
    GLUE.get_or_try_init(py, || {
        let m = py.import(GLUE_MODULE)?;
        Ok((m.getattr("submit")?.unbind(), m.getattr("run_inline")?.unbind()))
    })
}

/// Why a callback did not produce a value.
#[derive(Debug)]
pub enum CallError {
    /// The callback raised (or its coroutine did).
    Raised(PyErr),
    /// It did not finish within its timeout; a coroutine was cancelled.
    TimedOut(Duration),
    /// The host loop closed or dropped the call.
    Lost,
}

impl CallError {
    pub fn describe(&self, py: Python<'_>) -> String {
        match self {
            CallError::Raised(err) => {
                let name = err.get_type(py).name().map(|n| n.to_string()).unwrap_or_default();
                format!("{name}: {}", err.value(py))
            }
            CallError::TimedOut(d) => format!("timed out after {:.3}s", d.as_secs_f64()),
            CallError::Lost => "the event loop dropped the call".to_string(),
        }
    }

    pub fn into_py_err(self) -> PyErr {
        match self {
            CallError::Raised(err) => err,
            CallError::TimedOut(d) => {
                PyTimeoutError::new_err(format!("callback timed out after {:.3}s", d.as_secs_f64()))
            }
            CallError::Lost => PyRuntimeError::new_err("the event loop dropped the callback"),
        }
    }
}

/// The host's event loop, captured when the engine is started from a coroutine.
#[derive(Clone)]
pub struct HostLoop {
    event_loop: Arc<Py<PyAny>>,
}

impl HostLoop {
    /// The running loop of the current thread, if any.
    pub fn current(py: Python<'_>) -> Option<HostLoop> {
        let asyncio = py.import("asyncio").ok()?;
        let running = asyncio.call_method0("get_running_loop").ok()?;
        Some(HostLoop { event_loop: Arc::new(running.unbind()) })
    }

    pub fn is_closed(&self, py: Python<'_>) -> bool {
        self.event_loop
            .bind(py)
            .call_method0("is_closed")
            .and_then(|v| v.is_truthy())
            .unwrap_or(true)
    }

    pub fn event_loop(&self, py: Python<'_>) -> Py<PyAny> {
        self.event_loop.clone_ref(py)
    }
}

/// Receives the outcome of a call made on the host loop.
#[pyclass(module = "senti_os.core.faza30._native")]
struct Completion {
    tx: parking_lot::Mutex<Option<oneshot::Sender<Result<Py<PyAny>, PyErr>>>>,
}

#[pymethods]
impl Completion {
    fn __call__(&self, ok: bool, value: Bound<'_, PyAny>) {
        if let Some(tx) = self.tx.lock().take() {
            let outcome = if ok { Ok(value.unbind()) } else { Err(PyErr::from_value(value)) };
            let _ = tx.send(outcome);
        }
    }
}

#[derive(Clone)]
pub enum Caller {
    Inline,
    Host { host: HostLoop, timeout: Duration },
}

impl Caller {
    /// Calls `f(*args, **kwargs)` as this caller does.
    pub async fn call(
        &self,
        f: Py<PyAny>,
        args: Py<PyTuple>,
        kwargs: Option<Py<PyDict>>,
    ) -> Result<Py<PyAny>, CallError> {
        match self {
            Caller::Inline => Python::attach(|py| {
                let (_, run_inline) = glue(py).map_err(CallError::Raised)?;
                let kwargs = kwargs.map(|k| k.into_bound(py)).unwrap_or_else(|| PyDict::new(py));
                run_inline
                    .bind(py)
                    .call1((f, args, kwargs))
                    .map(|v| v.unbind())
                    .map_err(CallError::Raised)
            }),
            Caller::Host { host, timeout } => {
                let (tx, rx) = oneshot::channel();
                let handle = Python::attach(|py| -> PyResult<Py<PyAny>> {
                    let (submit, _) = glue(py)?;
                    let done = Py::new(py, Completion { tx: parking_lot::Mutex::new(Some(tx)) })?;
                    let kwargs = kwargs.map(|k| k.into_bound(py)).unwrap_or_else(|| PyDict::new(py));
                    Ok(submit.bind(py).call1((host.event_loop(py), f, args, kwargs, done))?.unbind())
                })
                .map_err(CallError::Raised)?;
                match tokio::time::timeout(*timeout, rx).await {
                    Ok(Ok(Ok(value))) => Ok(value),
                    Ok(Ok(Err(err))) => Err(CallError::Raised(err)),
                    Ok(Err(_)) => Err(CallError::Lost),
                    Err(_) => {
                        Python::attach(|py| {
                            let _ = handle.bind(py).call_method0("cancel");
                        });
                        Err(CallError::TimedOut(*timeout))
                    }
                }
            }
        }
    }

    /// `call` with positional arguments only.
    pub async fn call1(&self, f: Py<PyAny>, args: Py<PyTuple>) -> Result<Py<PyAny>, CallError> {
        self.call(f, args, None).await
    }
}

/// Drives an engine future to completion on the calling thread. Used by the synchronous API,
/// whose futures only await `Caller::Inline` calls and so never wait on another thread.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    futures_executor::block_on(fut)
}

/// The shared tokio runtime the auto-repair loop runs on.
pub fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}
