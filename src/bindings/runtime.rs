//! How the engine calls Python.
//!
//! Every callback (metric provider, repair action, state provider) goes through a `Caller`:
//! - `Caller::Inline` calls in the current thread; used by the synchronous API.
//! - `Caller::Host` runs the call on the host's asyncio event-loop thread (the real FAZA
//!   layers are asyncio code that is not thread-safe), awaits coroutine results there, and
//!   bounds the call by a timeout; used from a tokio thread.
//! - `Caller::OnHost` is for code already running ON the host loop's thread as a `HostTask`
//!   (a Rust future that asyncio steps, see `spawn_on_host`): it calls directly and awaits a
//!   coroutine result as an asyncio task, bounded by `loop.call_later`. The auto-repair loop
//!   runs each iteration this way: one cross-thread wakeup per cycle instead of one per
//!   callback, and the host loop runs its other callbacks between the cycle's steps.
//!
//! All are awaited the same way, so one `async` code path serves them; synchronous callers
//! drive it with `block_on`. The GIL is never held while waiting for the host loop.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};
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
static AWAIT_HERE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
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
        const DESCRIBE_MAX_CHARS: usize = 500;
        match self {
            // Bounded: the text ends up in results, events and the journal.
            CallError::Raised(err) => super::errors::error_text(py, err, DESCRIBE_MAX_CHARS),
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

type Outcome = oneshot::Sender<Result<Py<PyAny>, CallError>>;

/// Receives the outcome of a call made on the host loop.
#[pyclass(module = "senti_os.core.faza30._native")]
struct Completion {
    tx: parking_lot::Mutex<Option<Outcome>>,
    /// The call's bound, reported by `expire`.
    timeout: Duration,
}

impl Completion {
    fn new(tx: Outcome, timeout: Duration) -> Self {
        Completion {
            tx: parking_lot::Mutex::new(Some(tx)),
            timeout,
        }
    }
}

#[pymethods]
impl Completion {
    fn __call__(&self, ok: bool, value: Bound<'_, PyAny>) {
        let tx = self.tx.lock().take();
        if let Some(tx) = tx {
            let outcome = if ok {
                Ok(value.unbind())
            } else {
                Err(CallError::Raised(PyErr::from_value(value)))
            };
            let _ = tx.send(outcome);
        }
    }

    /// The call's time is up (scheduled by `_runtime.await_here` with `loop.call_later`).
    fn expire(&self) {
        let tx = self.tx.lock().take();
        if let Some(tx) = tx {
            let _ = tx.send(Err(CallError::TimedOut(self.timeout)));
        }
    }
}

/// Whether `obj` can be awaited (a coroutine, future, or anything with `__await__`).
fn is_awaitable(obj: &Bound<'_, PyAny>) -> bool {
    if obj.is_none()
        || obj.is_exact_instance_of::<PyDict>()
        || obj.is_exact_instance_of::<PyList>()
        || obj.is_exact_instance_of::<PyTuple>()
        || obj.is_exact_instance_of::<pyo3::types::PyString>()
        || obj.is_exact_instance_of::<pyo3::types::PyBool>()
        || obj.is_exact_instance_of::<pyo3::types::PyInt>()
        || obj.is_exact_instance_of::<pyo3::types::PyFloat>()
    {
        return false;
    }
    obj.hasattr(pyo3::intern!(obj.py(), "__await__"))
        .unwrap_or(false)
}

#[derive(Clone)]
pub enum Caller {
    Inline,
    Host {
        host: HostLoop,
        timeout: Duration,
    },
    /// Only for futures stepped on the host loop's own thread (`spawn_on_host`).
    OnHost {
        host: HostLoop,
        timeout: Duration,
    },
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
                    let done = Py::new(py, Completion::new(tx, *timeout))?;
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
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(_)) => Err(CallError::Lost),
                    Err(_) => {
                        let _ = attach(|py| {
                            let _ = handle.bind(py).call_method0("cancel");
                        });
                        Err(CallError::TimedOut(*timeout))
                    }
                }
            }
            Caller::OnHost { host, timeout } => {
                let started = Instant::now();
                let pending = attach(|py| -> Result<_, CallError> {
                    let kwargs = kwargs.map(|k| k.into_bound(py));
                    let result = f
                        .bind(py)
                        .call(args.bind(py), kwargs.as_ref())
                        .map_err(CallError::Raised)?;
                    if !is_awaitable(&result) {
                        // Nothing can interrupt a synchronous callback on this thread; one that
                        // overran its bound counts as timed out, as on the Host path.
                        if started.elapsed() > *timeout {
                            return Err(CallError::TimedOut(*timeout));
                        }
                        return Ok(Err(result.unbind()));
                    }
                    let (tx, rx) = oneshot::channel();
                    let done =
                        Py::new(py, Completion::new(tx, *timeout)).map_err(CallError::Raised)?;
                    let await_here = AWAIT_HERE
                        .get_or_try_init(py, || {
                            Ok::<_, PyErr>(py.import(GLUE_MODULE)?.getattr("await_here")?.unbind())
                        })
                        .map_err(CallError::Raised)?;
                    await_here
                        .bind(py)
                        .call1((host.event_loop(py), result, timeout.as_secs_f64(), done))
                        .map_err(CallError::Raised)?;
                    Ok(Ok(rx))
                })
                .map_err(|_| CallError::Lost)??;
                match pending {
                    Err(value) => Ok(value),
                    Ok(rx) => rx.await.unwrap_or(Err(CallError::Lost)),
                }
            }
        }
    }

    /// A point where a cycle stepped on the host loop lets the loop run its other callbacks
    /// (`Caller::OnHost` only; elsewhere it returns at once): at once while the current slice
    /// lasts, after the loop's next timer wakeup once it is used up.
    pub async fn yield_point(&self) {
        if let Caller::OnHost { .. } = self {
            // A slice nobody started begins now (and is remembered).
            let start = SLICE_START.with(|s| match s.get() {
                Some(t) => t,
                None => {
                    let t = Instant::now();
                    s.set(Some(t));
                    t
                }
            });
            if start.elapsed() < HOST_SLICE {
                YieldNow(false).await
            } else {
                // Past its slice: wait for the loop's next timer wakeup, so the host's timers
                // keep their phase (see `HOST_SLICE`).
                let _ = self.sleep(Duration::from_micros(100)).await;
                start_host_slice();
            }
        }
    }

    /// Waits `d` without blocking the thread the caller runs on: the host loop's timer for
    /// `Caller::OnHost`, tokio's for `Caller::Host`; `Caller::Inline` sleeps (GIL released).
    pub async fn sleep(&self, d: Duration) -> Result<(), Exiting> {
        match self {
            Caller::Inline => attach(|py| py.detach(|| std::thread::sleep(d))),
            Caller::Host { .. } => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Caller::OnHost { host, .. } => {
                /// Cancels the host timer when the sleep is dropped early (a `select!`).
                struct Timer(Option<Py<PyAny>>);
                impl Drop for Timer {
                    fn drop(&mut self) {
                        if let Some(handle) = self.0.take() {
                            let _ = attach(move |py| {
                                let _ = handle.bind(py).call_method0("cancel");
                            });
                        }
                    }
                }
                let (tx, rx) = oneshot::channel();
                let scheduled = attach(|py| -> PyResult<Py<PyAny>> {
                    let done = Py::new(py, Completion::new(tx, d))?;
                    Ok(host
                        .event_loop
                        .bind(py)
                        .call_method1("call_later", (d.as_secs_f64(), done, true, py.None()))?
                        .unbind())
                })?;
                if let Ok(handle) = scheduled {
                    let _timer = Timer(Some(handle));
                    let _ = rx.await;
                }
                Ok(())
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

/// Host time a cycle may use before it waits for the loop's next timer wakeup. asyncio
/// rounds its select timeout UP to whole milliseconds (epoll's resolution): when the loop goes
/// back to sleep after a busy stretch that ended at an arbitrary moment, its next timer fires
/// late by about that stretch. So the stretches stay short and start with a timer wakeup.
const HOST_SLICE: Duration = Duration::from_micros(200);

thread_local! {
    /// When the current slice of host time began (the host loop's thread only).
    static SLICE_START: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Starts a new slice of host time (after the loop slept, e.g. at each loop iteration).
pub fn start_host_slice() {
    SLICE_START.with(|s| s.set(Some(Instant::now())));
}

/// Pending once, waking itself: the host loop runs the callbacks already due (a ticker, I/O)
/// before the task that awaits it is stepped again.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

type HostFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A Rust future stepped by the host's asyncio loop: each call polls it once, on the loop's
/// thread with the GIL; while it is pending the loop runs its other callbacks. Its waker
/// schedules the next step with `call_soon` (from the loop's thread) or
/// `call_soon_threadsafe` (from any other).
#[pyclass(module = "senti_os.core.faza30._native", frozen)]
pub struct HostTask {
    /// Taken out while it is polled: no lock is held while the future runs Python code.
    fut: parking_lot::Mutex<Option<HostFuture>>,
    waker: Arc<HostWaker>,
}

struct HostWaker {
    event_loop: Py<PyAny>,
    /// The task to schedule; cleared once its future is done (breaking the cycle task ->
    /// waker -> task).
    task: parking_lot::Mutex<Option<Py<HostTask>>>,
    /// A step is already scheduled: further wakes before it runs add nothing.
    scheduled: AtomicBool,
    host_thread: OnceLock<ThreadId>,
}

impl Wake for HostWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let here = self.host_thread.get() == Some(&std::thread::current().id());
        // Once the interpreter exits nothing is scheduled: the task is left as it is.
        let _ = attach(|py| {
            let task = self.task.lock().as_ref().map(|t| t.clone_ref(py));
            let Some(task) = task else { return };
            let method = if here {
                pyo3::intern!(py, "call_soon")
            } else {
                pyo3::intern!(py, "call_soon_threadsafe")
            };
            if self
                .event_loop
                .bind(py)
                .call_method1(method, (task.clone_ref(py),))
                .is_err()
            {
                // The loop is closed: the future can never finish. Dropping it drops what it
                // owes its awaiter (a oneshot sender), which then sees the loss.
                let fut = task.get().fut.lock().take();
                drop(fut);
                self.task.lock().take();
            }
        });
    }
}

#[pymethods]
impl HostTask {
    fn __call__(&self) {
        let waker = self.waker.clone();
        let _ = waker.host_thread.set(std::thread::current().id());
        waker.scheduled.store(false, Ordering::Release);
        let fut = self.fut.lock().take();
        let Some(mut fut) = fut else { return };
        let as_waker = Waker::from(waker.clone());
        let mut cx = Context::from_waker(&as_waker);
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(()) => {
                drop(fut);
                let task = waker.task.lock().take();
                drop(task);
            }
            Poll::Pending => *self.fut.lock() = Some(fut),
        }
    }
}

/// The spawner's hold on a `HostTask`.
pub struct HostTaskHandle(Option<Py<HostTask>>);

impl HostTaskHandle {
    /// Drops the future unfinished (its loop closed, so it can never be stepped again).
    pub fn abandon(mut self) {
        if let Some(task) = self.0.take() {
            let _ = attach(move |_| {
                let fut = task.get().fut.lock().take();
                drop(fut);
                let me = task.get().waker.task.lock().take();
                drop(me);
                drop(task);
            });
        }
    }
}

impl Drop for HostTaskHandle {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            // Released with the GIL (once exiting, pyo3 defers the release).
            let _ = attach(move |_| drop(task));
        }
    }
}

