//! Storing a decided batch: every event in one statement, the snapshots due,
//! and every read model through the projector, inside the caller's
//! transaction. A stream another writer appended to first is left out and
//! named, so only its commands are decided again.

use std::collections::HashSet;

use cqrs_es::{Aggregate, DomainEvent};
use serde_json::Value;
use sqlx::PgConnection;

use super::decide::Decided;
use crate::event_store::{ProjectionError, Projector, StreamEvents};

/// Appends the events of `streams` with their snapshots and read models;
/// returns the ids of the streams that lost the race and were not stored.
pub async fn append<A: Aggregate>(
    tx: &mut PgConnection,
    streams: &[&Decided<A>],
    projector: &Projector<A>,
    snapshot_every: Option<usize>,
) -> Result<HashSet<String>, AppendError> {
    let mut lost = insert_events(tx, streams).await?;
    let inserted: Vec<&Decided<A>> = without(streams, &lost);
    lost.extend(store_snapshots(tx, &inserted, snapshot_every).await?);
    project(tx, &without(streams, &lost), projector).await?;
    Ok(lost)
}

/// The streams not named in `lost`.
pub fn without<'a, A: Aggregate>(
    streams: &[&'a Decided<A>],
    lost: &HashSet<String>,
) -> Vec<&'a Decided<A>> {
    streams
        .iter()
        .filter(|stream| !lost.contains(&stream.aggregate_id))
        .copied()
        .collect()
}

/// Writes the snapshots due, with `snapshot_every`; a stream whose snapshot
/// another writer moved on first has its new events taken out again and is
/// returned.
pub async fn store_snapshots<A: Aggregate>(
    tx: &mut PgConnection,
    streams: &[&Decided<A>],
    snapshot_every: Option<usize>,
) -> Result<HashSet<String>, AppendError> {
    let mut lost = HashSet::new();
    let Some(every) = snapshot_every else {
        return Ok(lost);
    };
    for stream in streams {
        if snapshot_due(stream, every) && !store_snapshot(tx, stream).await? {
            delete_events(tx, std::slice::from_ref(stream)).await?;
            lost.insert(stream.aggregate_id.clone());
        }
    }
    Ok(lost)
}

/// Applies the new events of `streams` to every read model of `projector`.
pub async fn project<A: Aggregate>(
    tx: &mut PgConnection,
    streams: &[&Decided<A>],
    projector: &Projector<A>,
) -> Result<(), AppendError> {
    if streams.is_empty() {
        return Ok(());
    }
    let stored: Vec<StreamEvents<A>> = streams.iter().map(|stream| stream.stored()).collect();
    projector.project_batch(tx, &stored).await?;
    Ok(())
}

/// Inserts every event of the batch; a key another writer holds is skipped,
/// and the events of a stream with any such key are taken out again.
pub async fn insert_events<A: Aggregate>(
    tx: &mut PgConnection,
    streams: &[&Decided<A>],
) -> sqlx::Result<HashSet<String>> {
    let count = streams.iter().map(|stream| stream.events.len()).sum();
    if count == 0 {
        return Ok(HashSet::new());
    }
    let mut ids = Vec::with_capacity(count);
    let mut sequences = Vec::with_capacity(count);
    let mut types = Vec::with_capacity(count);
    let mut versions = Vec::with_capacity(count);
    let mut payloads = Vec::with_capacity(count);
    let mut metadata = Vec::with_capacity(count);
    for stream in streams {
        for (sequence, (event, meta)) in (stream.loaded_sequence as i64 + 1..).zip(&stream.events) {
            ids.push(stream.aggregate_id.as_str());
            sequences.push(sequence);
            types.push(event.event_type());
            versions.push(event.event_version());
            payloads.push(serde_json::to_value(event).map_err(encode_error)?);
            metadata.push(meta.clone());
        }
    }
    // Rows go in in array order, so each event's hash (a row trigger) chains
    // over the one before it, even within the batch.
    let inserted: Vec<(String, i64)> = sqlx::query_as(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select $1, e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload, e.metadata
         from unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
              with ordinality as e(aggregate_id, sequence, event_type, event_version, payload, metadata, n)
         order by e.n
         on conflict do nothing
         returning aggregate_id, sequence",
    )
    .bind(A::TYPE)
    .bind(&ids)
    .bind(&sequences)
    .bind(&types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .fetch_all(&mut *tx)
    .await?;
    if inserted.len() == count {
        return Ok(HashSet::new());
    }
    let inserted: HashSet<(String, i64)> = inserted.into_iter().collect();
    let losers: Vec<&Decided<A>> = streams
        .iter()
        .copied()
        .filter(|stream| {
            (stream.loaded_sequence as i64 + 1..=stream.last_sequence() as i64)
                .any(|sequence| !inserted.contains(&(stream.aggregate_id.clone(), sequence)))
        })
        .collect();
    // Only rows this statement inserted: the others belong to the winner.
    let (mut loser_ids, mut loser_sequences) = (Vec::new(), Vec::new());
    for stream in &losers {
        for sequence in stream.loaded_sequence as i64 + 1..=stream.last_sequence() as i64 {
            if inserted.contains(&(stream.aggregate_id.clone(), sequence)) {
                loser_ids.push(stream.aggregate_id.as_str());
                loser_sequences.push(sequence);
            }
        }
    }
    delete_rows(tx, A::TYPE, &loser_ids, &loser_sequences).await?;
    Ok(losers
        .into_iter()
        .map(|stream| stream.aggregate_id.clone())
        .collect())
}

/// Takes the new events of `streams` out of the log again.
pub async fn delete_events<A: Aggregate>(
    tx: &mut PgConnection,
    streams: &[&Decided<A>],
) -> sqlx::Result<()> {
    let (mut ids, mut sequences) = (Vec::new(), Vec::new());
    for stream in streams {
        for sequence in stream.loaded_sequence as i64 + 1..=stream.last_sequence() as i64 {
            ids.push(stream.aggregate_id.as_str());
            sequences.push(sequence);
        }
    }
    delete_rows(tx, A::TYPE, &ids, &sequences).await
}

async fn delete_rows(
    tx: &mut PgConnection,
    aggregate_type: &str,
    ids: &[&str],
    sequences: &[i64],
) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "delete from events e using unnest($2::text[], $3::bigint[]) as d(aggregate_id, sequence)
         where e.aggregate_type = $1 and e.aggregate_id = d.aggregate_id and e.sequence = d.sequence",
    )
    .bind(aggregate_type)
    .bind(ids)
    .bind(sequences)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Whether the stream passes a multiple of `every` events in this batch.
