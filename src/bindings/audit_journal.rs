//! `senti_os.core.faza30.audit_journal`: AuditJournal, create_audit_journal.

use super::convert::{from_map, to_map, type_name};
use super::errors::IntoPyResult;
use crate::engine::audit_journal::{self as engine, Entry, EntryKind};
use crate::engine::enums::ValueEnum;
use crate::engine::snapshot_manager::FsyncPolicy;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::sync::Arc;

/// An append-only journal of what the engine did: every healing cycle, repair, rollback and
/// escalation of the auto-repair loop, one checksummed JSON line each, in segment files of a
/// folder (bounded: `max_segments` of `max_segment_bytes`).
///
/// AuditJournal(journal_dir, *, max_segment_bytes=4 MiB, max_segments=8, fsync="batched",
///              fsync_interval_ms=100)
///
/// An entry whose `append` returned survives a crash of the process; `fsync` decides about
/// power loss ("always" flushes each entry, "batched" at most every `fsync_interval_ms`,
/// "never"). Opening reads the entries back and skips (and counts) a line torn by a crash. An
/// auto-repair loop given a journal rebuilds its throttle from the last hour's repairs.
#[pyclass(module = "senti_os.core.faza30.audit_journal", frozen)]
pub struct AuditJournal {
    journal: Arc<engine::AuditJournal>,
}

impl AuditJournal {
    pub(crate) fn engine(&self) -> Arc<engine::AuditJournal> {
        self.journal.clone()
    }

    pub(crate) fn open(
        py: Python<'_>,
        journal_dir: &Bound<'_, PyAny>,
        max_segment_bytes: i64,
        max_segments: i64,
        fsync: &str,
        fsync_interval_ms: u64,
    ) -> PyResult<Self> {
        let os = py.import("os")?;
        let dir = os.call_method1("fspath", (journal_dir,)).map_err(|_| {
            PyTypeError::new_err(format!(
                "journal_dir must be a str or os.PathLike, got {}",
                type_name(journal_dir)
            ))
        })?;
        let dir: String = os
            .getattr("path")?
            .call_method1("expanduser", (dir,))?
            .extract()
            .map_err(|_| PyTypeError::new_err("journal_dir must be a str or os.PathLike of str"))?;
        if dir.is_empty() {
            return Err(PyValueError::new_err("journal_dir must not be empty"));
        }
        if max_segment_bytes < 4096 {
            return Err(PyValueError::new_err(format!(
                "max_segment_bytes must be at least 4096, got {max_segment_bytes}"
            )));
        }
        if !(1..=10_000).contains(&max_segments) {
            return Err(PyValueError::new_err(format!(
                "max_segments must be between 1 and 10000, got {max_segments}"
            )));
        }
        let mut opts = engine::Options::new(dir);
        opts.max_segment_bytes = max_segment_bytes as u64;
        opts.max_segments = max_segments as usize;
        opts.fsync = FsyncPolicy::parse(fsync, fsync_interval_ms).py_err()?;
        let journal = py
            .detach(move || engine::AuditJournal::open(opts))
            .py_err()?;
        Ok(AuditJournal {
            journal: Arc::new(journal),
        })
    }
}

fn kind_arg(kind: &Bound<'_, PyAny>) -> PyResult<EntryKind> {
    let text = kind
        .cast::<PyString>()
        .map_err(|_| PyTypeError::new_err(format!("kind must be a str, got {}", type_name(kind))))?
        .to_cow()?
        .into_owned();
    EntryKind::from_value(&text).ok_or_else(|| {
        let known: Vec<&str> = EntryKind::ALL.iter().map(|k| k.value()).collect();
        PyValueError::new_err(format!(
            "unknown audit entry kind {text:?}; expected one of {known:?}"
        ))
    })
}

pub(crate) fn entry_to_py<'py>(py: Python<'py>, e: &Entry) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("seq", e.seq)?;
    d.set_item("timestamp", e.ts)?;
    d.set_item("kind", e.kind.value())?;
    d.set_item("data", from_map(py, &e.data)?)?;
    Ok(d)
}

