//! The audit journal: an append-only record of what the engine did (cycles, repairs,
//! rollbacks, escalations), kept in a folder of segment files.
//!
//! Each entry is one line: the CRC-32 of the JSON (8 hex digits), a space, and the JSON
//! object `{"seq":..,"ts":..,"kind":..,"data":{..}}`. A line is written with a single
//! `write` to a file opened for appending, so an entry is either whole or, if the process
//! died in the middle of that one call, a torn last line that the next open skips and
//! counts. `append` returns once the line is in the file: a process killed after that keeps
//! it (the operating system holds it); the fsync policy decides about power loss.
//!
//! Segments are `audit-<n>.jsonl`; a segment is closed at `max_segment_bytes` and the oldest
//! beyond `max_segments` are deleted, so the journal stays bounded however long it runs.

use crate::engine::enums::ValueEnum;
use crate::engine::snapshot_manager::{FsyncPolicy, DEFAULT_FSYNC_INTERVAL_MS};
use crate::engine::{EngineError, EngineResult};
use crate::value_enum;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

value_enum! {
    /// What an entry records.
    pub enum EntryKind {
        CYCLE = "cycle",
        REPAIR = "repair",
        ROLLBACK = "rollback",
        ESCALATION = "escalation",
        NOTE = "note",
    }
}

pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
pub const DEFAULT_MAX_SEGMENTS: usize = 8;
/// Entries kept in memory for `entries()`; older ones are only on disk.
pub const RECENT_ENTRIES: usize = 10_000;
/// Largest entry accepted (its JSON), so one entry cannot fill a segment.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

const SEGMENT_PREFIX: &str = "audit-";
const SEGMENT_SUFFIX: &str = ".jsonl";

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    /// Seconds since the Unix epoch (wall clock), when it was appended.
    pub ts: f64,
    pub kind: EntryKind,
    pub data: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub max_segment_bytes: u64,
    pub max_segments: usize,
    pub fsync: FsyncPolicy,
}

