"""SnapshotManager: storage format, lazy start-up, checksums, providers, retention, safety."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zlib
from datetime import datetime
from pathlib import Path

import pytest

from senti_os.core.faza30.snapshot_manager import (
    Snapshot,
    SnapshotError,
    SnapshotManager,
    SnapshotType,
    create_snapshot_manager,
)

ID_PATTERN = re.compile(r"^snap_\d{8}_\d{6}_\d{6}_[0-9a-f]{8}$")


def snap_files(folder):
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("snap_") and p.name.endswith(".json"))


def all_files(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def raw_state(path):
    """The exact state bytes of a file in our format (state is last, length in the header)."""
    data = Path(path).read_bytes()
    header = json.loads(data)
    n = header["state_bytes"]
    return data, header, data[len(data) - 1 - n : len(data) - 1]


def write_reference_file(folder, snapshot_id, snapshot_type, timestamp, state, metadata):
    """A snapshot exactly as the reference writes it: json.dump(indent=2), state before metadata."""
    data = {
        "snapshot_id": snapshot_id,
        "snapshot_type": snapshot_type,
        "timestamp": timestamp,
        "state": state,
        "metadata": metadata,
    }
    path = Path(folder) / f"{snapshot_id}.json"
    with open(path, "w") as f:
        json.dump(data, f, indent=2)
    return path


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "snaps"
    d.mkdir()
    return d


@pytest.fixture
def manager(folder):
    return SnapshotManager(snapshot_dir=str(folder), fsync="never")


class Layer:
    """A stand-in layer with state a provider can capture and put back."""

    def __init__(self, **state):
        self.state = dict(state)
        self.restored_with = []

    def capture(self):
        return json.loads(json.dumps(self.state))

    def restore(self, section):
        self.restored_with.append(section)
        self.state = section


# ---------------------------------------------------------------------------------------------
# Construction and folder choice
# ---------------------------------------------------------------------------------------------


def test_attributes_and_factory(folder):
    m = create_snapshot_manager(snapshot_dir=str(folder), max_snapshots=7, auto_cleanup=False)
    assert isinstance(m, SnapshotManager)
    assert m.snapshot_dir == folder and isinstance(m.snapshot_dir, Path)
    assert m.max_snapshots == 7 and m.auto_cleanup is False
    m.max_snapshots = 3
    m.auto_cleanup = True
    assert (m.max_snapshots, m.auto_cleanup) == (3, True)
    with pytest.raises(ValueError):
        m.max_snapshots = 0
    with pytest.raises(ValueError):
        SnapshotManager(snapshot_dir=str(folder), max_snapshots=0)
    with pytest.raises(ValueError):
        SnapshotManager(snapshot_dir="")
    with pytest.raises(TypeError):
        SnapshotManager(snapshot_dir=42)


def test_pathlike_and_expanduser(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    m = SnapshotManager(snapshot_dir="~/deep/snaps")
    assert m.snapshot_dir == tmp_path / "deep" / "snaps"
    assert m.snapshot_dir.is_dir()
    m2 = SnapshotManager(snapshot_dir=tmp_path / "as_path")
    assert m2.snapshot_dir == tmp_path / "as_path"


def test_environment_variable_names_the_folder(tmp_path, monkeypatch):
    target = tmp_path / "from_env"
    monkeypatch.setenv("FAZA30_SNAPSHOT_DIR", str(target))
    m = SnapshotManager()
    assert m.snapshot_dir == target
    sid = m.create_snapshot()
    assert snap_files(target) == [f"{sid}.json"]
    # An explicit argument wins over the variable.
    other = tmp_path / "explicit"
    assert SnapshotManager(snapshot_dir=str(other)).snapshot_dir == other


def test_default_folder_is_private_under_temp_not_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.delenv("FAZA30_SNAPSHOT_DIR", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    m = SnapshotManager()
    expected = tmp / f"senti_system-{os.getuid()}" / "snapshots"
    assert m.snapshot_dir == expected
    m.create_snapshot()
    assert list(home.iterdir()) == []
    assert (expected.parent.stat().st_mode & 0o777) == 0o700
    assert m.get_statistics()["snapshot_dir"] == str(expected)


def test_default_folder_owned_by_a_symlink_is_refused(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp / f"senti_system-{os.getuid()}")
    monkeypatch.delenv("FAZA30_SNAPSHOT_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    with pytest.raises(SnapshotError):
        SnapshotManager()
    assert list(elsewhere.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Writing: format, ids, record
# ---------------------------------------------------------------------------------------------


def test_file_is_compact_checksummed_with_state_last(manager, folder):
    state = {"graph": {"nodes": ["a", "b"], "weights": [0.5, 1.0, 1e20]}, "name": "café"}
    sid = manager.create_snapshot(snapshot_type="pre_repair", metadata={"reason": "test"}, state_override=state)
    assert snap_files(folder) == [f"{sid}.json"]
    data, header, state_bytes = raw_state(folder / f"{sid}.json")
    assert b"\n" not in data and b": " not in data
    assert list(header) == [
        "format_version", "snapshot_id", "snapshot_type", "timestamp", "metadata",
        "state_bytes", "state_crc32", "state",
    ]
    assert header["format_version"] == 2
    assert header["snapshot_id"] == sid
    assert header["snapshot_type"] == "pre_repair"
    assert header["metadata"] == {"reason": "test"}
    assert header["state"] == state
    assert json.loads(state_bytes) == state
    assert int(header["state_crc32"], 16) == zlib.crc32(state_bytes)
    assert datetime.fromisoformat(header["timestamp"]).strftime("%Y%m%d_%H%M%S_%f") in sid


def test_ids_are_unique_padded_and_sort_in_creation_order(manager):
    manager.max_snapshots = 1000
    ids = [manager.create_snapshot(state_override={"i": i}) for i in range(150)]
    assert len(set(ids)) == 150
    assert ids == sorted(ids)
    assert all(ID_PATTERN.match(i) for i in ids)


def test_snapshot_record_fields(manager, folder):
    state = {"k": [1, 2, 3]}
    before = datetime.now()
    sid = manager.create_snapshot(snapshot_type=SnapshotType.CHECKPOINT, metadata={"m": 1}, state_override=state)
    snap = manager.get_snapshot(sid)
    assert isinstance(snap, Snapshot)
    assert snap.snapshot_id == sid
    assert snap.snapshot_type is SnapshotType.CHECKPOINT
    assert isinstance(snap.timestamp, datetime) and before <= snap.timestamp <= datetime.now()
    assert snap.state == state
    assert snap.metadata == {"m": 1}
    assert snap.file_path == str(folder / f"{sid}.json")
    assert snap.size_bytes == os.path.getsize(snap.file_path)
    assert snap.verified is True
    # Attributes are writable like a dataclass's.
    snap.metadata["extra"] = True
    assert snap.metadata == {"m": 1, "extra": True}


def test_snapshot_constructor_defaults():
    ts = datetime(2026, 1, 2, 3, 4, 5)
    s = Snapshot(snapshot_id="snap_x", snapshot_type=SnapshotType.MANUAL, timestamp=ts)
    assert (s.state, s.metadata, s.file_path, s.size_bytes, s.verified) == ({}, {}, None, 0, False)
    assert s == Snapshot("snap_x", SnapshotType.MANUAL, ts)
    assert "snapshot_id='snap_x'" in repr(s)


def test_snapshot_type_default_enum_and_invalid(manager):
    a = manager.create_snapshot()
    b = manager.create_snapshot(snapshot_type=SnapshotType.EMERGENCY)
    assert manager.get_snapshot(a).snapshot_type is SnapshotType.MANUAL
    assert manager.get_snapshot(b).snapshot_type is SnapshotType.EMERGENCY
    with pytest.raises(ValueError, match="snapshot_type"):
        manager.create_snapshot(snapshot_type="bogus")
    with pytest.raises(TypeError):
        manager.create_snapshot(snapshot_type=3)
    assert manager.get_statistics()["failed_creates"] == 2


# ---------------------------------------------------------------------------------------------
# Refusals leave nothing behind
# ---------------------------------------------------------------------------------------------


def test_non_json_values_are_refused_and_nothing_is_written(manager, folder):
    selfref = {}
    selfref["me"] = selfref
    deep = {}
    cur = deep
    for _ in range(10_000):
        cur["d"] = {}
        cur = cur["d"]

    cases = [
        ({"when": datetime.now()}, TypeError, 'state_override["when"]'),
        ({"obj": object()}, TypeError, 'state_override["obj"]'),
        ({"x": [1, float("nan")]}, ValueError, 'state_override["x"][1]'),
        ({"x": math.inf}, ValueError, 'state_override["x"]'),
        ({"big": 2 ** 200}, ValueError, 'state_override["big"]'),
        (selfref, ValueError, "contains itself"),
        (deep, ValueError, "deeper"),
        ({(1, 2): "tuple key"}, TypeError, "keys"),
    ]
    for state, exc, text in cases:
        with pytest.raises(exc) as info:
            manager.create_snapshot(state_override=state)
        assert text in str(info.value)
    with pytest.raises(TypeError, match='metadata\\["at"\\]'):
        manager.create_snapshot(metadata={"at": datetime.now()}, state_override={})
    with pytest.raises(TypeError, match="state_override must be a dict"):
        manager.create_snapshot(state_override=[1, 2])
    with pytest.raises(TypeError, match="metadata must be a dict"):
        manager.create_snapshot(metadata="x")
    assert all_files(folder) == []
    stats = manager.get_statistics()
    assert stats["failed_creates"] == len(cases) + 3
    assert stats["total_created"] == 0
    # Still usable.
    assert manager.create_snapshot(state_override={"ok": 1})


def test_plain_data_variants_round_trip(manager):
    """The fast writer and the general one agree: subclasses, int keys and tuples are stored."""

    class D(dict):
        pass

    state = {
        "tuple": (1, 2),
        "sub": D(a=1),
        1: "int key",
        None: "none key",
        "floats": [0.1, -0.0, 1e-7, 123456789.125],
        "u64": 2 ** 64 - 1,
        "neg": -(2 ** 63),
        "text": "line\nbreak \"quoted\" \u2603 \U0001F600",
        "bools": [True, False, None],
    }
    sid = manager.create_snapshot(state_override=state)
    back = SnapshotManager(snapshot_dir=str(manager.snapshot_dir)).get_snapshot(sid).state
    assert back == {
        "tuple": [1, 2],
        "sub": {"a": 1},
        "1": "int key",
        "null": "none key",
        "floats": [0.1, -0.0, 1e-7, 123456789.125],
        "u64": 2 ** 64 - 1,
        "neg": -(2 ** 63),
        "text": "line\nbreak \"quoted\" \u2603 \U0001F600",
        "bools": [True, False, None],
    }


# ---------------------------------------------------------------------------------------------
# State providers
# ---------------------------------------------------------------------------------------------


def test_without_providers_the_state_is_an_honest_minimal_dict(manager):
    sid = manager.create_snapshot()
    state = manager.get_snapshot(sid).state
    assert set(state) == {"timestamp", "providers"}
    assert state["providers"] == []
    assert isinstance(datetime.fromisoformat(state["timestamp"]), datetime)
    assert manager.restore_snapshot(sid) is True
    report = manager.get_last_restore()
    assert report["ok"] is True and report["restored"] == [] and report["failed"] == {}


def test_providers_round_trip_state(manager, folder):
    graph = Layer(nodes=["a", "b"], edges=[["a", "b"]])
    agents = Layer(active=3)
    manager.register_state_provider("graph", graph.capture, graph.restore)
    manager.register_state_provider("agents", agents.capture, agents.restore)
    assert manager.get_state_providers() == ["graph", "agents"]
    sid = manager.create_snapshot(snapshot_type="pre_repair")
    stored = manager.get_snapshot(sid).state
    assert stored["providers"] == ["graph", "agents"]
    assert stored["graph"] == {"nodes": ["a", "b"], "edges": [["a", "b"]]}

    graph.state = {"nodes": [], "edges": []}
    agents.state = {"active": 0}
    assert manager.restore_snapshot(sid) is True
    assert graph.state == {"nodes": ["a", "b"], "edges": [["a", "b"]]}
    assert agents.state == {"active": 3}
    report = manager.get_last_restore()
    assert report["snapshot_id"] == sid
    assert report["restored"] == ["graph", "agents"]
    assert report["verified"] is True and report["integrity"] == "crc32"

    # A fresh manager (a restarted process) restores from disk through its own providers.
    graph2, agents2 = Layer(), Layer()
    fresh = SnapshotManager(snapshot_dir=str(folder))
    fresh.register_state_provider("graph", graph2.capture, graph2.restore)
    fresh.register_state_provider("agents", agents2.capture, agents2.restore)
    assert fresh.restore_snapshot(sid) is True
    assert fresh.get_last_restore()["from_cache"] is False
    assert graph2.state == {"nodes": ["a", "b"], "edges": [["a", "b"]]}
    assert agents2.state == {"active": 3}
    stats = fresh.get_statistics()
    assert stats["total_restored"] == 1 and stats["state_providers"] == ["graph", "agents"]


def test_failing_provider_restore_makes_restore_false_and_is_reported(manager):
    good = Layer(v=1)

    def bad_restore(section):
        raise RuntimeError("layer offline")

    manager.register_state_provider("bad", lambda: {"x": 1}, bad_restore)
    manager.register_state_provider("good", good.capture, good.restore)
    manager.register_state_provider("refuses", lambda: {}, lambda s: False)
    sid = manager.create_snapshot()
    good.state = {"v": 2}
    assert manager.restore_snapshot(sid) is False
    report = manager.get_last_restore()
    assert report["ok"] is False
    assert report["restored"] == ["good"]
    assert "layer offline" in report["failed"]["bad"]
    assert report["failed"]["refuses"] == "restore returned False"
    assert good.state == {"v": 1}, "the other providers are still restored"
    stats = manager.get_statistics()
    assert stats["failed_restores"] == 1 and stats["total_restored"] == 0


def test_provider_without_section_is_reported_missing(manager):
    sid = manager.create_snapshot()
    late = Layer(v=1)
    manager.register_state_provider("late", late.capture, late.restore)
    assert manager.restore_snapshot(sid) is True
    assert manager.get_last_restore()["missing"] == ["late"]
    assert late.restored_with == []


def test_capture_errors_are_clear_and_write_nothing(manager, folder):
    def boom():
        raise KeyError("graph gone")

    manager.register_state_provider("graph", boom, lambda s: None)
    with pytest.raises(SnapshotError, match="graph") as info:
        manager.create_snapshot()
    assert isinstance(info.value.__cause__, KeyError)
    assert isinstance(info.value, RuntimeError)

    manager.register_state_provider("graph", lambda: {"at": datetime.now()}, lambda s: None)
    with pytest.raises(TypeError, match='state\\["graph"\\]\\["at"\\]'):
        manager.create_snapshot()
    assert all_files(folder) == []
    assert manager.get_statistics()["failed_creates"] == 2

    assert manager.unregister_state_provider("graph") is True
    assert manager.unregister_state_provider("graph") is False
    assert manager.create_snapshot()


def test_provider_registration_is_validated(manager):
    with pytest.raises(TypeError):
        manager.register_state_provider("x", "not callable", lambda s: None)
    with pytest.raises(TypeError):
        manager.register_state_provider("x", lambda: {}, None)
    with pytest.raises(TypeError):
        manager.register_state_provider(3, lambda: {}, lambda s: None)
    for bad in ("", "timestamp", "providers", "n" * 101):
        with pytest.raises(ValueError):
            manager.register_state_provider(bad, lambda: {}, lambda s: None)
    # Registering a name again replaces it in place.
    manager.register_state_provider("a", lambda: 1, lambda s: None)
    manager.register_state_provider("b", lambda: 2, lambda s: None)
    manager.register_state_provider("a", lambda: 3, lambda s: None)
    assert manager.get_state_providers() == ["a", "b"]
    sid = manager.create_snapshot()
    assert manager.get_snapshot(sid).state["a"] == 3


# ---------------------------------------------------------------------------------------------
# Integrity, lazy start-up, legacy and foreign files
# ---------------------------------------------------------------------------------------------


def test_checksum_corruption_is_detected_on_restore(manager, folder):
    layer = Layer(values=list(range(100)))
    manager.register_state_provider("layer", layer.capture, layer.restore)
    sid = manager.create_snapshot()
    path = folder / f"{sid}.json"
    data = bytearray(path.read_bytes())
    i = data.rindex(b"42")
    data[i : i + 2] = b"24"  # same length, different content
    path.write_bytes(bytes(data))

    fresh = SnapshotManager(snapshot_dir=str(folder))
    fresh.register_state_provider("layer", layer.capture, layer.restore)
    layer.state = {"values": []}
    assert fresh.restore_snapshot(sid) is False
    assert layer.state == {"values": []}, "nothing restored from a damaged snapshot"
    report = fresh.get_last_restore()
    assert report["found"] is True and report["verified"] is False
    assert "checksum" in report["error"]
    stats = fresh.get_statistics()
    assert stats["checksum_failures"] == 1 and stats["failed_restores"] == 1
    assert f"{sid}.json" in stats["skipped_file_names"]
    # The file is kept for inspection, out of the listing, and can still be deleted.
    assert fresh.get_snapshot(sid) is None
    assert fresh.delete_snapshot(sid) is True
    assert snap_files(folder) == []


def test_damage_seen_by_the_same_manager_is_detected(manager, folder):
    sid = manager.create_snapshot(state_override={"v": list(range(50))})
    path = folder / f"{sid}.json"
    path.write_bytes(path.read_bytes()[:-10] + b"]}}")  # shorter: resized file
    assert manager.restore_snapshot(sid) is False
    assert manager.get_last_restore()["found"] is True


def test_start_up_reads_headers_only(manager, folder):
    """A state body replaced by garbage (same length) is not noticed at start-up: proof that
    start-up does not read bodies. It is caught when the state is needed."""
    sid = manager.create_snapshot(metadata={"note": "kept"}, state_override={"blob": "y" * 50_000})
    path = folder / f"{sid}.json"
    data, header, state_bytes = raw_state(path)
    garbage = b"{" + b"x" * (len(state_bytes) - 2) + b"}"
    path.write_bytes(data[: len(data) - 1 - len(state_bytes)] + garbage + b"}")

    fresh = SnapshotManager(snapshot_dir=str(folder))
    listed = fresh.list_snapshots()
    assert [s.snapshot_id for s in listed] == [sid]
    assert listed[0].verified is False
    assert listed[0].metadata == {"note": "kept"}
    assert fresh.get_statistics()["skipped_files"] == 0
    with pytest.raises(SnapshotError, match="checksum"):
        _ = listed[0].state
    assert fresh.restore_snapshot(sid) is False


def test_reference_written_file_still_loads(folder):
    write_reference_file(
        folder, "snap_20261128_095628_81930", "pre_repair", "2026-11-28T09:56:28.081930",
        {"graph": {"nodes": [1, 2]}, "note": "caf\u00e9"}, {"reason": "legacy"},
    )
    write_reference_file(
        folder, "snap_20261128_095629_5", "manual", "2026-11-28T09:56:29.000005", {}, {},
    )
    m = SnapshotManager(snapshot_dir=str(folder))
    listed = m.list_snapshots()
    assert [s.snapshot_id for s in listed] == ["snap_20261128_095629_5", "snap_20261128_095628_81930"]
    old = m.get_snapshot("snap_20261128_095628_81930")
    assert old.snapshot_type is SnapshotType.PRE_REPAIR
    assert old.timestamp == datetime(2026, 11, 28, 9, 56, 28, 81930)
    assert old.metadata == {"reason": "legacy"}
    assert old.verified is False
    layer = Layer()
    m.register_state_provider("graph", layer.capture, layer.restore)
    assert m.restore_snapshot("snap_20261128_095628_81930") is True
    assert layer.state == {"nodes": [1, 2]}
    report = m.get_last_restore()
    assert report["integrity"] == "legacy (no checksum)"
    assert m.get_snapshot("snap_20261128_095628_81930").state["note"] == "café"
    stats = m.get_statistics()
    assert stats["legacy_snapshots"] == 2 and stats["skipped_files"] == 0
    # New snapshots go next to them in the current format.
    sid = m.create_snapshot()
    assert m.get_latest_snapshot().snapshot_id == sid


def test_corrupt_and_foreign_files_are_skipped_and_reported(folder):
    good = SnapshotManager(snapshot_dir=str(folder)).create_snapshot(state_override={"ok": True})
    (folder / "snap_garbage.json").write_text("not json at all")
    (folder / "snap_foreign.json").write_text(json.dumps({"hello": "world"}))
    (folder / "snap_renamed.json").write_text(
        (folder / f"{good}.json").read_text()
    )  # its snapshot_id does not match its name
    (folder / "snap_empty.json").write_bytes(b"")
    (folder / "snap_badtype.json").write_text(json.dumps(
        {"snapshot_id": "snap_badtype", "snapshot_type": "weird", "timestamp": "2026-01-01T00:00:00", "state": {}}
    ))
    (folder / "notes.txt").write_text("ignored: not a snapshot name")

    m = SnapshotManager(snapshot_dir=str(folder))
    assert [s.snapshot_id for s in m.list_snapshots()] == [good]
    stats = m.get_statistics()
    expected = {"snap_garbage.json", "snap_foreign.json", "snap_renamed.json", "snap_empty.json", "snap_badtype.json"}
    assert stats["skipped_files"] == 5
    assert set(stats["skipped_file_names"]) == expected
    reasons = {s["file"]: s["reason"] for s in m.get_skipped_files()}
    assert "does not match" in reasons["snap_renamed.json"]
    assert "weird" in reasons["snap_badtype.json"]
    assert m.restore_snapshot(good) is True
    # Skipped files are left on disk for inspection, and retention does not count them.
    assert (folder / "snap_garbage.json").exists()


# ---------------------------------------------------------------------------------------------
# Listing, deleting, retention
# ---------------------------------------------------------------------------------------------


def test_list_filter_and_latest(manager):
    a = manager.create_snapshot("manual")
    b = manager.create_snapshot("pre_repair")
    c = manager.create_snapshot("manual")
    assert [s.snapshot_id for s in manager.list_snapshots()] == [c, b, a]
    assert [s.snapshot_id for s in manager.list_snapshots("manual")] == [c, a]
    assert [s.snapshot_id for s in manager.list_snapshots(SnapshotType.MANUAL)] == [c, a]
    assert [s.snapshot_id for s in manager.list_snapshots("")] == [c, b, a]
    assert manager.list_snapshots(SnapshotType.EMERGENCY) == []
    assert manager.get_latest_snapshot().snapshot_id == c
    assert manager.get_latest_snapshot(SnapshotType.PRE_REPAIR).snapshot_id == b
    assert manager.get_latest_snapshot("checkpoint") is None
    with pytest.raises(ValueError):
        manager.list_snapshots("bogus")


def test_delete_and_missing(manager, folder):
    sid = manager.create_snapshot()
    assert manager.delete_snapshot(sid) is True
    assert snap_files(folder) == []
    assert manager.delete_snapshot(sid) is False
    assert manager.get_snapshot(sid) is None
    assert manager.restore_snapshot(sid) is False
    report = manager.get_last_restore()
    assert report["found"] is False and "not found" in report["error"]
    stats = manager.get_statistics()
    assert (stats["total_deleted"], stats["failed_restores"]) == (1, 1)


def test_delete_works_for_a_snapshot_only_on_disk(folder):
    early = SnapshotManager(snapshot_dir=str(folder))
    sid = SnapshotManager(snapshot_dir=str(folder)).create_snapshot()
    assert early.get_snapshot(sid) is not None, "found on disk though made by another manager"
    late_loader = SnapshotManager(snapshot_dir=str(folder), auto_cleanup=False)
    os.unlink(folder / f"{sid}.json")
    sid2 = SnapshotManager(snapshot_dir=str(folder)).create_snapshot()
    assert late_loader.delete_snapshot(sid2) is True
    assert snap_files(folder) == []


def test_retention_is_enforced_on_disk(folder):
    m = SnapshotManager(snapshot_dir=str(folder), max_snapshots=3)
    ids = [m.create_snapshot(metadata={"i": i}) for i in range(5)]
    assert snap_files(folder) == [f"{i}.json" for i in ids[2:]]
    assert [s.snapshot_id for s in m.list_snapshots()] == ids[:1:-1]
    assert m.get_statistics()["total_deleted"] == 2

    # Start-up over a folder holding more than the cap deletes the oldest files.
    m2 = SnapshotManager(snapshot_dir=str(folder), max_snapshots=2)
    assert snap_files(folder) == [f"{i}.json" for i in ids[3:]]
    assert m2.get_statistics()["retention_deleted"] == 1

    # Without auto_cleanup nothing is deleted.
    m3 = SnapshotManager(snapshot_dir=str(folder), max_snapshots=1, auto_cleanup=False)
    m3.create_snapshot()
    assert len(snap_files(folder)) == 3


def test_retention_counts_snapshots_of_other_managers(folder):
    a = SnapshotManager(snapshot_dir=str(folder), max_snapshots=4)
    b = SnapshotManager(snapshot_dir=str(folder), max_snapshots=4)
    ids = []
    for _ in range(6):
        ids.append(a.create_snapshot())
        ids.append(b.create_snapshot())
    assert snap_files(folder) == sorted(f"{i}.json" for i in ids[-4:])
    assert {s.snapshot_id for s in a.list_snapshots()} <= set(ids[-5:])


def test_cleanup_all(manager, folder):
    for _ in range(3):
        manager.create_snapshot()
    other = SnapshotManager(snapshot_dir=str(folder)).create_snapshot()
    assert manager.cleanup_all() == 4
    assert snap_files(folder) == []
    assert manager.list_snapshots() == []
    assert manager.get_snapshot(other) is None
    assert manager.cleanup_all() == 0


def test_statistics(manager, folder):
    a = manager.create_snapshot(state_override={"x": 1})
    manager.create_snapshot(state_override={"y": 2})
    manager.restore_snapshot(a)
    manager.delete_snapshot(a)
    stats = manager.get_statistics()
    for key, value in {
        "total_created": 2, "total_restored": 1, "total_deleted": 1,
        "failed_creates": 0, "failed_restores": 0, "current_snapshots": 1,
    }.items():
        assert stats[key] == value, key
    assert stats["snapshot_dir"] == str(folder)
    assert stats["total_size_bytes"] == sum(os.path.getsize(folder / f) for f in snap_files(folder))
    assert stats["format_version"] == 2
    assert stats["fsync_policy"] == "never"
    stats["total_created"] = 99
    assert manager.get_statistics()["total_created"] == 2


# ---------------------------------------------------------------------------------------------
# Ids and paths
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    "", "nonexistent", "snap_", "../snap_x", "snap_../../etc/passwd", "snap_a/b", "snap_a\\b",
    "snap_a\x00b", "snap_a.b", "snap_" + "a" * 200, "/tmp/snap_x",
])
def test_invalid_ids_are_refused(manager, bad):
    for method in (manager.restore_snapshot, manager.delete_snapshot, manager.get_snapshot):
        with pytest.raises(ValueError, match="invalid snapshot id"):
            method(bad)


def test_non_string_ids_are_type_errors(manager):
    for method in (manager.restore_snapshot, manager.delete_snapshot, manager.get_snapshot):
        for bad in (None, 5, b"snap_x"):
            with pytest.raises(TypeError):
                method(bad)


def test_no_file_outside_the_folder_is_touched(tmp_path):
    inner = tmp_path / "inner"
    victim = tmp_path / "snap_victim.json"
    victim.write_text("keep me")
    m = SnapshotManager(snapshot_dir=str(inner))
    for bad in ("../snap_victim", "snap_../snap_victim"):
        with pytest.raises(ValueError):
            m.delete_snapshot(bad)
    assert victim.read_text() == "keep me"


# ---------------------------------------------------------------------------------------------
# Sharing a folder, durability policies, crashes
# ---------------------------------------------------------------------------------------------


def test_two_managers_in_one_folder_do_not_overwrite(folder):
    a = SnapshotManager(snapshot_dir=str(folder), max_snapshots=1000)
    b = SnapshotManager(snapshot_dir=str(folder), max_snapshots=1000)
    ids = []

    def work(m, tag):
        for i in range(40):
            ids.append((m.create_snapshot(metadata={"by": tag}, state_override={"by": tag, "i": i}), tag))

    threads = [threading.Thread(target=work, args=(a, "a")), threading.Thread(target=work, args=(b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({i for i, _ in ids}) == 80
    assert len(snap_files(folder)) == 80
    fresh = SnapshotManager(snapshot_dir=str(folder), max_snapshots=1000)
    for sid, tag in ids:
        assert fresh.get_snapshot(sid).state["by"] == tag


def test_two_processes_in_one_folder_do_not_overwrite(folder):
    script = textwrap.dedent(f"""
        from senti_os.core.faza30.snapshot_manager import SnapshotManager
        m = SnapshotManager(snapshot_dir={str(folder)!r}, max_snapshots=1000)
        for i in range(60):
            m.create_snapshot(state_override={{"i": i}})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(snap_files(folder)) == 120
    fresh = SnapshotManager(snapshot_dir=str(folder), max_snapshots=1000)
    assert len(fresh.list_snapshots()) == 120
    assert fresh.get_statistics()["skipped_files"] == 0


