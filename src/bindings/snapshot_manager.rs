//! `senti_os.core.faza30.snapshot_manager`: SnapshotManager, Snapshot, create_snapshot_manager.
//!
//! The binding walks Python state into JSON bytes (the only part of a create that needs the
//! GIL), runs state providers, and converts results back. File I/O, checksums and parsing run
//! in the engine with the GIL released.

use super::convert::{datetime_to_py, from_map, from_value, to_json_bytes, to_map, type_name};
use super::enums;
use super::errors::{IntoPyResult, SnapshotError};
use super::record::{self, Lazy};
use crate::engine::clock::{iso, now};
use crate::engine::snapshot_manager::{
    self as engine, FsyncPolicy, LoadFailureKind, Options, RestoreReport, SnapshotInfo,
    SnapshotType, DEFAULT_FSYNC_INTERVAL_MS, DEFAULT_STATE_CACHE_BYTES,
};
use parking_lot::Mutex;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyList, PyString};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

// The signatures below spell the engine defaults as literals so Python shows them.
const _: () = assert!(DEFAULT_FSYNC_INTERVAL_MS == 100 && DEFAULT_STATE_CACHE_BYTES == 67108864);

/// Environment variable naming the snapshot folder when none is given.
const DIR_ENV: &str = "FAZA30_SNAPSHOT_DIR";
/// At most this many state providers per manager.
const MAX_PROVIDERS: usize = 64;
const MAX_PROVIDER_NAME: usize = 100;
/// Keys the captured state uses itself, so no provider may take them.
const RESERVED_SECTIONS: [&str; 2] = ["timestamp", "providers"];

py_record! {
    /// One snapshot. `state` is read from disk (and checked) the first time it is accessed.
    pub struct Snapshot in "senti_os.core.faza30.snapshot_manager" {
        req snapshot_id,
        req snapshot_type,
        req timestamp,
        opt state = record::new_dict,
        opt metadata = record::new_dict,
        opt file_path = record::none,
        opt size_bytes = record::zero_int,
        opt verified = record::false_,
    }
}

impl Snapshot {
    fn from_info(
        py: Python<'_>,
        info: SnapshotInfo,
        store: &Arc<engine::SnapshotManager>,
    ) -> Snapshot {
        let t = info.snapshot_type;
        let ts = info.timestamp;
        let meta = info.metadata.clone();
        let id = info.snapshot_id.clone();
        let store = store.clone();
        let Ok(size) = info.size_bytes.into_pyobject(py);
        Snapshot {
            snapshot_id: Lazy::ready(PyString::new(py, &info.snapshot_id).into_any().unbind()),
            snapshot_type: Lazy::later(move |py| enums::to_py(py, t)),
            timestamp: Lazy::later(move |py| datetime_to_py(py, &ts)),
            state: Lazy::later(move |py| load_state_dict(py, &store, &id)),
            metadata: Lazy::later(move |py| Ok(from_map(py, &meta)?.into_any().unbind())),
            file_path: Lazy::ready(
                PyString::new(py, &info.file_path.to_string_lossy())
                    .into_any()
                    .unbind(),
            ),
            size_bytes: Lazy::ready(size.into_any().unbind()),
            verified: Lazy::ready(
                PyBool::new(py, info.verified)
                    .to_owned()
                    .into_any()
                    .unbind(),
            ),
            modified: false,
        }
    }
}

/// Loads, checks and converts a snapshot's state for `Snapshot.state`.
fn load_state_dict(
    py: Python<'_>,
    store: &Arc<engine::SnapshotManager>,
    id: &str,
) -> PyResult<Py<PyAny>> {
    let parsed = py.detach(|| -> Result<_, crate::engine::EngineError> {
        let loaded = store.load_state(id)??;
        loaded.state.parse()
    });
    let map = parsed.py_err()?;
    Ok(from_map(py, &map)?.into_any().unbind())
}

