//! The present as the service records it: to the microsecond, the precision
//! PostgreSQL keeps, so a time answered at once (a hold's `expires_at`) is the
//! same string when it is read back later.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};

/// Now, to the microsecond.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// `at` as the API writes times (and serde does): RFC 3339 with `Z`, and
/// only the fraction digits it has.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    #[test]
    fn now_keeps_whole_microseconds() {
        assert_eq!(super::now().nanosecond() % 1_000, 0);
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
