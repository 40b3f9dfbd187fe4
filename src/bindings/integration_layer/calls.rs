//! Calling registered callables (sync or coroutine functions) with a timeout.
//!
//! Asynchronous collection passes a `Caller::Host`: each call runs on the host's event loop,
//! bounded by the callable's own timeout. The synchronous API calls in the current thread;
//! there a coroutine result is run to completion under `asyncio.wait_for` (when no event loop
//! is running in this thread), and a blocking synchronous callable cannot be interrupted.

use super::pyutil::{error_text, is_fatal, Handle};
use crate::bindings::runtime::{self, CallError, Caller, HostLoop};
use crate::engine::integration_layer::FaultKind;
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::future::Future;
use std::time::Duration;

/// Runs a future made with `Caller::Inline` to completion in this thread; nesting is safe.
pub fn drive_ready<F: Future>(fut: F) -> F::Output {
    runtime::block_on(fut)
}

/// Runs `fut` on the shared tokio runtime and waits for it with the GIL released. For
/// synchronous code that must wait for calls on the host loop from another thread.
pub fn wait_on_runtime<T: Send + 'static>(
    py: Python<'_>,
    fut: impl Future<Output = PyResult<T>> + Send + 'static,
) -> PyResult<T> {
    py.detach(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        runtime::tokio_runtime().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(PyRuntimeError::new_err(
                "the integration layer's call was dropped",
            ))
        })
    })
}

/// Why a call gave no value.
#[derive(Debug)]
pub struct Failure {
    pub kind: FaultKind,
    pub message: String,
    /// The exception the callable raised, handed back to a synchronous caller as is.
    pub error: Option<PyErr>,
}

impl Failure {
    pub fn raised(message: String) -> Self {
        Failure {
            kind: FaultKind::Raised,
            message,
            error: None,
        }
    }

    pub fn from_err(py: Python<'_>, err: PyErr) -> Self {
        Failure {
            kind: FaultKind::Raised,
            message: error_text(py, &err),
            error: Some(err),
        }
    }

    pub fn new(kind: FaultKind, message: String) -> Self {
        Failure {
            kind,
            message,
            error: None,
        }
    }

    /// The same failure, its message prefixed with what was called.
    pub fn context(self, what: &str) -> Self {
        Failure {
            message: format!("{what}: {}", self.message),
            ..self
        }
    }

    /// The Python exception a synchronous caller sees.
    pub fn into_py_err(self) -> PyErr {
        if let Some(e) = self.error {
            return e;
        }
        match self.kind {
            FaultKind::TimedOut => PyTimeoutError::new_err(self.message),
            _ => PyRuntimeError::new_err(self.message),
        }
    }
}

pub type Called = Result<Py<PyAny>, Failure>;

fn timed_out(seconds: f64) -> Failure {
    Failure::new(
        FaultKind::TimedOut,
        format!("timed out after {seconds:.3}s"),
    )
}

pub fn is_timeout(py: Python<'_>, err: &PyErr) -> bool {
    if err.is_instance_of::<PyTimeoutError>(py) {
        return true;
    }
    // Before Python 3.11 asyncio had its own TimeoutError class.
    py.import("asyncio")
        .and_then(|m| m.getattr("TimeoutError"))
        .is_ok_and(|cls| err.get_type(py).is_subclass(&cls).unwrap_or(false))
}

fn loop_running_here(py: Python<'_>) -> bool {
    HostLoop::current(py).is_some()
}

/// Whether this thread is running `host`'s event loop (so waiting for it would deadlock).
pub fn on_host_thread(py: Python<'_>, host: &HostLoop) -> bool {
    match py
        .import("asyncio")
        .and_then(|m| m.call_method0("get_running_loop"))
    {
        Ok(running) => running.is(host.event_loop(py).bind(py)),
        Err(_) => false,
    }
}

