"""Command line: ``python -m senti_os.core.faza30 demo`` (a simulated system, healed live)
and ``python -m senti_os.core.faza30 diagnose [metrics.json]``.

``diagnose`` runs the engine once over a snapshot of layer metrics (the sample below, or a
JSON file shaped like it) and prints the faults it finds, how each is classified, and the
health score. It is a thin driver: every decision is made by the Rust engine.
"""

import argparse
import json
import sys

# A system under stress: a dependency cycle, a crashing agent, failing tasks, a risk spike.
SAMPLE_METRICS = {
    "faza25_metrics": {"queue_size": 140, "task_success_rate": 0.55, "failed_task_ids": ["t7", "t9"]},
    "faza27_metrics": {"cycle_count": 1, "cycles": [["fetch", "parse", "fetch"]], "graph_complexity": 42},
    "faza28_metrics": {"agent_failure_rate": 0.45, "failing_agents": ["crawler"]},
    "faza28_5_metrics": {"stability_score": 0.8, "anomaly_count": 1},
    "faza29_metrics": {"risk_score": 82, "governance_violations": 0, "takeover_active": False},
}


def _diagnose(metrics):
    from . import create_classification_engine, create_detection_engine, create_health_engine

    detection = create_detection_engine()
    classification = create_classification_engine()
    health = create_health_engine()
    faults = detection.detect_faults(**metrics)
    print(f"{len(faults)} fault(s) detected")
    for fault in faults:
        result = classification.classify_fault(fault)
        print(
            f"  [{fault.severity.value:>8}] {fault.fault_type:<24} {result.category.value:<16}"
            f" priority={result.repair_priority.value:<9} confidence={result.confidence:.2f}"
        )
        print(f"             {fault.description}; root cause: {result.root_cause}")
    score = health.compute_health_score(**metrics)
    print(f"health {score.overall_score:.1f}/100 ({score.level.value}); lowest component: "
          f"{score.metadata['lowest_component']}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m senti_os.core.faza30")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a simulated Senti system, inject faults and heal them")
    demo.add_argument("--seconds", type=float, default=10.0, help="longest time to let the engine heal")
    diag = sub.add_parser("diagnose", help="detect, classify and score one snapshot of layer metrics")
    diag.add_argument("metrics", nargs="?", help="JSON file with faza25_metrics ... faza29_metrics")
    args = parser.parse_args(argv)
    if args.command == "demo":
        import asyncio

        from ._demo import INJECTED, run_demo

        report = asyncio.run(run_demo(args.seconds))
        return 0 if set(INJECTED) <= set(report["repaired_and_verified"]) else 1
    if args.command == "diagnose":
        metrics = SAMPLE_METRICS
        if args.metrics:
            with open(args.metrics, encoding="utf-8") as fh:
                metrics = json.load(fh)
        return _diagnose(metrics)
    return 2


if __name__ == "__main__":
    sys.exit(main())
