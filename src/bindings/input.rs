//! Reading caller input on hot paths: metric dicts, enum members, counts and timestamps.
//!
//! Classification and health read a fixed set of keys out of caller dicts many thousand times
//! a second. Keys are looked up with interned strings (the hash is cached, so a lookup is a
//! probe and a pointer compare), values become `Num` readings with Python's number semantics,
//! and enum members are recognised by identity against a per-enum cache.

use super::enums;
use crate::engine::enums::ValueEnum;
use crate::engine::pynum::Num;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyString};
use std::marker::PhantomData;

/// The members of one enum, loaded once: index lookups and identity checks with no hashing.
pub struct Members<E> {
    cell: PyOnceLock<Vec<Py<PyAny>>>,
    _enum: PhantomData<fn() -> E>,
}

impl<E: ValueEnum> Members<E> {
    pub const fn new() -> Self {
        Members { cell: PyOnceLock::new(), _enum: PhantomData }
    }

    fn all(&self, py: Python<'_>) -> PyResult<&[Py<PyAny>]> {
        self.cell
            .get_or_try_init(py, || E::ALL.iter().map(|v| enums::to_py(py, *v)).collect::<PyResult<Vec<_>>>())
            .map(|v| v.as_slice())
    }

    pub fn get(&self, py: Python<'_>, variant: E) -> PyResult<Py<PyAny>> {
        Ok(self.all(py)?[variant.index()].clone_ref(py))
    }

    /// The variant `obj` is, if it is one of the members.
    pub fn find(&self, obj: &Bound<'_, PyAny>) -> PyResult<Option<E>> {
        let members = self.all(obj.py())?;
        Ok(members.iter().position(|m| m.as_ptr() == obj.as_ptr()).map(|i| E::ALL[i]))
    }
}

/// Python strings for a fixed list of names, interned once.
pub struct InternedNames {
    names: &'static [&'static str],
    cell: PyOnceLock<Vec<Py<PyString>>>,
}

impl InternedNames {
    pub const fn new(names: &'static [&'static str]) -> Self {
        InternedNames { names, cell: PyOnceLock::new() }
    }

    pub fn get<'py>(&self, py: Python<'py>, i: usize) -> &Bound<'py, PyString> {
        self.cell.get_or_init(py, || self.names.iter().map(|n| PyString::intern(py, n).unbind()).collect())[i].bind(py)
    }

    /// The interned string equal to `text`, or a new one for text outside the list.
    pub fn lookup(&self, py: Python<'_>, text: &str) -> Py<PyString> {
        match self.names.iter().position(|n| *n == text) {
            Some(i) => self.get(py, i).clone().unbind(),
            None => PyString::new(py, text).unbind(),
        }
    }
}

/// Wraps an error raised by caller code (a `__getattr__`, `__eq__` or `__bool__`) in a
/// TypeError that says what was being read, keeping the original as the cause.
pub fn caller_error(py: Python<'_>, err: PyErr, what: &str) -> PyErr {
    let message = format!("reading {what} raised {err}");
    let wrapped = if err.is_instance_of::<PyValueError>(py) {
        PyValueError::new_err(message)
    } else {
        PyTypeError::new_err(message)
    };
    wrapped.set_cause(py, Some(err));
    wrapped
}

/// `getattr(obj, name, <missing>)`: `None` when the attribute does not exist.
pub fn optional_attr<'py>(obj: &Bound<'py, PyAny>, name: &Bound<'py, PyString>, what: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    obj.getattr_opt(name).map_err(|e| caller_error(obj.py(), e, what))
}

