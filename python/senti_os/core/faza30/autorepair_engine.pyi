"""The auto-repair loop: healing cycles run on the extension's tokio runtime, throttled per
repair, with every Python callback run on the host's asyncio event loop."""

from datetime import datetime
from typing import Any, ClassVar, Dict, Optional, TypedDict, Union, final, type_check_only

from typing_extensions import Self, Unpack

from .enums import AutorepairMode as AutorepairMode
from .enums import ThrottleState as ThrottleState
from .audit_journal import AuditJournal
from .event_hooks import EventHooks

__all__ = [
    "AutorepairEngine",
    "AutorepairConfig",
    "AutorepairMode",
    "ThrottleState",
    "create_autorepair_engine",
    "start_autorepair",
]

# An AutorepairMode member or its value.
_ModeArg = Union[AutorepairMode, str]

@type_check_only
class _ConfigFields(TypedDict, total=False):
    mode: _ModeArg
    interval_seconds: float
    max_repairs_per_minute: int
    max_repairs_per_hour: int
    cooldown_seconds: float
    min_health_for_repair: float
    enable_snapshots: bool
    enable_rollback: bool
    dry_run: bool
    callback_timeout_seconds: float

@final
class AutorepairConfig:
    """The loop's settings (dataclass-like: keyword constructor, ``==``, repr).

    Every value is validated when set, so the loop never reads a bad one: intervals and
    timeouts are finite seconds (``interval_seconds`` and ``callback_timeout_seconds`` at least
    0.001, ``cooldown_seconds`` at least 0), the repair limits are ints from 1 to 1000000,
    ``min_health_for_repair`` is 0 to 100, flags are bools. Wrong types raise TypeError and
    out-of-range values ValueError. Left-out (or None) fields take their defaults: BALANCED,
    5.0, 10, 50, 3.0, 20.0, True, True, False, 5.0.
    """

    __match_args__ = (
        "mode",
        "interval_seconds",
        "max_repairs_per_minute",
        "max_repairs_per_hour",
        "cooldown_seconds",
        "min_health_for_repair",
        "enable_snapshots",
        "enable_rollback",
        "dry_run",
        "callback_timeout_seconds",
    )
    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __new__(
        cls,
        mode: Optional[_ModeArg] = None,
        interval_seconds: Optional[float] = None,
        max_repairs_per_minute: Optional[int] = None,
        max_repairs_per_hour: Optional[int] = None,
        cooldown_seconds: Optional[float] = None,
        min_health_for_repair: Optional[float] = None,
        enable_snapshots: Optional[bool] = None,
        enable_rollback: Optional[bool] = None,
        dry_run: Optional[bool] = None,
        callback_timeout_seconds: Optional[float] = None,
    ) -> Self: ...
    @property
    def mode(self) -> AutorepairMode: ...
    @mode.setter
    def mode(self, value: _ModeArg) -> None: ...
    interval_seconds: float
    max_repairs_per_minute: int
    max_repairs_per_hour: int
    cooldown_seconds: float
    min_health_for_repair: float
    enable_snapshots: bool
    enable_rollback: bool
    dry_run: bool
    # How long the loop waits for one Python callback (a metric provider, a healing cycle,
    # an event subscriber) before cancelling it.
    callback_timeout_seconds: float

@final
class AutorepairEngine:
    """Runs healing cycles continuously on the extension's tokio runtime, throttled per repair.

    ``healing_pipeline`` needs ``execute_healing_cycle(**layer_metrics)``; the optional
    ``integration_layer`` supplies the metrics through ``get_all_metrics()``. Either may be
    sync or async. The loop throttles by the configured per-minute and per-hour repair limits
    and escalates a target repaired too often (an ``autorepair_blocked`` event).
    """

    def __new__(
        cls,
        healing_pipeline: Any,
        integration_layer: Any = None,
        event_hooks: Optional[EventHooks] = None,
        config: Optional[AutorepairConfig] = None,
        *,
        audit_journal: Optional[AuditJournal] = None,
    ) -> Self:
        """With an ``audit_journal`` every cycle, repair, rollback and escalation is recorded,
        and the throttle starts from the last hour's journalled repairs."""
    @property
    def healing_pipeline(self) -> Any: ...
    @property
    def integration_layer(self) -> Any: ...
    @property
    def event_hooks(self) -> Optional[EventHooks]: ...
    # The live configuration: changes to it apply from the next iteration.
    config: AutorepairConfig
    @property
    def _last_repair_time(self) -> Optional[datetime]: ...
    @property
    def _running(self) -> bool: ...
    async def start(self) -> None:
        """Starts the loop; callbacks then run on the event loop that awaited this. Starting a
        running engine does nothing. Raises RuntimeError outside a running event loop."""
    async def stop(self) -> None:
        """Stops the loop and waits for the iteration in progress."""
    def force_healing_cycle(self) -> Any:
        """Runs one healing cycle now in this thread, bypassing the cooldown but not the
        throttle, and returns the pipeline's result. Raises RuntimeError when the throttle
        refuses or the cycle fails."""
    async def force_healing_cycle_async(self) -> Any:
        """``force_healing_cycle`` for asyncio callers: callbacks run on the running loop and
        coroutine callbacks are awaited."""
    def set_mode(self, mode: _ModeArg) -> None: ...
    def set_interval(self, interval_seconds: float) -> None:
        """Values below 0.001 s raise ValueError rather than being clamped."""
    def get_throttle_state(self) -> ThrottleState: ...
    def get_statistics(self) -> Dict[str, Any]:
        """``total_cycles``, ``healing_cycles_triggered``, ``repairs_attempted``,
        ``repairs_successful``, ``throttled_count``, ``blocked_count``, ``avg_cycle_duration``,
        ``uptime_seconds``, ``running``, ``mode`` and ``throttle_state`` (values),
        ``repairs_last_minute``, ``repairs_last_hour``, ``success_rate``, ``last_repair_time``
        (ISO text or None), ``dry_run``, ``escalations``, ``callback_errors`` and
        ``tracked_targets``."""
    def get_config(self) -> AutorepairConfig: ...
    def update_config(self, **kwargs: Unpack[_ConfigFields]) -> None:
        """Sets configuration fields by name, all validated first: an unknown name or a bad
        value raises and changes nothing."""
    def is_running(self) -> bool: ...
    def get_uptime(self) -> float:
        """Seconds since ``start()``, frozen once stopped."""

def create_autorepair_engine(
    healing_pipeline: Any,
    integration_layer: Any = None,
    event_hooks: Optional[EventHooks] = None,
    config: Optional[AutorepairConfig] = None,
    *,
    audit_journal: Optional[AuditJournal] = None,
) -> AutorepairEngine: ...
async def start_autorepair(
    healing_pipeline: Any,
    integration_layer: Any = None,
    mode: _ModeArg = "balanced",
    interval: float = 5.0,
) -> AutorepairEngine:
    """Builds an engine without event hooks, starts it on the running loop and returns it. An
    unknown mode raises ValueError."""
