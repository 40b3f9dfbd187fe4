//! Durable snapshots of layer state.
//!
//! One snapshot is one file `<dir>/<snapshot_id>.json` holding a single compact JSON object:
//!
//! ```text
//! {"format_version":2,"snapshot_id":"snap_20261128_095628_081930_1a2b3c4d",
//!  "snapshot_type":"manual","timestamp":"2026-11-28T09:56:28.081930","metadata":{...},
//!  "state_bytes":123,"state_crc32":"89abcdef","state":{...}}
//! ```
//!
//! `state` comes last, so start-up reads only the header of each file (it stops parsing at the
//! `"state"` key) and loads a state only when it is restored or looked at. The CRC-32 of the
//! exact state bytes is checked on every load from disk.
//!
//! Writes go to a temp file (`.snap-tmp-<pid>-...part`, a name start-up never takes for a
//! snapshot), are flushed per the fsync policy, and are then published with a hard link, which
//! never replaces an existing file: a crash leaves either no snapshot or a complete one, and two
//! processes sharing a folder cannot overwrite each other's snapshots.
//!
//! Files written by the reference implementation (`indent=2`, no checksum, `state` before
//! `metadata`) still load; they are marked legacy and checked only for being well-formed.
//! Files that cannot be read are skipped and reported, never silently dropped.

use crate::engine::clock::{iso, local_from_micros, parse_iso, unique_micros};
use crate::engine::enums::ValueEnum;
use crate::engine::{EngineError, EngineResult};
use crate::value_enum;
use chrono::{Datelike, NaiveDateTime, Timelike};
use parking_lot::{Condvar, Mutex};
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

value_enum! {
    pub enum SnapshotType {
        PRE_REPAIR = "pre_repair",
        SCHEDULED = "scheduled",
        MANUAL = "manual",
        EMERGENCY = "emergency",
        CHECKPOINT = "checkpoint",
    }
}

/// The file format this engine writes. Reference files have no version and count as 1.
pub const FORMAT_VERSION: u64 = 2;
/// The reference keeps the newest 50 snapshots.
pub const DEFAULT_MAX_SNAPSHOTS: usize = 50;
/// Loaded states kept in memory for warm restores, by total bytes and by count.
pub const DEFAULT_STATE_CACHE_BYTES: usize = 64 * 1024 * 1024;
pub const STATE_CACHE_MAX_ENTRIES: usize = 8;
/// A state written by `create` is kept in the cache only up to this size. Keeping a large one
/// means the next create's buffer is fresh memory, which the kernel must fault in and zero:
/// on the 2-core VM that tripled the time of back-to-back 10 MB creates (60 ms against 18 ms).
/// A restore of a large state reads it back from the file, which the OS still caches.
pub const CACHE_ON_CREATE_MAX_BYTES: usize = 256 * 1024;
/// The batched fsync policy flushes recently written files this often by default.
pub const DEFAULT_FSYNC_INTERVAL_MS: u64 = 100;
/// Metadata is read for every snapshot at start-up, so it is kept small.
pub const MAX_METADATA_BYTES: usize = 256 * 1024;
/// Largest state accepted, so one call cannot exhaust memory or disk.
pub const MAX_STATE_BYTES: usize = 512 * 1024 * 1024;
/// A header (everything before `"state"`) longer than this is not one of ours.
pub const MAX_HEADER_BYTES: u64 = 1024 * 1024;
/// Longest snapshot id accepted.
pub const MAX_ID_LEN: usize = 100;
/// How many skipped files are remembered by name (the count keeps going).
pub const MAX_SKIPPED_LISTED: usize = 1000;
/// Below the cap, the folder is re-listed (to see other managers' snapshots) every this many
/// creates.
const FOLDER_RESCAN_EVERY: u64 = 16;
/// A temp file of a process that is still alive is removed only after this long.
const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);

const ID_PREFIX: &str = "snap_";
const FILE_SUFFIX: &str = ".json";
const TEMP_PREFIX: &str = ".snap-tmp-";
const TEMP_SUFFIX: &str = ".part";

// ------------------------------------------------------------------------------------------
// Ids
// ------------------------------------------------------------------------------------------

/// Checks that `id` is a snapshot id: `snap_` followed by letters, digits, `_` or `-`. Only
/// such ids are ever turned into paths, so no id can name a file outside the folder.
pub fn validate_id(id: &str) -> EngineResult<()> {
    let ok = id.len() > ID_PREFIX.len()
        && id.len() <= MAX_ID_LEN
        && id.starts_with(ID_PREFIX)
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        let shown: String = id.chars().take(MAX_ID_LEN).collect();
        Err(EngineError::invalid(format!(
            "invalid snapshot id {shown:?}: expected 'snap_' followed by letters, digits, '_' or '-' (at most {MAX_ID_LEN} characters)"
        )))
    }
}

/// Eight hex digits fixed for this process, so ids made by two processes in the same
/// microsecond still differ. Seeded from the OS through std's random hasher keys.
fn process_suffix() -> &'static str {
    static SUFFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SUFFIX.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        format!("{:08x}", h.finish() as u32)
    })
}

/// `snap_YYYYmmdd_HHMMSS_ffffff_<suffix>` for a unique instant: zero-padded, so ids sort in
/// creation order within a process.
fn new_id() -> (String, NaiveDateTime) {
    let ts = local_from_micros(unique_micros());
    let id = format!(
        "{ID_PREFIX}{:04}{:02}{:02}_{:02}{:02}{:02}_{:06}_{}",
        ts.year(),
        ts.month(),
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second(),
        ts.and_utc().timestamp_subsec_micros(),
        process_suffix()
    );
    (id, ts)
}

// ------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------

/// When written files reach the disk itself (a process crash never loses a published snapshot
/// whatever the policy; this is about power loss).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Flush the file before publishing it and the folder after: slowest, survives power loss.
    Always,
    /// A background thread flushes recently published files (and the folder) every interval.
    Batched(Duration),
    /// Leave it to the operating system.
    Never,
}

impl FsyncPolicy {
    pub fn parse(name: &str, interval_ms: u64) -> EngineResult<Self> {
        match name {
            "always" => Ok(FsyncPolicy::Always),
            "batched" => {
                if interval_ms == 0 || interval_ms > 60_000 {
                    return Err(EngineError::invalid(format!(
                        "fsync_interval_ms must be between 1 and 60000, got {interval_ms}"
                    )));
                }
                Ok(FsyncPolicy::Batched(Duration::from_millis(interval_ms)))
            }
            "never" => Ok(FsyncPolicy::Never),
            other => Err(EngineError::invalid(format!(
                "fsync must be 'always', 'batched' or 'never', got {other:?}"
            ))),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Batched(_) => "batched",
            FsyncPolicy::Never => "never",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub max_snapshots: usize,
    pub auto_cleanup: bool,
    pub fsync: FsyncPolicy,
    pub state_cache_bytes: usize,
    /// The folder is the per-user default: create it 0700 and refuse one owned by someone else.
    pub private_dir: bool,
}

impl Options {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Options {
            dir: dir.into(),
            max_snapshots: DEFAULT_MAX_SNAPSHOTS,
            auto_cleanup: true,
            fsync: FsyncPolicy::Batched(Duration::from_millis(DEFAULT_FSYNC_INTERVAL_MS)),
            state_cache_bytes: DEFAULT_STATE_CACHE_BYTES,
            private_dir: false,
        }
    }
}

/// The default folder below a temp directory: `<tmp>/senti_system-<uid>/snapshots`. Not the
/// home directory, so tests and tools never write into a user's real profile.
pub fn default_dir(temp_dir: &Path) -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    temp_dir
        .join(format!("senti_system-{uid}"))
        .join("snapshots")
}

// ------------------------------------------------------------------------------------------
// Public records
// ------------------------------------------------------------------------------------------

/// How a snapshot's content is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// Current format: CRC-32 of the state bytes.
    Crc32,
    /// A reference file: no checksum, only checked for being a well-formed snapshot.
    Legacy,
}

impl Integrity {
    pub fn name(self) -> &'static str {
        match self {
            Integrity::Crc32 => "crc32",
            Integrity::Legacy => "legacy (no checksum)",
        }
    }
}

/// What the index knows about a snapshot without loading its state.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub snapshot_id: String,
    pub snapshot_type: SnapshotType,
    pub timestamp: NaiveDateTime,
    pub metadata: Arc<Map<String, Value>>,
    pub file_path: PathBuf,
    pub size_bytes: u64,
    /// True once the content was checked (checksum, or full parse for legacy files).
    pub verified: bool,
    pub integrity: Integrity,
}

/// Verified state bytes (compact JSON of an object), shared without copying.
#[derive(Debug, Clone)]
pub struct StateBytes {
    buf: Arc<Vec<u8>>,
    range: Range<usize>,
}

impl StateBytes {
    fn whole(buf: Vec<u8>) -> Self {
        let len = buf.len();
        StateBytes {
            buf: Arc::new(buf),
            range: 0..len,
        }
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
    pub fn len(&self) -> usize {
        self.range.len()
    }
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }
    /// The top-level values named in `names` (None where absent), parsed without building the
    /// rest of the state.
    pub fn sections(&self, names: &[String]) -> EngineResult<Vec<Option<Value>>> {
        let top: HashMap<String, &serde_json::value::RawValue> =
            serde_json::from_slice(self.as_slice()).map_err(|e| {
                EngineError::Snapshot(format!("the stored state is not a JSON object: {e}"))
            })?;
        names
            .iter()
            .map(|name| {
                top.get(name)
                    .map(|raw| {
                        serde_json::from_str::<Value>(raw.get()).map_err(|e| {
                            EngineError::Snapshot(format!(
                                "section {name:?} of the stored state is not valid JSON: {e}"
                            ))
                        })
                    })
                    .transpose()
            })
            .collect()
    }

    /// The state as a JSON object.
    pub fn parse(&self) -> EngineResult<Map<String, Value>> {
        match serde_json::from_slice::<Value>(self.as_slice()) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(EngineError::Snapshot(
                "the stored state is not a JSON object".into(),
            )),
            Err(e) => Err(EngineError::Snapshot(format!(
                "the stored state is not valid JSON: {e}"
            ))),
        }
    }
}

/// A state loaded for a restore.
#[derive(Debug, Clone)]
pub struct LoadedState {
    pub info: SnapshotInfo,
    pub state: StateBytes,
    /// Served from memory because the file is unchanged since it was last checked.
    pub from_cache: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadFailureKind {
    NotFound,
    Corrupt,
    Io,
}

#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub kind: LoadFailureKind,
    pub message: String,
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<LoadFailure> for EngineError {
    fn from(f: LoadFailure) -> Self {
        EngineError::Snapshot(f.message)
    }
}

/// What the last restore did, so a caller can say honestly whether anything was restored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoreReport {
    pub snapshot_id: String,
    pub timestamp: Option<NaiveDateTime>,
    pub ok: bool,
    pub found: bool,
    pub verified: bool,
    pub integrity: Option<Integrity>,
    pub from_cache: bool,
    /// Sections handed to their provider's restore, which returned normally.
    pub restored: Vec<String>,
    /// Sections whose provider's restore raised, with the error.
    pub failed: Vec<(String, String)>,
    /// Registered providers with no section in the snapshot.
    pub missing: Vec<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FsyncStats {
    pub file_syncs: u64,
    pub dir_syncs: u64,
    pub pending: usize,
    pub errors: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub total_created: u64,
    pub total_restored: u64,
    pub total_deleted: u64,
    pub failed_creates: u64,
    pub failed_restores: u64,
    pub current_snapshots: usize,
    pub total_size_bytes: u64,
    pub snapshot_dir: PathBuf,
    pub format_version: u64,
    pub legacy_snapshots: usize,
    pub verified_snapshots: usize,
    pub checksum_failures: u64,
    pub skipped_files: u64,
    pub skipped_file_names: Vec<String>,
    pub stale_temp_removed: u64,
    pub retention_deleted: u64,
    pub fsync_policy: &'static str,
    pub fsync_interval_ms: u64,
    pub fsync: FsyncStats,
    pub cache_entries: usize,
    pub cache_bytes: usize,
    pub cache_limit_bytes: usize,
    /// Snapshots taken whose files the writer has not published yet.
    pub pending_writes: usize,
    pub last_write_error: Option<String>,
}

// ------------------------------------------------------------------------------------------
// Header parsing: stop at "state"
// ------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct RawHeader {
    format_version: Option<u64>,
    snapshot_id: Option<String>,
    snapshot_type: Option<String>,
    timestamp: Option<String>,
    metadata: Option<Map<String, Value>>,
    state_bytes: Option<u64>,
    state_crc32: Option<String>,
    saw_state: bool,
    /// Parsing stopped on purpose at the state key of a current-format file.
    stopped_at_state: bool,
    /// Bytes consumed when the state key had been read (just past its closing quote).
    state_key_end: u64,
}

