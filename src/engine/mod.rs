//! The engine: every module here is free of pyo3 and unit-tested with `cargo test`.
//! Each file matches a Python submodule of `senti_os.core.faza30`.

pub mod clock;
pub mod enums;
pub mod error;
pub mod pyfmt;
pub mod pynum;
pub mod value;

#[cfg(test)]
pub mod test_rng;

pub mod audit_journal;
pub mod autorepair_engine;
pub mod classification_engine;
pub mod detection_engine;
pub mod event_hooks;
pub mod healing_pipeline;
pub mod health_engine;
pub mod integration_layer;
pub mod repair_strategies;
pub mod snapshot_manager;

pub use error::{EngineError, EngineResult};
