//! One walk over the task graph per healing cycle.
//!
//! A repairing cycle needs the task graph three times: the stage-1 collection, the graph
//! repair engine's plan, and the refresh after the repairs (stage 7). Walking 150,000 Python
//! edge objects costs far more than analysing them, so while a cycle runs the first full read
//! is kept ([`GraphMemo`]) and the later reads check the graph against it instead of walking
//! it again.
//!
//! The reuse rule. A later read in the same cycle reuses the ends read before when:
//! - the task graph is the same object;
//! - its `nodes` is the same dict holding the same key objects in the same order (or the
//!   graph still has no `nodes`);
//! - its `edges` is a list whose items are some of the edge objects read before, in the same
//!   order (edges removed since, as `remove_edge` does, are left out; any other edge object
//!   means a full read).
//!
//! Only the objects' identities are compared, not their contents: an edge object is taken to
//! keep its ends (`source_id`, `target_id`) for the rest of the cycle (FAZA 27 replaces edges,
//! it never changes an edge's ends in place). Weights and edge types are read again each time
//! the repair engine needs them. A read is kept only when every node id and edge end is a
//! non-empty `str` and no edge is a dict (where the engine's two readers differ), and only
//! while a cycle runs: the controller opens the memo before the stage-1 collection and drops
//! it (with its references to the graph's objects) when the cycle ends. Outside a cycle every
//! read walks the whole graph.

use crate::engine::integration_layer::graph::Graph;
use parking_lot::Mutex;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// What a full read of a task graph found.
pub struct GraphMemo {
    graph: Py<PyAny>,
    /// The `nodes` dict and its keys in order; `None` when the graph had no `nodes`.
    nodes: Option<(Py<PyAny>, Vec<Py<PyAny>>)>,
    /// The `edges` list's items, in order: edge `i` of `shape`.
    edges: Vec<Py<PyAny>>,
    /// The interned graph: `listed` names from the node dict, then the other edge ends.
    shape: Graph,
    listed: usize,
}

impl GraphMemo {
    pub fn new(
        graph: Py<PyAny>,
        nodes: Option<(Py<PyAny>, Vec<Py<PyAny>>)>,
        edges: Vec<Py<PyAny>>,
        shape: Graph,
        listed: usize,
    ) -> Option<Self> {
        (edges.len() == shape.edges().len()).then_some(GraphMemo {
            graph,
            nodes,
            edges,
            shape,
            listed,
        })
    }

    /// The edges of `g` now, as indices of the edges read before, if the reuse rule holds.
    pub fn still_holds(
        &self,
        g: &Bound<'_, PyAny>,
        nodes: Option<&Bound<'_, PyAny>>,
        edges: Option<&Bound<'_, PyAny>>,
    ) -> Option<Vec<u32>> {
        if !g.is(&self.graph) {
            return None;
        }
        match (nodes, &self.nodes) {
            (None, None) => {}
            (Some(now), Some((then, keys))) if now.is(then) => {
                if !same_keys(now.cast::<PyDict>().ok()?, keys) {
                    return None;
                }
            }
            _ => return None,
        }
        let list = edges?.cast_exact::<PyList>().ok()?;
        kept_edges(list, &self.edges)
    }

    /// [`GraphMemo::still_holds`] for a reader of the edges alone (the repair engine).
    pub fn still_holds_edges(
        &self,
        g: &Bound<'_, PyAny>,
        edges: Option<&Bound<'_, PyAny>>,
    ) -> Option<Vec<u32>> {
        if !g.is(&self.graph) {
            return None;
        }
        kept_edges(edges?.cast_exact::<PyList>().ok()?, &self.edges)
    }

    /// The graph as the integration layer reads it, keeping the edges `kept`.
    pub fn shape_keeping(&self, kept: &[u32]) -> Graph {
        if kept.len() == self.shape.edges().len() {
            return self.shape.clone();
        }
        self.shape.keeping_edges(self.listed, kept)
    }

