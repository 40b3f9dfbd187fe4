//! What the `trigger_faza*_action` verbs mean on the real layer classes, and the choices
//! they involve (which queued tasks to shed, which edge breaks a cycle).
//!
//! A reference method of the same purpose on the layer object (`throttle_queue`,
//! `reschedule_task`, `break_cycle`, `restart_agent`, `reset_cooperation`) is used when the
//! object has it; otherwise the route below runs against the real API. A registered repair
//! action of the verb's name is preferred over both (decided in the binding).

use crate::engine::detection_engine::Layer;
use crate::engine::error::{EngineError, EngineResult};
use crate::engine::repair_strategies::cycles::{self, GraphView};
use crate::engine::value::Metrics;
use serde_json::Value;

/// Fraction of the queued tasks kept by `throttle` when `params["rate"]` is not given.
pub const DEFAULT_KEEP_FRACTION: f64 = 0.5;

/// A real-API route for a trigger verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Cancel the lowest-priority queued tasks (`cancel_task`); FAZA 25 has no throttle.
    Throttle,
    /// Resubmit a task with its name, executor, priority, type and context (`submit_task`).
    Resubmit,
    /// `cancel_task(task_id)`.
    CancelTask,
    /// `remove_edge(src, dst)` of the weakest edge of the cycle.
    BreakCycle,
    /// The optimizer's `optimize()` (or `optimize(graph)`).
    Optimize,
    /// `on_shutdown(ctx)` then `on_start(ctx)` of the agent from `agent_manager.get_agent`.
    RestartAgent,
    /// `agent.enabled = False`.
    IsolateAgent,
    /// The meta layer's `anomaly_detector.clear_history()`, `stability_engine.clear_history()`
    /// and `strategy_adapter.reset()` (stands in for the cooperation reset FAZA 28 lacks).
    ResetMetaState,
    /// The agent loop's `scheduler.reset()`.
    ResetScheduler,
}

/// The route of `action` on `layer`, with the reference's verbs and the repair verbs.
pub fn route(layer: Layer, action: &str) -> Option<Route> {
    Some(match (layer, action) {
        (Layer::Faza25, "throttle" | "shed_load") => Route::Throttle,
        (Layer::Faza25, "reschedule" | "retry" | "retry_task") => Route::Resubmit,
        (Layer::Faza25, "cancel_task") => Route::CancelTask,
        (Layer::Faza27, "break_cycle") => Route::BreakCycle,
        (Layer::Faza27, "optimize") => Route::Optimize,
        (Layer::Faza28, "restart_agent") => Route::RestartAgent,
        (Layer::Faza28, "isolate_agent") => Route::IsolateAgent,
        (Layer::Faza28, "reset_cooperation" | "reset_meta_state") => Route::ResetMetaState,
        (Layer::Faza28, "reset_scheduler") => Route::ResetScheduler,
        _ => return None,
    })
}

/// The reference's own method for a route, tried first when the object has it, and the
/// parameter it passes.
pub fn reference_method(route: Route) -> Option<(&'static str, Option<&'static str>)> {
    match route {
        Route::Throttle => Some(("throttle_queue", Some("rate"))),
        Route::Resubmit => Some(("reschedule_task", Some("task_id"))),
        Route::BreakCycle => Some(("break_cycle", Some("cycle"))),
        Route::RestartAgent => Some(("restart_agent", Some("agent_id"))),
        Route::ResetMetaState => Some(("reset_cooperation", None)),
        _ => None,
    }
}

fn text_param(params: &Metrics, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| match params.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// The agent a FAZA 28 action names (`agent_id`, `agent_name`, `name` or `agent`).
pub fn agent_param(params: &Metrics) -> Option<String> {
    text_param(params, &["agent_id", "agent_name", "name", "agent"])
}

/// The task a FAZA 25 action names (`task_id`).
pub fn task_param(params: &Metrics) -> Option<String> {
    text_param(params, &["task_id"])
}

/// A queued task as the shedding choice sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedTask {
    pub id: String,
    pub priority: f64,
}

/// How many queued tasks `throttle` cancels: `params["count"]` if given, else enough that
/// `params["rate"]` (default 0.5) of the queue is kept.
pub fn shed_count(params: &Metrics, queued: usize) -> EngineResult<usize> {
    if let Some(v) = params.get("count") {
        let n = v.as_u64().ok_or_else(|| {
            EngineError::invalid(format!("params['count'] must be an int >= 0, got {v}"))
        })?;
        return Ok((n as usize).min(queued));
    }
    let keep = match params.get("rate") {
        None | Some(Value::Null) => DEFAULT_KEEP_FRACTION,
        Some(v) => v
            .as_f64()
            .filter(|x| (0.0..=1.0).contains(x))
            .ok_or_else(|| {
                EngineError::invalid(format!(
                    "params['rate'] must be a number from 0 to 1, got {v}"
                ))
            })?,
    };
    Ok((((1.0 - keep) * queued as f64).ceil() as usize).min(queued))
}

