//! Metric and state values.
//!
//! The engine holds every value that came from Python as a `serde_json::Value` (with key
//! order preserved). The binding layer refuses what JSON cannot hold (NaN, infinities,
//! non-string keys, arbitrary objects) before a value gets here, so the engine never sees
//! them. These helpers give those values Python's reading: bools count as numbers, and
//! truthiness follows `if x:`.

use crate::engine::error::{EngineError, EngineResult};
use crate::engine::pyfmt::float_repr;
use serde_json::{Map, Value};

pub type Metrics = Map<String, Value>;

/// The number a metric holds, as Python compares it: `True` is 1, `False` is 0.
/// `None` for a missing key; an error naming the key for a non-numeric value.
pub fn number(metrics: &Metrics, key: &str) -> EngineResult<Option<f64>> {
    match metrics.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_number(v).map(Some).ok_or_else(|| {
            EngineError::wrong_type(format!(
                "metric '{key}' must be a number, got {}",
                type_name(v)
            ))
        }),
    }
}

/// `metrics.get(key, default)` read as a number.
pub fn number_or(metrics: &Metrics, key: &str, default: f64) -> EngineResult<f64> {
    Ok(number(metrics, key)?.unwrap_or(default))
}

pub fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// Python truthiness of a metric (`False` when missing).
pub fn truthy_key(metrics: &Metrics, key: &str) -> bool {
    metrics.get(key).is_some_and(truthy)
}

pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `str(v)` for a value that came from Python.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr(v)` for a value that came from Python.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => {
            if n.is_f64() {
                float_repr(n.as_f64().unwrap_or(f64::NAN))
            } else {
                n.to_string()
            }
        }
        Value::String(s) => {
            let escaped = s.replace('\\', "\\\\").replace('\'', "\\'");
            format!("'{escaped}'")
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "None",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Metrics {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn numbers_follow_python() {
        let metrics = m(json!({"a": 3, "b": 0.5, "c": true, "d": "x", "e": null}));
        assert_eq!(number(&metrics, "a").unwrap(), Some(3.0));
        assert_eq!(number(&metrics, "b").unwrap(), Some(0.5));
        assert_eq!(number(&metrics, "c").unwrap(), Some(1.0));
        assert_eq!(number(&metrics, "e").unwrap(), None);
        assert_eq!(number(&metrics, "missing").unwrap(), None);
        let err = number(&metrics, "d").unwrap_err().to_string();
        assert!(err.contains("'d'") && err.contains("str"), "{err}");
    }

    #[test]
    fn str_and_truthiness_follow_python() {
        assert_eq!(py_str(&json!(150)), "150");
        assert_eq!(py_str(&json!(0.6)), "0.6");
        assert_eq!(py_str(&json!(2.0)), "2.0");
        assert_eq!(py_str(&json!(true)), "True");
        assert_eq!(py_repr(&json!(["a", 1])), "['a', 1]");
        assert!(!truthy(&json!({})));
        assert!(!truthy(&json!(0.0)));
        assert!(truthy(&json!("x")));
    }
}
