//! Durable snapshots of layer state.

use crate::value_enum;

value_enum! {
    pub enum SnapshotType {
        PRE_REPAIR = "pre_repair",
        SCHEDULED = "scheduled",
        MANUAL = "manual",
        EMERGENCY = "emergency",
        CHECKPOINT = "checkpoint",
    }
}
