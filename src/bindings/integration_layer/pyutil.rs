//! Small helpers for reading arbitrary Python objects without trusting them.

use crate::bindings::convert::type_name;
use pyo3::exceptions::PyAttributeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};
use std::sync::Arc;

/// A Python object held by the integration layer (cheap to clone without the GIL).
pub type Handle = Arc<Py<PyAny>>;

/// Longest exception text kept.
const MAX_TEXT: usize = 500;

/// `ExceptionType: message`, shortened.
pub fn error_text(py: Python<'_>, err: &PyErr) -> String {
    crate::bindings::errors::error_text(py, err, MAX_TEXT)
}

pub use crate::bindings::errors::is_fatal;

/// `getattr(obj, name)`: `None` when missing (AttributeError) or None; an error when the
/// lookup raised anything else.
pub fn attr<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    attr_named(obj, &PyString::new(obj.py(), name))
}

/// [`attr`] with the name as a Python string: a name made once (`pyo3::intern!`) saves
/// building and hashing it again on every call, which counts when reading every edge of a
/// large graph.
pub fn attr_named<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    // Most probes miss. Python's own three-argument getattr settles a miss without creating
    // an AttributeError (the C API that does so is not in the stable ABI before 3.13).
    static GETATTR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = obj.py();
    let getattr = GETATTR.get_or_try_init(py, || {
        py.import("builtins")?.getattr("getattr").map(Bound::unbind)
    })?;
    match getattr.bind(py).call1((obj, name, py.None())) {
        Ok(v) if v.is_none() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_instance_of::<PyAttributeError>(py) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `obj` may be awaited. Plain data answers are settled without an attribute lookup.
pub fn is_awaitable(obj: &Bound<'_, PyAny>) -> bool {
    if obj.is_none()
        || obj.is_exact_instance_of::<PyDict>()
        || obj.is_exact_instance_of::<pyo3::types::PyList>()
        || obj.is_exact_instance_of::<PyString>()
        || obj.is_exact_instance_of::<pyo3::types::PyInt>()
        || obj.is_exact_instance_of::<pyo3::types::PyFloat>()
        || obj.is_exact_instance_of::<pyo3::types::PyBool>()
        || obj.is_exact_instance_of::<pyo3::types::PyTuple>()
    {
        return false;
    }
    matches!(attr(obj, "__await__"), Ok(Some(_)))
}

/// A callable attribute, or `None`.
pub fn method<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(attr(obj, name)?.filter(|m| m.is_callable()))
}

/// A present, non-callable attribute (a data attribute such as `edges` or `tasks`).
pub fn data_attr<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(attr(obj, name)?.filter(|v| !v.is_callable()))
}

/// The text of a str or of an enum member whose value is a str.
pub fn label(obj: &Bound<'_, PyAny>) -> Option<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return s.to_cow().ok().map(|c| c.into_owned());
    }
    let value = obj.getattr("value").ok()?;
    let s = value.cast::<PyString>().ok()?;
    s.to_cow().ok().map(|c| c.into_owned())
}

/// A node, task or agent id as text: a str as is, anything else through `str()`.
pub fn key_text(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    Ok(obj.str()?.to_string())
}

/// A field of an object or of a dict.
pub fn field<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    field_named(obj, &PyString::new(obj.py(), name))
}

/// [`field`] with the name as a Python string (see [`attr_named`]).
pub fn field_named<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(d.get_item(name)?.filter(|v| !v.is_none()));
    }
    attr_named(obj, name)
}

/// Whether a call answered with an awaitable; a coroutine is closed so Python does not warn
/// that it was never awaited.
/// `inspect.iscoroutinefunction(obj)`, also true for an object whose `__call__` is one.
pub fn is_coroutine_function(obj: &Bound<'_, PyAny>) -> bool {
    let py = obj.py();
    let Ok(check) = py
        .import("inspect")
        .and_then(|m| m.getattr("iscoroutinefunction"))
    else {
        return false;
    };
    let is = |o: &Bound<'_, PyAny>| {
        check
            .call1((o,))
            .and_then(|v| v.is_truthy())
            .unwrap_or(false)
    };
    is(obj) || obj.getattr("__call__").is_ok_and(|c| is(&c))
}

pub fn close_if_awaitable(obj: &Bound<'_, PyAny>) -> bool {
    if is_awaitable(obj) {
        if let Ok(Some(close)) = method(obj, "close") {
            let _ = close.call0();
        }
        return true;
    }
    false
}

/// A readable name for a callable: its `__qualname__`, `__name__`, or its type.
pub fn callable_name(obj: &Bound<'_, PyAny>) -> String {
    for a in ["__qualname__", "__name__"] {
        if let Ok(Some(v)) = attr(obj, a) {
            if let Some(s) = label(&v) {
                return s;
            }
        }
    }
    type_name(obj)
}
