//! Telling every instance's live feed that events were committed: a NOTIFY
//! on the log's channel, sent after the commit, in a transaction of its own.
//!
//! A NOTIFY inside the appending transaction (a trigger on `events` did that
//! before migration 0007) makes its commit take PostgreSQL's database-wide
//! notification lock and hold it until the commit is flushed to disk, so
//! every append of every instance committed one at a time, never sharing a
//! flush. Sent afterwards, without waiting for the flush (the notification
//! only wakes the feeds, which read what is new by position), it holds that
//! lock for microseconds. Signals raised while one is being sent go out as
//! one.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;

/// The channel every instance's feed listens on.
pub const COMMITS_CHANNEL: &str = "concert_events";

/// Raises the NOTIFY of new commits; cheap to clone and to raise.
#[derive(Clone)]
pub struct CommitSignal {
    raised: mpsc::Sender<()>,
}

impl CommitSignal {
    /// Sends the signals raised through `pool`, until every clone is dropped.
    pub fn start(pool: PgPool) -> Self {
        // One signal waiting is enough: it covers every commit before it.
        let (raised, mut pending) = mpsc::channel(1);
        tokio::spawn(async move {
            while pending.recv().await.is_some() {
                if let Err(error) = notify(&pool).await {
                    // The feeds read anyway within their fallback interval.
                    tracing::warn!(%error, "commit signal: NOTIFY failed");
                }
            }
        });
        Self { raised }
    }

    /// Events were committed: the feeds are told soon.
    pub fn raise(&self) {
        let _ = self.raised.try_send(());
    }
}

/// How long one NOTIFY may wait for its answer: on a connection whose path
/// stopped answering it would wait for good, and no signal would go out again.
const NOTIFY_WITHIN: Duration = Duration::from_secs(5);

/// One NOTIFY in a transaction that does not wait for the WAL flush.
async fn notify(pool: &PgPool) -> sqlx::Result<()> {
    let sent =
        sqlx::query("select set_config('synchronous_commit', 'off', true), pg_notify($1, '')")
            .bind(COMMITS_CHANNEL)
            .execute(pool);
    crate::db::answered_within(NOTIFY_WITHIN, sent)
        .await
        .map(drop)
}
