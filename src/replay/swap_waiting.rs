//! How a replay's swap waits for the live tables: briefly each try, past
//! `deadlock_timeout` behind autovacuum alone, naming who holds them once
//! the wait is long.

use std::time::Duration;

use sqlx::PgConnection;

use super::table_holders::{self, TableHolder};

/// How long one try of the swap waits for the live tables' locks; writers
/// queue behind the request for as long.
const SWAP_LOCK_WAIT: Duration = Duration::from_millis(200);
/// How much longer than `deadlock_timeout` a try waits behind autovacuum
/// alone: PostgreSQL cancels an autovacuum in a lock request's way only
/// after that long, so tries of `SWAP_LOCK_WAIT` never made it yield.
const PAST_DEADLOCK_TIMEOUT: Duration = Duration::from_millis(500);
/// When a waiting swap first names who holds the tables, and how often after.
const TELL_HOLDERS_AFTER: Duration = Duration::from_secs(10);
const TELL_HOLDERS_EVERY: Duration = Duration::from_secs(60);

/// How long the next try of the swap waits for the tables, and when the
/// wait was last told.
pub(super) struct SwapWaiting {
    pub(super) lock_wait: Duration,
    told_at: Option<Duration>,
}

impl Default for SwapWaiting {
    fn default() -> Self {
        Self {
            lock_wait: SWAP_LOCK_WAIT,
            told_at: None,
        }
    }
}

impl SwapWaiting {
    /// After a busy try, `waited` into the swap: behind autovacuum alone
    /// the next try waits until PostgreSQL cancels it; the holders are named
    /// in a warning once the wait is long.
    pub(super) async fn tried(
        &mut self,
        connection: &mut PgConnection,
        holders: &[TableHolder],
        waited: Duration,
    ) -> sqlx::Result<()> {
        self.lock_wait = lock_wait_behind(holders, deadlock_timeout(connection).await?);
        let due = match self.told_at {
            None => waited >= TELL_HOLDERS_AFTER,
            Some(told) => waited >= told + TELL_HOLDERS_EVERY,
        };
        if due {
            tracing::warn!(
                waited_secs = waited.as_secs(),
                holders = %table_holders::describe(holders),
                "the rebuilt read models wait to be swapped in: other sessions hold the live ones"
            );
            self.told_at = Some(waited);
        }
        Ok(())
    }
}

/// How long a try of the swap waits behind `holders`: past
/// `deadlock_timeout` when autovacuum alone holds the tables, so that
/// PostgreSQL cancels it; briefly otherwise, since writers queue behind
/// the request meanwhile.
fn lock_wait_behind(holders: &[TableHolder], deadlock_timeout: Duration) -> Duration {
    let autovacuum_alone = !holders.is_empty() && holders.iter().all(TableHolder::is_autovacuum);
    if autovacuum_alone {
        deadlock_timeout + PAST_DEADLOCK_TIMEOUT
    } else {
        SWAP_LOCK_WAIT
    }
}

/// The server's `deadlock_timeout`.
async fn deadlock_timeout(connection: &mut PgConnection) -> sqlx::Result<Duration> {
    let millis: i64 =
        sqlx::query_scalar("select setting::int8 from pg_settings where name = 'deadlock_timeout'")
            .fetch_one(connection)
            .await?;
    Ok(Duration::from_millis(millis.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(backend_type: &str) -> TableHolder {
        TableHolder {
            pid: 7,
            backend_type: backend_type.to_string(),
            application_name: String::new(),
            state: "active".to_string(),
            transaction_secs: Some(3),
            query: String::new(),
        }
    }

    #[test]
    fn behind_autovacuum_alone_a_try_waits_past_the_deadlock_timeout() {
        let second = Duration::from_secs(1);
        assert_eq!(
            lock_wait_behind(&[holder("autovacuum worker")], second),
            second + PAST_DEADLOCK_TIMEOUT
        );
        for holders in [
            vec![],
            vec![holder("client backend")],
            vec![holder("autovacuum worker"), holder("client backend")],
        ] {
            assert_eq!(lock_wait_behind(&holders, second), SWAP_LOCK_WAIT);
        }
    }
}
