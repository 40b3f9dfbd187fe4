//! Cycle breaking on a task graph read from the FAZA 27 layer.
//!
//! The binding reads the graph's edges into a `GraphView`: node ids interned, and the weight
//! and WEAK flag of the edges that can lie on a cycle ([`edges_on_cycles`]; the others can
//! never be cut, so their weights are not read). This module finds cycles and picks, for each
//! one, the edge that is cheapest to drop: a WEAK edge first, then the lowest weight, then the
//! edge that closes the most of the cycles found so far, then the first in cycle order.
//! `remove_edge(src, dst)` drops every parallel edge between the two nodes, so choices are
//! made per node pair.

use crate::engine::integration_layer::graph::{Adjacency, Graph, GraphBuilder};
use std::collections::HashSet;

/// Most edges one repair removes. A graph needing more is left to the next cycle, reported
/// as improved rather than fixed.
pub const MAX_EDGES_REMOVED: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub src: String,
    pub dst: String,
    /// `None` when the edge has no numeric weight.
    pub weight: Option<f64>,
    /// The FAZA 27 `EdgeType.WEAK` ("preferred but not required").
    pub weak: bool,
}

impl Edge {
    pub fn new(src: &str, dst: &str, weight: Option<f64>, weak: bool) -> Self {
        Edge {
            src: src.to_owned(),
            dst: dst.to_owned(),
            weight,
            weak,
        }
    }
}

/// A task graph's edges in read order, with node ids interned. An edge whose weight and
/// type were not read has no weight and is not WEAK.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphView {
    graph: Graph,
    weight: Vec<Option<f64>>,
    weak: Vec<bool>,
}

impl GraphView {
    /// A view of `graph` with no edge weights or types read yet.
    pub fn new(graph: Graph) -> Self {
        let n = graph.edges().len();
        GraphView {
            graph,
            weight: vec![None; n],
            weak: vec![false; n],
        }
    }

    /// A view with every edge's weight and type known.
    pub fn from_edges(edges: Vec<Edge>) -> Self {
        let mut b = GraphBuilder::with_capacity(edges.len(), edges.len());
        for e in &edges {
            let (s, d) = (b.node(&e.src), b.node(&e.dst));
            b.edge(s, d);
        }
        let mut view = GraphView::new(b.finish());
        for (i, e) in edges.into_iter().enumerate() {
            view.set_strength(i, e.weight, e.weak);
        }
        view
    }

    /// Records an edge's weight and whether it is WEAK.
    pub fn set_strength(&mut self, edge: usize, weight: Option<f64>, weak: bool) {
        if edge < self.weight.len() {
            self.weight[edge] = weight;
            self.weak[edge] = weak;
        }
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    pub fn edge_count(&self) -> usize {
        self.graph.edges().len()
    }

    /// Edge `i` with its names, weight and type.
    pub fn edge(&self, i: usize) -> Edge {
        let (s, d) = self.graph.edges()[i];
        Edge::new(
            self.graph.name(s),
            self.graph.name(d),
            self.weight[i],
            self.weak[i],
        )
    }

    /// The first edge `src -> dst` in read order.
    fn find(&self, src: &str, dst: &str) -> Option<Edge> {
        let g = &self.graph;
        g.edges()
            .iter()
            .position(|&(s, d)| g.name(s) == src && g.name(d) == dst)
            .map(|i| self.edge(i))
    }
}

/// The edges that lie on at least one cycle (both ends in the same strongly connected
/// component; a self-loop is one), in read order. Only these can be chosen as cuts, so only
/// their weights and types need reading. Iterative Tarjan, O(V + E).
pub fn edges_on_cycles(g: &Graph) -> Vec<u32> {
    const UNSEEN: u32 = u32::MAX;
    let n = g.node_count();
    let adj = g.out_edges();
    let edges = g.edges();
    let mut order = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut component = vec![UNSEEN; n];
    let mut stack: Vec<u32> = Vec::new();
    // (node, position of the next edge to follow)
    let mut calls: Vec<(u32, u32)> = Vec::new();
    let (mut next_order, mut components) = (0u32, 0u32);
    for root in 0..n as u32 {
        if order[root as usize] != UNSEEN {
            continue;
        }
        order[root as usize] = next_order;
        low[root as usize] = next_order;
        next_order += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        calls.push((root, 0));
        while let Some(top) = calls.last_mut() {
            let v = top.0;
            let out = adj.of(v);
            if (top.1 as usize) < out.len() {
                let w = edges[out[top.1 as usize] as usize].1;
                top.1 += 1;
                if order[w as usize] == UNSEEN {
                    order[w as usize] = next_order;
                    low[w as usize] = next_order;
                    next_order += 1;
                    stack.push(w);
                    on_stack[w as usize] = true;
                    calls.push((w, 0));
                } else if on_stack[w as usize] {
                    low[v as usize] = low[v as usize].min(order[w as usize]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent as usize] = low[parent as usize].min(low[v as usize]);
            }
            if low[v as usize] == order[v as usize] {
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    component[w as usize] = components;
                    if w == v {
                        break;
                    }
                }
                components += 1;
            }
        }
    }
    (0..edges.len() as u32)
        .filter(|&i| {
            let (a, b) = edges[i as usize];
            component[a as usize] == component[b as usize]
        })
        .collect()
}

/// One chosen cut: the edge and the cycle (node list, first node repeated implicitly) it breaks.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    pub edge: Edge,
    pub cycle: Vec<String>,
}