/// Counts the bytes serde_json takes from the reader, and caps them until the limit is lifted
/// (a legacy file is streamed through whole; ours must have a short header).
struct CountingReader<R> {
    inner: R,
    count: Rc<Cell<u64>>,
    limit: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.limit.get().saturating_sub(self.count.get());
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "snapshot header is too long",
            ));
        }
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

struct HeaderSeed<'a> {
    header: &'a mut RawHeader,
    count: Rc<Cell<u64>>,
    limit: Rc<Cell<u64>>,
}

/// Marker message of the deliberate stop; the caller recognises it by `stopped_at_state`.
const STOP: &str = "stopped at state";

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for HeaderSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a snapshot object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let h = self.header;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format_version" => h.format_version = Some(map.next_value()?),
                "snapshot_id" => h.snapshot_id = Some(map.next_value()?),
                "snapshot_type" => h.snapshot_type = Some(map.next_value()?),
                "timestamp" => h.timestamp = Some(map.next_value()?),
                "metadata" => h.metadata = Some(map.next_value()?),
                "state_bytes" => h.state_bytes = Some(map.next_value()?),
                "state_crc32" => h.state_crc32 = Some(map.next_value()?),
                "state" => {
                    h.saw_state = true;
                    if h.format_version.is_some() {
                        h.state_key_end = self.count.get();
                        h.stopped_at_state = true;
                        return Err(A::Error::custom(STOP));
                    }
                    // A reference file: the state sits before the metadata, so stream past it.
                    self.limit.set(u64::MAX);
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads the header (everything before `"state"`) of a snapshot file from `reader`.
fn parse_header<R: Read>(reader: R) -> Result<RawHeader, String> {
    let count = Rc::new(Cell::new(0u64));
    let limit = Rc::new(Cell::new(MAX_HEADER_BYTES));
    let counting = CountingReader {
        inner: reader,
        count: count.clone(),
        limit: limit.clone(),
    };
    let mut de = serde_json::Deserializer::from_reader(counting);
    let mut header = RawHeader::default();
    let seed = HeaderSeed {
        header: &mut header,
        count,
        limit,
    };
    match seed.deserialize(&mut de) {
        Ok(()) => Ok(header),
        Err(_) if header.stopped_at_state => Ok(header),
        Err(e) => Err(format!("not a snapshot file: {e}")),
    }
}

/// A checked header.
#[derive(Debug, Clone)]
struct Header {
    snapshot_id: String,
    snapshot_type: SnapshotType,
    timestamp: NaiveDateTime,
    metadata: Map<String, Value>,
    integrity: Integrity,
    /// For current-format files: where the state starts, its length and CRC.
    state_start: u64,
    state_len: u64,
    state_crc: u32,
}

fn check_header(raw: RawHeader, expected_id: &str) -> Result<Header, String> {
    let id = raw.snapshot_id.ok_or("missing snapshot_id")?;
    if id != expected_id {
        return Err(format!("snapshot_id {id:?} does not match the file name"));
    }
    let type_value = raw.snapshot_type.ok_or("missing snapshot_type")?;
    let snapshot_type = SnapshotType::from_value(&type_value)
        .ok_or_else(|| format!("unknown snapshot_type {type_value:?}"))?;
    let ts_text = raw.timestamp.ok_or("missing timestamp")?;
    let timestamp = parse_iso(&ts_text).ok_or_else(|| format!("bad timestamp {ts_text:?}"))?;
    let metadata = raw.metadata.unwrap_or_default();
    match raw.format_version {
        None => {
            if !raw.saw_state {
                return Err("missing state".into());
            }
            Ok(Header {
                snapshot_id: id,
                snapshot_type,
                timestamp,
                metadata,
                integrity: Integrity::Legacy,
                state_start: 0,
                state_len: 0,
                state_crc: 0,
            })
        }
        Some(FORMAT_VERSION) => {
            if !raw.stopped_at_state {
                return Err("missing state".into());
            }
            let state_len = raw.state_bytes.ok_or("missing state_bytes")?;
            let crc_text = raw.state_crc32.ok_or("missing state_crc32")?;
            let state_crc = u32::from_str_radix(&crc_text, 16)
                .ok()
                .filter(|_| crc_text.len() == 8)
                .ok_or_else(|| format!("bad state_crc32 {crc_text:?}"))?;
            Ok(Header {
                snapshot_id: id,
                snapshot_type,
                timestamp,
                metadata,
                integrity: Integrity::Crc32,
                // Compact layout: `"state"` then `:` then the state bytes then the final `}`.
                state_start: raw.state_key_end + 1,
                state_len,
                state_crc,
            })
        }
        Some(v) => Err(format!("unsupported format_version {v}")),
    }
}

/// Identifies a file's content cheaply: a rewritten file changes size, mtime or inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileSig {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl FileSig {
    fn of(meta: &fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        FileSig {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Index, cache, syncer
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Entry {
    info: SnapshotInfo,
    header: Header,
    sig: FileSig,
}

impl Entry {
    /// Creation order: timestamp, then id (one process's ids sort by creation).
    fn order_key(&self) -> (NaiveDateTime, &str) {
        (self.info.timestamp, self.info.snapshot_id.as_str())
    }
}

#[derive(Default)]
struct StateCache {
    entries: VecDeque<(String, StateBytes, FileSig)>,
    bytes: usize,
}

impl StateCache {
    fn get(&mut self, id: &str) -> Option<(StateBytes, FileSig)> {
        let pos = self.entries.iter().position(|(k, _, _)| k == id)?;
        let item = self.entries.remove(pos)?;
        let out = (item.1.clone(), item.2);
        self.entries.push_back(item);
        Some(out)
    }
    fn put(&mut self, id: &str, state: StateBytes, sig: FileSig, limit: usize) {
        self.remove(id);
        if state.len() > limit {
            return;
        }
        self.bytes += state.len();
        self.entries.push_back((id.to_string(), state, sig));
        while self.bytes > limit || self.entries.len() > STATE_CACHE_MAX_ENTRIES {
            match self.entries.pop_front() {
                Some((_, s, _)) => self.bytes -= s.len(),
                None => break,
            }
        }
    }
    fn remove(&mut self, id: &str) {
        if let Some(pos) = self.entries.iter().position(|(k, _, _)| k == id) {
            if let Some((_, s, _)) = self.entries.remove(pos) {
                self.bytes -= s.len();
            }
        }
    }
    fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[derive(Default)]
struct Counters {
    total_created: u64,
    total_restored: u64,
    total_deleted: u64,
    failed_creates: u64,
    failed_restores: u64,
    checksum_failures: u64,
    skipped_total: u64,
    stale_temp_removed: u64,
    retention_deleted: u64,
    /// Files the writer thread published (paces its folder listings).
    published: u64,
}

struct Inner {
    max_snapshots: usize,
    auto_cleanup: bool,
    index: HashMap<String, Entry>,
    /// File name -> reason, for files that could not be used.
    skipped: HashMap<String, String>,
    skipped_order: VecDeque<String>,
    cache: StateCache,
    counters: Counters,
    last_restore: Option<RestoreReport>,
    /// The folder's mtime when this manager last listed it or last changed it itself.
    folder_mtime_seen: Option<SystemTime>,
    /// Snapshots taken with `create_deferred` whose files the writer has not published yet.
    pending: HashMap<String, PendingWrite>,
    last_write_error: Option<String>,
    /// Files retention pushed out to make room for snapshots still waiting for the writer.
    /// They are deleted only once a newer snapshot is on disk, so a crash never leaves the
    /// folder with fewer snapshots than before.
    doomed: HashSet<String>,
}

/// A listing of the snapshot folder, taken without the index lock.
struct Listing {
    mtime: Option<SystemTime>,
    taken_at: NaiveDateTime,
    names: Vec<String>,
}

/// The layout of a snapshot file being made.
#[derive(Clone, Copy)]
struct NewFile<'a> {
    id: &'a str,
    snapshot_type: SnapshotType,
    timestamp: NaiveDateTime,
    header_len: usize,
    state_len: usize,
    crc: u32,
}

/// A snapshot held in memory until the writer thread publishes its file.
struct PendingWrite {
    header: Vec<u8>,
    state: StateBytes,
    /// A thread is writing it now.
    in_flight: bool,
}

impl Inner {
    fn skip(&mut self, file: String, reason: String) {
        if let Some(known) = self.skipped.get_mut(&file) {
            *known = reason;
            return;
        }
        self.counters.skipped_total += 1;
        if self.skipped_order.len() >= MAX_SKIPPED_LISTED {
            if let Some(old) = self.skipped_order.pop_front() {
                self.skipped.remove(&old);
            }
        }
        self.skipped_order.push_back(file.clone());
        self.skipped.insert(file, reason);
    }
    fn unskip(&mut self, file: &str) {
        if self.skipped.remove(file).is_some() {
            self.skipped_order.retain(|f| f != file);
        }
    }
}

#[derive(Default)]
struct SyncQueue {
    pending: Vec<PathBuf>,
    stop: bool,
    busy: bool,
    stats: FsyncStats,
}

/// The background flusher of the batched policy.
struct Syncer {
    shared: Arc<(Mutex<SyncQueue>, Condvar)>,
    dir: PathBuf,
    interval: Duration,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Syncer {
    fn new(dir: PathBuf, interval: Duration) -> Self {
        Syncer {
            shared: Arc::new((Mutex::new(SyncQueue::default()), Condvar::new())),
            dir,
            interval,
            thread: Mutex::new(None),
        }
    }

    fn enqueue(&self, path: PathBuf) {
        {
            let mut q = self.shared.0.lock();
            q.pending.push(path);
            q.stats.pending = q.pending.len();
        }
        self.shared.1.notify_one();
        let mut thread = self.thread.lock();
        if thread.is_none() {
            let shared = self.shared.clone();
            let dir = self.dir.clone();
            let interval = self.interval;
            let spawned = std::thread::Builder::new()
                .name("faza30-fsync".into())
                .spawn(move || sync_loop(&shared, &dir, interval));
            match spawned {
                Ok(handle) => *thread = Some(handle),
                Err(e) => {
                    // No thread: flush right here rather than never.
                    drop(thread);
                    let mut q = self.shared.0.lock();
                    q.stats.errors += 1;
                    q.stats.last_error = Some(format!("could not start the fsync thread: {e}"));
                    drop(q);
                    self.flush_now();
                }
            }
        }
    }

    /// Flushes everything pending in the calling thread.
    fn flush_now(&self) {
        let batch = {
            let mut q = self.shared.0.lock();
            q.busy = true;
            std::mem::take(&mut q.pending)
        };
        let result = sync_batch(&batch, &self.dir);
        let mut q = self.shared.0.lock();
        q.busy = false;
        record_sync(&mut q, result);
        drop(q);
        self.shared.1.notify_all();
    }

    fn wait_idle(&self) {
        let mut q = self.shared.0.lock();
        while q.busy {
            self.shared.1.wait_for(&mut q, Duration::from_millis(50));
        }
    }

    fn stats(&self) -> FsyncStats {
        let q = self.shared.0.lock();
        let mut s = q.stats.clone();
        s.pending = q.pending.len();
        s
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.shared.0.lock().stop = true;
        self.shared.1.notify_all();
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
        // Anything queued after the thread left.
        if !self.shared.0.lock().pending.is_empty() {
            self.flush_now();
        }
    }
}

struct BatchResult {
    files: u64,
    dir: u64,
    errors: Vec<String>,
}

fn record_sync(q: &mut SyncQueue, r: BatchResult) {
    q.stats.file_syncs += r.files;
    q.stats.dir_syncs += r.dir;
    q.stats.errors += r.errors.len() as u64;
    if let Some(last) = r.errors.into_iter().last() {
        q.stats.last_error = Some(last);
    }
    q.stats.pending = q.pending.len();
}

fn sync_batch(batch: &[PathBuf], dir: &Path) -> BatchResult {
    let mut r = BatchResult {
        files: 0,
        dir: 0,
        errors: Vec::new(),
    };
    if batch.is_empty() {
        return r;
    }
    for path in batch {
        match File::open(path).and_then(|f| f.sync_data()) {
            Ok(()) => r.files += 1,
            // Deleted in the meantime: nothing to keep.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => r.errors.push(format!("fsync {}: {e}", path.display())),
        }
    }
    match sync_dir(dir) {
        Ok(()) => r.dir += 1,
        Err(e) => r.errors.push(format!("fsync {}: {e}", dir.display())),
    }
    r
}

fn sync_loop(shared: &(Mutex<SyncQueue>, Condvar), dir: &Path, interval: Duration) {
    lower_priority();
    let (lock, cond) = shared;
    let mut q = lock.lock();
    loop {
        while q.pending.is_empty() && !q.stop {
            cond.wait(&mut q);
        }
        if q.pending.is_empty() && q.stop {
            return;
        }
        // Let a burst of writes gather so one folder flush covers them all.
        if !q.stop {
            let deadline = Instant::now() + interval;
            while !q.stop && !cond.wait_until(&mut q, deadline).timed_out() {}
        }
        let batch = std::mem::take(&mut q.pending);
        q.busy = true;
        drop(q);
        let result = sync_batch(&batch, dir);
        q = lock.lock();
        q.busy = false;
        record_sync(&mut q, result);
        cond.notify_all();
    }
}

/// Snapshots waiting for the writer at most; beyond that `create_deferred` writes directly.
pub const MAX_PENDING_WRITES: usize = 256;
/// State bytes waiting for the writer at most.
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// After each file it publishes, the writer rests this many times as long as the file took,
/// and at least `WRITER_MIN_REST`: write-behind takes at most a fifth of a core and at most
/// 200 files a second of the file system's attention. File system work slows the
/// application's threads even from another core (measured: a healing cycle at 14,000 a
/// second ran 10-20% slower beside an unpaced writer); under a flood of snapshots the rest
/// lets retention drop the ones that would be pushed out anyway, unwritten. A lone snapshot
/// is written at once.
const WRITER_REST_FACTOR: u32 = 4;
const WRITER_MIN_REST: Duration = Duration::from_millis(5);
/// The longest rest, so a slow disk does not hold snapshots in memory for long.
const WRITER_MAX_REST: Duration = Duration::from_millis(20);

#[derive(Default)]
struct WriterQueue {
    /// Ids of snapshots to publish, oldest first.
    jobs: VecDeque<String>,
    busy: bool,
    started: bool,
    failed_to_start: bool,
    /// Tests hold the writer to look at snapshots that are not on disk yet.
    #[cfg(test)]
    paused: bool,
}

/// The write-behind thread of one manager. It holds only a weak reference, so a manager
/// nobody uses any more is dropped (its Drop publishes what is still waiting).
#[derive(Default)]
struct Writer {
    shared: Arc<(Mutex<WriterQueue>, Condvar)>,
}

impl Writer {
    /// Starts the thread on first use; false if it cannot run.
    fn start(&self, manager: &Arc<SnapshotManager>) -> bool {
        let mut q = self.shared.0.lock();
        if q.started {
            return true;
        }
        if q.failed_to_start {
            return false;
        }
        let weak = Arc::downgrade(manager);
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("faza30-snapshot-writer".into())
            .spawn(move || write_loop(&shared, &weak));
        match spawned {
            Ok(_) => {
                q.started = true;
                // Once per writer: interpreter exit publishes what it still holds.
                register_deferred(manager);
            }
            Err(_) => q.failed_to_start = true,
        }
        q.started
    }

    fn push(&self, id: String) {
        self.shared.0.lock().jobs.push_back(id);
        self.shared.1.notify_all();
    }

    /// Waits until the queue is empty and no job is running.
    fn wait_idle(&self) {
        let mut q = self.shared.0.lock();
        while q.started && (q.busy || !q.jobs.is_empty()) {
            self.shared.1.wait_for(&mut q, Duration::from_millis(50));
        }
    }
}

/// Background threads (writer, fsync) yield to the application's threads on a busy machine.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority have no memory effects; a failure only keeps the priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

fn write_loop(shared: &(Mutex<WriterQueue>, Condvar), manager: &std::sync::Weak<SnapshotManager>) {
    lower_priority();
    let (lock, cond) = shared;
    loop {
        let job = {
            let mut q = lock.lock();
            loop {
                #[cfg(test)]
                let held = q.paused;
                #[cfg(not(test))]
                let held = false;
                if let Some(job) = q.jobs.pop_front().filter(|_| !held) {
                    q.busy = true;
                    break job;
                }
                // Wake now and then to notice a manager that was dropped.
                if cond.wait_for(&mut q, Duration::from_secs(1)).timed_out()
                    && manager.strong_count() == 0
                {
                    q.started = false;
                    return;
                }
            }
        };
        let started = Instant::now();
        let wrote = manager.upgrade().is_some_and(|m| m.publish_pending(&job));
        let spent = started.elapsed();
        {
            let mut q = lock.lock();
            q.busy = false;
            cond.notify_all();
        }
        if wrote {
            let rest = (spent * WRITER_REST_FACTOR).max(WRITER_MIN_REST);
            std::thread::sleep(rest.min(WRITER_MAX_REST));
        }
    }
}

/// Managers that have used `create_deferred`, so an exiting process can publish what waits.
static DEFERRED: Mutex<Vec<std::sync::Weak<SnapshotManager>>> = Mutex::new(Vec::new());

fn register_deferred(manager: &Arc<SnapshotManager>) {
    let mut all = DEFERRED.lock();
    if all
        .iter()
        .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(manager)))
    {
        return;
    }
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(manager));
}

/// Publishes every deferred snapshot of every live manager; called when the process exits.
pub fn flush_all_deferred() {
    let managers: Vec<Arc<SnapshotManager>> =
        DEFERRED.lock().iter().filter_map(|w| w.upgrade()).collect();
    for m in managers {
        m.flush_deferred();
    }
}

impl Drop for SnapshotManager {
    fn drop(&mut self) {
        // Nothing taken may be lost because its manager went away.
        let ids: Vec<String> = self.inner.get_mut().pending.keys().cloned().collect();
        for id in ids {
            let _ = self.publish_pending(&id);
        }
    }
}

fn folder_mtime(dir: &Path) -> Option<SystemTime> {
    fs::metadata(dir).and_then(|m| m.modified()).ok()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

// ------------------------------------------------------------------------------------------
// The manager
// ------------------------------------------------------------------------------------------

/// Snapshot storage in one folder. All methods take `&self`; the index sits behind a short
/// lock and file writes happen outside it, so it can be shared between threads.
pub struct SnapshotManager {
    dir: PathBuf,
    fsync: FsyncPolicy,
    state_cache_bytes: usize,
    syncer: Option<Syncer>,
    inner: Mutex<Inner>,
    writer: Writer,
}

impl fmt::Debug for SnapshotManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotManager")
            .field("dir", &self.dir)
            .finish()
    }
}

