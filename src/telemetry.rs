//! Logs and metrics: the tracing subscriber, the Prometheus recorder, the
//! request span and the HTTP metrics.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::field::Empty;
use tracing::Span;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global log subscriber: `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            // The request span is the only span; listing it twice doubles each line.
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// The process's Prometheus recorder, installed on first use (a process has one).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), &buckets)
                .ok()?
                .install_recorder()
                .ok()?;
            describe_metrics();
            Some(handle)
        })
        .clone()
}

/// The `# HELP` lines of every metric family the service exports.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "concert_http_requests_total",
        "HTTP requests answered, by route, method and status"
    );
    describe_histogram!(
        "concert_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency, by route, method and status"
    );
    describe_counter!(
        "concert_commands_total",
        "Commands handled, by aggregate and outcome (ok, rejected, conflict, error)"
    );
    describe_counter!(
        "concert_events_appended_total",
        "Events appended to the log since this process started, by aggregate type"
    );
    describe_gauge!(
        "concert_event_log_position",
        "Highest position handed out in the event log"
    );
    describe_gauge!(
        "concert_projection_lag_events",
        "Committed events the read models have not applied yet"
    );
    describe_gauge!("concert_queue_waiting", "Waiting queue tokens, by concert");
    describe_gauge!("concert_queue_active", "Active queue tokens, by concert");
    describe_counter!(
        "concert_holds_expired_total",
        "Seat holds expired by the scheduler"
    );
    describe_counter!("concert_payments_total", "Payments, by outcome");
    describe_counter!(
        "concert_private_postgres_restarts_total",
        "Restarts of the private PostgreSQL server after it died"
    );
    describe_gauge!(
        "concert_private_postgres_up",
        "1 while the private PostgreSQL server runs, 0 while it is restarted"
    );
    describe_gauge!(
        "concert_db_pool_connections",
        "Database pool connections, by state (in_use, idle)"
    );
}

/// The span of one request. It never records headers, so tokens and the admin
/// secret stay out of the logs; `status`, `latency_ms` and `correlation_id`
/// are filled in by [`finish_request_span`].
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
        method = %request.method(),
        route,
        request_id,
        status = Empty,
        latency_ms = Empty,
        correlation_id = Empty,
    )
}

/// Completes the request span with the answer and logs one line for the request.
/// The correlation id is the one the events of this request carry (read back
/// from the `x-correlation-id` response header).
pub fn finish_request_span<B>(response: &axum::http::Response<B>, latency: Duration, span: &Span) {
    span.record("status", response.status().as_u16());
    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
    if let Some(correlation) = response
        .headers()
        .get(crate::api::CORRELATION_HEADER)
        .and_then(|value| value.to_str().ok())
    {
        span.record("correlation_id", correlation);
    }
    tracing::info!(target: "concert::request", "request finished");
}

/// Counts requests and records their latency by route, method and status.
pub async fn record_http_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched".to_string(), |path| path.as_str().to_string());
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("concert_http_requests_total", &labels).increment(1);
    metrics::histogram!("concert_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}
