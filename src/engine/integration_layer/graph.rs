//! Task graph measurements from its nodes and edges: cycles, bottlenecks, complexity.
//!
//! Cycles are counted as the back edges of a depth-first search (nodes in the graph's order,
//! neighbours in edge order), which is how the FAZA 27 `GraphAnalyzer.find_all_cycles` counts
//! them, but iterative (no recursion limit) and independent of set ordering, so the same graph
//! always gives the same answer. Zero back edges means the graph is acyclic.
//!
//! A graph read is interned once ([`Graph`]: node ids become indices as they are read) and
//! indexed once ([`analyse`]): the cycle, bottleneck and complexity measurements share one
//! adjacency, built by counting sort without hashing. The only hashing is the interning of
//! node ids, with foldhash, a fast hasher seeded at random per process (node ids come from the
//! application's task graph; a random seed keeps crafted colliding ids from being planned in
//! advance).

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use std::hash::BuildHasher;
use std::sync::Arc;

/// A node's fan-in or fan-out from this many distinct neighbours on makes it a bottleneck
/// (the threshold the FAZA 27 graph health report uses).
pub const BOTTLENECK_THRESHOLD: usize = 5;
/// Cycles listed under `cycles` at most (all are counted).
pub const MAX_LISTED_CYCLES: usize = 16;
/// Nodes kept per listed cycle.
pub const MAX_CYCLE_NODES: usize = 64;

/// Node ids and directed edges as plain text (the JSON form of a graph read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    pub nodes: Vec<String>,
    pub edges: Vec<(String, String)>,
}

/// A task graph with its node ids interned: `names` in first-seen order (the listed nodes,
/// then edge ends not listed), edges as index pairs in read order, parallel edges kept.
///
/// Indices are `u32`: the binding reads at most a million edges (`MAX_GRAPH_EDGES`), so a
/// graph has at most three million names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    /// Shared: a graph derived from another with the same names does not copy them.
    names: Arc<Vec<String>>,
    edges: Vec<(u32, u32)>,
}

