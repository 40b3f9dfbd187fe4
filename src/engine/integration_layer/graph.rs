//! Task graph measurements from its nodes and edges: cycles, bottlenecks, complexity.
//!
//! Cycles are counted as the back edges of a depth-first search (nodes in the graph's order,
//! neighbours in edge order), which is how the FAZA 27 `GraphAnalyzer.find_all_cycles` counts
//! them, but iterative (no recursion limit) and independent of set ordering, so the same graph
//! always gives the same answer. Zero back edges means the graph is acyclic.

use std::collections::{HashMap, HashSet};

/// A node's fan-in or fan-out from this many distinct neighbours on makes it a bottleneck
/// (the threshold the FAZA 27 graph health report uses).
pub const BOTTLENECK_THRESHOLD: usize = 5;
/// Cycles listed under `cycles` at most (all are counted).
pub const MAX_LISTED_CYCLES: usize = 16;
/// Nodes kept per listed cycle.
pub const MAX_CYCLE_NODES: usize = 64;

/// Node ids and directed edges, as read from the graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    pub nodes: Vec<String>,
    pub edges: Vec<(String, String)>,
}

struct Indexed<'a> {
    names: Vec<&'a str>,
    /// Distinct successors per node, in first-edge order.
    out: Vec<Vec<usize>>,
    fan_in: Vec<usize>,
    distinct_edges: usize,
}

fn intern<'a>(ids: &mut HashMap<&'a str, usize>, names: &mut Vec<&'a str>, name: &'a str) -> usize {
    *ids.entry(name).or_insert_with(|| {
        names.push(name);
        names.len() - 1
    })
}

fn index(shape: &Shape) -> Indexed<'_> {
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(shape.nodes.len());
    let mut names: Vec<&str> = Vec::with_capacity(shape.nodes.len());
    for n in &shape.nodes {
        intern(&mut ids, &mut names, n);
    }
    let mut pairs = Vec::with_capacity(shape.edges.len());
    for (s, d) in &shape.edges {
        let a = intern(&mut ids, &mut names, s);
        let b = intern(&mut ids, &mut names, d);
        pairs.push((a, b));
    }
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    let mut fan_in = vec![0usize; names.len()];
    let mut distinct_edges = 0;
    let mut seen: HashSet<(usize, usize)> = HashSet::with_capacity(pairs.len());
    for (a, b) in pairs {
        if seen.insert((a, b)) {
            out[a].push(b);
            fan_in[b] += 1;
            distinct_edges += 1;
        }
    }
    Indexed {
        names,
        out,
        fan_in,
        distinct_edges,
    }
}

/// The number of cycles (DFS back edges, self-loops included) and the first
/// [`MAX_LISTED_CYCLES`] of them as node lists `[a, b, c]` meaning `a -> b -> c -> a`.
pub fn cycles(shape: &Shape) -> (usize, Vec<Vec<String>>) {
    let g = index(shape);
    let n = g.names.len();
    // 0 = unvisited, 1 = on the current path, 2 = finished.
    let mut color = vec![0u8; n];
    let mut position = vec![usize::MAX; n];
    let mut path: Vec<usize> = Vec::new();
    let mut count = 0usize;
    let mut listed: Vec<Vec<String>> = Vec::new();
    for start in 0..n {
        if color[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        color[start] = 1;
        position[start] = path.len();
        path.push(start);
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            if top.1 >= g.out[node].len() {
                color[node] = 2;
                path.pop();
                stack.pop();
                continue;
            }
            let next = g.out[node][top.1];
            top.1 += 1;
            match color[next] {
                0 => {
                    color[next] = 1;
                    position[next] = path.len();
                    path.push(next);
                    stack.push((next, 0));
                }
                1 => {
                    count += 1;
                    if listed.len() < MAX_LISTED_CYCLES {
                        let from = position[next];
                        listed.push(
                            path[from..]
                                .iter()
                                .take(MAX_CYCLE_NODES)
                                .map(|&i| g.names[i].to_owned())
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

/// A node with a high fan-in or fan-out.
#[derive(Debug, Clone, PartialEq)]
pub struct Bottleneck {
    pub node: String,
    pub fan_in: usize,
    pub fan_out: usize,
}

/// Nodes whose distinct fan-in or fan-out reaches `threshold`, highest fan-in + fan-out first
/// (ties keep the graph's node order).
pub fn bottlenecks(shape: &Shape, threshold: usize) -> Vec<Bottleneck> {
    let g = index(shape);
    let mut found: Vec<Bottleneck> = (0..g.names.len())
        .filter(|&i| g.fan_in[i] >= threshold || g.out[i].len() >= threshold)
        .map(|i| Bottleneck {
            node: g.names[i].to_owned(),
            fan_in: g.fan_in[i],
            fan_out: g.out[i].len(),
        })
        .collect();
    found.sort_by_key(|b| std::cmp::Reverse(b.fan_in + b.fan_out));
    found
}

/// Node count (listed nodes and edge ends) plus distinct edge count.
pub fn complexity(shape: &Shape) -> usize {
    let g = index(shape);
    g.names.len() + g.distinct_edges
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

    fn shape(nodes: &[&str], edges: &[(&str, &str)]) -> Shape {
        Shape {
            nodes: nodes.iter().map(|s| s.to_string()).collect(),
            edges: edges
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_dag_has_no_cycle() {
        let s = shape(&["a", "b", "c"], &[("a", "b"), ("b", "c"), ("a", "c")]);
        assert_eq!(cycles(&s), (0, vec![]));
        assert_eq!(complexity(&s), 6);
    }

    #[test]
    fn cycles_are_listed_without_the_closing_repeat() {
        let s = shape(
            &["a", "b", "c", "d"],
            &[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d")],
        );
        let (count, listed) = cycles(&s);
        assert_eq!(count, 2);
        assert_eq!(listed, vec![vec!["a", "b", "c"], vec!["d"]]);
    }

    #[test]
    fn parallel_edges_count_once_and_edge_only_nodes_are_found() {
        let s = shape(&[], &[("x", "y"), ("x", "y"), ("y", "x")]);
        assert_eq!(cycles(&s).0, 1);
        assert_eq!(complexity(&s), 2 + 2);
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
        let (count, listed) = cycles(&s);
        assert_eq!(count, 1);
        assert_eq!(listed[0].len(), MAX_CYCLE_NODES);
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
        let s = Shape {
            nodes: vec![],
            edges,
        };
        let b = bottlenecks(&s, BOTTLENECK_THRESHOLD);
        assert_eq!(
            b.iter().map(|b| b.node.as_str()).collect::<Vec<_>>(),
            vec!["sink", "hub"]
        );
        assert_eq!((b[0].fan_in, b[0].fan_out), (6, 0));
        assert!(bottlenecks(&s, 7).is_empty());
    }

    #[test]
    fn normalize_drops_only_a_closing_repeat() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(normalize_cycle(v(&["t1", "t2", "t1"])), v(&["t1", "t2"]));
        assert_eq!(normalize_cycle(v(&["a", "b"])), v(&["a", "b"]));
        assert_eq!(normalize_cycle(v(&["a"])), v(&["a"]));
    }
}
