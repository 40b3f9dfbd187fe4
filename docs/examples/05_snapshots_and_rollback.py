"""Snapshots of application state, restore, and an automatic rollback when a repair makes
health worse. Every folder is a temporary one.

Run: python docs/examples/05_snapshots_and_rollback.py
"""

import os
import tempfile

from senti_os.core.faza30 import (
    HealingOutcome,
    HealingStage,
    SnapshotManager,
    SnapshotType,
    create_classification_engine,
    create_detection_engine,
    create_healing_pipeline,
    create_health_engine,
    create_scheduler_repair_engine,
)
from senti_os.core.faza30.errors import SnapshotError

system = {"queue": 150, "workers": 4, "error_rate": 0.0}


def faza25_metrics():
    return {"queue_size": system["queue"], "scheduler_efficiency": system["workers"] / 4,
            "error_rate": system["error_rate"]}


def careless_shed_load(resource, current, limit):
    """Clears the overload, but takes three workers down with it."""
    system.update(queue=90, workers=1, error_rate=0.25)
    return True


with tempfile.TemporaryDirectory(prefix="faza30-example-") as folder:
    # "always" flushes each file and the folder before create_snapshot returns.
    snapshots = SnapshotManager(folder, max_snapshots=10, fsync="always")
    snapshots.register_state_provider("system", lambda: dict(system), system.update)

    # 1. Manual snapshot and restore.
    checkpoint = snapshots.create_snapshot(SnapshotType.CHECKPOINT, metadata={"reason": "before tuning"})
    system["workers"] = 2
    assert snapshots.restore_snapshot(checkpoint) is True
    assert system["workers"] == 4
    report = snapshots.get_last_restore()
    print(f"restored {report['restored']} from {checkpoint} (integrity {report['integrity']})")
    assert report["ok"] and report["verified"] and report["integrity"] == "crc32"
    listed = snapshots.list_snapshots(SnapshotType.CHECKPOINT)
    assert [s.snapshot_id for s in listed] == [checkpoint]
    assert listed[0].state["system"]["queue"] == 150 and listed[0].metadata == {"reason": "before tuning"}

    # 2. A repair that lowers health is rolled back to the pre-repair snapshot.
    pipeline = create_healing_pipeline(
        create_detection_engine(),
        create_classification_engine(),
        {"scheduler": create_scheduler_repair_engine()},
        snapshots,
        create_health_engine(),
        repair_context={"actions": {"shed_load": careless_shed_load}},
        metrics_provider=lambda: {"faza25": faza25_metrics()},
    )
    result = pipeline.execute_healing_cycle(faza25_metrics=faza25_metrics())
    rollback = result.context.stage_results[HealingStage.STAGE_9_ROLLBACK]
    print(f"outcome={result.outcome.value}; health {result.context.health_before:.1f} -> "
          f"{result.context.health_after:.1f}; {rollback['reason']}")
    assert result.outcome is HealingOutcome.ROLLBACK and result.rollback_performed
    assert result.context.health_after < result.context.health_before
    assert system == {"queue": 150, "workers": 4, "error_rate": 0.0}  # back as it was
    assert snapshots.get_snapshot(result.context.snapshot_id).snapshot_type is SnapshotType.PRE_REPAIR

    # 3. Files that cannot be used are skipped and reported, never silently dropped.
    with open(os.path.join(folder, "snap_damaged.json"), "w") as fh:
        fh.write("{not json")
    reopened = SnapshotManager(folder)
    skipped = reopened.get_skipped_files()
    print(f"skipped: {skipped[0]['file']}: {skipped[0]['reason']}")
    assert [s["file"] for s in skipped] == ["snap_damaged.json"]
    assert len(reopened.list_snapshots()) == 2

    # 4. Errors: a malformed id is a ValueError, a missing snapshot returns False with the
    # reason in the report, and a failing state provider is a SnapshotError.
    try:
        snapshots.restore_snapshot("../../etc/passwd")
    except ValueError:
        pass
    else:
        raise AssertionError("a path is not a snapshot id")
    assert snapshots.restore_snapshot("snap_missing") is False
    assert "not found" in snapshots.get_last_restore()["error"]

    def failing_capture():
        raise OSError("device busy")

    snapshots.register_state_provider("device", failing_capture, lambda state: None)
    try:
        snapshots.create_snapshot()
    except SnapshotError as err:
        print(f"SnapshotError: {err}")
    else:
        raise AssertionError("a failing capture must raise SnapshotError")
    assert snapshots.get_statistics()["current_snapshots"] == 2  # nothing half-written
