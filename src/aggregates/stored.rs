//! Reading events back as the log stores them, for the aggregates' tests:
//! a payload written by an earlier release must still load, unchanged.

use cqrs_es::DomainEvent;

/// The event in `payload`, a stored row's payload column. Its type and
/// version must still be the row's `event_type` and `event_version`: today's
/// code writes them from the event, and readers of the log rely on them.
pub fn load<E: DomainEvent>(event_type: &str, event_version: &str, payload: &str) -> E {
    let event: E = serde_json::from_str(payload).expect("the stored payload loads");
    assert_eq!(event.event_type(), event_type, "event_type of {payload}");
    assert_eq!(
        event.event_version(),
        event_version,
        "event_version of {payload}"
    );
    event
}
