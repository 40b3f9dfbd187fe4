"""``python -m senti_os.core.faza30 demo``: a small simulated Senti system, healed live.

The system (``_demo_layers``) has an orchestrator, a task graph, three agents in an agent
loop, governance and an event bus. After a quiet start the demo injects four faults: a
dependency cycle, a crashing agent, a burst of failing tasks and a risk spike. The
controller's auto-repair loop runs on its own runtime while the simulated system keeps
working on this event loop; the terminal shows each event as it happens, and a report
closes the run. The demo only drives the system and prints: every decision is the engine's.
"""

import asyncio
import tempfile
import time

from . import AutorepairConfig, AutorepairMode, EventType, create_healing_controller
from ._demo_layers import Agent, AgentLoop, EdgeType, EventBus, Governance, Orchestrator, TaskGraph

INJECTED = {
    "graph_cycle": "dependency cycle publish -> fetch",
    "agent_failure": "agent 'crawler' crashing on every tick",
    "high_error_rate": "burst of failing 'ingest' tasks",
    "high_risk_score": "governance risk spike to 88",
}


class _Printer:
    """Prints the engine's events as they arrive."""

    def __init__(self, out, start):
        self.out = out
        self.start = start
        self.faults = {}
        self.verified = []
        self.failed = []
        self.rollbacks = 0

    def _say(self, text):
        self.out(f"  [{time.monotonic() - self.start:5.2f}s] {text}")

    def on_fault(self, event):
        d = event.data
        if d.get("fault_type") in INJECTED and d.get("fault_id") not in self.faults:
            self.faults[d["fault_id"]] = d["fault_type"]
            self._say(f"detected   {d['fault_type']:<18} ({d.get('severity')})")

    def on_repair(self, event):
        d = event.data
        self._say(f"repairing  {self.faults.get(d.get('fault_id'), d.get('fault_id'))} with the {d.get('repair_type')} engine")

    def on_verified(self, event):
        fault_type = self.faults.get(event.data.get("fault_id"), event.data.get("fault_id"))
        self.verified.append(fault_type)
        self._say(f"verified   {fault_type}: the fault is gone")

    def on_failed(self, event):
        fault_type = self.faults.get(event.data.get("fault_id"), event.data.get("fault_id"))
        self.failed.append(fault_type)
        self._say(f"not fixed  {fault_type}: {event.data.get('reason') or event.data.get('error') or 'verification failed'}")

    def on_rollback(self, event):
        self.rollbacks += 1
        self._say(f"rollback   to snapshot {event.data.get('snapshot_id')}")


def _build(snapshot_dir):
    graph = TaskGraph("ingest_pipeline")
    for src, dst in [("fetch", "parse"), ("parse", "index"), ("index", "publish")]:
        graph.connect(src, dst)
    agents = [Agent("crawler", 8), Agent("indexer", 6), Agent("reporter", 3)]
    layers = {
        "orchestrator": Orchestrator(),
        "graph": graph,
        "loop": AgentLoop(agents),
        "governance": Governance(),
        "bus": EventBus(),
    }
    config = AutorepairConfig(mode=AutorepairMode.AGGRESSIVE, interval_seconds=0.2, cooldown_seconds=0.0)
    controller = create_healing_controller(
        layers["orchestrator"], graph, None, layers["loop"], None, layers["governance"], layers["bus"],
        config, snapshot_dir=snapshot_dir)
    # Snapshots capture the task graph, so a rollback can put it back.
    controller.get_snapshot_manager().register_state_provider("task_graph", graph.to_dict, graph.load)
    return controller, layers


async def run_demo(seconds=10.0, out=print):
    """Runs the demo and returns its report as a dict."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="faza30-demo-") as snapshot_dir:
        controller, layers = _build(snapshot_dir)
        orchestrator, graph, loop, governance = (
            layers["orchestrator"], layers["graph"], layers["loop"], layers["governance"])
        printer = _Printer(out, started)
        hooks = controller.get_event_hooks()
        hooks.subscribe(EventType.FAULT_DETECTED, printer.on_fault)
        hooks.subscribe(EventType.REPAIR_STARTED, printer.on_repair)
        hooks.subscribe(EventType.REPAIR_VERIFIED, printer.on_verified)
        hooks.subscribe(EventType.REPAIR_FAILED, printer.on_failed)
        hooks.subscribe(EventType.ROLLBACK_PERFORMED, printer.on_rollback)

        outage = {"on": False}

        def ingest(task):
            if outage["on"]:
                raise ConnectionError("upstream feed unavailable")
            return True

        def traffic(n=3):
            for _ in range(n):
                orchestrator.submit_task("ingest", ingest, priority=5)
            loop.step()
            orchestrator.forget_finished()

        out("FAZA 30 demo: a simulated Senti system (orchestrator, task graph, 3 agents, governance)")
        for _ in range(3):
            traffic()
        health_before = controller.get_health()["overall_score"]
        out(f"health before the faults: {health_before:.1f}/100")

        out("injecting: " + "; ".join(INJECTED.values()))
        graph.connect("publish", "fetch", EdgeType.WEAK, 0.2)
        loop.agent_manager.get_agent("crawler").crashing = True
        outage["on"] = True
        traffic(6)
        outage["on"] = False
        governance.total_risk = 88.0
        health_faulty = controller.get_health()["overall_score"]
        out(f"health with the faults:   {health_faulty:.1f}/100")

        await controller.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            traffic(1)
            if set(INJECTED) <= set(printer.verified) and not controller.get_faults()["active_faults"]:
                break
        await controller.stop()
        traffic(1)
        health_after = controller.get_health()["overall_score"]

        stats = controller.get_statistics()
        found = sorted(set(printer.faults.values()))
        report = {
            "faults_found": found,
            "repaired_and_verified": sorted(set(printer.verified)),
            "repairs_attempted": stats["autorepair"]["repairs_attempted"],
            "repairs_failed": len(printer.failed),
            "rollbacks": printer.rollbacks,
            "cycles": stats["pipeline"]["total_cycles"],
            "health_before": health_before,
            "health_with_faults": health_faulty,
            "health_after": health_after,
            "graph_acyclic": not graph.has_cycle(),
            "snapshots_written": stats["snapshots"]["total_created"],
        }
        out("")
        out("report")
        out(f"  faults found:            {len(found)} ({', '.join(found)})")
        out(f"  repaired and verified:   {len(report['repaired_and_verified'])} of {len(INJECTED)} injected")
        for fault_type, what in INJECTED.items():
            mark = "yes" if fault_type in report["repaired_and_verified"] else "NO"
            out(f"    {mark:>3}  {what}")
        out(f"  repairs attempted:       {report['repairs_attempted']} ({report['repairs_failed']} not verified)")
        out(f"  rollbacks:               {report['rollbacks']}")
        out(f"  healing cycles:          {report['cycles']}  snapshots written: {report['snapshots_written']}")
        out(f"  health:                  {health_before:.1f} before, {health_faulty:.1f} with faults, "
            f"{health_after:.1f} after")
        return report
