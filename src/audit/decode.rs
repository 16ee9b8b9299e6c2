//! Reading a stored payload back as the event of its aggregate type: a payload
//! that no longer deserializes, or a stream of an unknown type, is a violation.

use crate::aggregates::{ConcertEvent, QueueTicketEvent, SeatEvent, WalletEvent};
use crate::event_log::RawEvent;

use super::Violation;

/// A stored event, read back.
#[derive(Debug)]
pub(super) enum Decoded {
    Seat(SeatEvent),
    Wallet(WalletEvent),
    QueueTicket(QueueTicketEvent),
    Concert(ConcertEvent),
}

/// Reads one row's payload as its aggregate's event.
pub(super) fn decode(row: &RawEvent) -> Result<Decoded, Violation> {
    let unreadable = |error: serde_json::Error| {
        Violation::new(DESERIALIZE, error.to_string(), vec![row.label()])
    };
    // Parsed as JSON first, so a payload that is not JSON at all says so.
    let payload: serde_json::Value = serde_json::from_str(&row.payload).map_err(unreadable)?;
    // A payload is `{"<event type>": {...}}`: the row's type must name it,
    // or a `Paid` could be filed as a `Charged`.
    let variant = payload.as_object().and_then(|object| object.keys().next());
    if variant.is_some_and(|variant| *variant != row.event_type) {
        let detail = format!(
            "the row says {} but its payload is a {}",
            row.event_type,
            variant.map_or("", String::as_str)
        );
        return Err(Violation::new(
            "event types match their payloads",
            detail,
            vec![row.label()],
        ));
    }
    let decoded = match row.aggregate_type.as_str() {
        "Seat" => serde_json::from_value(payload).map(Decoded::Seat),
        "Wallet" => serde_json::from_value(payload).map(Decoded::Wallet),
        "QueueTicket" => serde_json::from_value(payload).map(Decoded::QueueTicket),
        "Concert" => serde_json::from_value(payload).map(Decoded::Concert),
        other => {
            let detail = format!("unknown type {other}");
            return Err(Violation::new(
                "known aggregate types",
                detail,
                vec![row.label()],
            ));
        }
    };
    decoded.map_err(unreadable)
}

const DESERIALIZE: &str = "events deserialize";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixtures::row;

    #[test]
    fn a_stored_seat_event_is_read_back() {
        let payload =
            r#"{"HoldReleased":{"reservation_id":"00000000-0000-0000-0000-000000000001"}}"#;

        let decoded = decode(&row(1, "Seat/s", 1, "HoldReleased", payload));

        assert!(matches!(
            decoded,
            Ok(Decoded::Seat(SeatEvent::HoldReleased { .. }))
        ));
    }

    #[test]
    fn a_payload_that_is_not_json_is_named() {
        let violation = decode(&row(1, "Seat/s", 1, "HoldReleased", "{not json")).unwrap_err();

        assert_eq!(violation.rule, "events deserialize");
        assert_eq!(violation.events, ["#1 Seat/s seq 1 HoldReleased"]);
    }

    #[test]
    fn a_payload_of_another_shape_is_named() {
        let payload = r#"{"Charged":{"amount":5}}"#;

        let violation = decode(&row(1, "Wallet/w", 1, "Charged", payload)).unwrap_err();

        assert_eq!(violation.rule, "events deserialize");
    }

    #[test]
    fn a_payload_filed_under_another_event_type_is_named() {
        let payload =
            r#"{"HoldReleased":{"reservation_id":"00000000-0000-0000-0000-000000000001"}}"#;

        let violation = decode(&row(1, "Seat/s", 1, "SeatSold", payload)).unwrap_err();

        assert_eq!(violation.rule, "event types match their payloads");
        assert_eq!(
            violation.detail,
            "the row says SeatSold but its payload is a HoldReleased"
        );
    }

    #[test]
    fn an_unknown_aggregate_type_is_named() {
        let violation = decode(&row(1, "Ghost/g", 1, "Boo", "{}")).unwrap_err();

        assert_eq!(violation.rule, "known aggregate types");
        assert_eq!(violation.detail, "unknown type Ghost");
    }
}
