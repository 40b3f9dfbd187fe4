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
use pyo3::ffi;
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
        Members {
            cell: PyOnceLock::new(),
            _enum: PhantomData,
        }
    }

    fn all(&self, py: Python<'_>) -> PyResult<&[Py<PyAny>]> {
        self.cell
            .get_or_try_init(py, || {
                E::ALL
                    .iter()
                    .map(|v| enums::to_py(py, *v))
                    .collect::<PyResult<Vec<_>>>()
            })
            .map(|v| v.as_slice())
    }

    pub fn get(&self, py: Python<'_>, variant: E) -> PyResult<Py<PyAny>> {
        Ok(self.all(py)?[variant.index()].clone_ref(py))
    }

    /// The variant `obj` is, if it is one of the members.
    pub fn find(&self, obj: &Bound<'_, PyAny>) -> PyResult<Option<E>> {
        let members = self.all(obj.py())?;
        Ok(members
            .iter()
            .position(|m| m.as_ptr() == obj.as_ptr())
            .map(|i| E::ALL[i]))
    }
}

/// A fixed set of dict keys read together: `read` reports what `dict.get(name)` gives for each.
///
/// Dicts up to `4 * names` entries are walked once instead of looked up name by name (a walk
/// step is a few times cheaper than a lookup). Keys are matched by identity first (a dict
/// literal's keys are the same interned strings as ours), then by hash and content. A dict
/// with a key that is not an exact `str` (whose `__eq__` could claim to equal a name) is read
/// with one lookup per name instead, as are larger dicts.
pub struct KeySet {
    names: &'static [&'static str],
    cell: PyOnceLock<(Vec<Py<PyString>>, Vec<ffi::Py_hash_t>)>,
}

/// How many matching keys a walk collects before it hands over to lookups.
const WALK_HITS: usize = 8;

type Hits<'py> = [Option<(usize, Bound<'py, PyAny>)>; WALK_HITS];

impl KeySet {
    pub const fn new(names: &'static [&'static str]) -> Self {
        KeySet {
            names,
            cell: PyOnceLock::new(),
        }
    }

    pub fn name(&self, i: usize) -> &'static str {
        self.names[i]
    }

    fn interned(&self, py: Python<'_>) -> PyResult<&(Vec<Py<PyString>>, Vec<ffi::Py_hash_t>)> {
        self.cell.get_or_try_init(py, || {
            let strings: Vec<Py<PyString>> = self
                .names
                .iter()
                .map(|n| PyString::intern(py, n).unbind())
                .collect();
            let hashes = strings
                .iter()
                .map(|s| s.bind(py).hash())
                .collect::<PyResult<Vec<_>>>()?;
            Ok((strings, hashes))
        })
    }

    /// Calls `each(i, value)` for every `names[i]` the dict holds. The dict is read completely
    /// before the first call, so `each` may run Python code. `what(i)` names the entry in
    /// error messages.
    pub fn read<'py>(
        &self,
        dict: &Bound<'py, PyDict>,
        what: &dyn Fn(usize) -> String,
        mut each: impl FnMut(usize, Bound<'py, PyAny>) -> PyResult<()>,
    ) -> PyResult<()> {
        let py = dict.py();
        let (strings, hashes) = self.interned(py)?;
        if dict.len() <= 4 * self.names.len() {
            if let Some(hits) = walk(dict, strings, hashes) {
                for (i, value) in hits.into_iter().flatten() {
                    each(i, value)?;
                }
                return Ok(());
            }
        }
        for (i, name) in strings.iter().enumerate() {
            if let Some(value) = dict_get(dict, name.bind(py), &|| what(i))? {
                each(i, value)?;
            }
        }
        Ok(())
    }
}

impl KeySet {
    /// What `dict.get(names[i])` gives, for each of the `N` names (`N` is the number of names).
    /// For small name sets; `read` suits large ones, where most names are absent.
    pub fn read_slots<'py, const N: usize>(
        &self,
        dict: &Bound<'py, PyDict>,
        what: &dyn Fn(usize) -> String,
    ) -> PyResult<[Option<Bound<'py, PyAny>>; N]> {
        debug_assert_eq!(N, self.names.len());
        let (strings, hashes) = self.interned(dict.py())?;
        let mut slots: [Option<Bound<'py, PyAny>>; N] = std::array::from_fn(|_| None);
        if dict.len() <= 4 * N && walk_slots(dict, strings, hashes, &mut slots) {
            return Ok(slots);
        }
        let py = dict.py();
        for (i, name) in strings.iter().enumerate().take(N) {
            slots[i] = dict_get(dict, name.bind(py), &|| what(i))?;
        }
        Ok(slots)
    }
}

