//! The pyo3 binding layer: `senti_os.core.faza30._native`.
//!
//! One file per Python submodule. Bindings extract Python arguments into owned Rust values,
//! run the engine without calling back into Python while any engine lock is held, and convert
//! results back. Engine errors become Python exceptions in `errors.rs` only.

pub mod convert;
pub mod enums;
pub mod errors;
#[macro_use]
pub mod record;

pub mod classification_engine;
pub mod event_hooks;
pub mod health_engine;
pub mod input;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    use super::*;

    #[pymodule_export]
    use super::classification_engine::{create_classification_engine, ClassificationEngine, ClassificationResult};
    #[pymodule_export]
    use super::event_hooks::{create_event_hooks, EventHooks, FazaEvent};
    #[pymodule_export]
    use super::health_engine::{create_health_engine, HealthComponent, HealthEngine, HealthScore, HealthTrend};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("SnapshotError", m.py().get_type::<errors::SnapshotError>())?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