fn snapshot_due<A: Aggregate>(stream: &Decided<A>, every: usize) -> bool {
    stream.state_is_exact() && stream.last_sequence() / every > stream.loaded_sequence / every
}

/// Writes the stream's state after the batch as its next snapshot; false when
/// another writer moved the snapshot on first.
async fn store_snapshot<A: Aggregate>(
    tx: &mut PgConnection,
    stream: &Decided<A>,
) -> Result<bool, AppendError> {
    let payload: Value = serde_json::to_value(&stream.aggregate)
        .map_err(|error| AppendError::Projection(error.into()))?;
    let last_sequence = stream.last_sequence() as i64;
    let stored = match stream.snapshot {
        None => sqlx::query(
            "insert into snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
             values ($1, $2, $3, 1, $4)
             on conflict do nothing",
        )
        .bind(A::TYPE)
        .bind(&stream.aggregate_id)
        .bind(last_sequence)
        .bind(&payload),
        Some(current) => sqlx::query(
            "update snapshots set last_sequence = $3, payload = $4, current_snapshot = $5 + 1
             where aggregate_type = $1 and aggregate_id = $2 and current_snapshot = $5",
        )
        .bind(A::TYPE)
        .bind(&stream.aggregate_id)
        .bind(last_sequence)
        .bind(&payload)
        .bind(current as i64),
    }
    .execute(&mut *tx)
    .await?;
    Ok(stored.rows_affected() == 1)
}

fn encode_error(error: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Encode(Box::new(error))
}

/// Why a batch did not commit.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("read models: {0}")]
    Projection(ProjectionError),
    /// Another writer moved a stream on while the batch was being stored.
    #[error("another writer stored on a stream of the batch first")]
    Raced,
}

impl From<ProjectionError> for AppendError {
    fn from(error: ProjectionError) -> Self {
        match error {
            ProjectionError::Database(error) => AppendError::Database(error),
            other => AppendError::Projection(other),
        }
    }
}

/// A command held a value the store refused to take (a data exception:
/// text the database's encoding cannot hold, a number beyond a column):
/// retrying it would not help, and the client is told so.
#[derive(Debug, thiserror::Error)]
#[error("the store cannot take a value of this request: {0}")]
pub struct Unstorable(pub String);

impl AppendError {
    /// The database refused a value of the batch (SQLSTATE class 22, data
    /// exception): storing it again would fail again.
    pub fn is_unstorable(&self) -> bool {
        matches!(
            self,
            AppendError::Database(sqlx::Error::Database(database))
                if database.code().is_some_and(|code| code.starts_with("22"))
        )
    }

    /// The database gave up on the transaction to settle a race (a deadlock
    /// between two writers, a serialization failure): nothing was stored and
    /// every command of the batch can simply be decided again.
    pub fn is_race(&self) -> bool {
        match self {
            AppendError::Raced => true,
            AppendError::Database(sqlx::Error::Database(database)) => {
                matches!(database.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}
