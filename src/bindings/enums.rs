//! Bridge between the engine's enums and the Python `enum.Enum` classes in `enums.py`.
//!
//! Members are loaded once per process and cached; the engine variant's index is the member's
//! position, which is checked against the values when the cache is built.

use crate::engine::enums::ValueEnum;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyList, PyString};
use std::collections::HashMap;

static MEMBERS: PyOnceLock<HashMap<&'static str, Vec<Py<PyAny>>>> = PyOnceLock::new();

const ENUMS_MODULE: &str = "senti_os.core.faza30.enums";

fn load_class<E: ValueEnum>(py: Python<'_>) -> PyResult<Vec<Py<PyAny>>> {
    let module = py.import(ENUMS_MODULE)?;
    let class = module.getattr(E::CLASS)?;
    let list = py
        .get_type::<PyList>()
        .call1((class,))?
        .cast_into::<PyList>()?;
    if list.len() != E::ALL.len() {
        return Err(PyTypeError::new_err(format!(
            "{} in {ENUMS_MODULE} has {} members, the engine expects {}",
            E::CLASS,
            list.len(),
            E::ALL.len()
        )));
    }
    let mut out = Vec::with_capacity(E::ALL.len());
    for (member, variant) in list.iter().zip(E::ALL) {
        let value: String = member.getattr("value")?.extract()?;
        if value != variant.value() {
            return Err(PyTypeError::new_err(format!(
                "{}.{} has value {value:?}, the engine expects {:?}",
                E::CLASS,
                variant.name(),
                variant.value()
            )));
        }
        out.push(member.unbind());
    }
    Ok(out)
}

fn members<E: ValueEnum>(py: Python<'_>) -> PyResult<&'static [Py<PyAny>]> {
    let all = MEMBERS.get_or_try_init(py, || -> PyResult<_> {
        let mut map = HashMap::new();
        macro_rules! load {
            ($($ty:ty),*) => { $( map.insert(<$ty>::CLASS, load_class::<$ty>(py)?); )* };
        }
        use crate::engine::autorepair_engine::{AutorepairMode, ThrottleState};
        use crate::engine::classification_engine::{FaultCategory, RepairPriority};
        use crate::engine::detection_engine::{FaultSeverity, FaultSource};
        use crate::engine::event_hooks::EventType;
        use crate::engine::healing_pipeline::{HealingOutcome, HealingStage};
        use crate::engine::health_engine::{HealthLevel, TrendDirection};
        use crate::engine::repair_strategies::RepairStatus;
        use crate::engine::snapshot_manager::SnapshotType;
        load!(
            FaultSeverity,
            FaultSource,
            FaultCategory,
            RepairPriority,
            RepairStatus,
            SnapshotType,
            HealthLevel,
            TrendDirection,
            EventType,
            AutorepairMode,
            ThrottleState,
            HealingStage,
            HealingOutcome
        );
        Ok(map)
    })?;
    all.get(E::CLASS).map(|v| v.as_slice()).ok_or_else(|| {
        PyTypeError::new_err(format!(
            "enum {} is not registered with the engine",
            E::CLASS
        ))
    })
}

/// The Python member for an engine variant.
pub fn to_py<E: ValueEnum>(py: Python<'_>, variant: E) -> PyResult<Py<PyAny>> {
    Ok(members::<E>(py)?[variant.index()].clone_ref(py))
}

/// A member of the Python enum, or its string value, as an engine variant. `what` names the
/// argument in the error message.
pub fn from_py<E: ValueEnum>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<E> {
    let py = obj.py();
    let cached = members::<E>(py)?;
    if let Some(i) = cached.iter().position(|m| m.as_ptr() == obj.as_ptr()) {
        return Ok(E::ALL[i]);
    }
    let text = if let Ok(s) = obj.cast::<PyString>() {
        s.to_cow()?.into_owned()
    } else {
        let class_name = obj
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        if class_name == E::CLASS {
            // A member of a same-named enum loaded another way (e.g. a reloaded module).
            obj.getattr("value")?.extract::<String>()?
        } else {
            return Err(PyTypeError::new_err(format!(
                "{what} must be a {} or one of its values ({}), got {class_name}",
                E::CLASS,
                E::values_list()
            )));
        }
    };
    E::from_value(&text).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{text:?} is not a valid {} for {what}; expected one of: {}",
            E::CLASS,
            E::values_list()
        ))
    })
}
