//! The one place where engine errors become Python exceptions.

use crate::engine::EngineError;
use pyo3::exceptions::{PyException, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

// A snapshot that cannot be written, read or verified. It subclasses RuntimeError because the
// reference raised RuntimeError from create_snapshot.
pyo3::create_exception!(
    senti_os.core.faza30.errors,
    SnapshotError,
    PyRuntimeError,
    "A snapshot could not be written, read or verified."
);

pub fn to_py_err(err: EngineError) -> PyErr {
    match err {
        EngineError::WrongType(msg) => PyTypeError::new_err(msg),
        EngineError::InvalidValue(msg) => PyValueError::new_err(msg),
        EngineError::Snapshot(msg) => SnapshotError::new_err(msg),
        err @ EngineError::Io { .. } => {
            let msg = err.to_string();
            SnapshotError::new_err(msg)
        }
    }
}

/// `?` on an engine result inside a binding.
pub trait IntoPyResult<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, EngineError> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}

/// `ExceptionType: message`, as results and fault records keep errors, cut to `max_chars`.
pub fn error_text(py: Python<'_>, err: &PyErr, max_chars: usize) -> String {
    let kind = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    let msg = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let text = if msg.is_empty() {
        kind
    } else {
        format!("{kind}: {msg}")
    };
    shorten(text, max_chars)
}

/// `text`, cut to `max_chars` characters with "..." when longer.
pub fn shorten(text: String, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

/// KeyboardInterrupt, SystemExit, CancelledError and other non-`Exception` errors stop the
/// caller; everything else is recorded where it happened and the work goes on.
pub fn is_fatal(py: Python<'_>, err: &PyErr) -> bool {
    !err.is_instance_of::<PyException>(py)
}
