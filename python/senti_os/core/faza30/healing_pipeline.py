"""The healing pipeline: twelve stages from detection to report, with real repairs, rollback
to the pre-repair snapshot when health declines, and learning of which engine repairs what."""

from ._native import HealingContext, HealingPipeline, HealingResult, create_healing_pipeline
from .enums import HealingOutcome, HealingStage

__all__ = [
    "HealingPipeline",
    "HealingStage",
    "HealingOutcome",
    "HealingResult",
    "HealingContext",
    "create_healing_pipeline",
]
