use super::cycles::Edge;
use super::*;
use serde_json::json;

fn fault(fault_type: &str, metrics: Value) -> FaultInfo {
    FaultInfo {
        fault_id: format!("{fault_type}_1"),
        fault_type: fault_type.into(),
        metrics: Arc::new(metrics.as_object().cloned().unwrap_or_default()),
    }
}

fn core(kind: EngineKind) -> StrategyCore {
    StrategyCore::new(Some(kind), BudgetPolicy::default(), DEFAULT_HISTORY_SIZE)
}

fn act(plan: &Plan) -> &ActPlan {
    match plan {
        Plan::Act(a) => a,
        other => panic!("expected an action plan, got {other:?}"),
    }
}

fn done(n: usize) -> Vec<StepOutcome> {
    (0..n)
        .map(|_| StepOutcome::Done {
            via: "test".into(),
            returned: None,
        })
        .collect()
}

fn measured(v: Value) -> Evidence {
    Evidence::Measured {
        source: "probe".into(),
        metrics: v.as_object().cloned().unwrap_or_default(),
    }
}

// ---- claims -------------------------------------------------------------------------------

#[test]
fn each_detected_fault_type_is_claimed_by_the_documented_engines() {
    use EngineKind::*;
    let table: &[(&str, &[EngineKind])] = &[
        ("graph_cycle", &[Graph]),
        ("graph_bottleneck", &[Graph]),
        ("scheduler_deadlock", &[Graph, Scheduler]),
        ("agent_failure", &[Agent]),
        ("stability_degradation", &[Agent]),
        ("high_anomaly_rate", &[Agent]),
        ("high_error_rate", &[Scheduler]),
        ("queue_overload", &[Scheduler]),
        ("resource_exhaustion", &[Scheduler]),
        ("governance_violation", &[Governance]),
        ("system_takeover", &[Governance]),
        ("high_risk_score", &[Governance]),
    ];
    for (ft, engines) in table {
        for kind in EngineKind::ALL {
            assert_eq!(
                claims(kind, ft, None),
                engines.contains(&kind),
                "{ft} / {}",
                kind.name()
            );
            // The classifier's category never moves a fault some engine handles.
            assert_eq!(
                claims(kind, ft, Some("operational")),
                engines.contains(&kind),
                "{ft} / {}",
                kind.name()
            );
        }
    }
}

#[test]
fn unknown_fault_types_fall_back_to_keywords_on_type_and_category() {
    assert!(claims(EngineKind::Graph, "graph_weirdness", None));
    assert!(!claims(EngineKind::Agent, "graph_weirdness", None));
    assert!(claims(
        EngineKind::Scheduler,
        "mystery",
        Some("operational")
    ));
    assert!(claims(
        EngineKind::Agent,
        "mystery",
        Some("FaultCategory.AGENT_FAULT")
    ));
    assert!(claims(
        EngineKind::Governance,
        "mystery",
        Some("governance_drift")
    ));
    assert!(!claims(EngineKind::Graph, "mystery", None));
}

#[test]
fn task_failures_are_not_agent_restarts() {
    assert_eq!(
        handler_for(EngineKind::Agent, "agent_failure"),
        Some(Handler::RestartAgent)
    );
    assert_eq!(
        handler_for(EngineKind::Agent, "Agent_Crash"),
        Some(Handler::RestartAgent)
    );
    assert_eq!(handler_for(EngineKind::Agent, "task_failure"), None);
    assert_eq!(
        handler_for(EngineKind::Scheduler, "task_failure"),
        Some(Handler::RetryFailed)
    );
}

// ---- planning ----------------------------------------------------------------------------

#[test]
fn a_graph_cycle_is_cut_at_its_weakest_edge_and_checked_with_has_cycle() {
    let mut c = core(EngineKind::Graph);
    let offer = Offer {
        graph: Some(GraphView::from_edges(vec![
            Edge::new("a", "b", Some(1.0), false),
            Edge::new("b", "c", Some(0.3), false),
            Edge::new("c", "a", Some(2.0), true),
        ])),
        ..Offer::default()
    }
    .with(&[Verb::BREAK_CYCLE]);
    let plan = c.plan(
        &fault("graph_cycle", json!({"cycle_count": 1})),
        &offer,
        0.0,
    );
    let a = act(&plan);
    assert_eq!(a.steps.len(), 1);
    // The WEAK edge wins although b->c is lighter.
    assert_eq!(a.steps[0].params.get("src"), Some(&json!("c")));
    assert_eq!(a.steps[0].params.get("dst"), Some(&json!("a")));
    assert_eq!(
        a.steps[0].params.get("cycle"),
        Some(&json!(["a", "b", "c"]))
    );
    assert_eq!(a.probes, vec![Probe::HasCycle]);
}

