#!/usr/bin/env python3
"""How the cost of a healing cycle grows with the size of the system it heals.

Builds simulated systems of increasing size from doubles shaped like the real FAZA layers
(an agent loop of N agents, a task graph of 10 N nodes, an orchestrator with N finished
tasks, a meta layer, governance and an event bus), wires each to a HealingController and
measures:

1. one forced healing cycle that finds and repairs injected faults (a dependency cycle
   closed by a WEAK edge, a few crashing agents, a few failed tasks), the median of several
   runs with the faults injected again (at other places) before each. The time spent inside
   the layer objects' methods is measured by wrapping them; the rest is the engine's;
2. at the largest size, the auto-repair loop (`await controller.start()` ... `stop()`) with
   the agents ticking in the background: does it break the cycle, restart the crashing
   agents and resubmit the failed tasks, in how many cycles.

It fits the growth exponent (log-log slope over the sizes) of the engine's time and of the
total. Run with the release wheel installed:

    .venv/bin/python scripts/scale.py                 # 100 ... 10,000 agents (1-2 minutes)
    .venv/bin/python scripts/scale.py --quick         # small sizes, a few seconds
    .venv/bin/python scripts/scale.py --json out.json

The doubles' own work is linear or better: cycle checks are iterative depth-first searches
over adjacency lists, edges are indexed by source, the graph is built with one cycle check
at the end instead of one per edge (the real TaskGraph.add_edge checks on every edge, which
is quadratic to build a large graph).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import doubles as D  # noqa: E402  (the test doubles: real-shaped layer classes)

import senti_os.core.faza30 as faza30  # noqa: E402
from senti_os.core.faza30 import AutorepairConfig, create_healing_controller  # noqa: E402

# =============================================================================================
# Time spent inside the layer objects


class LayerClock:
    """Adds up the wall time spent in wrapped layer methods (outermost calls only, so a
    method calling another wrapped one is counted once)."""

    def __init__(self):
        self.seconds = 0.0
        self.calls = 0
        self._depth = 0

    def reset(self):
        self.seconds, self.calls = 0.0, 0

    def wrap(self, obj, *names):
        for name in names:
            fn = getattr(obj, name)
            setattr(obj, name, self.timed(fn))

    def timed(self, fn):
        clock = self
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args, **kwargs):
                if clock._depth:
                    return await fn(*args, **kwargs)
                clock._depth += 1
                start = time.perf_counter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    clock.seconds += time.perf_counter() - start
                    clock.calls += 1
                    clock._depth -= 1

            return timed_async

        @functools.wraps(fn)
        def timed_sync(*args, **kwargs):
            if clock._depth:
                return fn(*args, **kwargs)
            clock._depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - start
                clock.calls += 1
                clock._depth -= 1

        return timed_sync


CLOCK = LayerClock()

# =============================================================================================
# Doubles that stay linear at scale


class ScaleTaskGraph:
    """FAZA 27 ``TaskGraph`` surface (``nodes``, ``edges``, ``_adj_list``, ``add_node``,
    ``add_edge``, ``remove_edge``, ``get_edges_from``, ``get_edges_to``, ``has_edge``,
    ``has_cycle``, ``get_stats``), with edges indexed by source and an iterative cycle check,
    so every method is O(V + E) at worst."""

    def __init__(self, graph_id="scale"):
        self.graph_id = graph_id
        self.metadata = {}
        self.nodes = {}
        self.edges = []
        self._adj_list = {}
        self._out = {}
        self.removed = []

    def add_node(self, node):
        if isinstance(node, str):
            node = D.TaskNode(node)
        if node.node_id in self.nodes:
            raise ValueError(f"Node {node.node_id} already exists in graph")
        self.nodes[node.node_id] = node
        return node

    def _link(self, edge):
        self.edges.append(edge)
        self._adj_list.setdefault(edge.source_id, set()).add(edge.target_id)
        self._out.setdefault(edge.source_id, []).append(edge)
        self.nodes[edge.source_id].dependents.add(edge.target_id)
        self.nodes[edge.target_id].dependencies.add(edge.source_id)

    def add_edge(self, edge, check=True):
        """As the real one: a DEPENDENCY/CONSTRAINT edge that closes a cycle is refused, a
        WEAK one is accepted. ``check=False`` skips the check (bulk building)."""
        for end in (edge.source_id, edge.target_id):
            if end not in self.nodes:
                raise ValueError(f"Node {end} not in graph")
        self._link(edge)
        if check and edge.edge_type in (D.EdgeType.DEPENDENCY, D.EdgeType.CONSTRAINT) and self.has_cycle():
            self._unlink(edge.source_id, edge.target_id)
            raise ValueError(f"Adding edge {edge.source_id} -> {edge.target_id} creates cycle")

    def _unlink(self, source_id, target_id):
        # One pass over the edge list, like the real remove_edge.
        self.edges = [e for e in self.edges if not (e.source_id == source_id and e.target_id == target_id)]
        out = self._out.get(source_id)
        if out is not None:
            self._out[source_id] = [e for e in out if e.target_id != target_id]
        self._adj_list.get(source_id, set()).discard(target_id)
        if source_id in self.nodes:
            self.nodes[source_id].dependents.discard(target_id)
        if target_id in self.nodes:
            self.nodes[target_id].dependencies.discard(source_id)

    def remove_edge(self, source_id, target_id):
        self.removed.append((source_id, target_id))
        self._unlink(source_id, target_id)

    def get_edges_from(self, node_id):
        return list(self._out.get(node_id, ()))

    def get_edges_to(self, node_id):
        return [e for e in self.edges if e.target_id == node_id]

    def has_edge(self, source_id, target_id):
        return any(e.target_id == target_id for e in self._out.get(source_id, ()))

    def has_cycle(self):
        """Iterative three-colour depth-first search over the adjacency sets."""
        adj = self._adj_list
        colour = {}  # absent: unvisited, 1: on the path, 2: finished
        for start in self.nodes:
            if start in colour:
                continue
            colour[start] = 1
            stack = [(start, iter(adj.get(start, ())))]
            while stack:
                node, children = stack[-1]
                for child in children:
                    c = colour.get(child)
                    if c == 1:
                        return True
                    if c is None:
                        colour[child] = 1
                        stack.append((child, iter(adj.get(child, ()))))
                        break
                else:
                    colour[node] = 2
                    stack.pop()
        return False

    def get_stats(self):
        return {"graph_id": self.graph_id, "node_count": len(self.nodes), "edge_count": len(self.edges)}


class ScaleAgent(D.CrashingAgent):
    """A crashing agent whose lifecycle hooks are timed as the doubles' time."""

    async def on_shutdown(self, context):
        pass