/// A metric value as a reading: None gives `None` (read as a missing key); bools, ints and
/// floats keep their Python type; other numbers (numpy scalars, Decimal) go through
/// `__index__` or `__float__`. Strings and other objects are a TypeError, NaN and the
/// infinities a ValueError, ints beyond 64 bits a ValueError; each names `what()`.
pub fn num_from_py(v: &Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<Option<Num>> {
    if v.is_none() {
        return Ok(None);
    }
    if let Ok(f) = v.cast_exact::<PyFloat>() {
        return finite(f.value(), what).map(Some);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Some(Num::Bool(b.is_true())));
    }
    if let Ok(i) = v.cast::<PyInt>() {
        return int(i.as_any(), what).map(Some);
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return finite(f.value(), what).map(Some);
    }
    let py = v.py();
    let numeric = !v.is_instance_of::<PyString>() && !v.is_instance_of::<PyBytes>();
    if numeric && v.hasattr(pyo3::intern!(py, "__index__")).unwrap_or(false) {
        return int(v, what).map(Some);
    }
    if numeric && v.hasattr(pyo3::intern!(py, "__float__")).unwrap_or(false) {
        let f = v.extract::<f64>().map_err(|e| caller_error(py, e, &what()))?;
        return finite(f, what).map(Some);
    }
    Err(PyTypeError::new_err(format!("{} must be a number, got {}", what(), super::convert::type_name(v))))
}

fn finite(f: f64, what: &dyn Fn() -> String) -> PyResult<Num> {
    Num::float(f, &what()).map_err(super::errors::to_py_err)
}

fn int(v: &Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<Num> {
    v.extract::<i64>().map(Num::Int).map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyOverflowError>(v.py()) {
            PyValueError::new_err(format!("{}: integer does not fit in 64 bits", what()))
        } else {
            caller_error(v.py(), e, &what())
        }
    })
}

/// Python truthiness of a caller value, with a raising `__bool__` reported against `what`.
pub fn truthy(v: &Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<bool> {
    v.is_truthy().map_err(|e| caller_error(v.py(), e, &what()))
}

/// A dict argument: None (or absent) gives `None`; anything but a dict is a TypeError.
pub fn dict_arg<'a, 'py>(obj: Option<&'a Bound<'py, PyAny>>, what: &str) -> PyResult<Option<&'a Bound<'py, PyDict>>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => o
            .cast::<PyDict>()
            .map(Some)
            .map_err(|_| PyTypeError::new_err(format!("{what} must be a dict or None, got {}", super::convert::type_name(o)))),
    }
}

/// `dict.get(key)`, with a failing key comparison reported against `what`.
pub fn dict_get<'py>(dict: &Bound<'py, PyDict>, key: &Bound<'py, PyString>, what: &dyn Fn() -> String) -> PyResult<Option<Bound<'py, PyAny>>> {
    dict.get_item(key).map_err(|e| caller_error(dict.py(), e, &what()))
}

/// The UTF-8 bytes of a Python string (the stable ABI has no borrowed view on 3.9).
pub fn utf8<'py>(s: &Bound<'py, PyString>, what: &str) -> PyResult<Bound<'py, PyBytes>> {
    s.encode_utf8().map_err(|_| PyValueError::new_err(format!("{what} is not valid text (it holds a lone surrogate)")))
}

/// The text of `utf8` bytes.
pub fn text_of<'a>(bytes: &'a Bound<'_, PyBytes>) -> &'a str {
    // encode_utf8 produced these bytes, so they are valid UTF-8.
    std::str::from_utf8(bytes.as_bytes()).unwrap_or_default()
}

/// A count argument (`limit`, `window_size`, `history_size`): an int (not a bool) of at least
/// `min`. Ints too large for the machine saturate, since they only ever mean "everything".
pub fn count_arg(obj: &Bound<'_, PyAny>, what: &str, min: u64) -> PyResult<usize> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("{what} must be an int, got {}", super::convert::type_name(obj))));
    }
    let value = match obj.extract::<i64>() {
        Ok(v) => v,
        // Beyond 64 bits: only the sign matters.
        Err(_) => {
            if obj.lt(0)? {
                i64::MIN
            } else {
                i64::MAX
            }
        }
    };
    if value < 0 || (value as u64) < min {
        return Err(PyValueError::new_err(format!("{what} must be at least {min}, got {}", obj.str()?)));
    }
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

/// The current wall-clock instant, cheap to take; `lazy_timestamp` turns it into the naive local
/// `datetime` only if someone reads it.
pub fn wall_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub fn lazy_timestamp(micros: i64) -> super::record::Lazy {
    super::record::Lazy::later(move |py| {
        super::convert::datetime_to_py(py, &crate::engine::clock::local_from_micros(micros))
    })
}
