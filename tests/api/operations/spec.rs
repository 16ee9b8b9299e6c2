//! The OpenAPI spec matches the router and API.md: exactly the documented
//! operations, each with its credential, its links, its error statuses as
//! problem documents, and every problem code.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{spawn_app, spawn_demo_app, TestApp, ADMIN_TOKEN};

/// Every operation of API.md that the spec must describe, and no other, with
/// the one credential it takes (`None`: public).
/// (`/openapi.json` and `/docs` serve the spec itself and are not in it.)
const DOCUMENTED: &[(&str, &str, Option<&str>)] = &[
    ("POST", "/api/v1/concerts", Some("admin_token")),
    ("GET", "/api/v1/concerts", None),
    ("POST", "/api/v1/queue/tokens", Some("user_token")),
    ("GET", "/api/v1/queue/tokens/current", Some("queue_token")),
    (
        "GET",
        "/api/v1/queue/tokens/current/events",
        Some("queue_token"),
    ),
    (
        "GET",
        "/api/v1/concerts/{concert_id}/dates",
        Some("queue_token"),
    ),
    (
        "GET",
        "/api/v1/concerts/{concert_id}/dates/{date_id}/seats",
        Some("queue_token"),
    ),
    (
        "GET",
        "/api/v1/concerts/{concert_id}/dates/{date_id}/seats/events",
        Some("queue_token"),
    ),
    ("POST", "/api/v1/reservations", Some("queue_token")),
    (
        "GET",
        "/api/v1/reservations/{reservation_id}",
        Some("queue_token"),
    ),
    (
        "POST",
        "/api/v1/users/{user_id}/tokens",
        Some("admin_token"),
    ),
    ("GET", "/api/v1/users/{user_id}/balance", Some("user_token")),
    (
        "POST",
        "/api/v1/users/{user_id}/balance/charges",
        Some("user_token"),
    ),
    ("POST", "/api/v1/payments", Some("queue_token")),
    ("GET", "/api/v1/audit/events", Some("admin_token")),
    (
        "GET",
        "/api/v1/audit/streams/{aggregate_type}/{aggregate_id}",
        Some("admin_token"),
    ),
    ("GET", "/api/v1/audit/report", Some("admin_token")),
    // The booking page's sign-in with `serve --demo` (404 without).
    ("POST", "/api/v1/demo/user-tokens", None),
    ("GET", "/healthz", None),
    ("GET", "/readyz", None),
    ("GET", "/metrics", None),
];

/// The credentials of API.md, each a security scheme of the spec.
const SECURITY_SCHEMES: &[&str] = &["admin_token", "queue_token", "user_token"];

/// Operations of `/api/v1` that never reach the database, so never answer
/// 503: minting a user token signs it with the key the service holds in memory.
const NO_DATABASE: &[(&str, &str)] = &[
    ("POST", "/api/v1/users/{user_id}/tokens"),
    ("POST", "/api/v1/demo/user-tokens"),
];

/// The statuses of API.md's error table (429 is optional and not implemented).
const ERROR_STATUSES: &[&str] = &[
    "400", "401", "402", "403", "404", "409", "413", "422", "503",
];

/// The codes of API.md's error table.
const PROBLEM_CODES: &[&str] = &[
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
    "unavailable",
];

async fn spec(app: &TestApp) -> Value {
    let response = app.get_root("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// (method, path, operation) of every operation in the spec.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().unwrap() {
            found.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    found
}

/// A concrete URL path for a templated one.
fn concrete(path: &str) -> String {
    path.replace("{aggregate_type}", "Seat")
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                Uuid::new_v4().to_string()
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether the router has no route for this method and path: the fallback's
/// 404 (as opposed to a handler's "concert not found") or a 405.
async fn unrouted(app: &TestApp, method: &str, path: &str) -> bool {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let response = app
        .client
        .request(method, format!("{}{}", app.address, concrete(path)))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => true,
        StatusCode::NOT_FOUND => {
            let body: Value = response.json().await.unwrap_or_default();
            body["detail"] == "route not found"
        }
        _ => false,
    }
}

#[tokio::test]
async fn the_spec_lists_exactly_the_documented_operations_and_the_router_serves_them() {
    // With `--demo`, so that its sign-in route is served.
    let app = spawn_demo_app().await;
    let spec = spec(&app).await;

    let listed: BTreeSet<(String, String)> = operations(&spec)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let documented: BTreeSet<(String, String)> = DOCUMENTED
        .iter()
        .map(|(method, path, _)| (method.to_string(), path.to_string()))
        .collect();

    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(listed, documented);
    for (method, path) in &listed {
        assert!(
            !unrouted(&app, method, path).await,
            "{method} {path} is in the spec but not routed"
        );
    }
    // Methods the spec does not list for a path are not routed either.
    for (_, path) in &listed {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if !listed.contains(&(method.to_string(), path.clone())) {
                assert!(
                    unrouted(&app, method, path).await,
                    "{method} {path} is routed but not in the spec"
                );
            }
        }
    }
}

