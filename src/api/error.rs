//! `ApiError`: every way a request can fail, rendered as an RFC 9457
//! `application/problem+json` body with the `code` clients switch on.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cqrs_es::AggregateError;
use serde::Serialize;

use crate::booking::BookingError;
use crate::live::seat_map::MapError;
use crate::money::Won;

/// A request that failed, and why.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("the token is missing, unknown or expired")]
    TokenInvalid,
    #[error("{0}")]
    TokenNotActive(&'static str),
    /// A genuine user token naming another user than the request.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Told to the holder of a queue token, who may not read the wallet:
    /// the price, not the balance.
    #[error("the balance is below the price {amount}")]
    InsufficientBalance { amount: Won },
    #[error("the seat is held or sold")]
    SeatUnavailable,
    /// A seat of a date that has begun: unavailable, as a sold one is.
    #[error("the date has begun; its seats are no longer sold")]
    DateBegun,
    #[error("the hold has lapsed")]
    HoldExpired,
    #[error("the reservation is already paid")]
    AlreadyPaid,
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    /// A head hyper took whole (on a connection that had served a request,
    /// its buffer holds more than the limit) that is still too large.
    #[error("the request's head (its line and headers) is larger than 32 KiB")]
    HeadTooLarge,
    #[error("{0}")]
    Validation(String),
    #[error("too many queue entries from this address or user; retry later")]
    RateLimited,
    #[error("the waiting queue of this concert is full; retry later")]
    QueueFull,
    #[error("this token has {0} event streams open already; close one first")]
    TooManyStreams(usize),
    #[error("the method is not allowed here")]
    MethodNotAllowed,
    /// The client did not send its whole body within the request timeout.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    /// Infrastructure trouble: the database is down or too busy. Safe to retry.
    #[error("the service is unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupted data; logged in full, reported vaguely.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The problem document (RFC 9457) plus the machine-readable `code`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// One of the codes of the API's error table.
    #[schema(value_type = ProblemCode)]
    pub code: String,
}

/// The machine-readable problem codes: the error table of the API.
#[allow(dead_code)] // only describes `Problem::code` in the OpenAPI spec
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ProblemCode {
    BadRequest,
    TokenInvalid,
    TokenNotActive,
    Forbidden,
    NotFound,
    InsufficientBalance,
    SeatUnavailable,
    HoldExpired,
    AlreadyPaid,
    PayloadTooLarge,
    ValidationFailed,
    RateLimited,
    Unavailable,
    Internal,
}

