use super::reads::{self as r, LayerRead, ReadError};
use super::*;
use crate::engine::clock::now;
use chrono::Duration;
use serde_json::{json, Value};

type Core = IntegrationCore<u32>;

fn core() -> Core {
    IntegrationCore::new(Options::default())
}

fn read(entries: &[(&'static str, Value)]) -> LayerRead {
    let mut out = LayerRead::new();
    for (call, v) in entries {
        out.ok(call, v.clone());
    }
    out
}

fn sized(items: Value) -> Value {
    let len = items.as_array().map_or(0, Vec::len);
    json!({"len": len, "items": items})
}

fn keys(m: &Metrics) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

// ---- the reference's probes, with the benchmark's fake layers

#[test]
fn reference_probes_give_the_reference_keys_in_order() {
    let mut c = core();
    let t = now();
    let f25 = c.map_layer(
        Layer::Faza25,
        &read(&[
            (r::P_QUEUE_SIZE, json!(480)),
            (r::P_QUEUE_METRICS, json!({"error_rate": 0.62})),
            (
                r::P_SCHEDULER_STATS,
                json!({"efficiency": 0.93, "success_rate": 0.55}),
            ),
            (r::P_RESOURCE_USAGE, json!({"cpu": 0.41, "memory": 0.37})),
        ]),
        t,
    );
    assert_eq!(
        Value::Object(f25),
        json!({"queue_size": 480, "error_rate": 0.62, "scheduler_efficiency": 0.93, "task_success_rate": 0.55,
               "cpu_usage": 0.41, "memory_usage": 0.37})
    );
    let f27 = c.map_layer(
        Layer::Faza27,
        &read(&[
            (r::P_COMPLEXITY, json!(140)),
            (r::P_DETECT_CYCLES, sized(json!([["t1", "t2", "t1"]]))),
            (r::P_GRAPH_STATS, json!({"bottleneck_count": 8})),
            (r::P_OPT_SCORE, json!(0.8)),
            (r::P_OPT_BOTTLENECKS, sized(json!(["t3"]))),
        ]),
        t,
    );
    assert_eq!(
        keys(&f27),
        vec![
            "graph_complexity",
            "cycle_count",
            "cycles",
            "bottleneck_count",
            "optimization_score",
            "bottleneck_detected",
            "bottleneck_node"
        ]
    );
    assert_eq!(f27["cycle_count"], json!(1));
    assert_eq!(f27["cycles"], json!([["t1", "t2"]]));
    assert_eq!(f27["bottleneck_count"], json!(8));
    assert_eq!(f27["bottleneck_detected"], json!(true));
    assert_eq!(f27["bottleneck_node"], json!("t3"));
    let f28 = c.map_layer(
        Layer::Faza28,
        &read(&[
            (
                r::P_AGENT_STATS,
                json!({"failure_rate": 0.45, "performance": 0.9, "cooperation_score": 0.8}),
            ),
            (r::P_COMM_HEALTH, json!(0.95)),
            (r::P_ACTIVE_AGENTS, json!({"len": 3, "items": []})),
        ]),
        t,
    );
    assert_eq!(
        Value::Object(f28),
        json!({"agent_failure_rate": 0.45, "agent_performance": 0.9, "cooperation_score": 0.8,
               "communication_health": 0.95, "active_agent_count": 3})
    );
    let f285 = c.map_layer(
        Layer::Faza28_5,
        &read(&[
            (r::P_STABILITY, json!(0.3)),
            (r::P_POLICY, json!(0.9)),
            (r::P_ANOMALY_COUNT, json!(2)),
            (r::P_FEEDBACK, json!(0.9)),
        ]),
        t,
    );
    assert_eq!(
        Value::Object(f285),
        json!({"stability_score": 0.3, "policy_effectiveness": 0.9, "anomaly_count": 2, "feedback_health": 0.9})
    );
    let f29 = c.map_layer(
        Layer::Faza29,
        &read(&[
            (r::P_RISK, json!({"overall_score": 35})),
            (r::P_STATUS, json!({"violations": 0, "override_count": 1})),
            (r::P_TAKEOVER_STATE, json!("takeover")),
        ]),
        t,
    );
    assert_eq!(
        Value::Object(f29),
        json!({"risk_score": 35, "governance_violations": 0, "override_count": 1, "takeover_active": true,
               "violation_count": 0})
    );
    assert_eq!(c.faults().count(), 0);
}

#[test]
fn missing_probe_fields_are_left_out_not_defaulted() {
    let mut c = core();
    let m = c.map_layer(
        Layer::Faza25,
        &read(&[
            (r::P_SCHEDULER_STATS, json!({})),
            (r::P_RESOURCE_USAGE, json!({"cpu": 0.2})),
        ]),
        now(),
    );
    assert_eq!(Value::Object(m), json!({"cpu_usage": 0.2}));
    let m = c.map_layer(
        Layer::Faza29,
        &read(&[
            (r::P_RISK, json!({"total_risk": 82.5})),
            (r::P_STATUS, json!({})),
        ]),
        now(),
    );
    assert_eq!(Value::Object(m), json!({"risk_score": 82.5}));
}

#[test]
fn takeover_state_values_decide_by_name() {
    for (state, active) in [
        (json!("normal"), false),
        (json!("warning"), false),
        (json!("recovery"), false),
        (json!("takeover"), true),
        (json!("SAFE_MODE"), true),
        (json!("emergency"), true),
        (json!(null), false),
        (json!(""), false),
        (json!(true), true),
    ] {
        let m = core().map_layer(
            Layer::Faza29,
            &read(&[(r::P_TAKEOVER_STATE, state.clone())]),
            now(),
        );
        assert_eq!(m["takeover_active"], json!(active), "{state}");
    }
    // The manager's own flag catches a manual takeover the state does not show.
    let m = core().map_layer(
        Layer::Faza29,
        &read(&[
            (r::P_TAKEOVER_STATE, json!("normal")),
            (r::R_TAKEOVER_ACTIVE, json!(true)),
        ]),
        now(),
    );
    assert_eq!(m["takeover_active"], json!(true));
    let mut c = core();
    let m = c.map_layer(
        Layer::Faza29,
        &read(&[(r::P_TAKEOVER_STATE, json!(3))]),
        now(),
    );
    assert!(!m.contains_key("takeover_active"));
    assert_eq!(c.faults().next().map(|f| f.kind), Some(FaultKind::Invalid));
}

// ---- garbage is reported, the rest of the layer still comes through

#[test]
fn wrong_kinds_are_dropped_and_recorded() {
    let mut c = core();
    let mut rd = read(&[
        (r::P_QUEUE_SIZE, json!("lots")),
        (r::P_QUEUE_METRICS, json!([1, 2])),
        (
            r::P_SCHEDULER_STATS,
            json!({"efficiency": true, "success_rate": 0.9}),
        ),
    ]);
    rd.push(
        r::P_RESOURCE_USAGE,
        Err(ReadError::Raised("RuntimeError: boom".into())),
    );
    let m = c.map_layer(Layer::Faza25, &rd, now());
    assert_eq!(Value::Object(m), json!({"task_success_rate": 0.9}));
    let faults: Vec<(String, FaultKind)> = c.faults().map(|f| (f.source.clone(), f.kind)).collect();
    assert_eq!(
        faults,
        vec![
            ("faza25.get_resource_usage()".to_string(), FaultKind::Raised),
            ("faza25.get_queue_size()".to_string(), FaultKind::Invalid),
            ("faza25.get_queue_metrics()".to_string(), FaultKind::Invalid),
            (
                "faza25.get_scheduler_stats()".to_string(),
                FaultKind::Invalid
            ),
        ]
    );
    assert_eq!(c.fault_sources().len(), 4);
    assert!(c.faults().all(|f| f.layer.as_deref() == Some("faza25")));
}

#[test]
fn provider_answers_are_checked_and_failures_counted() {
    let mut c = core();
    let (id, _) = c
        .registry_mut()
        .add_provider("faza28", "probe", 7, 1.0, None)
        .unwrap();
    let mut into = Metrics::new();
    into.insert("agent_failure_rate".into(), json!(0.1));
    let answer = json!({"agent_failure_rate": 0.9, "failing_agents": "w1", "custom": {"x": 1}});
    c.merge_provider(
        "faza28",
        id,
        Ok(answer.as_object().cloned().unwrap()),
        &mut into,
        now(),
    );
    assert_eq!(
        Value::Object(into.clone()),
        json!({"agent_failure_rate": 0.9, "custom": {"x": 1}})
    );
    c.merge_provider(
        "faza28",
        id,
        Err((FaultKind::TimedOut, "timed out after 0.050s".into())),
        &mut into,
        now(),
    );
    let p = &c.registry().providers()[0];
    assert_eq!((p.stats.calls, p.stats.errors, p.stats.timeouts), (2, 2, 1));
    let sources: Vec<&str> = c.faults().map(|f| f.source.as_str()).collect();
    assert_eq!(
        sources,
        vec!["provider faza28:probe", "provider faza28:probe"]
    );
}

#[test]
fn faults_and_sources_are_bounded() {
    let mut c = core();
    for i in 0..(MAX_FAULT_SOURCES + 50) {
        c.record_fault(
            &format!("s{i}"),
            None,
            FaultKind::Raised,
            &"x".repeat(2000),
            now(),
        );
    }
    assert_eq!(c.faults().count(), MAX_FAULTS);
    assert_eq!(c.fault_sources().len(), MAX_FAULT_SOURCES + 1);
    let other = c
        .fault_sources()
        .iter()
        .find(|s| s.source == "(other)")
        .unwrap();
    assert_eq!(other.errors, 50);
    assert!(c
        .faults()
        .all(|f| f.message.chars().count() <= MAX_MESSAGE + 3));
    assert_eq!(
        c.counters().faults_recorded,
        (MAX_FAULT_SOURCES + 50) as u64
    );
    assert_eq!(c.clear_faults(), MAX_FAULTS);
}

// ---- FAZA 25: rates, stuck and failed tasks from the real orchestrator

fn orchestrator(done: u64, error: u64, queued: u64) -> Value {
    json!({"queue_size": queued, "tasks_by_status": {"queued": queued, "running": 1, "done": done, "error": error, "cancelled": 0}})
}

#[test]
fn task_counters_become_rates_from_the_second_sample() {
    let mut c = core();
    let t = now();
    let first = c.map_layer(
        Layer::Faza25,
        &read(&[(r::R_QUEUE_STATUS, orchestrator(10, 0, 3))]),
        t,
    );
    assert_eq!(Value::Object(first), json!({"queue_size": 3}));
    let second = c.map_layer(
        Layer::Faza25,
        &read(&[(r::R_QUEUE_STATUS, orchestrator(13, 3, 2))]),
        t,
    );
    assert_eq!(second["error_rate"], json!(0.5));
    assert_eq!(second["task_success_rate"], json!(0.5));
    // Nothing completed: no rate rather than a made-up one.
    let idle = c.map_layer(
        Layer::Faza25,
        &read(&[(r::R_QUEUE_STATUS, orchestrator(13, 3, 2))]),
        t,
    );
    assert!(!idle.contains_key("error_rate"));
    // Counters cleared by the layer: the baseline restarts.
    let cleared = c.map_layer(
        Layer::Faza25,
        &read(&[(r::R_QUEUE_STATUS, orchestrator(1, 0, 0))]),
        t,
    );
    assert!(!cleared.contains_key("error_rate"));
    let after = c.map_layer(
        Layer::Faza25,
        &read(&[(r::R_QUEUE_STATUS, orchestrator(2, 3, 0))]),
        t,
    );
    assert_eq!(after["error_rate"], json!(0.75));
    // An explicit probe value wins over the derived one.
    let explicit = c.map_layer(
        Layer::Faza25,
        &read(&[
            (r::P_QUEUE_METRICS, json!({"error_rate": 0.01})),
            (r::R_QUEUE_STATUS, orchestrator(2, 9, 0)),
        ]),
        t,
    );
    assert_eq!(explicit["error_rate"], json!(0.01));
    assert_eq!(explicit["task_success_rate"], json!(0.0));
}

#[test]
fn worker_efficiency_counts_idle_workers_only_when_work_waits() {
    let m = |busy: u64, workers: u64, queued: u64| {
        core().map_layer(
            Layer::Faza25,
            &read(&[
                (r::R_QUEUE_STATUS, orchestrator(0, 0, queued)),
                (
                    r::R_WORKER_STATUS,
                    json!({"num_workers": workers, "busy": busy}),
                ),
            ]),
            now(),
        )
    };
    assert_eq!(m(0, 3, 0)["scheduler_efficiency"], json!(1.0));
    assert_eq!(m(1, 4, 5)["scheduler_efficiency"], json!(0.25));
    assert_eq!(m(2, 3, 1)["scheduler_efficiency"], json!(2.0 / 3.0));
    assert_eq!(m(3, 3, 9)["scheduler_efficiency"], json!(1.0));
    assert!(!m(0, 0, 9).contains_key("scheduler_efficiency"));
}

#[test]
fn stuck_and_newly_failed_tasks_are_listed() {
    let mut c = core();
    let t = now();
    let old = iso(&(t - Duration::seconds(600)));
    let fresh = iso(&(t - Duration::seconds(5)));
    let tasks = |failed: Value| json!({"running": [["r1", old], ["r2", fresh], ["r3", null]], "failed": failed, "truncated": false});
    let first = c.map_layer(
        Layer::Faza25,
        &read(&[(r::R_TASKS, tasks(json!(["e1"])))]),
        t,
    );
    assert_eq!(first["stuck_task_count"], json!(1));
    assert_eq!(first["stuck_task_ids"], json!(["r1"]));
    assert!(
        !first.contains_key("failed_task_ids"),
        "the first sample only sets the baseline"
    );
    let second = c.map_layer(
        Layer::Faza25,
        &read(&[(r::R_TASKS, tasks(json!(["e1", "e2", "e3"])))]),
        t,
    );
    assert_eq!(second["failed_task_ids"], json!(["e2", "e3"]));
    let third = c.map_layer(
        Layer::Faza25,
        &read(&[(r::R_TASKS, tasks(json!(["e1", "e2", "e3"])))]),
        t,
    );
    assert_eq!(third["failed_task_ids"], json!([]));
}

// ---- FAZA 27: the real graph's edges

#[test]
fn a_real_graph_is_measured_from_its_edges() {
    let mut c = core();
    let mut edges = vec![json!(["a", "b"]), json!(["b", "c"]), json!(["c", "a"])];
    for i in 0..5 {
        edges.push(json!(["hub", format!("t{i}")]));
    }
    let shape = json!({"nodes": ["a", "b", "c", "hub", "lonely"], "edges": edges});
    let m = c.map_layer(
        Layer::Faza27,
        &read(&[
            (r::R_EDGES, shape),
            (r::P_GRAPH_STATS, json!({"graph_id": "g", "node_count": 10})),
        ]),
        now(),
    );
    assert_eq!(m["cycle_count"], json!(1));
    assert_eq!(m["cycles"], json!([["a", "b", "c"]]));
    assert_eq!(m["bottleneck_count"], json!(1));
    assert_eq!(m["bottleneck_detected"], json!(true));
    assert_eq!(m["bottleneck_node"], json!("hub"));
    assert_eq!(m["graph_complexity"], json!(10 + 8));
    assert!(
        !m.contains_key("graph_id"),
        "get_stats() is not merged for a graph whose edges were read"
    );
}

#[test]
fn analyzer_style_answers_are_used_when_the_graph_has_them() {
    let m = core().map_layer(
        Layer::Faza27,
        &read(&[
            (
                r::R_FIND_CYCLES,
                sized(json!([["x", "y", "x"], ["z", "z"]])),
            ),
            (
                r::R_FIND_BOTTLENECKS,
                sized(json!([{"node_id": "n1", "fan_in": 9}])),
            ),
            (r::R_EDGES, json!({"nodes": [], "edges": []})),
        ]),
        now(),
    );
    assert_eq!(m["cycle_count"], json!(2));
    assert_eq!(m["cycles"], json!([["x", "y"], ["z"]]));
    assert_eq!(m["bottleneck_node"], json!("n1"));
    assert_eq!(m["bottleneck_count"], json!(1));
}

// ---- FAZA 28: per-agent rates and the stuck loop

fn agents(list: Value) -> Value {
    let n = list.as_array().map_or(0, Vec::len);
    let enabled = list.as_array().map_or(0, |a| {
        a.iter().filter(|x| x["enabled"] != json!(false)).count()
    });
    json!({"total_agents": n, "enabled_agents": enabled, "agents": list})
}

fn agent(name: &str, ticks: u64, errors: u64) -> Value {
    json!({"name": name, "enabled": true, "tick_count": ticks, "error_count": errors})
}

#[test]
fn agent_counters_become_per_agent_rates() {
    let mut c = core();
    let t = now();
    let first = c.map_layer(
        Layer::Faza28,
        &read(&[(
            r::R_AGENTS,
            agents(json!([agent("ok", 10, 0), agent("bad", 10, 1)])),
        )]),
        t,
    );
    assert_eq!(Value::Object(first), json!({"active_agent_count": 2}));
    let second = c.map_layer(
        Layer::Faza28,
        &read(&[(
            r::R_AGENTS,
            agents(json!([
                agent("ok", 20, 1),
                agent("bad", 10, 6),
                agent("new", 5, 5)
            ])),
        )]),
        t,
    );
    // "bad" raised on every tick without its base on_tick counting: 5 errors, 0 ticks -> 1.0.
    assert_eq!(second["agent_failure_rate"], json!(1.0));
    assert_eq!(second["failing_agents"], json!(["bad"]));
    assert_eq!(second["active_agent_count"], json!(3));
    let third = c.map_layer(
        Layer::Faza28,
        &read(&[(
            r::R_AGENTS,
            agents(json!([
                agent("ok", 30, 1),
                agent("bad", 10, 6),
                agent("new", 10, 9)
            ])),
        )]),
        t,
    );
    assert_eq!(third["agent_failure_rate"], json!(0.8));
    assert_eq!(third["failing_agents"], json!(["new"]));
    assert_eq!(c.baselines().tracked_agents(), 3);
    // A disabled (isolated) agent is not reported as failing.
    let mut off = agent("new", 20, 19);
    off["enabled"] = json!(false);
    let fourth = c.map_layer(
        Layer::Faza28,
        &read(&[(r::R_AGENTS, agents(json!([agent("ok", 40, 1), off])))]),
        t,
    );
    assert_eq!(fourth["agent_failure_rate"], json!(0.0));
    assert_eq!(fourth["failing_agents"], json!([]));
    assert_eq!(fourth["active_agent_count"], json!(1));
    assert_eq!(c.baselines().tracked_agents(), 2);
}

/// The agent rates computed the plain way, on the JSON form, as the adapter did before it
/// read typed agents: (active count, worst rate, failing names) per sample.
fn reference_agent_rates(samples: &[Value]) -> Vec<(Value, Option<Value>, Option<Value>)> {
    let mut previous: Option<std::collections::HashMap<String, (f64, f64)>> = None;
    let mut out = Vec::new();
    for stats in samples {
        let agents = stats["agents"].as_array().cloned().unwrap_or_default();
        let enabled_count = agents
            .iter()
            .filter(|a| a.get("enabled").is_none_or(|e| e.as_bool() != Some(false)))
            .count();
        let enabled = stats["enabled_agents"]
            .as_f64()
            .unwrap_or(enabled_count as f64);
        let mut current = std::collections::HashMap::new();
        let mut rates: Vec<(String, f64)> = Vec::new();
        for a in &agents {
            let Some(name) = a["name"].as_str().filter(|n| !n.is_empty()) else {
                continue;
            };
            let (Some(t), Some(e)) = (a["tick_count"].as_f64(), a["error_count"].as_f64()) else {
                continue;
            };
            let prev = previous.as_ref().and_then(|p| p.get(name)).copied();
            current.insert(name.to_string(), (t, e));
            let Some((pt, pe)) = prev.filter(|&(pt, pe)| t >= pt && e >= pe) else {
                continue;
            };
            let attempts = (t - pt).max(e - pe);
            if attempts > 0.0 && a["enabled"].as_bool() != Some(false) {
                rates.push((name.to_string(), (e - pe) / attempts));
            }
        }
        let (mut worst, mut failing) = (None, None);
        if previous.is_some() && !current.is_empty() {
            worst = rates.iter().map(|r| r.1).reduce(f64::max).map(|w| json!(w));
            let mut f: Vec<&(String, f64)> = rates.iter().filter(|r| r.1 > 0.2).collect();
            f.sort_by(|a, b| b.1.total_cmp(&a.1));
            failing = Some(json!(f
                .iter()
                .take(50)
                .map(|r| r.0.clone())
                .collect::<Vec<_>>()));
        }
        out.push((json!(enabled as u64), worst, failing));
        previous = Some(current);
    }
    out
}

#[test]
fn typed_and_json_agent_reads_give_the_plain_rates() {
    let mut rng = crate::engine::test_rng::TestRng(0x2545_f491_4f6c_dd1d);
    let mut below = |n: u64| rng.below(n as usize) as u64;
    let t = now();
    for round in 0..200 {
        let names = 1 + below(12);
        let mut counters: Vec<(u64, u64)> = vec![(0, 0); names as usize];
        let mut samples = Vec::new();
        for _ in 0..4 {
            let mut list = Vec::new();
            for (i, c) in counters.iter_mut().enumerate() {
                if below(5) == 0 {
                    continue; // absent from this sample
                }
                // Counters mostly grow; sometimes they are reset.
                if below(8) == 0 {
                    *c = (0, 0);
                }
                c.0 += below(4);
                c.1 += below(3);
                let mut a = json!({"name": if i == 0 { String::new() } else { format!("a{i}") },
                                   "tick_count": c.0, "error_count": c.1});
                match below(4) {
                    0 => a["enabled"] = json!(false),
                    1 => {}
                    _ => a["enabled"] = json!(true),
                }
                if below(10) == 0 {
                    a.as_object_mut().unwrap().remove("error_count");
                }
                list.push(a);
            }
            let mut stats = agents(Value::Array(list));
            for key in ["enabled_agents", "total_agents"] {
                if below(3) == 0 {
                    stats.as_object_mut().unwrap().remove(key);
                }
            }
            samples.push(stats);
        }
        let expected = reference_agent_rates(&samples);
        let (mut by_json, mut typed) = (core(), core());
        for (i, stats) in samples.iter().enumerate() {
            let from_json =
                by_json.map_layer(Layer::Faza28, &read(&[(r::R_AGENTS, stats.clone())]), t);
            let mut tr = LayerRead::new();
            tr.set_agents(
                r::R_AGENTS,
                reads::AgentsRead {
                    total_agents: stats["total_agents"].as_f64(),
                    enabled_agents: stats["enabled_agents"].as_f64(),
                    agents: stats["agents"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| reads::AgentSample {
                            name: a["name"]
                                .as_str()
                                .filter(|n| !n.is_empty())
                                .map(str::to_owned),
                            enabled: a["enabled"].as_bool(),
                            tick_count: a["tick_count"].as_f64(),
                            error_count: a["error_count"].as_f64(),
                        })
                        .collect(),
                },
            );
            let from_typed = typed.map_layer(Layer::Faza28, &tr, t);
            assert_eq!(from_json, from_typed, "round {round} sample {i}");
            let (active, worst, failing) = &expected[i];
            assert_eq!(
                &from_json["active_agent_count"], active,
                "round {round} sample {i}"
            );
            assert_eq!(
                from_json.get("agent_failure_rate"),
                worst.as_ref(),
                "round {round} sample {i}"
            );
            assert_eq!(
                from_json.get("failing_agents"),
                failing.as_ref(),
                "round {round} sample {i}"
            );
        }
    }
}

#[test]
fn a_running_loop_with_an_old_tick_is_stuck() {
    let t = now();
    let stats = json!({"running": true, "iteration": 5, "tick_rate": 1.0});
    let at = |secs: i64| json!(iso(&(t - Duration::seconds(secs))));
    let stuck = |rd: LayerRead| {
        core()
            .map_layer(Layer::Faza28, &rd, t)
            .get("scheduler_stuck")
            .cloned()
    };
    assert_eq!(
        stuck(read(&[
            (r::R_LOOP_STATS, stats.clone()),
            (r::R_LAST_TICK, at(30))
        ])),
        Some(json!(true))
    );
    assert_eq!(
        stuck(read(&[
            (r::R_LOOP_STATS, stats.clone()),
            (r::R_LAST_TICK, at(2))
        ])),
        Some(json!(false))
    );
    let slow = json!({"running": true, "iteration": 5, "tick_rate": 10.0});
    assert_eq!(
        stuck(read(&[(r::R_LOOP_STATS, slow), (r::R_LAST_TICK, at(30))])),
        Some(json!(false))
    );
    let stopped = json!({"running": false, "iteration": 5, "tick_rate": 1.0});
    assert_eq!(
        stuck(read(&[
            (r::R_LOOP_STATS, stopped),
            (r::R_LAST_TICK, at(300))
        ])),
        Some(json!(false))
    );
    assert_eq!(stuck(read(&[(r::R_LOOP_STATS, stats)])), None);
}

// ---- FAZA 28.5 and FAZA 29

#[test]
fn meta_summaries_give_stability_and_anomaly_rate() {
    let mut c = core();
    c.map_layer(
        Layer::Faza28,
        &read(&[(
            r::R_AGENTS,
            agents(json!([
                agent("a", 1, 0),
                agent("b", 1, 0),
                agent("c", 1, 0),
                agent("d", 1, 0)
            ])),
        )]),
        now(),
    );
    let m = c.map_layer(
        Layer::Faza28_5,
        &read(&[
            (
                r::R_STABILITY_SUMMARY,
                json!({"avg_severity": 0.25, "critical_issues": 0, "recent_issues": 3}),
            ),
            (
                r::R_ANOMALY_SUMMARY,
                json!({"recent_anomalies": 7, "agents_with_anomalies": 3}),
            ),
            (r::R_GOV_FEEDBACK, json!(0.5)),
        ]),
        now(),
    );
    assert_eq!(
        Value::Object(m),
        json!({"stability_score": 0.75, "anomaly_count": 7, "anomaly_rate": 0.75, "feedback_health": 0.5})
    );
    let critical = core().map_layer(
        Layer::Faza28_5,
        &read(&[
            (
                r::R_STABILITY_SUMMARY,
                json!({"avg_severity": 0.1, "critical_issues": 1}),
            ),
            (
                r::R_ANOMALY_SUMMARY,
                json!({"recent_anomalies": 0, "agents_with_anomalies": 0}),
            ),
        ]),
        now(),
    );
    assert_eq!(critical["stability_score"], json!(0.0));
    assert!(
        !critical.contains_key("anomaly_rate"),
        "no agent count known yet"
    );
}

#[test]
fn governance_blocks_become_violations_per_window() {
    let mut c = core();
    let rd = |blocks: u64, stack: u64| {
        read(&[
            (
                r::P_RISK,
                json!({"system_risk": 10.0, "total_risk": 42.5, "critical_factors": []}),
            ),
            (r::P_STATUS, json!({})),
            (r::P_TAKEOVER_STATE, json!("normal")),
            (r::R_TAKEOVER_ACTIVE, json!(false)),
            (r::R_GOV_STATS, json!({"block_count": blocks})),
            (r::R_OVERRIDE_STACK, json!(stack)),
        ])
    };
    let first = c.map_layer(Layer::Faza29, &rd(4, 2), now());
    assert_eq!(
        Value::Object(first),
        json!({"risk_score": 42.5, "takeover_active": false, "override_count": 2})
    );
    let second = c.map_layer(Layer::Faza29, &rd(7, 0), now());
    assert_eq!(second["violation_count"], json!(3));
    assert_eq!(second["governance_violations"], json!(3));
    assert_eq!(second["override_count"], json!(0));
    c.reset_layer(Layer::Faza29);
    assert!(!c
        .map_layer(Layer::Faza29, &rd(9, 0), now())
        .contains_key("violation_count"));
}

// ---- docs and helpers

#[test]
fn the_docs_table_lists_every_canonical_key() {
    let table = canonical_table_markdown();
    for c in adapters::CANONICAL {
        assert!(table.contains(&format!("`{}`", c.key)));
    }
    let docs = include_str!("../../../docs/integration_layer.md");
    assert!(
        docs.contains(&table),
        "docs/integration_layer.md is out of date; paste canonical_table_markdown()"
    );
}

#[test]
fn fault_sources_map_to_layers() {
    assert_eq!(layer_of_source("faza27_5_optimizer"), Some(Layer::Faza27));
    assert_eq!(layer_of_source("faza29_governance"), Some(Layer::Faza29));
    assert_eq!(layer_of_source("faza28_5"), Some(Layer::Faza28_5));
    assert_eq!(layer_of_source("system"), None);
}

#[test]
fn collection_counters_follow_the_reference() {
    let mut c = core();
    let m = c.map_layer(Layer::Faza25, &read(&[(r::P_QUEUE_SIZE, json!(3))]), now());
    c.finish_layer(Some(Layer::Faza25), true, &m);
    c.finish_layer(Some(Layer::Faza27), false, &Metrics::new());
    assert_eq!(c.counters().queries, [1, 0, 0, 0, 0]);
    assert_eq!(c.counters().total_metrics_collected, 1);
    c.note_action(true);
    c.note_action(false);
    assert_eq!(
        (
            c.counters().repair_actions_executed,
            c.counters().repair_actions_failed
        ),
        (1, 1)
    );
}

/// `cargo test --lib print_canonical_table -- --ignored --nocapture` prints the table for the docs.
#[test]
#[ignore]
fn print_canonical_table() {
    print!("{}", canonical_table_markdown());
}
