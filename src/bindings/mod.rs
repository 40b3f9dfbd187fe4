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

pub mod audit_journal;
pub mod autorepair_engine;
pub mod classification_engine;
pub mod controller;
pub mod detection_engine;
pub mod event_hooks;
pub mod healing_pipeline;
pub mod health_engine;
pub mod host_proxy;
pub mod input;
pub mod integration_layer;
pub mod repair_strategies;
pub mod runtime;
pub mod snapshot_manager;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    use super::*;

    #[pymodule_export]
    use super::audit_journal::{create_audit_journal, AuditJournal};
    #[pymodule_export]
    use super::autorepair_engine::{create_autorepair_engine, AutorepairConfig, AutorepairEngine};
    #[pymodule_export]
    use super::classification_engine::{
        create_classification_engine, ClassificationEngine, ClassificationResult,
    };
    #[pymodule_export]
    use super::controller::{create_healing_controller, get_healing_controller, HealingController};
    #[pymodule_export]
    use super::detection_engine::{
        create_detection_engine, AnomalyDetector, DetectedFault, DetectionEngine, DetectionRule,
        SeriesAnomalies,
    };
    #[pymodule_export]
    use super::event_hooks::{create_event_hooks, EventHooks, FazaEvent};
    #[pymodule_export]
    use super::healing_pipeline::{
        create_healing_pipeline, HealingContext, HealingPipeline, HealingResult,
    };
    #[pymodule_export]
    use super::health_engine::{
        create_health_engine, HealthComponent, HealthEngine, HealthScore, HealthTrend,
    };
    #[pymodule_export]
    use super::integration_layer::{create_integration_layer, BoundCall, IntegrationLayer};
    #[pymodule_export]
    use super::repair_strategies::{
        create_agent_repair_engine, create_governance_repair_engine, create_graph_repair_engine,
        create_scheduler_repair_engine, AgentRepairEngine, GovernanceRepairEngine,
        GraphRepairEngine, RepairResult, RepairStrategy, SchedulerRepairEngine,
    };
    #[pymodule_export]
    use super::runtime::_shutdown_runtime;
    #[pymodule_export]
    use super::snapshot_manager::{create_snapshot_manager, Snapshot, SnapshotManager};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("SnapshotError", m.py().get_type::<errors::SnapshotError>())?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        Ok(())
    }
}
