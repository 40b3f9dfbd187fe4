//! Repair engines for the graph, agents, the scheduler and governance.

use crate::value_enum;

value_enum! {
    pub enum RepairStatus {
        SUCCESS = "success",
        PARTIAL = "partial",
        FAILED = "failed",
        SKIPPED = "skipped",
        IN_PROGRESS = "in_progress",
    }
}
