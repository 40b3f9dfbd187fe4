//! One error type for the whole engine. The binding layer maps each variant to one Python
//! exception class, so callers see `TypeError`, `ValueError` or a documented faza30 error.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    /// A value has the wrong type (maps to `TypeError`).
    #[error("{0}")]
    WrongType(String),
    /// A value has the right type but is out of range or malformed (maps to `ValueError`).
    #[error("{0}")]
    InvalidValue(String),
    /// A snapshot could not be written, read or verified (maps to `SnapshotError`).
    #[error("{0}")]
    Snapshot(String),
    /// An operating-system error while touching snapshot storage.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    pub fn wrong_type(msg: impl Into<String>) -> Self {
        EngineError::WrongType(msg.into())
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        EngineError::InvalidValue(msg.into())
    }
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type EngineResult<T> = Result<T, EngineError>;
