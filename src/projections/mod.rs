//! Projections: read models in PostgreSQL tables, fed by events, and the
//! queries that read them. Each file owns one read model; the machinery that
//! feeds them (offsets, catch-up) is the event store's `Projector`.

pub mod available_dates;
pub mod available_seats;
pub mod balances;
pub mod payments;
pub mod queue_tickets;
pub mod reservations;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use sqlx::PgConnection;
use uuid::Uuid;

/// One read model's reaction to the events of aggregate `A`.
#[async_trait]
pub trait Projection<A: Aggregate>: Send + Sync {
    /// Applies one event to the read model, inside the caller's transaction.
    async fn apply(
        &self,
        conn: &mut PgConnection,
        aggregate_id: &str,
        event: &A::Event,
    ) -> sqlx::Result<()>;

    /// Applies the events of a batch of commands, in order: one stream's
    /// events in sequence, streams one after another. Read models on the hot
    /// path answer with a few set-based statements for the whole batch; the
    /// others apply one event at a time.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[(&str, &A::Event)],
    ) -> sqlx::Result<()> {
        for (aggregate_id, event) in events {
            self.apply(conn, aggregate_id, event).await?;
        }
        Ok(())
    }
}

/// Parses a stream's id, which is always a UUID in this service.
pub(crate) fn stream_uuid(aggregate_id: &str) -> sqlx::Result<Uuid> {
    Uuid::parse_str(aggregate_id).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}