impl Options {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Options {
            dir: dir.into(),
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
            max_segments: DEFAULT_MAX_SEGMENTS,
            fsync: FsyncPolicy::Batched(Duration::from_millis(DEFAULT_FSYNC_INTERVAL_MS)),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub appended: u64,
    /// Entries read back when the journal was opened.
    pub loaded: u64,
    /// Lines skipped when opening: torn (a crash during their write) or altered.
    pub skipped_lines: u64,
    pub segments: usize,
    pub bytes: u64,
    pub last_seq: u64,
    pub append_errors: u64,
    pub last_error: Option<String>,
    pub fsyncs: u64,
}

struct Inner {
    file: Option<File>,
    segment: u64,
    segment_bytes: u64,
    next_seq: u64,
    recent: VecDeque<Entry>,
    stats: Stats,
    last_sync: Instant,
    unsynced: bool,
}

/// An open journal. Appends from several threads are serialised by a short lock.
pub struct AuditJournal {
    opts: Options,
    inner: Mutex<Inner>,
}

/// Seconds since the Unix epoch (the clock of entry timestamps).
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn segment_name(n: u64) -> String {
    format!("{SEGMENT_PREFIX}{n:08}{SEGMENT_SUFFIX}")
}

fn segment_number(name: &str) -> Option<u64> {
    name.strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?
        .parse()
        .ok()
}

/// One line of a segment, checked; None for a torn or altered line.
fn parse_line(line: &str) -> Option<Entry> {
    let (crc, json) = line.split_once(' ')?;
    if crc.len() != 8 || u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(json.as_bytes()) {
        return None;
    }
    let Value::Object(mut obj) = serde_json::from_str::<Value>(json).ok()? else {
        return None;
    };
    let seq = obj.get("seq")?.as_u64()?;
    let ts = obj.get("ts")?.as_f64()?;
    let kind = EntryKind::from_value(obj.get("kind")?.as_str()?)?;
    let Value::Object(data) = obj.remove("data")? else {
        return None;
    };
    Some(Entry {
        seq,
        ts,
        kind,
        data,
    })
}

fn encode(entry: &Entry) -> EngineResult<Vec<u8>> {
    let mut obj = Map::new();
    obj.insert("seq".into(), Value::from(entry.seq));
    obj.insert("ts".into(), Value::from(entry.ts));
    obj.insert("kind".into(), Value::from(entry.kind.value()));
    obj.insert("data".into(), Value::Object(entry.data.clone()));
    let json = serde_json::to_vec(&obj)
        .map_err(|e| EngineError::invalid(format!("entry cannot be stored: {e}")))?;
    if json.len() > MAX_ENTRY_BYTES {
        return Err(EngineError::invalid(format!(
            "audit entry is {} bytes of JSON; at most {MAX_ENTRY_BYTES} are accepted",
            json.len()
        )));
    }
    let mut line = format!("{:08x} ", crc32fast::hash(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    Ok(line)
}

/// The length of a segment whose last byte ends a line (or that is empty), else None.
fn whole_and_size(path: &Path) -> Option<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len == 0 {
        return Some(0);
    }
    file.seek(SeekFrom::End(-1)).ok()?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last).ok()?;
    (last[0] == b'\n').then_some(len)
}

impl AuditJournal {
    /// Opens (creating if needed) the journal in `opts.dir` and reads back its entries.
    pub fn open(opts: Options) -> EngineResult<Self> {
        if opts.max_segments == 0 || opts.max_segment_bytes < 4096 {
            return Err(EngineError::invalid(
                "an audit journal needs max_segments >= 1 and max_segment_bytes >= 4096",
            ));
        }
        fs::create_dir_all(&opts.dir).map_err(|e| {
            EngineError::io(
                format!("cannot create audit journal folder {}", opts.dir.display()),
                e,
            )
        })?;
        let mut segments = list_segments(&opts.dir)?;
        segments.sort_unstable();
        // Newest segments first, until the recent entries are complete: start-up reads what
        // the journal keeps in memory, not every segment on disk.
        let mut recent: VecDeque<Entry> = VecDeque::new();
        let mut stats = Stats::default();
        for n in segments.iter().rev() {
            if recent.len() >= RECENT_ENTRIES {
                break;
            }
            let Ok(file) = File::open(opts.dir.join(segment_name(*n))) else {
                continue;
            };
            let mut found = Vec::new();
            for line in BufReader::new(file).split(b'\n') {
                let Ok(line) = line else { break };
                match std::str::from_utf8(&line).ok().and_then(parse_line) {
                    Some(e) => found.push(e),
                    None if line.is_empty() => {}
                    None => stats.skipped_lines += 1,
                }
            }
            stats.loaded += found.len() as u64;
            for e in found.into_iter().rev() {
                recent.push_front(e);
            }
        }
        while recent.len() > RECENT_ENTRIES {
            recent.pop_front();
        }
        let last_seq = recent.iter().map(|e| e.seq).max().unwrap_or(0);
        // Appends go on in the newest segment when its last line is whole and there is room;
        // otherwise (a torn last line, or a full segment) in a new one, so a torn line stays
        // the last of its file. Quick restarts therefore do not each start a segment, which
        // would push the last hour out of a count-bounded journal.
        let (segment, segment_bytes) = match segments.last() {
            Some(&n) => match whole_and_size(&opts.dir.join(segment_name(n))) {
                Some(len) if len < opts.max_segment_bytes => (n, len),
                _ => (n + 1, 0),
            },
            None => (1, 0),
        };
        let journal = AuditJournal {
            opts,
            inner: Mutex::new(Inner {
                file: None,
                segment,
                segment_bytes,
                next_seq: last_seq + 1,
                recent,
                stats,
                last_sync: Instant::now(),
                unsynced: false,
            }),
        };
        {
            let mut inner = journal.inner.lock();
            inner.stats.last_seq = last_seq;
            journal.prune(&mut inner);
        }
        Ok(journal)
    }

    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }

    /// Appends an entry; returns it once its line is in the file.
    pub fn append(&self, kind: EntryKind, data: Map<String, Value>) -> EngineResult<Entry> {
        let mut inner = self.inner.lock();
        let entry = Entry {
            seq: inner.next_seq,
            ts: now_unix(),
            kind,
            data,
        };
        let line = encode(&entry)?;
        match self.write_line(&mut inner, &line) {
            Ok(()) => {
                inner.next_seq += 1;
                inner.stats.appended += 1;
                inner.stats.last_seq = entry.seq;
                inner.recent.push_back(entry.clone());
                if inner.recent.len() > RECENT_ENTRIES {
                    inner.recent.pop_front();
                }
                Ok(entry)
            }
            Err(e) => {
                inner.stats.append_errors += 1;
                inner.stats.last_error = Some(e.to_string());
                // The next append starts a fresh segment rather than trusting this file.
                inner.file = None;
                inner.segment += 1;
                inner.segment_bytes = 0;
                Err(e)
            }
        }
    }

    fn write_line(&self, inner: &mut Inner, line: &[u8]) -> EngineResult<()> {
        if inner.file.is_some()
            && inner.segment_bytes + line.len() as u64 > self.opts.max_segment_bytes
        {
            self.sync_now(inner);
            inner.file = None;
            inner.segment += 1;
            inner.segment_bytes = 0;
        }
        if inner.file.is_none() {
            let path = self.opts.dir.join(segment_name(inner.segment));
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| {
                    EngineError::io(format!("cannot open audit segment {}", path.display()), e)
                })?;
            inner.segment_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
            inner.file = Some(file);
            self.prune(inner);
        }
        let file = inner.file.as_mut().expect("opened above");
        // One write call per line (O_APPEND): a crash tears at most this line.
        file.write_all(line)
            .map_err(|e| EngineError::io("cannot append to the audit journal", e))?;
        inner.segment_bytes += line.len() as u64;
        inner.unsynced = true;
        match self.opts.fsync {
            FsyncPolicy::Always => self.sync_now(inner),
            FsyncPolicy::Batched(every) if inner.last_sync.elapsed() >= every => {
                self.sync_now(inner)
            }
            _ => {}
        }
        Ok(())
    }

    fn sync_now(&self, inner: &mut Inner) {
        if !inner.unsynced {
            return;
        }
        if let Some(f) = &inner.file {
            match f.sync_data() {
                Ok(()) => inner.stats.fsyncs += 1,
                Err(e) => inner.stats.last_error = Some(format!("fsync of the audit journal: {e}")),
            }
        }
        inner.unsynced = false;
        inner.last_sync = Instant::now();
    }

    /// Flushes appended entries to the disk now.
    pub fn flush(&self) {
        let mut inner = self.inner.lock();
        self.sync_now(&mut inner);
    }

    /// Deletes the oldest segments beyond `max_segments`.
    fn prune(&self, inner: &mut Inner) {
        let Ok(mut segments) = list_segments(&self.opts.dir) else {
            return;
        };
        segments.sort_unstable();
        let keep = self.opts.max_segments;
        if segments.len() > keep {
            for n in &segments[..segments.len() - keep] {
                if *n != inner.segment {
                    let _ = fs::remove_file(self.opts.dir.join(segment_name(*n)));
                }
            }
        }
    }

    /// The newest entries first, at most `limit`, optionally of one kind.
    pub fn entries(&self, limit: usize, kind: Option<EntryKind>) -> Vec<Entry> {
        let inner = self.inner.lock();
        inner
            .recent
            .iter()
            .rev()
            .filter(|e| kind.is_none_or(|k| e.kind == k))
            .take(limit)
            .cloned()
            .collect()
    }

    /// Entries appended at or after `since` (Unix seconds), oldest first.
    pub fn since(&self, since: f64, kind: Option<EntryKind>) -> Vec<Entry> {
        let inner = self.inner.lock();
        let start = inner.recent.partition_point(|e| e.ts < since);
        inner
            .recent
            .iter()
            .skip(start)
            .filter(|e| kind.is_none_or(|k| e.kind == k))
            .cloned()
            .collect()
    }

    pub fn stats(&self) -> Stats {
        let inner = self.inner.lock();
        let mut s = inner.stats.clone();
        if let Ok(segments) = list_segments(&self.opts.dir) {
            s.segments = segments.len();
            s.bytes = segments
                .iter()
                .filter_map(|n| fs::metadata(self.opts.dir.join(segment_name(*n))).ok())
                .map(|m| m.len())
                .sum();
        }
        s
    }
}

