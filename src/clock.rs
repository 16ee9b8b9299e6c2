//! The present as the service records it: to the microsecond, the precision
//! PostgreSQL keeps, so a time answered at once (a hold's `expires_at`) is the
//! same string when it is read back later.

use chrono::{DateTime, SubsecRound, Utc};

/// Now, to the microsecond.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    #[test]
    fn now_keeps_whole_microseconds() {
        assert_eq!(super::now().nanosecond() % 1_000, 0);
    }
}