/// Walks a Python value into compact JSON, refusing what JSON cannot hold (see `convert`).
/// Plain data takes the fast path; anything else (subclasses, non-str keys, huge ints, NaN,
/// deep or self-referencing containers) is walked again by `convert::walk`, which decides
/// and words the refusal.
fn state_json(obj: &Bound<'_, PyAny>, what: &str, out: &mut Vec<u8>) -> PyResult<()> {
    let start = out.len();
    // SAFETY: we hold the GIL (`obj` is bound) and the fast walk runs no Python code, so the
    // borrowed references it reads stay valid.
    if unsafe { fast_walk::write_value(obj.as_ptr(), out, 0) }.is_ok() {
        return Ok(());
    }
    out.truncate(start);
    to_json_bytes(obj, what, out)
}

/// The fast path of `state_json`: exact built-in types only, read through the C API with
/// borrowed references and no Python code run. Gives up (and lets `convert::walk` decide) on
/// anything else.
mod fast_walk {
    use crate::bindings::convert::MAX_DEPTH;
    use pyo3::ffi;
    use std::os::raw::c_int;
    use std::ptr::addr_of_mut;

    pub struct GiveUp;

    unsafe fn write_str(obj: *mut ffi::PyObject, out: &mut Vec<u8>) -> Result<(), GiveUp> {
        let mut len: ffi::Py_ssize_t = 0;
        // The string's own UTF-8 buffer (no copy for ASCII strings).
        let ptr = ffi::PyUnicode_AsUTF8AndSize(obj, &mut len);
        if ptr.is_null() {
            // Lone surrogates: not UTF-8. Let the slow path report it.
            ffi::PyErr_Clear();
            return Err(GiveUp);
        }
        let bytes = std::slice::from_raw_parts(ptr as *const u8, len as usize);
        // SAFETY: PyUnicode_AsUTF8AndSize returns valid UTF-8 or fails (lone surrogates,
        // handled above); validating it again cost 3% of a 10 MB snapshot.
        let text = std::str::from_utf8_unchecked(bytes);
        let _ = serde_json::to_writer(&mut *out, text);
        Ok(())
    }

