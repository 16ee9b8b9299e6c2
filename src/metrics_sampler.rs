//! The metrics sampler: every few seconds it reads into Prometheus what no
//! request counts by itself (events appended to the log, how far the read
//! models lag behind it, queue sizes per concert, database pool use). It runs
//! beside the server until shutdown and never fails the service: a failed
//! sample is logged and retried at the next tick.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgPool, Row};
use tokio::sync::watch;
use uuid::Uuid;

use crate::projection_lag::ProjectionLag;
use crate::queue_gauges::{QueueGauges, QueueSizes};

/// How often the sampler reads the database.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Longest one sample may take before it is abandoned until the next tick.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Samples every [`SAMPLE_EVERY`] until `shutdown` turns true.
pub async fn run(pool: PgPool, lag: Arc<ProjectionLag>, mut shutdown: watch::Receiver<bool>) {
    let mut sampler = Sampler::default();
    let mut interval = tokio::time::interval(SAMPLE_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        sampler.sample(&pool, &lag).await;
    }
    tracing::debug!("metrics sampler stopped");
}

/// What the sampler remembers between ticks.
#[derive(Debug, Default)]
struct Sampler {
    /// The queue sizes of the concerts with live tokens, as `/metrics` shows them.
    queues: QueueGauges,
    /// Whether the last sample failed, so a database outage logs one warning.
    failing: bool,
}

impl Sampler {
    async fn sample(&mut self, pool: &PgPool, lag: &ProjectionLag) {
        record_pool(pool);
        let outcome = tokio::time::timeout(SAMPLE_TIMEOUT, async {
            self.sample_log(pool, lag).await?;
            self.sample_queues(pool).await
        })
        .await;
        match outcome {
            Ok(Ok(())) => {
                if self.failing {
                    tracing::info!("metrics sampling works again");
                }
                self.failing = false;
            }
            Ok(Err(error)) if !self.failing => {
                tracing::warn!(%error, "metrics sampling failed; retrying every {}s", SAMPLE_EVERY.as_secs());
                self.failing = true;
            }
            Err(_) if !self.failing => {
                tracing::warn!(
                    "metrics sampling timed out; retrying every {}s",
                    SAMPLE_EVERY.as_secs()
                );
                self.failing = true;
            }
            Ok(Err(_)) | Err(_) => {}
        }
    }

    async fn sample_log(&self, pool: &PgPool, lag: &ProjectionLag) -> sqlx::Result<()> {
        // Also counts the events appended since the last look.
        let state = lag.state(pool).await?;
        metrics::gauge!("concert_event_log_position").set(state.position as f64);
        metrics::gauge!("concert_projection_lag_events").set(state.projection_lag as f64);
        Ok(())
    }

    async fn sample_queues(&mut self, pool: &PgPool) -> sqlx::Result<()> {
        // Only live tokens, through the partial indexes on waiting and active.
        let rows = sqlx::query(
            "select concert_id,
                    count(*) filter (where status = 'waiting') as waiting,
                    count(*) filter (where status = 'active') as active
             from queue_tickets
             where status in ('waiting', 'active')
             group by concert_id",
        )
        .fetch_all(pool)
        .await?;
        let sizes = rows
            .iter()
            .map(|row| {
                Ok(QueueSizes {
                    concert_id: row.try_get::<Uuid, _>("concert_id")?,
                    waiting: row.try_get("waiting")?,
                    active: row.try_get("active")?,
                })
            })
            .collect::<sqlx::Result<_>>()?;
        // A concert whose queue drained is no longer among them, and leaves the page.
        self.queues.set(sizes);
        Ok(())
    }
}

/// Connections of the pool in use and idle; needs no database round trip.
fn record_pool(pool: &PgPool) {
    let size = pool.size() as usize;
    let idle = pool.num_idle().min(size);
    metrics::gauge!("concert_db_pool_connections", "state" => "in_use").set((size - idle) as f64);
    metrics::gauge!("concert_db_pool_connections", "state" => "idle").set(idle as f64);
}
