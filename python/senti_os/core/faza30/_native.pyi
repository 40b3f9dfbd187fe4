"""The pyo3 extension module. Its names are documented in the submodule that re-exports them;
this stub re-exports them from there."""

from .audit_journal import AuditJournal as AuditJournal
from .audit_journal import create_audit_journal as create_audit_journal
from .autorepair_engine import AutorepairConfig as AutorepairConfig
from .autorepair_engine import AutorepairEngine as AutorepairEngine
from .autorepair_engine import create_autorepair_engine as create_autorepair_engine
from .classification_engine import ClassificationEngine as ClassificationEngine
from .classification_engine import ClassificationResult as ClassificationResult
from .classification_engine import create_classification_engine as create_classification_engine
from .controller import HealingController as HealingController
from .controller import create_healing_controller as create_healing_controller
from .controller import get_healing_controller as get_healing_controller
from .detection_engine import AnomalyDetector as AnomalyDetector
from .detection_engine import DetectedFault as DetectedFault
from .detection_engine import DetectionEngine as DetectionEngine
from .detection_engine import DetectionRule as DetectionRule
from .detection_engine import SeriesAnomalies as SeriesAnomalies
from .detection_engine import create_detection_engine as create_detection_engine
from .errors import SnapshotError as SnapshotError
from .event_hooks import EventHooks as EventHooks
from .event_hooks import FazaEvent as FazaEvent
from .event_hooks import create_event_hooks as create_event_hooks
from .healing_pipeline import HealingContext as HealingContext
from .healing_pipeline import HealingPipeline as HealingPipeline
from .healing_pipeline import HealingResult as HealingResult
from .healing_pipeline import create_healing_pipeline as create_healing_pipeline
from .health_engine import HealthComponent as HealthComponent
from .health_engine import HealthEngine as HealthEngine
from .health_engine import HealthScore as HealthScore
from .health_engine import HealthTrend as HealthTrend
from .health_engine import create_health_engine as create_health_engine
from .integration_layer import BoundCall as BoundCall
from .integration_layer import IntegrationLayer as IntegrationLayer
from .integration_layer import create_integration_layer as create_integration_layer
from .repair_strategies import AgentRepairEngine as AgentRepairEngine
from .repair_strategies import GovernanceRepairEngine as GovernanceRepairEngine
from .repair_strategies import GraphRepairEngine as GraphRepairEngine
from .repair_strategies import RepairResult as RepairResult
from .repair_strategies import RepairStrategy as RepairStrategy
from .repair_strategies import SchedulerRepairEngine as SchedulerRepairEngine
from .repair_strategies import create_agent_repair_engine as create_agent_repair_engine
from .repair_strategies import create_governance_repair_engine as create_governance_repair_engine
from .repair_strategies import create_graph_repair_engine as create_graph_repair_engine
from .repair_strategies import create_scheduler_repair_engine as create_scheduler_repair_engine
from .snapshot_manager import Snapshot as Snapshot
from .snapshot_manager import SnapshotManager as SnapshotManager
from .snapshot_manager import create_snapshot_manager as create_snapshot_manager

# The names pyo3 lists in the module's __all__, including the two private ones.
__all__ = [
    "AuditJournal",
    "create_audit_journal",
    "AutorepairConfig",
    "AutorepairEngine",
    "create_autorepair_engine",
    "ClassificationEngine",
    "ClassificationResult",
    "create_classification_engine",
    "HealingController",
    "create_healing_controller",
    "get_healing_controller",
    "AnomalyDetector",
    "DetectedFault",
    "DetectionEngine",
    "DetectionRule",
    "SeriesAnomalies",
    "create_detection_engine",
    "SnapshotError",
    "EventHooks",
    "FazaEvent",
    "create_event_hooks",
    "HealingContext",
    "HealingPipeline",
    "HealingResult",
    "create_healing_pipeline",
    "BoundCall",
    "IntegrationLayer",
    "create_integration_layer",
    "HealthComponent",
    "HealthEngine",
    "HealthScore",
    "HealthTrend",
    "create_health_engine",
    "AgentRepairEngine",
    "GovernanceRepairEngine",
    "GraphRepairEngine",
    "RepairResult",
    "RepairStrategy",
    "SchedulerRepairEngine",
    "create_agent_repair_engine",
    "create_governance_repair_engine",
    "create_graph_repair_engine",
    "create_scheduler_repair_engine",
    "Snapshot",
    "SnapshotManager",
    "create_snapshot_manager",
    "_shutdown_runtime",
    "__version__",
]

# The crate version (the wheel's version).
__version__: str

def _shutdown_runtime() -> None:
    """Registered with atexit: keeps the runtime's threads out of Python while the interpreter
    exits (waits at most two seconds for those inside)."""
