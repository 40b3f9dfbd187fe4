"""The auto-repair loop: ``AutorepairEngine`` runs healing cycles on the extension's tokio
runtime, throttled per repair, with Python callbacks on the host's event loop."""

from ._native import AutorepairConfig, AutorepairEngine, create_autorepair_engine
from .enums import AutorepairMode, ThrottleState

__all__ = [
    "AutorepairEngine",
    "AutorepairConfig",
    "AutorepairMode",
    "ThrottleState",
    "create_autorepair_engine",
    "start_autorepair",
]


async def start_autorepair(healing_pipeline, integration_layer=None, mode="balanced", interval=5.0):
    """Builds an engine (without event hooks, as the reference does), starts it on the
    running loop and returns it. An unknown mode raises ValueError."""
    config = AutorepairConfig(mode=AutorepairMode(mode), interval_seconds=interval)
    engine = AutorepairEngine(healing_pipeline, integration_layer, None, config)
    await engine.start()
    return engine
