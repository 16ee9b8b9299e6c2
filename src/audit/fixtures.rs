//! Rows of the log built in the checks' tests.

use crate::event_log::RawEvent;

/// An event of `stream` (`Type/id`) as the log stores it, without a hash.
pub fn row(
    position: i64,
    stream: &str,
    sequence: i64,
    event_type: &str,
    payload: &str,
) -> RawEvent {
    let (aggregate_type, aggregate_id) = stream.split_once('/').expect("a stream is Type/id");
    RawEvent {
        position,
        aggregate_type: aggregate_type.to_string(),
        aggregate_id: aggregate_id.to_string(),
        sequence,
        event_type: event_type.to_string(),
        event_version: "1".to_string(),
        payload: payload.to_string(),
        metadata: "{}".to_string(),
        hash: None,
        recorded_at: None,
    }
}

/// `row` as the database stores it, stamped with a time (the log's checks
/// name a row without one).
pub fn stored(row: RawEvent) -> RawEvent {
    RawEvent {
        recorded_at: Some(chrono::DateTime::UNIX_EPOCH),
        ..row
    }
}

/// Where a decoded event stood in the log, for the domain checks: only its
/// stream and label matter to them.
pub fn logged(position: i64, stream: &str, event_type: &str) -> RawEvent {
    row(position, stream, position, event_type, "{}")
}

/// The rules the violations name, in order.
pub fn rules(violations: &[super::Violation]) -> Vec<&'static str> {
    violations.iter().map(|violation| violation.rule).collect()
}