impl KeySet {
    /// The fast path of reading numbers: `Some` when every key of the dict is an exact `str`
    /// and every value under one of the names is None, an exact float (finite), an exact int
    /// that fits in 64 bits or a bool (only a bool where `is_flag(i)`). Values are read in
    /// place, without taking references. `None` sends the caller to its general path, which
    /// also produces the error for a value that is wrong.
    pub fn read_plain_numbers<const N: usize>(
        &self,
        dict: &Bound<'_, PyDict>,
        is_flag: impl Fn(usize) -> bool,
    ) -> Option<[Option<Num>; N]> {
        debug_assert_eq!(N, self.names.len());
        let (strings, hashes) = self.interned(dict.py()).ok()?;
        if dict.len() > 4 * N {
            return None;
        }
        let mut out: [Option<Num>; N] = [None; N];
        // SAFETY: the GIL is held and the closure runs no Python code (its value checks are
        // exact type checks), so each borrowed value stays valid while it is read.
        let plain = unsafe {
            walk_named(dict, strings, hashes, |i, value| {
                let Some(slot) = out.get_mut(i) else {
                    return true;
                };
                *slot = if value == ffi::Py_None() {
                    None
                } else if value == ffi::Py_True() || value == ffi::Py_False() {
                    Some(Num::Bool(value == ffi::Py_True()))
                } else if is_flag(i) {
                    return false;
                } else if ffi::PyFloat_CheckExact(value) != 0 {
                    let f = ffi::PyFloat_AS_DOUBLE(value);
                    if !f.is_finite() {
                        return false;
                    }
                    Some(Num::Float(f))
                } else if ffi::PyLong_CheckExact(value) != 0 {
                    let mut overflow = 0;
                    let n = ffi::PyLong_AsLongLongAndOverflow(value, &mut overflow);
                    if overflow != 0 {
                        return false;
                    }
                    Some(Num::Int(n))
                } else {
                    return false;
                };
                true
            })
        };
        if !plain {
            return None;
        }
        Some(out)
    }
}

/// Which name an exact-str dict key is: by identity (a dict literal's keys are the interned
/// strings themselves), else by hash and content.
///
/// # Safety
/// `key` must be a live exact `str` and the GIL held; hashing and comparing exact strs runs no
/// Python code.
unsafe fn name_index(
    key: *mut ffi::PyObject,
    strings: &[Py<PyString>],
    hashes: &[ffi::Py_hash_t],
) -> Option<usize> {
    if let Some(i) = strings.iter().position(|s| s.as_ptr() == key) {
        return Some(i);
    }
    let h = ffi::PyObject_Hash(key);
    hashes
        .iter()
        .zip(strings)
        .position(|(hash, s)| *hash == h && ffi::PyUnicode_Compare(key, s.as_ptr()) == 0)
}

/// `walk` into one slot per name; false (slots unspecified) when a key is not an exact str.
fn walk_slots<'py>(
    dict: &Bound<'py, PyDict>,
    strings: &[Py<PyString>],
    hashes: &[ffi::Py_hash_t],
    slots: &mut [Option<Bound<'py, PyAny>>],
) -> bool {
    let py = dict.py();
    // SAFETY: the closure runs no Python code; each value becomes an owned reference at once.
    unsafe {
        walk_named(dict, strings, hashes, |i, value| {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(Bound::from_borrowed_ptr(py, value));
            }
            true
        })
    }
}

/// Calls `each(i, value)` for every key of `dict` that is `strings[i]`, with the value
/// borrowed; stops with false when a key is not an exact `str` or `each` returns false.
///
/// # Safety
/// The GIL must be held and `each` must run no Python code, so that the dict cannot change
/// during the walk (exact strs hash and compare in C) and each borrowed value stays valid
/// while `each` reads it.
unsafe fn walk_named(
    dict: &Bound<'_, PyDict>,
    strings: &[Py<PyString>],
    hashes: &[ffi::Py_hash_t],
    mut each: impl FnMut(usize, *mut ffi::PyObject) -> bool,
) -> bool {
    let mut pos: ffi::Py_ssize_t = 0;
    let mut key: *mut ffi::PyObject = std::ptr::null_mut();
    let mut value: *mut ffi::PyObject = std::ptr::null_mut();
    while ffi::PyDict_Next(dict.as_ptr(), &mut pos, &mut key, &mut value) != 0 {
        if ffi::PyUnicode_CheckExact(key) == 0 {
            return false;
        }
        if let Some(i) = name_index(key, strings, hashes) {
            if !each(i, value) {
                return false;
            }
        }
    }
    true
}

/// The walk. `None` when a key is not an exact str, or more than `WALK_HITS` names are present.
fn walk<'py>(
    dict: &Bound<'py, PyDict>,
    strings: &[Py<PyString>],
    hashes: &[ffi::Py_hash_t],
) -> Option<Hits<'py>> {
    let py = dict.py();
    let mut hits: Hits<'py> = Default::default();
    let mut count = 0;
    // SAFETY: the closure runs no Python code; each value becomes an owned reference at once.
    let whole = unsafe {
        walk_named(dict, strings, hashes, |i, value| {
            if count == WALK_HITS {
                return false;
            }
            hits[count] = Some((i, Bound::from_borrowed_ptr(py, value)));
            count += 1;
            true
        })
    };
    whole.then_some(hits)
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
pub fn optional_attr<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    what: &str,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    obj.getattr_opt(name)
        .map_err(|e| caller_error(obj.py(), e, what))
}

