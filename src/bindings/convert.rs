//! Conversions at the edge: Python values to the engine's JSON values and back, and naive
//! local datetimes.
//!
//! Only what JSON can hold crosses into the engine. The walker refuses NaN and infinities,
//! integers beyond 64 bits, nesting deeper than `MAX_DEPTH`, containers that contain
//! themselves, and objects that are not dicts, lists, tuples, strings, numbers, bools or
//! None. Every refusal names the path of the offending value.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// Deepest nesting accepted. Python's own json module gives up near 1000 with a
/// RecursionError; we stop well before the native stack is at risk.
pub const MAX_DEPTH: usize = 256;

/// Receives the walk of one Python value, in document order.
pub trait JsonSink {
    fn null(&mut self);
    fn boolean(&mut self, v: bool);
    fn int(&mut self, v: i64);
    fn uint(&mut self, v: u64);
    fn float(&mut self, v: f64);
    fn string(&mut self, v: &str);
    fn begin_array(&mut self, len: usize);
    fn end_array(&mut self);
    fn begin_object(&mut self, len: usize);
    fn key(&mut self, k: &str);
    fn end_object(&mut self);
}

/// Walks `obj`, feeding `sink`. `what` names the value in error messages (e.g. `state`).
pub fn walk(obj: &Bound<'_, PyAny>, sink: &mut impl JsonSink, what: &str) -> PyResult<()> {
    let mut stack: Vec<*mut pyo3::ffi::PyObject> = Vec::new();
    walk_inner(obj, sink, &mut stack).map_err(|e| e.into_py_err(what))
}

/// An error on the way back up, collecting the path as it unwinds.
struct WalkError {
    kind: ErrKind,
    message: String,
    path: Vec<String>,
}

enum ErrKind {
    Type,
    Value,
    Python(PyErr),
}

impl WalkError {
    fn new(kind: ErrKind, message: impl Into<String>) -> Self {
        WalkError {
            kind,
            message: message.into(),
            path: Vec::new(),
        }
    }
    fn at(mut self, segment: String) -> Self {
        self.path.push(segment);
        self
    }
    fn into_py_err(self, what: &str) -> PyErr {
        let mut path = String::from(what);
        for seg in self.path.iter().rev() {
            path.push_str(seg);
        }
        match self.kind {
            ErrKind::Type => PyTypeError::new_err(format!("{path}: {}", self.message)),
            ErrKind::Value => PyValueError::new_err(format!("{path}: {}", self.message)),
            ErrKind::Python(err) => err,
        }
    }
}

impl From<PyErr> for WalkError {
    fn from(err: PyErr) -> Self {
        WalkError::new(ErrKind::Python(err), String::new())
    }
}