#[test]
fn cycle_repairs_without_a_graph_use_listed_cycles_or_say_what_is_missing() {
    let mut c = core(EngineKind::Graph);
    let offer = Offer::default().with(&[Verb::BREAK_CYCLE]);
    let plan = c.plan(
        &fault(
            "graph_cycle",
            json!({"cycle_count": 1, "cycles": [["x", "y"]]}),
        ),
        &offer,
        0.0,
    );
    assert_eq!(act(&plan).steps[0].target.as_deref(), Some("x -> y"));
    assert!(act(&plan).probes.is_empty());

    let plan = c.plan(
        &fault("graph_cycle", json!({"cycle_count": 1})),
        &offer,
        0.0,
    );
    assert!(
        matches!(
            plan,
            Plan::Skip {
                reason: SkipReason::NoTarget,
                ..
            }
        ),
        "{plan:?}"
    );
    let plan = c.plan(
        &fault("graph_cycle", json!({"cycle_count": 1})),
        &Offer::default(),
        0.0,
    );
    match plan {
        Plan::Skip {
            reason: SkipReason::NoAction,
            message,
            ..
        } => {
            assert!(
                message.contains("no action available for break_cycle"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // An acyclic graph means the fault is gone already.
    let acyclic = Offer {
        graph: Some(GraphView::from_edges(vec![Edge::new(
            "a", "b", None, false,
        )])),
        ..Offer::default()
    }
    .with(&[Verb::BREAK_CYCLE]);
    let plan = c.plan(
        &fault("graph_cycle", json!({"cycle_count": 1})),
        &acyclic,
        0.0,
    );
    assert!(
        matches!(
            plan,
            Plan::Skip {
                reason: SkipReason::ConditionAbsent,
                ..
            }
        ),
        "{plan:?}"
    );
}

#[test]
fn faults_whose_metrics_show_no_problem_are_skipped() {
    let mut c = core(EngineKind::Graph);
    let plan = c.plan(
        &fault("graph_cycle", json!({"cycle_count": 0})),
        &Offer::default().with(&[Verb::BREAK_CYCLE]),
        0.0,
    );
    assert!(matches!(
        plan,
        Plan::Skip {
            reason: SkipReason::ConditionAbsent,
            ..
        }
    ));
    let mut s = core(EngineKind::Scheduler);
    let plan = s.plan(
        &fault("queue_overload", json!({"queue_size": 40})),
        &Offer::default().with(&[Verb::SHED_LOAD]),
        0.0,
    );
    assert!(matches!(
        plan,
        Plan::Skip {
            reason: SkipReason::ConditionAbsent,
            ..
        }
    ));
    let plan = s.plan(&fault("nothing_known", json!({})), &Offer::default(), 0.0);
    assert!(matches!(
        plan,
        Plan::Skip {
            reason: SkipReason::NoHandler,
            ..
        }
    ));
}

#[test]
fn deadlock_breaks_graph_cycles_when_there_are_some_else_resets_the_scheduler() {
    let mut c = core(EngineKind::Scheduler);
    let cyclic = Offer {
        graph: Some(GraphView::from_edges(vec![
            Edge::new("a", "b", None, false),
            Edge::new("b", "a", Some(0.1), false),
        ])),
        ..Offer::default()
    }
    .with(&[Verb::BREAK_CYCLE, Verb::RESET_SCHEDULER]);
    let plan = c.plan(
        &fault("scheduler_deadlock", json!({"stuck": true})),
        &cyclic,
        0.0,
    );
    assert_eq!(act(&plan).steps[0].verb, Verb::BREAK_CYCLE);
    assert_eq!(act(&plan).steps[0].params.get("src"), Some(&json!("b")));

    let acyclic = Offer {
        graph: Some(GraphView::default()),
        ..Offer::default()
    }
    .with(&[Verb::BREAK_CYCLE, Verb::RESET_SCHEDULER]);
    let plan = c.plan(
        &fault("scheduler_deadlock", json!({"stuck": true})),
        &acyclic,
        0.0,
    );
    assert_eq!(act(&plan).steps[0].verb, Verb::RESET_SCHEDULER);
}

fn agent_offer() -> Offer {
    Offer::default().with(&[Verb::RESTART_AGENT, Verb::ISOLATE_AGENT])
}

#[test]
fn an_agent_is_restarted_three_times_then_isolated_and_the_budget_resets_after_quiet() {
    let mut c = core(EngineKind::Agent);
    let f = fault(
        "agent_failure",
        json!({"failure_rate": 0.5, "agent_name": "worker"}),
    );
    for n in 1..=3 {
        let plan = c.plan(&f, &agent_offer(), n as f64);
        let a = act(&plan);
        assert_eq!(a.steps[0].verb, Verb::RESTART_AGENT);
        assert_eq!(a.steps[0].params.get("name"), Some(&json!("worker")));
        assert_eq!(a.budget[0].attempts, n);
        assert!(!a.contained);
    }
    let plan = c.plan(&f, &agent_offer(), 10.0);
    let a = act(&plan);
    assert_eq!(a.steps[0].verb, Verb::ISOLATE_AGENT);
    assert_eq!(a.probes, vec![Probe::AgentEnabled("worker".into())]);
    assert!(a.contained && a.budget[0].exhausted);
    // Ten quiet minutes after the last fault, restarts are allowed again.
    let plan = c.plan(&f, &agent_offer(), 10.0 + budget::DEFAULT_QUIET_PERIOD);
    assert_eq!(act(&plan).steps[0].verb, Verb::RESTART_AGENT);
    assert_eq!(act(&plan).budget[0].attempts, 1);
}

#[test]
fn each_agent_has_its_own_budget_and_unnamed_agents_are_not_restarted() {
    let mut c = core(EngineKind::Agent);
    let a = fault("agent_failure", json!({"agent_name": "a"}));
    let b = fault("agent_failure", json!({"agent_name": "b"}));
    for _ in 0..3 {
        c.plan(&a, &agent_offer(), 0.0);
    }
    assert_eq!(
        act(&c.plan(&a, &agent_offer(), 0.0)).steps[0].verb,
        Verb::ISOLATE_AGENT
    );
    assert_eq!(
        act(&c.plan(&b, &agent_offer(), 0.0)).steps[0].verb,
        Verb::RESTART_AGENT
    );
    let unnamed = fault("agent_failure", json!({"failure_rate": 0.5}));
    assert!(matches!(
        c.plan(&unnamed, &agent_offer(), 0.0),
        Plan::Skip {
            reason: SkipReason::NoTarget,
            ..
        }
    ));
    // The budget map holds real names only.
    let names: Vec<String> = c.budget_states(0.0).into_iter().map(|s| s.target).collect();
    assert_eq!(names, vec!["agent:a", "agent:b"]);
}

#[test]
fn no_restart_action_means_no_budget_is_used() {
    let mut c = core(EngineKind::Agent);
    let f = fault("agent_crash", json!({"agent": "w"}));
    for _ in 0..5 {
        assert!(matches!(
            c.plan(&f, &Offer::default(), 0.0),
            Plan::Skip {
                reason: SkipReason::NoAction,
                ..
            }
        ));
    }
    assert_eq!(c.budget_targets(), 0);
    // Without isolation, an exhausted budget gives up honestly.
    let restart_only = Offer::default().with(&[Verb::RESTART_AGENT]);
    for _ in 0..3 {
        c.plan(&f, &restart_only, 0.0);
    }
    assert!(matches!(
        c.plan(&f, &restart_only, 0.0),
        Plan::GiveUp { .. }
    ));
}

#[test]
fn a_stall_is_restarted_only_when_long_enough() {
    let mut c = core(EngineKind::Agent);
    let short = fault(
        "agent_stall",
        json!({"stall_duration": 4, "agent_name": "s"}),
    );
    assert!(matches!(
        c.plan(&short, &agent_offer(), 0.0),
        Plan::Skip {
            reason: SkipReason::ConditionAbsent,
            ..
        }
    ));
    let long = fault(
        "agent_stall",
        json!({"stall_duration": 40, "agent_name": "s"}),
    );
    assert_eq!(
        act(&c.plan(&long, &agent_offer(), 0.0)).steps[0].verb,
        Verb::RESTART_AGENT
    );
}

#[test]
fn tasks_are_retried_within_their_budget_then_given_up() {
    let mut c = core(EngineKind::Scheduler);
    let offer = Offer::default().with(&[Verb::RETRY_TASK]);
    let f = fault("task_timeout", json!({"task_id": "t1"}));
    for n in 1..=3 {
        let plan = c.plan(&f, &offer, 0.0);
        assert_eq!(
            act(&plan).steps[0].params.get("task_id"),
            Some(&json!("t1"))
        );
        assert_eq!(act(&plan).budget[0].attempts, n);
    }
    match c.plan(&f, &offer, 0.0) {
        Plan::GiveUp {
            message, budget, ..
        } => {
            assert!(message.contains("t1") && budget[0].exhausted, "{message}");
        }
        other => panic!("{other:?}"),
    }
    // Another task is unaffected.
    let g = fault("task_timeout", json!({"task_id": "t2"}));
    assert!(matches!(c.plan(&g, &offer, 0.0), Plan::Act(_)));
}

#[test]
fn error_rate_faults_retry_the_failed_tasks_the_orchestrator_lists() {
    let mut c = core(EngineKind::Scheduler);
    let f = fault("high_error_rate", json!({"error_rate": 0.6}));
    assert!(needs(Handler::RetryFailed, &f).failed_tasks);
    let offer = Offer {
        tasks: vec![
            TaskInfo {
                id: "x".into(),
                priority: 5.0,
            },
            TaskInfo {
                id: "y".into(),
                priority: 5.0,
            },
        ],
        ..Offer::default()
    }
    .with(&[Verb::RETRY_TASK]);
    let plan = c.plan(&f, &offer, 0.0);
    let ids: Vec<_> = act(&plan)
        .steps
        .iter()
        .map(|s| s.target.clone().unwrap())
        .collect();
    assert_eq!(ids, vec!["x", "y"]);
    let none = Offer::default().with(&[Verb::RETRY_TASK]);
    assert!(matches!(
        c.plan(&f, &none, 0.0),
        Plan::Skip {
            reason: SkipReason::NoTarget,
            ..
        }
    ));
}

#[test]
fn queue_overload_cancels_the_lowest_priority_newest_tasks_down_to_the_limit() {
    let mut c = core(EngineKind::Scheduler);
    let tasks = vec![
        TaskInfo {
            id: "old_low".into(),
            priority: 1.0,
        },
        TaskInfo {
            id: "high".into(),
            priority: 9.0,
        },
        TaskInfo {
            id: "new_low".into(),
            priority: 1.0,
        },
        TaskInfo {
            id: "mid".into(),
            priority: 5.0,
        },
    ];
    let offer = Offer {
        tasks,
        ..Offer::default()
    }
    .with(&[Verb::CANCEL_TASK]);
    let plan = c.plan(
        &fault("queue_overload", json!({"queue_size": 103})),
        &offer,
        0.0,
    );
    let a = act(&plan);
    let ids: Vec<_> = a.steps.iter().map(|s| s.target.clone().unwrap()).collect();
    assert_eq!(ids, vec!["new_low", "old_low", "mid"]);
    assert_eq!(a.probes, vec![Probe::QueueSize]);
    // A caller's shed_load is preferred and gets the numbers.
    let offer = Offer::default().with(&[Verb::SHED_LOAD, Verb::CANCEL_TASK]);
    let plan = c.plan(
        &fault("queue_overload", json!({"queue_size": 150})),
        &offer,
        0.0,
    );
    let s = &act(&plan).steps[0];
    assert_eq!(s.verb, Verb::SHED_LOAD);
    assert_eq!(
        s.params,
        params(vec![
            ("resource", json!("queue")),
            ("current", json!(150.0)),
            ("limit", json!(100.0))
        ])
    );
}

#[test]
fn resource_exhaustion_reads_the_detection_keys() {
    let mut c = core(EngineKind::Scheduler);
    let offer = Offer::default().with(&[Verb::SHED_LOAD]);
    let plan = c.plan(
        &fault("resource_exhaustion", json!({"cpu": 0.97, "memory": 0.5})),
        &offer,
        0.0,
    );
    let s = &act(&plan).steps[0];
    assert_eq!(s.params.get("resource"), Some(&json!("cpu")));
    assert_eq!(s.params.get("current"), Some(&json!(0.97)));
    let plan = c.plan(
        &fault("resource_exhaustion", json!({"cpu": 0.5, "memory": 0.6})),
        &offer,
        0.0,
    );
    assert!(matches!(
        plan,
        Plan::Skip {
            reason: SkipReason::ConditionAbsent,
            ..
        }
    ));
}

#[test]
fn governance_faults_plan_real_governance_actions() {
    let mut c = core(EngineKind::Governance);
    let all = Offer::default().with(&[
        Verb::REQUEST_RECOVERY,
        Verb::GOVERNANCE_ESCALATE,
        Verb::RESET_OVERRIDES,
    ]);
    let plan = c.plan(
        &fault("system_takeover", json!({"takeover": true})),
        &all,
        0.0,
    );
    assert_eq!(act(&plan).steps[0].verb, Verb::REQUEST_RECOVERY);
    assert_eq!(act(&plan).probes, vec![Probe::TakeoverState]);
    let plan = c.plan(
        &fault("high_risk_score", json!({"risk_score": 85})),
        &all,
        0.0,
    );
    assert_eq!(act(&plan).steps[0].verb, Verb::GOVERNANCE_ESCALATE);
    assert_eq!(act(&plan).steps[0].params.get("score"), Some(&json!(0.85)));
    let plan = c.plan(
        &fault("governance_violation", json!({"violation_count": 3})),
        &all,
        0.0,
    );
    assert_eq!(act(&plan).steps[0].params.get("score"), Some(&json!(0.3)));
    let plan = c.plan(
        &fault("override_abuse", json!({"override_count": 12})),
        &all,
        0.0,
    );
    assert_eq!(act(&plan).probes, vec![Probe::OverrideStack]);
    let plan = c.plan(
        &fault("override_abuse", json!({"override_count": 2})),
        &all,
        0.0,
    );
    assert!(matches!(
        plan,
        Plan::Skip {
            reason: SkipReason::ConditionAbsent,
            ..
        }
    ));
}

// ---- judging -------------------------------------------------------------------------------

fn restart_plan() -> (FaultInfo, Plan) {
    let mut c = core(EngineKind::Agent);
    let f = fault(
        "agent_failure",
        json!({"agent_name": "w", "failure_rate": 0.5}),
    );
    let plan = c.plan(&f, &agent_offer(), 0.0);
    (f, plan)
}

#[test]
fn success_needs_a_measurement_showing_the_fault_gone() {
    let (f, plan) = restart_plan();
    let r = judge(EngineKind::Agent, &f, &plan, &done(1), &[]);
    assert_eq!(r.status, RepairStatus::FAILED);
    assert!(!r.verification_passed);
    assert_eq!(r.metadata.get("reason"), Some(json!("inconclusive")));

    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(1),
        &[Evidence::Verdict {
            source: "verify".into(),
            passed: true,
        }],
    );
    assert_eq!(r.status, RepairStatus::SUCCESS);
    assert!(r.verification_passed);
    assert_eq!(r.success_rate, 1.0);
    assert_eq!(r.side_effects, vec!["agent w restarted"]);

    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(1),
        &[measured(json!({"failure_rate": 0.05}))],
    );
    assert_eq!(r.status, RepairStatus::SUCCESS);
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(1),
        &[measured(json!({"failure_rate": 0.3}))],
    );
    assert_eq!((r.status, r.success_rate), (RepairStatus::PARTIAL, 0.5));
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(1),
        &[measured(json!({"failure_rate": 0.9}))],
    );
    assert_eq!(r.status, RepairStatus::FAILED);
    assert_eq!(r.metadata.get("reason"), Some(json!("verification_failed")));
    // Metrics without a value this fault is judged by still prove nothing: not verified.
    // (They used to make the restart FAILED; a restart that ran and was re-measured before
    // any tick is now PARTIAL awaiting evidence, see the tests below.)
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(1),
        &[measured(json!({"queue_size": 0}))],
    );
    assert_eq!(r.status, RepairStatus::PARTIAL);
    assert!(!r.verification_passed);
    assert_eq!(r.metadata.get("reason"), Some(json!(AWAITING_EVIDENCE)));
}

