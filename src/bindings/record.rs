//! Result types that behave like the reference's dataclasses: keyword constructors with the
//! same defaults, readable and writable attributes, field equality and a dataclass-style repr.
//!
//! Fields are `Lazy`: the engine can hand over a Rust value and a way to build the Python
//! object, which is built on first access and then kept, so in-place changes to a dict field
//! stick as they do on a dataclass. Results that callers rarely inspect cost almost nothing.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyVisit;
use std::sync::{Arc, OnceLock};

type Maker = Box<dyn Fn(Python<'_>) -> PyResult<Py<PyAny>> + Send + Sync>;

/// Builds several fields of one record from shared data, so a record with many deferred
/// fields makes one allocation (the `Arc`) instead of one closure per field.
pub trait LazySource: Send + Sync + 'static {
    /// Builds field number `field` (the number given to `Lazy::shared`).
    fn make(&self, py: Python<'_>, field: u8) -> PyResult<Py<PyAny>>;

    /// Visits the Python objects the source holds (those that could lead back to the record).
    fn traverse(&self, _visit: &PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        Ok(())
    }
}

pub struct Lazy(State);

enum State {
    /// Built up front: no cell and no synchronisation.
    Ready(Py<PyAny>),
    Later {
        cell: OnceLock<Py<PyAny>>,
        make: Deferred,
    },
    Cleared,
}

enum Deferred {
    Closure(Maker),
    /// `visits` is set on exactly one field per source, so the collector sees each held
    /// object once per record.
    Shared {
        source: Arc<dyn LazySource>,
        field: u8,
        visits: bool,
    },
}

impl Lazy {
    pub fn ready(obj: Py<PyAny>) -> Self {
        Lazy(State::Ready(obj))
    }

    pub fn later(make: impl Fn(Python<'_>) -> PyResult<Py<PyAny>> + Send + Sync + 'static) -> Self {
        Lazy(State::Later {
            cell: OnceLock::new(),
            make: Deferred::Closure(Box::new(make)),
        })
    }

    /// Deferred fields built by one source: `fields[i]` is the field number passed to
    /// `LazySource::make` for the i-th returned `Lazy`.
    pub fn shared<const N: usize>(source: Arc<dyn LazySource>, fields: [u8; N]) -> [Lazy; N] {
        let mut i = 0;
        fields.map(|field| {
            i += 1;
            let make = Deferred::Shared {
                source: source.clone(),
                field,
                visits: i == 1,
            };
            Lazy(State::Later {
                cell: OnceLock::new(),
                make,
            })
        })
    }

    /// The Python object, built on first access.
    pub fn get(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (cell, make) = match &self.0 {
            State::Ready(obj) => return Ok(obj.clone_ref(py)),
            State::Cleared => return Ok(py.None()),
            State::Later { cell, make } => (cell, make),
        };
        if let Some(obj) = cell.get() {
            return Ok(obj.clone_ref(py));
        }
        let obj = match make {
            Deferred::Closure(make) => make(py)?,
            Deferred::Shared { source, field, .. } => source.make(py, *field)?,
        };
        // Two threads may race here; the first value wins and both see it.
        let _ = cell.set(obj);
        Ok(cell
            .get()
            .map(|o| o.clone_ref(py))
            .unwrap_or_else(|| py.None()))
    }

    /// Whether Python code may hold (and may have changed) the object.
    pub fn is_materialized(&self) -> bool {
        match &self.0 {
            State::Ready(_) => true,
            State::Later { cell, .. } => cell.get().is_some(),
            State::Cleared => false,
        }
    }

    pub fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        match &self.0 {
            State::Ready(obj) => visit.call(obj)?,
            State::Later { cell, make } => {
                if let Some(obj) = cell.get() {
                    visit.call(obj)?;
                }
                if let Deferred::Shared {
                    source,
                    visits: true,
                    ..
                } = make
                {
                    source.traverse(visit)?;
                }
            }
            State::Cleared => {}
        }
        Ok(())
    }

    pub fn clear(&mut self) {
        self.0 = State::Cleared;
    }
}

pub fn new_dict(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(PyDict::new(py).into_any().unbind())
}

pub fn new_list(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(pyo3::types::PyList::empty(py).into_any().unbind())
}

pub fn none(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(py.None())
}

pub fn now(py: Python<'_>) -> PyResult<Py<PyAny>> {
    super::convert::datetime_to_py(py, &crate::engine::clock::now())
}

pub fn false_(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(pyo3::types::PyBool::new(py, false)
        .to_owned()
        .into_any()
        .unbind())
}

pub fn zero_float(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(pyo3::types::PyFloat::new(py, 0.0).into_any().unbind())
}

pub fn zero_int(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(0i64.into_pyobject(py)?.into_any().unbind())
}

pub fn faza30_str(py: Python<'_>) -> PyResult<Py<PyAny>> {
    Ok(pyo3::types::PyString::new(py, "faza30").into_any().unbind())
}

/// Declares a dataclass-like pyclass. `req` fields are required constructor arguments in
/// order; `opt` fields follow with a default made by the given function. `core` optionally
/// names the engine value the record was made from, which bindings read directly while
/// `modified` is false (no attribute has been assigned since). An optional trailing
/// `methods { ... }` block adds methods to the class (pyo3 allows one `#[pymethods]` block).
#[macro_export]
macro_rules! py_record {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident in $module:literal {
            $(req $req:ident,)*
            $(opt $opt:ident = $default:path,)*
            $(core $core:ty,)?
        }
        $(methods { $($methods:tt)* })?
    ) => {
        paste::paste! {
            $(#[doc = $doc])*
            #[pyclass(module = $module)]
            pub struct $name {
                $(pub $req: $crate::bindings::record::Lazy,)*
                $(pub $opt: $crate::bindings::record::Lazy,)*
                $(pub core: Option<$core>,)?
                /// True once any attribute was assigned: the engine copy no longer matches.
                pub modified: bool,
            }

            #[pymethods]
            impl $name {
                #[new]
                #[pyo3(signature = ($($req,)* $($opt = None,)*))]
                #[allow(clippy::too_many_arguments)]
                fn __new__(
                    py: Python<'_>,
                    $($req: Py<PyAny>,)*
                    $($opt: Option<Py<PyAny>>,)*
                ) -> PyResult<Self> {
                    Ok($name {
                        $($req: $crate::bindings::record::Lazy::ready($req),)*
                        $($opt: $crate::bindings::record::Lazy::ready(match $opt {
                            Some(v) => v,
                            None => $default(py)?,
                        }),)*
                        $(core: None::<$core>,)?
                        modified: true,
                    })
                }

                $(
                    #[getter($req)]
                    fn [<get_ $req>](&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                        self.$req.get(py)
                    }
                    #[setter($req)]
                    fn [<set_ $req>](&mut self, value: Py<PyAny>) {
                        self.$req = $crate::bindings::record::Lazy::ready(value);
                        self.modified = true;
                    }
                )*
                $(
                    #[getter($opt)]
                    fn [<get_ $opt>](&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
                        self.$opt.get(py)
                    }
                    #[setter($opt)]
                    fn [<set_ $opt>](&mut self, value: Py<PyAny>) {
                        self.$opt = $crate::bindings::record::Lazy::ready(value);
                        self.modified = true;
                    }
                )*

                fn __richcmp__(
                    &self,
                    other: &Bound<'_, PyAny>,
                    op: pyo3::basic::CompareOp,
                    py: Python<'_>,
                ) -> PyResult<Py<PyAny>> {
                    use pyo3::basic::CompareOp;
                    if !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                        return Ok(py.NotImplemented());
                    }
                    let Ok(other) = other.cast::<$name>() else {
                        return Ok(py.NotImplemented());
                    };
                    let other = other.borrow();
                    let mut equal = true;
                    $(
                        if equal && !self.$req.get(py)?.bind(py).eq(other.$req.get(py)?)? {
                            equal = false;
                        }
                    )*
                    $(
                        if equal && !self.$opt.get(py)?.bind(py).eq(other.$opt.get(py)?)? {
                            equal = false;
                        }
                    )*
                    let result = if matches!(op, CompareOp::Eq) { equal } else { !equal };
                    Ok(pyo3::types::PyBool::new(py, result).to_owned().into_any().unbind())
                }

                fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                    let mut parts: Vec<String> = Vec::new();
                    $(
                        parts.push(format!(
                            "{}={}",
                            stringify!($req),
                            self.$req.get(py)?.bind(py).repr()?.to_cow()?
                        ));
                    )*
                    $(
                        parts.push(format!(
                            "{}={}",
                            stringify!($opt),
                            self.$opt.get(py)?.bind(py).repr()?.to_cow()?
                        ));
                    )*
                    Ok(format!("{}({})", stringify!($name), parts.join(", ")))
                }

                /// The field names, in order (like `dataclasses.fields`).
                #[classattr]
                fn __match_args__(py: Python<'_>) -> PyResult<Py<pyo3::types::PyTuple>> {
                    // A tuple: class patterns (`case Record(a, b)`) refuse anything else.
                    Ok(pyo3::types::PyTuple::new(py, [$(stringify!($req),)* $(stringify!($opt),)*])?.unbind())
                }

                fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
                    $(self.$req.traverse(&visit)?;)*
                    $(self.$opt.traverse(&visit)?;)*
                    Ok(())
                }

                fn __clear__(&mut self) {
                    $(self.$req.clear();)*
                    $(self.$opt.clear();)*
                }

                $($($methods)*)?
            }
        }
    };
}