#[pymethods]
impl AuditJournal {
    #[new]
    #[pyo3(signature = (journal_dir, *, max_segment_bytes=4194304, max_segments=8, fsync="batched", fsync_interval_ms=100))]
    fn py_new(
        py: Python<'_>,
        journal_dir: &Bound<'_, PyAny>,
        #[pyo3(from_py_with = super::convert::i64_param)] max_segment_bytes: i64,
        #[pyo3(from_py_with = super::convert::i64_param)] max_segments: i64,
        fsync: &str,
        #[pyo3(from_py_with = super::convert::u64_param)] fsync_interval_ms: u64,
    ) -> PyResult<Self> {
        Self::open(
            py,
            journal_dir,
            max_segment_bytes,
            max_segments,
            fsync,
            fsync_interval_ms,
        )
    }

    /// The folder of the segment files.
    #[getter]
    fn journal_dir(&self) -> String {
        self.journal.dir().display().to_string()
    }

    /// Appends an entry of `kind` ("cycle", "repair", "rollback", "escalation" or "note")
    /// with a JSON-compatible `data` dict; returns its sequence number once it is in the file.
    #[pyo3(signature = (kind, data=None))]
    fn append(
        &self,
        py: Python<'_>,
        kind: &Bound<'_, PyAny>,
        data: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let kind = kind_arg(kind)?;
        if let Some(d) = data.filter(|d| !d.is_none()) {
            if d.cast::<PyDict>().is_err() {
                return Err(PyTypeError::new_err(format!(
                    "data must be a dict, got {}",
                    type_name(d)
                )));
            }
        }
        let data = to_map(data, "data")?;
        let journal = self.journal.clone();
        let entry = py.detach(move || journal.append(kind, data)).py_err()?;
        Ok(entry.seq)
    }

    /// The newest entries first (at most `limit`, from the last 10,000), optionally of one
    /// kind; each a dict with `seq`, `timestamp` (Unix seconds), `kind` and `data`.
    #[pyo3(signature = (limit=100, kind=None))]
    fn get_entries<'py>(
        &self,
        py: Python<'py>,
        #[pyo3(from_py_with = super::convert::i64_param)] limit: i64,
        kind: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        if limit < 0 {
            return Err(PyValueError::new_err(format!(
                "limit must be 0 or more, got {limit}"
            )));
        }
        let kind = kind.filter(|k| !k.is_none()).map(kind_arg).transpose()?;
        let entries = self.journal.entries(limit as usize, kind);
        entries.iter().map(|e| entry_to_py(py, e)).collect()
    }

    /// Counters: appended, loaded (read back at open), skipped_lines (torn or altered),
    /// segments, bytes, last_seq, append_errors, last_error, fsyncs.
    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.journal.stats();
        let d = PyDict::new(py);
        d.set_item("journal_dir", self.journal.dir().display().to_string())?;
        d.set_item("appended", s.appended)?;
        d.set_item("loaded", s.loaded)?;
        d.set_item("skipped_lines", s.skipped_lines)?;
        d.set_item("segments", s.segments)?;
        d.set_item("bytes", s.bytes)?;
        d.set_item("last_seq", s.last_seq)?;
        d.set_item("append_errors", s.append_errors)?;
        d.set_item("last_error", s.last_error)?;
        d.set_item("fsyncs", s.fsyncs)?;
        Ok(d)
    }

    /// Flushes appended entries to the disk now.
    fn flush(&self, py: Python<'_>) {
        let journal = self.journal.clone();
        py.detach(move || journal.flush());
    }

    fn __repr__(&self) -> String {
        format!(
            "AuditJournal({:?})",
            self.journal.dir().display().to_string()
        )
    }
}

/// create_audit_journal(journal_dir, **keyword settings of AuditJournal)
#[pyfunction]
#[pyo3(signature = (journal_dir, *, max_segment_bytes=4194304, max_segments=8, fsync="batched", fsync_interval_ms=100))]
pub fn create_audit_journal(
    py: Python<'_>,
    journal_dir: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = super::convert::i64_param)] max_segment_bytes: i64,
    #[pyo3(from_py_with = super::convert::i64_param)] max_segments: i64,
    fsync: &str,
    #[pyo3(from_py_with = super::convert::u64_param)] fsync_interval_ms: u64,
) -> PyResult<AuditJournal> {
    AuditJournal::open(
        py,
        journal_dir,
        max_segment_bytes,
        max_segments,
        fsync,
        fsync_interval_ms,
    )
}
