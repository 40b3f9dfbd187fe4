"""Fault classification: ``ClassificationEngine`` sorts detected faults into five categories
with a confidence, a repair priority, a root cause and recommended actions."""

from ._native import ClassificationEngine, ClassificationResult, create_classification_engine
from .enums import FaultCategory, RepairPriority

__all__ = [
    "ClassificationEngine",
    "ClassificationResult",
    "FaultCategory",
    "RepairPriority",
    "create_classification_engine",
]