fn verdict_of(r: &Report) -> Option<Value> {
    r.metadata
        .get("verification")
        .and_then(|v| v.get("verdict").cloned())
}

/// What the faza28 layer reads right after a restart: agents, but no tick since, so no
/// failure rate.
fn no_ticks_yet() -> Evidence {
    Evidence::Measured {
        source: "verify(fault)".into(),
        metrics: json!({"active_agent_count": 2, "agent_loop_running": true})
            .as_object()
            .cloned()
            .unwrap(),
    }
}

#[test]
fn a_restart_that_ran_before_any_tick_is_partial_awaiting_evidence() {
    let (f, plan) = restart_plan();
    let r = judge(EngineKind::Agent, &f, &plan, &done(1), &[no_ticks_yet()]);
    assert_eq!(r.status, RepairStatus::PARTIAL);
    assert!(r.awaiting_evidence());
    assert!(!r.verification_passed);
    assert_eq!(r.success_rate, 0.5);
    assert_eq!(r.metadata.get("reason"), Some(json!("awaiting_evidence")));
    assert_eq!(verdict_of(&r), Some(json!("inconclusive")));
    assert_eq!(r.side_effects, vec!["agent w restarted"]);
    assert!(
        r.actions_taken
            .last()
            .unwrap()
            .contains("awaiting evidence"),
        "{:?}",
        r.actions_taken
    );
}

