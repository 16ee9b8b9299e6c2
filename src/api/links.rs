//! OpenAPI links: how the ids one answer returns feed the next request, so
//! clients and stateful fuzzers (schemathesis) can walk a booking through the
//! spec: concert → dates → seats → hold → reservation and payment.
//!
//! They are added to the spec's JSON, not through utoipa's `Link`, which
//! serializes `operation_id` and `request_body` where OpenAPI says
//! `operationId` and `requestBody`.

use serde_json::{json, Map, Value};

/// One link: from the `status` answer of `method path` to operation `target`.
struct LinkSpec {
    method: &'static str,
    path: &'static str,
    status: &'static str,
    name: &'static str,
    target: &'static str,
    parameters: &'static [(&'static str, &'static str)],
    body: Option<fn() -> Value>,
}

const LINKS: &[LinkSpec] = &[
    LinkSpec {
        method: "get",
        path: "/api/v1/concerts",
        status: "200",
        name: "FirstConcertDates",
        target: "list_dates",
        parameters: &[("concert_id", "$response.body#/concerts/0/concert_id")],
        body: None,
    },
    LinkSpec {
        method: "post",
        path: "/api/v1/concerts",
        status: "201",
        name: "ScheduledDates",
        target: "list_dates",
        parameters: &[("concert_id", "$response.body#/concert_id")],
        body: None,
    },
    LinkSpec {
        method: "post",
        path: "/api/v1/concerts",
        status: "201",
        name: "FirstDateSeats",
        target: "list_free_seats",
        parameters: &[
            ("concert_id", "$response.body#/concert_id"),
            ("date_id", "$response.body#/dates/0/date_id"),
        ],
        body: None,
    },
    LinkSpec {
        method: "get",
        path: "/api/v1/concerts/{concert_id}/dates",
        status: "200",
        name: "FirstDateSeats",
        target: "list_free_seats",
        parameters: &[
            ("concert_id", "$request.path.concert_id"),
            ("date_id", "$response.body#/dates/0/date_id"),
        ],
        body: None,
    },
    LinkSpec {
        method: "get",
        path: "/api/v1/concerts/{concert_id}/dates/{date_id}/seats",
        status: "200",
        name: "HoldFirstSeat",
        target: "hold_seat",
        parameters: &[],
        body: Some(|| json!({ "seat_id": "$response.body#/seats/0/seat_id" })),
    },
    LinkSpec {
        method: "post",
        path: "/api/v1/reservations",
        status: "201",
        name: "Reservation",
        target: "get_reservation",
        parameters: &[("reservation_id", "$response.body#/reservation_id")],
        body: None,
    },
    LinkSpec {
        method: "post",
        path: "/api/v1/reservations",
        status: "201",
        name: "PayReservation",
        target: "pay",
        parameters: &[],
        body: Some(|| json!({ "reservation_id": "$response.body#/reservation_id" })),
    },
    LinkSpec {
        method: "post",
        path: "/api/v1/users/{user_id}/balance/charges",
        status: "200",
        name: "Balance",
        target: "get_balance",
        parameters: &[("user_id", "$request.path.user_id")],
        body: None,
    },
    LinkSpec {
        method: "get",
        path: "/api/v1/audit/events",
        status: "200",
        name: "FirstEventStream",
        target: "stream_events",
        parameters: &[
            ("aggregate_type", "$response.body#/events/0/aggregate_type"),
            ("aggregate_id", "$response.body#/events/0/aggregate_id"),
        ],
        body: None,
    },
];

/// Adds the links of `LINKS` to the answers of the spec `document`. A link
/// whose operation or answer is missing is skipped; a test checks that none is.
pub fn add_links(document: &mut Value) {
    for spec in LINKS {
        let Some(response) = document
            .pointer_mut(&format!(
                "/paths/{}/{}/responses/{}",
                escape(spec.path),
                spec.method,
                spec.status
            ))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        let mut link = Map::new();
        link.insert("operationId".into(), spec.target.into());
        if !spec.parameters.is_empty() {
            let parameters = spec
                .parameters
                .iter()
                .map(|(name, expression)| (name.to_string(), Value::from(*expression)))
                .collect();
            link.insert("parameters".into(), Value::Object(parameters));
        }
        if let Some(body) = spec.body {
            link.insert("requestBody".into(), body());
        }
        let links = response.entry("links").or_insert_with(|| json!({}));
        if let Some(links) = links.as_object_mut() {
            links.insert(spec.name.to_string(), Value::Object(link));
        }
    }
}

/// A path as one JSON Pointer segment (RFC 6901).
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}
