"""The controller: ``HealingController`` builds and wires every FAZA 30 component and runs
the auto-repair loop; ``get_healing_controller`` returns the process-wide one."""

from ._native import HealingController, create_healing_controller, get_healing_controller

__all__ = ["HealingController", "get_healing_controller", "create_healing_controller"]