#[test]
fn a_retry_that_ran_before_any_task_finished_is_partial_awaiting_evidence() {
    let mut c = core(EngineKind::Scheduler);
    let f = fault(
        "high_error_rate",
        json!({"error_rate": 0.6, "task_ids": ["a", "b"]}),
    );
    let plan = c.plan(&f, &Offer::default().with(&[Verb::RETRY_TASK]), 0.0);
    assert_eq!(act(&plan).steps.len(), 2);
    let quiet = measured(json!({"queue_size": 2, "scheduler_efficiency": 1.0}));
    let r = judge(EngineKind::Scheduler, &f, &plan, &done(2), &[quiet]);
    assert_eq!(r.status, RepairStatus::PARTIAL);
    assert_eq!(r.metadata.get("reason"), Some(json!("awaiting_evidence")));
    // One finished task with an error is evidence: the fault is still there.
    let r = judge(
        EngineKind::Scheduler,
        &f,
        &plan,
        &done(2),
        &[measured(json!({"error_rate": 1.0}))],
    );
    assert_eq!(r.status, RepairStatus::FAILED);
    assert_eq!(r.metadata.get("reason"), Some(json!("verification_failed")));
}

#[test]
fn awaiting_evidence_needs_actions_that_all_ran_and_a_measurement_with_nothing_in_it() {
    let (f, plan) = restart_plan();
    let reason = |r: &Report| (r.status, r.metadata.get("reason"));
    let failed = |why: &str| (RepairStatus::FAILED, Some(json!(why)));
    // The action raised or declined: FAILED whatever was measured.
    let raised = [StepOutcome::Failed {
        via: "x".into(),
        error: "RuntimeError: no".into(),
    }];
    let r = judge(EngineKind::Agent, &f, &plan, &raised, &[no_ticks_yet()]);
    assert_eq!(reason(&r), failed("action_failed"));
    let declined = [StepOutcome::Declined {
        via: "x".into(),
        detail: "returned False".into(),
    }];
    let r = judge(EngineKind::Agent, &f, &plan, &declined, &[no_ticks_yet()]);
    assert_eq!(reason(&r), failed("action_declined"));
    // Nothing measured at all: there is no measurement to wait for.
    let r = judge(EngineKind::Agent, &f, &plan, &done(1), &[]);
    assert_eq!(reason(&r), failed("inconclusive"));
    // A value the fault is judged by, but unreadable: an unusable answer, not a quiet one.
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(1),
        &[no_ticks_yet(), measured(json!({"failure_rate": "n/a"}))],
    );
    assert_eq!(reason(&r), failed("inconclusive"));
    let invalid = Evidence::Invalid {
        source: "verify(fault)".into(),
        message: "expected a bool or a dict".into(),
    };
    let r = judge(EngineKind::Agent, &f, &plan, &done(1), &[invalid]);
    assert_eq!(reason(&r), failed("inconclusive"));
    // The measurement raised.
    let error = Evidence::Error {
        source: "verify(fault)".into(),
        error: "boom".into(),
    };
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(1),
        &[no_ticks_yet(), error],
    );
    assert_eq!(reason(&r), failed("verification_error"));
    // Evidence that the fault is still there.
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(1),
        &[no_ticks_yet(), measured(json!({"agent_failure_rate": 0.9}))],
    );
    assert_eq!(reason(&r), failed("verification_failed"));

    // An action whose effect a measurement can see at once is not waited for.
    let mut c = core(EngineKind::Agent);
    let meta = fault("stability_degradation", json!({"stability_score": 0.2}));
    let plan = c.plan(
        &meta,
        &Offer::default().with(&[Verb::RESET_META_STATE]),
        0.0,
    );
    assert_eq!(act(&plan).steps[0].verb, Verb::RESET_META_STATE);
    let r = judge(EngineKind::Agent, &meta, &plan, &done(1), &[no_ticks_yet()]);
    assert_eq!(reason(&r), failed("inconclusive"));
}

