"""Connect any Python system to FAZA 30 through an IntegrationLayer: metric providers, repair
actions and state providers, each a plain function or a coroutine function.

The "system" here is a job queue. Nothing in it knows about FAZA 30.

Run: python docs/examples/04_register_providers_for_any_system.py
"""

import asyncio
import tempfile

from senti_os.core.faza30 import (
    RepairStatus,
    SnapshotManager,
    create_detection_engine,
    create_integration_layer,
    create_scheduler_repair_engine,
)


class JobQueue:
    def __init__(self):
        self.jobs = list(range(150))
        self.paused = False

    # --- read
    def queue_metrics(self):
        return {"queue_size": len(self.jobs)}

    async def billing_metrics(self):
        await asyncio.sleep(0.01)  # e.g. an HTTP call
        return {"invoices_pending": 4}

    def broken_probe(self):
        raise ConnectionError("metrics endpoint down")

    async def slow_probe(self):
        await asyncio.sleep(5)
        return {}

    # --- act (called with keyword parameters)
    def shed_load(self, resource, current, limit):
        del self.jobs[int(limit):]  # keep the first `limit` jobs
        return True

    async def pause(self):
        await asyncio.sleep(0)
        self.paused = True
        return True

    # --- state for snapshots
    def capture(self):
        return {"jobs": list(self.jobs), "paused": self.paused}

    def restore(self, state):
        self.jobs = list(state["jobs"])
        self.paused = state["paused"]


queue = JobQueue()
layer = create_integration_layer()

# Metric providers: merged into the layer's metrics on every collection.
layer.register_metric_provider("faza25", queue.queue_metrics)  # a FAZA layer name
layer.register_metric_provider("billing", queue.billing_metrics, timeout=2.0)  # a custom layer
layer.register_metric_provider("faza29", queue.broken_probe, name="governance-probe")

# Synchronous collection, no event loop running here: the coroutine provider is run to
# completion; the failing provider is recorded and the other layers still come back.
metrics = layer.get_all_metrics()
print("collected:", metrics)
assert metrics["faza25"] == {"queue_size": 150}
assert metrics["billing"] == {"invoices_pending": 4}
assert metrics["faza29"] == {}
fault = layer.get_integration_faults()[-1]
print("recorded:", fault["source"], fault["kind"], fault["message"])
assert (fault["source"], fault["kind"]) == ("provider faza29:governance-probe", "raised")
layer.unregister_metric_provider("faza29", "governance-probe")

# Repair actions: handed to the repair engines under context["actions"][verb], and run by
# trigger_faza*_action(verb, params).
layer.register_repair_action("shed_load", queue.shed_load)
layer.register_repair_action("pause_queue", queue.pause, timeout=5.0)
assert layer.trigger_faza25_action("pause_queue") is True
assert queue.paused

# State providers: captured into snapshots and restored on rollback.
layer.register_state_provider("job_queue", queue.capture, queue.restore)

with tempfile.TemporaryDirectory(prefix="faza30-example-") as snapshot_dir:
    snapshots = SnapshotManager(snapshot_dir)
    for name, (capture, restore) in layer.get_state_providers().items():
        snapshots.register_state_provider(name, capture, restore)
    snapshot_id = snapshots.create_snapshot("pre_repair")

    # Detect on the collected metrics and repair through the layer's context: the scheduler
    # engine calls shed_load, then verify(fault) collects FAZA 25 again.
    faults = create_detection_engine().detect_faults(faza25_metrics=layer.get_faza25_metrics())
    assert [f.fault_type for f in faults] == ["queue_overload"]
    result = create_scheduler_repair_engine().repair(faults[0], layer.get_repair_context())
    print(f"repair: {result.status.value}; queue now {len(queue.jobs)}")
    assert result.status is RepairStatus.SUCCESS and len(queue.jobs) == 100

    # Put the queue back as it was before the repair.
    assert snapshots.restore_snapshot(snapshot_id)
    assert len(queue.jobs) == 150
    assert snapshots.get_last_restore()["restored"] == ["job_queue"]


async def collect_on_the_loop():
    # Inside a running loop, collect with collect_async(): coroutine providers are awaited on
    # this loop and each call is bounded by its timeout.
    layer.register_metric_provider("slow", queue.slow_probe, timeout=0.1)
    collected = await layer.collect_async()
    assert collected["billing"] == {"invoices_pending": 4}
    assert collected["slow"] == {}
    return layer.get_integration_faults()[-1]


timed_out = asyncio.run(collect_on_the_loop())
print("recorded:", timed_out["source"], timed_out["kind"], timed_out["message"])
assert timed_out["kind"] == "timed_out"

stats = layer.get_statistics()
assert stats["repair_actions"]["shed_load"]["calls"] == 1
assert stats["state_providers"]["job_queue"]["calls"] == 2  # one capture, one restore
assert stats["faults_by_source"]["provider slow:JobQueue.slow_probe"]["errors"] == 1