fn walk_inner(
    obj: &Bound<'_, PyAny>,
    sink: &mut impl JsonSink,
    stack: &mut Vec<*mut pyo3::ffi::PyObject>,
) -> Result<(), WalkError> {
    if obj.is_none() {
        sink.null();
        return Ok(());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        sink.string(&s.to_cow()?);
        return Ok(());
    }
    // bool before int: bool is an int subclass in Python.
    if let Ok(b) = obj.cast::<PyBool>() {
        sink.boolean(b.is_true());
        return Ok(());
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        if let Ok(v) = i.extract::<i64>() {
            sink.int(v);
        } else if let Ok(v) = i.extract::<u64>() {
            sink.uint(v);
        } else {
            return Err(WalkError::new(
                ErrKind::Value,
                "integer does not fit in 64 bits",
            ));
        }
        return Ok(());
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        if !v.is_finite() {
            return Err(WalkError::new(
                ErrKind::Value,
                format!("{v} is not a finite number"),
            ));
        }
        sink.float(v);
        return Ok(());
    }
    let is_dict = obj.cast::<PyDict>().is_ok();
    let is_seq = obj.cast::<PyList>().is_ok() || obj.cast::<PyTuple>().is_ok();
    if !(is_dict || is_seq) {
        let type_name = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(WalkError::new(
            ErrKind::Type,
            format!("a value of type {type_name} cannot be stored (only dict, list, tuple, str, int, float, bool and None)"),
        ));
    }
    let ptr = obj.as_ptr();
    if stack.contains(&ptr) {
        return Err(WalkError::new(
            ErrKind::Value,
            "the container contains itself",
        ));
    }
    if stack.len() >= MAX_DEPTH {
        return Err(WalkError::new(
            ErrKind::Value,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    stack.push(ptr);
    let result = if let Ok(dict) = obj.cast::<PyDict>() {
        sink.begin_object(dict.len());
        // A snapshot of the items: a key's __str__ (int subclasses) may run Python code that
        // changes the dict, which would make a live iterator fail.
        for item in dict.items().iter() {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            let key = dict_key(&k)?;
            sink.key(&key);
            walk_inner(&v, sink, stack).map_err(|e| e.at(format!("[{key:?}]")))?;
        }
        sink.end_object();
        Ok(())
    } else if let Ok(list) = obj.cast::<PyList>() {
        sink.begin_array(list.len());
        // Index access tolerates a list mutated by a callback during the walk.
        let mut i = 0;
        while let Ok(item) = list.get_item(i) {
            walk_inner(&item, sink, stack).map_err(|e| e.at(format!("[{i}]")))?;
            i += 1;
        }
        sink.end_array();
        Ok(())
    } else {
        let tuple = obj.cast::<PyTuple>().map_err(PyErr::from)?;
        sink.begin_array(tuple.len());
        for (i, item) in tuple.iter().enumerate() {
            walk_inner(&item, sink, stack).map_err(|e| e.at(format!("[{i}]")))?;
        }
        sink.end_array();
        Ok(())
    };
    stack.pop();
    result
}

/// JSON object keys, converted the way Python's json module does.
fn dict_key(k: &Bound<'_, PyAny>) -> Result<String, WalkError> {
    if let Ok(s) = k.cast::<PyString>() {
        return Ok(s.to_cow()?.into_owned());
    }
    if let Ok(b) = k.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.to_string());
    }
    if k.is_none() {
        return Ok("null".to_string());
    }
    if let Ok(i) = k.cast::<PyInt>() {
        return Ok(i.str()?.to_cow()?.into_owned());
    }
    if let Ok(f) = k.cast::<PyFloat>() {
        let v = f.value();
        if v.is_finite() {
            return Ok(crate::engine::pyfmt::float_repr(v));
        }
    }
    let type_name = k
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    Err(WalkError::new(
        ErrKind::Type,
        format!("dict keys must be str, int, float, bool or None, not {type_name}"),
    ))
}

/// Builds a `serde_json::Value` from the walk.
#[derive(Default)]
pub struct ValueBuilder {
    stack: Vec<Frame>,
    done: Option<Value>,
}

enum Frame {
    Array(Vec<Value>),
    Object(Map<String, Value>, Option<String>),
}

impl ValueBuilder {
    fn put(&mut self, v: Value) {
        match self.stack.last_mut() {
            Some(Frame::Array(items)) => items.push(v),
            Some(Frame::Object(map, key)) => {
                let k = key.take().unwrap_or_default();
                map.insert(k, v);
            }
            None => self.done = Some(v),
        }
    }
    pub fn finish(self) -> Value {
        self.done.unwrap_or(Value::Null)
    }
}

impl JsonSink for ValueBuilder {
    fn null(&mut self) {
        self.put(Value::Null)
    }
    fn boolean(&mut self, v: bool) {
        self.put(Value::Bool(v))
    }
    fn int(&mut self, v: i64) {
        self.put(Value::Number(v.into()))
    }
    fn uint(&mut self, v: u64) {
        self.put(Value::Number(v.into()))
    }
    fn float(&mut self, v: f64) {
        self.put(
            Number::from_f64(v)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        )
    }
    fn string(&mut self, v: &str) {
        self.put(Value::String(v.to_owned()))
    }
    fn begin_array(&mut self, len: usize) {
        self.stack.push(Frame::Array(Vec::with_capacity(len)))
    }
    fn end_array(&mut self) {
        if let Some(Frame::Array(items)) = self.stack.pop() {
            self.put(Value::Array(items))
        }
    }
    fn begin_object(&mut self, len: usize) {
        self.stack
            .push(Frame::Object(Map::with_capacity(len), None))
    }
    fn key(&mut self, k: &str) {
        if let Some(Frame::Object(_, key)) = self.stack.last_mut() {
            *key = Some(k.to_owned());
        }
    }
    fn end_object(&mut self) {
        if let Some(Frame::Object(map, _)) = self.stack.pop() {
            self.put(Value::Object(map))
        }
    }
}

/// Writes compact JSON text straight from the walk, with no intermediate tree.
pub struct JsonWriter<'a> {
    out: &'a mut Vec<u8>,
    // Whether the next item in the current container needs a comma.
    need_comma: Vec<bool>,
}

impl<'a> JsonWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        JsonWriter {
            out,
            need_comma: Vec::new(),
        }
    }
    fn before_value(&mut self) {
        if let Some(last) = self.need_comma.last_mut() {
            if *last {
                self.out.push(b',');
            }
            *last = true;
        }
    }
    fn write_str(&mut self, s: &str) {
        // serde_json's escaping is exact and fast; writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *self.out, s);
    }
}

impl JsonSink for JsonWriter<'_> {
    fn null(&mut self) {
        self.before_value();
        self.out.extend_from_slice(b"null");
    }
    fn boolean(&mut self, v: bool) {
        self.before_value();
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }
    fn int(&mut self, v: i64) {
        self.before_value();
        self.out.extend_from_slice(v.to_string().as_bytes());
    }
    fn uint(&mut self, v: u64) {
        self.before_value();
        self.out.extend_from_slice(v.to_string().as_bytes());
    }
    fn float(&mut self, v: f64) {
        self.before_value();
        // Python's repr form, so a float stays a float when read back (1.0, not 1).
        self.out
            .extend_from_slice(crate::engine::pyfmt::float_repr(v).as_bytes());
    }
    fn string(&mut self, v: &str) {
        self.before_value();
        self.write_str(v);
    }
    fn begin_array(&mut self, _len: usize) {
        self.before_value();
        self.out.push(b'[');
        self.need_comma.push(false);
    }
    fn end_array(&mut self) {
        self.need_comma.pop();
        self.out.push(b']');
    }
    fn begin_object(&mut self, _len: usize) {
        self.before_value();
        self.out.push(b'{');
        self.need_comma.push(false);
    }
    fn key(&mut self, k: &str) {
        if let Some(last) = self.need_comma.last_mut() {
            if *last {
                self.out.push(b',');
            }
            // The value after the key must not write a comma of its own.
            *last = false;
        }
        self.write_str(k);
        self.out.push(b':');
    }
    fn end_object(&mut self) {
        self.need_comma.pop();
        self.out.push(b'}');
    }
}