/// Calls `f(*args, **kwargs)` in this thread. `Err` only for a fatal exception
/// (KeyboardInterrupt ...); everything else is a `Failure`.
pub fn inline_call(
    py: Python<'_>,
    f: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
    timeout: f64,
) -> PyResult<Called> {
    let result = match f.call(args, kwargs) {
        Ok(r) => r,
        Err(e) if is_fatal(py, &e) => return Err(e),
        Err(e) => return Ok(Err(Failure::from_err(py, e))),
    };
    if !super::pyutil::is_awaitable(&result) {
        return Ok(Ok(result.unbind()));
    }
    if loop_running_here(py) {
        // Inside the running loop nothing can block: a coroutine that completes without
        // waiting (the FAZA 28 agents' hooks) is run here; one that waits fails clearly.
        return match super::super::runtime::settle(&result, "the callback") {
            Ok(v) => Ok(Ok(v.unbind())),
            Err(e) if is_fatal(py, &e) => Err(e),
            Err(e) => Ok(Err(Failure::from_err(py, e))),
        };
    }
    let wait_for = py.import("asyncio")?.getattr("wait_for")?;
    let wrapped = PyTuple::new(
        py,
        [result.into_any(), timeout.into_pyobject(py)?.into_any()],
    )?;
    match drive_ready(Caller::Inline.call(wait_for.unbind(), wrapped.unbind(), None)) {
        Ok(v) => Ok(Ok(v)),
        Err(CallError::Raised(e)) if is_timeout(py, &e) => Ok(Err(timed_out(timeout))),
        Err(CallError::Raised(e)) if is_fatal(py, &e) => Err(e),
        Err(CallError::Raised(e)) => Ok(Err(Failure::from_err(py, e))),
        Err(e) => Ok(Err(Failure::raised(e.describe(py)))),
    }
}

/// Calls `f` as `caller` does, bounded by `timeout` seconds.
pub async fn call_with(
    caller: &Caller,
    f: &Handle,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    timeout: f64,
) -> PyResult<Called> {
    match caller {
        // OnHost runs on the host thread, where Host also calls here.
        Caller::Inline | Caller::OnHost { .. } => Python::attach(|py| {
            let kwargs = kwargs.map(|k| k.into_bound(py));
            inline_call(py, f.bind(py), args.bind(py), kwargs.as_ref(), timeout)
        }),
        Caller::Host { host, .. } => {
            let on_loop = Python::attach(|py| on_host_thread(py, host));
            if on_loop {
                return Box::pin(call_with(&Caller::Inline, f, args, kwargs, timeout)).await;
            }
            let bounded = Caller::Host {
                host: host.clone(),
                timeout: Duration::from_secs_f64(timeout),
            };
            let target = Python::attach(|py| f.clone_ref(py));
            match bounded.call(target, args, kwargs).await {
                Ok(v) => Ok(Ok(v)),
                Err(CallError::TimedOut(_)) => Ok(Err(timed_out(timeout))),
                Err(CallError::Lost) => Ok(Err(Failure::new(
                    FaultKind::Lost,
                    "the event loop dropped the call".into(),
                ))),
                Err(CallError::Raised(e)) => Python::attach(|py| Ok(Err(Failure::from_err(py, e)))),
            }
        }
    }
}

/// `call_with` from synchronous code holding the GIL: on the host loop's own thread (or with
/// `Caller::Inline`) the call is made here; from any other thread this one waits for the loop
/// with the GIL released.
pub fn blocking_call(
    py: Python<'_>,
    caller: &Caller,
    f: &Handle,
    args: Py<PyTuple>,
    kwargs: Option<Py<PyDict>>,
    timeout: f64,
) -> PyResult<Called> {
    match caller {
        Caller::Host { host, .. } if !on_host_thread(py, host) => {
            let (caller, f) = (caller.clone(), f.clone());
            wait_on_runtime(py, async move {
                call_with(&caller, &f, args, kwargs, timeout).await
            })
        }
        _ => {
            let kwargs = kwargs.map(|k| k.into_bound(py));
            inline_call(py, f.bind(py), args.bind(py), kwargs.as_ref(), timeout)
        }
    }
}
