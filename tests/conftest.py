import os
import sys

import pytest

# Test modules import the shared doubles as `import doubles`, whatever pytest's import mode.
_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)


@pytest.fixture(autouse=True)
def _snapshots_in_tmp(tmp_path, monkeypatch):
    """No test writes into the real home directory: snapshots default to a temp folder."""
    monkeypatch.setenv("FAZA30_SNAPSHOT_DIR", str(tmp_path / "snapshots"))
    yield


# The real layer modules of the reference repository, by short name (tests/test_real_layers.py
# and the TestRealLayers class in tests/test_integration_layer.py use them).
_REAL_LAYER_MODULES = {
    "task_graph": "senti_os.core.faza27.task_graph",
    "task_node": "senti_os.core.faza27.task_node",
    "task_edge": "senti_os.core.faza27.task_edge",
    "agent_manager": "senti_os.core.faza28.agent_manager",
    "agent_base": "senti_os.core.faza28.agent_base",
    "ael_loop": "senti_os.core.faza28.ael_loop",
    "event_bus": "senti_os.core.faza28.event_bus",
    "scheduler": "senti_os.core.faza28.scheduler",
    "state_context": "senti_os.core.faza28.state_context",
    "governance": "senti_os.core.faza29.governance_engine",
    "orchestrator": "senti_os.core.faza25.orchestrator",
}


@pytest.fixture(scope="module")
def real():
    """The real layer modules, imported from FAZA_REFERENCE_REPO (a senti_system checkout).

    Our faza30 is imported first and the checkout goes at the END of sys.path, so
    senti_os.core.faza30 keeps resolving to the wheel. The layers' logging is silenced."""
    import importlib
    import logging
    import types

    import senti_os.core.faza30  # noqa: F401

    repo = os.environ.get("FAZA_REFERENCE_REPO")
    if not repo or not os.path.isdir(repo):
        pytest.skip("set FAZA_REFERENCE_REPO to a senti_system checkout")
    sys.path.append(repo)
    logging.disable(logging.CRITICAL)
    try:
        yield types.SimpleNamespace(**{k: importlib.import_module(v) for k, v in _REAL_LAYER_MODULES.items()})
    finally:
        logging.disable(logging.NOTSET)
        sys.path.remove(repo)
