//! `concert events`: the stored history, as readable lines or JSON lines.

use std::io::Write;

use sqlx::PgPool;

use crate::event_log::{self, LoggedEvent};

/// Events read per statement by `concert events`. Each page is a statement of
/// its own, so an export outlasts no statement timeout, however long the log
/// or however slowly its reader reads (`| less`): one statement for the whole
/// log was cancelled part-way, after part of it was printed.
pub const PAGE: i64 = event_log::WALK_BATCH;

/// `TYPE/ID` as `--stream` takes it: the type, and the id as it is stored
/// (lower case; any spelling names it, as in the API).
pub fn parse_stream(stream: &str) -> Result<(String, String), String> {
    let (kind, id) = stream
        .split_once('/')
        .filter(|(kind, _)| !kind.is_empty())
        .ok_or("--stream takes TYPE/ID, e.g. Seat/<uuid>")?;
    let id = uuid::Uuid::parse_str(id)
        .map_err(|_| format!("--stream {stream}: the ID is not a UUID"))?;
    Ok((kind.to_string(), id.to_string()))
}

/// The command line's check of `--stream`: a malformed one is a usage error
/// (exit 2), as a malformed number is, not a failure of the command (1).
pub fn stream_arg(text: &str) -> Result<String, String> {
    parse_stream(text).map(|_| text.to_string())
}

/// Prints events in commit order, optionally only one stream (`TYPE/ID`) and
/// only after a position, reading `page` events per statement.
pub async fn print_events(
    pool: &PgPool,
    stream: Option<&str>,
    after: i64,
    json: bool,
    page: i64,
    out: &mut impl Write,
) -> Result<u64, Box<dyn std::error::Error>> {
    let (kind, id) = match stream {
        Some(stream) => {
            let (kind, id) = parse_stream(stream)?;
            (Some(kind), Some(id))
        }
        None => (None, None),
    };
    event_log::assign_positions(pool).await?;
    // The log as it stands now, as one statement's snapshot showed it: events
    // positioned while the pages are printed are left to the next export.
    let upto = event_log::last_position(pool).await?;
    let of_stream = kind.as_deref().zip(id.as_deref());
    let (mut last_read, mut printed) = (after, 0);
    while last_read < upto {
        let events = event_log::page(pool, of_stream, last_read, page).await?;
        for event in &events {
            if event.position.is_some_and(|position| position > upto) {
                break;
            }
            print_event(event, json, out)?;
            printed += 1;
        }
        match events.last().and_then(|event| event.position) {
            Some(last) if events.len() as i64 == page => last_read = last,
            _ => break,
        }
    }
    // An empty history of a named stream is a stream that does not exist (a 404 in the API).
    if let (Some(stream), 0, 0) = (stream, printed, after) {
        return Err(format!("no stream {stream} in the log").into());
    }
    Ok(printed)
}

/// One event as a line: JSON as the audit API lists it (the hash in the
/// metadata), or readable text.
fn print_event(
    event: &LoggedEvent,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Box<dyn std::error::Error>> {
    if json {
        writeln!(out, "{}", serde_json::to_string(event)?)?;
    } else {
        // The event's body without its one-key envelope; a payload serde_json
        // cannot read into a value (an edited one) is shown as it is stored.
        let payload = serde_json::from_str::<serde_json::Value>(event.payload.get()).ok();
        let body = match payload.as_ref().and_then(|payload| payload.as_object()) {
            Some(object) if object.len() == 1 => object.values().next().map(ToString::to_string),
            _ => None,
        }
        .unwrap_or_else(|| event.payload.get().to_string());
        let recorded_at = event
            .recorded_at
            .map_or_else(|| "(no time)".to_string(), crate::clock::rfc3339);
        let line = format!(
            "{:>8}  {recorded_at}  {}/{} #{}  {} v{}  {body}",
            event.position.unwrap_or_default(),
            event.aggregate_type,
            event.aggregate_id,
            event.sequence,
            event.event_type,
            event.event_version,
        );
        writeln!(out, "{}", crate::terminal::printable(&line))?;
    }
    Ok(())
}
