//! `concert events`: the stored history, as readable lines or JSON lines.

use std::io::Write;

use futures::TryStreamExt;
use sqlx::PgPool;

use crate::event_log::{logged_event, EVENT_COLUMNS};

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
    let select = format!(
        "select {EVENT_COLUMNS} from events
         where ($1::text is null or aggregate_type = $1) and ($2::text is null or aggregate_id = $2) and position > $3
         order by position"
    );
    let mut rows = sqlx::query(&select)
        .bind(kind)
        .bind(id)
        .bind(after)
        .fetch(pool);
    let mut printed = 0;
    while let Some(row) = rows.try_next().await? {
        // As the audit API lists it, the hash in the metadata.
        let event = logged_event(&row)?;
        if json {
            writeln!(out, "{}", serde_json::to_string(&event)?)?;
        } else {
            let body = event
                .payload
                .as_object()
                .and_then(|object| object.values().next())
                .unwrap_or(&event.payload);
            writeln!(
                out,
                "{:>8}  {}  {}/{} #{}  {} v{}  {body}",
                event.position.unwrap_or_default(),
                crate::clock::rfc3339(event.recorded_at),
                event.aggregate_type,
                event.aggregate_id,
                event.sequence,
                event.event_type,
                event.event_version,
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