impl Drop for AuditJournal {
    fn drop(&mut self) {
        let mut inner = self.inner.lock();
        self.sync_now(&mut inner);
    }
}

fn list_segments(dir: &Path) -> EngineResult<Vec<u64>> {
    let read = fs::read_dir(dir).map_err(|e| {
        EngineError::io(
            format!("cannot list audit journal folder {}", dir.display()),
            e,
        )
    })?;
    Ok(read
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(segment_number))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn entries_survive_reopening_in_order_with_their_data() {
        let dir = tempfile::tempdir().unwrap();
        let j = AuditJournal::open(Options::new(dir.path())).unwrap();
        for i in 0..5 {
            j.append(
                EntryKind::REPAIR,
                data(json!({"target": format!("t{i}"), "succeeded": i % 2 == 0})),
            )
            .unwrap();
        }
        drop(j);
        let j = AuditJournal::open(Options::new(dir.path())).unwrap();
        let all = j.entries(100, None);
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![5, 4, 3, 2, 1]
        );
        assert_eq!(all[4].data["target"], "t0");
        // Sequence numbers go on after a restart.
        assert_eq!(j.append(EntryKind::CYCLE, Map::new()).unwrap().seq, 6);
        assert_eq!(j.stats().loaded, 5);
    }

    #[test]
    fn a_torn_or_altered_line_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let j = AuditJournal::open(Options::new(dir.path())).unwrap();
        j.append(EntryKind::ROLLBACK, data(json!({"cycle_id": "c1"})))
            .unwrap();
        j.append(EntryKind::ESCALATION, data(json!({"target": "a"})))
            .unwrap();
        drop(j);
        let seg = dir.path().join(segment_name(1));
        let mut text = fs::read_to_string(&seg).unwrap();
        text = text.replacen("\"c1\"", "\"c2\"", 1); // altered: its CRC no longer matches
        text.push_str("0000abcd {\"seq\":3,\"ts\":1.0,\"ki"); // torn: a crash mid-write
        fs::write(&seg, text).unwrap();
        let j = AuditJournal::open(Options::new(dir.path())).unwrap();
        let all = j.entries(10, None);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].kind, EntryKind::ESCALATION);
        assert_eq!(j.stats().skipped_lines, 2);
    }

    #[test]
    fn segments_rotate_and_the_oldest_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Options::new(dir.path());
        o.max_segment_bytes = 4096;
        o.max_segments = 3;
        o.fsync = FsyncPolicy::Never;
        let j = AuditJournal::open(o.clone()).unwrap();
        let pad = "x".repeat(500);
        for i in 0..100 {
            j.append(EntryKind::NOTE, data(json!({"i": i, "pad": pad})))
                .unwrap();
        }
        let st = j.stats();
        assert_eq!(st.segments, 3);
        assert!(st.bytes <= 3 * 4096, "{}", st.bytes);
        drop(j);
        // What remains on disk is the newest entries, whole.
        let j = AuditJournal::open(o).unwrap();
        let seqs: Vec<u64> = j.entries(1000, None).iter().map(|e| e.seq).collect();
        assert_eq!(seqs[0], 100);
        assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1));
        assert_eq!(j.stats().skipped_lines, 0);
    }

    #[test]
    fn quick_restarts_append_to_the_same_segment_and_keep_everything() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Options::new(dir.path());
        o.max_segments = 2;
        o.fsync = FsyncPolicy::Never;
        for i in 0..20 {
            let j = AuditJournal::open(o.clone()).unwrap();
            j.append(EntryKind::REPAIR, data(json!({"restart": i})))
                .unwrap();
        }
        let j = AuditJournal::open(o).unwrap();
        assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
        let seqs: Vec<u64> = j.entries(100, None).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=20).rev().collect::<Vec<u64>>());
    }

    #[test]
    fn after_a_torn_last_line_appends_start_a_new_segment() {
        let dir = tempfile::tempdir().unwrap();
        let j = AuditJournal::open(Options::new(dir.path())).unwrap();
        j.append(EntryKind::CYCLE, Map::new()).unwrap();
        drop(j);
        let seg = dir.path().join(segment_name(1));
        let mut text = fs::read_to_string(&seg).unwrap();
        text.push_str("0000abcd {\"seq\":2,\"ts\":1.0,\"ki");
        fs::write(&seg, text).unwrap();
        let j = AuditJournal::open(Options::new(dir.path())).unwrap();
        j.append(EntryKind::REPAIR, Map::new()).unwrap();
        drop(j);
        assert_eq!(list_segments(dir.path()).unwrap().len(), 2);
        let j = AuditJournal::open(Options::new(dir.path())).unwrap();
        let kinds: Vec<EntryKind> = j.entries(10, None).iter().map(|e| e.kind).collect();
        assert_eq!(kinds, vec![EntryKind::REPAIR, EntryKind::CYCLE]);
        assert_eq!(j.stats().skipped_lines, 1);
    }

    #[test]
    fn start_up_reads_the_newest_segments_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Options::new(dir.path());
        o.max_segment_bytes = 64 * 1024;
        o.max_segments = 100;
        o.fsync = FsyncPolicy::Never;
        let j = AuditJournal::open(o.clone()).unwrap();
        let total = RECENT_ENTRIES as u64 * 3;
        for _ in 0..total {
            j.append(EntryKind::NOTE, Map::new()).unwrap();
        }
        drop(j);
        let j = AuditJournal::open(o).unwrap();
        let st = j.stats();
        assert!(
            st.loaded >= RECENT_ENTRIES as u64 && st.loaded < total,
            "{}",
            st.loaded
        );
        assert_eq!(j.entries(1, None)[0].seq, total);
        assert_eq!(
            j.append(EntryKind::NOTE, Map::new()).unwrap().seq,
            total + 1
        );
    }

    #[test]
    fn since_and_kind_filter_the_recent_entries() {
        let dir = tempfile::tempdir().unwrap();
        let j = AuditJournal::open(Options::new(dir.path())).unwrap();
        j.append(EntryKind::REPAIR, Map::new()).unwrap();
        let mid = now_unix();
        std::thread::sleep(Duration::from_millis(2));
        j.append(EntryKind::CYCLE, Map::new()).unwrap();
        j.append(EntryKind::REPAIR, Map::new()).unwrap();
        assert_eq!(j.since(mid, None).len(), 2);
        assert_eq!(j.since(0.0, Some(EntryKind::REPAIR)).len(), 2);
        assert_eq!(j.entries(1, Some(EntryKind::REPAIR))[0].seq, 3);
    }

    #[test]
    fn bad_options_and_oversized_entries_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Options::new(dir.path());
        o.max_segments = 0;
        assert!(AuditJournal::open(o).is_err());
        let j = AuditJournal::open(Options::new(dir.path())).unwrap();
        let big = "y".repeat(MAX_ENTRY_BYTES);
        assert!(j
            .append(EntryKind::NOTE, data(json!({"big": big})))
            .is_err());
        assert_eq!(j.stats().appended, 0);
        assert!(j.append(EntryKind::NOTE, Map::new()).is_ok());
    }
}