@pytest.mark.parametrize("policy", ["always", "batched", "never"])
def test_fsync_policies(folder, policy):
    m = SnapshotManager(snapshot_dir=str(folder), fsync=policy, fsync_interval_ms=10)
    ids = [m.create_snapshot(state_override={"i": i}) for i in range(3)]
    m.flush()
    stats = m.get_statistics()
    assert stats["fsync_policy"] == policy
    assert stats["fsync_pending"] == 0 and stats["fsync_errors"] == 0
    if policy == "batched":
        assert stats["fsync_file_syncs"] == 3 and stats["fsync_dir_syncs"] >= 1
    assert len(snap_files(folder)) == 3 and all(m.restore_snapshot(i) for i in ids)


def test_fsync_options_are_validated(folder):
    with pytest.raises(ValueError):
        SnapshotManager(snapshot_dir=str(folder), fsync="sometimes")
    with pytest.raises(ValueError):
        SnapshotManager(snapshot_dir=str(folder), fsync="batched", fsync_interval_ms=0)
    with pytest.raises(TypeError):
        SnapshotManager(str(folder), 50, True, "never")  # options are keyword-only


def test_kill_during_writes_leaves_no_half_written_snapshot(folder):
    script = textwrap.dedent(f"""
        import sys
        from senti_os.core.faza30.snapshot_manager import SnapshotManager
        m = SnapshotManager(snapshot_dir={str(folder)!r}, max_snapshots=5, fsync="never")
        state = {{"blob": ["x" * 1000 for _ in range(3000)]}}
        m.create_snapshot(state_override=state)
        print("ready", flush=True)
        while True:
            m.create_snapshot(state_override=state)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert child.stdout.readline().strip() == b"ready"
    time.sleep(0.3)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)

    m = SnapshotManager(snapshot_dir=str(folder), max_snapshots=5)
    listed = m.list_snapshots()
    assert listed, "at least the first snapshot is there"
    assert m.get_statistics()["skipped_files"] == 0
    for snap in listed:
        assert m.restore_snapshot(snap.snapshot_id) is True
    # The dead writer's temp file (if any) was removed at start-up.
    assert [f for f in all_files(folder) if not f.startswith("snap_")] == []


def test_io_errors_raise_snapshot_error(tmp_path):
    folder = tmp_path / "gone"
    m = SnapshotManager(snapshot_dir=str(folder))
    sid = m.create_snapshot(state_override={"v": 1})
    snap = m.get_snapshot(sid)
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    with pytest.raises(SnapshotError):
        m.create_snapshot(state_override={"v": 2})
    assert m.get_statistics()["failed_creates"] == 1
    with pytest.raises(SnapshotError):
        _ = snap.state
    assert m.restore_snapshot(sid) is False
    # A folder path that runs through a regular file cannot be created.
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SnapshotError):
        SnapshotManager(snapshot_dir=str(tmp_path / "file.txt" / "sub"))


def test_lone_surrogates_are_refused(manager, folder):
    with pytest.raises(ValueError):
        manager.create_snapshot(state_override={"bad": "\ud800"})
    assert all_files(folder) == []


try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None


if given is not None:
    json_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
    json_values = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | json_text,
        lambda children: st.lists(children, max_size=5)
        | st.tuples(children, children)
        | st.dictionaries(json_text, children, max_size=5),
        max_leaves=30,
    )

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(state=st.dictionaries(json_text, json_values, max_size=6))
    def test_any_json_state_round_trips_through_disk(folder, state):
        m = SnapshotManager(snapshot_dir=str(folder), fsync="never", max_snapshots=5)
        sid = m.create_snapshot(state_override=state)
        expected = json.loads(json.dumps(state))
        assert SnapshotManager(snapshot_dir=str(folder), max_snapshots=5).get_snapshot(sid).state == expected