impl SnapshotManager {
    /// Creates the folder if needed and reads the header of every snapshot in it.
    pub fn open(opts: Options) -> EngineResult<Self> {
        if opts.max_snapshots == 0 {
            return Err(EngineError::invalid("max_snapshots must be at least 1"));
        }
        let dir = opts.dir.clone();
        if opts.private_dir {
            ensure_private_dir(&dir)?;
        } else {
            fs::create_dir_all(&dir).map_err(|e| {
                EngineError::io(
                    format!("cannot create snapshot folder {}", dir.display()),
                    e,
                )
            })?;
        }
        if !dir.is_dir() {
            return Err(EngineError::Snapshot(format!(
                "{} is not a folder",
                dir.display()
            )));
        }
        let syncer = match opts.fsync {
            FsyncPolicy::Batched(interval) => Some(Syncer::new(dir.clone(), interval)),
            _ => None,
        };
        let manager = SnapshotManager {
            dir,
            fsync: opts.fsync,
            state_cache_bytes: opts.state_cache_bytes,
            syncer,
            inner: Mutex::new(Inner {
                max_snapshots: opts.max_snapshots,
                auto_cleanup: opts.auto_cleanup,
                index: HashMap::new(),
                skipped: HashMap::new(),
                skipped_order: VecDeque::new(),
                cache: StateCache::default(),
                counters: Counters::default(),
                last_restore: None,
                folder_mtime_seen: None,
                pending: HashMap::new(),
                last_write_error: None,
                doomed: HashSet::new(),
            }),
            writer: Writer::default(),
        };
        {
            let mut inner = manager.inner.lock();
            manager.refresh(&mut inner, true)?;
            if inner.auto_cleanup {
                manager.enforce_retention(&mut inner, false);
            }
        }
        Ok(manager)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.fsync
    }
    pub fn max_snapshots(&self) -> usize {
        self.inner.lock().max_snapshots
    }
    pub fn set_max_snapshots(&self, n: usize) -> EngineResult<()> {
        if n == 0 {
            return Err(EngineError::invalid("max_snapshots must be at least 1"));
        }
        self.inner.lock().max_snapshots = n;
        Ok(())
    }
    pub fn auto_cleanup(&self) -> bool {
        self.inner.lock().auto_cleanup
    }
    pub fn set_auto_cleanup(&self, on: bool) {
        self.inner.lock().auto_cleanup = on;
    }

    fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{FILE_SUFFIX}"))
    }

    /// Brings the index in line with the folder: reads headers of files it does not know,
    /// drops entries whose files are gone and, at start-up, removes stale temp files.
    fn refresh(&self, inner: &mut Inner, startup: bool) -> EngineResult<()> {
        let listing = self.list_folder()?;
        self.reconcile(inner, listing, startup);
        Ok(())
    }

    /// The folder's file names; needs no lock.
    fn list_folder(&self) -> EngineResult<Listing> {
        // Taken before listing, so a change made while listing shows up next time.
        let mtime = folder_mtime(&self.dir);
        let taken_at = local_from_micros(unique_micros());
        let entries = fs::read_dir(&self.dir).map_err(|e| {
            EngineError::io(
                format!("cannot list snapshot folder {}", self.dir.display()),
                e,
            )
        })?;
        let mut names = Vec::new();
        for item in entries.flatten() {
            if let Ok(name) = item.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(Listing {
            mtime,
            taken_at,
            names,
        })
    }

    fn reconcile(&self, inner: &mut Inner, listing: Listing, startup: bool) {
        inner.folder_mtime_seen = listing.mtime;
        let mut seen: Vec<String> = Vec::new();
        let mut seen_names: HashSet<String> = HashSet::new();
        for name in &listing.names {
            let name = name.as_str();
            let path = self.dir.join(name);
            if let Some(stem) = name
                .strip_prefix(ID_PREFIX)
                .and_then(|s| s.strip_suffix(FILE_SUFFIX))
            {
                let id = format!("{ID_PREFIX}{stem}");
                seen_names.insert(name.to_string());
                if validate_id(&id).is_err() {
                    inner.skip(
                        name.to_string(),
                        "the file name is not a valid snapshot id".into(),
                    );
                    continue;
                }
                seen.push(id.clone());
                if inner.index.contains_key(&id)
                    || inner.skipped.contains_key(name)
                    || inner.doomed.contains(&id)
                {
                    continue;
                }
                match read_entry(&path, &id) {
                    Ok(entry) => {
                        inner.index.insert(id, entry);
                    }
                    Err(f) if f.kind == LoadFailureKind::NotFound => {}
                    Err(f) => inner.skip(name.to_string(), f.message),
                }
            } else if startup
                && name.starts_with(TEMP_PREFIX)
                && name.ends_with(TEMP_SUFFIX)
                && temp_is_stale(name, &path)
                && fs::remove_file(&path).is_ok()
            {
                inner.counters.stale_temp_removed += 1;
            }
        }
        seen.sort_unstable();
        // A snapshot the writer has not published yet is not on disk, and not gone either; one
        // made after the listing was taken may not be in it.
        let Inner { index, pending, .. } = inner;
        index.retain(|id, e| {
            seen.binary_search(id).is_ok()
                || pending.contains_key(id)
                || e.info.timestamp >= listing.taken_at
        });
        // Skipped files that were deleted meanwhile are no longer worth reporting.
        if inner.skipped_order.iter().any(|f| !seen_names.contains(f)) {
            inner.skipped.retain(|f, _| seen_names.contains(f));
            inner.skipped_order.retain(|f| seen_names.contains(f));
        }
    }

    /// Deletes the oldest snapshots beyond `max_snapshots`. Skipped (unreadable) files are
    /// left alone for an operator to look at; they are reported, not counted. A doomed snapshot
    /// still waiting for the writer is simply never written. With `defer_unlink`, or while
    /// snapshots wait for the writer, files are handed to the writer thread instead of being
    /// deleted here: it deletes one for each newer file it publishes, so the folder never
    /// holds fewer than `max_snapshots` files because the newest ones are still in memory.
    fn enforce_retention(&self, inner: &mut Inner, defer_unlink: bool) -> Vec<String> {
        let max = inner.max_snapshots;
        if inner.index.len() <= max {
            return Vec::new();
        }
        let asked_to_defer = defer_unlink;
        let defer_unlink = defer_unlink || !inner.pending.is_empty();
        let excess = inner.index.len() - max;
        let doomed: Vec<String> = if excess == 1 {
            // The usual case (one new snapshot over the cap): the oldest, without sorting.
            inner
                .index
                .values()
                .min_by(|a, b| {
                    (a.info.timestamp, &a.info.snapshot_id)
                        .cmp(&(b.info.timestamp, &b.info.snapshot_id))
                })
                .map(|e| vec![e.info.snapshot_id.clone()])
                .unwrap_or_default()
        } else {
            let mut order: Vec<(NaiveDateTime, String)> = inner
                .index
                .values()
                .map(|e| (e.info.timestamp, e.info.snapshot_id.clone()))
                .collect();
            order.sort_unstable_by(|a, b| b.cmp(a));
            order.into_iter().skip(max).map(|(_, id)| id).collect()
        };
        let mut deleted = Vec::new();
        for id in doomed {
            if inner.pending.remove(&id).is_some() {
                // Not on disk yet; the writer finds it gone and skips it.
            } else if defer_unlink {
                inner.doomed.insert(id.clone());
            } else {
                match fs::remove_file(self.path_of(&id)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    // Could not delete: keep it indexed so the count stays honest.
                    Err(_) => continue,
                }
            }
            inner.index.remove(&id);
            inner.cache.remove(&id);
            inner.counters.total_deleted += 1;
            inner.counters.retention_deleted += 1;
            deleted.push(id);
        }
        if !asked_to_defer && inner.pending.is_empty() {
            // This pass dropped the last waiting snapshot: every snapshot kept is on disk.
            for id in std::mem::take(&mut inner.doomed) {
                let _ = fs::remove_file(self.path_of(&id));
            }
        }
        if !deleted.is_empty() && !defer_unlink && self.fsync == FsyncPolicy::Always {
            let _ = sync_dir(&self.dir);
        }
        deleted
    }

    /// Writes a snapshot. `state` must be the compact JSON of an object; the caller built it.
    pub fn create(
        &self,
        snapshot_type: SnapshotType,
        metadata: Map<String, Value>,
        state: Vec<u8>,
    ) -> EngineResult<SnapshotInfo> {
        let result = self.create_inner(snapshot_type, metadata, state);
        if result.is_err() {
            self.record_failed_create();
        }
        result
    }

    /// Checks the parts of a new snapshot and builds everything of its file before the state:
    /// (metadata, header maker, crc).
    fn prepare(metadata: &Map<String, Value>, state: &[u8]) -> EngineResult<(Vec<u8>, u32)> {
        if state.len() > MAX_STATE_BYTES {
            return Err(EngineError::invalid(format!(
                "state is {} bytes of JSON; at most {MAX_STATE_BYTES} are accepted",
                state.len()
            )));
        }
        if state.first() != Some(&b'{') || state.last() != Some(&b'}') {
            return Err(EngineError::invalid("state must be the JSON of an object"));
        }
        let metadata_json = serde_json::to_vec(metadata)
            .map_err(|e| EngineError::invalid(format!("metadata cannot be stored: {e}")))?;
        if metadata_json.len() > MAX_METADATA_BYTES {
            return Err(EngineError::invalid(format!(
                "metadata is {} bytes of JSON; at most {MAX_METADATA_BYTES} are accepted",
                metadata_json.len()
            )));
        }
        Ok((metadata_json, crc32fast::hash(state)))
    }

    /// Everything of the file before the state bytes.
    fn header_bytes(
        id: &str,
        snapshot_type: SnapshotType,
        timestamp: &NaiveDateTime,
        metadata_json: &[u8],
        state_len: usize,
        crc: u32,
    ) -> Vec<u8> {
        let mut header = Vec::with_capacity(256 + metadata_json.len());
        // Writing into a Vec cannot fail.
        let _ = write!(
            header,
            "{{\"format_version\":{FORMAT_VERSION},\"snapshot_id\":\"{id}\",\"snapshot_type\":\"{}\",\"timestamp\":\"{}\",\"metadata\":",
            snapshot_type.value(),
            iso(timestamp)
        );
        header.extend_from_slice(metadata_json);
        let _ = write!(
            header,
            ",\"state_bytes\":{state_len},\"state_crc32\":\"{crc:08x}\",\"state\":"
        );
        header
    }

    fn new_entry(&self, file: &NewFile<'_>, metadata: Map<String, Value>, sig: FileSig) -> Entry {
        let NewFile {
            id,
            snapshot_type,
            timestamp,
            header_len,
            state_len,
            crc,
        } = *file;
        let info = SnapshotInfo {
            snapshot_id: id.to_string(),
            snapshot_type,
            timestamp,
            metadata: Arc::new(metadata),
            file_path: self.path_of(id),
            size_bytes: (header_len + state_len + 1) as u64,
            verified: true,
            integrity: Integrity::Crc32,
        };
        Entry {
            info,
            header: Header {
                snapshot_id: id.to_string(),
                snapshot_type,
                timestamp,
                metadata: Map::new(),
                integrity: Integrity::Crc32,
                state_start: header_len as u64,
                state_len: state_len as u64,
                state_crc: crc,
            },
            sig,
        }
    }

    fn create_inner(
        &self,
        snapshot_type: SnapshotType,
        metadata: Map<String, Value>,
        state: Vec<u8>,
    ) -> EngineResult<SnapshotInfo> {
        let (metadata_json, crc) = Self::prepare(&metadata, &state)?;
        let folder_before = folder_mtime(&self.dir);
        // Write, then publish under a name nobody has; on a clash take a fresh id.
        let mut attempt = 0;
        let (id, timestamp, header_len, sig) = loop {
            attempt += 1;
            let (id, timestamp) = new_id();
            let header = Self::header_bytes(
                &id,
                snapshot_type,
                &timestamp,
                &metadata_json,
                state.len(),
                crc,
            );
            let path = self.path_of(&id);
            match self.write_new_file(&path, &[&header, &state, b"}"]) {
                Ok(sig) => break (id, timestamp, header.len(), sig),
                Err(WriteError::Exists) if attempt < 16 => continue,
                Err(WriteError::Exists) => {
                    return Err(EngineError::Snapshot(
                        "could not find a free snapshot file name".into(),
                    ))
                }
                Err(WriteError::Io(e)) => return Err(e),
            }
        };
        let file = NewFile {
            id: &id,
            snapshot_type,
            timestamp,
            header_len,
            state_len: state.len(),
            crc,
        };
        let entry = self.new_entry(&file, metadata, sig);
        let info = entry.info.clone();
        let mut inner = self.inner.lock();
        inner.index.insert(id.clone(), entry);
        if state.len() <= CACHE_ON_CREATE_MAX_BYTES {
            inner
                .cache
                .put(&id, StateBytes::whole(state), sig, self.state_cache_bytes);
        }
        inner.counters.total_created += 1;
        if inner.auto_cleanup {
            self.judge_cap_on_disk(&mut inner, folder_before);
            self.enforce_retention(&mut inner, false);
        }
        Ok(info)
    }

    /// Other managers may share the folder, so the cap is judged on what is on disk. Listing
    /// a folder costs per file, so it is re-listed only when the cap is reached, when its
    /// mtime shows a change that was not ours, and every few creates (coarse mtimes).
    fn judge_cap_on_disk(&self, inner: &mut Inner, folder_before: Option<SystemTime>) {
        let at_cap = inner.index.len() >= inner.max_snapshots;
        let touched_by_others = folder_before.is_none() || folder_before != inner.folder_mtime_seen;
        if at_cap || touched_by_others || inner.counters.total_created % FOLDER_RESCAN_EVERY == 0 {
            let _ = self.refresh(inner, false);
        } else {
            inner.folder_mtime_seen = folder_mtime(&self.dir);
        }
    }

    /// Takes a snapshot now and publishes its file from a background thread (write-behind), so
    /// the caller pays for building the header and the checksum, not for the file system. Until
    /// the file is published the snapshot is listed, loads and restores from memory; a process
    /// killed before that loses it whole (never half of it). Writes directly under the
    /// "always" fsync policy, when too much is waiting, or when no writer thread can start.
    pub fn create_deferred(
        self: &Arc<Self>,
        snapshot_type: SnapshotType,
        metadata: Map<String, Value>,
        state: Vec<u8>,
    ) -> EngineResult<SnapshotInfo> {
        let backlog = {
            let inner = self.inner.lock();
            inner.pending.len() >= MAX_PENDING_WRITES
                || inner.pending.values().map(|p| p.state.len()).sum::<usize>() + state.len()
                    > MAX_PENDING_BYTES
        };
        // "always" asks for the file on disk before the call returns.
        if backlog || self.fsync == FsyncPolicy::Always || !self.writer.start(self) {
            return self.create(snapshot_type, metadata, state);
        }
        let (metadata_json, crc) = match Self::prepare(&metadata, &state) {
            Ok(p) => p,
            Err(e) => {
                self.record_failed_create();
                return Err(e);
            }
        };
        let (id, timestamp) = new_id();
        let header = Self::header_bytes(
            &id,
            snapshot_type,
            &timestamp,
            &metadata_json,
            state.len(),
            crc,
        );
        let unwritten = FileSig {
            len: 0,
            modified: None,
            inode: 0,
        };
        let file = NewFile {
            id: &id,
            snapshot_type,
            timestamp,
            header_len: header.len(),
            state_len: state.len(),
            crc,
        };
        let entry = self.new_entry(&file, metadata, unwritten);
        let info = entry.info.clone();
        {
            let mut inner = self.inner.lock();
            inner.index.insert(id.clone(), entry);
            inner.pending.insert(
                id.clone(),
                PendingWrite {
                    header,
                    state: StateBytes::whole(state),
                    in_flight: false,
                },
            );
            inner.counters.total_created += 1;
            if inner.auto_cleanup {
                self.enforce_retention(&mut inner, true);
            }
        }
        if self.inner.lock().pending.contains_key(&id) {
            self.writer.push(id);
        }
        Ok(info)
    }

    /// The writer thread's half of `create_deferred`: publishes the file, unless the snapshot
    /// was deleted (or pushed out by retention) meanwhile. True if it touched the disk.
    fn publish_pending(&self, id: &str) -> bool {
        let (header, state) = match self.inner.lock().pending.get_mut(id) {
            Some(p) if !p.in_flight => {
                p.in_flight = true;
                (p.header.clone(), p.state.clone())
            }
            _ => return false,
        };
        let path = self.path_of(id);
        let written = self.write_new_file(&path, &[&header, state.as_slice(), b"}"]);
        let mut list_folder = false;
        let mut unlink: Vec<String> = Vec::new();
        let mut inner = self.inner.lock();
        let still_wanted = inner.pending.remove(id).is_some();
        match written {
            Ok(sig) if still_wanted => {
                if let Some(e) = inner.index.get_mut(id) {
                    e.sig = sig;
                    e.info.size_bytes = sig.len;
                }
                inner.cache.put(id, state, sig, self.state_cache_bytes);
                // One newer snapshot is on disk: one file pushed out for it may go.
                if let Some(oldest) = inner.doomed.iter().min().cloned() {
                    inner.doomed.remove(&oldest);
                    unlink.push(oldest);
                }
                if inner.auto_cleanup {
                    // The cap was applied in memory when the snapshot was taken; other
                    // managers' files are noticed by listing the folder (without the lock)
                    // every few writes, which keeps the writer to the file's own system calls.
                    inner.counters.published += 1;
                    list_folder = inner.counters.published % FOLDER_RESCAN_EVERY == 0;
                }
            }
            Ok(_) => {
                // Deleted while it was being written.
                let _ = fs::remove_file(&path);
            }
            Err(e) => {
                if still_wanted {
                    inner.index.remove(id);
                    inner.counters.total_created = inner.counters.total_created.saturating_sub(1);
                    inner.counters.failed_creates += 1;
                    // Its place goes back to the newest file pushed out for it.
                    if let Some(newest) = inner.doomed.iter().max().cloned() {
                        inner.doomed.remove(&newest);
                        if let Ok(entry) = read_entry(&self.path_of(&newest), &newest) {
                            inner.index.insert(newest, entry);
                            inner.counters.total_deleted =
                                inner.counters.total_deleted.saturating_sub(1);
                            inner.counters.retention_deleted =
                                inner.counters.retention_deleted.saturating_sub(1);
                        }
                    }
                }
                let text = match e {
                    WriteError::Exists => format!("{} already exists", path.display()),
                    WriteError::Io(e) => e.to_string(),
                };
                inner.last_write_error = Some(text);
            }
        }
        if inner.pending.is_empty() {
            // Nothing is waiting: every file still pushed out is beyond the cap.
            unlink.extend(inner.doomed.drain());
        }
        drop(inner);
        for id in unlink {
            self.unlink_deferred(&id);
        }
        if list_folder {
            if let Ok(listing) = self.list_folder() {
                let mut inner = self.inner.lock();
                self.reconcile(&mut inner, listing, false);
                self.enforce_retention(&mut inner, false);
            }
        }
        true
    }

    fn unlink_deferred(&self, id: &str) {
        let _ = fs::remove_file(self.path_of(id));
    }

    /// Publishes every snapshot still waiting for the writer, in the calling thread.
    pub fn flush_deferred(&self) {
        loop {
            let (next, waiting) = {
                let inner = self.inner.lock();
                let next = inner
                    .pending
                    .iter()
                    .filter(|(_, p)| !p.in_flight)
                    .map(|(id, _)| id)
                    .min()
                    .cloned();
                (next, !inner.pending.is_empty())
            };
            match next {
                Some(id) => {
                    self.publish_pending(&id);
                }
                // The writer thread holds the rest.
                None if waiting => std::thread::sleep(Duration::from_millis(1)),
                None => break,
            }
        }
        self.writer.wait_idle();
        let doomed: Vec<String> = {
            let mut inner = self.inner.lock();
            if inner.pending.is_empty() {
                inner.doomed.drain().collect()
            } else {
                Vec::new()
            }
        };
        for id in doomed {
            self.unlink_deferred(&id);
        }
    }

    /// Writes `parts` to a temp file, flushes per policy and links it to `path`.
    fn write_new_file(&self, path: &Path, parts: &[&[u8]]) -> Result<FileSig, WriteError> {
        // Linux: an unnamed file in the folder, linked under its name once complete. Nothing
        // half-written ever has a name, and a killed process leaves no temp file behind.
        #[cfg(target_os = "linux")]
        let sig = match self.write_unnamed(path, parts) {
            Some(result) => result?,
            None => self.write_named_temp(path, parts)?,
        };
        #[cfg(not(target_os = "linux"))]
        let sig = self.write_named_temp(path, parts)?;
        self.after_publish(path)?;
        Ok(sig)
    }

    /// Writes `parts` with as few system calls as is cheap: small files in one write.
    fn write_parts(&self, file: &mut File, parts: &[&[u8]]) -> io::Result<FileSig> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total <= 256 * 1024 {
            let mut buf = Vec::with_capacity(total);
            for part in parts {
                buf.extend_from_slice(part);
            }
            file.write_all(&buf)?;
        } else {
            for part in parts {
                file.write_all(part)?;
            }
        }
        if self.fsync == FsyncPolicy::Always {
            file.sync_data()?;
        }
        Ok(FileSig::of(&file.metadata()?))
    }

    /// The O_TMPFILE path; None when the file system or kernel does not offer it.
    #[cfg(target_os = "linux")]
    fn write_unnamed(&self, path: &Path, parts: &[&[u8]]) -> Option<Result<FileSig, WriteError>> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let mut file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            // As for any new file: the umask decides.
            .mode(0o666)
            .open(&self.dir)
            .ok()?;
        let sig = match self.write_parts(&mut file, parts) {
            Ok(sig) => sig,
            Err(e) => {
                return Some(Err(WriteError::Io(EngineError::io(
                    format!("cannot write a snapshot in {}", self.dir.display()),
                    e,
                ))))
            }
        };
        // linkat never replaces an existing name.
        let proc_path = format!("/proc/self/fd/{}\0", file.as_raw_fd());
        let to = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
            .ok()?;
        // SAFETY: both paths are NUL-terminated and outlive the call.
        let rc = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                proc_path.as_ptr().cast(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if rc == 0 {
            return Some(Ok(sig));
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::AlreadyExists => Some(Err(WriteError::Exists)),
            // No /proc, or a file system that cannot link unnamed files: the named path.
            _ => None,
        }
    }

    /// The portable path: a named temp file, published with a hard link (or a rename that does
    /// not replace), then removed.
    fn write_named_temp(&self, path: &Path, parts: &[&[u8]]) -> Result<FileSig, WriteError> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.dir.join(format!(
            "{TEMP_PREFIX}{}-{}-{n}{TEMP_SUFFIX}",
            std::process::id(),
            process_suffix()
        ));
        let io_err = |what: &str, e: io::Error| {
            WriteError::Io(EngineError::io(format!("{what} {}", tmp.display()), e))
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io_err("cannot create", e))?;
        let written = self.write_parts(&mut file, parts);
        drop(file);
        let sig = match written {
            Ok(sig) => sig,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(io_err("cannot write", e));
            }
        };
        let published = publish_no_replace(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match published {
            Ok(()) => Ok(sig),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(WriteError::Exists),
            Err(e) => Err(WriteError::Io(EngineError::io(
                format!("cannot publish {}", path.display()),
                e,
            ))),
        }
    }

    /// Flushes per policy once a file is published.
    fn after_publish(&self, path: &Path) -> Result<(), WriteError> {
        match self.fsync {
            FsyncPolicy::Always => {
                sync_dir(&self.dir).map_err(|e| {
                    WriteError::Io(EngineError::io(
                        format!("cannot fsync folder {}", self.dir.display()),
                        e,
                    ))
                })?;
            }
            FsyncPolicy::Batched(_) => {
                if let Some(s) = &self.syncer {
                    s.enqueue(path.to_path_buf());
                }
            }
            FsyncPolicy::Never => {}
        }
        Ok(())
    }

    pub fn record_failed_create(&self) {
        self.inner.lock().counters.failed_creates += 1;
    }

    /// The index entry for `id`, reading its header from disk if this manager has not seen it.
    fn entry(&self, id: &str) -> EngineResult<Option<Entry>> {
        validate_id(id)?;
        let file = format!("{id}{FILE_SUFFIX}");
        {
            let inner = self.inner.lock();
            if let Some(e) = inner.index.get(id) {
                return Ok(Some(e.clone()));
            }
            // Known to be unusable: stays out until the file is deleted or the manager restarts.
            if inner.skipped.contains_key(&file) {
                return Ok(None);
            }
        }
        let path = self.path_of(id);
        match read_entry(&path, id) {
            Ok(entry) => {
                self.inner
                    .lock()
                    .index
                    .insert(id.to_string(), entry.clone());
                Ok(Some(entry))
            }
            Err(f) if f.kind == LoadFailureKind::NotFound => Ok(None),
            Err(f) => {
                self.inner.lock().skip(file, f.message);
                Ok(None)
            }
        }
    }

    /// The snapshot, from the index or (if another manager wrote it) from its file header.
    pub fn get(&self, id: &str) -> EngineResult<Option<SnapshotInfo>> {
        Ok(self.entry(id)?.map(|e| e.info))
    }

    /// Loads and checks a snapshot's state. A failed check drops the snapshot from the index
    /// and reports the file as skipped; the file stays for inspection.
    pub fn load_state(&self, id: &str) -> EngineResult<Result<LoadedState, LoadFailure>> {
        let Some(entry) = self.entry(id)? else {
            return Ok(Err(LoadFailure {
                kind: LoadFailureKind::NotFound,
                message: format!("snapshot {id} not found in {}", self.dir.display()),
            }));
        };
        if let Some(p) = self.inner.lock().pending.get(id) {
            // Taken and checked in this process; its file is still being written.
            return Ok(Ok(LoadedState {
                info: entry.info,
                state: p.state.clone(),
                from_cache: true,
            }));
        }
        let path = entry.info.file_path.clone();
        let current = fs::metadata(&path).map(|m| FileSig::of(&m));
        if let Ok(sig) = current {
            let cached = self.inner.lock().cache.get(id);
            if let Some((state, cached_sig)) = cached {
                if cached_sig == sig {
                    let mut info = entry.info.clone();
                    info.verified = true;
                    return Ok(Ok(LoadedState {
                        info,
                        state,
                        from_cache: true,
                    }));
                }
            }
        }
        let loaded = match current {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(LoadFailure {
                kind: LoadFailureKind::NotFound,
                message: format!("snapshot file {} no longer exists", path.display()),
            }),
            _ => load_file(&path, &entry.header),
        };
        let mut inner = self.inner.lock();
        match loaded {
            Ok((state, sig)) => {
                let mut info = entry.info.clone();
                info.verified = true;
                info.size_bytes = sig.len;
                if let Some(e) = inner.index.get_mut(id) {
                    e.info.verified = true;
                    e.info.size_bytes = sig.len;
                    e.sig = sig;
                }
                inner
                    .cache
                    .put(id, state.clone(), sig, self.state_cache_bytes);
                Ok(Ok(LoadedState {
                    info,
                    state,
                    from_cache: false,
                }))
            }
            Err(f) => {
                inner.index.remove(id);
                inner.cache.remove(id);
                match f.kind {
                    LoadFailureKind::Corrupt => {
                        inner.counters.checksum_failures += 1;
                        inner.skip(format!("{id}{FILE_SUFFIX}"), f.message.clone());
                    }
                    LoadFailureKind::Io => {
                        inner.skip(format!("{id}{FILE_SUFFIX}"), f.message.clone())
                    }
                    LoadFailureKind::NotFound => {}
                }
                Ok(Err(f))
            }
        }
    }

    /// Records the outcome of a restore (the caller ran the providers).
    pub fn finish_restore(&self, report: RestoreReport) {
        let mut inner = self.inner.lock();
        if report.ok {
            inner.counters.total_restored += 1;
        } else {
            inner.counters.failed_restores += 1;
        }
        inner.last_restore = Some(report);
    }

    pub fn last_restore(&self) -> Option<RestoreReport> {
        self.inner.lock().last_restore.clone()
    }

    /// Deletes a snapshot's file, whether or not this manager had it indexed.
    pub fn delete(&self, id: &str) -> EngineResult<bool> {
        validate_id(id)?;
        let path = self.path_of(id);
        let mut inner = self.inner.lock();
        let known = inner.index.remove(id).is_some();
        inner.cache.remove(id);
        // Pushed out by retention already: deleting the file is all that is left to do.
        if inner.doomed.remove(id) {
            let _ = fs::remove_file(&path);
            return Ok(true);
        }
        // Not written yet: the writer skips it (or deletes the file it is writing).
        inner.pending.remove(id);
        let removed = match fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                return Err(EngineError::io(
                    format!("cannot delete {}", path.display()),
                    e,
                ));
            }
        };
        if removed {
            inner.unskip(&format!("{id}{FILE_SUFFIX}"));
            if self.fsync == FsyncPolicy::Always {
                let _ = sync_dir(&self.dir);
            }
        }
        if known || removed {
            inner.counters.total_deleted += 1;
        }
        Ok(known || removed)
    }

    /// Newest first, optionally of one type.
    pub fn list(&self, filter: Option<SnapshotType>) -> Vec<SnapshotInfo> {
        let inner = self.inner.lock();
        let mut entries: Vec<&Entry> = inner
            .index
            .values()
            .filter(|e| filter.is_none_or(|t| e.info.snapshot_type == t))
            .collect();
        entries.sort_unstable_by(|a, b| b.order_key().cmp(&a.order_key()));
        entries.into_iter().map(|e| e.info.clone()).collect()
    }

    pub fn latest(&self, filter: Option<SnapshotType>) -> Option<SnapshotInfo> {
        let inner = self.inner.lock();
        inner
            .index
            .values()
            .filter(|e| filter.is_none_or(|t| e.info.snapshot_type == t))
            .max_by(|a, b| a.order_key().cmp(&b.order_key()))
            .map(|e| e.info.clone())
    }

    /// Deletes every snapshot file in the folder (other managers' included; unreadable ones
    /// too) and returns how many were deleted.
    pub fn cleanup_all(&self) -> EngineResult<usize> {
        let mut inner = self.inner.lock();
        self.refresh(&mut inner, false)?;
        let mut ids: Vec<String> = inner.index.keys().cloned().collect();
        for file in inner.skipped_order.iter() {
            if let Some(id) = file.strip_suffix(FILE_SUFFIX) {
                if validate_id(id).is_ok() && !ids.iter().any(|i| i == id) {
                    ids.push(id.to_string());
                }
            }
        }
        let mut count = 0;
        for id in ids {
            match fs::remove_file(self.path_of(&id)) {
                Ok(()) => {
                    count += 1;
                    inner.index.remove(&id);
                    inner.unskip(&format!("{id}{FILE_SUFFIX}"));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    inner.index.remove(&id);
                }
                Err(_) => {}
            }
        }
        count += inner.pending.len();
        let Inner { index, pending, .. } = &mut *inner;
        index.retain(|id, _| !pending.contains_key(id));
        pending.clear();
        // Files retention already pushed out (and counted) go too.
        for id in std::mem::take(&mut inner.doomed) {
            let _ = fs::remove_file(self.path_of(&id));
        }
        inner.cache.clear();
        inner.counters.total_deleted += count as u64;
        if count > 0 && self.fsync == FsyncPolicy::Always {
            let _ = sync_dir(&self.dir);
        }
        Ok(count)
    }

    /// Files that could not be used, with the reason (newest last, at most
    /// `MAX_SKIPPED_LISTED`).
    pub fn skipped(&self) -> Vec<SkippedFile> {
        let inner = self.inner.lock();
        inner
            .skipped_order
            .iter()
            .map(|f| SkippedFile {
                file: f.clone(),
                reason: inner.skipped.get(f).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Flushes files the batched policy has not flushed yet, now, in this thread.
    pub fn flush(&self) {
        self.flush_deferred();
        if let Some(s) = &self.syncer {
            s.wait_idle();
            s.flush_now();
        }
    }

    pub fn stats(&self) -> Stats {
        let fsync = self.syncer.as_ref().map(|s| s.stats()).unwrap_or_default();
        let inner = self.inner.lock();
        let c = &inner.counters;
        Stats {
            total_created: c.total_created,
            total_restored: c.total_restored,
            total_deleted: c.total_deleted,
            failed_creates: c.failed_creates,
            failed_restores: c.failed_restores,
            current_snapshots: inner.index.len(),
            total_size_bytes: inner.index.values().map(|e| e.info.size_bytes).sum(),
            snapshot_dir: self.dir.clone(),
            format_version: FORMAT_VERSION,
            legacy_snapshots: inner
                .index
                .values()
                .filter(|e| e.info.integrity == Integrity::Legacy)
                .count(),
            verified_snapshots: inner.index.values().filter(|e| e.info.verified).count(),
            checksum_failures: c.checksum_failures,
            skipped_files: c.skipped_total,
            skipped_file_names: inner.skipped_order.iter().cloned().collect(),
            stale_temp_removed: c.stale_temp_removed,
            retention_deleted: c.retention_deleted,
            fsync_policy: self.fsync.name(),
            fsync_interval_ms: match self.fsync {
                FsyncPolicy::Batched(d) => d.as_millis() as u64,
                _ => 0,
            },
            fsync,
            cache_entries: inner.cache.entries.len(),
            cache_bytes: inner.cache.bytes,
            cache_limit_bytes: self.state_cache_bytes,
            pending_writes: inner.pending.len(),
            last_write_error: inner.last_write_error.clone(),
        }
    }
}

#[derive(Debug)]
enum WriteError {
    Exists,
    Io(EngineError),
}

/// Makes `tmp` visible as `path` unless `path` already exists. A hard link never replaces;
/// where links are not supported, Linux's rename with RENAME_NOREPLACE does the same.
fn publish_no_replace(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(link_err) => rename_no_replace(tmp, path).map_err(|_| link_err),
    }
}

#[cfg(target_os = "linux")]
fn rename_no_replace(tmp: &Path, path: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let from = CString::new(tmp.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let to = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: both paths are valid NUL-terminated strings that live across the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_no_replace(_tmp: &Path, _path: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no rename without replace on this platform",
    ))
}

/// Reads a file's header into an index entry.
fn read_entry(path: &Path, id: &str) -> Result<Entry, LoadFailure> {
    let file = File::open(path).map_err(|e| io_failure(path, e))?;
    let meta = file.metadata().map_err(|e| io_failure(path, e))?;
    let raw = parse_header(BufReader::with_capacity(16 * 1024, file)).map_err(|m| LoadFailure {
        kind: LoadFailureKind::Corrupt,
        message: m,
    })?;
    let header = check_header(raw, id).map_err(|m| LoadFailure {
        kind: LoadFailureKind::Corrupt,
        message: m,
    })?;
    let sig = FileSig::of(&meta);
    if header.integrity == Integrity::Crc32 && header.state_start + header.state_len + 1 != sig.len
    {
        return Err(LoadFailure {
            kind: LoadFailureKind::Corrupt,
            message: format!(
                "file is {} bytes, its header announces {} (truncated or altered)",
                sig.len,
                header.state_start + header.state_len + 1
            ),
        });
    }
    let info = SnapshotInfo {
        snapshot_id: header.snapshot_id.clone(),
        snapshot_type: header.snapshot_type,
        timestamp: header.timestamp,
        metadata: Arc::new(header.metadata.clone()),
        file_path: path.to_path_buf(),
        size_bytes: sig.len,
        verified: false,
        integrity: header.integrity,
    };
    let mut header = header;
    header.metadata = Map::new(); // kept once, in `info`
    Ok(Entry { info, header, sig })
}

fn io_failure(path: &Path, e: io::Error) -> LoadFailure {
    let kind = if e.kind() == io::ErrorKind::NotFound {
        LoadFailureKind::NotFound
    } else {
        LoadFailureKind::Io
    };
    LoadFailure {
        kind,
        message: format!("cannot read {}: {e}", path.display()),
    }
}

fn corrupt(msg: impl Into<String>) -> LoadFailure {
    LoadFailure {
        kind: LoadFailureKind::Corrupt,
        message: msg.into(),
    }
}

/// Reads a whole snapshot file and checks it against the header seen at start-up.
fn load_file(path: &Path, expected: &Header) -> Result<(StateBytes, FileSig), LoadFailure> {
    let mut file = File::open(path).map_err(|e| io_failure(path, e))?;
    let meta = file.metadata().map_err(|e| io_failure(path, e))?;
    let sig = FileSig::of(&meta);
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut buf)
        .map_err(|e| io_failure(path, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match expected.integrity {
        Integrity::Crc32 => {
            let raw = parse_header(buf.as_slice()).map_err(|m| corrupt(format!("{name}: {m}")))?;
            let header = check_header(raw, &expected.snapshot_id)
                .map_err(|m| corrupt(format!("{name}: {m}")))?;
            if header.integrity != Integrity::Crc32 {
                return Err(corrupt(format!(
                    "{name}: the file changed format since it was indexed"
                )));
            }
            let start = header.state_start as usize;
            let end = start.saturating_add(header.state_len as usize);
            let framed = start >= 1
                && end < buf.len()
                && buf[start - 1] == b':'
                && end + 1 == buf.len()
                && buf[end] == b'}';
            if !framed {
                return Err(corrupt(format!(
                    "{name}: the state does not have the announced length of {} bytes (truncated or altered)",
                    header.state_len
                )));
            }
            let actual = crc32fast::hash(&buf[start..end]);
            if actual != header.state_crc {
                return Err(corrupt(format!(
                    "{name}: checksum mismatch (stored {:08x}, computed {actual:08x}): the state was altered or damaged",
                    header.state_crc
                )));
            }
            Ok((
                StateBytes {
                    buf: Arc::new(buf),
                    range: start..end,
                },
                sig,
            ))
        }
        Integrity::Legacy => {
            #[derive(serde::Deserialize)]
            struct LegacyDoc<'a> {
                snapshot_id: String,
                #[serde(borrow)]
                state: &'a serde_json::value::RawValue,
            }
            let doc: LegacyDoc<'_> = serde_json::from_slice(&buf)
                .map_err(|e| corrupt(format!("{name}: not valid JSON: {e}")))?;
            if doc.snapshot_id != expected.snapshot_id {
                return Err(corrupt(format!(
                    "{name}: snapshot_id does not match the file name"
                )));
            }
            let raw = doc.state.get();
            if !raw.starts_with('{') {
                return Err(corrupt(format!("{name}: the state is not a JSON object")));
            }
            let start = raw.as_ptr() as usize - buf.as_ptr() as usize;
            let range = start..start + raw.len();
            Ok((
                StateBytes {
                    buf: Arc::new(buf),
                    range,
                },
                sig,
            ))
        }
    }
}

/// A temp file left by a process that no longer runs, or older than a day.
fn temp_is_stale(name: &str, path: &Path) -> bool {
    let old = fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_TEMP_AGE);
    if old {
        return true;
    }
    let pid = name
        .strip_prefix(TEMP_PREFIX)
        .and_then(|rest| rest.split('-').next())
        .and_then(|p| p.parse::<i32>().ok());
    match pid {
        Some(pid) if pid > 0 => !process_alive(pid),
        _ => false,
    }
}

