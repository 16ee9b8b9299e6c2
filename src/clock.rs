//! The present as the service records it: the database's clock, to the
//! microsecond (the precision PostgreSQL keeps), so a time answered at once
//! (a hold's `expires_at`) is the same string when it is read back later.
//!
//! Every instance decides deadlines it did not set: any scheduler expires any
//! hold or ticket. On each instance's own clock, the fastest clock of the
//! fleet would cut every hold short by its lead. So each instance measures
//! the database's clock (which also stamps each event's `recorded_at`) and
//! keeps its present on that one. Between measurements the present runs on
//! by the monotonic clock, never by the machine's: a step of the machine's
//! clock moves no deadline, now or at the next measurement.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, SubsecRound, TimeDelta, Utc};
use sqlx::PgPool;
use tokio::sync::watch;

/// The moment this process counts its present from, on its monotonic clock,
/// with the machine's time then (in microseconds since the epoch).
struct Origin {
    at: Instant,
    machine_micros: i64,
}

fn origin() -> &'static Origin {
    static ORIGIN: OnceLock<Origin> = OnceLock::new();
    ORIGIN.get_or_init(|| Origin {
        at: Instant::now(),
        machine_micros: Utc::now().timestamp_micros(),
    })
}

/// The database's time at the origin, in microseconds since the epoch, as
/// last measured; `UNMEASURED` until then (the machine's time is used).
/// The present runs on from it by the monotonic clock, so a step of the
/// machine's clock between two measurements moves no deadline.
static DATABASE_AT_ORIGIN_MICROS: AtomicI64 = AtomicI64::new(UNMEASURED);
const UNMEASURED: i64 = i64::MIN;

/// How often the distance is measured again (clocks drift, and are stepped).
const MEASURE_EVERY: Duration = Duration::from_secs(10);
/// A new measurement within this of the one in use is the same distance
/// seen through the round trip's noise: keeping the old one keeps the
/// present from stepping back and forth by a few microseconds.
const SAME_WITHIN: TimeDelta = TimeDelta::milliseconds(2);
/// The distance between this machine's clock and the database's last
/// looked at for a warning, in microseconds.
static WARNED_AHEAD_MICROS: AtomicI64 = AtomicI64::new(0);
/// A distance beyond this is worth an operator's look.
const WORTH_A_WARNING: TimeDelta = TimeDelta::milliseconds(500);
/// Samples per measurement; the one with the shortest round trip is kept.
const SAMPLES: usize = 3;

/// Now, on the database's clock, to the microsecond.
pub fn now() -> DateTime<Utc> {
    let origin = origin();
    let at_origin = match DATABASE_AT_ORIGIN_MICROS.load(Ordering::Relaxed) {
        UNMEASURED => origin.machine_micros,
        measured => measured,
    };
    let since = i64::try_from(origin.at.elapsed().as_micros()).unwrap_or(i64::MAX);
    DateTime::from_timestamp_micros(at_origin.saturating_add(since))
        .expect("a time within chrono's range")
        .trunc_subsecs(6)
}

/// Now as an HTTP `Date` header value (RFC 9110), on the database's clock
/// like every time the API answers, so that a page can count down to a
/// deadline by the server's clock. Formatted once a second per thread.
pub fn http_date() -> String {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const { std::cell::RefCell::new((i64::MIN, String::new())) };
    }
    let now = now();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != now.timestamp() {
            *last = (
                now.timestamp(),
                httpdate::fmt_http_date(std::time::SystemTime::from(now)),
            );
        }
        last.1.clone()
    })
}

/// `at` as the API writes times (and serde does): RFC 3339 with `Z`, and
/// only the fraction digits it has.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Measures the database's clock and takes its present from it; returns how
/// far ahead of this machine's clock it is.
pub async fn follow_database_once(pool: &PgPool) -> sqlx::Result<TimeDelta> {
    let measured = database_at_origin(pool).await?;
    let in_use = DATABASE_AT_ORIGIN_MICROS.load(Ordering::Relaxed);
    if in_use == UNMEASURED
        || (measured - in_use).abs() > SAME_WITHIN.num_microseconds().unwrap_or(0)
    {
        DATABASE_AT_ORIGIN_MICROS.store(measured, Ordering::Relaxed);
    }
    let ahead = now() - Utc::now();
    // Warned of once per distance, not at every measurement of a steady one.
    let warned = TimeDelta::microseconds(WARNED_AHEAD_MICROS.load(Ordering::Relaxed));
    if (ahead - warned).abs() > SAME_WITHIN {
        WARNED_AHEAD_MICROS.store(ahead.num_microseconds().unwrap_or(0), Ordering::Relaxed);
        if ahead.abs() > WORTH_A_WARNING {
            tracing::warn!(
                database_ahead_ms = ahead.num_milliseconds(),
                "this machine's clock is off the database's; the service keeps time by the database's (synchronise the clocks)"
            );
        }
    }
    Ok(ahead)
}

/// Measures again every `MEASURE_EVERY` until `stop` turns true.
pub async fn follow_database(pool: PgPool, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(MEASURE_EVERY) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        // Bounded: a connection whose path stopped answering would keep
        // this loop, and one of the pool's places, for good.
        let measured = crate::db::answered_within(MEASURE_EVERY, follow_database_once(&pool));
        if let Err(error) = measured.await {
            tracing::debug!(%error, "the database's clock could not be read; keeping the last distance");
        }
    }
}

/// The database's time at this process's origin, in microseconds since the
/// epoch: its clock, read at the middle of the quickest of a few round
/// trips, less the monotonic time from the origin to that middle.
async fn database_at_origin(pool: &PgPool) -> sqlx::Result<i64> {
    let origin = origin();
    let mut connection = pool.acquire().await?;
    let mut best: Option<(Duration, i64)> = None;
    for _ in 0..SAMPLES {
        let sent = Instant::now();
        let database: DateTime<Utc> = sqlx::query_scalar("select clock_timestamp()")
            .fetch_one(&mut *connection)
            .await?;
        let answered = Instant::now();
        let round_trip = answered - sent;
        let middle = (sent + round_trip / 2).duration_since(origin.at);
        let since = i64::try_from(middle.as_micros()).unwrap_or(i64::MAX);
        let at_origin = database.timestamp_micros().saturating_sub(since);
        if best.is_none_or(|(quickest, _)| round_trip < quickest) {
            best = Some((round_trip, at_origin));
        }
    }
    Ok(best.map_or(origin.machine_micros, |(_, at_origin)| at_origin))
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    #[test]
    fn now_keeps_whole_microseconds() {
        assert_eq!(super::now().nanosecond() % 1_000, 0);
    }

    #[test]
    fn the_http_date_is_now_to_the_second() {
        let date = httpdate::parse_http_date(&super::http_date()).unwrap();
        let now = std::time::SystemTime::now();
        let apart = now.duration_since(date).unwrap_or_else(|e| e.duration());
        assert!(apart < std::time::Duration::from_secs(2), "{apart:?}");
    }

    #[test]
    fn a_time_is_written_as_serde_writes_it() {
        let at = super::now();
        assert_eq!(
            serde_json::to_value(at).unwrap(),
            serde_json::Value::String(super::rfc3339(at))
        );
    }
}
