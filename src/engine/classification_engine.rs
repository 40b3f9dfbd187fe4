//! Fault classification: category, subcategory, priority, root cause and actions.

use crate::value_enum;

value_enum! {
    pub enum FaultCategory {
        OPERATIONAL = "operational",
        STRUCTURAL = "structural",
        AGENT_FAULT = "agent_fault",
        GOVERNANCE_DRIFT = "governance_drift",
        STABILITY_THREAT = "stability_threat",
        UNKNOWN = "unknown",
    }
}

value_enum! {
    pub enum RepairPriority {
        IMMEDIATE = "immediate",
        URGENT = "urgent",
        HIGH = "high",
        MEDIUM = "medium",
        LOW = "low",
        DEFERRED = "deferred",
    }
}
