//! `senti_os.core.faza30.classification_engine`: ClassificationEngine, ClassificationResult,
//! create_classification_engine.
//!
//! A fault is read duck-typed (any object with `fault_type`, `severity`, `source`,
//! `description`, `metrics`, `fault_id`), classified by the engine, and returned as a
//! `ClassificationResult` whose costly fields (lists, dicts, the datetime, the root-cause text)
//! are built only when read.

use super::convert::type_name;
use super::detection_engine::DetectedFault;
use super::input::{
    caller_error, count_arg, dict_arg, num_from_py, optional_attr, timestamp_at, truthy, utf8,
    wall_micros, KeySet, Members, Utf8,
};
use super::record::{self, Lazy, LazySource};
use crate::engine::classification_engine::{
    fixed_texts, Classification, ClassificationEngine as Engine, FaultCategory, FaultMetrics,
    FaultView, OwnedTag, RepairPriority, MAX_CACHED_KEY_LEN, METRIC_NAMES, METRIC_NAME_LIST,
};
use crate::engine::clock::unique_id;
use crate::engine::detection_engine::{Fault, FaultSeverity, FaultSource};
use crate::engine::enums::ValueEnum;
use crate::engine::pynum::Num;
use parking_lot::Mutex;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};
use std::collections::HashMap;
use std::sync::Arc;

py_record! {
    /// How one fault was classified: category, subcategory, confidence, repair priority, root
    /// cause, affected components, recommended actions, time and metadata.
    pub struct ClassificationResult in "senti_os.core.faza30.classification_engine" {
        req fault_id,
        req category,
        req subcategory,
        req confidence,
        req repair_priority,
        req root_cause,
        opt affected_components = record::new_list,
        opt recommended_actions = record::new_list,
        opt timestamp = record::now,
        opt metadata = record::new_dict,
        core Classification,
    }
}

static CATEGORIES: Members<FaultCategory> = Members::new();
static PRIORITIES: Members<RepairPriority> = Members::new();
static SEVERITIES: Members<FaultSeverity> = Members::new();
static SOURCES: Members<FaultSource> = Members::new();

/// The engine's fixed result texts as Python strings, made once.
fn fixed_text(py: Python<'_>, text: &str) -> Py<PyAny> {
    static TEXTS: PyOnceLock<HashMap<&'static str, Py<PyString>>> = PyOnceLock::new();
    let texts = TEXTS.get_or_init(py, || {
        fixed_texts()
            .map(|t| (t, PyString::intern(py, t).unbind()))
            .collect()
    });
    match texts.get(text) {
        Some(s) => s.clone_ref(py).into_any(),
        None => PyString::new(py, text).into_any().unbind(),
    }
}

/// The metric names the classifier reads.
static METRIC_KEYS: KeySet = KeySet::new(&METRIC_NAME_LIST);

/// A fault type's Rust text: the detector's own constant, or text read from a Python string.
#[derive(Clone)]
enum TypeText {
    Static(&'static str),
    Shared(Arc<str>),
}

impl TypeText {
    fn as_str(&self) -> &str {
        match self {
            TypeText::Static(s) => s,
            TypeText::Shared(s) => s,
        }
    }
}

/// Where the description text lives.
enum Description<'py> {
    Empty,
    Python(Utf8<'py>),
    /// The detector's own fault, unchanged since detection.
    Detected(Arc<Fault>),
}

/// What the classifier needs from a fault: Python objects where the result reuses them, Rust
/// text where the engine reads it.
struct FaultInput<'py> {
    fault_id: Option<Bound<'py, PyAny>>,
    /// The fault's `fault_type` object; None for a detector fault read from its core (the
    /// text is then an interned constant, made again only if the metadata is read).
    fault_type: Option<Bound<'py, PyString>>,
    fault_type_text: Option<TypeText>,
    description: Description<'py>,
    severity: OwnedTag<FaultSeverity>,
    source: OwnedTag<FaultSource>,
    metrics: FaultMetrics,
}

