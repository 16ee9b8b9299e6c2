//! Hostile input, property-based: random and mutated requests (methods, paths,
//! headers, tokens, JSON and non-JSON bodies) against one running service.
//! Whatever arrives: no 5xx, every error is a problem document with a known
//! code, and no token opens what it must not. Also every field fed SQL
//! metacharacters and huge numbers, and slow clients (slowloris) that must
//! not starve the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::helpers::{spawn_app_with, test_config, TestApp, User, ADMIN_TOKEN};

/// Every `code` a problem document may carry.
const CODES: &[&str] = &[
    "bad_request",
    "token_invalid",
    "token_not_active",
    "forbidden",
    "not_found",
    "insufficient_balance",
    "seat_unavailable",
    "hold_expired",
    "already_paid",
    "payload_too_large",
    "validation_failed",
    "rate_limited",
    "method_not_allowed",
];

/// Values that are not what a field expects, as raw JSON text: numbers no
/// `i64` holds, fractions, SQL, NULs, lone surrogates, wrong types.
const NASTY_JSON: &[&str] = &[
    "0",
    "-1",
    "1.5",
    "-0",
    "1e400",
    "-1e400",
    "1e9",
    "1000000000",
    "1000000001",
    "1000000000000",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551616",
    "123456789012345678901234567890",
    "\"1000\"",
    "\"'; drop table events; --\"",
    "\"' or '1'='1\"",
    "\"\\\"); delete from seats; --\"",
    "\"%' union select * from balances --\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"💩\"",
    "\"00000000-0000-0000-0000-000000000000\"",
    "\"ffffffff-ffff-ffff-ffff-ffffffffffff\"",
    "\"2026-02-30T25:61:00Z\"",
    "\"+275760-09-13T00:00:00Z\"",
    "\"-000001-01-01T00:00:00Z\"",
    "null",
    "true",
    "[]",
    "{}",
    "[1, 2, 3]",
    "{\"$ne\": 1}",
];

