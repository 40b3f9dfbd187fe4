"""System health: ``HealthEngine`` scores health 0-100 from the layers' metrics and analyses
its trend."""

from ._native import HealthComponent, HealthEngine, HealthScore, HealthTrend, create_health_engine
from .enums import HealthLevel, TrendDirection

__all__ = [
    "HealthEngine",
    "HealthScore",
    "HealthTrend",
    "HealthComponent",
    "HealthLevel",
    "TrendDirection",
    "create_health_engine",
]
