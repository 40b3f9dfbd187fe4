#!/usr/bin/env python3
"""Soak: memory stays flat over many healing cycles with faults (issue 4, long runs).

Two modes:

- ``--mode pipeline`` (default, 1,000,000 cycles): one ``HealingPipeline`` with all four repair
  engines, a ``SnapshotManager`` (max_snapshots=50) with a state provider, event hooks with a
  subscriber, repair actions that succeed, decline or raise, and metrics that raise faults every
  cycle, varied so different fault types and ever-new targets (agents, tasks, graph cycles)
  occur. Health after the repairs sometimes declines, so rollbacks run too.
- ``--mode loop``: a ``HealingController`` whose auto-repair loop runs on its own runtime
  against duck-typed layers that report faults (one of their methods raises now and then),
  with repair actions registered on the integration layer.

RSS (VmRSS from /proc/self/status) is read after a warm-up (``--warmup``, 10,000 cycles: every
history and cache is full by then), every ``--every`` cycles and at the end. Prints a table and the growth, and exits
1 if the growth is ``--limit-mb`` (20) or more.

    .venv/bin/python scripts/soak.py                           # 1,000,000 pipeline cycles
    .venv/bin/python scripts/soak.py --cycles 200000 --every 50000
    .venv/bin/python scripts/soak.py --mode loop --cycles 20000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

VERBS = ["break_cycle", "reset_scheduler", "relieve_bottleneck", "simplify_graph", "restart_agent",
         "isolate_agent", "reset_cooperation", "flush_messages", "reset_meta_state", "retry_task",
         "cancel_task", "shed_load", "reprioritize_queue", "governance_escalate", "reset_overrides",
         "request_recovery", "adjust_threshold", "resolve_rule_conflict"]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


class Actions:
    """Repair actions that mostly work, sometimes decline (False) and sometimes raise."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.calls = 0
        self.raised = 0

    def make(self, verb):
        def action(*args, **kwargs):
            self.calls += 1
            r = self.rng.random()
            if r < 0.1:
                self.raised += 1
                raise RuntimeError(f"{verb} failed on purpose")
            return r >= 0.2
        action.__name__ = verb
        return action

    def table(self) -> dict:
        return {verb: self.make(verb) for verb in VERBS}


def faulty_metrics(rng: random.Random, cycle: int) -> dict:
    """Layer metrics that always raise at least one fault; which ones, and the targets they
    name (new names all the time, to push every per-target map to its cap), vary."""
    n = cycle
    layers = {
        "faza25_metrics": {"error_rate": rng.uniform(0.3, 0.9), "queue_size": rng.randint(50, 2000),
                           "failed_task_ids": [f"task-{n % 50_000}", f"task-{(n * 7) % 50_000}"],
                           "stuck_task_ids": [f"stuck-{n % 3000}"]},
        "faza27_metrics": {"cycle_count": rng.randint(1, 3), "bottleneck_count": rng.randint(0, 4),
                           "cycles": [[f"n{n % 997}", f"n{(n + 1) % 997}", f"n{n % 997}"]],
                           "bottleneck_node": f"n{n % 211}"},
        "faza28_metrics": {"agent_failure_rate": rng.uniform(0.2, 0.9), "scheduler_stuck": rng.random() < 0.5,
                           "failing_agents": [f"agent-{n % 20_000}"]},
        "faza28_5_metrics": {"stability_score": rng.uniform(0.05, 0.5), "anomaly_rate": rng.uniform(0.3, 1.0)},
        "faza29_metrics": {"violation_count": rng.randint(1, 6), "takeover_active": rng.random() < 0.2,
                           "risk_score": rng.uniform(0.0, 100.0), "override_count": rng.randint(0, 12)},
    }
    keep = [k for k in layers if rng.random() < 0.6] or [rng.choice(list(layers))]
    return {k: layers[k] for k in keep}


def print_table(rows, start_rss) -> None:
    print(f"{'cycles':>12} {'RSS MB':>9} {'growth MB':>10} {'elapsed s':>10} {'cycles/s':>9}")
    for cycles, rss, elapsed, rate in rows:
        print(f"{cycles:>12,} {rss:>9.1f} {rss - start_rss:>+10.1f} {elapsed:>10.1f} {rate:>9.0f}")