/// The cuts for a graph, and whether the graph is acyclic once they are made.
#[derive(Debug, Clone, PartialEq)]
pub struct CutPlan {
    pub cuts: Vec<Cut>,
    pub acyclic_after: bool,
}

/// Finds one cycle among the edges not `removed`, as edge indices in path order. Iterative
/// DFS (nodes in index order, edges in read order): deep graphs cannot overflow the stack.
fn find_cycle(g: &Graph, adj: &Adjacency, removed: &[bool]) -> Option<Vec<usize>> {
    let n = g.node_count();
    let edges = g.edges();
    // 0 = unvisited, 1 = on the current path, 2 = finished.
    let mut color = vec![0u8; n];
    // The edge used to reach each node on the current path.
    let mut via: Vec<u32> = vec![u32::MAX; n];
    // (node, position of the next edge to look at)
    let mut stack: Vec<(u32, u32)> = Vec::new();
    for start in 0..n as u32 {
        if color[start as usize] != 0 {
            continue;
        }
        stack.push((start, 0));
        color[start as usize] = 1;
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            let out = adj.of(node);
            if top.1 as usize >= out.len() {
                color[node as usize] = 2;
                stack.pop();
                continue;
            }
            let edge_index = out[top.1 as usize];
            top.1 += 1;
            if removed[edge_index as usize] {
                continue;
            }
            let next = edges[edge_index as usize].1;
            match color[next as usize] {
                0 => {
                    color[next as usize] = 1;
                    via[next as usize] = edge_index;
                    stack.push((next, 0));
                }
                1 => {
                    // Back edge: walk the path back from `node` to `next`.
                    let mut path = vec![edge_index as usize];
                    let mut at = node;
                    while at != next {
                        let ei = via[at as usize];
                        if ei == u32::MAX {
                            break;
                        }
                        path.push(ei as usize);
                        at = edges[ei as usize].0;
                    }
                    path.reverse();
                    return Some(path);
                }
                _ => {}
            }
        }
    }
    None
}

/// Whether the graph has a cycle.
pub fn has_cycle(view: &GraphView) -> bool {
    let g = &view.graph;
    find_cycle(g, &g.out_edges(), &vec![false; g.edges().len()]).is_some()
}

/// The sort key of a candidate: WEAK first, then lowest weight (unknown weights last), then
/// the one that closes more known cycles. Lower is weaker.
type Strength = (bool, f64, std::cmp::Reverse<usize>);

fn strength(e: &Edge, coverage: usize) -> Strength {
    (
        !e.weak,
        e.weight.unwrap_or(f64::INFINITY),
        std::cmp::Reverse(coverage),
    )
}

