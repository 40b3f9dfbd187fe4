//! Time and identifiers.
//!
//! Timestamps are naive local datetimes, as in the reference (`datetime.now()`). Identifiers
//! are built from a per-process clock that never repeats and never goes back, so two ids made
//! in the same microsecond (or after a clock step) still differ and still sort in creation
//! order.

use chrono::{DateTime, Datelike, Local, NaiveDateTime, TimeZone, Timelike, Utc};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Naive local wall-clock time, like Python's `datetime.now()`.
pub fn now() -> NaiveDateTime {
    to_local(Utc::now())
}

/// The local offset of the last UTC second it was asked about. Looking the offset up (chrono
/// consults the time zone rules) costs more than the rest of a timestamp, and an offset only
/// ever changes on a whole second. The second sits in the high bits, the offset plus
/// `OFFSET_BIAS` in the low `OFFSET_BITS`, so one atomic holds both.
struct OffsetCache(AtomicU64);

const OFFSET_BITS: u32 = 20;
const OFFSET_BIAS: i64 = 1 << (OFFSET_BITS - 1);

impl OffsetCache {
    const fn new() -> Self {
        OffsetCache(AtomicU64::new(0))
    }

    /// `utc` in local time; `lookup` gives the offset in seconds of a UTC time.
    fn local(&self, utc: DateTime<Utc>, lookup: impl Fn(&NaiveDateTime) -> i64) -> NaiveDateTime {
        let second = utc.timestamp();
        let naive = utc.naive_utc();
        if !(1..(1i64 << (63 - OFFSET_BITS))).contains(&second) {
            return naive + chrono::Duration::seconds(lookup(&naive));
        }
        let cached = self.0.load(Ordering::Relaxed);
        let offset = if cached >> OFFSET_BITS == second as u64 {
            (cached & ((1 << OFFSET_BITS) - 1)) as i64 - OFFSET_BIAS
        } else {
            let offset = lookup(&naive);
            if (-OFFSET_BIAS..OFFSET_BIAS).contains(&offset) {
                let packed = ((second as u64) << OFFSET_BITS) | (offset + OFFSET_BIAS) as u64;
                self.0.store(packed, Ordering::Relaxed);
            }
            offset
        };
        naive + chrono::Duration::seconds(offset)
    }
}

static LOCAL_OFFSET: OffsetCache = OffsetCache::new();

fn to_local(utc: DateTime<Utc>) -> NaiveDateTime {
    LOCAL_OFFSET.local(utc, |naive| {
        i64::from(Local.offset_from_utc_datetime(naive).local_minus_utc())
    })
}

static LAST_MICROS: AtomicI64 = AtomicI64::new(0);

/// A POSIX timestamp in microseconds, strictly greater than every earlier value this process
/// handed out. Used for ids only, never for durations.
pub fn unique_micros() -> i64 {
    let wall = Utc::now().timestamp_micros();
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
        .map(to_local)
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
    fn cached_offset_agrees_with_chrono() {
        for _ in 0..3 {
            let utc = Utc::now();
            assert_eq!(to_local(utc), utc.with_timezone(&Local).naive_local());
        }
        // Seconds far apart (a different offset may apply) each get their own lookup.
        for micros in [
            0i64,
            1_000_000,
            1_700_000_000_000_000,
            1_790_000_000_123_456,
        ] {
            let utc = DateTime::from_timestamp_micros(micros).unwrap();
            assert_eq!(to_local(utc), utc.with_timezone(&Local).naive_local());
            assert_eq!(
                local_from_micros(micros),
                utc.with_timezone(&Local).naive_local()
            );
        }
    }

    #[test]
    fn offset_cache_follows_a_change_of_offset_at_the_second() {
        // A zone that moves from +1 h to +2 h at `change` (a DST start).
        let change = 1_790_000_000i64;
        let lookups = std::cell::Cell::new(0);
        let zone = |naive: &NaiveDateTime| {
            lookups.set(lookups.get() + 1);
            if naive.and_utc().timestamp() < change {
                3600
            } else {
                7200
            }
        };
        let cache = OffsetCache::new();
        let at = |micros: i64| DateTime::from_timestamp_micros(micros).unwrap();
        let before = at((change - 1) * 1_000_000 + 999_999);
        assert_eq!(
            cache.local(before, zone),
            before.naive_utc() + chrono::Duration::hours(1)
        );
        assert_eq!(
            cache.local(before, zone),
            before.naive_utc() + chrono::Duration::hours(1)
        );
        assert_eq!(lookups.get(), 1, "the same second is looked up once");
        let after = at(change * 1_000_000);
        assert_eq!(
            cache.local(after, zone),
            after.naive_utc() + chrono::Duration::hours(2)
        );
        assert_eq!(lookups.get(), 2);
        // Out of the cached range (before 1970) every call looks the offset up.
        let old = at(-5_000_000);
        assert_eq!(
            cache.local(old, zone),
            old.naive_utc() + chrono::Duration::hours(1)
        );
        assert_eq!(
            cache.local(after, zone),
            after.naive_utc() + chrono::Duration::hours(2)
        );
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