# ---------------------------------------------------------------------------------------------


def run_pipeline(args, folder: Path) -> dict:
    from senti_os.core.faza30 import (
        AgentRepairEngine, ClassificationEngine, DetectionEngine, EventHooks, GovernanceRepairEngine,
        GraphRepairEngine, HealingPipeline, HealthEngine, SchedulerRepairEngine,
    )
    from senti_os.core.faza30.snapshot_manager import SnapshotManager

    rng = random.Random(args.seed)
    manager = SnapshotManager(folder, max_snapshots=50, fsync=args.fsync)
    system = {"queue": 5, "epoch": 0}
    manager.register_state_provider("system", lambda: dict(system), lambda s: system.update(s) or True)
    hooks = EventHooks()
    seen = {"events": 0}
    for event_type in ("fault_detected", "healing_completed", "rollback_performed", "repair_failed"):
        try:
            hooks.subscribe(event_type, lambda event: seen.__setitem__("events", seen["events"] + 1))
        except (TypeError, ValueError):
            pass  # an event type this version does not have
    actions = Actions(rng)
    engines = {"graph": GraphRepairEngine(), "agent": AgentRepairEngine(),
               "scheduler": SchedulerRepairEngine(), "governance": GovernanceRepairEngine()}
    counter = {"cycle": 0, "no_fault": 0}

    def after_repairs():
        # Sometimes better, sometimes worse than before (a decline rolls back).
        system["epoch"] += 1
        if rng.random() < 0.15:
            return {"faza25": {"queue_size": 5000, "error_rate": 0.99}}
        return {"faza25": {"queue_size": 3, "error_rate": 0.0}}

    pipeline = HealingPipeline(DetectionEngine(), ClassificationEngine(), engines, manager, HealthEngine(),
                               repair_context={"actions": actions.table()}, metrics_provider=after_repairs,
                               event_hooks=hooks)

    def step():
        counter["cycle"] += 1
        if pipeline.execute_healing_cycle(**faulty_metrics(rng, counter["cycle"])).faults_detected == 0:
            counter["no_fault"] += 1

    rows, start_rss, started = measure(args, step)
    manager.flush()
    stats = pipeline.get_statistics()
    snaps = manager.get_statistics()
    return {
        "rows": rows, "start_rss": start_rss, "seconds": time.monotonic() - started,
        "details": {
            "pipeline": {k: stats[k] for k in ("total_cycles", "successful_cycles", "failed_cycles",
                                               "rollback_cycles", "partial_cycles", "skipped_cycles",
                                               "history_size", "learned_pairs")},
            "snapshots": {k: snaps[k] for k in ("total_created", "current_snapshots", "retention_deleted",
                                                "state_cache_entries", "skipped_files", "fsync_errors")},
            "repair_budget_targets": {n: e.get_statistics()["budget_targets"] for n, e in engines.items()},
            "repair_history": {n: e.get_statistics()["history_size"] for n, e in engines.items()},
            "event_history": len(hooks.get_event_history(limit=1000)),
            "subscriber_calls": seen["events"],
            "action_calls": actions.calls,
            "actions_raised": actions.raised,
            "files_in_folder": len(os.listdir(folder)),
            "cycles_without_a_fault": counter["no_fault"],
        },
    }


def measure(args, step):
    """Runs ``step`` ``args.cycles`` times, reading RSS after the warm-up, every ``args.every``
    cycles and at the end. Returns (rows, start_rss, started)."""
    warmup = args.warmup
    for _ in range(warmup):
        step()
    gc.collect()
    start_rss = rss_mb()
    started = time.monotonic()
    rows = [(0, start_rss, 0.0, 0.0)]
    print_table([], start_rss)
    print(f"{0:>12,} {start_rss:>9.1f} {0.0:>+10.1f} {0.0:>10.1f} {'':>9}   (after {warmup:,} warm-up cycles)", flush=True)
    done = 0
    while done < args.cycles:
        chunk = min(args.every - done % args.every, args.cycles - done)
        t0 = time.monotonic()
        for _ in range(chunk):
            step()
        done += chunk
        gc.collect()
        rss = rss_mb()
        elapsed = time.monotonic() - started
        rate = chunk / max(1e-9, time.monotonic() - t0)
        rows.append((done, rss, elapsed, rate))
        print(f"{done:>12,} {rss:>9.1f} {rss - start_rss:>+10.1f} {elapsed:>10.1f} {rate:>9.0f}", flush=True)
    return rows, start_rss, started