/// The position of the weakest candidate; ties keep the first.
fn weakest(candidates: &[Edge], coverage: impl Fn(&Edge) -> usize) -> Option<usize> {
    let mut best: Option<(usize, Strength)> = None;
    for (pos, e) in candidates.iter().enumerate() {
        let key = strength(e, coverage(e));
        let better = match &best {
            None => true,
            Some((_, b)) => key.partial_cmp(b) == Some(std::cmp::Ordering::Less),
        };
        if better {
            best = Some((pos, key));
        }
    }
    best.map(|(pos, _)| pos)
}

/// Breaks cycles in the graph one at a time until it is acyclic or `max_cuts` edges are chosen.
pub fn plan_cuts(view: &GraphView, max_cuts: usize) -> CutPlan {
    let g = &view.graph;
    let adj = g.out_edges();
    let edges = g.edges();
    // Per edge: its node pair was cut (remove_edge drops all parallel edges together).
    let mut removed = vec![false; edges.len()];
    // A node pair stands for all its parallel edges, so its strength is that of its weakest
    // edge (the first of equals, in read order).
    let pair_weakest = |i: usize| -> usize {
        let (s, d) = edges[i];
        let mut best: Option<usize> = None;
        for &j in adj.of(s) {
            let j = j as usize;
            if edges[j].1 != d {
                continue;
            }
            best = match best {
                Some(b)
                    if strength(&view.edge(j), 0).partial_cmp(&strength(&view.edge(b), 0))
                        != Some(std::cmp::Ordering::Less) =>
                {
                    Some(b)
                }
                _ => Some(j),
            };
        }
        best.unwrap_or(i)
    };
    let mut cuts = Vec::new();
    loop {
        let Some(path) = find_cycle(g, &adj, &removed) else {
            return CutPlan {
                cuts,
                acyclic_after: true,
            };
        };
        if cuts.len() >= max_cuts {
            return CutPlan {
                cuts,
                acyclic_after: false,
            };
        }
        let candidates: Vec<Edge> = path.iter().map(|&i| view.edge(pair_weakest(i))).collect();
        let Some(pos) = weakest(&candidates, |_| 0) else {
            return CutPlan {
                cuts,
                acyclic_after: false,
            };
        };
        let (s, d) = edges[path[pos]];
        for &j in adj.of(s) {
            if edges[j as usize].1 == d {
                removed[j as usize] = true;
            }
        }
        let cycle = path
            .iter()
            .map(|&i| g.name(edges[i].0).to_owned())
            .collect();
        cuts.push(Cut {
            edge: candidates[pos].clone(),
            cycle,
        });
    }
}