    /// # Safety
    /// The GIL must be held and `obj` must be a valid object reference.
    pub unsafe fn write_value(
        obj: *mut ffi::PyObject,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), GiveUp> {
        let t = ffi::Py_TYPE(obj);
        if t == addr_of_mut!(ffi::PyUnicode_Type) {
            return write_str(obj, out);
        }
        if obj == ffi::Py_None() {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        if t == addr_of_mut!(ffi::PyBool_Type) {
            out.extend_from_slice(if obj == ffi::Py_True() {
                b"true"
            } else {
                b"false"
            });
            return Ok(());
        }
        if t == addr_of_mut!(ffi::PyLong_Type) {
            let mut overflow: c_int = 0;
            let v = ffi::PyLong_AsLongLongAndOverflow(obj, &mut overflow);
            if overflow != 0 {
                return Err(GiveUp);
            }
            if v == -1 && !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
                return Err(GiveUp);
            }
            let _ = serde_json::to_writer(&mut *out, &v);
            return Ok(());
        }
        if t == addr_of_mut!(ffi::PyFloat_Type) {
            let v = ffi::PyFloat_AsDouble(obj);
            if !v.is_finite() {
                return Err(GiveUp);
            }
            let _ = serde_json::to_writer(&mut *out, &v);
            return Ok(());
        }
        // Containers. Depth also stops self-references: the slow path then names them.
        if depth >= MAX_DEPTH {
            return Err(GiveUp);
        }
        if t == addr_of_mut!(ffi::PyDict_Type) {
            out.push(b'{');
            let mut pos: ffi::Py_ssize_t = 0;
            let mut key: *mut ffi::PyObject = std::ptr::null_mut();
            let mut value: *mut ffi::PyObject = std::ptr::null_mut();
            let mut first = true;
            while ffi::PyDict_Next(obj, &mut pos, &mut key, &mut value) != 0 {
                if ffi::Py_TYPE(key) != addr_of_mut!(ffi::PyUnicode_Type) {
                    return Err(GiveUp);
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                write_str(key, out)?;
                out.push(b':');
                write_value(value, out, depth + 1)?;
            }
            out.push(b'}');
            return Ok(());
        }
        let is_list = t == addr_of_mut!(ffi::PyList_Type);
        if is_list || t == addr_of_mut!(ffi::PyTuple_Type) {
            let len = if is_list {
                ffi::PyList_Size(obj)
            } else {
                ffi::PyTuple_Size(obj)
            };
            if len < 0 {
                ffi::PyErr_Clear();
                return Err(GiveUp);
            }
            out.push(b'[');
            for i in 0..len {
                if i > 0 {
                    out.push(b',');
                }
                let item = if is_list {
                    ffi::PyList_GetItem(obj, i)
                } else {
                    ffi::PyTuple_GetItem(obj, i)
                };
                if item.is_null() {
                    ffi::PyErr_Clear();
                    return Err(GiveUp);
                }
                write_value(item, out, depth + 1)?;
            }
            out.push(b']');
            return Ok(());
        }
        Err(GiveUp)
    }
}

struct Provider {
    name: String,
    capture: Py<PyAny>,
    restore: Py<PyAny>,
}

/// Creates, stores and restores snapshots of layer state in one folder.
///
/// SnapshotManager(snapshot_dir=None, max_snapshots=50, auto_cleanup=True, *,
///                 fsync="batched", fsync_interval_ms=100, state_cache_bytes=64 MiB)
///
/// The folder is `snapshot_dir` (with `~` expanded), else `$FAZA30_SNAPSHOT_DIR`, else
/// `<tempfile.gettempdir()>/senti_system-<uid>/snapshots`, created private (0700); never the
/// home directory. `fsync` is "always" (flush each file and the folder before returning),
/// "batched" (a background thread flushes every `fsync_interval_ms`) or "never". A process
/// crash never loses a returned snapshot nor leaves a partial one under any policy; the
/// policy only matters for power loss. At most `max_snapshots` snapshot files are kept in the
/// folder when `auto_cleanup` is on, counting other managers' files too. Loaded states are
/// cached up to `state_cache_bytes` (and 8 entries) for warm restores.
#[pyclass(module = "senti_os.core.faza30.snapshot_manager")]
pub struct SnapshotManager {
    store: Arc<engine::SnapshotManager>,
    snapshot_dir: Py<PyAny>,
    providers: Mutex<Vec<Arc<Provider>>>,
    /// Size of the last state written: the next buffer starts that big, saving regrowth.
    state_size_hint: AtomicUsize,
}

/// The folder to use: the argument, else `$FAZA30_SNAPSHOT_DIR`, else
/// `<tempfile.gettempdir()>/senti_system-<uid>/snapshots` (private, created 0700).
fn resolve_dir(py: Python<'_>, arg: Option<&Bound<'_, PyAny>>) -> PyResult<(String, bool)> {
    let os = py.import("os")?;
    let expand = |text: &Bound<'_, PyAny>| -> PyResult<String> {
        os.getattr("path")?
            .call_method1("expanduser", (text,))?
            .extract::<String>()
    };
    let given = arg.filter(|a| !a.is_none());
    if let Some(arg) = given {
        let text = os.call_method1("fspath", (arg,)).map_err(|_| {
            PyTypeError::new_err(format!(
                "snapshot_dir must be a str or os.PathLike, got {}",
                type_name(arg)
            ))
        })?;
        if !text.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(format!(
                "snapshot_dir must be a str or os.PathLike of str, got {}",
                type_name(&text)
            )));
        }
        let path = expand(&text)?;
        if path.is_empty() {
            return Err(PyValueError::new_err("snapshot_dir must not be empty"));
        }
        return Ok((path, false));
    }
    let env = os.getattr("environ")?.call_method1("get", (DIR_ENV,))?;
    if !env.is_none() && env.is_truthy()? {
        return Ok((expand(&env)?, false));
    }
    let tmp: String = py
        .import("tempfile")?
        .call_method0("gettempdir")?
        .extract()?;
    let path = engine::default_dir(std::path::Path::new(&tmp));
    Ok((path.to_string_lossy().into_owned(), true))
}

fn id_arg(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let s = obj.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!("snapshot_id must be a str, got {}", type_name(obj)))
    })?;
    let text = s
        .to_cow()
        .map_err(|_| PyValueError::new_err("invalid snapshot id: not valid text"))?;
    engine::validate_id(&text).py_err()?;
    Ok(text.into_owned())
}

