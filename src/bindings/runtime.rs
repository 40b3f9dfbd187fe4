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

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

const GLUE_MODULE: &str = "senti_os.core.faza30._runtime";

// Threads of the tokio runtime must not touch Python once the interpreter starts to exit: a
// thread that needs the GIL then is terminated by CPython, which aborts a Rust stack. The
// package registers `shutdown` with atexit; it raises EXITING and waits (without the GIL)
// until no runtime thread is inside Python. Runtime threads enter Python only through
// `attach`, which counts them in and refuses once EXITING is set.
static IN_PYTHON: AtomicUsize = AtomicUsize::new(0);
static EXITING: AtomicBool = AtomicBool::new(false);

/// The interpreter is exiting; the runtime must stop touching Python.
#[derive(Debug, Clone, Copy)]
pub struct Exiting;

/// `Python::attach` for code that may run on a runtime thread.
pub fn attach<R>(f: impl FnOnce(Python<'_>) -> R) -> Result<R, Exiting> {
    IN_PYTHON.fetch_add(1, Ordering::SeqCst);
    let out = if EXITING.load(Ordering::SeqCst) {
        Err(Exiting)
    } else {
        Ok(Python::attach(f))
    };
    IN_PYTHON.fetch_sub(1, Ordering::SeqCst);
    out
}

/// Called by atexit: stop runtime threads from entering Python and wait (GIL released, at
/// most two seconds) for those inside to leave.
#[pyfunction]
pub fn _shutdown_runtime(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while IN_PYTHON.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Pre-repair snapshots still waiting for their writer reach the disk before exit.
        crate::engine::snapshot_manager::flush_all_deferred();
    });
}

static GLUE: PyOnceLock<(Py<PyAny>, Py<PyAny>, Py<PyAny>)> = PyOnceLock::new();
static AS_COROUTINE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

static SETTLE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static GATHER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A coroutine that awaits every `(awaitable, timeout_seconds)` of `items` together, each
/// bounded by its timeout, and returns `then(results)`, an exception standing in for each
/// result that failed. For code on the host loop's thread that must not block it.
pub fn gather_bounded<'py>(
    py: Python<'py>,
    items: Bound<'py, PyList>,
    then: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = GATHER.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import(GLUE_MODULE)?.getattr("gather_bounded")?.unbind())
    })?;
    f.bind(py).call1((items, then))
}

/// Settles an awaitable returned by a callback that synchronous engine code made (see
/// `_runtime.settle`): run to completion when possible, else a clear RuntimeError.
pub fn settle<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let f = SETTLE.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import(GLUE_MODULE)?.getattr("settle")?.unbind())
    })?;
    f.bind(py).call1((obj, what))
}

/// A coroutine that calls `method(*args)` once it runs inside an event loop and awaits what
/// it returns.
pub fn as_coroutine<'py>(
    py: Python<'py>,
    method: Bound<'py, PyAny>,
    args: Vec<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let f = AS_COROUTINE.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import(GLUE_MODULE)?.getattr("as_coroutine")?.unbind())
    })?;
    let mut all = vec![method];
    all.extend(args);
    f.bind(py).call1(PyTuple::new(py, all)?)
}

fn glue_all(py: Python<'_>) -> PyResult<&'static (Py<PyAny>, Py<PyAny>, Py<PyAny>)> {
    GLUE.get_or_try_init(py, || {
        let m = py.import(GLUE_MODULE)?;
        Ok((
            m.getattr("submit")?.unbind(),
            m.getattr("run_inline")?.unbind(),
            m.getattr("resolve")?.unbind(),
        ))
    })
}

fn glue(py: Python<'_>) -> PyResult<(&'static Py<PyAny>, &'static Py<PyAny>)> {
    glue_all(py).map(|(s, r, _)| (s, r))
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
                let name = err
                    .get_type(py)
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                format!("{name}: {}", err.value(py))
            }
            CallError::TimedOut(d) => format!("timed out after {:.3}s", d.as_secs_f64()),
            CallError::Lost => "the event loop dropped the call".to_string(),
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
        Some(HostLoop {
            event_loop: Arc::new(running.unbind()),
        })
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

type Outcome = oneshot::Sender<Result<Py<PyAny>, PyErr>>;

/// Receives the outcome of a call made on the host loop.
#[pyclass(module = "senti_os.core.faza30._native")]
struct Completion {
    tx: parking_lot::Mutex<Option<Outcome>>,
}

#[pymethods]
impl Completion {
    fn __call__(&self, ok: bool, value: Bound<'_, PyAny>) {
        if let Some(tx) = self.tx.lock().take() {
            let outcome = if ok {
                Ok(value.unbind())
            } else {
                Err(PyErr::from_value(value))
            };
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
                let kwargs = kwargs
                    .map(|k| k.into_bound(py))
                    .unwrap_or_else(|| PyDict::new(py));
                run_inline
                    .bind(py)
                    .call1((f, args, kwargs))
                    .map(|v| v.unbind())
                    .map_err(CallError::Raised)
            }),
            Caller::Host { host, timeout } => {
                let (tx, rx) = oneshot::channel();
                let handle = attach(|py| -> PyResult<Py<PyAny>> {
                    let (submit, _) = glue(py)?;
                    let done = Py::new(
                        py,
                        Completion {
                            tx: parking_lot::Mutex::new(Some(tx)),
                        },
                    )?;
                    let kwargs = kwargs
                        .map(|k| k.into_bound(py))
                        .unwrap_or_else(|| PyDict::new(py));
                    Ok(submit
                        .bind(py)
                        .call1((host.event_loop(py), f, args, kwargs, done))?
                        .unbind())
                })
                .map_err(|_| CallError::Lost)?
                .map_err(CallError::Raised)?;
                match tokio::time::timeout(*timeout, rx).await {
                    Ok(Ok(Ok(value))) => Ok(value),
                    Ok(Ok(Err(err))) => Err(CallError::Raised(err)),
                    Ok(Err(_)) => Err(CallError::Lost),
                    Err(_) => {
                        let _ = attach(|py| {
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
/// whose futures only await `Caller::Inline` calls and so complete on the first poll. It may
/// be nested (a callback that calls back into the engine), unlike an executor's block_on;
/// should a future ever wait, the thread parks until it is woken.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    let mut fut = std::pin::pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Runs `fut` on the tokio runtime and returns an asyncio future of the host loop that
/// completes with its outcome. Every Python object the task touches is released while it
/// holds the GIL, before the awaiting coroutine can resume, so no runtime thread touches
/// Python after the caller has moved on (or after the interpreter started to exit).
pub fn spawn_awaitable<'py, F>(
    py: Python<'py>,
    host: &HostLoop,
    fut: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: std::future::Future<Output = PyResult<Py<PyAny>>> + Send + 'static,
{
    let event_loop = host.event_loop(py);
    let future = event_loop.bind(py).call_method0("create_future")?;
    let target = future.clone().unbind();
    tokio_runtime().spawn(async move {
        let outcome = fut.await;
        let _ = attach(move |py| {
            let (ok, value) = match outcome {
                Ok(v) => (true, v),
                Err(e) => (false, e.into_value(py).into_any()),
            };
            if let Ok((_, _, resolve)) = glue_all(py) {
                let _ = event_loop.bind(py).call_method1(
                    "call_soon_threadsafe",
                    (resolve.clone_ref(py), target, ok, value),
                );
            }
            drop(event_loop);
        });
    });
    Ok(future)
}

/// The shared tokio runtime the auto-repair loop runs on.
pub fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}