/// A metric value as a reading: None gives `None` (read as a missing key); bools, ints and
/// floats keep their Python type; other numbers (numpy scalars, Decimal) go through
/// `__index__` or `__float__`. Strings and other objects are a TypeError, NaN and the
/// infinities a ValueError, ints beyond 64 bits a ValueError; each names `what()`.
#[inline]
pub fn num_from_py(v: &Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<Option<Num>> {
    if v.is_none() {
        return Ok(None);
    }
    // Exact floats and ints (nearly every metric) are read straight through the C API.
    let ptr = v.as_ptr();
    // SAFETY: `ptr` is a live object (the GIL is held and `v` owns a reference); the type
    // checks come first, so each accessor only sees its own exact type, where it cannot fail
    // except by overflow, which is reported through `overflow`.
    unsafe {
        if ffi::PyFloat_CheckExact(ptr) != 0 {
            return finite(ffi::PyFloat_AS_DOUBLE(ptr), what).map(Some);
        }
        if ffi::PyLong_CheckExact(ptr) != 0 {
            let mut overflow = 0;
            let n = ffi::PyLong_AsLongLongAndOverflow(ptr, &mut overflow);
            if overflow == 0 {
                return Ok(Some(Num::Int(n)));
            }
            return Err(PyValueError::new_err(format!(
                "{}: integer does not fit in 64 bits",
                what()
            )));
        }
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
        let f = v
            .extract::<f64>()
            .map_err(|e| caller_error(py, e, &what()))?;
        return finite(f, what).map(Some);
    }
    Err(PyTypeError::new_err(format!(
        "{} must be a number, got {}",
        what(),
        super::convert::type_name(v)
    )))
}

#[inline]
fn finite(f: f64, what: &dyn Fn() -> String) -> PyResult<Num> {
    if f.is_finite() {
        return Ok(Num::Float(f));
    }
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
    if let Ok(b) = v.cast_exact::<PyBool>() {
        return Ok(b.is_true());
    }
    v.is_truthy().map_err(|e| caller_error(v.py(), e, &what()))
}

/// A dict argument: None (or absent) gives `None`; anything but a dict is a TypeError.
pub fn dict_arg<'a, 'py>(
    obj: Option<&'a Bound<'py, PyAny>>,
    what: &str,
) -> PyResult<Option<&'a Bound<'py, PyDict>>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => o.cast::<PyDict>().map(Some).map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be a dict or None, got {}",
                super::convert::type_name(o)
            ))
        }),
    }
}

/// `dict.get(key)`, with a failing key comparison reported against `what`.
pub fn dict_get<'py>(
    dict: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
    what: &dyn Fn() -> String,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    dict.get_item(key)
        .map_err(|e| caller_error(dict.py(), e, &what()))
}

/// The UTF-8 encoding of a Python string (the stable ABI has no borrowed view before 3.10).
/// Only `utf8` makes one, so its bytes are always valid UTF-8.
pub struct Utf8<'py>(Bound<'py, PyBytes>);

impl Utf8<'_> {
    pub fn as_str(&self) -> &str {
        // SAFETY: `utf8` is the only constructor, and Python's UTF-8 encoder refuses anything
        // (lone surrogates) that would not be valid UTF-8; checking again would cost a pass
        // over every fault's description.
        unsafe { std::str::from_utf8_unchecked(self.0.as_bytes()) }
    }
}

pub fn utf8<'py>(s: &Bound<'py, PyString>, what: &str) -> PyResult<Utf8<'py>> {
    s.encode_utf8().map(Utf8).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} is not valid text (it holds a lone surrogate)"
        ))
    })
}

/// A count argument (`limit`, `window_size`, `history_size`): an int (not a bool) of at least
/// `min`. Ints too large for the machine saturate, since they only ever mean "everything".
pub fn count_arg(obj: &Bound<'_, PyAny>, what: &str, min: u64) -> PyResult<usize> {
    if obj.is_instance_of::<PyBool>() || !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, got {}",
            super::convert::type_name(obj)
        )));
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
        return Err(PyValueError::new_err(format!(
            "{what} must be at least {min}, got {}",
            obj.str()?
        )));
    }
    Ok(usize::try_from(value).unwrap_or(usize::MAX))
}

/// The current wall-clock instant, cheap to take; `timestamp_at` turns it into the naive local
/// `datetime` only when someone reads it.
pub fn wall_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The naive local `datetime` of a `wall_micros` instant.
pub fn timestamp_at(py: Python<'_>, micros: i64) -> PyResult<Py<PyAny>> {
    super::convert::datetime_to_py(py, &crate::engine::clock::local_from_micros(micros))
}