/// A type filter: None or "" mean all types; otherwise a SnapshotType or its value.
fn type_filter(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<SnapshotType>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o)
            if o.cast::<PyString>()
                .is_ok_and(|s| s.to_cow().is_ok_and(|t| t.is_empty())) =>
        {
            Ok(None)
        }
        Some(o) => enums::from_py::<SnapshotType>(o, "snapshot_type").map(Some),
    }
}

/// A provider's error for a message: its type and text, bounded.
fn describe_err(py: Python<'_>, err: &PyErr) -> String {
    super::errors::error_text(py, err, 500)
}

impl SnapshotManager {
    /// Whether any state provider is registered (without listing their names).
    pub fn has_providers(&self) -> bool {
        !self.providers.lock().is_empty()
    }

    /// Names of the registered state providers.
    pub fn provider_names(&self) -> Vec<String> {
        self.providers
            .lock()
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }
}

impl SnapshotManager {
    fn providers_snapshot(&self) -> Vec<Arc<Provider>> {
        self.providers.lock().clone()
    }

    /// The captured state: a timestamp, the provider names, and one section per provider.
    fn capture_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let providers = self.providers_snapshot();
        let state = PyDict::new(py);
        state.set_item("timestamp", iso(&now()))?;
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        state.set_item("providers", PyList::new(py, names)?)?;
        for p in &providers {
            match p.capture.bind(py).call0() {
                Ok(section) => state.set_item(&p.name, section)?,
                Err(e) => {
                    let err = SnapshotError::new_err(format!(
                        "state provider {:?} failed to capture: {}",
                        p.name,
                        describe_err(py, &e)
                    ));
                    err.set_cause(py, Some(e));
                    return Err(err);
                }
            }
        }
        Ok(state)
    }

    /// Everything in create that needs the GIL: the type, the metadata and the state bytes.
    fn prepare_create(
        &self,
        py: Python<'_>,
        snapshot_type: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
        state_override: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(
        SnapshotType,
        serde_json::Map<String, serde_json::Value>,
        Vec<u8>,
    )> {
        // None means the default type, as if the argument were left out.
        let t = match snapshot_type.filter(|t| !t.is_none()) {
            Some(t) => enums::from_py::<SnapshotType>(t, "snapshot_type")?,
            None => SnapshotType::MANUAL,
        };
        let metadata = to_map(metadata, "metadata")?;
        let bytes = self.state_bytes(py, state_override)?;
        Ok((t, metadata, bytes))
    }

    /// The state's compact JSON: `state_override`, or what the providers capture now.
    fn state_bytes(
        &self,
        py: Python<'_>,
        state_override: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<u8>> {
        let hint = self.state_size_hint.load(Ordering::Relaxed);
        let mut bytes = Vec::with_capacity(hint + hint / 8);
        match state_override.filter(|s| !s.is_none()) {
            Some(state) => {
                if state.cast::<PyDict>().is_err() {
                    return Err(PyTypeError::new_err(format!(
                        "state_override must be a dict, got {}",
                        type_name(state)
                    )));
                }
                state_json(state, "state_override", &mut bytes)?;
            }
            None => {
                let state = self.capture_state(py)?;
                state_json(state.as_any(), "state", &mut bytes)?;
            }
        }
        self.state_size_hint
            .store(bytes.len().min(engine::MAX_STATE_BYTES), Ordering::Relaxed);
        // The buffer is kept in the state cache, which counts its length: do not keep slack.
        if bytes.capacity() > bytes.len() + bytes.len() / 4 + 4096 {
            bytes.shrink_to_fit();
        }
        Ok(bytes)
    }

    /// The engine store behind this manager.
    pub(crate) fn store(&self) -> Arc<engine::SnapshotManager> {
        self.store.clone()
    }

    /// The pipeline's pre-repair snapshot (see `_create_pre_repair`), for a caller that has
    /// the metadata as engine values already.
    pub(crate) fn create_pre_repair(
        &self,
        py: Python<'_>,
        metadata: serde_json::Map<String, serde_json::Value>,
    ) -> PyResult<String> {
        let bytes = match self.state_bytes(py, None) {
            Ok(b) => b,
            Err(e) => {
                self.store.record_failed_create();
                return Err(e);
            }
        };
        let store = self.store.clone();
        let info = py
            .detach(move || store.create_deferred(SnapshotType::PRE_REPAIR, metadata, bytes))
            .py_err()?;
        Ok(info.snapshot_id)
    }

    fn run_restore(&self, py: Python<'_>, id: String) -> PyResult<bool> {
        let providers = self.providers_snapshot();
        let store = self.store.clone();
        let mut report = RestoreReport {
            snapshot_id: id.clone(),
            timestamp: Some(now()),
            ..Default::default()
        };
        let names: Vec<String> = providers.iter().map(|p| p.name.clone()).collect();
        // Load, check and pick out the providers' sections without the GIL.
        let loaded = py.detach(|| -> Result<_, crate::engine::EngineError> {
            let loaded = match store.load_state(&id)? {
                Ok(l) => l,
                Err(failure) => return Ok(Err(failure)),
            };
            let sections = if names.is_empty() {
                Ok(Vec::new())
            } else {
                loaded.state.sections(&names)
            };
            Ok(Ok((loaded.info.integrity, loaded.from_cache, sections)))
        });
        let (integrity, from_cache, sections) = match loaded.py_err()? {
            Ok(parts) => parts,
            Err(failure) => {
                report.found = failure.kind != LoadFailureKind::NotFound;
                report.error = Some(failure.message);
                self.store.finish_restore(report);
                return Ok(false);
            }
        };
        report.found = true;
        report.verified = true;
        report.integrity = Some(integrity);
        report.from_cache = from_cache;
        let sections = match sections {
            Ok(s) => s,
            Err(e) => {
                report.error = Some(e.to_string());
                self.store.finish_restore(report);
                return Ok(false);
            }
        };
        // Hand each provider its section; a failure does not stop the others.
        let mut fatal: Option<PyErr> = None;
        for (p, section) in providers.iter().zip(sections) {
            let Some(section) = section else {
                report.missing.push(p.name.clone());
                continue;
            };
            let outcome = from_value(py, &section).and_then(|obj| p.restore.bind(py).call1((obj,)));
            match outcome {
                Ok(result)
                    if result.is_instance_of::<PyBool>() && !result.is_truthy().unwrap_or(true) =>
                {
                    report
                        .failed
                        .push((p.name.clone(), "restore returned False".into()));
                }
                Ok(_) => report.restored.push(p.name.clone()),
                Err(e) => {
                    report.failed.push((p.name.clone(), describe_err(py, &e)));
                    // KeyboardInterrupt and the like are not swallowed.
                    if !e.is_instance_of::<PyException>(py) && fatal.is_none() {
                        fatal = Some(e);
                    }
                }
            }
        }
        report.ok = report.failed.is_empty();
        if !report.ok {
            let names: Vec<&str> = report.failed.iter().map(|(n, _)| n.as_str()).collect();
            report.error = Some(format!("restore failed for: {}", names.join(", ")));
        }
        let ok = report.ok;
        self.store.finish_restore(report);
        match fatal {
            Some(e) => Err(e),
            None => Ok(ok),
        }
    }
}

fn report_to_py<'py>(py: Python<'py>, r: &RestoreReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("snapshot_id", &r.snapshot_id)?;
    match &r.timestamp {
        Some(ts) => d.set_item("timestamp", datetime_to_py(py, ts)?)?,
        None => d.set_item("timestamp", py.None())?,
    }
    d.set_item("ok", r.ok)?;
    d.set_item("found", r.found)?;
    d.set_item("verified", r.verified)?;
    d.set_item("integrity", r.integrity.map(|i| i.name()))?;
    d.set_item("from_cache", r.from_cache)?;
    d.set_item("restored", PyList::new(py, &r.restored)?)?;
    let failed = PyDict::new(py);
    for (name, err) in &r.failed {
        failed.set_item(name, err)?;
    }
    d.set_item("failed", failed)?;
    d.set_item("missing", PyList::new(py, &r.missing)?)?;
    d.set_item("error", r.error.as_deref())?;
    Ok(d)
}