#[test]
fn a_restart_plan_with_an_unconfirmed_isolation_is_not_awaiting_evidence() {
    let mut c = core(EngineKind::Agent);
    let worn = fault("agent_failure", json!({"agent_name": "w"}));
    for n in 0..3 {
        c.plan(&worn, &agent_offer(), n as f64);
    }
    // "w" has used its restarts: it is isolated, "v" restarted.
    let f = fault("agent_failure", json!({"failing_agents": ["w", "v"]}));
    let plan = c.plan(&f, &agent_offer(), 4.0);
    let verbs: Vec<Verb> = act(&plan).steps.iter().map(|s| s.verb).collect();
    assert_eq!(verbs, vec![Verb::ISOLATE_AGENT, Verb::RESTART_AGENT]);
    let r = judge(EngineKind::Agent, &f, &plan, &done(2), &[no_ticks_yet()]);
    assert_eq!(r.status, RepairStatus::FAILED);
    assert_eq!(r.metadata.get("reason"), Some(json!("inconclusive")));
    // Confirmed, it is contained, as before.
    let off = Evidence::Enabled {
        source: "agent_manager".into(),
        agent: "w".into(),
        enabled: false,
    };
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(2),
        &[off, no_ticks_yet()],
    );
    assert_eq!(r.status, RepairStatus::PARTIAL);
    assert_eq!(r.metadata.get("reason"), Some(json!("contained")));
    assert!(!r.awaiting_evidence());
}