/// The spec names the three credentials of API.md, each a bearer scheme, and
/// every operation asks for exactly the one it takes (public ones for none).
#[tokio::test]
async fn each_operation_names_the_credential_it_takes() {
    let app = spawn_app().await;
    let spec = spec(&app).await;

    let schemes = spec["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let names: BTreeSet<&str> = schemes.keys().map(String::as_str).collect();
    assert_eq!(names, SECURITY_SCHEMES.iter().copied().collect());
    for (name, scheme) in schemes {
        assert_eq!(scheme["type"], "http", "{name}");
        assert_eq!(scheme["scheme"], "bearer", "{name}");
    }
    assert!(
        spec["security"].is_null(),
        "no credential is asked of every operation at once: {}",
        spec["security"]
    );
    for (method, path, operation) in operations(&spec) {
        let expected = DOCUMENTED
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
            .map(|(_, _, scheme)| *scheme)
            .unwrap_or_else(|| panic!("{method} {path} is not documented"));
        let named: Vec<Vec<String>> = operation["security"]
            .as_array()
            .map(|requirements| {
                requirements
                    .iter()
                    .map(|requirement| {
                        requirement
                            .as_object()
                            .expect("a security requirement")
                            .keys()
                            .cloned()
                            .collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let expected: Vec<Vec<String>> = expected
            .map(|scheme| vec![vec![scheme.to_string()]])
            .unwrap_or_default();
        assert_eq!(named, expected, "{method} {path}");
    }
}

/// Every link names an operation of the spec and only parameters it takes, and
/// together they lead from a concert to a payment.
#[tokio::test]
async fn the_spec_links_each_answer_to_the_requests_its_ids_feed() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let by_id: std::collections::BTreeMap<String, Value> = operations(&spec)
        .into_iter()
        .map(|(_, _, operation)| {
            (
                operation["operationId"].as_str().unwrap().to_string(),
                operation,
            )
        })
        .collect();

    let mut edges = BTreeSet::new();
    for (_, _, operation) in operations(&spec) {
        let from = operation["operationId"].as_str().unwrap().to_string();
        for response in operation["responses"].as_object().unwrap().values() {
            let Some(links) = response["links"].as_object() else {
                continue;
            };
            for (name, link) in links {
                let to = link["operationId"].as_str().unwrap();
                let target = by_id
                    .get(to)
                    .unwrap_or_else(|| panic!("link {name} of {from} names no operation: {to}"));
                let accepted: BTreeSet<&str> = target["parameters"]
                    .as_array()
                    .map(|parameters| {
                        parameters
                            .iter()
                            .filter_map(|p| p["name"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                for parameter in link["parameters"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    assert!(
                        accepted.contains(parameter.as_str()),
                        "link {name} of {from} sets {parameter}, which {to} does not take"
                    );
                }
                if !link["requestBody"].is_null() {
                    assert!(
                        !target["requestBody"].is_null(),
                        "link {name} of {from} gives {to} a body it does not take"
                    );
                }
                edges.insert((from.clone(), to.to_string()));
            }
        }
    }
    for (from, to) in [
        ("list_concerts", "list_dates"),
        ("list_dates", "list_free_seats"),
        ("list_free_seats", "hold_seat"),
        ("hold_seat", "get_reservation"),
        ("hold_seat", "pay"),
        ("list_events", "stream_events"),
    ] {
        assert!(
            edges.contains(&(from.to_string(), to.to_string())),
            "no link from {from} to {to}"
        );
    }
}

#[tokio::test]
async fn every_documented_error_status_appears_in_the_spec_as_a_problem() {
    let app = spawn_app().await;
    let spec = spec(&app).await;

    let mut statuses = BTreeSet::new();
    for (method, path, operation) in operations(&spec) {
        let responses = operation["responses"].as_object().expect("responses");
        let has = |status: &str| responses.contains_key(status);
        for (status, response) in responses {
            statuses.insert(status.clone());
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{method} {path} {status} is not a problem document"
                );
            }
        }
        let op = format!("{method} {path}");
        if path.starts_with("/api/v1/") && !NO_DATABASE.contains(&(method.as_str(), path.as_str()))
        {
            assert!(has("503"), "{op} lacks 503");
        }
        if operation["security"].is_array() {
            assert!(has("401"), "{op} lacks 401");
        }
        // A user token names a user: another user's is refused with 403 forbidden.
        if operation["security"][0]["user_token"].is_array() {
            assert!(has("403"), "{op} lacks 403");
        }
        if operation["requestBody"].is_object() {
            for status in ["400", "413", "422"] {
                assert!(has(status), "{op} lacks {status}");
            }
        }
        // The serving layers answer these before any handler, on every route.
        for status in ["400", "408", "413", "431"] {
            assert!(has(status), "{op} lacks {status}");
        }
    }
    for status in ERROR_STATUSES {
        assert!(
            statuses.contains(*status),
            "no operation documents {status}"
        );
    }
    let payment = &spec["paths"]["/api/v1/payments"]["post"]["responses"];
    for status in ["402", "403", "404", "409"] {
        assert!(payment[status].is_object(), "POST /payments lacks {status}");
    }
    assert!(spec["paths"]["/api/v1/reservations"]["post"]["responses"]["409"].is_object());
}

/// Every `enum` list anywhere in `value`.
fn enums(value: &Value, found: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get("enum") {
                found.push(
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect(),
                );
            }
            map.values().for_each(|v| enums(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| enums(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn every_documented_problem_code_appears_in_the_spec() {
    let app = spawn_app().await;
    let spec = spec(&app).await;

    let mut found = Vec::new();
    enums(&spec["components"]["schemas"], &mut found);

    let codes = found
        .iter()
        .find(|list| list.iter().any(|code| code == "seat_unavailable"))
        .expect("an enum of problem codes");
    for code in PROBLEM_CODES {
        assert!(codes.iter().any(|c| c == code), "{code} is not in the spec");
    }
}
