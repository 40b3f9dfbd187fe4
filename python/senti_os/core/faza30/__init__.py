"""FAZA 30 - the self-healing engine of Senti OS, with a Rust core.

Importing the package imports every submodule. The public names are those of the
reference implementation; see docs/ for the user guide.
"""

from . import _runtime, enums, errors, event_hooks
from .event_hooks import EventHooks, EventType, FazaEvent, create_event_hooks

__version__ = "1.0.0"
__author__ = "Senti System - FAZA 30 Enterprise Edition"
__description__ = "FAZA 30 - Enterprise Self-Healing Engine"
