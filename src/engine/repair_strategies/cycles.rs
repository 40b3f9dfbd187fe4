//! Cycle breaking on a task graph read from the FAZA 27 layer.
//!
//! The binding reads the graph's edges (source, target, weight, whether the edge is WEAK) into
//! a `GraphView`; this module finds cycles and picks, for each one, the edge that is cheapest
//! to drop: a WEAK edge first, then the lowest weight, then the edge that closes the most of
//! the cycles found so far, then the first in cycle order. `remove_edge(src, dst)` drops every
//! parallel edge between the two nodes, so choices are made per node pair.

use std::collections::{HashMap, HashSet};

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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphView {
    pub edges: Vec<Edge>,
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

/// Node-index adjacency in edge order, so results do not depend on hashing.
struct Indexed {
    node_count: usize,
    // Per edge: (source index, target index).
    ends: Vec<(usize, usize)>,
    // Per node: (neighbour, edge index), in the order the edges were read.
    out: Vec<Vec<(usize, usize)>>,
}

fn intern<'a>(
    ids: &mut HashMap<&'a str, usize>,
    out: &mut Vec<Vec<(usize, usize)>>,
    name: &'a str,
) -> usize {
    *ids.entry(name).or_insert_with(|| {
        out.push(Vec::new());
        out.len() - 1
    })
}

fn index(view: &GraphView) -> Indexed {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut ends = Vec::with_capacity(view.edges.len());
    for (i, e) in view.edges.iter().enumerate() {
        let s = intern(&mut ids, &mut out, &e.src);
        let d = intern(&mut ids, &mut out, &e.dst);
        out[s].push((d, i));
        ends.push((s, d));
    }
    Indexed {
        node_count: out.len(),
        ends,
        out,
    }
}

/// Finds one cycle among the edges whose node pair is not in `removed`, as edge indices in
/// path order. Iterative DFS: deep graphs cannot overflow the stack.
fn find_cycle(graph: &Indexed, removed: &HashSet<(usize, usize)>) -> Option<Vec<usize>> {
    let n = graph.node_count;
    // 0 = unvisited, 1 = on the current path, 2 = finished.
    let mut color = vec![0u8; n];
    // The edge used to reach each node on the current path.
    let mut via: Vec<Option<usize>> = vec![None; n];
    for start in 0..n {
        if color[start] != 0 {
            continue;
        }
        // (node, position of the next neighbour to look at)
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        color[start] = 1;
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            if top.1 >= graph.out[node].len() {
                color[node] = 2;
                stack.pop();
                continue;
            }
            let (next, edge_index) = graph.out[node][top.1];
            top.1 += 1;
            if removed.contains(&graph.ends[edge_index]) {
                continue;
            }
            match color[next] {
                0 => {
                    color[next] = 1;
                    via[next] = Some(edge_index);
                    stack.push((next, 0));
                }
                1 => {
                    // Back edge: walk the path back from `node` to `next`.
                    let mut path = vec![edge_index];
                    let mut at = node;
                    while at != next {
                        let Some(ei) = via[at] else { break };
                        path.push(ei);
                        at = graph.ends[ei].0;
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
    find_cycle(&index(view), &HashSet::new()).is_some()
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
    let graph = index(view);
    // A node pair stands for all its parallel edges (remove_edge drops them together), so its
    // strength is that of its weakest edge.
    let mut pair_best: HashMap<(usize, usize), usize> = HashMap::new();
    for (i, pair) in graph.ends.iter().enumerate() {
        let slot = pair_best.entry(*pair).or_insert(i);
        if strength(&view.edges[i], 0).partial_cmp(&strength(&view.edges[*slot], 0))
            == Some(std::cmp::Ordering::Less)
        {
            *slot = i;
        }
    }
    let mut removed: HashSet<(usize, usize)> = HashSet::new();
    let mut cuts = Vec::new();
    loop {
        let Some(path) = find_cycle(&graph, &removed) else {
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
            .map(|&i| view.edges[pair_best.get(&graph.ends[i]).copied().unwrap_or(i)].clone())
            .collect();
        let Some(pos) = weakest(&candidates, |_| 0) else {
            return CutPlan {
                cuts,
                acyclic_after: false,
            };
        };
        removed.insert(graph.ends[path[pos]]);
        let cycle = path.iter().map(|&i| view.edges[i].src.clone()).collect();
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
                view.and_then(|v| {
                    v.edges
                        .iter()
                        .find(|e| &e.src == src && &e.dst == dst)
                        .cloned()
                })
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
        let v = GraphView {
            edges: vec![e("a", "b", 1.0), e("b", "c", 1.0), e("a", "c", 1.0)],
        };
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
        let v = GraphView {
            edges: vec![
                e("a", "b", 1.0),
                e("b", "c", 0.2),
                e("c", "a", 0.7),
                e("c", "d", 0.1),
            ],
        };
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
        let v = GraphView {
            edges: vec![
                e("a", "b", 0.1),
                Edge::new("b", "c", Some(5.0), true),
                e("c", "a", 0.3),
            ],
        };
        let plan = plan_cuts(&v, 8);
        assert_eq!(plan.cuts[0].edge.src, "b");
        assert!(plan.cuts[0].edge.weak);
    }

    #[test]
    fn unknown_weights_lose_to_known_ones_and_ties_take_the_first() {
        let v = GraphView {
            edges: vec![
                Edge::new("x", "y", None, false),
                Edge::new("y", "x", None, false),
            ],
        };
        let plan = plan_cuts(&v, 8);
        assert_eq!(
            (
                plan.cuts[0].edge.src.as_str(),
                plan.cuts[0].edge.dst.as_str()
            ),
            ("x", "y")
        );
        let v2 = GraphView {
            edges: vec![Edge::new("x", "y", None, false), e("y", "x", 9.0)],
        };
        assert_eq!(plan_cuts(&v2, 8).cuts[0].edge.src, "y");
    }

    #[test]
    fn two_independent_cycles_get_two_cuts_and_a_self_loop_is_a_cycle() {
        let v = GraphView {
            edges: vec![
                e("a", "b", 1.0),
                e("b", "a", 2.0),
                e("c", "d", 3.0),
                e("d", "c", 1.5),
                e("z", "z", 4.0),
            ],
        };
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
        let v = GraphView {
            edges: vec![
                e("a", "b", 1.0),
                e("b", "a", 1.0),
                e("c", "d", 1.0),
                e("d", "c", 1.0),
            ],
        };
        let plan = plan_cuts(&v, 1);
        assert_eq!(plan.cuts.len(), 1);
        assert!(!plan.acyclic_after);
    }

    #[test]
    fn parallel_edges_are_cut_as_a_pair_with_the_weakest_weight() {
        // a->b twice; the pair's best weight is 0.05, cheaper than b->a.
        let v = GraphView {
            edges: vec![e("a", "b", 3.0), e("b", "a", 0.5), e("a", "b", 0.05)],
        };
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
        let v = GraphView { edges };
        let plan = plan_cuts(&v, 4);
        assert_eq!(plan.cuts.len(), 1);
        assert_eq!(plan.cuts[0].edge.dst, "0");
        assert!(plan.acyclic_after);
    }

    #[test]
    fn listed_cycles_share_cuts_and_use_view_weights() {
        let view = GraphView {
            edges: vec![
                e("a", "b", 0.9),
                e("b", "c", 0.1),
                e("c", "a", 0.9),
                e("c", "b", 0.5),
            ],
        };
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
}
