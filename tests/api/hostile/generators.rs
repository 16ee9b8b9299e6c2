//! The proptest strategies of the hostile cases: paths, queries, tokens and
//! headers, put together at random or aimed at a real route and partly spoiled.

use proptest::prelude::*;
use uuid::Uuid;

use super::bodies::{any_json, body, body_template, fill, NASTY_JSON};
use super::fixture::{Fixture, Tok};
use super::sending::Case;
use crate::helpers::ADMIN_TOKEN;

/// Path and query segments that are not ids or numbers (percent-encoded when sent).
pub(super) const NASTY_SEGMENTS: &[&str] = &[
    "'; drop table events; --",
    "1 or 1=1",
    "%",
    "../../../etc/passwd",
    "..",
    "\u{0}",
    "-1",
    "0",
    "99999999999999999999999999",
    "9223372036854775808",
    "1e400",
    "NaN",
    "💩",
    "null",
    " ",
    "00000000-0000-0000-0000-000000000000",
    "{{concert_id}}",
];

/// `segment` with every byte but unreserved ones percent-encoded.
pub(super) fn percent_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn nasty_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(NASTY_SEGMENTS).prop_map(str::to_string),
        "[ -~]{0,40}",
        Just("a".repeat(3000)),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// An id for a path or a body: a real one, a random UUID, or garbage.
fn id(fx: &Fixture) -> impl Strategy<Value = String> {
    let real = vec![
        fx.concert_a.clone(),
        fx.date_a.clone(),
        fx.seat_a.clone(),
        fx.concert_b.clone(),
        fx.date_b.clone(),
        fx.reservation.clone(),
        // Not the holder's own id: a charged holder could pay and spend the
        // token, which would admit the waiting user and move the fixture.
        fx.visitor.user_id.to_string(),
    ];
    prop_oneof![
        4 => proptest::sample::select(real),
        2 => any::<u128>().prop_map(|n| Uuid::from_u128(n).to_string()),
        1 => Just(Uuid::nil().to_string()),
        1 => any::<u128>().prop_map(|n| Uuid::from_u128(n).simple().to_string().to_uppercase()),
        2 => nasty_segment(),
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("limit"),
        Just("after_seat_no"),
        Just("after"),
        Just("x"),
        Just("limit[]"),
    ];
    let value = prop_oneof![
        (-10i64..6000).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        nasty_segment(),
    ];
    prop_oneof![
        2 => Just(String::new()),
        3 => proptest::collection::vec((key, value), 1..4).prop_map(|pairs| {
            let query: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
                .collect();
            format!("?{}", query.join("&"))
        }),
        1 => "[!-\"$-~]{0,30}".prop_map(|raw| format!("?{}", raw.replace('%', "%25"))),
    ]
}

fn path(fx: &Fixture) -> impl Strategy<Value = String> {
    let templates = vec![
        "/api/v1/concerts",
        "/api/v1/concerts/{a}/dates",
        "/api/v1/concerts/{a}/dates/{b}/seats",
        "/api/v1/queue/tokens",
        "/api/v1/queue/tokens/current",
        "/api/v1/reservations",
        "/api/v1/reservations/{a}",
        "/api/v1/users/{a}/balance",
        "/api/v1/users/{a}/balance/charges",
        "/api/v1/users/{a}/tokens",
        "/api/v1/payments",
        "/api/v1/audit/events",
        "/api/v1/audit/streams/{t}/{a}",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/api/v1/{a}",
        "/api/v2/concerts",
        "/api/v1/concerts/{a}/dates/{b}/seats/{a}",
        "/{a}",
    ];
    let kind = prop_oneof![
        Just("Seat".to_string()),
        Just("Wallet".to_string()),
        Just("QueueTicket".to_string()),
        Just("Concert".to_string()),
        nasty_segment(),
    ];
    (
        proptest::sample::select(templates),
        id(fx),
        id(fx),
        kind,
        query(),
        any::<bool>(),
    )
        .prop_map(|(template, a, b, kind, query, slash)| {
            let mut path = template
                .replace("{a}", &percent_encode(&a))
                .replace("{b}", &percent_encode(&b))
                .replace("{t}", &percent_encode(&kind));
            if slash {
                path.push('/');
            }
            path + &query
        })
}

fn token() -> impl Strategy<Value = Tok> {
    prop_oneof![
        3 => Just(Tok::None),
        3 => Just(Tok::Holder),
        2 => Just(Tok::Visitor),
        2 => Just(Tok::Waiting),
        2 => Just(Tok::Expired),
        2 => Just(Tok::HolderUser),
        2 => Just(Tok::VisitorUser),
        1 => Just(Tok::TamperedUser),
        2 => Just(Tok::Admin),
        1 => Just(Tok::Forged),
        1 => Just(Tok::Tampered),
        1 => "[ -~]{0,80}".prop_map(Tok::Raw),
        1 => prop_oneof![
            Just("Basic dXNlcjpwYXNz".to_string()),
            Just("Bearer".to_string()),
            Just("bearer  ".to_string()),
            Just(format!("Bearer {ADMIN_TOKEN} {ADMIN_TOKEN}")),
            Just(format!("Bearer {}", "f".repeat(8000))),
            "[ -~]{0,60}",
        ]
        .prop_map(Tok::Header),
    ]
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[!-~]{1,40}".prop_map(String::into_bytes),
        Just(Vec::new()),
        Just(vec![b'k'; 256]),
        proptest::collection::vec(0x80u8..=0xff, 1..10),
        "[ -~]{0,20}".prop_map(String::into_bytes),
    ]
}

