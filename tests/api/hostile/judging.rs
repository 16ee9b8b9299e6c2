//! Judging answers: no 5xx, every error a problem document with a known code,
//! no 2xx for a token that may not open the route, and a sound service after.

use serde_json::Value;
use uuid::Uuid;

use super::fixture::{hostile_config, Fixture, Tok};
use super::sending::{Case, Reply};
use crate::helpers::TestApp;

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
];

/// Checks the answer: no 5xx, errors are problem documents with a known code.
pub(super) fn check_problem(reply: &Reply) -> Result<(), String> {
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
pub(super) fn may_succeed(fx: &Fixture, case: &Case) -> bool {
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

/// The service still answers, the log is whole and the audit finds nothing.
pub(super) async fn still_sound(app: &TestApp) {
    let ready = app.get_root("/readyz").await;
    assert_eq!(ready.status(), 200, "not ready after the fuzzing");
    let report = concert::audit::audit(
        &app.pool,
        hostile_config().queue_active_max,
        None,
        &mut |_, _| {},
    )
    .await
    .expect("the audit runs: every table is still there");
    assert!(report.events > 0);
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
}
