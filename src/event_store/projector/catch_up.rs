//! Catch-up: the events a projector's read models lack (lost with a process
//! that died after its commit, written by a tool or an older release, or
//! committed while a replay rebuilt the tables), found and applied in
//! batches with the set-based statements of a batch of commands.

use cqrs_es::Aggregate;
use futures::TryStreamExt;
use sqlx::{PgConnection, Row};

use super::{ProjectionError, Projector, StreamEvents};

impl<A: Aggregate> Projector<A> {
    /// Applies every stored event of `A` that the read models have not seen:
    /// those whose update was lost when a process died after its commit, or
    /// that a tool or an older release wrote. The streams behind go in
    /// batches (`CATCH_UP_EVENTS` events at most, one transaction each), with
    /// the set-based statements of a batch of commands.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let mut conn = self.pool.acquire().await?;
        let behind = self.streams_behind(&mut conn, None).await?;
        drop(conn);
        for batch in catch_up_batches(&behind) {
            let mut tx = self.pool.begin().await?;
            self.catch_up_streams(&mut tx, batch).await?;
            tx.commit().await?;
        }
        Ok(behind.len() as u64)
    }

    /// `catch_up` inside the caller's transaction, for the streams with an
    /// event positioned after `after_position` or not positioned yet: what
    /// committed since read models that hold every event up to that
    /// position. It reads those events through the position indexes, not
    /// the whole log, so its cost follows what is new. Gives the ids of the
    /// streams it caught up.
    pub async fn catch_up_in(
        &self,
        tx: &mut PgConnection,
        after_position: i64,
    ) -> Result<Vec<String>, ProjectionError> {
        let behind = self.streams_behind(tx, Some(after_position)).await?;
        for batch in catch_up_batches(&behind) {
            self.catch_up_streams(tx, batch).await?;
        }
        Ok(behind.into_iter().map(|(id, _)| id).collect())
    }

    /// Applies the events the read models lack of the streams `behind`, as
    /// one batch: read in one statement, applied by `project_batch` (a stream
    /// another writer moved meanwhile goes the long way there).
    async fn catch_up_streams(
        &self,
        tx: &mut PgConnection,
        behind: &[(String, i64)],
    ) -> Result<(), ProjectionError> {
        let ids: Vec<&str> = behind.iter().map(|(id, _)| id.as_str()).collect();
        let mut rows = sqlx::query(
            "select e.aggregate_id, e.sequence, e.payload from events e
             left join projection_offsets o on o.aggregate_type = e.aggregate_type and o.aggregate_id = e.aggregate_id
             where e.aggregate_type = $1 and e.aggregate_id = any($2) and e.sequence > coalesce(o.last_sequence, 0)
             order by e.aggregate_id, e.sequence",
        )
        .bind(A::TYPE)
        .bind(&ids)
        .fetch(&mut *tx);
        let mut streams: Vec<StreamEvents<A>> = Vec::with_capacity(ids.len());
        while let Some(row) = rows.try_next().await? {
            let aggregate_id: String = row.try_get("aggregate_id")?;
            let payload: serde_json::Value = row.try_get("payload")?;
            let event = (row.try_get("sequence")?, serde_json::from_value(payload)?);
            match streams.last_mut() {
                Some(stream) if stream.aggregate_id == aggregate_id => stream.events.push(event),
                _ => streams.push(StreamEvents {
                    aggregate_id,
                    events: vec![event],
                }),
            }
        }
        drop(rows);
        self.project_batch(tx, &streams).await
    }

    /// The streams of `A` with events the read models lack, and how many:
    /// among every stream, or only among those with an event positioned
    /// after `after_position` or not positioned yet.
    async fn streams_behind(
        &self,
        conn: &mut PgConnection,
        after_position: Option<i64>,
    ) -> Result<Vec<(String, i64)>, ProjectionError> {
        let behind: Vec<(String, i64)> = match after_position {
            None => sqlx::query_as(
                "select e.aggregate_id, count(*) from events e
                 left join projection_offsets o on o.aggregate_type = e.aggregate_type and o.aggregate_id = e.aggregate_id
                 where e.aggregate_type = $1 and e.sequence > coalesce(o.last_sequence, 0)
                 group by e.aggregate_id",
            )
            .bind(A::TYPE),
            Some(after) => sqlx::query_as(
                "with recent as (
                     select distinct aggregate_id from events
                     where aggregate_type = $1 and (position > $2 or position is null))
                 select e.aggregate_id, count(*) from recent r
                 join events e on e.aggregate_type = $1 and e.aggregate_id = r.aggregate_id
                 left join projection_offsets o on o.aggregate_type = e.aggregate_type and o.aggregate_id = e.aggregate_id
                 where e.sequence > coalesce(o.last_sequence, 0)
                 group by e.aggregate_id",
            )
            .bind(A::TYPE)
            .bind(after),
        }
        .fetch_all(conn)
        .await?;
        Ok(behind)
    }
}

/// The most events one batch of a catch-up reads (a longer stream is a batch
/// of its own): memory stays bounded whatever was left behind.
const CATCH_UP_EVENTS: i64 = 10_000;

/// `behind` (streams and how many events each lacks) cut into batches of at
/// most `CATCH_UP_EVENTS` events.
fn catch_up_batches(behind: &[(String, i64)]) -> Vec<&[(String, i64)]> {
    let mut batches = Vec::new();
    let (mut start, mut events) = (0, 0);
    for (at, (_, lacking)) in behind.iter().enumerate() {
        if at > start && events + lacking > CATCH_UP_EVENTS {
            batches.push(&behind[start..at]);
            (start, events) = (at, 0);
        }
        events += lacking;
    }
    if start < behind.len() {
        batches.push(&behind[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lacking(counts: &[i64]) -> Vec<(String, i64)> {
        counts
            .iter()
            .enumerate()
            .map(|(n, count)| (format!("s{n}"), *count))
            .collect()
    }

    fn sizes(batches: &[&[(String, i64)]]) -> Vec<usize> {
        batches.iter().map(|batch| batch.len()).collect()
    }

    #[test]
    fn a_catch_up_s_batches_hold_at_most_its_events_and_every_stream_once() {
        let behind = lacking(&[4_000, 4_000, 4_000, 1, 20_000, 9_999, 1]);
        let batches = catch_up_batches(&behind);
        // A stream longer than a batch is a batch of its own.
        assert_eq!(sizes(&batches), vec![2, 2, 1, 2]);
        let flat: Vec<&(String, i64)> = batches.iter().flat_map(|batch| batch.iter()).collect();
        assert_eq!(flat, behind.iter().collect::<Vec<_>>());
        for batch in &batches[..2] {
            assert!(batch.iter().map(|(_, n)| n).sum::<i64>() <= CATCH_UP_EVENTS);
        }
    }

    #[test]
    fn nothing_behind_is_no_batch() {
        assert!(catch_up_batches(&[]).is_empty());
    }
}