/// A request put together at random: method, path, token, headers and body.
pub(super) fn case(fx: &Fixture) -> impl Strategy<Value = Case> {
    let method = prop_oneof![
        6 => Just("GET"),
        6 => Just("POST"),
        1 => Just("PUT"),
        1 => Just("DELETE"),
        1 => Just("PATCH"),
        1 => Just("OPTIONS"),
        1 => Just("PROPFIND"),
    ];
    let content_type = prop_oneof![
        6 => Just(Some("application/json".to_string())),
        2 => Just(None),
        1 => Just(Some("text/plain".to_string())),
        1 => Just(Some("application/json; charset=utf-16".to_string())),
        1 => Just(Some("application/x-www-form-urlencoded".to_string())),
        1 => Just(Some("multipart/form-data; boundary=x".to_string())),
        1 => "[ -~]{0,30}".prop_map(Some),
    ];
    let extra_name = prop_oneof![
        Just("x-correlation-id"),
        Just("x-request-id"),
        Just("accept"),
        Just("content-length"),
        Just("transfer-encoding"),
        Just("host"),
        Just("x-forwarded-for"),
        Just("origin"),
    ];
    (
        method,
        path(fx),
        token(),
        content_type,
        proptest::option::weighted(0.3, header_bytes()),
        proptest::collection::vec((extra_name, header_bytes()), 0..2),
        body(fx),
    )
        .prop_map(
            |(method, path, token, content_type, idempotency_key, extra, body)| Case {
                method: method.to_string(),
                path,
                token,
                content_type,
                idempotency_key,
                extra_headers: extra
                    .into_iter()
                    .map(|(name, value)| (name.to_string(), value))
                    .collect(),
                body,
            },
        )
}

/// A request aimed at a real route with the token it needs, then partly
/// spoiled: another token, a garbage id, a mutated body, odd headers.
pub(super) fn targeted_case(fx: &Fixture) -> impl Strategy<Value = Case> {
    let seats = format!(
        "/api/v1/concerts/{}/dates/{}/seats",
        fx.concert_a, fx.date_a
    );
    let routes: Vec<(&'static str, String, Option<usize>, Tok)> = vec![
        ("GET", "/api/v1/concerts".into(), None, Tok::None),
        ("POST", "/api/v1/concerts".into(), Some(4), Tok::Admin),
        (
            "POST",
            "/api/v1/queue/tokens".into(),
            Some(1),
            Tok::VisitorUser,
        ),
        (
            "GET",
            "/api/v1/queue/tokens/current".into(),
            None,
            Tok::Holder,
        ),
        (
            "GET",
            format!("/api/v1/concerts/{}/dates", fx.concert_a),
            None,
            Tok::Holder,
        ),
        ("GET", seats, None, Tok::Holder),
        ("POST", "/api/v1/reservations".into(), Some(2), Tok::Holder),
        (
            "GET",
            format!("/api/v1/reservations/{}", fx.reservation),
            None,
            Tok::Holder,
        ),
        // The visitor's wallet, not the holder's: a charged holder could pay
        // and spend the token (see `id`).
        (
            "GET",
            format!("/api/v1/users/{}/balance", fx.visitor.user_id),
            None,
            Tok::VisitorUser,
        ),
        (
            "POST",
            format!("/api/v1/users/{}/balance/charges", fx.visitor.user_id),
            Some(0),
            Tok::VisitorUser,
        ),
        (
            "POST",
            format!("/api/v1/users/{}/tokens", fx.visitor.user_id),
            Some(5),
            Tok::Admin,
        ),
        ("POST", "/api/v1/payments".into(), Some(3), Tok::Holder),
        ("GET", "/api/v1/audit/events".into(), None, Tok::Admin),
        (
            "GET",
            format!("/api/v1/audit/streams/Wallet/{}", fx.visitor.user_id),
            None,
            Tok::Admin,
        ),
    ];
    let templates = body_template(fx);
    let nasty = prop_oneof![
        3 => proptest::sample::select(NASTY_JSON).prop_map(str::to_string),
        1 => any_json().prop_map(|v| v.to_string()),
    ];
    let uuid_pattern = last_uuid();
    (
        proptest::sample::select(routes),
        proptest::option::weighted(0.25, token()),
        proptest::option::weighted(0.15, id(fx)),
        query(),
        proptest::collection::vec(proptest::option::weighted(0.35, nasty), 4),
        proptest::option::weighted(0.15, body(fx)),
        proptest::option::weighted(0.2, header_bytes()),
        prop_oneof![8 => Just(Some("application/json".to_string())), 1 => Just(None), 1 => Just(Some("text/plain".to_string()))],
    )
        .prop_map(move |(route, token, id, query, replacements, other_body, key, content_type)| {
            let (method, mut path, template, needed) = route;
            if let Some(id) = id {
                // Swap the route's last id for the garbage one.
                if let Some(found) = uuid_pattern(&path) {
                    path = path.replace(&found, &percent_encode(&id));
                }
            }
            if method == "GET" {
                path.push_str(&query);
            }
            let body = match (template, other_body) {
                (_, Some(other)) => other,
                (Some(n), None) => {
                    let (text, fields) = &templates[n];
                    Some(fill(text, fields, &replacements).into_bytes())
                }
                (None, None) => None,
            };
            Case {
                method: method.to_string(),
                path,
                token: token.unwrap_or(needed),
                content_type,
                idempotency_key: key,
                extra_headers: Vec::new(),
                body,
            }
        })
}

/// Finds the last UUID in a path.
fn last_uuid() -> impl Fn(&str) -> Option<String> + Clone {
    |path: &str| {
        path.split(['/', '?'])
            .rfind(|segment| Uuid::parse_str(segment).is_ok())
            .map(str::to_string)
    }
}
