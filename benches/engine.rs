//! Criterion benches of the engine's hot paths, without Python.
//!
//! Run: `cargo bench --bench engine` (add `-- --quick` for a short run). The Python-level
//! figures (against the reference) come from `../shared/bench`; these show what the engine
//! itself costs under the binding.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use faza30::engine::autorepair_engine::throttle::{Throttle, ThrottlePolicy};
use faza30::engine::autorepair_engine::{AutorepairMode, RepairOutcome};
use faza30::engine::classification_engine::{ClassificationEngine, FaultMetrics, FaultView, Tag};
use faza30::engine::clock;
use faza30::engine::detection_engine::{
    detect_series, AnomalyMethod, AnomalySettings, DetectInput, DetectionEngine, FaultSeverity,
    FaultSource,
};
use faza30::engine::event_hooks::{EventStore, EventType};
use faza30::engine::health_engine::{self, Component, HealthEngine, Readings};
use faza30::engine::pynum::Num;
use faza30::engine::snapshot_manager::{Options, SnapshotManager, SnapshotType};
use faza30::engine::value::Metrics;
use serde_json::{json, Map, Value};
use std::hint::black_box;

fn map(v: Value) -> Metrics {
    v.as_object().cloned().unwrap_or_default()
}

fn detection(c: &mut Criterion) {
    // The eight-fault input of the reference's tests.
    let layers = [
        map(json!({"error_rate": 0.6, "queue_size": 500})),
        map(json!({"cycle_count": 2, "bottleneck_count": 2})),
        map(json!({"agent_failure_rate": 0.5, "scheduler_stuck": true})),
        map(json!({"stability_score": 0.2, "anomaly_rate": 0.9})),
        map(json!({"violation_count": 3, "takeover_active": false})),
    ];
    let input = DetectInput::from_maps([
        Some(&layers[0]),
        Some(&layers[1]),
        Some(&layers[2]),
        Some(&layers[3]),
        Some(&layers[4]),
    ]);
    let mut engine: DetectionEngine<()> = DetectionEngine::default();
    let faults = engine.detect(&input).map(|d| d.faults.len()).unwrap_or(0);
    assert_eq!(faults, 8, "the input must raise 8 faults");
    c.bench_function("detect_faults/8 faults", |b| {
        b.iter(|| black_box(engine.detect(black_box(&input)).is_ok()))
    });
}

fn classification(c: &mut Criterion) {
    let metrics = FaultMetrics::from_map(&map(json!({"error_rate": 0.6, "queue_size": 500})))
        .expect("metrics");
    let fault = FaultView {
        fault_type: "high_error_rate",
        severity: Tag::Member(FaultSeverity::HIGH),
        source: Tag::Member(FaultSource::FAZA25_ORCHESTRATOR),
        description: "Error rate 0.60 above threshold",
        metrics: &metrics,
    };
    let mut engine: ClassificationEngine<()> = ClassificationEngine::default();
    c.bench_function("classify_fault/1 fault", |b| {
        b.iter(|| black_box(engine.classify(black_box(&fault))))
    });
}

fn health(c: &mut Criterion) {
    let mut readings: [Readings; 6] = Default::default();
    for (i, component) in Component::ALL.into_iter().enumerate() {
        readings[i] = [
            Some(Num::Float(0.9 - 0.05 * i as f64)),
            Some(Num::Float(0.1)),
            Some(Num::Int(3)),
            Some(Num::Bool(false)),
        ];
        black_box(health_engine::component_score(component, &readings[i]));
    }
    let mut engine = HealthEngine::new(100).expect("engine");
    c.bench_function("compute_health_score/6 components", |b| {
        b.iter(|| black_box(engine.compute(black_box(&readings))))
    });
}

fn events(c: &mut Criterion) {
    let mut store: EventStore<u64, ()> = EventStore::new(1000);
    let now = clock::now();
    let mut n = 0u64;
    c.bench_function("publish_event/no subscribers", |b| {
        b.iter(|| {
            n += 1;
            black_box(
                store
                    .publish(EventType::FAULT_DETECTED, n, now)
                    .subscribers
                    .len(),
            )
        })
    });
}

fn snapshots(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = SnapshotManager::open(Options::new(dir.path())).expect("manager");
    let mut group = c.benchmark_group("create_snapshot");
    group.sample_size(10);
    for mb in [1usize, 10] {
        // A JSON object of about `mb` MB: string fields of 1 KB.
        let mut state = Map::new();
        for i in 0..mb * 1000 {
            state.insert(format!("k{i}"), Value::String("x".repeat(1000)));
        }
        let bytes = serde_json::to_vec(&state).expect("json");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("{mb} MB"), |b| {
            b.iter_batched(
                || bytes.clone(),
                |state| {
                    manager
                        .create(SnapshotType::MANUAL, Map::new(), state)
                        .expect("create")
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
    manager.flush_deferred();
}

fn batch_anomaly(c: &mut Criterion) {
    // Deterministic noise with a spike every 997 values.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let values: Vec<f64> = (0..1_000_000)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = 100.0 + (state >> 11) as f64 / (1u64 << 53) as f64;
            if i % 997 == 0 {
                x + 50.0
            } else {
                x
            }
        })
        .collect();
    let mut group = c.benchmark_group("detect_series/1M values");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.sample_size(10);
    for method in [
        AnomalyMethod::ZScore,
        AnomalyMethod::Ewma,
        AnomalyMethod::Mad,
    ] {
        let settings = AnomalySettings::new(20, 3.0, method).expect("settings");
        group.bench_function(method.name(), |b| {
            b.iter(|| black_box(detect_series(black_box(&values), settings).map(|s| s.count)))
        });
    }
    group.finish();
}

fn throttle(c: &mut Criterion) {
    let policy = ThrottlePolicy {
        max_repairs_per_minute: u32::MAX / 2,
        max_repairs_per_hour: u32::MAX / 2,
        cooldown_seconds: 0.0,
        ..ThrottlePolicy::default()
    };
    let mut throttle = Throttle::new(policy);
    let mut now = 1_000.0;
    c.bench_function("throttle/admit + record", |b| {
        b.iter(|| {
            now += 0.001;
            let admitted = throttle
                .admit(
                    AutorepairMode::AGGRESSIVE,
                    FaultSeverity::HIGH,
                    "agent-7",
                    "restart_agent",
                    now,
                    false,
                )
                .is_ok();
            if admitted {
                black_box(throttle.record(
                    "agent-7",
                    "restart_agent",
                    RepairOutcome::Succeeded,
                    now,
                ));
            }
            admitted
        })
    });
}

criterion_group!(
    benches,
    detection,
    classification,
    health,
    events,
    snapshots,
    batch_anomaly,
    throttle
);
criterion_main!(benches);