impl ApiError {
    /// The HTTP status, the stable code and a short title.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request", "Bad request"),
            ApiError::TokenInvalid => (StatusCode::UNAUTHORIZED, "token_invalid", "Token invalid"),
            ApiError::TokenNotActive(_) => (
                StatusCode::FORBIDDEN,
                "token_not_active",
                "Token not active",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::InsufficientBalance { .. } => (
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_balance",
                "Insufficient balance",
            ),
            ApiError::SeatUnavailable | ApiError::DateBegun => {
                (StatusCode::CONFLICT, "seat_unavailable", "Seat unavailable")
            }
            ApiError::HoldExpired => (StatusCode::CONFLICT, "hold_expired", "Hold expired"),
            ApiError::AlreadyPaid => (StatusCode::CONFLICT, "already_paid", "Already paid"),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            // The contract's codes have no row of their own for 431.
            ApiError::HeadTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "bad_request",
                "Request header fields too large",
            ),
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
            ),
            ApiError::RateLimited | ApiError::QueueFull | ApiError::TooManyStreams(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Rate limited",
            ),
            // The contract's codes have no row of their own for 408.
            ApiError::RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "bad_request",
                "Request timeout",
            ),
            // The contract's codes have no row of their own for 405.
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "bad_request",
                "Method not allowed",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// When a refusal that passes is worth trying again (`Retry-After`): a
    /// busy database or a rate in a second, a stream once another of the
    /// token's has closed, a full line once some of it has moved.
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::Unavailable(_) | ApiError::RateLimited => Some(1),
            ApiError::TooManyStreams(_) => Some(5),
            ApiError::QueueFull => Some(30),
            _ => None,
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        let detail = match self {
            // A request cut short at its commit may have taken effect: only
            // a key tells a retry from a second request.
            ApiError::Unavailable(_) => "the database is unavailable or too slow; retry later. \
                Nothing was half-done: the request took effect in full or not at all. One sent \
                with an Idempotency-Key may be sent again with it; check before repeating \
                another"
                .to_string(),
            ApiError::Internal(_) => "an unexpected error occurred; it has been logged".to_string(),
            other => other.to_string(),
        };
        // A type names one kind of problem with one title (RFC 9457): the
        // statuses the contract files under `bad_request` have their own.
        let kind = match status {
            StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed".to_string(),
            StatusCode::REQUEST_TIMEOUT => "request-timeout".to_string(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
                "request-header-fields-too-large".to_string()
            }
            _ => code.replace('_', "-"),
        };
        Problem {
            kind: format!("/problems/{kind}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            code: code.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(cause) => {
                tracing::warn!(%cause, "request failed: database unavailable")
            }
            ApiError::Internal(cause) => tracing::error!(%cause, "request failed"),
            _ => {}
        }
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // RFC 9110 §11.6.1: a 401 names the scheme that would be accepted.
        // `headers::api_answers` adds the error when a credential was sent.
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, super::headers::BEARER_CHALLENGE);
        }
        if let Some(seconds) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<BookingError> for ApiError {
    fn from(error: BookingError) -> Self {
        match error {
            BookingError::OutOfRange(detail) => ApiError::Validation(detail),
            BookingError::Malformed(detail) => ApiError::BadRequest(detail),
            BookingError::NotFound(what) => ApiError::NotFound(what),
            BookingError::TicketNotActive(why) => ApiError::TokenNotActive(why),
            BookingError::TicketExpired => ApiError::TokenInvalid,
            BookingError::InsufficientBalance { amount, .. } => {
                ApiError::InsufficientBalance { amount }
            }
            BookingError::SeatUnavailable => ApiError::SeatUnavailable,
            BookingError::DateBegun => ApiError::DateBegun,
            BookingError::HoldExpired => ApiError::HoldExpired,
            BookingError::AlreadyPaid => ApiError::AlreadyPaid,
            BookingError::QueueFull => ApiError::QueueFull,
            BookingError::Unavailable(cause) => ApiError::Unavailable(cause),
            BookingError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

/// A date's seat map that could not be had: the date does not exist (404),
/// or the database failed.
impl From<MapError> for ApiError {
    fn from(error: MapError) -> Self {
        match error {
            MapError::UnknownDate => ApiError::NotFound("date"),
            MapError::Database(error) => error.into(),
        }
    }
}

/// Read-model queries in handlers fail as booking steps do.
impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        BookingError::from(error).into()
    }
}

/// Commands sent by handlers fail as booking steps do.
impl<E> From<AggregateError<E>> for ApiError
where
    E: std::error::Error + Into<BookingError>,
{
    fn from(error: AggregateError<E>) -> Self {
        BookingError::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::problem_types::PROBLEM_TYPES;

    /// Each type has one title, status and code (RFC 9457 §3.1.3), as its
    /// page at `/problems/{name}` says.
    #[test]
    fn each_problem_type_is_documented_with_its_one_title() {
        let every = [
            ApiError::BadRequest(String::new()),
            ApiError::TokenInvalid,
            ApiError::TokenNotActive(""),
            ApiError::Forbidden(""),
            ApiError::NotFound(""),
            ApiError::InsufficientBalance { amount: Won(1) },
            ApiError::SeatUnavailable,
            ApiError::DateBegun,
            ApiError::HoldExpired,
            ApiError::AlreadyPaid,
            ApiError::PayloadTooLarge,
            ApiError::HeadTooLarge,
            ApiError::Validation(String::new()),
            ApiError::RateLimited,
            ApiError::QueueFull,
            ApiError::TooManyStreams(1),
            ApiError::MethodNotAllowed,
            ApiError::RequestTimeout(1),
            ApiError::Unavailable(String::new()),
            ApiError::Internal(String::new()),
        ];
        for error in every {
            let problem = error.problem();
            let documented = PROBLEM_TYPES
                .iter()
                .find(|kind| format!("/problems/{}", kind.name) == problem.kind)
                .unwrap_or_else(|| panic!("{} has no page", problem.kind));
            assert_eq!(
                (documented.title, documented.status, documented.code),
                (
                    problem.title.as_str(),
                    problem.status,
                    problem.code.as_str()
                ),
                "{}",
                problem.kind
            );
        }
        assert_eq!(
            ApiError::MethodNotAllowed.problem().kind,
            "/problems/method-not-allowed"
        );
    }
}