/// A Python value as an engine JSON value.
pub fn to_value(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Value> {
    let mut builder = ValueBuilder::default();
    walk(obj, &mut builder, what)?;
    Ok(builder.finish())
}

/// A Python dict (or None, read as `{}`) as an engine map. Anything else is a TypeError.
pub fn to_map(obj: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Map<String, Value>> {
    match obj {
        None => Ok(Map::new()),
        Some(o) if o.is_none() => Ok(Map::new()),
        Some(o) => {
            if o.cast::<PyDict>().is_err() {
                let type_name = o
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                return Err(PyTypeError::new_err(format!(
                    "{what} must be a dict, got {type_name}"
                )));
            }
            match to_value(o, what)? {
                Value::Object(map) => Ok(map),
                _ => Ok(Map::new()),
            }
        }
    }
}

/// Compact JSON text of a Python value, validated as `walk` does.
pub fn to_json_bytes(obj: &Bound<'_, PyAny>, what: &str, out: &mut Vec<u8>) -> PyResult<()> {
    let mut writer = JsonWriter::new(out);
    walk(obj, &mut writer, what)
}

/// An engine JSON value as a fresh Python object.
pub fn from_value<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(from_value(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => from_map(py, map)?.into_any(),
    })
}

pub fn from_map<'py>(py: Python<'py>, map: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, from_value(py, v)?)?;
    }
    Ok(dict)
}

/// A naive local datetime as a Python `datetime.datetime`.
pub fn datetime_to_py(py: Python<'_>, dt: &NaiveDateTime) -> PyResult<Py<PyAny>> {
    let micros = dt.and_utc().timestamp_subsec_micros();
    let obj = pyo3::types::PyDateTime::new(
        py,
        dt.year(),
        dt.month() as u8,
        dt.day() as u8,
        dt.hour() as u8,
        dt.minute() as u8,
        dt.second() as u8,
        micros.min(999_999),
        None,
    )?;
    Ok(obj.into_any().unbind())
}

/// A Python `datetime.datetime` (naive, or aware and then read as its wall time) as a naive
/// datetime.
pub fn datetime_from_py(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<NaiveDateTime> {
    let get = |name: &str| -> PyResult<u32> { obj.getattr(name)?.extract::<u32>() };
    let parts = (|| -> PyResult<NaiveDateTime> {
        let date = NaiveDate::from_ymd_opt(
            obj.getattr("year")?.extract::<i32>()?,
            get("month")?,
            get("day")?,
        )
        .ok_or_else(|| PyValueError::new_err("invalid date"))?;
        date.and_hms_micro_opt(
            get("hour")?,
            get("minute")?,
            get("second")?,
            get("microsecond")?,
        )
        .ok_or_else(|| PyValueError::new_err("invalid time"))
    })();
    parts.map_err(|_| {
        let type_name = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        PyTypeError::new_err(format!(
            "{what} must be a datetime.datetime, got {type_name}"
        ))
    })
}

/// The Python type name of a value, for error messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// An int argument: TypeError for anything but an int (bool included), ValueError when it
/// does not fit in 64 bits, both naming the argument.
pub fn int_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<i64> {
    if obj.cast::<PyBool>().is_ok() || obj.cast::<PyInt>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be an int, got {}",
            type_name(obj)
        )));
    }
    obj.extract::<i64>()
        .map_err(|_| PyValueError::new_err(format!("{what} is out of range")))
}

/// An integer argument (`from_py_with`): TypeError for anything but an int (bools included),
/// ValueError rather than OverflowError when it does not fit.
pub fn i64_param(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    if obj.cast::<PyBool>().is_ok() || obj.cast::<PyInt>().is_err() {
        return Err(PyTypeError::new_err(format!(
            "expected an int, got {}",
            type_name(obj)
        )));
    }
    obj.extract::<i64>()
        .map_err(|_| PyValueError::new_err("integer out of range: it must fit in 64 bits"))
}

/// A non-negative integer argument (`from_py_with`), as `i64_param`.
pub fn usize_param(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let v = i64_param(obj)?;
    usize::try_from(v).map_err(|_| PyValueError::new_err(format!("expected 0 or more, got {v}")))
}

/// A non-negative integer argument (`from_py_with`), as `i64_param`.
pub fn u64_param(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    let v = i64_param(obj)?;
    u64::try_from(v).map_err(|_| PyValueError::new_err(format!("expected 0 or more, got {v}")))
}