#[test]
fn any_failing_check_wins_over_a_passing_one() {
    let (f, plan) = restart_plan();
    let evidence = [
        measured(json!({"failure_rate": 0.0})),
        Evidence::Verdict {
            source: "verify".into(),
            passed: false,
        },
    ];
    assert_eq!(
        judge(EngineKind::Agent, &f, &plan, &done(1), &evidence).status,
        RepairStatus::FAILED
    );
    let evidence = [
        measured(json!({"failure_rate": 0.0})),
        Evidence::Error {
            source: "verify".into(),
            error: "boom".into(),
        },
    ];
    let r = judge(EngineKind::Agent, &f, &plan, &done(1), &evidence);
    assert_eq!(r.status, RepairStatus::FAILED);
    assert_eq!(r.metadata.get("reason"), Some(json!("verification_error")));
}

#[test]
fn a_raising_or_declining_action_fails_with_the_error_kept() {
    let (f, plan) = restart_plan();
    let failed = [StepOutcome::Failed {
        via: "actions['restart_agent']".into(),
        error: "RuntimeError: boom".into(),
    }];
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &failed,
        &[Evidence::Verdict {
            source: "v".into(),
            passed: true,
        }],
    );
    assert_eq!(r.status, RepairStatus::FAILED);
    assert_eq!(
        r.metadata.get("error"),
        Some(json!("restart_agent: RuntimeError: boom"))
    );
    assert!(r
        .actions_taken
        .iter()
        .any(|a| a.contains("failed: RuntimeError: boom")));
    assert!(r.side_effects.is_empty());

    let declined = [StepOutcome::Declined {
        via: "x".into(),
        detail: "returned False".into(),
    }];
    let r = judge(EngineKind::Agent, &f, &plan, &declined, &[]);
    assert_eq!(r.status, RepairStatus::FAILED);
    assert_eq!(r.metadata.get("reason"), Some(json!("action_declined")));
}

