"""The audit journal: entries survive reopening and SIGKILL, bad input is refused, and a
restarted auto-repair loop recovers its throttle from the journal instead of repairing again
at once."""

import asyncio
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from senti_os.core.faza30 import (
    AgentRepairEngine, AuditJournal, ClassificationEngine, DetectionEngine,
    GovernanceRepairEngine, GraphRepairEngine, HealingPipeline, HealthEngine,
    SchedulerRepairEngine, create_audit_journal, create_healing_controller,
)
from senti_os.core.faza30.autorepair_engine import AutorepairConfig, AutorepairEngine, AutorepairMode


def test_entries_are_read_back_newest_first_after_reopening(tmp_path):
    journal = AuditJournal(tmp_path / "audit")
    seqs = [journal.append("repair", {"target": f"t{i}", "succeeded": i % 2 == 0}) for i in range(5)]
    journal.append("note", {"text": "operator looked"})
    assert seqs == [1, 2, 3, 4, 5]
    reopened = create_audit_journal(tmp_path / "audit")
    entries = reopened.get_entries(limit=10)
    assert [e["seq"] for e in entries] == [6, 5, 4, 3, 2, 1]
    assert entries[-1]["kind"] == "repair" and entries[-1]["data"] == {"target": "t0", "succeeded": True}
    assert [e["seq"] for e in reopened.get_entries(kind="repair", limit=2)] == [5, 4]
    assert all(isinstance(e["timestamp"], float) and e["timestamp"] > 1e9 for e in entries)
    stats = reopened.get_statistics()
    assert (stats["loaded"], stats["skipped_lines"], stats["last_seq"]) == (6, 0, 6)
    assert reopened.append("cycle") == 7


@pytest.mark.parametrize("kind, data, error", [
    ("repairs", {}, ValueError),
    (None, {}, TypeError),
    ("note", [1, 2], TypeError),
    ("note", {"x": math.nan}, ValueError),
    ("note", {"x": 2**200}, ValueError),
    ("note", {"x": object()}, TypeError),
    ("note", {"x": "y" * 100_000}, ValueError),
])
def test_bad_entries_are_refused_and_nothing_is_written(tmp_path, kind, data, error):
    journal = AuditJournal(tmp_path / "audit")
    with pytest.raises(error):
        journal.append(kind, data)
    assert journal.get_statistics()["appended"] == 0
    assert journal.append("note", {"ok": True}) == 1


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError):
        AuditJournal(tmp_path / "a", max_segments=0)
    with pytest.raises(ValueError):
        AuditJournal(tmp_path / "a", max_segment_bytes=10)
    with pytest.raises(ValueError):
        AuditJournal(tmp_path / "a", fsync="sometimes")
    with pytest.raises(TypeError):
        AuditJournal(42)


CHILD = textwrap.dedent("""
    import sys
    from senti_os.core.faza30 import AuditJournal
    journal = AuditJournal(sys.argv[1], fsync="never", max_segment_bytes=65536, max_segments=1000)
    n = 0
    while True:
        seq = journal.append("repair", {"target": f"agent_failure:a{n % 7}", "action": "agent",
                                        "succeeded": n % 3 != 0, "pad": "x" * (n % 200)})
        # Printed only after append returned: every printed number was acknowledged.
        print(seq, flush=True)
        n += 1
""")


def test_no_acknowledged_entry_is_lost_to_sigkill(tmp_path):
    folder = str(tmp_path / "audit")
    rng = random.Random(7)
    acknowledged = set()
    for _ in range(8):
        child = subprocess.Popen([sys.executable, "-c", CHILD, folder], stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.15, 0.4))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        acknowledged.update(int(line) for line in out.split())
    journal = AuditJournal(folder, max_segments=1000)
    present = set(_seqs_on_disk(folder))
    assert len(acknowledged) > 100, "the children should have appended something"
    assert acknowledged <= present, f"lost: {sorted(acknowledged - present)[:10]}"
    stats = journal.get_statistics()
    # Start-up reads the newest segments, as many as hold the 10,000 entries kept in memory.
    assert min(len(present), 10_000) <= stats["loaded"] <= len(present)
    # At most one torn line per kill (in the segments read), skipped rather than read.
    assert stats["skipped_lines"] <= 8
    assert [e["seq"] for e in journal.get_entries(limit=3)] == sorted(present)[-1:-4:-1]