/// Runs `fut` on the host loop's thread as a `HostTask` and returns a receiver of its output,
/// for tokio code to await, and a handle to abandon it. The receiver fails if the future is
/// dropped unfinished. `Err` when the loop refuses the task (closed) or the interpreter is
/// exiting.
pub fn spawn_on_host<T, F>(
    host: &HostLoop,
    fut: F,
) -> Result<(oneshot::Receiver<T>, HostTaskHandle), CallError>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let wrapped: HostFuture = Box::pin(async move {
        let _ = tx.send(fut.await);
    });
    let task = attach(|py| -> Result<Py<HostTask>, CallError> {
        let event_loop = host.event_loop(py);
        let waker = Arc::new(HostWaker {
            event_loop: event_loop.clone_ref(py),
            task: parking_lot::Mutex::new(None),
            scheduled: AtomicBool::new(true),
            host_thread: OnceLock::new(),
        });
        let task = Py::new(
            py,
            HostTask {
                fut: parking_lot::Mutex::new(Some(wrapped)),
                waker: waker.clone(),
            },
        )
        .map_err(CallError::Raised)?;
        *waker.task.lock() = Some(task.clone_ref(py));
        let scheduled = event_loop
            .bind(py)
            .call_method1("call_soon_threadsafe", (task.clone_ref(py),));
        if scheduled.is_err() {
            // Closed loop: release the future (and the task's self-reference) here.
            let fut = task.get().fut.lock().take();
            drop(fut);
            waker.task.lock().take();
            return Err(CallError::Lost);
        }
        Ok(task)
    })
    .map_err(|_| CallError::Lost)??;
    Ok((rx, HostTaskHandle(Some(task))))
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