#[cfg(unix)]
fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_alive(_pid: i32) -> bool {
    true
}

/// Creates the per-user default folder 0700 and refuses one that another user owns or that is
/// a symlink, since it lives in a shared temp directory.
fn ensure_private_dir(dir: &Path) -> EngineResult<()> {
    let parent = dir.parent().unwrap_or(dir);
    for d in [parent, dir] {
        match fs::symlink_metadata(d) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(d)
                        .map_err(|e| {
                            EngineError::io(
                                format!("cannot create snapshot folder {}", d.display()),
                                e,
                            )
                        })?;
                }
                #[cfg(not(unix))]
                fs::create_dir_all(d).map_err(|e| {
                    EngineError::io(format!("cannot create snapshot folder {}", d.display()), e)
                })?;
            }
            Err(e) => {
                return Err(EngineError::io(
                    format!("cannot inspect {}", d.display()),
                    e,
                ))
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = fs::symlink_metadata(d)
                .map_err(|e| EngineError::io(format!("cannot inspect {}", d.display()), e))?;
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            if meta.file_type().is_symlink() || !meta.is_dir() || meta.uid() != uid {
                return Err(EngineError::Snapshot(format!(
                    "refusing default snapshot folder {}: it is not a folder owned by this user",
                    d.display()
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> Options {
        let mut o = Options::new(dir);
        o.fsync = FsyncPolicy::Never;
        o
    }

    fn state_of(n: usize) -> Vec<u8> {
        let mut s = String::from("{\"nodes\":[");
        for i in 0..n {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&format!("{{\"id\":\"task-{i:08}\",\"w\":0.5}}"));
        }
        s.push_str("]}");
        s.into_bytes()
    }

    fn meta(k: &str, v: i64) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(k.into(), Value::from(v));
        m
    }

    fn snapshot_files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("snap_") && n.ends_with(".json"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn ids_are_padded_unique_and_sorted() {
        let ids: Vec<String> = (0..2000).map(|_| new_id().0).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        sorted.dedup();
        assert_eq!(sorted.len(), 2000);
        for id in &ids {
            validate_id(id).unwrap();
            let parts: Vec<&str> = id.split('_').collect();
            assert_eq!(parts.len(), 5, "{id}");
            assert_eq!(parts[3].len(), 6, "{id}");
        }
    }

    #[test]
    fn bad_ids_are_refused() {
        for bad in [
            "",
            "snap_",
            "../snap_x",
            "snap_../../etc/passwd",
            "snap_a/b",
            "snap_a\\b",
            "snap_a\0b",
            "snap_a.b",
            "x_1",
            "snap_é",
        ] {
            assert!(
                matches!(validate_id(bad), Err(EngineError::InvalidValue(_))),
                "{bad:?}"
            );
        }
        assert!(validate_id(&format!("snap_{}", "a".repeat(200))).is_err());
        validate_id("snap_20261128_095628_81930").unwrap();
    }

    #[test]
    fn round_trip_with_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let m = SnapshotManager::open(opts(dir.path())).unwrap();
        let state = state_of(100);
        let info = m
            .create(SnapshotType::MANUAL, meta("k", 7), state.clone())
            .unwrap();
        assert!(info.verified);
        assert_eq!(info.metadata.get("k"), Some(&Value::from(7)));
        let text = fs::read_to_string(&info.file_path).unwrap();
        assert!(text.starts_with("{\"format_version\":2,\"snapshot_id\":"));
        assert!(text.ends_with("]}}"));
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["state_crc32"],
            Value::from(format!("{:08x}", crc32fast::hash(&state)))
        );
        assert_eq!(doc["snapshot_type"], "manual");
        assert_eq!(info.size_bytes, text.len() as u64);

        // A second manager reads only headers, then loads and checks the state on demand.
        let m2 = SnapshotManager::open(opts(dir.path())).unwrap();
        let listed = m2.list(None);
        assert_eq!(listed.len(), 1);
        assert!(!listed[0].verified);
        assert_eq!(listed[0].timestamp, info.timestamp);
        let loaded = m2.load_state(&info.snapshot_id).unwrap().unwrap();
        assert!(!loaded.from_cache);
        assert_eq!(loaded.state.as_slice(), state.as_slice());
        assert!(m2.get(&info.snapshot_id).unwrap().unwrap().verified);
        let again = m2.load_state(&info.snapshot_id).unwrap().unwrap();
        assert!(again.from_cache);
    }

    #[test]
    fn corrupted_body_is_found_at_load_not_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let m = SnapshotManager::open(opts(dir.path())).unwrap();
        let info = m
            .create(SnapshotType::PRE_REPAIR, Map::new(), state_of(50))
            .unwrap();
        let mut bytes = fs::read(&info.file_path).unwrap();
        let n = bytes.len();
        // Flip a digit inside the state, keeping the length.
        let pos = n - 20;
        bytes[pos] = if bytes[pos] == b'1' { b'2' } else { b'1' };
        fs::write(&info.file_path, &bytes).unwrap();

        let m2 = SnapshotManager::open(opts(dir.path())).unwrap();
        assert_eq!(m2.list(None).len(), 1, "start-up does not read the body");
        assert!(m2.skipped().is_empty());
        let failure = m2.load_state(&info.snapshot_id).unwrap().unwrap_err();
        assert_eq!(failure.kind, LoadFailureKind::Corrupt);
        assert!(failure.message.contains("checksum"), "{}", failure.message);
        assert_eq!(m2.list(None).len(), 0);
        assert_eq!(m2.stats().checksum_failures, 1);
        assert_eq!(m2.skipped()[0].file, format!("{}.json", info.snapshot_id));
    }

    #[test]
    fn truncated_file_is_reported_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let m = SnapshotManager::open(opts(dir.path())).unwrap();
        let info = m
            .create(SnapshotType::MANUAL, Map::new(), state_of(500))
            .unwrap();
        let bytes = fs::read(&info.file_path).unwrap();
        fs::write(&info.file_path, &bytes[..bytes.len() / 2]).unwrap();
        fs::write(dir.path().join("snap_garbage.json"), b"not json").unwrap();
        fs::write(dir.path().join("snap_bad name.json"), b"{}").unwrap();
        let m2 = SnapshotManager::open(opts(dir.path())).unwrap();
        assert!(m2.list(None).is_empty());
        let skipped = m2.skipped();
        let names: Vec<&str> = skipped.iter().map(|s| s.file.as_str()).collect();
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(names.contains(&format!("{}.json", info.snapshot_id).as_str()));
        assert!(names.contains(&"snap_garbage.json"));
        assert_eq!(m2.stats().skipped_files, 3);
    }

    #[test]
    fn legacy_reference_file_loads() {
        let dir = tempfile::tempdir().unwrap();
        let id = "snap_20261128_095628_81930";
        let text = "{\n  \"snapshot_id\": \"snap_20261128_095628_81930\",\n  \"snapshot_type\": \"pre_repair\",\n  \"timestamp\": \"2026-11-28T09:56:28.081930\",\n  \"state\": {\n    \"graph\": {\n      \"nodes\": [\n        1,\n        2\n      ]\n    }\n  },\n  \"metadata\": {\n    \"reason\": \"caf\\u00e9\"\n  }\n}";
        fs::write(dir.path().join(format!("{id}.json")), text).unwrap();
        let m = SnapshotManager::open(opts(dir.path())).unwrap();
        let info = m.get(id).unwrap().unwrap();
        assert_eq!(info.integrity, Integrity::Legacy);
        assert_eq!(info.snapshot_type, SnapshotType::PRE_REPAIR);
        assert_eq!(info.metadata.get("reason"), Some(&Value::from("café")));
        let loaded = m.load_state(id).unwrap().unwrap();
        let state = loaded.state.parse().unwrap();
        assert_eq!(state["graph"]["nodes"], serde_json::json!([1, 2]));
        let sections = loaded
            .state
            .sections(&["graph".into(), "absent".into()])
            .unwrap();
        assert_eq!(
            sections,
            vec![Some(serde_json::json!({"nodes": [1, 2]})), None]
        );
        assert_eq!(m.stats().legacy_snapshots, 1);
    }

    #[test]
    fn retention_deletes_oldest_files_including_found_ones() {
        let dir = tempfile::tempdir().unwrap();
        let m = SnapshotManager::open(opts(dir.path())).unwrap();
        let ids: Vec<String> = (0..6)
            .map(|i| {
                m.create(SnapshotType::MANUAL, meta("i", i), state_of(1))
                    .unwrap()
                    .snapshot_id
            })
            .collect();
        drop(m);
        let mut o = opts(dir.path());
        o.max_snapshots = 4;
        let m = SnapshotManager::open(o).unwrap();
        assert_eq!(
            snapshot_files(dir.path()),
            ids[2..]
                .iter()
                .map(|i| format!("{i}.json"))
                .collect::<Vec<_>>()
        );
        let newer = m
            .create(SnapshotType::MANUAL, Map::new(), state_of(1))
            .unwrap()
            .snapshot_id;
        let files = snapshot_files(dir.path());
        assert_eq!(files.len(), 4);
        assert!(!files.contains(&format!("{}.json", ids[2])));
        assert!(files.contains(&format!("{newer}.json")));
        assert_eq!(m.stats().retention_deleted, 3);
    }

    #[test]
    fn two_managers_share_a_folder_without_overwriting() {
        let dir = tempfile::tempdir().unwrap();
        let a = SnapshotManager::open(opts(dir.path())).unwrap();
        let b = SnapshotManager::open(opts(dir.path())).unwrap();
        let mut ids = Vec::new();
        for i in 0..20 {
            ids.push(
                a.create(SnapshotType::MANUAL, meta("from", 1), state_of(i % 3))
                    .unwrap()
                    .snapshot_id,
            );
            ids.push(
                b.create(SnapshotType::MANUAL, meta("from", 2), state_of(i % 3))
                    .unwrap()
                    .snapshot_id,
            );
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 40);
        assert_eq!(snapshot_files(dir.path()).len(), 40);
        // b sees a's snapshots through the folder.
        assert!(b.get(&ids[0]).unwrap().is_some());
        assert!(b.load_state(&ids[0]).unwrap().is_ok());
    }

    #[test]
    fn publishing_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".snap-tmp-1-x-0.part");
        let target = dir.path().join("snap_x.json");
        fs::write(&tmp, b"new").unwrap();
        fs::write(&target, b"old").unwrap();
        let err = publish_no_replace(&tmp, &target).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).unwrap(), b"old");
    }

    #[test]
    fn delete_works_for_files_not_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let a = SnapshotManager::open(opts(dir.path())).unwrap();
        let b = SnapshotManager::open(opts(dir.path())).unwrap();
        let id = a
            .create(SnapshotType::MANUAL, Map::new(), state_of(1))
            .unwrap()
            .snapshot_id;
        assert!(b.delete(&id).unwrap());
        assert!(!b.delete(&id).unwrap());
        assert!(snapshot_files(dir.path()).is_empty());
        // a still lists it until it looks: a load says it is gone.
        let failure = a.load_state(&id).unwrap().unwrap_err();
        assert_eq!(failure.kind, LoadFailureKind::NotFound);
        assert!(a.delete("snap_../x").is_err());
    }

    #[test]
    fn stale_temp_files_are_removed_and_never_listed() {
        let dir = tempfile::tempdir().unwrap();
        // pid 0x7fffffff cannot be running.
        let stale = dir
            .path()
            .join(format!("{TEMP_PREFIX}2147483647-abc-1{TEMP_SUFFIX}"));
        fs::write(&stale, b"{\"half").unwrap();
        let own = dir.path().join(format!(
            "{TEMP_PREFIX}{}-abc-1{TEMP_SUFFIX}",
            std::process::id()
        ));
        fs::write(&own, b"{\"half").unwrap();
        let m = SnapshotManager::open(opts(dir.path())).unwrap();
        assert!(!stale.exists());
        assert!(own.exists(), "a live process's temp file is left alone");
        assert!(m.list(None).is_empty());
        assert!(m.skipped().is_empty());
        assert_eq!(m.stats().stale_temp_removed, 1);
    }

    #[test]
    fn refuses_oversized_metadata_and_non_object_state() {
        let dir = tempfile::tempdir().unwrap();
        let m = SnapshotManager::open(opts(dir.path())).unwrap();
        let mut big = Map::new();
        big.insert("x".into(), Value::from("y".repeat(MAX_METADATA_BYTES)));
        assert!(matches!(
            m.create(SnapshotType::MANUAL, big, b"{}".to_vec()),
            Err(EngineError::InvalidValue(_))
        ));
        assert!(m
            .create(SnapshotType::MANUAL, Map::new(), b"[1]".to_vec())
            .is_err());
        assert_eq!(m.stats().failed_creates, 2);
        assert!(
            fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }

    #[test]
    fn batched_policy_flushes_in_background() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.fsync = FsyncPolicy::Batched(Duration::from_millis(5));
        let m = SnapshotManager::open(o).unwrap();
        for _ in 0..3 {
            m.create(SnapshotType::MANUAL, Map::new(), state_of(1))
                .unwrap();
        }
        m.flush();
        let s = m.stats().fsync;
        assert_eq!(s.pending, 0);
        assert_eq!(s.file_syncs, 3);
        assert!(s.dir_syncs >= 1);
        assert_eq!(s.errors, 0);
    }

    #[test]
    fn list_latest_cleanup_and_cache_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.state_cache_bytes = 1000;
        let m = SnapshotManager::open(o).unwrap();
        // Each state is about 600 bytes: at most one fits in the cache.
        let a = m
            .create(SnapshotType::MANUAL, Map::new(), state_of(20))
            .unwrap();
        let b = m
            .create(SnapshotType::CHECKPOINT, Map::new(), state_of(20))
            .unwrap();
        let c = m
            .create(SnapshotType::MANUAL, Map::new(), state_of(20))
            .unwrap();
        let ids: Vec<String> = m.list(None).into_iter().map(|i| i.snapshot_id).collect();
        assert_eq!(
            ids,
            vec![
                c.snapshot_id.clone(),
                b.snapshot_id.clone(),
                a.snapshot_id.clone()
            ]
        );
        assert_eq!(m.list(Some(SnapshotType::CHECKPOINT)).len(), 1);
        assert_eq!(
            m.latest(Some(SnapshotType::MANUAL)).unwrap().snapshot_id,
            c.snapshot_id
        );
        assert!(m.latest(Some(SnapshotType::EMERGENCY)).is_none());
        let st = m.stats();
        assert!(st.cache_bytes <= 1000);
        assert_eq!(st.cache_entries, 1);
        fs::write(dir.path().join("snap_broken.json"), b"{").unwrap();
        assert_eq!(m.cleanup_all().unwrap(), 4);
        assert!(snapshot_files(dir.path()).is_empty());
        assert_eq!(m.stats().current_snapshots, 0);
    }

    fn pause_writer(m: &SnapshotManager, on: bool) {
        m.writer.shared.0.lock().paused = on;
        m.writer.shared.1.notify_all();
    }

    #[test]
    fn deferred_snapshot_is_usable_before_its_file_exists_and_published_after() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(SnapshotManager::open(opts(dir.path())).unwrap());
        m.writer.start(&m);
        pause_writer(&m, true);
        let info = m
            .create_deferred(SnapshotType::PRE_REPAIR, meta("cycle", 7), state_of(3))
            .unwrap();
        assert!(
            snapshot_files(dir.path()).is_empty(),
            "written while the writer was held"
        );
        assert_eq!(m.stats().pending_writes, 1);
        assert_eq!(m.list(None)[0].snapshot_id, info.snapshot_id);
        let loaded = m.load_state(&info.snapshot_id).unwrap().unwrap();
        assert_eq!(loaded.state.as_slice(), state_of(3).as_slice());
        pause_writer(&m, false);
        m.flush();
        assert_eq!(
            snapshot_files(dir.path()),
            vec![format!("{}.json", info.snapshot_id)]
        );
        assert_eq!(m.stats().pending_writes, 0);
        // Another manager reads the published file and its checksum.
        let other = SnapshotManager::open(opts(dir.path())).unwrap();
        let again = other.load_state(&info.snapshot_id).unwrap().unwrap();
        assert!(!again.from_cache);
        assert_eq!(again.state.as_slice(), state_of(3).as_slice());
        assert_eq!(
            other.get(&info.snapshot_id).unwrap().unwrap().metadata["cycle"],
            7
        );
    }

    #[test]
    fn retention_and_delete_cancel_deferred_writes() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.max_snapshots = 3;
        let m = Arc::new(SnapshotManager::open(o).unwrap());
        let old = m
            .create(SnapshotType::MANUAL, Map::new(), state_of(1))
            .unwrap();
        m.writer.start(&m);
        pause_writer(&m, true);
        let made: Vec<String> = (0..10)
            .map(|i| {
                m.create_deferred(SnapshotType::PRE_REPAIR, meta("i", i), state_of(1))
                    .unwrap()
                    .snapshot_id
            })
            .collect();
        let listed: Vec<String> = m.list(None).into_iter().map(|i| i.snapshot_id).collect();
        assert_eq!(
            listed,
            vec![made[9].clone(), made[8].clone(), made[7].clone()]
        );
        assert!(m.delete(&made[8]).unwrap());
        pause_writer(&m, false);
        m.flush();
        let expected: Vec<String> = [&made[7], &made[9]]
            .iter()
            .map(|id| format!("{id}.json"))
            .collect();
        assert_eq!(
            snapshot_files(dir.path()),
            expected,
            "the old file is unlinked, doomed ones never written"
        );
        assert!(!snapshot_files(dir.path()).contains(&format!("{}.json", old.snapshot_id)));
        let st = m.stats();
        assert_eq!(st.pending_writes, 0);
        assert_eq!(st.retention_deleted, 8);
        assert_eq!(st.current_snapshots, 2);
    }

    #[test]
    fn files_on_disk_stay_at_the_cap_while_newer_snapshots_wait_in_memory() {
        // Synchronous creates and folder rescans apply retention too: while write-behind
        // snapshots wait, they must not delete files that only in-memory snapshots replace.
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.max_snapshots = 4;
        let m = Arc::new(SnapshotManager::open(o.clone()).unwrap());
        // Another manager (another process) writes into the folder; `m` has not looked yet.
        let other = SnapshotManager::open(o.clone()).unwrap();
        for i in 0..4 {
            other
                .create(SnapshotType::MANUAL, meta("other", i), state_of(1))
                .unwrap();
        }
        m.writer.start(&m);
        pause_writer(&m, true);
        for i in 0..4 {
            m.create_deferred(SnapshotType::PRE_REPAIR, meta("new", i), state_of(1))
                .unwrap();
        }
        // The rescan finds the other manager's files, older than the four waiting here.
        {
            let mut inner = m.inner.lock();
            m.refresh(&mut inner, false).unwrap();
            m.enforce_retention(&mut inner, false);
        }
        assert_eq!(
            snapshot_files(dir.path()).len(),
            4,
            "files are deleted only once newer ones are on disk"
        );
        let last = m
            .create(SnapshotType::MANUAL, meta("sync", 0), state_of(1))
            .unwrap();
        assert!(snapshot_files(dir.path()).len() >= 4);
        // A fresh manager (a process killed now) still finds max_snapshots whole snapshots.
        assert_eq!(
            SnapshotManager::open(o.clone()).unwrap().list(None).len(),
            4
        );
        pause_writer(&m, false);
        m.flush();
        let kept: Vec<String> = m.list(None).into_iter().map(|i| i.snapshot_id).collect();
        assert_eq!(kept.len(), 4);
        assert_eq!(kept[0], last.snapshot_id);
        assert_eq!(snapshot_files(dir.path()).len(), 4);
    }

    #[test]
    fn large_created_states_are_restored_from_their_file_not_kept_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let m = SnapshotManager::open(opts(dir.path())).unwrap();
        let small = m
            .create(SnapshotType::MANUAL, Map::new(), state_of(10))
            .unwrap();
        let big_state = state_of(20_000);
        assert!(big_state.len() > CACHE_ON_CREATE_MAX_BYTES);
        let big = m
            .create(SnapshotType::MANUAL, Map::new(), big_state.clone())
            .unwrap();
        assert_eq!(m.stats().cache_entries, 1, "only the small state is kept");
        assert!(
            m.load_state(&small.snapshot_id)
                .unwrap()
                .unwrap()
                .from_cache
        );
        let loaded = m.load_state(&big.snapshot_id).unwrap().unwrap();
        assert!(!loaded.from_cache);
        assert_eq!(loaded.state.as_slice(), big_state.as_slice());
    }

    #[test]
    fn dropping_the_manager_publishes_what_waits() {
        let dir = tempfile::tempdir().unwrap();
        let m = Arc::new(SnapshotManager::open(opts(dir.path())).unwrap());
        m.writer.start(&m);
        pause_writer(&m, true);
        let ids: Vec<String> = (0..5)
            .map(|_| {
                m.create_deferred(SnapshotType::PRE_REPAIR, Map::new(), state_of(2))
                    .unwrap()
                    .snapshot_id
            })
            .collect();
        drop(m);
        let mut expected: Vec<String> = ids.iter().map(|id| format!("{id}.json")).collect();
        expected.sort();
        assert_eq!(snapshot_files(dir.path()), expected);
    }

    #[test]
    fn both_publish_paths_write_whole_files_and_never_replace() {
        let dir = tempfile::tempdir().unwrap();
        let m = SnapshotManager::open(opts(dir.path())).unwrap();
        let target = dir.path().join("snap_x.json");
        let sig = m.write_named_temp(&target, &[b"{\"a\":", b"1}"]).unwrap();
        assert_eq!(sig.len, 7);
        assert_eq!(fs::read(&target).unwrap(), b"{\"a\":1}");
        assert!(matches!(
            m.write_named_temp(&target, &[b"{}"]),
            Err(WriteError::Exists)
        ));
        #[cfg(target_os = "linux")]
        {
            let other = dir.path().join("snap_y.json");
            assert!(m.write_unnamed(&other, &[b"{}"]).unwrap().is_ok());
            assert!(matches!(
                m.write_unnamed(&other, &[b"{\"b\":2}"]),
                Some(Err(WriteError::Exists))
            ));
            assert_eq!(fs::read(&other).unwrap(), b"{}");
        }
        // No temp file is left behind by either path.
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n.starts_with("snap_")), "{names:?}");
    }

    #[test]
    fn files_pushed_out_for_unwritten_snapshots_stay_until_their_replacements_are_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.max_snapshots = 3;
        let m = Arc::new(SnapshotManager::open(o).unwrap());
        let old: Vec<String> = (0..3)
            .map(|_| {
                m.create(SnapshotType::MANUAL, Map::new(), state_of(1))
                    .unwrap()
                    .snapshot_id
            })
            .collect();
        m.writer.start(&m);
        pause_writer(&m, true);
        let new: Vec<String> = (0..3)
            .map(|_| {
                m.create_deferred(SnapshotType::PRE_REPAIR, Map::new(), state_of(1))
                    .unwrap()
                    .snapshot_id
            })
            .collect();
        // Listed: the three new ones. On disk, until they are written: the three old ones, so a
        // crash now loses nothing that was on disk.
        let mut listed: Vec<String> = m.list(None).into_iter().map(|i| i.snapshot_id).collect();
        listed.sort();
        assert_eq!(listed, new);
        let on_disk = |ids: &[String]| ids.iter().map(|i| format!("{i}.json")).collect::<Vec<_>>();
        assert_eq!(snapshot_files(dir.path()), on_disk(&old));
        // Once written, they replace the old ones.
        pause_writer(&m, false);
        m.flush();
        assert_eq!(snapshot_files(dir.path()), on_disk(&new));
        let st = m.stats();
        assert_eq!((st.retention_deleted, st.total_deleted), (3, 3));
    }

    #[test]
    fn cleanup_removes_files_already_pushed_out_for_unwritten_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(dir.path());
        o.max_snapshots = 2;
        let m = Arc::new(SnapshotManager::open(o).unwrap());
        for _ in 0..2 {
            m.create(SnapshotType::MANUAL, Map::new(), state_of(1))
                .unwrap();
        }
        m.writer.start(&m);
        pause_writer(&m, true);
        for _ in 0..2 {
            m.create_deferred(SnapshotType::PRE_REPAIR, Map::new(), state_of(1))
                .unwrap();
        }
        assert_eq!(
            snapshot_files(dir.path()).len(),
            2,
            "the old files wait for their replacements"
        );
        m.cleanup_all().unwrap();
        pause_writer(&m, false);
        m.flush();
        assert!(snapshot_files(dir.path()).is_empty());
    }
}
