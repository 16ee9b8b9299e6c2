//! Reads gathered into one query: the read a hold or a payment makes before
//! its command (the token's ticket with the seat or the reservation) waits
//! while earlier ones run and goes with the others that arrived meanwhile.
//! Under load a crowd then costs the database a round trip per batch rather
//! than one per request, which was a hold's last statement of its own; a
//! lone read on an idle service goes at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use crate::batching::{self, Batches, Queued, BATCHES_IN_FLIGHT};
use crate::db;

/// A read by key that can take many keys in one query.
pub trait KeyedRead: Send + Sync + 'static {
    type Key: Send + Sync + 'static;
    type Found: Send + 'static;
    /// The name of the batch-size histogram in `/metrics`.
    const BATCH_SIZE_METRIC: &'static str;

    /// What each of `keys` finds, in the keys' order (`None`: nothing).
    fn read_many(
        &self,
        conn: &mut PgConnection,
        keys: &[Self::Key],
    ) -> impl Future<Output = sqlx::Result<Vec<Option<Self::Found>>>> + Send;
}

/// Runs `R`'s reads in batches.
pub struct GatheredReads<R: KeyedRead> {
    jobs: mpsc::UnboundedSender<ReadJob<R>>,
}

impl<R: KeyedRead> GatheredReads<R> {
    /// Reads through connections of its own to the database of `pool` (one
    /// per batch in flight, opened on first use), which keep one generic plan
    /// of the read's statement. Its worker runs until it is dropped.
    pub fn start(pool: &PgPool, read: R, deadline: Duration) -> Self {
        let reader = Reader {
            pool: db::generic_plan_pool(pool, BATCHES_IN_FLIGHT as u32),
            read,
        };
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(batching::dispatch(Arc::new(reader), queue, deadline));
        Self { jobs }
    }

    /// What `key` finds, read with the keys of the requests waiting with it.
    pub async fn read(&self, key: R::Key) -> sqlx::Result<Option<R::Found>> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(ReadJob { key, answer })
            .map_err(|_| stopped())?;
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> sqlx::Error {
    sqlx::Error::Protocol(
        "the gathered read gave no answer (its batch was given up, or it stopped)".into(),
    )
}

struct ReadJob<R: KeyedRead> {
    key: R::Key,
    answer: oneshot::Sender<sqlx::Result<Option<R::Found>>>,
}

/// Reads write no stream: any number share a batch, and batches run side
/// by side up to `BATCHES_IN_FLIGHT`.
impl<R: KeyedRead> Queued for ReadJob<R> {
    const SHARE_A_BATCH: bool = true;

    fn streams(&self) -> impl Iterator<Item = &str> {
        std::iter::empty()
    }

    fn abandoned(&self) -> bool {
        self.answer.is_closed()
    }
}

struct Reader<R> {
    pool: PgPool,
    read: R,
}

impl<R: KeyedRead> Batches<ReadJob<R>> for Reader<R> {
    async fn run_batch(&self, jobs: Vec<ReadJob<R>>) -> Vec<ReadJob<R>> {
        metrics::histogram!(R::BATCH_SIZE_METRIC).record(jobs.len() as f64);
        let (keys, answers): (Vec<R::Key>, Vec<_>) =
            jobs.into_iter().map(|job| (job.key, job.answer)).unzip();
        let read = db::on_leased(&self.pool, async |conn| {
            self.read.read_many(conn, &keys).await
        });
        match read.await {
            Ok(found) => {
                for (answer, found) in answers.into_iter().zip(found) {
                    let _ = answer.send(Ok(found));
                }
            }
            // The error is not `Clone`: each request gets its message, which
            // it answers as the store being unavailable (503).
            Err(error) => {
                let message = error.to_string();
                for answer in answers {
                    let _ = answer.send(Err(sqlx::Error::Protocol(message.clone())));
                }
            }
        }
        Vec::new()
    }
}