# ---------------------------------------------------------------------------------------------


class _Orchestrator:
    def __init__(self, rng):
        self.rng = rng

    def get_queue_size(self):
        return self.rng.randint(200, 900)

    def get_queue_metrics(self):
        return {"error_rate": self.rng.uniform(0.3, 0.8)}

    def get_scheduler_stats(self):
        return {"efficiency": 0.9, "success_rate": self.rng.uniform(0.4, 0.7)}

    def get_resource_usage(self):
        return {"cpu": self.rng.random(), "memory": self.rng.random()}


class _Graph:
    def __init__(self, rng):
        self.rng = rng
        self.n = 0

    def get_complexity(self):
        return 140

    def detect_cycles(self):
        self.n += 1
        return [[f"t{self.n % 500}", f"t{(self.n + 1) % 500}", f"t{self.n % 500}"]]

    def get_stats(self):
        if self.rng.random() < 0.05:
            raise RuntimeError("graph stats unavailable")  # a failing layer call
        return {"bottleneck_count": self.rng.randint(0, 8)}


class _AgentLoop:
    def __init__(self, rng):
        self.rng = rng

    def get_agent_stats(self):
        return {"failure_rate": self.rng.uniform(0.3, 0.7), "performance": 0.9, "cooperation_score": 0.8}

    def get_communication_health(self):
        return 0.95

    def get_active_agents(self):
        return ["a1", "a2", "a3"]


class _Meta:
    def __init__(self, rng):
        self.rng = rng

    def get_stability_score(self):
        return self.rng.uniform(0.1, 0.6)

    def get_policy_effectiveness(self):
        return 0.9

    def get_anomaly_count(self):
        return self.rng.randint(0, 5)

    def get_feedback_health(self):
        return 0.9


class _Governance:
    def __init__(self, rng):
        self.rng = rng

    def get_risk(self):
        return {"overall_score": self.rng.randint(10, 90)}

    def get_status(self):
        return {"violations": self.rng.randint(0, 3), "override_count": 1}

    def get_takeover_state(self):
        return "takeover" if self.rng.random() < 0.2 else "normal"


def run_loop(args, folder: Path) -> dict:
    from senti_os.core.faza30 import AutorepairConfig, AutorepairMode, create_healing_controller

    rng = random.Random(args.seed)
    config = AutorepairConfig(mode=AutorepairMode.AGGRESSIVE, interval_seconds=0.001, cooldown_seconds=0.0,
                              max_repairs_per_minute=1_000_000_000, max_repairs_per_hour=1_000_000_000)
    controller = create_healing_controller(
        faza25_orchestrator=_Orchestrator(rng), faza27_task_graph=_Graph(rng), faza28_agent_loop=_AgentLoop(rng),
        faza28_5_meta_layer=_Meta(rng), faza29_governance=_Governance(rng),
        autorepair_config=config, snapshot_dir=str(folder), max_snapshots=50,
    )
    layer = controller.get_integration_layer()
    actions = Actions(rng)
    for verb, fn in actions.table().items():
        layer.register_repair_action(verb, fn)
    engine = controller.get_autorepair_engine()
    state = {"rows": None, "start_rss": None, "started": None}

    async def main():
        await controller.start()
        try:
            await wait_for_cycles(engine, args.warmup)
            gc.collect()
            start_rss = rss_mb()
            base = engine.get_statistics()["total_cycles"]
            started = time.monotonic()
            rows = [(0, start_rss, 0.0, 0.0)]
            print_table([], start_rss)
            print(f"{0:>12,} {start_rss:>9.1f} {0.0:>+10.1f} {0.0:>10.1f} {'':>9}   (after {base:,} warm-up iterations)",
                  flush=True)
            mark, t_mark = 0, started
            while True:
                target = min(mark + args.every, args.cycles)
                await wait_for_cycles(engine, base + target)
                done = engine.get_statistics()["total_cycles"] - base
                gc.collect()
                rss = rss_mb()
                now = time.monotonic()
                rows.append((done, rss, now - started, (done - mark) / max(1e-9, now - t_mark)))
                print(f"{done:>12,} {rss:>9.1f} {rss - start_rss:>+10.1f} {now - started:>10.1f} {rows[-1][3]:>9.0f}",
                      flush=True)
                mark, t_mark = done, now
                if done >= args.cycles:
                    break
            state.update(rows=rows, start_rss=start_rss, started=started)
        finally:
            await controller.stop()

    asyncio.run(main())
    stats = controller.get_statistics()
    auto = stats["autorepair"]
    return {
        "rows": state["rows"], "start_rss": state["start_rss"], "seconds": time.monotonic() - state["started"],
        "details": {
            "autorepair": {k: auto[k] for k in ("total_cycles", "healing_cycles_triggered", "repairs_attempted",
                                                "repairs_successful", "escalations", "callback_errors",
                                                "tracked_targets")},
            "pipeline_history": stats["pipeline"]["history_size"],
            "snapshots_current": stats["snapshots"]["current_snapshots"],
            "integration_faults": len(layer.get_integration_faults()),
            "action_calls": actions.calls,
            "actions_raised": actions.raised,
        },
    }


