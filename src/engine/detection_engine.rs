//! Fault detection: threshold rules over layer metrics, deduplicated active faults,
//! prediction and anomaly detection.

use crate::value_enum;

value_enum! {
    pub enum FaultSeverity {
        CRITICAL = "critical",
        HIGH = "high",
        MEDIUM = "medium",
        LOW = "low",
        INFO = "info",
    }
}

value_enum! {
    pub enum FaultSource {
        FAZA25_ORCHESTRATOR = "faza25_orchestrator",
        FAZA27_TASKGRAPH = "faza27_taskgraph",
        FAZA27_5_OPTIMIZER = "faza27_5_optimizer",
        FAZA28_AGENT_LOOP = "faza28_agent_loop",
        FAZA28_5_META_LAYER = "faza28_5_meta_layer",
        FAZA29_GOVERNANCE = "faza29_governance",
        SYSTEM = "system",
    }
}