/// The tasks to cancel, lowest priority first; among equal priorities the newest (last in
/// registry order) goes first, since it has waited least.
pub fn shed_order(queued: &[QueuedTask], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..queued.len()).collect();
    order.sort_by(|&a, &b| {
        queued[a]
            .priority
            .total_cmp(&queued[b].priority)
            .then(b.cmp(&a))
    });
    order.truncate(count);
    order
}

/// The edge `break_cycle` removes: the explicit `src`/`dst` if given, else the weakest edge
/// (WEAK type, then lowest weight) of the listed cycle, else of the first cycle in the graph.
pub fn cycle_cut(view: &GraphView, params: &Metrics) -> Option<(String, String)> {
    if let (Some(src), Some(dst)) = (
        text_param(params, &["src", "source_id"]),
        text_param(params, &["dst", "target_id"]),
    ) {
        return Some((src, dst));
    }
    if let Some(Value::Array(nodes)) = params.get("cycle") {
        let listed: Vec<String> = super::graph::normalize_cycle(
            nodes
                .iter()
                .filter_map(|n| match n {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(x) => Some(x.to_string()),
                    _ => None,
                })
                .collect(),
        );
        if !listed.is_empty() {
            let cuts = cycles::plan_cuts_from_listed(&[listed], Some(view), 1);
            return cuts.into_iter().next().map(|c| (c.edge.src, c.edge.dst));
        }
    }
    cycles::plan_cuts(view, 1)
        .cuts
        .into_iter()
        .next()
        .map(|c| (c.edge.src, c.edge.dst))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::repair_strategies::cycles::Edge;
    use serde_json::json;

    fn p(v: Value) -> Metrics {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn routes_cover_the_reference_verbs() {
        assert_eq!(route(Layer::Faza25, "throttle"), Some(Route::Throttle));
        assert_eq!(route(Layer::Faza25, "reschedule"), Some(Route::Resubmit));
        assert_eq!(route(Layer::Faza27, "break_cycle"), Some(Route::BreakCycle));
        assert_eq!(route(Layer::Faza27, "optimize"), Some(Route::Optimize));
        assert_eq!(
            route(Layer::Faza28, "restart_agent"),
            Some(Route::RestartAgent)
        );
        assert_eq!(
            route(Layer::Faza28, "reset_cooperation"),
            Some(Route::ResetMetaState)
        );
        assert_eq!(route(Layer::Faza25, "break_cycle"), None);
        assert_eq!(route(Layer::Faza29, "throttle"), None);
    }

    #[test]
    fn shedding_keeps_the_rate_and_drops_lowest_priority_newest_first() {
        let q: Vec<QueuedTask> = [("a", 5.0), ("b", 1.0), ("c", 9.0), ("d", 1.0)]
            .iter()
            .map(|(id, pr)| QueuedTask {
                id: id.to_string(),
                priority: *pr,
            })
            .collect();
        let n = shed_count(&Metrics::new(), q.len()).unwrap();
        assert_eq!(n, 2);
        let ids: Vec<&str> = shed_order(&q, n)
            .iter()
            .map(|&i| q[i].id.as_str())
            .collect();
        assert_eq!(ids, vec!["d", "b"]);
        assert_eq!(shed_count(&p(json!({"rate": 0.9})), 4).unwrap(), 1);
        assert_eq!(shed_count(&p(json!({"count": 9})), 4).unwrap(), 4);
        assert!(shed_count(&p(json!({"rate": 2})), 4).is_err());
        assert!(shed_count(&p(json!({"count": -1})), 4).is_err());
        assert_eq!(shed_count(&Metrics::new(), 0).unwrap(), 0);
    }

    #[test]
    fn cycle_cut_prefers_explicit_then_listed_then_found() {
        let view = GraphView::from_edges(vec![
            Edge::new("a", "b", Some(1.0), false),
            Edge::new("b", "a", Some(0.3), false),
            Edge::new("c", "d", Some(1.0), false),
            Edge::new("d", "c", Some(2.0), true),
        ]);
        assert_eq!(
            cycle_cut(&view, &p(json!({"src": "x", "dst": "y"}))),
            Some(("x".into(), "y".into()))
        );
        assert_eq!(
            cycle_cut(&view, &p(json!({"cycle": ["c", "d", "c"]}))),
            Some(("d".into(), "c".into()))
        );
        assert_eq!(
            cycle_cut(&view, &Metrics::new()),
            Some(("b".into(), "a".into()))
        );
        assert_eq!(cycle_cut(&GraphView::default(), &Metrics::new()), None);
    }

    #[test]
    fn agent_and_task_params_accept_their_aliases() {
        assert_eq!(
            agent_param(&p(json!({"agent_name": "w1"}))),
            Some("w1".into())
        );
        assert_eq!(agent_param(&p(json!({"agent_id": 7}))), Some("7".into()));
        assert_eq!(agent_param(&p(json!({"agent_id": ""}))), None);
        assert_eq!(task_param(&p(json!({"task_id": "t9"}))), Some("t9".into()));
    }
}
