//! `concert events`: the stored history, as readable lines or JSON lines.

use std::io::Write;

use futures::TryStreamExt;
use sqlx::{PgPool, Row};

/// Prints events in commit order, optionally only one stream (`TYPE/ID`) and
/// only after a position.
pub async fn print_events(
    pool: &PgPool,
    stream: Option<&str>,
    after: i64,
    json: bool,
    out: &mut impl Write,
) -> Result<u64, Box<dyn std::error::Error>> {
    let (kind, id) = match stream {
        Some(stream) => {
            let (kind, id) = stream
                .split_once('/')
                .ok_or("--stream takes TYPE/ID, e.g. Seat/<uuid>")?;
            // Ids are stored as lower-case UUIDs; any spelling names them, as in the API.
            let id = uuid::Uuid::parse_str(id)
                .map_err(|_| format!("--stream {stream}: the ID is not a UUID"))?;
            (Some(kind.to_string()), Some(id.to_string()))
        }
        None => (None, None),
    };
    crate::event_log::assign_positions(pool).await?;
    let mut rows = sqlx::query(
        "select position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at
         from events
         where ($1::text is null or aggregate_type = $1) and ($2::text is null or aggregate_id = $2) and position > $3
         order by position",
    )
    .bind(kind)
    .bind(id)
    .bind(after)
    .fetch(pool);
    let mut printed = 0;
    while let Some(row) = rows.try_next().await? {
        let position: i64 = row.try_get("position")?;
        let kind: String = row.try_get("aggregate_type")?;
        let id: String = row.try_get("aggregate_id")?;
        let sequence: i64 = row.try_get("sequence")?;
        let event_type: String = row.try_get("event_type")?;
        let version: String = row.try_get("event_version")?;
        let payload: serde_json::Value = row.try_get("payload")?;
        let metadata: serde_json::Value = row.try_get("metadata")?;
        let recorded_at: chrono::DateTime<chrono::Utc> = row.try_get("recorded_at")?;
        if json {
            let line = serde_json::json!({
                "position": position, "aggregate_type": kind, "aggregate_id": id, "sequence": sequence,
                "event_type": event_type, "event_version": version, "payload": payload,
                "metadata": metadata, "recorded_at": recorded_at,
            });
            writeln!(out, "{line}")?;
        } else {
            let body = payload
                .as_object()
                .and_then(|object| object.values().next())
                .cloned()
                .unwrap_or(payload);
            writeln!(
                out,
                "{position:>8}  {}  {kind}/{id} #{sequence}  {event_type} v{version}  {body}",
                // As the API writes times: `Z`, and the digits PostgreSQL keeps.
                recorded_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )?;
        }
        printed += 1;
    }
    // An empty history of a named stream is a stream that does not exist (a 404 in the API).
    if let (Some(stream), 0, 0) = (stream, printed, after) {
        return Err(format!("no stream {stream} in the log").into());
    }
    Ok(printed)
}