async def wait_for_cycles(engine, n):
    while engine.get_statistics()["total_cycles"] < n:
        if not engine.is_running():
            raise RuntimeError("the auto-repair loop stopped")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("pipeline", "loop"), default="pipeline")
    parser.add_argument("--cycles", type=int, default=None,
                        help="healing cycles (pipeline, default 1,000,000) or loop iterations (loop, default 20,000)")
    parser.add_argument("--every", type=int, default=None, help="read RSS every this many cycles (default: a tenth)")
    parser.add_argument("--warmup", type=int, default=10_000, help="cycles before the first RSS reading")
    parser.add_argument("--limit-mb", type=float, default=20.0)
    parser.add_argument("--fsync", default="batched", choices=("batched", "never", "always"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the figures as JSON to this file")
    args = parser.parse_args(argv)
    if args.cycles is None:
        args.cycles = 1_000_000 if args.mode == "pipeline" else 20_000
    if args.every is None:
        args.every = 100_000 if args.cycles >= 1_000_000 else max(1, args.cycles // 10)
    if args.cycles < 1 or args.every < 1:
        parser.error("--cycles and --every must be at least 1")

    import senti_os.core.faza30 as faza30

    print(f"soak: mode={args.mode} cycles={args.cycles:,} every={args.every:,} seed={args.seed}")
    print(f"machine: {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"{platform.python_implementation()} {platform.python_version()}, faza30 from {Path(faza30.__file__).parent}")
    folder = Path(tempfile.mkdtemp(prefix="faza30-soak-"))
    try:
        result = (run_pipeline if args.mode == "pipeline" else run_loop)(args, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rows, start_rss = result["rows"], result["start_rss"]
    end_rss = rows[-1][1]
    peak_rss = max(r[1] for r in rows)
    growth = end_rss - start_rss
    print()
    print(f"cycles          {rows[-1][0]:,} (after warm-up)")
    print(f"RSS start       {start_rss:.1f} MB")
    print(f"RSS end         {end_rss:.1f} MB (peak {peak_rss:.1f} MB)")
    print(f"growth          {growth:+.1f} MB (limit {args.limit_mb:g} MB)")
    print(f"duration        {result['seconds']:.0f} s ({rows[-1][0] / max(1e-9, result['seconds']):.0f} cycles/s)")
    print("details         " + json.dumps(result["details"], default=str))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "mode": args.mode, "cycles": rows[-1][0], "start_rss_mb": start_rss, "end_rss_mb": end_rss,
            "peak_rss_mb": peak_rss, "growth_mb": growth, "seconds": result["seconds"],
            "rows": rows, "details": result["details"], "limit_mb": args.limit_mb,
        }, indent=2, default=str))
    if growth >= args.limit_mb:
        print(f"FAIL: RSS grew by {growth:.1f} MB, limit {args.limit_mb:g} MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
