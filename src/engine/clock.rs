//! Time and identifiers.
//!
//! Timestamps are naive local datetimes, as in the reference (`datetime.now()`). Identifiers
//! are built from a per-process clock that never repeats and never goes back, so two ids made
//! in the same microsecond (or after a clock step) still differ and still sort in creation
//! order.

use chrono::{DateTime, Datelike, Local, NaiveDateTime, Timelike};
use std::sync::atomic::{AtomicI64, Ordering};

/// Naive local wall-clock time, like Python's `datetime.now()`.
pub fn now() -> NaiveDateTime {
    Local::now().naive_local()
}

static LAST_MICROS: AtomicI64 = AtomicI64::new(0);

/// A POSIX timestamp in microseconds, strictly greater than every earlier value this process
/// handed out. Used for ids only, never for durations.
pub fn unique_micros() -> i64 {
    let wall = Local::now().timestamp_micros();
    let mut last = LAST_MICROS.load(Ordering::Relaxed);
    loop {
        let next = if wall > last { wall } else { last + 1 };
        match LAST_MICROS.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// `prefix` followed by the POSIX seconds of a unique instant as Python's `repr(float)`,
/// which keeps the reference's id shape (`f25_err_1795859846.85619`).
pub fn unique_id(prefix: &str) -> String {
    let micros = unique_micros();
    let mut id = String::with_capacity(prefix.len() + 20);
    id.push_str(prefix);
    id.push_str(&crate::engine::pyfmt::float_repr(micros as f64 / 1e6));
    id
}

/// The naive local datetime of a unique-micros value.
pub fn local_from_micros(micros: i64) -> NaiveDateTime {
    DateTime::from_timestamp_micros(micros)
        .map(|utc| utc.with_timezone(&Local).naive_local())
        .unwrap_or_else(now)
}

/// Python's `datetime.isoformat()`: the `.ffffff` part is left out when the microsecond is 0.
pub fn iso(dt: &NaiveDateTime) -> String {
    let micros = dt.and_utc().timestamp_subsec_micros();
    if micros == 0 {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second()
        )
    } else {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            micros
        )
    }
}

/// Parses what `iso` (or Python's `isoformat`) writes, with or without microseconds.
pub fn parse_iso(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()
}

/// Seconds between two naive datetimes, as a float.
pub fn seconds_between(earlier: &NaiveDateTime, later: &NaiveDateTime) -> f64 {
    (*later - *earlier).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_micros_strictly_increase() {
        let mut last = unique_micros();
        for _ in 0..10_000 {
            let next = unique_micros();
            assert!(next > last);
            last = next;
        }
    }

    #[test]
    fn ids_made_in_a_burst_are_distinct() {
        let ids: std::collections::HashSet<String> =
            (0..5_000).map(|_| unique_id("f25_err_")).collect();
        assert_eq!(ids.len(), 5_000);
        assert!(ids
            .iter()
            .all(|id| id.starts_with("f25_err_") && id.contains('.')));
    }

    #[test]
    fn iso_drops_zero_microseconds() {
        let dt = NaiveDateTime::parse_from_str("2026-11-28 09:56:28", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(iso(&dt), "2026-11-28T09:56:28");
        let dt2 = dt + chrono::Duration::microseconds(81930);
        assert_eq!(iso(&dt2), "2026-11-28T09:56:28.081930");
        assert_eq!(parse_iso(&iso(&dt2)), Some(dt2));
        assert_eq!(parse_iso(&iso(&dt)), Some(dt));
    }
}
