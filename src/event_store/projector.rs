//! Projectors: every read model of one aggregate type, applied together and
//! exactly once. A batch of commands applies its events in its own
//! transaction (see `pipeline`); every stream also has an offset row written with
//! its read-model rows, so events stored without their read models (by an
//! older release, or a tool writing to the log) are found and applied by
//! `catch_up` at start: a repeated event is skipped, a gap is filled from the
//! events table.

use std::collections::HashSet;
use std::sync::Arc;

use cqrs_es::Aggregate;
use futures::TryStreamExt;
use sqlx::{PgConnection, PgPool, Row};

use crate::projections::{apply_each, Projection};

mod catch_up;

/// Every projection of one aggregate type, applied together and exactly once.
pub struct Projector<A: Aggregate> {
    pool: PgPool,
    projections: Vec<Arc<dyn Projection<A>>>,
}

impl<A: Aggregate> Projector<A> {
    /// A projector feeding `projections` from the events of `A`.
    pub fn new(pool: PgPool, projections: Vec<Arc<dyn Projection<A>>>) -> Self {
        Self { pool, projections }
    }

    /// Applies the new events of one stream; earlier events it has not seen yet
    /// are read from the store first, events already applied are skipped.
    pub async fn project(
        &self,
        aggregate_id: &str,
        events: &[(i64, A::Event)],
    ) -> Result<(), ProjectionError> {
        let mut tx = self.pool.begin().await?;
        self.project_in(&mut tx, aggregate_id, events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `project` inside the caller's transaction.
    pub async fn project_in(
        &self,
        tx: &mut PgConnection,
        aggregate_id: &str,
        events: &[(i64, A::Event)],
    ) -> Result<(), ProjectionError> {
        if self.advance_offset(tx, aggregate_id, events).await? {
            for (_, event) in events {
                self.apply_all(tx, aggregate_id, event).await?;
            }
            return Ok(());
        }
        // Creates the offset row or locks it: concurrent projectors of one stream take turns.
        let applied: i64 = sqlx::query_scalar(
            "insert into projection_offsets (aggregate_type, aggregate_id, last_sequence) values ($1, $2, 0)
             on conflict (aggregate_type, aggregate_id)
             do update set last_sequence = projection_offsets.last_sequence
             returning last_sequence",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_one(&mut *tx)
        .await?;
        let first_given = events.first().map_or(i64::MAX, |(sequence, _)| *sequence);
        let mut last = applied;
        if first_given > applied + 1 {
            for (sequence, event) in
                load_stream::<A>(tx, aggregate_id, applied, first_given).await?
            {
                self.apply_all(tx, aggregate_id, &event).await?;
                last = sequence;
            }
        }
        for (sequence, event) in events {
            if *sequence > last {
                self.apply_all(tx, aggregate_id, event).await?;
                last = *sequence;
            }
        }
        if last != applied {
            sqlx::query("update projection_offsets set last_sequence = $3 where aggregate_type = $1 and aggregate_id = $2")
                .bind(A::TYPE)
                .bind(aggregate_id)
                .bind(last)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// The usual case in one statement: when the stream's offset stands just
    /// before `events` (consecutive, as an append gives them), moves it past
    /// them and returns true; the caller then applies them all. Otherwise
    /// changes nothing and returns false.
    async fn advance_offset(
        &self,
        tx: &mut PgConnection,
        aggregate_id: &str,
        events: &[(i64, A::Event)],
    ) -> sqlx::Result<bool> {
        let (Some((first, _)), Some((last, _))) = (events.first(), events.last()) else {
            return Ok(false);
        };
        // The offset row is locked by either statement until the commit, and a
        // writer that waited for it checks the condition again on the new row.
        let query = if *first == 1 {
            sqlx::query(
                "insert into projection_offsets (aggregate_type, aggregate_id, last_sequence) values ($1, $2, $3)
                 on conflict (aggregate_type, aggregate_id) do update set last_sequence = excluded.last_sequence
                 where projection_offsets.last_sequence = $4",
            )
        } else {
            sqlx::query(
                "update projection_offsets set last_sequence = $3
                 where aggregate_type = $1 and aggregate_id = $2 and last_sequence = $4",
            )
        };
        let advanced = query
            .bind(A::TYPE)
            .bind(aggregate_id)
            .bind(*last)
            .bind(*first - 1)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Ok(advanced == 1)
    }

    /// `project_in` for the streams of one batch, inside its transaction: the
    /// offsets of every stream move in two statements, and each projection
    /// applies the whole batch at once (a small batch with `apply`).
    /// A stream whose offset does not stand just before its events (a gap
    /// left by a crash) goes the long way.
    pub async fn project_batch(
        &self,
        tx: &mut PgConnection,
        streams: &[StreamEvents<A>],
    ) -> Result<(), ProjectionError> {
        let advanced = self.advance_offsets(tx, streams).await?;
        let (fast, slow): (Vec<_>, Vec<_>) = streams
            .iter()
            .partition(|stream| advanced.contains(&stream.aggregate_id));
        let events: Vec<(&str, &A::Event)> = fast
            .iter()
            .flat_map(|stream| {
                stream
                    .events
                    .iter()
                    .map(|(_, event)| (stream.aggregate_id.as_str(), event))
            })
            .collect();
        if !events.is_empty() {
            self.apply_events(tx, &events).await?;
        }
        for stream in slow {
            self.project_in(tx, &stream.aggregate_id, &stream.events)
                .await?;
        }
        Ok(())
    }

    /// `advance_offset` for many streams: the ids of those moved on. A lone
    /// stream takes the one-stream statements, whose plans stay cached.
    async fn advance_offsets(
        &self,
        tx: &mut PgConnection,
        streams: &[StreamEvents<A>],
    ) -> sqlx::Result<HashSet<String>> {
        if let [stream] = streams {
            let advanced = self
                .advance_offset(tx, &stream.aggregate_id, &stream.events)
                .await?;
            return Ok(HashSet::from_iter(
                advanced.then(|| stream.aggregate_id.clone()),
            ));
        }
        let (mut ids, mut firsts, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
        for stream in streams {
            if let (Some((first, _)), Some((last, _))) =
                (stream.events.first(), stream.events.last())
            {
                ids.push(stream.aggregate_id.as_str());
                firsts.push(*first);
                lasts.push(*last);
            }
        }
        // Existing offsets move on where they stand just before the batch;
        // new streams get their row. Rows are locked until the commit.
        // Each stream's row is found by its own key lookup (the `limit` keeps
        // the planner from joining the batch to every row of the type, which it
        // did, 1–40 ms a batch, while the statistics still saw the type as rare).
        // A row another transaction moved meanwhile is left out by the `ctid`
        // match and its stream goes the long way.
        let mut advanced: HashSet<String> = sqlx::query_scalar(
            "with due as (
                 select o.ctid as row_id, u.last
                 from unnest($2::text[], $3::bigint[], $4::bigint[]) as u(id, first, last),
                 lateral (select ctid from projection_offsets
                          where aggregate_type = $1 and aggregate_id = u.id
                            and last_sequence = u.first - 1
                          limit 1) o
                 where u.first > 1)
             update projection_offsets o set last_sequence = due.last
             from due where o.ctid = due.row_id
             returning o.aggregate_id",
        )
        .bind(A::TYPE)
        .bind(&ids)
        .bind(&firsts)
        .bind(&lasts)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        if firsts.contains(&1) {
            let created: Vec<String> = sqlx::query_scalar(
                "insert into projection_offsets (aggregate_type, aggregate_id, last_sequence)
                 select $1, u.id, u.last from unnest($2::text[], $3::bigint[], $4::bigint[]) as u(id, first, last)
                 where u.first = 1
                 on conflict (aggregate_type, aggregate_id) do nothing
                 returning aggregate_id",
            )
            .bind(A::TYPE)
            .bind(&ids)
            .bind(&firsts)
            .bind(&lasts)
            .fetch_all(&mut *tx)
            .await?;
            advanced.extend(created);
        }
        Ok(advanced)
    }

    /// Applies the events of several streams to every projection, without
    /// offset bookkeeping: one stream's events in sequence, streams one after
    /// another, as a batch of commands appends them. Each projection takes
    /// them at once when there are enough (`set_based_from`), else one by one.
    pub async fn apply_events(
        &self,
        conn: &mut PgConnection,
        events: &[(&str, &A::Event)],
    ) -> sqlx::Result<()> {
        for projection in &self.projections {
            if events.len() < projection.set_based_from() {
                apply_each(projection.as_ref(), conn, events).await?;
            } else {
                projection.apply_batch(conn, events).await?;
            }
        }
        Ok(())
    }

    /// Applies one event to every projection, without offset bookkeeping.
    pub async fn apply_all(
        &self,
        conn: &mut PgConnection,
        aggregate_id: &str,
        event: &A::Event,
    ) -> sqlx::Result<()> {
        for projection in &self.projections {
            projection.apply(conn, aggregate_id, event).await?;
        }
        Ok(())
    }
}

/// The new events of one stream, with their sequence numbers.
pub struct StreamEvents<A: Aggregate> {
    pub aggregate_id: String,
    pub events: Vec<(i64, A::Event)>,
}

/// Reads the events of one stream with `after < sequence < before`, in order.
async fn load_stream<A: Aggregate>(
    conn: &mut PgConnection,
    aggregate_id: &str,
    after: i64,
    before: i64,
) -> Result<Vec<(i64, A::Event)>, ProjectionError> {
    let mut rows = sqlx::query(
        "select sequence, payload from events
         where aggregate_type = $1 and aggregate_id = $2 and sequence > $3 and sequence < $4
         order by sequence",
    )
    .bind(A::TYPE)
    .bind(aggregate_id)
    .bind(after)
    .bind(before)
    .fetch(conn);
    let mut events = Vec::new();
    while let Some(row) = rows.try_next().await? {
        let payload: serde_json::Value = row.try_get("payload")?;
        events.push((row.try_get("sequence")?, serde_json::from_value(payload)?));
    }
    Ok(events)
}

/// Why a read model could not be updated.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("a stored event does not deserialize: {0}")]
    Payload(#[from] serde_json::Error),
}
