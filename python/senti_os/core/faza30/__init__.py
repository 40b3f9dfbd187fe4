"""FAZA 30 - the self-healing engine of Senti OS, with a Rust core.

Importing the package imports every submodule. The public names, import paths, signatures,
enum values and dict keys are those of the reference implementation; the engine behind them
actually heals. See docs/ for the user guide.
"""

from . import _runtime, enums, errors  # noqa: F401  (_runtime registers the exit hook)
from . import (
    audit_journal,
    autorepair_engine,
    classification_engine,
    controller,
    detection_engine,
    event_hooks,
    healing_pipeline,
    health_engine,
    integration_layer,
    repair_strategies,
    snapshot_manager,
)
from .audit_journal import AuditJournal, create_audit_journal
from .autorepair_engine import (
    AutorepairConfig,
    AutorepairEngine,
    AutorepairMode,
    ThrottleState,
    create_autorepair_engine,
    start_autorepair,
)
from .classification_engine import (
    ClassificationEngine,
    ClassificationResult,
    FaultCategory,
    RepairPriority,
    create_classification_engine,
)
from .controller import HealingController, create_healing_controller, get_healing_controller
from .detection_engine import DetectedFault, DetectionEngine, FaultSeverity, FaultSource, create_detection_engine
from .event_hooks import EventHooks, EventType, FazaEvent, create_event_hooks
from .healing_pipeline import (
    HealingContext,
    HealingOutcome,
    HealingPipeline,
    HealingResult,
    HealingStage,
    create_healing_pipeline,
)
from .health_engine import (
    HealthEngine,
    HealthLevel,
    HealthScore,
    HealthTrend,
    TrendDirection,
    create_health_engine,
)
from .integration_layer import IntegrationLayer, create_integration_layer
from .repair_strategies import (
    AgentRepairEngine,
    GovernanceRepairEngine,
    GraphRepairEngine,
    RepairResult,
    RepairStatus,
    SchedulerRepairEngine,
    create_agent_repair_engine,
    create_governance_repair_engine,
    create_graph_repair_engine,
    create_scheduler_repair_engine,
)
from .snapshot_manager import Snapshot, SnapshotManager, SnapshotType, create_snapshot_manager

__version__ = "1.0.0"
__author__ = "Senti System - FAZA 30 Enterprise Edition"
__description__ = "FAZA 30 - Enterprise Self-Healing Engine"

__all__ = [
    "HealingController", "get_healing_controller", "create_healing_controller",
    "DetectionEngine", "DetectedFault", "FaultSeverity", "FaultSource", "create_detection_engine",
    "ClassificationEngine", "ClassificationResult", "FaultCategory", "RepairPriority",
    "create_classification_engine",
    "GraphRepairEngine", "AgentRepairEngine", "SchedulerRepairEngine", "GovernanceRepairEngine",
    "RepairResult", "RepairStatus", "create_graph_repair_engine", "create_agent_repair_engine",
    "create_scheduler_repair_engine", "create_governance_repair_engine",
    "HealingPipeline", "HealingStage", "HealingOutcome", "HealingResult", "HealingContext",
    "create_healing_pipeline",
    "SnapshotManager", "Snapshot", "SnapshotType", "create_snapshot_manager",
    "HealthEngine", "HealthScore", "HealthTrend", "HealthLevel", "TrendDirection", "create_health_engine",
    "AutorepairEngine", "AutorepairConfig", "AutorepairMode", "ThrottleState", "create_autorepair_engine",
    "start_autorepair",
    "IntegrationLayer", "create_integration_layer",
    "EventHooks", "FazaEvent", "EventType", "create_event_hooks",
]
