//! `/problems/{name}`: what each problem `type` the service answers with
//! means, as a short page. A problem's `type` is a URI that, dereferenced,
//! should document the problem for people (RFC 9457 §3.1.1); the service's
//! are relative (`/problems/not-found`), so they resolve to these pages.

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;
use crate::state::AppState;

/// One problem type: its name in `/problems/{name}`, status, title, the
/// contract's `code`, and what a client should make of it.
pub struct ProblemType {
    pub name: &'static str,
    pub status: u16,
    pub title: &'static str,
    pub code: &'static str,
    pub meaning: &'static str,
}

/// Every problem type the service answers with.
pub const PROBLEM_TYPES: [ProblemType; 18] = [
    ProblemType {
        name: "bad-request",
        status: 400,
        title: "Bad request",
        code: "bad_request",
        meaning: "The request is malformed: a body that is not JSON or not declared as JSON, \
                  a bad UUID in a path, an unparsable query, or HTTP that cannot be read. \
                  Sending it again unchanged fails again.",
    },
    ProblemType {
        name: "token-invalid",
        status: 401,
        title: "Token invalid",
        code: "token_invalid",
        meaning: "The credential is missing, malformed, forged, expired or of the wrong kind \
                  (a user, queue or admin token where another is wanted). Get a new one.",
    },
    ProblemType {
        name: "token-not-active",
        status: 403,
        title: "Token not active",
        code: "token_not_active",
        meaning: "The queue token is genuine but cannot do this yet or here: it is still \
                  waiting in the line, or it is for another concert.",
    },
    ProblemType {
        name: "forbidden",
        status: 403,
        title: "Forbidden",
        code: "forbidden",
        meaning: "The user token is genuine but names another user than the path or body.",
    },
    ProblemType {
        name: "not-found",
        status: 404,
        title: "Not found",
        code: "not_found",
        meaning: "No such concert, date, seat, reservation or route (or it is not yours).",
    },
    ProblemType {
        name: "insufficient-balance",
        status: 402,
        title: "Insufficient balance",
        code: "insufficient_balance",
        meaning: "The payment costs more than the wallet holds. Nothing changed: charge the \
                  wallet and pay again while the hold lasts.",
    },
    ProblemType {
        name: "seat-unavailable",
        status: 409,
        title: "Seat unavailable",
        code: "seat_unavailable",
        meaning: "Someone else holds or bought the seat. Pick another.",
    },
    ProblemType {
        name: "hold-expired",
        status: 409,
        title: "Hold expired",
        code: "hold_expired",
        meaning: "The hold's time ran out before it was paid; the seat is free again for \
                  anyone. Hold it (or another) again.",
    },
    ProblemType {
        name: "already-paid",
        status: 409,
        title: "Already paid",
        code: "already_paid",
        meaning: "The reservation is paid for already; it was not charged twice.",
    },
    ProblemType {
        name: "payload-too-large",
        status: 413,
        title: "Payload too large",
        code: "payload_too_large",
        meaning: "The body is over 64 KiB.",
    },
    ProblemType {
        name: "validation-failed",
        status: 422,
        title: "Validation failed",
        code: "validation_failed",
        meaning: "The request is well-formed, but a value is missing, of the wrong type or \
                  out of range (a field of the body, a value of the query); detail names it.",
    },
    ProblemType {
        name: "rate-limited",
        status: 429,
        title: "Rate limited",
        code: "rate_limited",
        meaning: "Too many requests, a full waiting line, or too many event streams for one \
                  token. Try again after the seconds Retry-After says.",
    },
    ProblemType {
        name: "method-not-allowed",
        status: 405,
        title: "Method not allowed",
        code: "bad_request",
        meaning: "The route exists but not with this method; Allow lists the methods it takes.",
    },
    ProblemType {
        name: "request-timeout",
        status: 408,
        title: "Request timeout",
        code: "bad_request",
        meaning: "The request's body was not all sent within the request timeout.",
    },
    ProblemType {
        name: "request-header-fields-too-large",
        status: 431,
        title: "Request header fields too large",
        code: "bad_request",
        meaning: "The request's head is larger than 32 KiB, or has more than 100 header lines \
                  over HTTP/1.1. The connection is closed.",
    },
    ProblemType {
        name: "uri-too-long",
        status: 414,
        title: "URI too long",
        code: "bad_request",
        meaning: "The request's URI is too long. The connection is closed.",
    },
    ProblemType {
        name: "unavailable",
        status: 503,
        title: "Service unavailable",
        code: "unavailable",
        meaning: "The database is unreachable or too slow, or the service is not ready. Nothing \
                  was half-done: the request took effect in full or not at all. Retry after the \
                  seconds Retry-After says; a request sent with an Idempotency-Key may be \
                  sent again with it.",
    },
    ProblemType {
        name: "internal",
        status: 500,
        title: "Internal error",
        code: "internal",
        meaning: "Something unexpected failed inside the service; it was logged with the \
                  request's id.",
    },
];

/// The documented problem type named `name`.
fn named(name: &str) -> Option<&'static ProblemType> {
    PROBLEM_TYPES.iter().find(|kind| kind.name == name)
}

/// The title of the problem type named `name`, which must be documented.
pub(crate) fn title_of(name: &str) -> &'static str {
    named(name).expect("a documented problem type").title
}

pub fn router() -> Router<AppState> {
    super::headers::protect_pages(
        Router::new().route("/problems/{name}", get(problem_type)),
        super::headers::PAGE_POLICY,
    )
}

async fn problem_type(Path(name): Path<String>) -> Result<Response, ApiError> {
    let found = named(&name).ok_or(ApiError::NotFound("problem type"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        page(found),
    )
        .into_response())
}

/// The page of one problem type (every text in it is the service's own).
fn page(kind: &ProblemType) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\n\
         <body><main>\n<h1>{title}</h1>\n<p>HTTP status <strong>{status}</strong>, \
         <code>code</code> <strong>{code}</strong>.</p>\n<p>{meaning}</p>\n\
         <p>The problem document's <code>detail</code> says what happened in this case. \
         The whole API: <a href=\"/docs\">/docs</a>.</p>\n</main></body>\n</html>\n",
        title = kind.title,
        status = kind.status,
        code = kind.code,
        meaning = kind.meaning,
    )
}
