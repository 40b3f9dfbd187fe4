//! The one place where engine errors become Python exceptions.

use crate::engine::EngineError;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
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
