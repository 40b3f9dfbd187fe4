//! A metric reading with Python's number semantics.
//!
//! Classification and health read numbers out of metric dicts and compare, scale and print
//! them as Python would: `True` counts as 1, integers stay exact (so `str()` prints `5`, not
//! `5.0`, and `n * 10` is an exact integer product), floats are IEEE doubles. NaN and the
//! infinities never get here: the readers refuse them.

use crate::engine::error::{EngineError, EngineResult};
use crate::engine::pyfmt::float_repr;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Num {
    /// The reading of a JSON value: `None` for null (read as a missing key), an error naming
    /// `what` for anything that is not a number.
    pub fn from_value(v: &Value, what: &str) -> EngineResult<Option<Num>> {
        match v {
            Value::Null => Ok(None),
            Value::Bool(b) => Ok(Some(Num::Bool(*b))),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Some(Num::Int(i)))
                } else if n.is_u64() {
                    Err(EngineError::invalid(format!(
                        "{what}: integer does not fit in 64 bits"
                    )))
                } else {
                    Num::float(n.as_f64().unwrap_or(f64::NAN), what).map(Some)
                }
            }
            other => Err(EngineError::wrong_type(format!(
                "{what} must be a number, got {}",
                crate::engine::value::type_name(other)
            ))),
        }
    }

    /// A float reading; NaN and the infinities are refused.
    pub fn float(v: f64, what: &str) -> EngineResult<Num> {
        if v.is_finite() {
            Ok(Num::Float(v))
        } else {
            Err(EngineError::invalid(format!(
                "{what} must be a finite number, got {}",
                float_repr(v)
            )))
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Num::Bool(b) => f64::from(u8::from(b)),
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn as_int(self) -> Option<i128> {
        match self {
            Num::Bool(b) => Some(i128::from(b)),
            Num::Int(i) => Some(i128::from(i)),
            Num::Float(_) => None,
        }
    }

    /// `self > bound`. Converting an i64 to f64 can round only beyond 2**53, far from every
    /// threshold the engines use, so the comparison is exact as in Python.
    pub fn gt(self, bound: f64) -> bool {
        self.as_f64() > bound
    }

    pub fn lt(self, bound: f64) -> bool {
        self.as_f64() < bound
    }

    /// Python truthiness.
    pub fn truthy(self) -> bool {
        match self {
            Num::Bool(b) => b,
            Num::Int(i) => i != 0,
            Num::Float(f) => f != 0.0,
        }
    }

    /// `float(self * k)`: an exact integer product for ints and bools (rounded once, as
    /// Python rounds an int when it meets a float), a float product otherwise.
    pub fn times(self, k: i64) -> f64 {
        match self.as_int() {
            Some(i) => int_to_f64(i * i128::from(k)),
            None => self.as_f64() * k as f64,
        }
    }

    /// `float(min(self * k, cap))`.
    pub fn times_capped(self, k: i64, cap: i64) -> f64 {
        match self.as_int() {
            Some(i) => int_to_f64((i * i128::from(k)).min(i128::from(cap))),
            None => {
                let product = self.as_f64() * k as f64;
                let cap = cap as f64;
                if cap < product {
                    cap
                } else {
                    product
                }
            }
        }
    }

    /// Python's `str()`.
    pub fn py_str(self) -> String {
        match self {
            Num::Bool(true) => "True".into(),
            Num::Bool(false) => "False".into(),
            Num::Int(i) => i.to_string(),
            Num::Float(f) => float_repr(f),
        }
    }
}

/// An exact integer rounded once to a float; the i64 conversion is one instruction, the i128
/// one a library call, so the wide path is kept for products that need it.
fn int_to_f64(v: i128) -> f64 {
    match i64::try_from(v) {
        Ok(small) => small as f64,
        Err(_) => v as f64,
    }
}

/// Python's `min(a, b)`: `a` unless `b` is smaller (so a NaN `a` stays, a NaN `b` is ignored).
pub fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// Python's `max(a, b)`: `a` unless `b` is larger.
pub fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// `max(0.0, min(100.0, v))`, the clamp both engines apply to scores.
pub fn clamp_score(v: f64) -> f64 {
    py_max(0.0, py_min(100.0, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readings_keep_python_types() {
        assert_eq!(Num::from_value(&json!(5), "x").unwrap(), Some(Num::Int(5)));
        assert_eq!(
            Num::from_value(&json!(true), "x").unwrap(),
            Some(Num::Bool(true))
        );
        assert_eq!(
            Num::from_value(&json!(0.5), "x").unwrap(),
            Some(Num::Float(0.5))
        );
        assert_eq!(Num::from_value(&json!(null), "x").unwrap(), None);
        let err = Num::from_value(&json!("high"), "metrics['cpu_usage']").unwrap_err();
        assert!(matches!(err, EngineError::WrongType(_)));
        assert!(err.to_string().contains("metrics['cpu_usage']"), "{err}");
        let big = Num::from_value(&json!(u64::MAX), "n").unwrap_err();
        assert!(matches!(big, EngineError::InvalidValue(_)));
        assert!(Num::float(f64::NAN, "v").is_err());
        assert!(Num::float(f64::NEG_INFINITY, "v").is_err());
    }

    #[test]
    fn str_matches_python() {
        assert_eq!(Num::Int(5).py_str(), "5");
        assert_eq!(Num::Float(5.0).py_str(), "5.0");
        assert_eq!(Num::Bool(true).py_str(), "True");
    }

    #[test]
    fn products_are_exact_for_ints() {
        // 2**62 * 10 overflows i64 but not Python: the product rounds once to a float.
        let big = Num::Int(1 << 62);
        assert_eq!(big.times(10), 46116860184273879040.0);
        assert_eq!(big.times_capped(10, 30), 30.0);
        assert_eq!(
            Num::Int(-(1 << 62)).times_capped(10, 30),
            -46116860184273879040.0
        );
        assert_eq!(Num::Float(2.5).times_capped(10, 30), 25.0);
        assert_eq!(Num::Bool(true).times(40), 40.0);
    }

    #[test]
    fn clamp_follows_python_min_max() {
        assert_eq!(clamp_score(f64::NAN), 100.0);
        assert_eq!(clamp_score(-5.0), 0.0);
        assert_eq!(clamp_score(120.0), 100.0);
        assert!(clamp_score(-0.0).is_sign_positive());
    }
}
