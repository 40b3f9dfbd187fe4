"""Fault detection: ``DetectionEngine`` turns FAZA layer metrics into deduplicated faults."""

from ._native import (
    AnomalyDetector,
    DetectedFault,
    DetectionEngine,
    DetectionRule,
    SeriesAnomalies,
    create_detection_engine,
)
from .enums import FaultSeverity, FaultSource

__all__ = [
    "DetectionEngine",
    "DetectedFault",
    "AnomalyDetector",
    "DetectionRule",
    "SeriesAnomalies",
    "FaultSeverity",
    "FaultSource",
    "create_detection_engine",
]