#[test]
fn isolation_is_partial_when_confirmed_and_failed_when_not() {
    let mut c = StrategyCore::new(
        Some(EngineKind::Agent),
        BudgetPolicy {
            max_attempts: 0,
            ..BudgetPolicy::default()
        },
        10,
    );
    let f = fault("agent_failure", json!({"agent_name": "w"}));
    let plan = c.plan(&f, &agent_offer(), 0.0);
    assert_eq!(act(&plan).steps[0].verb, Verb::ISOLATE_AGENT);
    let off = Evidence::Enabled {
        source: "agent_manager".into(),
        agent: "w".into(),
        enabled: false,
    };
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(1),
        std::slice::from_ref(&off),
    );
    assert_eq!(r.status, RepairStatus::PARTIAL);
    assert_eq!(r.metadata.get("reason"), Some(json!("contained")));
    assert!(!r.verification_passed);
    // Even with the fault gone, an isolated agent is not a full repair.
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &done(1),
        &[
            off,
            Evidence::Verdict {
                source: "v".into(),
                passed: true,
            },
        ],
    );
    assert_eq!(
        (r.status, r.verification_passed),
        (RepairStatus::PARTIAL, true)
    );
    let on = Evidence::Enabled {
        source: "agent_manager".into(),
        agent: "w".into(),
        enabled: true,
    };
    assert_eq!(
        judge(EngineKind::Agent, &f, &plan, &done(1), &[on]).status,
        RepairStatus::FAILED
    );
}

#[test]
fn reports_carry_a_copy_of_the_metrics_and_the_action_details() {
    let (f, plan) = restart_plan();
    let r = judge(
        EngineKind::Agent,
        &f,
        &plan,
        &[StepOutcome::Done {
            via: "v".into(),
            returned: Some(json!(true)),
        }],
        &[],
    );
    assert_eq!(r.metadata.get("fault_type"), Some(json!("agent_failure")));
    assert_eq!(
        r.metadata.get("metrics"),
        Some(Value::Object((*f.metrics).clone()))
    );
    let actions = r.metadata.get("actions").unwrap();
    let actions = actions.as_array().unwrap();
    assert_eq!(actions[0]["verb"], json!("restart_agent"));
    assert_eq!(actions[0]["params"], json!({"name": "w"}));
    assert_eq!(actions[0]["target"], json!("w"));
    assert_eq!(actions[0]["outcome"], json!("done"));
    assert_eq!(actions[0]["returned"], json!(true));
    assert_eq!(
        r.metadata.get("budget").unwrap()[0]["target"],
        json!("agent:w")
    );
    // The dict keeps the reference's key order: the fault's keys first, then the judgement's.
    let keys: Vec<String> = r.metadata.to_map().keys().cloned().collect();
    assert_eq!(keys[..4], ["fault_type", "metrics", "engine", "handler"]);
    assert_eq!(r.metadata.to_map()["engine"], json!("agent"));
    assert!(keys.contains(&"actions".to_string()));
}

#[test]
fn skips_and_give_ups_are_honest() {
    let f = fault("agent_failure", json!({}));
    let plan = Plan::Skip {
        handler: Some(Handler::RestartAgent),
        reason: SkipReason::NoAction,
        message: "no action available for restart_agent".into(),
    };
    let r = judge(EngineKind::Agent, &f, &plan, &[], &[]);
    assert_eq!(r.status, RepairStatus::SKIPPED);
    assert_eq!(
        r.actions_taken,
        vec!["no action available for restart_agent"]
    );
    assert_eq!(r.metadata.get("reason"), Some(json!("no_action")));
    let r = judge_context_error(EngineKind::Agent, &f, None, "TypeError: bad edges");
    assert_eq!(r.status, RepairStatus::FAILED);
    assert_eq!(r.metadata.get("error"), Some(json!("TypeError: bad edges")));
}

#[test]
fn a_cycle_cut_verified_by_has_cycle_succeeds() {
    let mut c = core(EngineKind::Graph);
    let f = fault("graph_cycle", json!({"cycle_count": 1}));
    let offer = Offer {
        graph: Some(GraphView::from_edges(vec![
            Edge::new("a", "b", Some(1.0), false),
            Edge::new("b", "a", Some(0.5), false),
        ])),
        ..Offer::default()
    }
    .with(&[Verb::BREAK_CYCLE]);
    let plan = c.plan(&f, &offer, 0.0);
    let r = judge(
        EngineKind::Graph,
        &f,
        &plan,
        &done(1),
        &[measured(json!({"has_cycle": false}))],
    );
    assert_eq!(r.status, RepairStatus::SUCCESS);
    assert_eq!(
        r.side_effects,
        vec!["edge b -> a removed from the task graph"]
    );
    let r = judge(
        EngineKind::Graph,
        &f,
        &plan,
        &done(1),
        &[measured(json!({"has_cycle": true}))],
    );
    assert_eq!(r.status, RepairStatus::FAILED);
}

// ---- statistics --------------------------------------------------------------------------

