//! FAZA 30 self-healing engine.
//!
//! `engine` is plain Rust with no Python dependency: detection, classification, health,
//! repair planning, snapshots and events. `bindings` (feature `python`) is the thin pyo3
//! layer that converts Python values at the edge and exposes `senti_os.core.faza30._native`.

pub mod engine;

#[cfg(feature = "python")]
mod bindings;

/// The engine allocates many small, short-lived values per cycle (fault records, metric
/// maps, reports); mimalloc serves those faster than the system allocator. Python's own
/// objects keep Python's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
