"""One healing cycle over a small task graph with a dependency cycle.

The pipeline detects the cycle, snapshots the graph, lets the graph repair engine remove the
weakest edge, measures again through a metrics provider and reports. Snapshots go to a
temporary folder.

Run: python docs/examples/02_healing_pipeline_with_a_task_graph.py
"""

import tempfile

from senti_os.core.faza30 import (
    EventType,
    HealingOutcome,
    HealingStage,
    RepairStatus,
    create_classification_engine,
    create_detection_engine,
    create_event_hooks,
    create_graph_repair_engine,
    create_healing_pipeline,
    create_health_engine,
    create_scheduler_repair_engine,
    create_snapshot_manager,
)


class TaskGraph:
    """A minimal graph with what the graph repair engine reads: ``edges`` (dicts with
    source_id, target_id, weight, edge_type), ``remove_edge(src, dst)`` and ``has_cycle()``."""

    def __init__(self):
        self.edges = []

    def connect(self, src, dst, weight=1.0, edge_type="strong"):
        self.edges.append({"source_id": src, "target_id": dst, "weight": weight, "edge_type": edge_type})

    def remove_edge(self, src, dst):
        before = len(self.edges)
        self.edges = [e for e in self.edges if (e["source_id"], e["target_id"]) != (src, dst)]
        return len(self.edges) < before

    def cycles(self):
        successors = {}
        for e in self.edges:
            successors.setdefault(e["source_id"], []).append(e["target_id"])
        found, state = [], {}

        def visit(node, path):
            state[node] = "open"
            path.append(node)
            for nxt in successors.get(node, []):
                if state.get(nxt) == "open":
                    found.append(path[path.index(nxt):])
                elif nxt not in state:
                    visit(nxt, path)
            path.pop()
            state[node] = "done"

        for node in list(successors):
            if node not in state:
                visit(node, [])
        return found

    def has_cycle(self):
        return bool(self.cycles())

    def metrics(self):
        """FAZA 27 metrics under their canonical keys."""
        cycles = self.cycles()
        return {"cycle_count": len(cycles), "cycles": cycles, "graph_complexity": len(self.edges)}

    def to_dict(self):
        return {"edges": [dict(e) for e in self.edges]}

    def load(self, state):
        self.edges = [dict(e) for e in state["edges"]]


graph = TaskGraph()
graph.connect("fetch", "parse")
graph.connect("parse", "index")
graph.connect("index", "fetch", weight=0.2, edge_type="weak")  # closes a cycle
assert graph.has_cycle()

hooks = create_event_hooks()
seen = []
for event_type in EventType:
    hooks.subscribe(event_type, lambda event: seen.append(event.event_type))

with tempfile.TemporaryDirectory(prefix="faza30-example-") as snapshot_dir:
    snapshots = create_snapshot_manager(snapshot_dir)
    # The pre-repair snapshot captures the graph, so a rollback could put it back.
    snapshots.register_state_provider("task_graph", graph.to_dict, graph.load)

    pipeline = create_healing_pipeline(
        create_detection_engine(),
        create_classification_engine(),
        {"graph": create_graph_repair_engine(), "scheduler": create_scheduler_repair_engine()},
        snapshots,
        create_health_engine(),
        repair_context={"task_graph": graph},  # what the repair engines may act on
        metrics_provider=lambda: {"faza27": graph.metrics()},  # fresh metrics after repair
        event_hooks=hooks,
    )

    result = pipeline.execute_healing_cycle(faza27_metrics=graph.metrics())
    repair = result.context.repairs[0]
    print(f"outcome={result.outcome.value} detected={result.faults_detected} "
          f"repaired={result.faults_repaired} health {result.context.health_before:.1f} -> "
          f"{result.context.health_after:.1f}")
    print(f"side effect: {repair.side_effects[0]}")
    print("events:", ", ".join(seen))

    assert result.outcome is HealingOutcome.SUCCESS
    assert result.faults_repaired == 1
    assert repair.status is RepairStatus.SUCCESS and repair.verification_passed
    assert len(result.stages_completed) == 12
    assert result.stages_completed[-1] is HealingStage.STAGE_12_REPORT
    # The weakest edge of the cycle (WEAK, weight 0.2) was the one removed.
    assert not graph.has_cycle()
    assert ("index", "fetch") not in {(e["source_id"], e["target_id"]) for e in graph.edges}
    # A snapshot was written before the repair, and verification used the fresh metrics.
    assert result.context.snapshot_id is not None
    assert snapshots.get_snapshot(result.context.snapshot_id).state["task_graph"]["edges"][2]["target_id"] == "fetch"
    assert result.context.stage_results[HealingStage.STAGE_7_VERIFY]["source"] == "fresh_metrics"
    assert {"fault_detected", "repair_started", "repair_verified", "healing_cycle_completed"} <= set(seen)

    # The next cycle finds nothing to do.
    assert pipeline.execute_healing_cycle(faza27_metrics=graph.metrics()).outcome is HealingOutcome.SKIPPED
    stats = pipeline.get_statistics()
    assert (stats["total_cycles"], stats["successful_cycles"], stats["skipped_cycles"]) == (2, 1, 1)
    # What the pipeline learned steers the next strategy selection.
    learned = pipeline.get_learning_table()
    assert learned[0]["fault_type"] == "graph_cycle" and learned[0]["successes"] == 1

    # The pre-repair snapshot file is written behind the cycle by the manager's writer thread;
    # flush() waits for it, so the folder can go away safely.
    snapshots.flush()
    assert snapshots.get_statistics()["pending_writes"] == 0
