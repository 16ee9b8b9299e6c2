//! The HTTP side of logs and metrics: one span and one log line per request,
//! and request counts and latencies by route, method and status.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Span;

/// The span of one request. It never records headers, so tokens and the admin
/// secret stay out of the logs. What is known only at the end (status,
/// latency, correlation id) goes on the request's log line instead: with JSON
/// logs, each field recorded on a span later re-parses and re-writes the
/// span's fields (about a tenth of a charge's server time).
pub fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| path.as_str());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %LoggedMethod(request.method().as_str()),
        route,
        request_id,
    )
}

/// Longest method logged whole. Any token is a method to HTTP, as long as
/// the request's head allows (32 KiB): a longer made-up one is logged cut to
/// this, with its length, so that one request cannot put kilobytes on its
/// log line.
const LOGGED_METHOD_MAX: usize = 32;

/// A method as the request's span records it.
struct LoggedMethod<'a>(&'a str);

impl std::fmt::Display for LoggedMethod<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = self.0;
        if method.len() <= LOGGED_METHOD_MAX {
            return f.write_str(method);
        }
        // Methods are ASCII tokens; the boundary check is for safety alone.
        let mut end = LOGGED_METHOD_MAX;
        while !method.is_char_boundary(end) {
            end -= 1;
        }
        write!(f, "{}…({} bytes)", &method[..end], method.len())
    }
}

/// Logs one line for the request, in its span, with the answer. The
/// correlation id is the one the events of this request carry (read back
/// from the `x-correlation-id` response header, which every answer but a
/// CORS preflight has).
pub fn log_request_finished<B>(response: &axum::http::Response<B>, latency: Duration, _: &Span) {
    let correlation_id = response
        .headers()
        .get(super::CORRELATION_HEADER)
        .and_then(|value| value.to_str().ok());
    tracing::info!(
        target: "concert::request",
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        correlation_id,
        "request finished"
    );
}

/// Counts requests and records their latency by route, method and status.
pub async fn record_http_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |path| path.as_str().to_string());
    // Any token is a method to HTTP: a label per made-up one would grow
    // the metrics without end.
    let method = match request.method().as_str() {
        known @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => known,
        _ => "other",
    }
    .to_string();
    let response = next.run(request).await;
    let labels = request_labels(route, method, response.status());
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
    metrics::histogram!("concert_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Counts an answer given before routing (hyper's own to a request it could
/// not parse, replaced), as the route `unparsed`: no method was read.
pub fn count_unparsed(status: StatusCode) {
    let labels = request_labels("unparsed".to_string(), "other".to_string(), status);
    metrics::counter!(REQUESTS_TOTAL, &labels).increment(1);
}

const REQUESTS_TOTAL: &str = "concert_http_requests_total";

fn request_labels(
    route: String,
    method: String,
    status: StatusCode,
) -> [(&'static str, String); 3] {
    [
        ("route", route),
        ("method", method),
        ("status", status.as_u16().to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_logged_whole_up_to_a_few_dozen_characters_and_cut_beyond() {
        for method in ["GET", "PROPFIND", &"M".repeat(LOGGED_METHOD_MAX)] {
            assert_eq!(LoggedMethod(method).to_string(), method);
        }
        let long = "X".repeat(20_000);
        let logged = LoggedMethod(&long).to_string();
        assert_eq!(
            logged,
            format!("{}…(20000 bytes)", "X".repeat(LOGGED_METHOD_MAX))
        );
        let just_over = "Y".repeat(LOGGED_METHOD_MAX + 1);
        assert!(LoggedMethod(&just_over)
            .to_string()
            .ends_with("…(33 bytes)"));
    }
}