#[pymethods]
impl SnapshotManager {
    #[new]
    #[pyo3(signature = (
        snapshot_dir=None, max_snapshots=50, auto_cleanup=true, *,
        fsync="batched", fsync_interval_ms=100, state_cache_bytes=67108864
    ))]
    fn py_new(
        py: Python<'_>,
        snapshot_dir: Option<&Bound<'_, PyAny>>,
        #[pyo3(from_py_with = super::convert::i64_param)] max_snapshots: i64,
        auto_cleanup: bool,
        fsync: &str,
        #[pyo3(from_py_with = super::convert::u64_param)] fsync_interval_ms: u64,
        #[pyo3(from_py_with = super::convert::usize_param)] state_cache_bytes: usize,
    ) -> PyResult<Self> {
        if max_snapshots < 1 {
            return Err(PyValueError::new_err(format!(
                "max_snapshots must be at least 1, got {max_snapshots}"
            )));
        }
        let policy = FsyncPolicy::parse(fsync, fsync_interval_ms).py_err()?;
        let (dir, private) = resolve_dir(py, snapshot_dir)?;
        let path_obj = py
            .import("pathlib")?
            .getattr("Path")?
            .call1((dir.as_str(),))?
            .unbind();
        let opts = Options {
            dir: PathBuf::from(&dir),
            max_snapshots: max_snapshots as usize,
            auto_cleanup,
            fsync: policy,
            state_cache_bytes,
            private_dir: private,
        };
        let store = py.detach(|| engine::SnapshotManager::open(opts)).py_err()?;
        Ok(SnapshotManager {
            store: Arc::new(store),
            snapshot_dir: path_obj,
            providers: Mutex::new(Vec::new()),
            state_size_hint: AtomicUsize::new(0),
        })
    }

    /// The snapshot folder, a `pathlib.Path`.
    #[getter]
    fn snapshot_dir(&self, py: Python<'_>) -> Py<PyAny> {
        self.snapshot_dir.clone_ref(py)
    }

    #[getter]
    fn max_snapshots(&self) -> usize {
        self.store.max_snapshots()
    }

    #[setter]
    fn set_max_snapshots(&self, value: i64) -> PyResult<()> {
        if value < 1 {
            return Err(PyValueError::new_err(format!(
                "max_snapshots must be at least 1, got {value}"
            )));
        }
        self.store.set_max_snapshots(value as usize).py_err()
    }

    #[getter]
    fn auto_cleanup(&self) -> bool {
        self.store.auto_cleanup()
    }

    #[setter]
    fn set_auto_cleanup(&self, value: bool) {
        self.store.set_auto_cleanup(value)
    }

    /// Writes a snapshot and returns its id. Without `state_override` the state is captured
    /// from the registered providers. Values JSON cannot hold are refused (TypeError or
    /// ValueError naming where) and nothing is written; I/O failures raise SnapshotError.
    #[pyo3(signature = (snapshot_type=None, metadata=None, state_override=None))]
    fn create_snapshot(
        &self,
        py: Python<'_>,
        snapshot_type: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
        state_override: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let (t, metadata, bytes) =
            match self.prepare_create(py, snapshot_type, metadata, state_override) {
                Ok(parts) => parts,
                Err(e) => {
                    self.store.record_failed_create();
                    return Err(e);
                }
            };
        let store = self.store.clone();
        let info = py
            .detach(move || store.create(t, metadata, bytes))
            .py_err()?;
        Ok(info.snapshot_id)
    }

    /// The pipeline's pre-repair snapshot: the state is captured now and its file is written
    /// behind by the manager's writer thread (`flush()` waits for it). Not public API.
    #[pyo3(signature = (metadata=None))]
    fn _create_pre_repair(
        &self,
        py: Python<'_>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let metadata = match to_map(metadata, "metadata") {
            Ok(m) => m,
            Err(e) => {
                self.store.record_failed_create();
                return Err(e);
            }
        };
        self.create_pre_repair(py, metadata)
    }

    /// Loads the snapshot (from disk if needed), checks it, and hands each registered
    /// provider its section. True only if all of that succeeded; `get_last_restore()` says
    /// what was restored.
    fn restore_snapshot(&self, py: Python<'_>, snapshot_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = id_arg(snapshot_id)?;
        self.run_restore(py, id)
    }

    /// What the last `restore_snapshot` did, or None before the first one.
    fn get_last_restore<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.store
            .last_restore()
            .map(|r| report_to_py(py, &r))
            .transpose()
    }

    /// Deletes a snapshot's file, also when this manager never loaded it.
    fn delete_snapshot(&self, py: Python<'_>, snapshot_id: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = id_arg(snapshot_id)?;
        let store = self.store.clone();
        py.detach(move || store.delete(&id)).py_err()
    }

    /// Snapshots, newest first; `snapshot_type` (a SnapshotType or its value) filters.
    #[pyo3(signature = (snapshot_type=None))]
    fn list_snapshots(
        &self,
        py: Python<'_>,
        snapshot_type: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<Snapshot>>> {
        let filter = type_filter(snapshot_type)?;
        let infos = self.store.list(filter);
        infos
            .into_iter()
            .map(|i| Py::new(py, Snapshot::from_info(py, i, &self.store)))
            .collect()
    }

    fn get_snapshot(
        &self,
        py: Python<'_>,
        snapshot_id: &Bound<'_, PyAny>,
    ) -> PyResult<Option<Py<Snapshot>>> {
        let id = id_arg(snapshot_id)?;
        let store = self.store.clone();
        let info = py.detach(move || store.get(&id)).py_err()?;
        info.map(|i| Py::new(py, Snapshot::from_info(py, i, &self.store)))
            .transpose()
    }

    #[pyo3(signature = (snapshot_type=None))]
    fn get_latest_snapshot(
        &self,
        py: Python<'_>,
        snapshot_type: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Option<Py<Snapshot>>> {
        let filter = type_filter(snapshot_type)?;
        self.store
            .latest(filter)
            .map(|i| Py::new(py, Snapshot::from_info(py, i, &self.store)))
            .transpose()
    }

    /// Deletes every snapshot file in the folder; returns how many.
    fn cleanup_all(&self, py: Python<'_>) -> PyResult<usize> {
        let store = self.store.clone();
        py.detach(move || store.cleanup_all()).py_err()
    }

    /// Registers a state provider: `capture()` returns the JSON-able section stored under
    /// `name` when a snapshot is captured, and `restore(section)` puts it back on restore.
    /// Registering a name again replaces that provider.
    fn register_state_provider(
        &self,
        name: &Bound<'_, PyAny>,
        capture: &Bound<'_, PyAny>,
        restore: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let name: String = name
            .cast::<PyString>()
            .map_err(|_| {
                PyTypeError::new_err(format!("name must be a str, got {}", type_name(name)))
            })?
            .to_cow()?
            .into_owned();
        if name.is_empty() || name.chars().count() > MAX_PROVIDER_NAME {
            return Err(PyValueError::new_err(format!(
                "name must be 1 to {MAX_PROVIDER_NAME} characters, got {}",
                name.chars().count()
            )));
        }
        if RESERVED_SECTIONS.contains(&name.as_str()) {
            return Err(PyValueError::new_err(format!(
                "{name:?} is used by the captured state itself; pick another name"
            )));
        }
        for (what, f) in [("capture", capture), ("restore", restore)] {
            if !f.is_callable() {
                return Err(PyTypeError::new_err(format!(
                    "{what} must be callable, got {}",
                    type_name(f)
                )));
            }
        }
        let provider = Arc::new(Provider {
            name,
            capture: capture.clone().unbind(),
            restore: restore.clone().unbind(),
        });
        let old = {
            let mut list = self.providers.lock();
            if let Some(slot) = list.iter_mut().find(|p| p.name == provider.name) {
                Some(std::mem::replace(slot, provider))
            } else if list.len() >= MAX_PROVIDERS {
                return Err(PyValueError::new_err(format!(
                    "at most {MAX_PROVIDERS} state providers can be registered"
                )));
            } else {
                list.push(provider);
                None
            }
        };
        drop(old);
        Ok(())
    }

    /// Removes a state provider; returns whether one was registered under that name.
    fn unregister_state_provider(&self, name: &str) -> bool {
        let removed = {
            let mut list = self.providers.lock();
            list.iter()
                .position(|p| p.name == name)
                .map(|i| list.remove(i))
        };
        removed.is_some()
    }

    /// The registered provider names, in capture and restore order.
    fn get_state_providers(&self) -> Vec<String> {
        self.provider_names()
    }

    /// Files in the folder that could not be used, with the reason.
    fn get_skipped_files<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.store
            .skipped()
            .into_iter()
            .map(|s| {
                let d = PyDict::new(py);
                d.set_item("file", s.file)?;
                d.set_item("reason", s.reason)?;
                Ok(d)
            })
            .collect()
    }

    /// Flushes to disk now whatever the batched fsync policy has not flushed yet.
    fn flush(&self, py: Python<'_>) {
        let store = self.store.clone();
        py.detach(move || store.flush());
    }

    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.store.stats();
        let d = PyDict::new(py);
        d.set_item("total_created", s.total_created)?;
        d.set_item("total_restored", s.total_restored)?;
        d.set_item("total_deleted", s.total_deleted)?;
        d.set_item("failed_creates", s.failed_creates)?;
        d.set_item("failed_restores", s.failed_restores)?;
        d.set_item("current_snapshots", s.current_snapshots)?;
        d.set_item("total_size_bytes", s.total_size_bytes)?;
        d.set_item("snapshot_dir", self.snapshot_dir.bind(py).str()?)?;
        d.set_item("format_version", s.format_version)?;
        d.set_item("legacy_snapshots", s.legacy_snapshots)?;
        d.set_item("verified_snapshots", s.verified_snapshots)?;
        d.set_item("checksum_failures", s.checksum_failures)?;
        d.set_item("skipped_files", s.skipped_files)?;
        d.set_item(
            "skipped_file_names",
            PyList::new(py, &s.skipped_file_names)?,
        )?;
        d.set_item("stale_temp_removed", s.stale_temp_removed)?;
        d.set_item("retention_deleted", s.retention_deleted)?;
        d.set_item("fsync_policy", s.fsync_policy)?;
        d.set_item("fsync_interval_ms", s.fsync_interval_ms)?;
        d.set_item("fsync_file_syncs", s.fsync.file_syncs)?;
        d.set_item("fsync_dir_syncs", s.fsync.dir_syncs)?;
        d.set_item("fsync_pending", s.fsync.pending)?;
        d.set_item("fsync_errors", s.fsync.errors)?;
        d.set_item("fsync_last_error", s.fsync.last_error)?;
        d.set_item("state_cache_entries", s.cache_entries)?;
        d.set_item("state_cache_bytes", s.cache_bytes)?;
        d.set_item("state_cache_limit_bytes", s.cache_limit_bytes)?;
        d.set_item("pending_writes", s.pending_writes)?;
        d.set_item("last_write_error", s.last_write_error.as_deref())?;
        d.set_item(
            "state_providers",
            PyList::new(py, self.get_state_providers())?,
        )?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "SnapshotManager(snapshot_dir={}, max_snapshots={}, auto_cleanup={})",
            self.snapshot_dir.bind(py).repr()?,
            self.store.max_snapshots(),
            if self.store.auto_cleanup() {
                "True"
            } else {
                "False"
            }
        ))
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.snapshot_dir)?;
        // Locked by another thread: skip this round rather than wait inside the collector.
        if let Some(list) = self.providers.try_lock() {
            for p in list.iter() {
                visit.call(&p.capture)?;
                visit.call(&p.restore)?;
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        self.providers.get_mut().clear();
    }
}

#[pyfunction]
#[pyo3(signature = (
    snapshot_dir=None, max_snapshots=50, auto_cleanup=true, *,
    fsync="batched", fsync_interval_ms=100, state_cache_bytes=67108864
))]
pub fn create_snapshot_manager(
    py: Python<'_>,
    snapshot_dir: Option<&Bound<'_, PyAny>>,
    #[pyo3(from_py_with = super::convert::i64_param)] max_snapshots: i64,
    auto_cleanup: bool,
    fsync: &str,
    #[pyo3(from_py_with = super::convert::u64_param)] fsync_interval_ms: u64,
    #[pyo3(from_py_with = super::convert::usize_param)] state_cache_bytes: usize,
) -> PyResult<SnapshotManager> {
    SnapshotManager::py_new(
        py,
        snapshot_dir,
        max_snapshots,
        auto_cleanup,
        fsync,
        fsync_interval_ms,
        state_cache_bytes,
    )
}