impl Graph {
    /// Interns a text graph.
    pub fn from_shape(shape: &Shape) -> Graph {
        let mut b = GraphBuilder::with_capacity(shape.nodes.len(), shape.edges.len());
        for n in &shape.nodes {
            b.node(n);
        }
        for (s, d) in &shape.edges {
            let (a, z) = (b.node(s), b.node(d));
            b.edge(a, z);
        }
        b.finish()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn name(&self, node: u32) -> &str {
        &self.names[node as usize]
    }

    pub fn node_count(&self) -> usize {
        self.names.len()
    }

    /// `(source, target)` per edge, in read order.
    pub fn edges(&self) -> &[(u32, u32)] {
        &self.edges
    }

    /// The graph a read would give if only the edges `kept` (ascending indices into
    /// [`Graph::edges`]) were left, the node list being the same: the first `listed` names
    /// (those read from the node list) keep their indices, the names of edge ends beyond
    /// them are numbered again in the order the kept edges reach them.
    pub fn keeping_edges(&self, listed: usize, kept: &[u32]) -> Graph {
        let listed = listed.min(self.names.len());
        let mut remap = vec![u32::MAX; self.names.len()];
        for (i, slot) in remap.iter_mut().enumerate().take(listed) {
            *slot = i as u32;
        }
        let mut extra: Vec<u32> = Vec::new();
        let mut edges = Vec::with_capacity(kept.len());
        for &e in kept {
            let (a, b) = self.edges[e as usize];
            for x in [a, b] {
                if remap[x as usize] == u32::MAX {
                    remap[x as usize] = (listed + extra.len()) as u32;
                    extra.push(x);
                }
            }
            edges.push((remap[a as usize], remap[b as usize]));
        }
        let same_names = listed + extra.len() == self.names.len()
            && extra
                .iter()
                .enumerate()
                .all(|(k, &x)| x as usize == listed + k);
        let names = if same_names {
            self.names.clone()
        } else {
            let mut names: Vec<String> = self.names[..listed].to_vec();
            names.extend(extra.iter().map(|&x| self.names[x as usize].clone()));
            Arc::new(names)
        };
        Graph { names, edges }
    }

    /// The edges leaving each node, in read order.
    pub fn out_edges(&self) -> Adjacency {
        let n = self.names.len();
        let mut start = vec![0u32; n + 1];
        for &(a, _) in &self.edges {
            start[a as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut edge = vec![0u32; self.edges.len()];
        for (i, &(a, _)) in self.edges.iter().enumerate() {
            let slot = &mut fill[a as usize];
            edge[*slot as usize] = i as u32;
            *slot += 1;
        }
        Adjacency { start, edge }
    }
}

/// Edge indices grouped by source node (compressed rows): node `a`'s edges are
/// `edge[start[a]..start[a + 1]]`, in read order.
#[derive(Debug, Clone)]
pub struct Adjacency {
    start: Vec<u32>,
    edge: Vec<u32>,
}

impl Adjacency {
    pub fn of(&self, node: u32) -> &[u32] {
        let a = node as usize;
        &self.edge[self.start[a] as usize..self.start[a + 1] as usize]
    }
}

/// Builds a [`Graph`], interning node ids.
#[derive(Debug, Clone, Default)]
pub struct GraphBuilder {
    /// Indices into `names`, hashed by name.
    ids: HashTable<u32>,
    hasher: RandomState,
    names: Vec<String>,
    edges: Vec<(u32, u32)>,
}

impl GraphBuilder {
    pub fn new() -> Self {
        GraphBuilder::default()
    }

    pub fn with_capacity(nodes: usize, edges: usize) -> Self {
        GraphBuilder {
            ids: HashTable::with_capacity(nodes),
            hasher: RandomState::default(),
            names: Vec::with_capacity(nodes),
            edges: Vec::with_capacity(edges),
        }
    }

    /// The index of a node id, added if new.
    pub fn node(&mut self, name: &str) -> u32 {
        let hash = self.hasher.hash_one(name);
        let names = &mut self.names;
        let hasher = &self.hasher;
        let entry = self.ids.entry(
            hash,
            |&i| names[i as usize] == name,
            |&i| hasher.hash_one(names[i as usize].as_str()),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(o) => *o.get(),
            hashbrown::hash_table::Entry::Vacant(v) => {
                let i = names.len() as u32;
                names.push(name.to_owned());
                v.insert(i);
                i
            }
        }
    }

    pub fn edge(&mut self, source: u32, target: u32) {
        self.edges.push((source, target));
    }

    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    /// Names read so far.
    pub fn node_count(&self) -> usize {
        self.names.len()
    }

    pub fn finish(self) -> Graph {
        Graph {
            names: Arc::new(self.names),
            edges: self.edges,
        }
    }
}

/// Distinct successors per node, in first-edge order, and distinct fan-in.
struct Index {
    start: Vec<u32>,
    succ: Vec<u32>,
    fan_in: Vec<u32>,
}

impl Index {
    fn new(g: &Graph) -> Index {
        let n = g.names.len();
        let adj = g.out_edges();
        let mut start = adj.start;
        let mut succ: Vec<u32> = adj.edge.iter().map(|&e| g.edges[e as usize].1).collect();
        let mut fan_in = vec![0u32; n];
        // `seen_from[b] == a` once a -> b is kept: parallel edges count once, without a set.
        let mut seen_from = vec![u32::MAX; n];
        let mut kept = 0usize;
        for a in 0..n {
            let (lo, hi) = (start[a] as usize, start[a + 1] as usize);
            start[a] = kept as u32;
            for i in lo..hi {
                let b = succ[i];
                if seen_from[b as usize] != a as u32 {
                    seen_from[b as usize] = a as u32;
                    succ[kept] = b;
                    kept += 1;
                    fan_in[b as usize] += 1;
                }
            }
        }
        start[n] = kept as u32;
        succ.truncate(kept);
        Index {
            start,
            succ,
            fan_in,
        }
    }

    fn fan_out(&self, a: usize) -> usize {
        (self.start[a + 1] - self.start[a]) as usize
    }
}

/// A node with a high fan-in or fan-out.
#[derive(Debug, Clone, PartialEq)]
pub struct Bottleneck {
    pub node: String,
    pub fan_in: usize,
    pub fan_out: usize,
}

/// What one graph read measures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Analysis {
    /// DFS back edges, self-loops included.
    pub cycle_count: usize,
    /// The first [`MAX_LISTED_CYCLES`] cycles as node lists `[a, b, c]` meaning
    /// `a -> b -> c -> a`.
    pub cycles: Vec<Vec<String>>,
    /// Nodes whose distinct fan-in or fan-out reaches the threshold, highest
    /// fan-in + fan-out first (ties keep the graph's node order).
    pub bottlenecks: Vec<Bottleneck>,
    /// Node count (listed nodes and edge ends) plus distinct edge count.
    pub complexity: usize,
}

/// Cycles, bottlenecks (at `threshold`) and complexity of a graph, from one index.
pub fn analyse(g: &Graph, threshold: usize) -> Analysis {
    let ix = Index::new(g);
    let (cycle_count, cycles) = cycles(g, &ix);
    let mut bottlenecks: Vec<Bottleneck> = (0..g.names.len())
        .filter(|&i| ix.fan_in[i] as usize >= threshold || ix.fan_out(i) >= threshold)
        .map(|i| Bottleneck {
            node: g.names[i].clone(),
            fan_in: ix.fan_in[i] as usize,
            fan_out: ix.fan_out(i),
        })
        .collect();
    bottlenecks.sort_by_key(|b| std::cmp::Reverse(b.fan_in + b.fan_out));
    Analysis {
        cycle_count,
        cycles,
        bottlenecks,
        complexity: g.names.len() + ix.succ.len(),
    }
}

fn cycles(g: &Graph, ix: &Index) -> (usize, Vec<Vec<String>>) {
    let n = g.names.len();
    // 0 = unvisited, 1 = on the current path, 2 = finished.
    let mut color = vec![0u8; n];
    let mut position = vec![u32::MAX; n];
    let mut path: Vec<u32> = Vec::new();
    let mut count = 0usize;
    let mut listed: Vec<Vec<String>> = Vec::new();
    // (node, position in `succ` of the next neighbour to look at)
    let mut stack: Vec<(u32, u32)> = Vec::new();
    for start in 0..n {
        if color[start] != 0 {
            continue;
        }
        color[start] = 1;
        position[start] = path.len() as u32;
        path.push(start as u32);
        stack.push((start as u32, ix.start[start]));
        while let Some(top) = stack.last_mut() {
            let node = top.0 as usize;
            if top.1 >= ix.start[node + 1] {
                color[node] = 2;
                path.pop();
                stack.pop();
                continue;
            }
            let next = ix.succ[top.1 as usize] as usize;
            top.1 += 1;
            match color[next] {
                0 => {
                    color[next] = 1;
                    position[next] = path.len() as u32;
                    path.push(next as u32);
                    stack.push((next as u32, ix.start[next]));
                }
                1 => {
                    count += 1;
                    if listed.len() < MAX_LISTED_CYCLES {
                        let from = position[next] as usize;
                        listed.push(
                            path[from..]
                                .iter()
                                .take(MAX_CYCLE_NODES)
                                .map(|&i| g.names[i as usize].clone())
                                .collect(),
                        );
                    }
                }
                _ => {}
            }
        }
    }
    (count, listed)
}

/// A listed cycle without its closing repeat: `[a, b, a]` (the analyzer's form) becomes
/// `[a, b]`, the form the repair engine expects.
pub fn normalize_cycle(mut nodes: Vec<String>) -> Vec<String> {
    if nodes.len() > 1 && nodes.first() == nodes.last() {
        nodes.pop();
    }
    nodes.truncate(MAX_CYCLE_NODES);
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn shape(nodes: &[&str], edges: &[(&str, &str)]) -> Shape {
        Shape {
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            edges: edges
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    fn analysed(s: &Shape) -> Analysis {
        analyse(&Graph::from_shape(s), BOTTLENECK_THRESHOLD)
    }

    #[test]
    fn a_dag_has_no_cycle() {
        let a = analysed(&shape(
            &["a", "b", "c"],
            &[("a", "b"), ("b", "c"), ("a", "c")],
        ));
        assert_eq!((a.cycle_count, a.cycles), (0, vec![] as Vec<Vec<String>>));
        assert_eq!(a.complexity, 6);
    }

    #[test]
    fn cycles_are_listed_without_the_closing_repeat() {
        let a = analysed(&shape(
            &["a", "b", "c", "d"],
            &[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d")],
        ));
        assert_eq!(a.cycle_count, 2);
        assert_eq!(a.cycles, vec![vec!["a", "b", "c"], vec!["d"]]);
    }

    #[test]
    fn parallel_edges_count_once_and_edge_only_nodes_are_found() {
        let s = shape(&[], &[("x", "y"), ("x", "y"), ("y", "x")]);
        let a = analysed(&s);
        assert_eq!(a.cycle_count, 1);
        assert_eq!(a.complexity, 2 + 2);
        let g = Graph::from_shape(&s);
        assert_eq!(g.names(), ["x", "y"]);
        assert_eq!(g.edges(), [(0, 1), (0, 1), (1, 0)]);
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let names: Vec<String> = (0..200_000).map(|i| format!("n{i}")).collect();
        let mut s = Shape {
            nodes: names.clone(),
            edges: Vec::new(),
        };
        for w in names.windows(2) {
            s.edges.push((w[0].clone(), w[1].clone()));
        }
        s.edges
            .push((names[names.len() - 1].clone(), names[0].clone()));
        let a = analysed(&s);
        assert_eq!(a.cycle_count, 1);
        assert_eq!(a.cycles[0].len(), MAX_CYCLE_NODES);
    }

    #[test]
    fn bottlenecks_rank_by_total_fan() {
        let mut edges = Vec::new();
        for i in 0..5 {
            edges.push(("hub".to_string(), format!("t{i}")));
        }
        for i in 0..6 {
            edges.push((format!("s{i}"), "sink".to_string()));
        }
        let g = Graph::from_shape(&Shape {
            nodes: vec![],
            edges,
        });
        let b = analyse(&g, BOTTLENECK_THRESHOLD).bottlenecks;
        assert_eq!(
            b.iter().map(|b| b.node.as_str()).collect::<Vec<_>>(),
            vec!["sink", "hub"]
        );
        assert_eq!((b[0].fan_in, b[0].fan_out), (6, 0));
        assert!(analyse(&g, 7).bottlenecks.is_empty());
    }

    #[test]
    fn out_edges_group_edge_indices_by_source_in_read_order() {
        let g = Graph::from_shape(&shape(
            &["a", "b", "c"],
            &[("b", "c"), ("a", "b"), ("b", "a"), ("a", "c"), ("b", "c")],
        ));
        let adj = g.out_edges();
        assert_eq!(adj.of(0), [1, 3]);
        assert_eq!(adj.of(1), [0, 2, 4]);
        assert!(adj.of(2).is_empty());
    }

    #[test]
    fn a_graph_keeping_some_edges_is_the_graph_read_with_those_edges() {
        let mut rng = Rng(0x51_7cc1_b727_220a);
        let mut renumbered = 0;
        for round in 0..2000 {
            let pool = 1 + rng.below(10);
            let name = |i: usize| format!("n{i}");
            let mut nodes: Vec<String> = (0..rng.below(pool))
                .map(|_| name(rng.below(pool)))
                .collect();
            nodes.dedup();
            let edges: Vec<(String, String)> = (0..rng.below(3 * pool + 1))
                .map(|_| (name(rng.below(pool)), name(rng.below(pool))))
                .collect();
            let full = Graph::from_shape(&Shape {
                nodes: nodes.clone(),
                edges: edges.clone(),
            });
            let kept: Vec<u32> = (0..edges.len() as u32)
                .filter(|_| rng.below(3) != 0)
                .collect();
            let kept_edges: Vec<(String, String)> =
                kept.iter().map(|&i| edges[i as usize].clone()).collect();
            let listed = Graph::from_shape(&Shape {
                nodes: nodes.clone(),
                edges: vec![],
            })
            .node_count();
            let expected = Graph::from_shape(&Shape {
                nodes: nodes.clone(),
                edges: kept_edges.clone(),
            });
            let derived = full.keeping_edges(listed, &kept);
            assert_eq!(derived, expected, "round {round}");
            renumbered += usize::from(derived.names() != full.names());
            // Without the node list: names in the order the kept edges reach them.
            let edges_only = Graph::from_shape(&Shape {
                nodes: vec![],
                edges: kept_edges,
            });
            assert_eq!(
                full.keeping_edges(0, &kept).names(),
                edges_only.names(),
                "round {round}"
            );
            assert_eq!(
                full.keeping_edges(0, &kept).edges(),
                edges_only.edges(),
                "round {round}"
            );
        }
        assert!(renumbered > 300, "{renumbered}");
    }

    #[test]
    fn normalize_drops_only_a_closing_repeat() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(normalize_cycle(v(&["t1", "t2", "t1"])), v(&["t1", "t2"]));
        assert_eq!(normalize_cycle(v(&["a", "b"])), v(&["a", "b"]));
        assert_eq!(normalize_cycle(v(&["a"])), v(&["a"]));
    }

    // ---- property test against a plain reference ---------------------------------------

    /// The measurements written the plain way, on text: nodes in first-seen order, distinct
    /// successors in first-edge order, a recursive DFS counting edges back into the current
    /// path, fans from a set of distinct pairs.
    fn reference(s: &Shape, threshold: usize) -> Analysis {
        let mut order: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for n in s
            .nodes
            .iter()
            .chain(s.edges.iter().flat_map(|(a, b)| [a, b]))
        {
            if seen.insert(n.clone()) {
                order.push(n.clone());
            }
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for e in &s.edges {
            if !pairs.contains(e) {
                pairs.push(e.clone());
            }
        }
        let succ = |n: &str| -> Vec<String> {
            pairs
                .iter()
                .filter(|(a, _)| a == n)
                .map(|(_, b)| b.clone())
                .collect()
        };
        fn visit(
            n: &str,
            succ: &dyn Fn(&str) -> Vec<String>,
            state: &mut HashMap<String, u8>,
            path: &mut Vec<String>,
            count: &mut usize,
            listed: &mut Vec<Vec<String>>,
        ) {
            state.insert(n.to_string(), 1);
            path.push(n.to_string());
            for m in succ(n) {
                match state.get(&m).copied().unwrap_or(0) {
                    0 => visit(&m, succ, state, path, count, listed),
                    1 => {
                        *count += 1;
                        if listed.len() < MAX_LISTED_CYCLES {
                            let from = path.iter().position(|p| *p == m).unwrap();
                            listed
                                .push(path[from..].iter().take(MAX_CYCLE_NODES).cloned().collect());
                        }
                    }
                    _ => {}
                }
            }
            path.pop();
            state.insert(n.to_string(), 2);
        }
        let mut state = HashMap::new();
        let (mut count, mut listed) = (0, Vec::new());
        for n in &order {
            if !state.contains_key(n) {
                visit(
                    n,
                    &succ,
                    &mut state,
                    &mut Vec::new(),
                    &mut count,
                    &mut listed,
                );
            }
        }
        let mut bottlenecks: Vec<Bottleneck> = order
            .iter()
            .map(|n| Bottleneck {
                node: n.clone(),
                fan_in: pairs.iter().filter(|(_, b)| b == n).count(),
                fan_out: pairs.iter().filter(|(a, _)| a == n).count(),
            })
            .filter(|b| b.fan_in >= threshold || b.fan_out >= threshold)
            .collect();
        bottlenecks.sort_by_key(|b| std::cmp::Reverse(b.fan_in + b.fan_out));
        Analysis {
            cycle_count: count,
            cycles: listed,
            bottlenecks,
            complexity: order.len() + pairs.len(),
        }
    }

    use crate::engine::test_rng::TestRng as Rng;

    #[test]
    fn the_shared_index_measures_what_the_plain_reference_measures() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut with_cycles, mut with_bottlenecks, mut truncated) = (0, 0, 0);
        for round in 0..3000 {
            // Small graphs with many coincidences: duplicate nodes, parallel edges, self-loops,
            // edge ends that are not listed, dense and sparse.
            let pool = 1 + rng.below(if round % 10 == 0 { 60 } else { 12 });
            let name = |i: usize| format!("n{i}");
            let nodes: Vec<String> = (0..rng.below(pool + 2))
                .map(|_| name(rng.below(pool)))
                .collect();
            let edges: Vec<(String, String)> = (0..rng.below(4 * pool + 1))
                .map(|_| (name(rng.below(pool)), name(rng.below(pool))))
                .collect();
            let s = Shape { nodes, edges };
            let threshold = 1 + rng.below(5);
            let got = analyse(&Graph::from_shape(&s), threshold);
            assert_eq!(got, reference(&s, threshold), "round {round}: {s:?}");
            with_cycles += usize::from(got.cycle_count > 0);
            with_bottlenecks += usize::from(!got.bottlenecks.is_empty());
            truncated += usize::from(got.cycle_count > MAX_LISTED_CYCLES);
        }
        // The generator covers the interesting cases.
        assert!(with_cycles > 1000 && with_bottlenecks > 1000 && truncated > 50);
    }
}