impl<'py> FaultInput<'py> {
    fn read(fault: &Bound<'py, PyAny>, type_texts: &Mutex<TypeTexts>) -> PyResult<Self> {
        if let Some(input) = Self::read_detected(fault) {
            return Ok(input);
        }
        let py = fault.py();
        let fault_type = str_attr(fault, intern!(py, "fault_type"), "fault.fault_type")?;
        let description = str_attr(fault, intern!(py, "description"), "fault.description")?;
        let severity = optional_attr(fault, intern!(py, "severity"), "fault.severity")?;
        let source = optional_attr(fault, intern!(py, "source"), "fault.source")?;
        let metrics = optional_attr(fault, intern!(py, "metrics"), "fault.metrics")?;
        let fault_id = optional_attr(fault, intern!(py, "fault_id"), "fault.fault_id")?;
        Ok(FaultInput {
            fault_type_text: fault_type
                .as_ref()
                .map(|s| TypeTexts::text_of(type_texts, s).map(TypeText::Shared))
                .transpose()?,
            description: match &description {
                Some(s) if !s.is_empty()? => Description::Python(utf8(s, "fault.description")?),
                _ => Description::Empty,
            },
            fault_type,
            severity: tag(severity, &SEVERITIES, "fault.severity")?,
            source: tag(source, &SOURCES, "fault.source")?,
            metrics: read_metrics(metrics)?,
            fault_id,
        })
    }

    /// A `DetectedFault` that Python has not changed, read straight from the engine fault it
    /// was made from: no attribute lookups, no string encoding, no dict walk. None sends the
    /// fault down the generic path: an assigned attribute, a metrics dict Python may hold (and
    /// may have changed), a fault borrowed elsewhere, or metrics the engine map cannot give as
    /// readings (the generic path then reports them as it would for any object).
    fn read_detected(fault: &Bound<'py, PyAny>) -> Option<Self> {
        let detected = fault.cast::<DetectedFault>().ok()?.try_borrow().ok()?;
        let core = detected.engine_fault()?;
        let metrics = FaultMetrics::from_map(&core.metrics).ok()?;
        let fault_id = detected
            .fault_id
            .get(fault.py())
            .ok()?
            .into_bound(fault.py());
        Some(FaultInput {
            fault_id: Some(fault_id),
            fault_type: None,
            fault_type_text: Some(TypeText::Static(core.fault_type)),
            description: if core.description.is_empty() {
                Description::Empty
            } else {
                Description::Detected(core.clone())
            },
            severity: OwnedTag::Member(core.severity),
            source: OwnedTag::Member(core.source),
            metrics,
        })
    }

    fn view(&self) -> FaultView<'_> {
        FaultView {
            fault_type: self
                .fault_type_text
                .as_ref()
                .map_or("unknown", TypeText::as_str),
            severity: self.severity.as_tag(),
            source: self.source.as_tag(),
            description: match &self.description {
                Description::Empty => "",
                Description::Python(text) => text.as_str(),
                Description::Detected(fault) => &fault.description,
            },
            metrics: &self.metrics,
        }
    }

    /// The Python result. The fault id and the two enum members are set now; the other fields
    /// come from one shared `ResultSource` when first read.
    fn into_result(
        self,
        py: Python<'py>,
        c: Classification,
        micros: i64,
    ) -> PyResult<ClassificationResult> {
        let fault_id = match self.fault_id {
            Some(id) => id.unbind(),
            None => PyString::new(py, &unique_id("cls_")).into_any().unbind(),
        };
        let source = Arc::new(ResultSource {
            classification: c,
            fault_type: self.fault_type.map(Bound::unbind),
            fault_type_text: self.fault_type_text,
            severity: self.severity,
            source: self.source,
            micros,
        });
        let [subcategory, confidence, root_cause, affected_components, recommended_actions, timestamp, metadata] =
            Lazy::shared(
                source,
                [
                    SUBCATEGORY,
                    CONFIDENCE,
                    ROOT_CAUSE,
                    COMPONENTS,
                    ACTIONS,
                    TIMESTAMP,
                    METADATA,
                ],
            );
        Ok(ClassificationResult {
            fault_id: Lazy::ready(fault_id),
            category: Lazy::ready(CATEGORIES.get(py, c.category)?),
            subcategory,
            confidence,
            repair_priority: Lazy::ready(PRIORITIES.get(py, c.priority)?),
            root_cause,
            affected_components,
            recommended_actions,
            timestamp,
            metadata,
            core: Some(c),
            modified: false,
        })
    }
}

const SUBCATEGORY: u8 = 0;
const CONFIDENCE: u8 = 1;
const ROOT_CAUSE: u8 = 2;
const COMPONENTS: u8 = 3;
const ACTIONS: u8 = 4;
const TIMESTAMP: u8 = 5;
const METADATA: u8 = 6;

/// What a result's deferred fields are built from.
struct ResultSource {
    classification: Classification,
    /// The fault's own `fault_type` object and its text (None when it had none: "unknown").
    fault_type: Option<Py<PyString>>,
    fault_type_text: Option<TypeText>,
    severity: OwnedTag<FaultSeverity>,
    source: OwnedTag<FaultSource>,
    micros: i64,
}

