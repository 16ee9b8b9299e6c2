//! The event log as auditors read it: one global commit order.
//!
//! A bigint sequence would hand out 11 to a transaction that commits before
//! the one holding 10, and a reader paging past 11 would never see 10. So
//! positions are assigned afterwards, in batches, to committed events only, by
//! one positioner at a time (an advisory lock): each batch takes the numbers
//! right above the last batch's and becomes visible all at once when it
//! commits. The positions a reader can see are therefore always 1..=n without
//! a hole, they only ever grow, and a page read with `after = next` never skips
//! or repeats an event. (Migration 0003 also waited for every older
//! transaction to end, `pg_snapshot_xmin`; that is not needed for this, and a
//! long transaction anywhere on the server held the whole log back.)

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};

/// Advisory lock key of the positioner, so one instance assigns at a time.
pub const POSITIONER_LOCK: i64 = 0x0070_6f73_6974_696f;
/// Events positioned per statement, rounded up to a whole transaction (by
/// at most as many again).
pub const POSITION_BATCH: i64 = 10_000;

/// One stored event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoggedEvent {
    /// Null only in a stream's history, for an event committed a moment ago
    /// and not positioned yet; the feed of every event lists positioned ones.
    #[schema(required = true)]
    pub position: Option<i64>,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The stored JSON as it is, also one that serde_json would not read
    /// into a value (a number past `f64`, nesting past 128 levels): a log
    /// edited so must still be shown, for the audit names it.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    #[schema(value_type = Object)]
    pub metadata: Box<RawValue>,
    /// Null only for a value no service wrote (`infinity`, a year past
    /// 262,142): an edited row, which the audit names.
    #[schema(required = true)]
    pub recorded_at: Option<DateTime<Utc>>,
}