/// Path and query segments that are not ids or numbers (percent-encoded when sent).
const NASTY_SEGMENTS: &[&str] = &[
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

/// A user, their queue token and their user token.
#[derive(Debug, Clone)]
struct Who {
    user_id: Uuid,
    token: String,
    user_token: String,
}

/// `user`, signed in: with the user token the service mints for them.
async fn who(app: &TestApp, user: User) -> Who {
    Who {
        user_token: app.user_token(user.user_id).await,
        user_id: user.user_id,
        token: user.token,
    }
}

/// Ids and tokens of a small booking history for the cases to aim at.
#[derive(Debug, Clone)]
struct Fixture {
    concert_a: String,
    date_a: String,
    seat_a: String,
    concert_b: String,
    date_b: String,
    /// Holds `reservation` on concert A.
    holder: Who,
    reservation: String,
    /// Active on concert B.
    visitor: Who,
    /// Waiting in concert A's queue.
    waiting: Who,
    /// Spent by paying.
    expired: Who,
}

/// The token a case sends.
#[derive(Debug, Clone)]
enum Tok {
    None,
    Holder,
    Visitor,
    Waiting,
    Expired,
    /// The holder's user token.
    HolderUser,
    /// The visitor's user token.
    VisitorUser,
    /// The holder's user token with its signature changed.
    TamperedUser,
    Admin,
    /// Right shape, never issued.
    Forged,
    /// The holder's token with its signature changed.
    Tampered,
    /// `Bearer <anything>`.
    Raw(String),
    /// A whole `Authorization` header value.
    Header(String),
}

impl Tok {
    fn header(&self, fx: &Fixture) -> Option<String> {
        let bearer = |token: &str| Some(format!("Bearer {token}"));
        match self {
            Tok::None => None,
            Tok::Holder => bearer(&fx.holder.token),
            Tok::Visitor => bearer(&fx.visitor.token),
            Tok::Waiting => bearer(&fx.waiting.token),
            Tok::Expired => bearer(&fx.expired.token),
            Tok::HolderUser => bearer(&fx.holder.user_token),
            Tok::VisitorUser => bearer(&fx.visitor.user_token),
            Tok::TamperedUser => {
                // A character of the signature changed (not the last one, whose
                // low bits may be base64url padding).
                let mut chars: Vec<char> = fx.holder.user_token.chars().collect();
                let at = chars.len() - 5;
                chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
                bearer(&chars.into_iter().collect::<String>())
            }
            Tok::Admin => bearer(ADMIN_TOKEN),
            Tok::Forged => bearer(&format!(
                "{}.{}{}",
                Uuid::new_v4().simple(),
                Uuid::new_v4().simple(),
                Uuid::new_v4().simple()
            )),
            Tok::Tampered => {
                let mut token = fx.holder.token.clone();
                let last = token.pop().unwrap();
                token.push(if last == '0' { '1' } else { '0' });
                bearer(&token)
            }
            Tok::Raw(raw) => bearer(raw),
            Tok::Header(value) => Some(value.clone()),
        }
    }
}

/// One request of the fuzzer.
#[derive(Clone)]
struct Case {
    method: String,
    path: String,
    token: Tok,
    content_type: Option<String>,
    idempotency_key: Option<Vec<u8>>,
    extra_headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lossy = |bytes: &Option<Vec<u8>>| {
            bytes
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        f.debug_struct("Case")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("token", &self.token)
            .field("content_type", &self.content_type)
            .field("idempotency_key", &lossy(&self.idempotency_key))
            .field(
                "extra_headers",
                &self
                    .extra_headers
                    .iter()
                    .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
                    .collect::<Vec<_>>(),
            )
            .field(
                "body",
                &lossy(&self.body).map(|b| b.chars().take(300).collect::<String>()),
            )
            .finish()
    }
}

fn percent_encode(segment: &str) -> String {
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

/// Random JSON, nested a little.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::hash_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A request body of the right shape for some endpoint, as JSON text with
/// `@` placeholders for its fields' values.
fn body_template(fx: &Fixture) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let starts_at = (chrono::Utc::now() + chrono::Duration::days(40)).to_rfc3339();
    vec![
        ("{\"amount\": @amount}", vec![("amount", "500".to_string())]),
        (
            "{\"user_id\": @user_id, \"concert_id\": @concert_id}",
            vec![
                // The visitor's own id: the body of their user token's entry.
                ("user_id", format!("\"{}\"", fx.visitor.user_id)),
                ("concert_id", format!("\"{}\"", fx.concert_a)),
            ],
        ),
        (
            "{\"seat_id\": @seat_id}",
            vec![("seat_id", format!("\"{}\"", fx.seat_a))],
        ),
        (
            "{\"reservation_id\": @reservation_id}",
            vec![("reservation_id", format!("\"{}\"", fx.reservation))],
        ),
        (
            "{\"title\": @title, \"dates\": [{\"starts_at\": @starts_at, \"seats\": @seats, \"price\": @price}]}",
            vec![
                ("title", "\"Fuzz\"".to_string()),
                ("starts_at", format!("\"{starts_at}\"")),
                ("seats", "2".to_string()),
                ("price", "100".to_string()),
            ],
        ),
        (
            "{\"ttl_secs\": @ttl_secs}",
            vec![("ttl_secs", "3600".to_string())],
        ),
    ]
}

/// Fills a template: each field keeps its valid value or gets a nasty one.
fn fill(template: &str, fields: &[(&str, String)], replacements: &[Option<String>]) -> String {
    let mut text = template.to_string();
    for ((name, valid), replacement) in fields.iter().zip(replacements) {
        let value = replacement.as_deref().unwrap_or(valid);
        text = text.replace(&format!("@{name}"), value);
    }
    text
}

fn body(fx: &Fixture) -> impl Strategy<Value = Option<Vec<u8>>> {
    let templates = body_template(fx);
    let nasty = prop_oneof![
        3 => proptest::sample::select(NASTY_JSON).prop_map(str::to_string),
        1 => any_json().prop_map(|v| v.to_string()),
        1 => "\\PC{0,20}".prop_map(|s| json!(s).to_string()),
    ];
    let templated = (
        proptest::sample::select(templates),
        proptest::collection::vec(proptest::option::weighted(0.4, nasty), 4),
    )
        .prop_map(|((template, fields), replacements)| fill(template, &fields, &replacements));
    // Mutations of a templated body: cut short, a byte flipped, a field
    // dropped, an unknown field, duplicated keys, wrapped in an array.
    let mutated = (templated.clone(), 0usize..6, any::<usize>(), any::<u8>()).prop_map(
        |(text, how, at, byte)| {
            let mut bytes = text.into_bytes();
            let at = at % bytes.len().max(1);
            match how {
                0 => bytes.truncate(at),
                1 => {
                    if let Some(b) = bytes.get_mut(at) {
                        *b = byte;
                    }
                }
                2 => {
                    let text = String::from_utf8_lossy(&bytes).to_string();
                    bytes = text.replacen(", ", ", \"unknown\": 1, ", 1).into_bytes();
                }
                3 => {
                    let text = String::from_utf8_lossy(&bytes).to_string();
                    bytes = text.replacen('{', "{\"amount\": -5, ", 1).into_bytes();
                }
                4 => {
                    let mut wrapped = b"[".to_vec();
                    wrapped.extend_from_slice(&bytes);
                    wrapped.push(b']');
                    bytes = wrapped;
                }
                _ => bytes.insert(at, byte),
            }
            bytes
        },
    );
    prop_oneof![
        2 => Just(None),
        6 => templated.prop_map(|text| Some(text.into_bytes())),
        3 => mutated.prop_map(Some),
        2 => any_json().prop_map(|v| Some(v.to_string().into_bytes())),
        2 => proptest::collection::vec(any::<u8>(), 0..200).prop_map(Some),
        1 => prop_oneof![
            Just("[".repeat(20_000)),
            Just(format!("{{\"amount\": 1{}}}", "0".repeat(5000))),
            Just(format!("{{\"title\": \"{}\"}}", "x".repeat(70 * 1024))),
            Just(format!("{{\"amount\": 5, \"pad\": \"{}\"}}", "y".repeat(60 * 1024))),
            Just("{\"amount\": 5, \"amount\": 7}".to_string()),
            Just("\u{feff}{\"amount\": 5}".to_string()),
        ]
        .prop_map(|text| Some(text.into_bytes())),
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

fn case(fx: &Fixture) -> impl Strategy<Value = Case> {
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
fn targeted_case(fx: &Fixture) -> impl Strategy<Value = Case> {
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

/// The answer to one case.
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

async fn send(client: &reqwest::Client, app: &str, fx: &Fixture, case: &Case) -> Option<Reply> {
    match send_once(client, app, fx, case).await {
        Ok(reply) => reply,
        // A kept-alive connection the server had just closed (after answering
        // a bad request without reading its body) fails to send: once more on
        // a fresh connection, which must be answered.
        Err(_) => {
            let fresh = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            match send_once(&fresh, app, fx, case).await {
                Ok(reply) => reply,
                Err(error) => panic!("no answer to {case:?}: {error:?}"),
            }
        }
    }
}

async fn send_once(
    client: &reqwest::Client,
    app: &str,
    fx: &Fixture,
    case: &Case,
) -> Result<Option<Reply>, reqwest::Error> {
    let method = Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &[u8]| {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    };
    if let Some(value) = case.token.header(fx) {
        put("authorization", value.as_bytes());
    }
    if let Some(content_type) = &case.content_type {
        put("content-type", content_type.as_bytes());
    }
    if let Some(key) = &case.idempotency_key {
        put("idempotency-key", key);
    }
    for (name, value) in &case.extra_headers {
        // A wrong content-length or transfer-encoding would only desynchronise
        // the client's own connection; hyper refuses those before the router.
        if name == "content-length" || name == "transfer-encoding" {
            continue;
        }
        put(name, value);
    }
    let mut request = client
        .request(method, format!("{app}{}", case.path))
        .headers(headers);
    if let Some(body) = &case.body {
        request = request.body(body.clone());
    }
    let response = match request.send().await {
        Ok(response) => response,
        // reqwest refuses some generated URLs before sending anything.
        Err(error) if error.is_builder() => return Ok(None),
        Err(error) => return Err(error),
    };
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.text().await.unwrap_or_default();
    Ok(Some(Reply {
        status,
        content_type,
        body,
    }))
}

/// Checks the answer: no 5xx, errors are problem documents with a known code.
fn check_problem(reply: &Reply) -> Result<(), String> {
    if reply.status >= 500 {
        return Err(format!("server error {}: {}", reply.status, reply.body));
    }
    if reply.status >= 400 {
        if reply.content_type != "application/problem+json" {
            return Err(format!(
                "{} with content type {:?}: {}",
                reply.status, reply.content_type, reply.body
            ));
        }
        let problem: Value = serde_json::from_str(&reply.body).map_err(|e| {
            format!(
                "{} with an unparsable problem ({e}): {}",
                reply.status, reply.body
            )
        })?;
        if problem["status"].as_u64() != Some(u64::from(reply.status))
            || !["type", "title", "detail"]
                .iter()
                .all(|f| problem[f].is_string())
            || !CODES.contains(&problem["code"].as_str().unwrap_or_default())
        {
            return Err(format!(
                "{} with a malformed problem: {}",
                reply.status, reply.body
            ));
        }
    }
    Ok(())
}

/// Whether the case's token may open what its path names; a 2xx otherwise
/// means someone acted with a token that is not theirs.
fn may_succeed(fx: &Fixture, case: &Case) -> bool {
    // Only GET and POST read or act; other methods have nothing to open (OPTIONS
    // is answered 200 with an empty body by the CORS layer, on every path).
    if case.method != "GET" && case.method != "POST" {
        return true;
    }
    let path = case.path.split('?').next().unwrap().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let token = &case.token;
    let is_admin = matches!(token, Tok::Admin);
    let active = matches!(token, Tok::Holder | Tok::Visitor);
    // The user a genuine user token names.
    let signed_in = match token {
        Tok::HolderUser => Some(fx.holder.user_id),
        Tok::VisitorUser => Some(fx.visitor.user_id),
        _ => None,
    };
    if path.starts_with("/api/v1/audit") || (path == "/api/v1/concerts" && case.method == "POST") {
        return is_admin;
    }
    if segments.len() == 6 && segments[3] == "users" && segments[5] == "tokens" {
        return is_admin;
    }
    // A wallet: only with the user token of the user in the path.
    if segments.len() >= 6 && segments[3] == "users" {
        return signed_in.is_some_and(|user| Uuid::parse_str(segments[4]).ok() == Some(user));
    }
    // Entering the queue: with any genuine user token, for its own user only.
    if path == "/api/v1/queue/tokens" {
        let Some(user) = signed_in else {
            return false;
        };
        let named = case
            .body
            .as_ref()
            .and_then(|body| serde_json::from_slice::<Value>(body).ok())
            .map(|body| body["user_id"].clone())
            .unwrap_or(Value::Null);
        return match named {
            Value::Null => true,
            Value::String(named) => Uuid::parse_str(&named).ok() == Some(user),
            _ => false,
        };
    }
    if path == "/api/v1/queue/tokens/current" {
        return matches!(
            token,
            Tok::Holder | Tok::Visitor | Tok::Waiting | Tok::Expired
        );
    }
    if segments.len() >= 6 && segments[3] == "concerts" && segments[5] == "dates" {
        let concert = segments[4];
        return (matches!(token, Tok::Holder) && concert == fx.concert_a)
            || (matches!(token, Tok::Visitor) && concert == fx.concert_b);
    }
    if path.starts_with("/api/v1/reservations/") {
        return matches!(token, Tok::Holder);
    }
    if path == "/api/v1/reservations" || path == "/api/v1/payments" {
        let names_the_holders = case
            .body
            .as_ref()
            .is_some_and(|b| String::from_utf8_lossy(b).contains(&fx.reservation));
        return active && !(names_the_holders && matches!(token, Tok::Visitor));
    }
    true
}

/// Builds the fixture: two concerts, a holder with a reservation, a visitor
/// of the other concert, a waiting user and one whose token paying spent.
async fn fixture(app: &TestApp) -> Fixture {
    let concert_a = app.create_concert(1, 30, 1000).await;
    let concert_b = app.create_concert(1, 5, 1000).await;
    let holder = app.active_user(&concert_a.concert_id).await;
    let seats = app.free_seats(&holder, &concert_a, 0).await;
    let seat = |n: usize| seats[n]["seat_id"].as_str().unwrap().to_string();
    let held: Value = app.hold(&holder, &seat(0)).await.json().await.unwrap();
    let reservation = held["reservation_id"].as_str().unwrap().to_string();
    let visitor = app.active_user(&concert_b.concert_id).await;
    // Spent: holds, pays, and its token expires (freeing its place).
    let expired = app.active_user(&concert_a.concert_id).await;
    let sold: Value = app.hold(&expired, &seat(1)).await.json().await.unwrap();
    app.charge(expired.user_id, 1000).await;
    let paid = app
        .pay(&expired, sold["reservation_id"].as_str().unwrap())
        .await;
    assert_eq!(paid.status(), 201);
    // The active limit is 2: a third user after the holder and a filler waits.
    let _filler = app.active_user(&concert_a.concert_id).await;
    let waiting_id = Uuid::new_v4();
    let (_, entered) = app.enter_queue(waiting_id, &concert_a.concert_id).await;
    assert_eq!(entered["status"], "waiting");
    let waiting = User {
        user_id: waiting_id,
        token: entered["token"].as_str().unwrap().to_string(),
    };
    Fixture {
        concert_a: concert_a.concert_id,
        date_a: concert_a.date_ids[0].clone(),
        seat_a: seat(2),
        concert_b: concert_b.concert_id,
        date_b: concert_b.date_ids[0].clone(),
        holder: who(app, holder).await,
        reservation,
        visitor: who(app, visitor).await,
        waiting: who(app, waiting).await,
        expired: who(app, expired).await,
    }
}

fn hostile_config() -> concert::config::Config {
    let mut config = test_config();
    config.queue_active_max = 2;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_requests_never_get_a_5xx_or_a_bare_error() {
    let app = spawn_app_with(hostile_config()).await;
    let fx = fixture(&app).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let tried = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(HashMap::<u16, usize>::new()));
    let cases: u32 = std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let (address, fixture, counter, tally) = (
        app.address.clone(),
        fx.clone(),
        tried.clone(),
        statuses.clone(),
    );
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            failure_persistence: None,
            max_shrink_iters: 200,
            ..ProptestConfig::default()
        });
        let strategy = prop_oneof![1 => case(&fixture), 2 => targeted_case(&fixture)];
        runner
            .run(&strategy, |case| {
                counter.fetch_add(1, Ordering::Relaxed);
                let Some(reply) = handle.block_on(send(&client, &address, &fixture, &case)) else {
                    return Ok(());
                };
                *tally.lock().unwrap().entry(reply.status).or_default() += 1;
                check_problem(&reply).map_err(TestCaseError::fail)?;
                if (200..300).contains(&reply.status) && !may_succeed(&fixture, &case) {
                    return Err(TestCaseError::fail(format!(
                        "{} answered {} to a token that may not: {}",
                        case.path, reply.status, reply.body
                    )));
                }
                Ok(())
            })
            .map_err(|failure| failure.to_string())
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    println!(
        "FIGURES hostile_fuzz: {} requests, statuses {:?}",
        tried.load(Ordering::Relaxed),
        statuses.lock().unwrap()
    );
    still_sound(&app).await;
}

/// The service still answers, the log is whole and the audit finds nothing.
async fn still_sound(app: &TestApp) {
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "not ready after the fuzzing");
    let report =
        concert::audit::audit(&app.pool, hostile_config().queue_active_max, &mut |_, _| {})
            .await
            .expect("the audit runs: every table is still there");
    assert!(report.events > 0);
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_survives_sql_metacharacters_and_huge_numbers() {
    let app = spawn_app_with(hostile_config()).await;
    let fx = fixture(&app).await;
    let client = reqwest::Client::new();
    let holder_balance = app.balance(fx.holder.user_id).await;
    let mut tried = 0;
    let mut failures = Vec::new();
    let mut record = |what: String, reply: Option<Reply>| {
        tried += 1;
        if let Some(reply) = reply {
            if let Err(error) = check_problem(&reply) {
                failures.push(format!("{what}: {error}"));
            } else if reply.status < 300 && what.contains("/payments") {
                failures.push(format!("{what}: a payment went through: {}", reply.body));
            }
        }
    };
    // Every body field of every endpoint, with the right token for it: a
    // stranger's wallet is charged with their own user token.
    let stranger = Uuid::new_v4();
    let stranger_token = Tok::Raw(app.user_token(stranger).await);
    let endpoints = [
        ("/api/v1/users/{u}/balance/charges", stranger_token, 0),
        ("/api/v1/queue/tokens", Tok::VisitorUser, 1),
        ("/api/v1/reservations", Tok::Holder, 2),
        ("/api/v1/payments", Tok::Holder, 3),
        ("/api/v1/concerts", Tok::Admin, 4),
        ("/api/v1/users/{u}/tokens", Tok::Admin, 5),
    ];
    let templates = body_template(&fx);
    for (path, token, template) in &endpoints {
        let (text, fields) = &templates[*template];
        let path = path.replace("{u}", &stranger.to_string());
        for field in 0..fields.len() {
            for nasty in NASTY_JSON {
                let mut replacements = vec![None; fields.len()];
                replacements[field] = Some(nasty.to_string());
                let case = Case {
                    method: "POST".into(),
                    path: path.clone(),
                    token: token.clone(),
                    content_type: Some("application/json".into()),
                    idempotency_key: None,
                    extra_headers: Vec::new(),
                    body: Some(fill(text, fields, &replacements).into_bytes()),
                };
                let reply = send(&client, &app.address, &fx, &case).await;
                record(format!("POST {path} {}={nasty}", fields[field].0), reply);
            }
        }
    }
    // Every path segment, query parameter and the Idempotency-Key.
    let paths = [
        "/api/v1/users/@/balance",
        "/api/v1/users/@/balance/charges",
        "/api/v1/users/@/tokens",
        "/api/v1/reservations/@",
        "/api/v1/concerts/@/dates",
        "/api/v1/concerts/{c}/dates/@/seats",
        "/api/v1/concerts/{c}/dates/{d}/seats?limit=@",
        "/api/v1/concerts/{c}/dates/{d}/seats?after_seat_no=@",
        "/api/v1/audit/events?after=@",
        "/api/v1/audit/events?limit=@",
        "/api/v1/audit/streams/@/{u}",
        "/api/v1/audit/streams/Wallet/@",
    ];
    let nasty_texts: Vec<String> = NASTY_SEGMENTS
        .iter()
        .map(|s| s.to_string())
        .chain(NASTY_JSON.iter().map(|s| s.trim_matches('"').to_string()))
        .collect();
    for template in paths {
        for nasty in &nasty_texts {
            let path = template
                .replace("{c}", &fx.concert_a)
                .replace("{d}", &fx.date_a)
                .replace("{u}", &fx.holder.user_id.to_string())
                .replace('@', &percent_encode(nasty));
            // A wallet's right token is the user token of the user the path
            // names, when it names one; else the holder's, refused with 403.
            let wallet_token = match Uuid::parse_str(nasty) {
                Ok(user) => Tok::Raw(app.user_token(user).await),
                Err(_) => Tok::HolderUser,
            };
            let (method, token, body) = if template.ends_with("charges") {
                ("POST", wallet_token, Some(b"{\"amount\": 5}".to_vec()))
            } else if template.ends_with("balance") {
                ("GET", wallet_token, None)
            } else if template.ends_with("tokens") {
                ("POST", Tok::Admin, Some(b"{}".to_vec()))
            } else if template.contains("audit") {
                ("GET", Tok::Admin, None)
            } else {
                ("GET", Tok::Holder, None)
            };
            let case = Case {
                method: method.into(),
                path: path.clone(),
                token,
                content_type: Some("application/json".into()),
                idempotency_key: None,
                extra_headers: Vec::new(),
                body,
            };
            let reply = send(&client, &app.address, &fx, &case).await;
            record(format!("{method} {path}"), reply);
        }
    }
    let charges = format!("/api/v1/users/{}/balance/charges", fx.holder.user_id);
    for nasty in &nasty_texts {
        let case = Case {
            method: "POST".into(),
            path: charges.clone(),
            token: Tok::HolderUser,
            content_type: Some("application/json".into()),
            idempotency_key: Some(nasty.as_bytes().to_vec()),
            extra_headers: Vec::new(),
            body: Some(b"{\"amount\": 1}".to_vec()),
        };
        let reply = send(&client, &app.address, &fx, &case).await;
        record(format!("POST {charges} idempotency-key {nasty:?}"), reply);
    }
    assert!(
        failures.is_empty(),
        "{} of {tried} failed: {failures:#?}",
        failures.len()
    );
    println!("FIGURES hostile_sql_and_numbers: {tried} requests");
    // SQL arrived as data: the tables are whole, and a title is kept verbatim.
    let sneaky = "Robert'); drop table events; --";
    let created = app
        .post(
            "/concerts",
            Some(ADMIN_TOKEN),
            json!({"title": sneaky, "dates": [{"starts_at": chrono::Utc::now() + chrono::Duration::days(9), "seats": 1, "price": 1}]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let titles: Vec<String> = sqlx::query_scalar("select title from concerts")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(titles.iter().any(|t| t == sneaky), "{titles:?}");
    // Only the idempotency-key charges of 1 won (at most one per accepted key) reached the holder.
    let balance = app.balance(fx.holder.user_id).await;
    assert!(
        balance - holder_balance <= nasty_texts.len() as i64,
        "balance {balance}"
    );
    still_sound(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_wrong_token_is_refused_with_its_code_on_every_guarded_route() {
    let app = spawn_app_with(hostile_config()).await;
    let fx = fixture(&app).await;
    let client = reqwest::Client::new();
    let seats_a = format!(
        "/api/v1/concerts/{}/dates/{}/seats",
        fx.concert_a, fx.date_a
    );
    let dates_a = format!("/api/v1/concerts/{}/dates", fx.concert_a);
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", dates_a.clone(), None),
        ("GET", seats_a.clone(), None),
        (
            "POST",
            "/api/v1/reservations".into(),
            Some(json!({"seat_id": fx.seat_a})),
        ),
        (
            "GET",
            format!("/api/v1/reservations/{}", fx.reservation),
            None,
        ),
        (
            "POST",
            "/api/v1/payments".into(),
            Some(json!({"reservation_id": fx.reservation})),
        ),
    ];
    // (token, expected status and code on concert A's guarded routes)
    let tokens = [
        (Tok::None, 401, "token_invalid"),
        (Tok::Forged, 401, "token_invalid"),
        (Tok::Tampered, 401, "token_invalid"),
        (Tok::Admin, 401, "token_invalid"),
        (Tok::Expired, 401, "token_invalid"),
        (Tok::Waiting, 403, "token_not_active"),
        (Tok::Visitor, 403, "token_not_active"),
        // A user token says who the caller is, not their place in a queue.
        (Tok::HolderUser, 401, "token_invalid"),
        (Tok::VisitorUser, 401, "token_invalid"),
        (Tok::TamperedUser, 401, "token_invalid"),
    ];
    let mut tried = 0;
    let mut wrong = Vec::new();
    for (token, status, code) in &tokens {
        for (method, path, body) in &routes {
            let mut expected = (*status, *code);
            // Any token the server issued names its user, who may read their own
            // reservations even once the token is spent: another user's is not found.
            if path.starts_with("/api/v1/reservations/")
                && matches!(token, Tok::Visitor | Tok::Waiting | Tok::Expired)
            {
                expected = (404, "not_found");
            }
            if *method == "POST" && path == "/api/v1/payments" && matches!(token, Tok::Visitor) {
                expected = (404, "not_found");
            }
            let case = Case {
                method: method.to_string(),
                path: path.clone(),
                token: token.clone(),
                content_type: Some("application/json".into()),
                idempotency_key: None,
                extra_headers: Vec::new(),
                body: body.as_ref().map(|b| b.to_string().into_bytes()),
            };
            let reply = send(&client, &app.address, &fx, &case).await.unwrap();
            tried += 1;
            let code_got = serde_json::from_str::<Value>(&reply.body).unwrap_or_default()["code"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if (reply.status, code_got.as_str()) != expected || check_problem(&reply).is_err() {
                wrong.push(format!(
                    "{token:?} {method} {path}: expected {expected:?}, got {} {}",
                    reply.status, reply.body
                ));
            }
        }
    }
    // The admin routes refuse every queue token and every user token, and the
    // admin token is no queue token.
    let mint = format!("/api/v1/users/{}/tokens", fx.holder.user_id);
    for token in [
        Tok::Holder,
        Tok::Visitor,
        Tok::Waiting,
        Tok::Expired,
        Tok::HolderUser,
        Tok::VisitorUser,
        Tok::TamperedUser,
        Tok::Forged,
        Tok::None,
    ] {
        for (method, path) in [
            ("GET", "/api/v1/audit/events"),
            ("POST", "/api/v1/concerts"),
            ("POST", mint.as_str()),
        ] {
            let case = Case {
                method: method.into(),
                path: path.into(),
                token: token.clone(),
                content_type: Some("application/json".into()),
                idempotency_key: None,
                extra_headers: Vec::new(),
                body: (method == "POST").then(|| b"{\"title\": \"x\", \"dates\": []}".to_vec()),
            };
            let reply = send(&client, &app.address, &fx, &case).await.unwrap();
            tried += 1;
            if reply.status != 401 || !reply.body.contains("token_invalid") {
                wrong.push(format!(
                    "{token:?} {method} {path}: {} {}",
                    reply.status, reply.body
                ));
            }
        }
    }
    // The user-token routes of the holder refuse every other credential: no
    // token, a queue or admin token, a spoiled user token (401), and another
    // user's genuine user token (403).
    let entered = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from events where event_type = 'QueueEntered'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let (holder_balance, entered_before) = (app.balance(fx.holder.user_id).await, entered().await);
    let holder = fx.holder.user_id;
    let user_routes: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/api/v1/queue/tokens".into(),
            Some(json!({"user_id": holder, "concert_id": fx.concert_b})),
        ),
        ("GET", format!("/api/v1/users/{holder}/balance"), None),
        (
            "POST",
            format!("/api/v1/users/{holder}/balance/charges"),
            Some(json!({"amount": 1000})),
        ),
    ];
    for (token, status, code) in [
        (Tok::None, 401, "token_invalid"),
        (Tok::Forged, 401, "token_invalid"),
        (Tok::Tampered, 401, "token_invalid"),
        (Tok::TamperedUser, 401, "token_invalid"),
        (Tok::Admin, 401, "token_invalid"),
        (Tok::Holder, 401, "token_invalid"),
        (Tok::Visitor, 401, "token_invalid"),
        (Tok::Waiting, 401, "token_invalid"),
        (Tok::Expired, 401, "token_invalid"),
        (Tok::VisitorUser, 403, "forbidden"),
    ] {
        for (method, path, body) in &user_routes {
            let case = Case {
                method: method.to_string(),
                path: path.clone(),
                token: token.clone(),
                content_type: Some("application/json".into()),
                idempotency_key: None,
                extra_headers: Vec::new(),
                body: body.as_ref().map(|b| b.to_string().into_bytes()),
            };
            let reply = send(&client, &app.address, &fx, &case).await.unwrap();
            tried += 1;
            let code_got = serde_json::from_str::<Value>(&reply.body).unwrap_or_default()["code"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if (reply.status, code_got.as_str()) != (status, code) || check_problem(&reply).is_err()
            {
                wrong.push(format!(
                    "{token:?} {method} {path}: expected {:?}, got {} {}",
                    (status, code),
                    reply.status,
                    reply.body
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {tried} wrong: {wrong:#?}",
        wrong.len()
    );
    println!("FIGURES hostile_tokens: {tried} requests");
    // Nobody entered a queue or touched the holder's wallet.
    assert_eq!(entered().await, entered_before);
    assert_eq!(app.balance(fx.holder.user_id).await, holder_balance);
    // Nothing moved: the seat is free, the reservation unpaid.
    let seats: Value = app
        .get(
            &format!("/concerts/{}/dates/{}/seats", fx.concert_a, fx.date_a),
            Some(&fx.holder.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["seat_id"] == fx.seat_a.as_str()));
    let reservation: Value = app
        .get(
            &format!("/reservations/{}", fx.reservation),
            Some(&fx.holder.token),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reservation["status"], "held");
}

/// Opens a connection and sends `head` one byte every `pause`, until `stop`.
async fn trickle(address: String, head: Vec<u8>, pause: Duration, stop: Instant) -> bool {
    let Ok(mut stream) = TcpStream::connect(&address).await else {
        return false;
    };
    for byte in head.iter().cycle() {
        if Instant::now() > stop {
            return true; // still open: the server did not cut it off
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return false;
        }
        tokio::time::sleep(pause).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_starve_the_others() {
    let mut config = test_config();
    config.request_timeout_secs = 2;
    let app = spawn_app_with(config).await;
    let address = app.address.trim_start_matches("http://").to_string();
    let user = Uuid::new_v4();
    let token = app.user_token(user).await;
    let stop = Instant::now() + Duration::from_secs(5);
    // Forty clients sending their headers a byte every 100 ms, forever.
    let head = format!(
        "POST /api/v1/users/{user}/balance/charges HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-pad: "
    )
    .into_bytes();
    let slow_heads: Vec<_> = (0..40)
        .map(|_| {
            tokio::spawn(trickle(
                address.clone(),
                head.clone(),
                Duration::from_millis(100),
                stop,
            ))
        })
        .collect();
    // Ten clients with whole headers and a body that trickles: the request
    // timeout answers them.
    let slow_bodies: Vec<_> = (0..10)
        .map(|_| {
            let (address, token) = (address.clone(), token.clone());
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&address).await.unwrap();
                // Signed in, so that the body is what the server waits for.
                let head = format!(
                    "POST /api/v1/users/{user}/balance/charges HTTP/1.1\r\nhost: x\r\n\
                     authorization: Bearer {token}\r\n\
                     content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"amount\": "
                );
                stream.write_all(head.as_bytes()).await.unwrap();
                let started = Instant::now();
                let mut answer = Vec::new();
                let mut buffer = [0u8; 1024];
                loop {
                    tokio::select! {
                        read = stream.read(&mut buffer) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                answer.extend_from_slice(&buffer[..n]);
                                if answer.windows(4).any(|w| w == b"\r\n\r\n") { break; }
                            }
                        },
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {
                            if started.elapsed() > Duration::from_secs(8) { break; }
                            let _ = stream.write_all(b"1").await;
                        }
                    }
                }
                (
                    started.elapsed(),
                    String::from_utf8_lossy(&answer).to_string(),
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile a normal client is served promptly.
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    while Instant::now() < stop - Duration::from_millis(500) {
        // A fresh user each time, signed in before the clock starts.
        let fresh = Uuid::new_v4();
        app.user_token(fresh).await;
        let started = Instant::now();
        let response = app.charge(fresh, 10).await;
        assert_eq!(response.status(), 200);
        let response = app
            .get(&format!("/users/{user}/balance"), Some(&token))
            .await;
        assert_eq!(response.status(), 200);
        slowest = slowest.max(started.elapsed());
        served += 2;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served >= 20, "only {served} requests served");
    assert!(
        slowest < Duration::from_secs(1),
        "a request took {slowest:?}"
    );
    let mut still_open = 0;
    for task in slow_heads {
        if task.await.unwrap() {
            still_open += 1;
        }
    }
    let mut answers = Vec::new();
    for task in slow_bodies {
        answers.push(task.await.unwrap());
    }
    println!(
        "FIGURES hostile_slowloris: {served} normal requests, slowest {slowest:?}; \
         {still_open} of 40 header tricklers still connected after 5 s"
    );
    // A graceful stop is not held up by a client that never finishes its headers.
    let lingering = tokio::spawn(trickle(
        address.clone(),
        head.clone(),
        Duration::from_millis(100),
        Instant::now() + Duration::from_secs(20),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.shutdown()).await;
    let stop_took = stopping.elapsed();
    lingering.abort();
    println!(
        "FIGURES hostile_slowloris_shutdown: stopped {} after {stop_took:?}",
        stopped.is_ok()
    );
    // The request timeout (2 s) answers a body that never finishes.
    for (took, answer) in &answers {
        assert!(
            *took < Duration::from_secs(4),
            "a trickled body held its request for {took:?}: {answer:?}"
        );
        let status_line = answer.lines().next().unwrap_or_default();
        assert!(
            status_line.contains(" 408 ")
                || status_line.contains(" 503 ")
                || status_line.contains(" 400 "),
            "{answer:?}"
        );
    }
    // Its answer is a problem document like every other error.
    let bare: Vec<&String> = answers
        .iter()
        .map(|(_, answer)| answer)
        .filter(|answer| {
            !answer
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json")
        })
        .collect();
    assert!(
        bare.is_empty(),
        "{} of {} timed-out requests were answered without a problem document: {:?}",
        bare.len(),
        answers.len(),
        bare.first()
    );
    assert!(
        stopped.is_ok(),
        "a graceful stop waited {stop_took:?} for a client that never finishes its headers \
         (no header read timeout)"
    );
}