def _seqs_on_disk(folder):
    """Every whole entry in the segment files, read independently of the engine: a line is
    `<crc32 of the JSON, 8 hex digits> <JSON>`."""
    import json
    import zlib
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as fh:
            for line in fh.read().split(b"\n"):
                crc, _, body = line.partition(b" ")
                if body and len(crc) == 8 and int(crc, 16) == zlib.crc32(body):
                    yield json.loads(body)["seq"]


class FailingCycleSystem:
    """A dependency cycle whose repair always raises: every repair attempt fails."""

    def __init__(self):
        self.attempts = 0

    def get_all_metrics(self):
        return {"faza27": {"cycle_count": 1, "cycles": [["a", "b"]]}}

    def break_cycle(self, **kw):
        self.attempts += 1
        raise RuntimeError("graph is locked")


def _engine(system, journal):
    engines = {"graph": GraphRepairEngine(), "agent": AgentRepairEngine(),
               "scheduler": SchedulerRepairEngine(), "governance": GovernanceRepairEngine()}
    pipeline = HealingPipeline(DetectionEngine(), ClassificationEngine(), engines, None, HealthEngine(),
                               repair_context={"actions": {"break_cycle": system.break_cycle}})
    config = AutorepairConfig(mode=AutorepairMode.AGGRESSIVE, interval_seconds=0.01, cooldown_seconds=0.0)
    return pipeline, AutorepairEngine(pipeline, system, None, config, audit_journal=journal)


def _run(engine, pipeline, cycles):
    async def main():
        await engine.start()
        for _ in range(500):
            if len(pipeline.get_recent_cycles(1000)) >= cycles:
                break
            await asyncio.sleep(0.01)
        await engine.stop()
    asyncio.run(main())


def test_a_restarted_loop_recovers_its_backoff_from_the_journal(tmp_path):
    folder = tmp_path / "audit"
    first = FailingCycleSystem()
    pipeline, engine = _engine(first, AuditJournal(folder))
    _run(engine, pipeline, cycles=5)
    assert first.attempts >= 1
    journal = AuditJournal(folder)
    repairs = journal.get_entries(kind="repair")
    assert repairs and repairs[0]["data"]["target"] == "graph_cycle:a->b"
    assert repairs[0]["data"]["succeeded"] is False
    assert journal.get_entries(kind="cycle")[0]["data"]["faults_detected"] >= 1

    # The "restarted host": a fresh engine on the same journal holds the failed target back.
    restarted = FailingCycleSystem()
    pipeline, engine = _engine(restarted, journal)
    assert engine.get_statistics()["recovered_repairs"] == len(repairs)
    _run(engine, pipeline, cycles=10)
    assert len(pipeline.get_recent_cycles(1000)) >= 10
    assert restarted.attempts == 0

    # Control: without the journal the same engine repairs again straight away.
    control = FailingCycleSystem()
    pipeline, engine = _engine(control, None)
    _run(engine, pipeline, cycles=10)
    assert control.attempts >= 1


def test_the_controller_journals_into_its_snapshot_folder_by_default(tmp_path):
    controller = create_healing_controller(snapshot_dir=tmp_path / "snaps")
    journal = controller.get_audit_journal()
    assert journal.journal_dir == os.path.join(str(tmp_path / "snaps"), "audit")
    assert controller.get_autorepair_engine().get_statistics()["audit_journal"] == journal.journal_dir
    assert create_healing_controller(snapshot_dir=tmp_path / "s2", audit_journal_dir=False).get_audit_journal() is None
    custom = create_healing_controller(snapshot_dir=tmp_path / "s3", audit_journal_dir=tmp_path / "j")
    assert custom.get_audit_journal().journal_dir == str(tmp_path / "j")
    with pytest.raises(TypeError):
        create_healing_controller(snapshot_dir=tmp_path / "s4", audit_journal_dir=True)
