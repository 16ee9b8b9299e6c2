//! The present as the service records it: the database's clock, to the
//! microsecond (the precision PostgreSQL keeps), so a time answered at once
//! (a hold's `expires_at`) is the same string when it is read back later.
//!
//! Every instance decides deadlines it did not set: any scheduler expires any
//! hold or ticket. On each instance's own clock, the fastest clock of the
//! fleet would cut every hold short by its lead. So each instance measures
//! how far its clock is from the database's (which also stamps each event's
//! `recorded_at`) and keeps its present on that one.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, SubsecRound, TimeDelta, Utc};
use sqlx::PgPool;
use tokio::sync::watch;

/// How far the database's clock is ahead of this machine's, in microseconds.
static DATABASE_AHEAD_MICROS: AtomicI64 = AtomicI64::new(0);

/// How often the distance is measured again (clocks drift, and are stepped).
const MEASURE_EVERY: Duration = Duration::from_secs(10);
/// A new measurement within this of the one in use is the same distance
/// seen through the round trip's noise: keeping the old one keeps the
/// present from stepping back and forth by a few microseconds.
const SAME_WITHIN: TimeDelta = TimeDelta::milliseconds(2);
/// A distance beyond this is worth an operator's look.
const WORTH_A_WARNING: TimeDelta = TimeDelta::milliseconds(500);
/// Samples per measurement; the one with the shortest round trip is kept.
const SAMPLES: usize = 3;

/// Now, on the database's clock, to the microsecond.
pub fn now() -> DateTime<Utc> {
    let ahead = TimeDelta::microseconds(DATABASE_AHEAD_MICROS.load(Ordering::Relaxed));
    (Utc::now() + ahead).trunc_subsecs(6)
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
    let measured = database_ahead(pool).await?;
    let in_use = TimeDelta::microseconds(DATABASE_AHEAD_MICROS.load(Ordering::Relaxed));
    if (measured - in_use).abs() > SAME_WITHIN {
        DATABASE_AHEAD_MICROS.store(measured.num_microseconds().unwrap_or(0), Ordering::Relaxed);
        if measured.abs() > WORTH_A_WARNING {
            tracing::warn!(
                database_ahead_ms = measured.num_milliseconds(),
                "this machine's clock is off the database's; the service keeps time by the database's (synchronise the clocks)"
            );
        }
    }
    Ok(measured)
}

/// Measures again every `MEASURE_EVERY` until `stop` turns true.
pub async fn follow_database(pool: PgPool, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(MEASURE_EVERY) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        if let Err(error) = follow_database_once(&pool).await {
            tracing::debug!(%error, "the database's clock could not be read; keeping the last distance");
        }
    }
}

/// The database's clock minus this machine's, taken at the middle of the
/// quickest of a few round trips.
async fn database_ahead(pool: &PgPool) -> sqlx::Result<TimeDelta> {
    let mut connection = pool.acquire().await?;
    let mut best: Option<(TimeDelta, TimeDelta)> = None;
    for _ in 0..SAMPLES {
        let sent = Utc::now();
        let database: DateTime<Utc> = sqlx::query_scalar("select clock_timestamp()")
            .fetch_one(&mut *connection)
            .await?;
        let answered = Utc::now();
        let round_trip = answered - sent;
        let ahead = database - (sent + round_trip / 2);
        if best.is_none_or(|(quickest, _)| round_trip < quickest) {
            best = Some((round_trip, ahead));
        }
    }
    Ok(best.map_or(TimeDelta::zero(), |(_, ahead)| ahead))
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
