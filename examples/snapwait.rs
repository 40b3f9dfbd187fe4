use faza30::engine::snapshot_manager::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
fn main() {
    let dir = std::env::temp_dir().join(format!("snapwait-{}", std::process::id()));
    let mut o = Options::new(&dir);
    if std::env::var("NEVER").is_ok() {
        o.fsync = FsyncPolicy::Never;
    }
    let m = Arc::new(SnapshotManager::open(o).unwrap());
    let state = b"{\"a\":1}".to_vec();
    for _ in 0..50 {
        m.create(SnapshotType::MANUAL, Default::default(), state.clone())
            .unwrap();
    }
    let n = 3000;
    let t = Instant::now();
    for _ in 0..n {
        m.create(SnapshotType::PRE_REPAIR, Default::default(), state.clone())
            .unwrap();
    }
    println!(
        "sync create: {:.1} us",
        t.elapsed().as_secs_f64() / n as f64 * 1e6
    );
    let t = Instant::now();
    for _ in 0..n {
        m.create_deferred(SnapshotType::PRE_REPAIR, Default::default(), state.clone())
            .unwrap();
    }
    println!(
        "deferred create only: {:.1} us",
        t.elapsed().as_secs_f64() / n as f64 * 1e6
    );
    m.flush();
    let t = Instant::now();
    for _ in 0..n {
        let i = m
            .create_deferred(SnapshotType::PRE_REPAIR, Default::default(), state.clone())
            .unwrap();
        m.wait_published(&i.snapshot_id, Duration::from_millis(50));
    }
    println!(
        "deferred + wait: {:.1} us",
        t.elapsed().as_secs_f64() / n as f64 * 1e6
    );
    let t = Instant::now();
    for _ in 0..n {
        let i = m
            .create_deferred(SnapshotType::PRE_REPAIR, Default::default(), state.clone())
            .unwrap();
        std::thread::sleep(Duration::from_micros(40));
        m.wait_published(&i.snapshot_id, Duration::from_millis(50));
    }
    println!(
        "deferred + 40us work + wait: {:.1} us",
        t.elapsed().as_secs_f64() / n as f64 * 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
}