# The hooks the repair calls, timed once for every agent.
ScaleAgent.on_start = CLOCK.timed(ScaleAgent.on_start)
ScaleAgent.on_shutdown = CLOCK.timed(ScaleAgent.on_shutdown)


# =============================================================================================
# A simulated system


def build_dag(graph, n_nodes, edges_per_node, rng, max_fan=4):
    """A sparse DAG: node i depends on one or two earlier nodes from a window behind it,
    fan-in and fan-out kept at ``max_fan`` (below the bottleneck threshold of 5), so the
    only graph fault is the injected cycle. Built with one cycle check at the end."""
    ids = [f"t{i:06d}" for i in range(n_nodes)]
    for node_id in ids:
        graph.add_node(D.TaskNode(node_id))
    fan_out = [0] * n_nodes
    parents_of = [()] * n_nodes
    extra = edges_per_node - 1.0
    for i in range(1, n_nodes):
        wanted = 1 + (1 if rng.random() < extra else 0)
        chosen = []
        for _ in range(8):
            if len(chosen) == wanted:
                break
            p = rng.randrange(max(0, i - 64), i)
            if fan_out[p] < max_fan and p not in chosen:
                chosen.append(p)
        if not chosen:  # every candidate full: the previous node always has room eventually
            chosen = [i - 1]
        for p in chosen:
            fan_out[p] += 1
            graph.add_edge(D.TaskEdge(ids[p], ids[i], D.EdgeType.DEPENDENCY, 1.0 + rng.random()), check=False)
        parents_of[i] = tuple(chosen)
    assert not graph.has_cycle()
    return ids, parents_of


