//! The auto-repair loop's policy: modes, configuration and throttling.

use crate::value_enum;

pub mod throttle;

value_enum! {
    pub enum AutorepairMode {
        AGGRESSIVE = "aggressive",
        BALANCED = "balanced",
        CONSERVATIVE = "conservative",
        DISABLED = "disabled",
    }
}

value_enum! {
    pub enum ThrottleState {
        NORMAL = "normal",
        THROTTLED = "throttled",
        BLOCKED = "blocked",
    }
}
