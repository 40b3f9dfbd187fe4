"""Integration with the FAZA layers: canonical metrics from the real layer classes (and the
reference's duck-typed probes), registered metric providers, repair actions and state
providers, trigger actions on the real APIs, and events to the FAZA 28 event bus."""

from ._native import BoundCall, IntegrationLayer, create_integration_layer

__all__ = ["IntegrationLayer", "create_integration_layer", "BoundCall"]