class System:
    """Every layer of one simulated system, the controller wired to them, and the faults."""

    def __init__(self, n_agents, n_nodes, *, edges_per_node, n_crashers, n_failed_tasks,
                 seed, autorepair_config=None, crash_placement="spread"):
        self.rng = random.Random(seed)
        self.n_agents, self.n_nodes = n_agents, n_nodes
        self.n_crashers, self.n_failed_tasks = n_crashers, n_failed_tasks
        self.crash_placement = crash_placement
        t0 = time.perf_counter()

        # FAZA 27
        self.graph = ScaleTaskGraph()
        self.node_ids, self.parents_of = build_dag(self.graph, n_nodes, edges_per_node, self.rng)

        # FAZA 28: an AELController over an AgentManager of ScaleAgents
        manager = D.AgentManager()
        self.agents = [ScaleAgent(f"agent-{i:05d}") for i in range(n_agents)]
        for a in self.agents:
            manager.register(a)
        self.loop = D.AELController(agent_manager=manager, tick_rate=1.0)
        self.loop.begin()

        # FAZA 25: N finished tasks (built directly; start/finish would rescan the queue)
        self.orch = D.Orchestrator(num_workers=3)
        for i in range(n_agents):
            t = D.Task(name=f"job-{i}", id=f"task-{i:06d}", status=D.TaskStatus.DONE, completed_at=datetime.now())
            self.orch.tasks[t.id] = t
        self.failed_ids = []
        self.submitted_mark = 0

        # FAZA 28.5, FAZA 29, the bus: healthy, constant size
        self.meta = D.MetaEvaluationLayer()
        self.gov = D.GovernanceController()
        self.bus = D.EventBus()
        self.build_seconds = time.perf_counter() - t0

        self._wrap_layers()
        self.folder = tempfile.TemporaryDirectory(prefix="faza30-scale-")
        self.controller = None
        self.controllers = 0
        self.new_controller(autorepair_config)
        self.round = 0
        self.cycle_edge = None
        self.crashers = []

    def new_controller(self, autorepair_config=None):
        """A fresh controller on the same layers (a fresh throttle, budgets and baselines),
        with its own snapshot folder."""
        self.controllers += 1
        self.controller = create_healing_controller(
            faza25_orchestrator=self.orch,
            faza27_task_graph=self.graph,
            faza28_agent_loop=self.loop,
            faza28_5_meta_layer=self.meta,
            faza29_governance=self.gov,
            event_bus=self.bus,
            autorepair_config=autorepair_config or AutorepairConfig(
                mode="aggressive", cooldown_seconds=0.0,
                max_repairs_per_minute=1_000_000, max_repairs_per_hour=1_000_000),
            snapshot_dir=os.path.join(self.folder.name, f"controller-{self.controllers}"),
            audit_journal_dir=False,
        )
        return self.controller

    def _wrap_layers(self):
        c = CLOCK
        c.wrap(self.orch, "get_queue_status", "get_worker_status", "get_task_status", "list_tasks",
               "submit_task", "cancel_task", "get_system_status")
        c.wrap(self.graph, "get_edges_from", "get_edges_to", "has_edge", "remove_edge", "has_cycle", "get_stats")
        c.wrap(self.loop, "get_stats", "stop")
        m = self.loop.agent_manager
        c.wrap(m, "get_stats", "get_agent", "list_agents", "get_agents_by_priority")
        c.wrap(self.loop.scheduler, "get_stats", "reset")
        c.wrap(self.loop.state_context, "get", "set", "to_json", "get_all")
        c.wrap(self.meta, "get_stability_summary", "get_anomaly_summary", "get_system_risk")
        c.wrap(self.meta.anomaly_detector, "clear_history")
        c.wrap(self.meta.stability_engine, "clear_history")
        c.wrap(self.meta.strategy_adapter, "reset")
        g = self.gov
        c.wrap(g, "get_risk", "get_status", "get_takeover_state", "get_statistics",
               "get_override_system", "get_takeover_manager", "get_feedback_loop")
        c.wrap(g.takeover_manager, "get_state", "get_takeover_score", "is_takeover_active", "force_recovery",
               "get_status", "get_statistics")
        c.wrap(g.override_system, "get_stack_size", "instability_fallback", "clear_stack", "is_override_active",
               "get_statistics")
        c.wrap(g.feedback_loop, "get_stability_score", "is_stable")
        c.wrap(self.bus, "emit", "publish")

    # ---- faults

    def crash_positions(self):
        k, n = self.n_crashers, self.n_agents
        if self.crash_placement == "first":
            base = [(self.round * k + j) % min(n, 1000) for j in range(k)]
        else:  # spread over the whole population, shifted every round
            base = [(j * n // k + self.round * 7) % n for j in range(k)]
        return sorted(set(base))

    def inject(self):
        """Closes a dependency cycle with a WEAK edge, makes a few agents crash on their next
        tick, and fails a few new tasks. Each round uses other places."""
        self.round += 1
        # a cycle of 4-6 nodes: from a node back up to an ancestor
        while True:
            i = self.rng.randrange(self.n_nodes // 2, self.n_nodes)
            path = [i]
            while len(path) < self.rng.randint(4, 6) and self.parents_of[path[-1]]:
                path.append(self.parents_of[path[-1]][0])
            if len(path) >= 3:
                break
        src, dst = self.node_ids[path[0]], self.node_ids[path[-1]]
        self.graph.add_edge(D.TaskEdge(src, dst, D.EdgeType.WEAK, 0.1))
        self.cycle_edge = (src, dst)
        # crashing agents, then one tick of the agent loop (they error, the others tick)
        self.crashers = [self.agents[p] for p in self.crash_positions()]
        for a in self.crashers:
            a.failing = True
        asyncio.run(self.loop.run_iteration())
        # the retries of the previous round finish; new tasks fail
        for t in list(self.orch.tasks.values()):
            if t.status == D.TaskStatus.QUEUED:
                self.orch.finish(t.id, ok=True)
        self.failed_ids = []
        for j in range(self.n_failed_tasks):
            t = self.orch.add(name=f"failing-{self.round}-{j}")
            self.orch.finish(t.id, ok=False, error="worker lost")
            self.failed_ids.append(t.id)
        self.submitted_mark = len(self.orch.submitted)  # what is submitted from here on is a retry

    def healed(self):
        """What the repairs left: cycle gone, crashers restarted, failed tasks resubmitted."""
        retried = {s["name"] for s in self.orch.submitted[self.submitted_mark:]}
        failed_names = {self.orch.tasks[i].name for i in self.failed_ids}
        return {
            "cycle_broken": not self.graph.has_cycle() and self.cycle_edge in self.graph.removed,
            "agents_restarted": sum(not a.failing for a in self.crashers),
            "agents_crashing": len(self.crashers),
            "tasks_resubmitted": len(failed_names & retried),
            "tasks_failed": len(failed_names),
        }

    def settle(self):
        """Clears what a round's repairs may have left, so the next round starts healthy."""
        if self.graph.has_cycle() and self.cycle_edge:
            self.graph.remove_edge(*self.cycle_edge)
        for a in self.crashers:
            a.failing = False
            a.enabled = True
        asyncio.run(self.loop.run_iteration())

    def close(self):
        self.folder.cleanup()


# =============================================================================================
# Measurements


def measure_size(n_agents, n_nodes, args):
    system = System(n_agents, n_nodes, edges_per_node=args.edges_per_node, n_crashers=args.crashers,
                    n_failed_tasks=args.failed_tasks, seed=args.seed + n_agents,
                    crash_placement=args.crash_placement)
    try:
        quiet, runs = [], []
        c = None
        for _ in range(args.repeats):
            # A fresh controller per run (fresh throttle, budgets and baselines), so runs are
            # alike; --one-controller keeps one, so the throttle's history carries over.
            if c is None or not args.one_controller:
                c = system.new_controller()
            asyncio.run(system.loop.run_iteration())
            c.force_healing_cycle()  # the first collection only records the counters
            asyncio.run(system.loop.run_iteration())
            CLOCK.reset()
            t0 = time.perf_counter()
            c.force_healing_cycle()
            quiet.append((time.perf_counter() - t0, CLOCK.seconds))

            system.inject()
            CLOCK.reset()
            t0 = time.perf_counter()
            result = c.force_healing_cycle()
            total = time.perf_counter() - t0
            doubles, calls = CLOCK.seconds, CLOCK.calls
            statuses = [f"{r.metadata.get('engine')}:{r.status.value}:{r.metadata.get('reason', '')}"
                        for r in c.get_healing_pipeline().get_recent_cycles(1)[0].context.repairs]
            runs.append({"total": total, "doubles": doubles, "engine": total - doubles, "layer_calls": calls,
                         "repairs": statuses,
                         "outcome": result["outcome"], "faults_detected": result["faults_detected"],
                         "faults_repaired": result["faults_repaired"], **system.healed()})
            system.settle()
            integration_faults = c.get_integration_layer().get_integration_faults()

        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        return {
            "agents": n_agents, "nodes": n_nodes, "edges": len(system.graph.edges), "tasks": len(system.orch.tasks),
            "build_seconds": system.build_seconds,
            "total": med("total"), "doubles": med("doubles"), "engine": med("engine"),
            "quiet_total": statistics.median(q[0] for q in quiet),
            "quiet_doubles": statistics.median(q[1] for q in quiet),
            "runs": runs,
            "integration_faults": [f"{f['source']}: {f['kind']}: {f['message']}" for f in integration_faults][-5:],
        }
    finally:
        system.close()


def fit_exponent(xs, ys):
    """Least-squares slope of log(y) against log(x)."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-12)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / den if den else float("nan")


async def loop_run(n_agents, n_nodes, args, placement):
    """The auto-repair loop on the largest system: faults injected once, agents ticking in
    the background; waits until everything is healed or the time is up."""
    config = AutorepairConfig(mode="balanced", interval_seconds=args.loop_interval, cooldown_seconds=0.0)
    system = System(n_agents, n_nodes, edges_per_node=args.edges_per_node, n_crashers=args.crashers,
                    n_failed_tasks=args.failed_tasks, seed=args.seed + 1, autorepair_config=config,
                    crash_placement=placement)
    c = system.controller
    stop_ticking = asyncio.Event()

    async def tick():
        while not stop_ticking.is_set():
            await system.loop.run_iteration()
            await asyncio.sleep(system.loop.tick_rate / 4)

    try:
        await system.loop.run_iteration()
        ticker = asyncio.create_task(tick())
        await c.start()
        await asyncio.sleep(args.loop_interval * 2)  # a healthy iteration or two: baselines
        await asyncio.to_thread(system.inject)  # inject runs its own loop for one tick
        injected_at = time.perf_counter()
        healed_at = None
        state = system.healed()
        while time.perf_counter() - injected_at < args.loop_timeout:
            await asyncio.sleep(0.1)
            state = system.healed()
            if (state["cycle_broken"] and state["agents_restarted"] == state["agents_crashing"]
                    and state["tasks_resubmitted"] == state["tasks_failed"]):
                healed_at = time.perf_counter()
                break
        await asyncio.sleep(args.loop_interval)  # let the verifying cycle finish
        await c.stop()
        stop_ticking.set()
        await ticker
        stats = c.get_autorepair_engine().get_statistics()
        return {
            "agents": n_agents, "nodes": n_nodes, "interval_seconds": args.loop_interval,
            "crash_placement": placement, "crashers": [a.name for a in system.crashers],
            "healed": healed_at is not None,
            "seconds_to_heal": None if healed_at is None else healed_at - injected_at,
            **state,
            "restart_calls": sum(a.restarts for a in system.crashers),
            "total_cycles": stats["total_cycles"],
            "healing_cycles_triggered": stats["healing_cycles_triggered"],
            "repairs_attempted": stats["repairs_attempted"],
            "repairs_successful": stats["repairs_successful"],
            "avg_cycle_duration": stats["avg_cycle_duration"],
            "callback_errors": stats["callback_errors"],
            "integration_faults": [f"{f['source']}: {f['kind']}: {f['message']}"
                                   for f in c.get_integration_layer().get_integration_faults()][-5:],
        }
    finally:
        stop_ticking.set()
        if c.is_running():
            await c.stop()
        system.close()


# =============================================================================================


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "faza30": os.path.dirname(faza30.__file__)}


def ms(x):
    return f"{x * 1e3:9.2f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes and fewer repeats")
    p.add_argument("--agents", type=int, nargs="+", help="agent counts (nodes = 10 x agents, tasks = agents)")
    p.add_argument("--repeats", type=int, default=None, help="runs per size (median); default 7, quick 3")
    p.add_argument("--edges-per-node", type=float, default=1.0,
                   help="edges per graph node, 1.0 to 2.0 (default 1.0: a forest, n - 1 edges)")
    p.add_argument("--crashers", type=int, default=5, help="crashing agents injected per run")
    p.add_argument("--crash-placement", choices=("spread", "first"), default="spread",
                   help="crashing agents spread over the population (default) or among the first 1000")
    p.add_argument("--failed-tasks", type=int, default=3, help="failed tasks injected per run")
    p.add_argument("--one-controller", action="store_true",
                   help="one controller for all runs of a size (the throttle's history carries over); prints each run")
    p.add_argument("--no-loop", action="store_true", help="skip the auto-repair loop runs")
    p.add_argument("--loop-placements", nargs="+", choices=("spread", "first"), default=["spread", "first"],
                   help="one loop run per crash placement (default both)")
    p.add_argument("--loop-interval", type=float, default=1.0, help="loop interval_seconds")
    p.add_argument("--loop-timeout", type=float, default=20.0, help="seconds to wait for the loop to heal")
    p.add_argument("--seed", type=int, default=30)
    p.add_argument("--json", metavar="PATH", help="write the results as JSON ('-' for stdout)")
    args = p.parse_args()
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    sizes = args.agents or ([50, 200, 1000] if args.quick else [100, 300, 1000, 3000, 10000])

    info = machine()
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"# {info['cpu']}, {info['cores']} cores, CPython {info['python']}; faza30 from {info['faza30']}", file=out)
    print(f"# {args.repeats} runs per size; faults per run: 1 cycle, {args.crashers} crashing agents "
          f"({args.crash_placement}), {args.failed_tasks} failed tasks", file=out)
    header = (f"{'agents':>7} {'nodes':>8} {'edges':>8} | {'cycle ms':>9} {'doubles':>9} {'engine':>9} | "
              f"{'quiet ms':>9} {'doubles':>9} | {'faults':>6} {'repaired':>8} {'cycle':>5} {'agents':>7} {'tasks':>5}")
    print(header, file=out)
    print("-" * len(header), file=out)
    rows = []
    for n in sizes:
        row = measure_size(n, 10 * n, args)
        rows.append(row)
        last = row["runs"][len(row["runs"]) // 2]
        brk = sum(r["cycle_broken"] for r in row["runs"])
        ag = statistics.median(r["agents_restarted"] for r in row["runs"])
        tk = statistics.median(r["tasks_resubmitted"] for r in row["runs"])
        print(f"{row['agents']:>7} {row['nodes']:>8} {row['edges']:>8} | {ms(row['total'])} {ms(row['doubles'])} "
              f"{ms(row['engine'])} | {ms(row['quiet_total'])} {ms(row['quiet_doubles'])} | "
              f"{last['faults_detected']:>6} {last['faults_repaired']:>8} {brk:>2}/{len(row['runs']):<2} "
              f"{ag:>3g}/{args.crashers:<3} {tk:>2g}/{args.failed_tasks:<2}", file=out, flush=True)
        for f in row["integration_faults"]:
            print(f"        integration fault: {f}", file=out)
        if args.one_controller:
            for i, r in enumerate(row["runs"], 1):
                print(f"        run {i}: {r['outcome']}, repaired {r['faults_repaired']}/{r['faults_detected']}, "
                      f"agents {r['agents_restarted']}/{r['agents_crashing']}, "
                      f"tasks {r['tasks_resubmitted']}/{r['tasks_failed']}; {', '.join(r['repairs'])}", file=out)

    xs = [r["agents"] for r in rows]
    keys = ("total", "doubles", "engine", "quiet_total")
    exponents = {k: fit_exponent(xs, [r[k] for r in rows]) for k in keys}
    # The upper sizes alone: fixed per-cycle costs flatten the slope at the small end.
    top = [r for r in rows if r["agents"] >= 1000] if sum(r["agents"] >= 1000 for r in rows) >= 2 else rows[-2:]
    exponents_top = {k: fit_exponent([r["agents"] for r in top], [r[k] for r in top]) for k in keys}
    verdict = "linear or better" if max(exponents["engine"], exponents_top["engine"]) <= 1.1 else "worse than linear"
    if len(rows) < 2:
        verdict = "not measured (one size)"
    for label, ex, part in (("all sizes", exponents, rows), ("upper sizes", exponents_top, top)):
        print(f"growth exponent, {label} ({part[0]['agents']}..{part[-1]['agents']} agents): "
              f"total {ex['total']:.2f}, doubles {ex['doubles']:.2f}, engine {ex['engine']:.2f}, "
              f"quiet cycle {ex['quiet_total']:.2f}", file=out)
    print(f"-> engine {verdict}", file=out)

    loops = []
    if not args.no_loop:
        for placement in args.loop_placements:
            loop = asyncio.run(loop_run(sizes[-1], 10 * sizes[-1], args, placement))
            loops.append(loop)
            took = "" if loop["seconds_to_heal"] is None else f" in {loop['seconds_to_heal']:.1f} s"
            print(f"\nauto-repair loop, {loop['agents']} agents / {loop['nodes']} nodes, interval "
                  f"{loop['interval_seconds']} s, crashing agents {placement} ({', '.join(loop['crashers'])}): "
                  f"healed={loop['healed']}{took}; cycle broken={loop['cycle_broken']}, "
                  f"agents restarted {loop['agents_restarted']}/{loop['agents_crashing']}, "
                  f"tasks resubmitted {loop['tasks_resubmitted']}/{loop['tasks_failed']}; "
                  f"{loop['total_cycles']} iterations, {loop['healing_cycles_triggered']} healing cycles, "
                  f"repairs {loop['repairs_successful']}/{loop['repairs_attempted']} verified, "
                  f"avg iteration {loop['avg_cycle_duration'] * 1e3:.1f} ms", file=out, flush=True)
            for f in loop["integration_faults"]:
                print(f"        integration fault: {f}", file=out)

    if args.json:
        doc = {"machine": info, "args": vars(args), "sizes": rows, "exponents": exponents, "exponents_upper": exponents_top, "loops": loops}
        text = json.dumps(doc, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
