//! Health scoring (0-100) and trend analysis.

use crate::value_enum;

value_enum! {
    pub enum HealthLevel {
        EXCELLENT = "excellent",
        GOOD = "good",
        FAIR = "fair",
        POOR = "poor",
        CRITICAL = "critical",
    }
}

value_enum! {
    pub enum TrendDirection {
        IMPROVING = "improving",
        STABLE = "stable",
        DECLINING = "declining",
        VOLATILE = "volatile",
    }
}
