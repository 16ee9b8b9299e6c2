//! The log cut into the shape a batch of commands commits: runs of one
//! aggregate type in which each stream's events stand together (one stream's
//! events in sequence, streams one after another). Such a run is applied
//! with the projections' set-based statements, as the pipeline applies a
//! batch, in the log's own order: a chunk never reorders two events.

use std::collections::HashSet;
use std::ops::Range;

use cqrs_es::Aggregate;
use sqlx::PgConnection;

use super::ReplayError;
use crate::event_log::RawEvent;
use crate::event_store::Projector;
use crate::state::Projectors;

/// The consecutive ranges of `events` that can be applied as one batch: a
/// range ends where the aggregate type changes or a stream comes back after
/// another stream's event.
pub fn chunks(events: &[RawEvent]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut streams: HashSet<&str> = HashSet::new();
    for (at, event) in events.iter().enumerate() {
        if at > start {
            let previous = &events[at - 1];
            let same_stream = previous.aggregate_id == event.aggregate_id
                && previous.aggregate_type == event.aggregate_type;
            let type_changes = previous.aggregate_type != event.aggregate_type;
            if type_changes || (!same_stream && streams.contains(event.aggregate_id.as_str())) {
                ranges.push(start..at);
                start = at;
                streams.clear();
            }
        }
        streams.insert(&event.aggregate_id);
    }
    if start < events.len() {
        ranges.push(start..events.len());
    }
    ranges
}

/// Applies one chunk (events of one type) to the read models of its type.
pub async fn apply(
    conn: &mut PgConnection,
    projectors: &Projectors,
    chunk: &[RawEvent],
) -> Result<(), ReplayError> {
    let Some(first) = chunk.first() else {
        return Ok(());
    };
    match first.aggregate_type.as_str() {
        "Concert" => apply_typed(conn, &projectors.concerts, chunk).await,
        "Seat" => apply_typed(conn, &projectors.seats, chunk).await,
        "Wallet" => apply_typed(conn, &projectors.wallets, chunk).await,
        "QueueTicket" => apply_typed(conn, &projectors.tickets, chunk).await,
        other => Err(ReplayError::UnknownType(other.to_string())),
    }
}

async fn apply_typed<A: Aggregate>(
    conn: &mut PgConnection,
    projector: &Projector<A>,
    chunk: &[RawEvent],
) -> Result<(), ReplayError> {
    let events = chunk
        .iter()
        .map(|event| {
            let payload =
                serde_json::from_str(&event.payload).map_err(|source| ReplayError::Payload {
                    event: crate::terminal::printable(&event.label()).into_owned(),
                    source,
                })?;
            Ok((event.aggregate_id.as_str(), payload))
        })
        .collect::<Result<Vec<(&str, A::Event)>, ReplayError>>()?;
    let events: Vec<(&str, &A::Event)> = events.iter().map(|(id, event)| (*id, event)).collect();
    projector.apply_events(conn, &events).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(aggregate_type: &str, aggregate_id: &str) -> RawEvent {
        RawEvent {
            position: 0,
            aggregate_type: aggregate_type.into(),
            aggregate_id: aggregate_id.into(),
            sequence: 0,
            event_type: String::new(),
            event_version: String::new(),
            payload: String::new(),
            metadata: String::new(),
            hash: None,
            recorded_at: None,
        }
    }

    fn cut(log: &[(&str, &str)]) -> Vec<Range<usize>> {
        let events: Vec<RawEvent> = log.iter().map(|(t, id)| event(t, id)).collect();
        chunks(&events)
    }

    #[test]
    fn a_stream_s_events_in_a_row_stay_in_one_chunk() {
        let log = [
            ("Wallet", "a"),
            ("Wallet", "a"),
            ("Wallet", "b"),
            ("Wallet", "b"),
        ];
        assert_eq!(cut(&log), vec![0..4]);
    }

    #[test]
    fn a_stream_that_comes_back_after_another_starts_a_new_chunk() {
        let log = [("Seat", "a"), ("Seat", "b"), ("Seat", "a"), ("Seat", "c")];
        assert_eq!(cut(&log), vec![0..2, 2..4]);
    }

    #[test]
    fn a_change_of_type_starts_a_new_chunk_even_for_the_same_id() {
        let log = [
            ("Seat", "a"),
            ("Wallet", "a"),
            ("Wallet", "b"),
            ("Seat", "c"),
        ];
        assert_eq!(cut(&log), vec![0..1, 1..3, 3..4]);
    }

    #[test]
    fn chunks_cover_the_log_in_order_without_gaps() {
        let ids = ["a", "b", "c", "a", "a", "d", "b", "e"];
        let types = [
            "Seat", "Seat", "Seat", "Seat", "Wallet", "Wallet", "Wallet", "Seat",
        ];
        let log: Vec<(&str, &str)> = types.iter().copied().zip(ids).collect();
        let ranges = cut(&log);
        let covered: Vec<usize> = ranges.iter().flat_map(|range| range.clone()).collect();
        assert_eq!(covered, (0..log.len()).collect::<Vec<_>>());
        assert_eq!(ranges, vec![0..3, 3..4, 4..7, 7..8]);
    }

    #[test]
    fn an_empty_page_has_no_chunks() {
        assert!(cut(&[]).is_empty());
    }
}