/// Positions every event whose transaction has certainly ended; returns how many.
pub async fn assign_positions(pool: &PgPool) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let assigned: Vec<(i64,)> = position_next(pool, "select count(*) from positioned").await?;
        let assigned = assigned.first().map_or(0, |(count,)| *count as u64);
        total += assigned;
        if assigned < POSITION_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Positions the next committed events (`POSITION_BATCH`, and the rest of
/// the transaction the last of them belongs to: a reader who stopped at the
/// batch's end would see a payment's sale without its debit; at most
/// `POSITION_BATCH` more, so that only a transaction of thousands of events,
/// which no command writes, is ever split) and
/// returns what `select` reads from the rows it positioned, once they are
/// committed: `select` is a query over `positioned` (`position`,
/// `aggregate_type`, `aggregate_id`, `sequence`, `event_type`).
pub async fn position_next<R>(pool: &PgPool, select: &str) -> sqlx::Result<Vec<R>>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let mut tx = pool.begin().await?;
    // Its joins are key lookups: a table the statistics still saw as small
    // (queue tickets early in a sale) was scanned for every event, 0.3 s a read.
    sqlx::query("select pg_advisory_xact_lock($1), set_config('enable_seqscan', 'off', true)")
        .bind(POSITIONER_LOCK)
        .execute(&mut *tx)
        .await?;
    let rows = sqlx::query_as(&format!(
        "with base as (select coalesce(max(position), 0) as last from events),
         cut as (
           select transaction_id from events where position is null
           order by transaction_id, aggregate_type, aggregate_id, sequence
           offset $1 - 1 limit 1),
         due as (
           select aggregate_type, aggregate_id, sequence,
                  row_number() over (order by transaction_id, aggregate_type, aggregate_id, sequence) as n
           from events
           where position is null
             and (not exists (select 1 from cut) or transaction_id <= (select transaction_id from cut))
           order by transaction_id, aggregate_type, aggregate_id, sequence
           limit 2 * $1),
         positioned as (
           update events e set position = base.last + due.n
           from due, base
           where e.aggregate_type = due.aggregate_type and e.aggregate_id = due.aggregate_id and e.sequence = due.sequence
           returning e.position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type)
         {select}"
    ))
    .bind(POSITION_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// The columns of an event row. `recorded_at` is null where it is no time
/// the service can have written: PostgreSQL takes `infinity` and years up to
/// 294,276, and decoding either into a `DateTime` panicked, so one edited row
/// stopped every reader of the log.
pub(crate) const EVENT_COLUMNS: &str = "position, aggregate_type, aggregate_id, sequence, \
     event_type, event_version, payload::text as payload, metadata::text as metadata, hash, \
     case when recorded_at > '-infinity' and recorded_at < '262143-01-01 00:00:00+00' \
     then recorded_at end as recorded_at";

/// Up to `limit` positioned events after `after`, in commit order, of one
/// stream (`TYPE`, `ID`) when given. A keyset page is one short statement
/// however long the log is, so a reader pages on with `after` set to the
/// last position it read.
pub async fn page(
    pool: &PgPool,
    stream: Option<(&str, &str)>,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<LoggedEvent>> {
    // Two statements rather than one with `$3 is null or ...`: each keeps a
    // plan of its own (the position index, or the stream's key).
    let of_stream = match stream {
        Some(_) => "aggregate_type = $3 and aggregate_id = $4 and",
        None => "",
    };
    let select = format!(
        "select {EVENT_COLUMNS} from events where {of_stream} position > $1 order by position limit $2"
    );
    let mut query = sqlx::query(&select).bind(after).bind(limit);
    if let Some((aggregate_type, aggregate_id)) = stream {
        query = query.bind(aggregate_type).bind(aggregate_id);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(logged_event).collect()
}

/// The `limit` events just before position `before`, in commit order: the
/// page before a page, or with `i64::MAX` the newest.
pub async fn page_before(pool: &PgPool, before: i64, limit: i64) -> sqlx::Result<Vec<LoggedEvent>> {
    let rows = sqlx::query(&format!(
        "select {EVENT_COLUMNS} from events where position in (
           select position from events where position < $1 order by position desc limit $2)
         order by position"
    ))
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(logged_event).collect()
}

/// Up to `limit` events of one stream after its event `after_sequence`, in
/// sequence order: a stream's history read a page at a time.
pub async fn stream_page(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    after_sequence: i64,
    limit: i64,
) -> sqlx::Result<Vec<LoggedEvent>> {
    let rows = sqlx::query(&format!(
        "select {EVENT_COLUMNS} from events
         where aggregate_type = $1 and aggregate_id = $2 and sequence > $3
         order by sequence limit $4"
    ))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(after_sequence)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(logged_event).collect()
}

/// The highest position handed out so far: one probe of the position
/// index, whatever the plan (`LAST_POSITION`).
pub async fn last_position(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar(LAST_POSITION).fetch_one(pool).await
}

/// The statement of `last_position`.
pub const LAST_POSITION: &str = "select coalesce(max(position), 0) from events";

/// An event row of `EVENT_COLUMNS`, its hash shown in its metadata.
pub(crate) fn logged_event(row: &sqlx::postgres::PgRow) -> sqlx::Result<LoggedEvent> {
    let hash: Option<Vec<u8>> = row.try_get("hash")?;
    Ok(LoggedEvent {
        position: row.try_get("position")?,
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type: row.try_get("event_type")?,
        event_version: row.try_get("event_version")?,
        payload: stored_json(row.try_get("payload")?)?,
        metadata: metadata_with_hash(row.try_get("metadata")?, hash)?,
        recorded_at: row.try_get("recorded_at")?,
    })
}

/// JSON text from a `json` column as serde_json writes it, or, where serde_json
/// cannot read it into a value, as it is stored (PostgreSQL checked its
/// syntax) on one line: a line break outside a string is only spacing.
fn stored_json(text: String) -> sqlx::Result<Box<RawValue>> {
    let shown = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(value) => serde_json::value::to_raw_value(&value),
        Err(_) => RawValue::from_string(text.replace(['\n', '\r'], " ")),
    };
    shown.map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

/// The stored metadata with the row's hash added, when it reads as an object.
fn metadata_with_hash(text: String, hash: Option<Vec<u8>>) -> sqlx::Result<Box<RawValue>> {
    let Some(hash) = hash else {
        return stored_json(text);
    };
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text) {
        Ok(mut object) => {
            object.insert("hash".to_string(), hex::encode(hash).into());
            serde_json::value::to_raw_value(&object)
                .map_err(|error| sqlx::Error::Decode(Box::new(error)))
        }
        Err(_) => stored_json(text),
    }
}

/// One stored event as text, exactly as the hash chain covers it.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub hash: Option<Vec<u8>>,
    /// When the database wrote it, on the database's clock (not hashed).
    pub recorded_at: Option<DateTime<Utc>>,
}

impl RawEvent {
    /// An event as the audit API or `concert events --json` shows it, for
    /// the checks that judge a history read from outside the database. It
    /// carries no hash: the text of a stored payload is not kept there.
    pub fn from_logged(
        position: i64,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
        event_type: &str,
        payload: &serde_json::Value,
        recorded_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            position,
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: aggregate_id.to_string(),
            sequence,
            event_type: event_type.to_string(),
            event_version: String::new(),
            payload: payload.to_string(),
            metadata: String::new(),
            hash: None,
            recorded_at,
        }
    }

    /// How reports name this event: position, stream, sequence and type.
    pub fn label(&self) -> String {
        let (position, kind, id) = (self.position, &self.aggregate_type, &self.aggregate_id);
        format!(
            "#{position} {kind}/{id} seq {} {}",
            self.sequence, self.event_type
        )
    }
}

/// SHA-256 of the stream's previous hash and the row's fields joined by
/// `/`: the hash the insert trigger stores (README, "Tamper evidence").
pub fn chained_hash(previous: &[u8], row: &RawEvent) -> Vec<u8> {
    let text = format!(
        "{}/{}/{}/{}/{}/{}/{}",
        row.aggregate_type,
        row.aggregate_id,
        row.sequence,
        row.event_type,
        row.event_version,
        row.payload,
        row.metadata
    );
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(text.as_bytes());
    hasher.finalize().to_vec()
}

/// Rows read per round trip when walking the whole log.
pub const WALK_BATCH: i64 = 10_000;

/// The next `WALK_BATCH` positioned events after `after` and up to `upto`.
/// Walking the log by keyset pages keeps memory flat however long it is.
pub async fn raw_batch(pool: &PgPool, after: i64, upto: i64) -> sqlx::Result<Vec<RawEvent>> {
    let rows = sqlx::query(&format!(
        "select {EVENT_COLUMNS} from events
         where position > $1 and position <= $2 order by position limit $3"
    ))
    .bind(after)
    .bind(upto)
    .bind(WALK_BATCH)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(RawEvent {
                position: row.try_get("position")?,
                aggregate_type: row.try_get("aggregate_type")?,
                aggregate_id: row.try_get("aggregate_id")?,
                sequence: row.try_get("sequence")?,
                event_type: row.try_get("event_type")?,
                event_version: row.try_get("event_version")?,
                payload: row.try_get("payload")?,
                metadata: row.try_get("metadata")?,
                hash: row.try_get("hash")?,
                recorded_at: row.try_get("recorded_at")?,
            })
        })
        .collect()
}
