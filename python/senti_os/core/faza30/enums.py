"""The enums of FAZA 30, as real ``enum.Enum`` classes with the reference's values.

The Rust core accepts a member or its string value wherever one of these is expected, and
returns members of these classes. Member order matters: the core maps its variants to
members by position and checks the values when it first loads this module.
"""

from enum import Enum

__all__ = [
    "FaultSeverity", "FaultSource", "FaultCategory", "RepairPriority", "RepairStatus",
    "HealingStage", "HealingOutcome", "SnapshotType", "HealthLevel", "TrendDirection",
    "AutorepairMode", "ThrottleState", "EventType",
]


class FaultSeverity(Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class FaultSource(Enum):
    FAZA25_ORCHESTRATOR = "faza25_orchestrator"
    FAZA27_TASKGRAPH = "faza27_taskgraph"
    FAZA27_5_OPTIMIZER = "faza27_5_optimizer"
    FAZA28_AGENT_LOOP = "faza28_agent_loop"
    FAZA28_5_META_LAYER = "faza28_5_meta_layer"
    FAZA29_GOVERNANCE = "faza29_governance"
    SYSTEM = "system"


class FaultCategory(Enum):
    OPERATIONAL = "operational"
    STRUCTURAL = "structural"
    AGENT_FAULT = "agent_fault"
    GOVERNANCE_DRIFT = "governance_drift"
    STABILITY_THREAT = "stability_threat"
    UNKNOWN = "unknown"


class RepairPriority(Enum):
    IMMEDIATE = "immediate"
    URGENT = "urgent"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    DEFERRED = "deferred"


class RepairStatus(Enum):
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILED = "failed"
    SKIPPED = "skipped"
    IN_PROGRESS = "in_progress"


class HealingStage(Enum):
    STAGE_1_DETECT = "detect"
    STAGE_2_CLASSIFY = "classify"
    STAGE_3_SNAPSHOT = "snapshot"
    STAGE_4_SELECT_STRATEGY = "select_strategy"
    STAGE_5_PREPARE = "prepare"
    STAGE_6_EXECUTE_REPAIR = "execute_repair"
    STAGE_7_VERIFY = "verify"
    STAGE_8_HEALTH_CHECK = "health_check"
    STAGE_9_ROLLBACK = "rollback"
    STAGE_10_STABILIZE = "stabilize"
    STAGE_11_LEARN = "learn"
    STAGE_12_REPORT = "report"


class HealingOutcome(Enum):
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILED = "failed"
    ROLLBACK = "rollback"
    SKIPPED = "skipped"


class SnapshotType(Enum):
    PRE_REPAIR = "pre_repair"
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    EMERGENCY = "emergency"
    CHECKPOINT = "checkpoint"


class HealthLevel(Enum):
    EXCELLENT = "excellent"
    GOOD = "good"
    FAIR = "fair"
    POOR = "poor"
    CRITICAL = "critical"


class TrendDirection(Enum):
    IMPROVING = "improving"
    STABLE = "stable"
    DECLINING = "declining"
    VOLATILE = "volatile"


class AutorepairMode(Enum):
    AGGRESSIVE = "aggressive"
    BALANCED = "balanced"
    CONSERVATIVE = "conservative"
    DISABLED = "disabled"


class ThrottleState(Enum):
    NORMAL = "normal"
    THROTTLED = "throttled"
    BLOCKED = "blocked"


class EventType(Enum):
    FAULT_DETECTED = "fault_detected"
    FAULT_RESOLVED = "fault_resolved"
    CRITICAL_FAULT = "critical_fault"
    PREDICTION_MADE = "prediction_made"
    FAULT_CLASSIFIED = "fault_classified"
    CLASSIFICATION_FAILED = "classification_failed"
    REPAIR_STARTED = "repair_started"
    REPAIR_COMPLETED = "repair_completed"
    REPAIR_FAILED = "repair_failed"
    REPAIR_VERIFIED = "repair_verified"
    HEALING_CYCLE_STARTED = "healing_cycle_started"
    HEALING_CYCLE_COMPLETED = "healing_cycle_completed"
    HEALING_CYCLE_FAILED = "healing_cycle_failed"
    ROLLBACK_PERFORMED = "rollback_performed"
    HEALTH_COMPUTED = "health_computed"
    HEALTH_DEGRADED = "health_degraded"
    HEALTH_IMPROVED = "health_improved"
    HEALTH_CRITICAL = "health_critical"
    SNAPSHOT_CREATED = "snapshot_created"
    SNAPSHOT_RESTORED = "snapshot_restored"
    SNAPSHOT_DELETED = "snapshot_deleted"
    AUTOREPAIR_STARTED = "autorepair_started"
    AUTOREPAIR_STOPPED = "autorepair_stopped"
    AUTOREPAIR_MODE_CHANGED = "autorepair_mode_changed"
    AUTOREPAIR_THROTTLED = "autorepair_throttled"
    AUTOREPAIR_BLOCKED = "autorepair_blocked"
    FORCED_HEALING_CYCLE = "forced_healing_cycle"
    CONTROLLER_INITIALIZED = "controller_initialized"
    CONTROLLER_STARTED = "controller_started"
    CONTROLLER_STOPPED = "controller_stopped"
    AUTOREPAIR_CONFIG_UPDATED = "autorepair_config_updated"
    AUTOREPAIR_ERROR = "autorepair_error"
