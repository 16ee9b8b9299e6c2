//! Entries into a queue planned together: entries that arrive while one
//! concert's plan statement runs wait and go in the next one, so the
//! concert's entry counter is locked once a batch rather than once an entry
//! (under load, that lock was the longest wait of an entry). A lone entry on
//! an idle service goes at once.

use std::sync::Arc;

use chrono::Duration;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::queue_entries::{plan_entries, release_entry_no, EntryPlan};
use crate::batching::{self, Batches, Queued, BATCHES_IN_FLIGHT};
use crate::db;

/// Plans entries into queues, a batch per concert at a time.
pub struct EntryPlans {
    jobs: mpsc::UnboundedSender<PlanJob>,
}

impl EntryPlans {
    /// Plans on the database of `pool`: a line takes entries while fewer
    /// than `waiting_max` wait (0: no limit), up to `active_max` are active,
    /// and the admission rate is measured over the last `rate_window`. Its
    /// worker runs until it is dropped.
    ///
    /// The planner has connections of its own (one per batch in flight) that
    /// keep one generic plan of its statement (see `db::generic_plan_pool`).
    pub fn start(
        pool: &PgPool,
        waiting_max: i64,
        active_max: i64,
        rate_window: Duration,
        deadline: std::time::Duration,
    ) -> Self {
        let pool = db::generic_plan_pool(pool, BATCHES_IN_FLIGHT as u32);
        let (jobs, queue) = mpsc::unbounded_channel();
        let planner = Planner {
            pool,
            waiting_max,
            active_max,
            rate_window,
        };
        tokio::spawn(batching::dispatch(Arc::new(planner), queue, deadline));
        Self { jobs }
    }

    /// What `user_id`'s entry into `concert_id`'s queue finds, and the entry
    /// number it took (see `plan_entries`).
    pub async fn plan(&self, concert_id: Uuid, user_id: Uuid) -> sqlx::Result<EntryPlan> {
        let (answer, answered) = oneshot::channel();
        let job = PlanJob {
            line: concert_id.to_string(),
            concert_id,
            user_id,
            answer,
        };
        self.jobs.send(job).map_err(|_| stopped())?;
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> sqlx::Error {
    sqlx::Error::Protocol(
        "the queue's entry planner gave no answer (its batch was given up, or it stopped)".into(),
    )
}

struct PlanJob {
    /// The concert, as the batch's stream: one running batch per concert.
    line: String,
    concert_id: Uuid,
    user_id: Uuid,
    answer: oneshot::Sender<sqlx::Result<EntryPlan>>,
}

impl Queued for PlanJob {
    const SHARE_A_BATCH: bool = true;

    fn streams(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.line.as_str())
    }

    fn abandoned(&self) -> bool {
        self.answer.is_closed()
    }
}

struct Planner {
    pool: PgPool,
    waiting_max: i64,
    active_max: i64,
    rate_window: Duration,
}

impl Batches<PlanJob> for Planner {
    async fn run_batch(&self, jobs: Vec<PlanJob>) -> Vec<PlanJob> {
        metrics::histogram!("concert_queue_entry_batch_size").record(jobs.len() as f64);
        for (concert_id, jobs) in by_concert(jobs) {
            let now = crate::clock::now();
            let users: Vec<Uuid> = jobs.iter().map(|job| job.user_id).collect();
            let planned = db::on_leased(&self.pool, async |conn| {
                let since = now - self.rate_window;
                let (waiting_max, active_max) = (self.waiting_max, self.active_max);
                plan_entries(
                    conn,
                    concert_id,
                    &users,
                    now,
                    since,
                    waiting_max,
                    active_max,
                )
                .await
            })
            .await;
            match planned {
                Ok(plans) => {
                    for (job, plan) in jobs.into_iter().zip(plans) {
                        if let Err(Ok(unanswered)) = job.answer.send(Ok(plan)) {
                            self.release(concert_id, unanswered).await;
                        }
                    }
                }
                // The statement is one transaction: it took all its numbers
                // or none (unless its answer was lost after the commit, when
                // they are lost as any dying request's number is). The error
                // is not `Clone`: each entry gets its message, which the
                // booking layer answers as the store being unavailable (503).
                Err(error) => {
                    let message = error.to_string();
                    for job in jobs {
                        let _ = job.answer.send(Err(sqlx::Error::Protocol(message.clone())));
                    }
                }
            }
        }
        Vec::new()
    }
}

impl Planner {
    /// A plan whose entry gave up waiting (its request timed out): the
    /// number it took is recorded as unused, so the positions behind it stay
    /// exact. Best effort, as when an entry's command fails.
    async fn release(&self, concert_id: Uuid, plan: EntryPlan) {
        if let Some(entry_no) = plan.entry_no {
            let _ = release_entry_no(&self.pool, concert_id, entry_no, plan.server_started).await;
        }
    }
}

/// The batch's jobs by concert, each concert's in their order.
fn by_concert(jobs: Vec<PlanJob>) -> Vec<(Uuid, Vec<PlanJob>)> {
    let mut lines: Vec<(Uuid, Vec<PlanJob>)> = Vec::new();
    for job in jobs {
        match lines
            .iter_mut()
            .find(|(concert_id, _)| *concert_id == job.concert_id)
        {
            Some((_, line)) => line.push(job),
            None => lines.push((job.concert_id, vec![job])),
        }
    }
    lines
}