    /// The graph as the repair engine reads it (edge ends only, no node list).
    pub fn edges_keeping(&self, kept: &[u32]) -> Graph {
        self.shape.keeping_edges(0, kept)
    }

    /// Edge object `i` as read.
    pub fn edge<'py>(&self, py: Python<'py>, i: u32) -> Bound<'py, PyAny> {
        self.edges[i as usize].bind(py).clone()
    }
}

/// Whether the dict holds exactly `keys` (the same objects), in that order. Only the dict's
/// entry table is read: no key is touched, no Python code runs.
fn same_keys(d: &Bound<'_, PyDict>, keys: &[Py<PyAny>]) -> bool {
    if d.len() != keys.len() {
        return false;
    }
    let mut pos: ffi::Py_ssize_t = 0;
    let mut key: *mut ffi::PyObject = std::ptr::null_mut();
    let mut value: *mut ffi::PyObject = std::ptr::null_mut();
    for expected in keys {
        // SAFETY: the GIL is held; PyDict_Next gives borrowed pointers and runs no Python code.
        let more = unsafe { ffi::PyDict_Next(d.as_ptr(), &mut pos, &mut key, &mut value) };
        if more == 0 || key != expected.as_ptr() {
            return false;
        }
    }
    true
}

/// The indices of `read` that `list` holds, when the list holds nothing else and keeps their
/// order. Only pointers are compared: the list's item array, not the edge objects.
fn kept_edges(list: &Bound<'_, PyList>, read: &[Py<PyAny>]) -> Option<Vec<u32>> {
    let n = list.len();
    if n > read.len() {
        return None;
    }
    let mut kept = Vec::with_capacity(n);
    let mut j = 0usize;
    for i in 0..n {
        // SAFETY: the GIL is held, `i` is below the list's length, and nothing in this loop
        // runs Python code that could change the list; the pointer is borrowed, not kept.
        let item = unsafe { ffi::PyList_GET_ITEM(list.as_ptr(), i as ffi::Py_ssize_t) };
        while j < read.len() && read[j].as_ptr() != item {
            j += 1;
        }
        if j == read.len() {
            return None;
        }
        kept.push(j as u32);
        j += 1;
    }
    Some(kept)
}

/// The memo of one integration layer: open while at least one cycle runs.
#[derive(Default)]
pub struct MemoSlot {
    state: Mutex<(u32, Option<GraphMemo>)>,
}

impl MemoSlot {
    /// A cycle starts.
    pub fn open(&self) {
        self.state.lock().0 += 1;
    }

    /// A cycle ends; the memo is dropped when no cycle runs. Returns it, to drop with the
    /// GIL held.
    pub fn close(&self) -> Option<GraphMemo> {
        let mut s = self.state.lock();
        s.0 = s.0.saturating_sub(1);
        if s.0 == 0 {
            s.1.take()
        } else {
            None
        }
    }

    pub fn is_open(&self) -> bool {
        self.state.lock().0 > 0
    }

    /// Takes the memo out to check it (no lock is held while Python runs).
    pub fn take(&self) -> Option<GraphMemo> {
        self.state.lock().1.take()
    }

    /// Keeps a new full read while a cycle runs; hands back what is to be dropped.
    pub fn replace(&self, memo: GraphMemo) -> Option<GraphMemo> {
        let mut s = self.state.lock();
        if s.0 > 0 {
            s.1.replace(memo)
        } else {
            Some(memo)
        }
    }

    /// Puts a memo back if a cycle still runs and no other memo took its place; else hands
    /// it back to be dropped.
    pub fn put(&self, memo: GraphMemo) -> Option<GraphMemo> {
        let mut s = self.state.lock();
        if s.0 > 0 && s.1.is_none() {
            s.1 = Some(memo);
            None
        } else {
            Some(memo)
        }
    }
}