impl LazySource for ResultSource {
    fn make(&self, py: Python<'_>, field: u8) -> PyResult<Py<PyAny>> {
        let c = &self.classification;
        match field {
            SUBCATEGORY => Ok(fixed_text(py, c.subcategory)),
            CONFIDENCE => Ok(PyFloat::new(py, c.confidence).into_any().unbind()),
            ROOT_CAUSE => {
                let text = c.root_cause.text(
                    self.fault_type_text
                        .as_ref()
                        .map_or("unknown", TypeText::as_str),
                );
                Ok(PyString::new(py, &text).into_any().unbind())
            }
            COMPONENTS => {
                let list = PyList::empty(py);
                for name in c.affected_components(&self.source.as_tag()) {
                    list.append(fixed_text(py, &name))?;
                }
                Ok(list.into_any().unbind())
            }
            ACTIONS => {
                let list = PyList::empty(py);
                for action in c.recommended_actions() {
                    list.append(fixed_text(py, action))?;
                }
                Ok(list.into_any().unbind())
            }
            TIMESTAMP => timestamp_at(py, self.micros),
            _ => {
                let meta = PyDict::new(py);
                match (&self.fault_type, &self.fault_type_text) {
                    (Some(t), _) => meta.set_item(intern!(py, "fault_type"), t.bind(py))?,
                    // The detector's fault types are interned, so this is the fault's own object.
                    (None, Some(text)) => meta.set_item(
                        intern!(py, "fault_type"),
                        PyString::intern(py, text.as_str()),
                    )?,
                    (None, None) => {
                        meta.set_item(intern!(py, "fault_type"), intern!(py, "unknown"))?
                    }
                }
                meta.set_item(intern!(py, "severity"), self.severity.as_tag().label())?;
                meta.set_item(intern!(py, "source"), self.source.as_tag().label())?;
                Ok(meta.into_any().unbind())
            }
        }
    }
}

/// How many `fault_type` objects `TypeTexts` remembers.
const TYPE_TEXTS_CAP: usize = 32;

/// The texts of recently seen `fault_type` string objects, by identity. Fault types are a
/// handful of interned constants, and encoding one to UTF-8 costs more than matching it here.
/// Each entry holds its string, so an address cannot be reused while it is remembered.
#[derive(Default)]
struct TypeTexts {
    entries: Vec<(Py<PyString>, Arc<str>)>,
    next: usize,
}

impl TypeTexts {
    fn text_of(memo: &Mutex<TypeTexts>, s: &Bound<'_, PyString>) -> PyResult<Arc<str>> {
        if let Some((_, text)) = memo
            .lock()
            .entries
            .iter()
            .find(|(known, _)| known.as_ptr() == s.as_ptr())
        {
            return Ok(text.clone());
        }
        let text: Arc<str> = Arc::from(utf8(s, "fault.fault_type")?.as_str());
        if text.len() <= MAX_CACHED_KEY_LEN {
            let entry = (s.clone().unbind(), text.clone());
            let evicted = {
                let mut memo = memo.lock();
                if memo.entries.len() < TYPE_TEXTS_CAP {
                    memo.entries.push(entry);
                    None
                } else {
                    let slot = memo.next;
                    memo.next = (slot + 1) % TYPE_TEXTS_CAP;
                    Some(std::mem::replace(&mut memo.entries[slot], entry))
                }
            };
            drop(evicted);
        }
        Ok(text)
    }
}

/// A text attribute: missing or None gives `None`; anything but a str is a TypeError.
fn str_attr<'py>(
    fault: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    what: &str,
) -> PyResult<Option<Bound<'py, PyString>>> {
    match optional_attr(fault, name, what)? {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => match v.cast::<PyString>() {
            Ok(s) => Ok(Some(s.clone())),
            Err(_) => Err(PyTypeError::new_err(format!(
                "{what} must be a str, got {}",
                type_name(&v)
            ))),
        },
    }
}

/// Severity or source: a member, other text (by `str()`), or absent when missing or falsy.
fn tag<E: ValueEnum>(
    value: Option<Bound<'_, PyAny>>,
    members: &Members<E>,
    what: &str,
) -> PyResult<OwnedTag<E>> {
    let Some(v) = value else {
        return Ok(OwnedTag::Absent);
    };
    if v.is_none() {
        return Ok(OwnedTag::Absent);
    }
    if let Some(member) = members.find(&v)? {
        return Ok(OwnedTag::Member(member));
    }
    let text = if let Ok(s) = v.cast::<PyString>() {
        s.to_cow()?.into_owned()
    } else {
        if !truthy(&v, &|| what.to_owned())? {
            return Ok(OwnedTag::Absent);
        }
        v.str()
            .map_err(|e| caller_error(v.py(), e, what))?
            .to_cow()?
            .into_owned()
    };
    Ok(if text.is_empty() {
        OwnedTag::Absent
    } else {
        OwnedTag::Text(text)
    })
}

