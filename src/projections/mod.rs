//! Projections: read models in PostgreSQL tables, fed by events, and the
//! queries that read them. Each file owns one read model; the machinery that
//! feeds them (offsets, catch-up) is the event store's `Projector`.

pub mod admissions;
pub mod available_dates;
pub mod available_seats;
pub mod balances;
pub mod command_reads;
pub mod entry_plans;
pub mod gathered_reads;
pub mod payments;
pub mod queue_entries;
pub mod queue_line;
pub mod queue_pace;
mod queue_ticket_batches;
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

    /// Applies the events of a batch of commands (more than one event), in
    /// order: one stream's events in sequence, streams one after another.
    /// Read models on the hot path answer with a few set-based statements for
    /// a large batch; the others apply one event at a time. Rows that streams
    /// share (a date's free-seat stripes) must be locked in one order, since
    /// two batches of one aggregate type commit side by side.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[(&str, &A::Event)],
    ) -> sqlx::Result<()> {
        apply_each(self, conn, events).await
    }

    /// The fewest events for which the projector calls `apply_batch`; a
    /// smaller batch goes through `apply`, one event at a time.
    fn set_based_from(&self) -> usize {
        SET_BASED_FROM
    }
}

/// Batches with fewer events than this are cheaper one event at a time (unless
/// the read model has shared rows to lock in order). The
/// set-based statements are planned afresh on every call (PostgreSQL keeps
/// no generic plan for data-modifying CTEs over arrays): about 0.3 ms each,
/// as much as three of the one-event statements whose plans stay cached.
pub(super) const SET_BASED_FROM: usize = 4;

/// Applies `events` with `projection.apply`, one after another.
pub async fn apply_each<A: Aggregate, P: Projection<A> + ?Sized>(
    projection: &P,
    conn: &mut PgConnection,
    events: &[(&str, &A::Event)],
) -> sqlx::Result<()> {
    for (aggregate_id, event) in events {
        projection.apply(conn, aggregate_id, event).await?;
    }
    Ok(())
}

/// Parses a stream's id, which is always a UUID in this service.
pub(crate) fn stream_uuid(aggregate_id: &str) -> sqlx::Result<Uuid> {
    Uuid::parse_str(aggregate_id).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}