/// Breaks cycles given as node lists (`[a, b, c]` means a -> b -> c -> a), for when only the
/// fault's metrics name them. Weights come from `view` when it has the edge. A cycle already
/// broken by an earlier cut is skipped.
pub fn plan_cuts_from_listed(
    cycles: &[Vec<String>],
    view: Option<&GraphView>,
    max_cuts: usize,
) -> Vec<Cut> {
    let as_edges = |cycle: &Vec<String>| -> Vec<Edge> {
        (0..cycle.len())
            .map(|i| {
                let src = &cycle[i];
                let dst = &cycle[(i + 1) % cycle.len()];
                view.and_then(|v| v.find(src, dst))
                    .unwrap_or_else(|| Edge::new(src, dst, None, false))
            })
            .collect()
    };
    let all: Vec<Vec<Edge>> = cycles
        .iter()
        .filter(|c| !c.is_empty())
        .map(as_edges)
        .collect();
    let covers = |e: &Edge| {
        all.iter()
            .filter(|c| c.iter().any(|x| x.src == e.src && x.dst == e.dst))
            .count()
    };
    let mut removed: HashSet<(String, String)> = HashSet::new();
    let mut cuts = Vec::new();
    for (cycle, edges) in cycles.iter().filter(|c| !c.is_empty()).zip(&all) {
        if cuts.len() >= max_cuts {
            break;
        }
        if edges
            .iter()
            .any(|e| removed.contains(&(e.src.clone(), e.dst.clone())))
        {
            continue;
        }
        if let Some(pos) = weakest(edges, covers) {
            let chosen = edges[pos].clone();
            removed.insert((chosen.src.clone(), chosen.dst.clone()));
            cuts.push(Cut {
                edge: chosen,
                cycle: cycle.clone(),
            });
        }
    }
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str, d: &str, w: f64) -> Edge {
        Edge::new(s, d, Some(w), false)
    }

    #[test]
    fn a_dag_has_no_cycle_and_needs_no_cut() {
        let v = GraphView::from_edges(vec![e("a", "b", 1.0), e("b", "c", 1.0), e("a", "c", 1.0)]);
        assert!(!has_cycle(&v));
        assert_eq!(
            plan_cuts(&v, 8),
            CutPlan {
                cuts: vec![],
                acyclic_after: true
            }
        );
    }

    #[test]
    fn one_cycle_is_cut_at_its_lowest_weight_edge() {
        let v = GraphView::from_edges(vec![
            e("a", "b", 1.0),
            e("b", "c", 0.2),
            e("c", "a", 0.7),
            e("c", "d", 0.1),
        ]);
        assert!(has_cycle(&v));
        let plan = plan_cuts(&v, 8);
        assert!(plan.acyclic_after);
        assert_eq!(plan.cuts.len(), 1);
        assert_eq!(
            (
                plan.cuts[0].edge.src.as_str(),
                plan.cuts[0].edge.dst.as_str()
            ),
            ("b", "c")
        );
        assert_eq!(plan.cuts[0].cycle, vec!["a", "b", "c"]);
    }

    #[test]
    fn a_weak_edge_wins_over_a_lighter_strong_one() {
        let v = GraphView::from_edges(vec![
            e("a", "b", 0.1),
            Edge::new("b", "c", Some(5.0), true),
            e("c", "a", 0.3),
        ]);
        let plan = plan_cuts(&v, 8);
        assert_eq!(plan.cuts[0].edge.src, "b");
        assert!(plan.cuts[0].edge.weak);
    }

    #[test]
    fn unknown_weights_lose_to_known_ones_and_ties_take_the_first() {
        let v = GraphView::from_edges(vec![
            Edge::new("x", "y", None, false),
            Edge::new("y", "x", None, false),
        ]);
        let plan = plan_cuts(&v, 8);
        assert_eq!(
            (
                plan.cuts[0].edge.src.as_str(),
                plan.cuts[0].edge.dst.as_str()
            ),
            ("x", "y")
        );
        let v2 = GraphView::from_edges(vec![Edge::new("x", "y", None, false), e("y", "x", 9.0)]);
        assert_eq!(plan_cuts(&v2, 8).cuts[0].edge.src, "y");
    }

    #[test]
    fn two_independent_cycles_get_two_cuts_and_a_self_loop_is_a_cycle() {
        let v = GraphView::from_edges(vec![
            e("a", "b", 1.0),
            e("b", "a", 2.0),
            e("c", "d", 3.0),
            e("d", "c", 1.5),
            e("z", "z", 4.0),
        ]);
        let plan = plan_cuts(&v, 8);
        assert!(plan.acyclic_after);
        let cut: Vec<(String, String)> = plan
            .cuts
            .iter()
            .map(|c| (c.edge.src.clone(), c.edge.dst.clone()))
            .collect();
        assert_eq!(
            cut,
            vec![
                ("a".into(), "b".into()),
                ("d".into(), "c".into()),
                ("z".into(), "z".into())
            ]
        );
    }

    #[test]
    fn the_cut_limit_leaves_the_rest_for_later() {
        let v = GraphView::from_edges(vec![
            e("a", "b", 1.0),
            e("b", "a", 1.0),
            e("c", "d", 1.0),
            e("d", "c", 1.0),
        ]);
        let plan = plan_cuts(&v, 1);
        assert_eq!(plan.cuts.len(), 1);
        assert!(!plan.acyclic_after);
    }

    #[test]
    fn parallel_edges_are_cut_as_a_pair_with_the_weakest_weight() {
        // a->b twice; the pair's best weight is 0.05, cheaper than b->a.
        let v = GraphView::from_edges(vec![e("a", "b", 3.0), e("b", "a", 0.5), e("a", "b", 0.05)]);
        let plan = plan_cuts(&v, 8);
        assert_eq!(plan.cuts.len(), 1);
        assert_eq!(
            (plan.cuts[0].edge.src.as_str(), plan.cuts[0].edge.weight),
            ("a", Some(0.05))
        );
    }

    #[test]
    fn a_long_chain_closing_into_a_cycle_does_not_overflow_the_stack() {
        let n = 200_000;
        let mut edges: Vec<Edge> = (0..n)
            .map(|i| e(&i.to_string(), &(i + 1).to_string(), 1.0))
            .collect();
        edges.push(e(&n.to_string(), "0", 0.5));
        let v = GraphView::from_edges(edges);
        let plan = plan_cuts(&v, 4);
        assert_eq!(plan.cuts.len(), 1);
        assert_eq!(plan.cuts[0].edge.dst, "0");
        assert!(plan.acyclic_after);
    }

    #[test]
    fn listed_cycles_share_cuts_and_use_view_weights() {
        let view = GraphView::from_edges(vec![
            e("a", "b", 0.9),
            e("b", "c", 0.1),
            e("c", "a", 0.9),
            e("c", "b", 0.5),
        ]);
        let cycles = vec![
            vec!["a".to_string(), "b".into(), "c".into()],
            vec!["b".to_string(), "c".into()],
        ];
        let cuts = plan_cuts_from_listed(&cycles, Some(&view), 8);
        // b->c breaks both cycles, so one cut is enough.
        assert_eq!(cuts.len(), 1);
        assert_eq!(
            (cuts[0].edge.src.as_str(), cuts[0].edge.dst.as_str()),
            ("b", "c")
        );
        // Without weights, the edge shared by most cycles wins.
        let cuts = plan_cuts_from_listed(&cycles, None, 8);
        assert_eq!(
            (cuts[0].edge.src.as_str(), cuts[0].edge.dst.as_str()),
            ("b", "c")
        );
    }

    // ---- property tests against the plain, hash-indexed version ----------------------------

    /// Cycle cuts computed the plain way on text edges: a hash map from node id to index
    /// (in first-edge order), the weakest edge per node pair up front, a set of cut pairs.
    fn reference_cuts(edges: &[Edge], max_cuts: usize) -> CutPlan {
        use std::collections::HashMap;
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut out: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut ends = Vec::new();
        for (i, e) in edges.iter().enumerate() {
            let s = match ids.get(e.src.as_str()) {
                Some(&x) => x,
                None => {
                    ids.insert(&e.src, out.len());
                    out.push(Vec::new());
                    out.len() - 1
                }
            };
            let d = match ids.get(e.dst.as_str()) {
                Some(&x) => x,
                None => {
                    ids.insert(&e.dst, out.len());
                    out.push(Vec::new());
                    out.len() - 1
                }
            };
            out[s].push((d, i));
            ends.push((s, d));
        }
        let find = |removed: &HashSet<(usize, usize)>| -> Option<Vec<usize>> {
            let n = out.len();
            let mut color = vec![0u8; n];
            let mut via: Vec<Option<usize>> = vec![None; n];
            for start in 0..n {
                if color[start] != 0 {
                    continue;
                }
                let mut stack = vec![(start, 0usize)];
                color[start] = 1;
                while let Some(top) = stack.last_mut() {
                    let node = top.0;
                    if top.1 >= out[node].len() {
                        color[node] = 2;
                        stack.pop();
                        continue;
                    }
                    let (next, ei) = out[node][top.1];
                    top.1 += 1;
                    if removed.contains(&ends[ei]) {
                        continue;
                    }
                    match color[next] {
                        0 => {
                            color[next] = 1;
                            via[next] = Some(ei);
                            stack.push((next, 0));
                        }
                        1 => {
                            let mut path = vec![ei];
                            let mut at = node;
                            while at != next {
                                let Some(x) = via[at] else { break };
                                path.push(x);
                                at = ends[x].0;
                            }
                            path.reverse();
                            return Some(path);
                        }
                        _ => {}
                    }
                }
            }
            None
        };
        let mut pair_best: HashMap<(usize, usize), usize> = HashMap::new();
        for (i, pair) in ends.iter().enumerate() {
            let slot = pair_best.entry(*pair).or_insert(i);
            if strength(&edges[i], 0).partial_cmp(&strength(&edges[*slot], 0))
                == Some(std::cmp::Ordering::Less)
            {
                *slot = i;
            }
        }
        let mut removed = HashSet::new();
        let mut cuts = Vec::new();
        loop {
            let Some(path) = find(&removed) else {
                return CutPlan {
                    cuts,
                    acyclic_after: true,
                };
            };
            if cuts.len() >= max_cuts {
                return CutPlan {
                    cuts,
                    acyclic_after: false,
                };
            }
            let candidates: Vec<Edge> = path
                .iter()
                .map(|&i| edges[pair_best[&ends[i]]].clone())
                .collect();
            let pos = weakest(&candidates, |_| 0).unwrap();
            removed.insert(ends[path[pos]]);
            cuts.push(Cut {
                edge: candidates[pos].clone(),
                cycle: path.iter().map(|&i| edges[i].src.clone()).collect(),
            });
        }
    }

    /// Whether `b` reaches `a` (so `a -> b` closes a cycle), by breadth-first search.
    fn reaches(edges: &[Edge], from: &str, to: &str) -> bool {
        let mut seen = HashSet::from([from.to_string()]);
        let mut queue = vec![from.to_string()];
        while let Some(n) = queue.pop() {
            if n == to {
                return true;
            }
            for e in edges.iter().filter(|e| e.src == n) {
                if seen.insert(e.dst.clone()) {
                    queue.push(e.dst.clone());
                }
            }
        }
        false
    }

    use crate::engine::test_rng::TestRng as Rng;

    fn random_edges(rng: &mut Rng) -> Vec<Edge> {
        let pool = 1 + rng.below(10);
        (0..rng.below(3 * pool + 1))
            .map(|_| {
                // Few distinct weights, so ties and parallel edges of equal strength occur.
                let weight = match rng.below(5) {
                    0 => None,
                    w => Some(w as f64 / 4.0),
                };
                Edge::new(
                    &format!("n{}", rng.below(pool)),
                    &format!("n{}", rng.below(pool)),
                    weight,
                    rng.below(6) == 0,
                )
            })
            .collect()
    }

    #[test]
    fn cuts_match_the_plain_version_and_need_only_the_edges_on_cycles() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut with_cuts = 0;
        for round in 0..3000 {
            let edges = random_edges(&mut rng);
            let max_cuts = 1 + rng.below(4);
            let full = GraphView::from_edges(edges.clone());
            let plan = plan_cuts(&full, max_cuts);
            assert_eq!(
                plan,
                reference_cuts(&edges, max_cuts),
                "round {round}: {edges:?}"
            );
            assert_eq!(has_cycle(&full), !plan.cuts.is_empty(), "round {round}");
            with_cuts += usize::from(plan.cuts.len() > 1);

            // Only edges on a cycle: those that close a path back to their source.
            let on_cycles = edges_on_cycles(full.graph());
            let expected: Vec<u32> = (0..edges.len() as u32)
                .filter(|&i| reaches(&edges, &edges[i as usize].dst, &edges[i as usize].src))
                .collect();
            assert_eq!(on_cycles, expected, "round {round}: {edges:?}");

            // A view holding the weights of those edges alone plans the same cuts.
            let mut partial = GraphView::new(full.graph().clone());
            for &i in &on_cycles {
                let e = &edges[i as usize];
                partial.set_strength(i as usize, e.weight, e.weak);
            }
            assert_eq!(
                plan_cuts(&partial, max_cuts),
                plan,
                "round {round}: {edges:?}"
            );
        }
        assert!(with_cuts > 300, "{with_cuts}");
    }
}