/// The readings the classifier uses. A None value counts as missing, so an alias can stand in.
fn read_metrics(value: Option<Bound<'_, PyAny>>) -> PyResult<FaultMetrics> {
    let mut out = FaultMetrics::default();
    let Some(dict) = dict_arg(value.as_ref(), "fault.metrics")? else {
        return Ok(out);
    };
    if dict.is_empty() {
        return Ok(out);
    }
    let what = |i: usize| format!("fault.metrics['{}']", METRIC_KEYS.name(i));
    METRIC_KEYS.read(dict, &what, |i, v| {
        if v.is_none() {
            return Ok(());
        }
        let (_, key, alias) = METRIC_NAMES[i];
        let reading = if key.is_flag() {
            Some(Num::Bool(truthy(&v, &|| what(i))?))
        } else {
            num_from_py(&v, &|| what(i))?
        };
        out.put(key, alias, reading);
        Ok(())
    })?;
    Ok(out)
}

/// Classifies faults into five categories and keeps statistics and a bounded history.
///
/// The history keeps the newest 1000 results and the pattern cache 1024 (fault type, source)
/// patterns, least recently used first out; fault types or sources longer than 256 bytes are
/// not cached.
#[pyclass(module = "senti_os.core.faza30.classification_engine")]
pub struct ClassificationEngine {
    engine: Mutex<Engine<Py<ClassificationResult>>>,
    type_texts: Mutex<TypeTexts>,
}

#[pymethods]
impl ClassificationEngine {
    #[new]
    pub fn py_new() -> Self {
        ClassificationEngine {
            engine: Mutex::new(Engine::default()),
            type_texts: Mutex::default(),
        }
    }

    /// Classifies a fault (any object; missing attributes take the reference's defaults) and
    /// records the result.
    pub fn classify_fault(
        &self,
        py: Python<'_>,
        fault: &Bound<'_, PyAny>,
    ) -> PyResult<Py<ClassificationResult>> {
        let input = FaultInput::read(fault, &self.type_texts)?;
        let micros = wall_micros();
        let classification = self.engine.lock().classify(&input.view());
        let result = Py::new(py, input.into_result(py, classification, micros)?)?;
        let evicted = self.engine.lock().record(result.clone_ref(py));
        drop(evicted);
        Ok(result)
    }

    /// Counts so far, as fresh dicts: `by_category` and `by_priority` are keyed by the enum
    /// members, every member present.
    fn get_statistics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.engine.lock().stats();
        let out = PyDict::new(py);
        out.set_item("total_classifications", stats.total_classifications)?;
        let by_category = PyDict::new(py);
        for c in FaultCategory::ALL {
            by_category.set_item(CATEGORIES.get(py, *c)?, stats.by_category[c.index()])?;
        }
        out.set_item("by_category", by_category)?;
        let by_priority = PyDict::new(py);
        for p in RepairPriority::ALL {
            by_priority.set_item(PRIORITIES.get(py, *p)?, stats.by_priority[p.index()])?;
        }
        out.set_item("by_priority", by_priority)?;
        out.set_item("avg_confidence", stats.avg_confidence)?;
        out.set_item("history_size", stats.history_size)?;
        out.set_item("pattern_cache_size", stats.pattern_cache_size)?;
        Ok(out)
    }

    /// The newest `limit` results, oldest first (the same objects `classify_fault` returned).
    /// `limit` 0 gives an empty list; a negative limit is a ValueError.
    #[pyo3(signature = (limit=None), text_signature = "($self, limit=10)")]
    fn get_recent_classifications(
        &self,
        py: Python<'_>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<Py<ClassificationResult>>> {
        let limit = match limit {
            Some(l) => count_arg(l, "limit", 0)?,
            None => 10,
        };
        let engine = self.engine.lock();
        Ok(engine.recent(limit).map(|r| r.clone_ref(py)).collect())
    }

    /// Empties the pattern cache.
    fn clear_cache(&self) {
        self.engine.lock().clear_cache();
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        // A history locked by another thread is skipped this round rather than waited for.
        if let Some(engine) = self.engine.try_lock() {
            for result in engine.recent(usize::MAX) {
                visit.call(result)?;
            }
        }
        Ok(())
    }

    fn __clear__(&mut self) {
        let history = self.engine.get_mut().take_history();
        drop(history);
    }
}

#[pyfunction]
pub fn create_classification_engine() -> ClassificationEngine {
    ClassificationEngine::py_new()
}