#[test]
fn counters_add_up_and_history_is_bounded() {
    let mut c = StrategyCore::new(Some(EngineKind::Agent), BudgetPolicy::default(), 3);
    let f = fault("agent_failure", json!({"agent_name": "w"}));
    let statuses = [
        RepairStatus::SUCCESS,
        RepairStatus::FAILED,
        RepairStatus::PARTIAL,
        RepairStatus::SKIPPED,
        RepairStatus::SUCCESS,
    ];
    for (i, status) in statuses.iter().enumerate() {
        let plan = Plan::Skip {
            handler: None,
            reason: SkipReason::NoAction,
            message: String::new(),
        };
        let report = Report {
            status: *status,
            verification_passed: false,
            success_rate: 0.0,
            actions_taken: vec![],
            side_effects: vec![],
            metadata: ReportMeta::new(EngineKind::Agent, &f, None),
        };
        c.record(&f, &report, &[], &plan, i as f64);
    }
    let s = c.stats();
    assert_eq!(s.total_repairs, 5);
    assert_eq!(
        s.successful_repairs + s.failed_repairs + s.partial_repairs + s.skipped_repairs,
        5
    );
    assert_eq!((s.successful_repairs, s.skipped_repairs), (2, 1));
    assert_eq!(s.avg_duration, 2.0);
    assert_eq!(s.success_rate(), 0.4);
    assert_eq!(c.history_len(), 3);
    let kept: Vec<RepairStatus> = c.history(10).into_iter().map(|h| h.status).collect();
    assert_eq!(
        kept,
        vec![
            RepairStatus::PARTIAL,
            RepairStatus::SKIPPED,
            RepairStatus::SUCCESS
        ]
    );
    assert_eq!(c.history(1).len(), 1);
    c.record_result("x".into(), "y".into(), RepairStatus::FAILED, f64::NAN);
    assert_eq!(c.stats().failed_repairs, 2);
    assert!(c.stats().avg_duration.is_finite());
}

#[test]
fn the_takeover_state_reads_as_active_only_in_takeover_or_safe_mode() {
    assert!(takeover_active("takeover") && takeover_active("SAFE_MODE"));
    assert!(
        !takeover_active("normal") && !takeover_active("recovery") && !takeover_active("warning")
    );
}

#[test]
fn recheck_needs_conclusive_evidence() {
    let f = fault("graph_cycle", json!({"cycle_count": 2}));
    assert_eq!(recheck_probes(Handler::BreakCycle), vec![Probe::HasCycle]);
    assert_eq!(recheck(Handler::BreakCycle, &f, &[]), None);
    assert_eq!(
        recheck(
            Handler::BreakCycle,
            &f,
            &[measured(json!({"has_cycle": false}))]
        ),
        Some(true)
    );
    assert_eq!(
        recheck(
            Handler::BreakCycle,
            &f,
            &[measured(json!({"cycle_count": 1}))]
        ),
        Some(false)
    );
    assert_eq!(
        recheck(
            Handler::BreakCycle,
            &f,
            &[measured(json!({"queue_size": 1}))]
        ),
        None
    );
    let err = Evidence::Error {
        source: "x".into(),
        error: "boom".into(),
    };
    assert_eq!(
        recheck(
            Handler::BreakCycle,
            &f,
            &[measured(json!({"has_cycle": false})), err]
        ),
        Some(false)
    );
}

#[test]
fn a_declined_cancel_does_not_stop_shedding_but_other_declines_do() {
    let mut c = core(EngineKind::Scheduler);
    let tasks = (0..3)
        .map(|i| TaskInfo {
            id: format!("t{i}"),
            priority: 1.0,
        })
        .collect();
    let offer = Offer {
        tasks,
        ..Offer::default()
    }
    .with(&[Verb::CANCEL_TASK]);
    let f = fault("queue_overload", json!({"queue_size": 102}));
    let plan = c.plan(&f, &offer, 0.0);
    let a = act(&plan);
    assert_eq!(a.steps.len(), 2);
    let declined = StepOutcome::Declined {
        via: "orchestrator.cancel_task".into(),
        detail: "returned False".into(),
    };
    assert!(continues_after(&a.steps[0], &declined));
    let outcomes = vec![
        declined,
        StepOutcome::Done {
            via: "x".into(),
            returned: Some(json!(true)),
        },
    ];
    assert!(ready_to_verify(a, &outcomes));
    let r = judge(
        EngineKind::Scheduler,
        &f,
        &plan,
        &outcomes,
        &[measured(json!({"queue_size": 100}))],
    );
    assert_eq!(r.status, RepairStatus::SUCCESS);
    assert_eq!(r.side_effects.len(), 1);

    let (rf, rplan) = restart_plan();
    let declined = StepOutcome::Declined {
        via: "x".into(),
        detail: "returned False".into(),
    };
    assert!(!continues_after(&act(&rplan).steps[0], &declined));
    assert_eq!(
        judge(EngineKind::Agent, &rf, &rplan, &[declined], &[]).status,
        RepairStatus::FAILED
    );
}
