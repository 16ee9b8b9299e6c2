//! Logs and metrics: the tracing subscriber and the Prometheus recorder with
//! the description of every metric. The HTTP side of both (the request span,
//! the request metrics) is in `api::middleware`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use cqrs_es::Aggregate;

use crate::aggregates::{Concert, QueueTicket, Seat, Wallet};
use crate::config::LogFormat;

/// The `aggregate` label of a payment's metrics: it spans three aggregates.
pub const PAYMENT: &str = "Payment";

/// How a command went, as `concert_commands_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    Ok,
    /// Refused by its aggregate.
    Rejected,
    /// Lost an optimistic race too often.
    Conflict,
    Error,
}

impl CommandOutcome {
    const ALL: [CommandOutcome; 4] = [
        CommandOutcome::Ok,
        CommandOutcome::Rejected,
        CommandOutcome::Conflict,
        CommandOutcome::Error,
    ];

    /// Counts one command of `aggregate` that went this way.
    pub fn count(self, aggregate: &'static str) {
        metrics::counter!("concert_commands_total", "aggregate" => aggregate, "outcome" => self.label())
            .increment(1);
    }

    fn label(self) -> &'static str {
        match self {
            CommandOutcome::Ok => "ok",
            CommandOutcome::Rejected => "rejected",
            CommandOutcome::Conflict => "conflict",
            CommandOutcome::Error => "error",
        }
    }
}

/// How a payment ended, as `concert_payments_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEnd {
    Completed,
    /// Refunded by the recovery of a payment left half-way.
    Refunded,
}

impl PaymentEnd {
    const ALL: [PaymentEnd; 2] = [PaymentEnd::Completed, PaymentEnd::Refunded];

    pub fn count(self) {
        metrics::counter!("concert_payments_total", "outcome" => self.label()).increment(1);
    }

    fn label(self) -> &'static str {
        match self {
            PaymentEnd::Completed => "completed",
            PaymentEnd::Refunded => "refunded",
        }
    }
}

/// Installs the global log subscriber: `RUST_LOG` filters (default `info`,
/// sqlx's at `warn`; a `RUST_LOG` that is no filter is said so, and the
/// default kept).
pub fn init_logging(format: LogFormat) {
    const DEFAULT: &str = "info,sqlx=warn";
    // An empty RUST_LOG reads as unset (it filtered out all but errors).
    let given = std::env::var_os("RUST_LOG").filter(|given| !given.is_empty());
    let (filter, refused) = match given.as_ref().map(|_| EnvFilter::try_from_default_env()) {
        None => (EnvFilter::new(DEFAULT), None),
        Some(Ok(filter)) => (filter, None),
        Some(Err(error)) => (EnvFilter::new(DEFAULT), given.map(|given| (given, error))),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr piped into a reader that
        // has gone, as `concert serve 2>&1 | head`) is dropped: reporting it
        // on that same stderr panicked and stopped the service.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            // The request span is the only span; listing it twice doubles each line.
            .with_span_list(false)
            .try_init(),
        // Colours only for a terminal: a log file would hold their escapes.
        LogFormat::Pretty => builder
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    if let Some((given, error)) = refused {
        tracing::warn!(
            rust_log = %given.to_string_lossy(),
            %error,
            "RUST_LOG is not a log filter; logging with the default ({DEFAULT})"
        );
    }
}

/// The process's Prometheus recorder, installed on first use (a process has one).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            // Jobs per batch (commands, queue entries): powers of two up to the cap.
            let batch_sizes = [
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), &buckets)
                .ok()?
                .set_buckets_for_metric(Matcher::Suffix("_batch_size".to_string()), &batch_sizes)
                .ok()?
                .install_recorder()
                .ok()?;
            describe_metrics();
            zero_counters();
            Some(handle)
        })
        .clone()
}

/// Every counter whose labels are known in advance shows from the start at
/// zero: a series that appears only with its first increment is invisible to
/// `rate()` and `increase()` over the window it appears in, so the first
/// unstorable value, lost race or refunded payment would not alert.
fn zero_counters() {
    let aggregates = [Concert::TYPE, Seat::TYPE, Wallet::TYPE, QueueTicket::TYPE];
    for aggregate in aggregates.into_iter().chain([PAYMENT]) {
        for outcome in CommandOutcome::ALL {
            metrics::counter!("concert_commands_total", "aggregate" => aggregate, "outcome" => outcome.label())
                .increment(0);
        }
        metrics::counter!("concert_pipeline_lost_races_total", "aggregate" => aggregate)
            .increment(0);
    }
    for aggregate in aggregates {
        metrics::counter!("concert_pipeline_unstorable_total", "aggregate" => aggregate)
            .increment(0);
        metrics::counter!("concert_events_appended_total", "aggregate" => aggregate).increment(0);
    }
    for listing in ["dates", "seats", "standing"] {
        for source in ["memory", "database"] {
            metrics::counter!("concert_listings_total", "listing" => listing, "source" => source)
                .increment(0);
        }
    }
    for end in PaymentEnd::ALL {
        metrics::counter!("concert_payments_total", "outcome" => end.label()).increment(0);
    }
    metrics::counter!("concert_holds_expired_total").increment(0);
    metrics::counter!("concert_holds_refused_from_memory_total").increment(0);
    metrics::counter!("concert_batched_work_abandoned_total").increment(0);
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
        "concert_batched_work_abandoned_total",
        "Commands, queue entries and reads dropped before a batch took them, their request having given up"
    );
    describe_counter!(
        "concert_commands_total",
        "Commands handled, by aggregate and outcome (ok, rejected, conflict, error)"
    );
    describe_histogram!(
        "concert_pipeline_batch_size",
        Unit::Count,
        "Commands decided and committed together in one batch, by aggregate"
    );
    describe_histogram!(
        "concert_queue_entry_batch_size",
        Unit::Count,
        "Queue entries planned (numbered) together in one statement"
    );
    describe_histogram!(
        "concert_hold_read_batch_size",
        Unit::Count,
        "Holds whose ticket and seat were read together in one query"
    );
    describe_histogram!(
        "concert_payment_read_batch_size",
        Unit::Count,
        "Payments whose ticket and reservation were read together in one query"
    );
    describe_counter!(
        "concert_pipeline_lost_races_total",
        "Streams of a batch another writer appended to first (their commands are decided again)"
    );
    describe_counter!(
        "concert_pipeline_unstorable_total",
        "Streams whose commit the database refused for a value (a data exception): their commands are answered 400"
    );
    describe_counter!(
        "concert_listings_total",
        "Date and seat listings and looks at a queue token's place answered, by listing (dates, seats, standing) and source (memory: the live feed; database: the read models)"
    );
    describe_counter!(
        "concert_holds_refused_from_memory_total",
        "Holds of a seat the live feed's memory shows as taken, refused without a query"
    );
    describe_histogram!(
        "concert_live_feed_read_seconds",
        Unit::Seconds,
        "Time the live feed takes to position, read and fan out what was committed since its last read"
    );
    describe_gauge!(
        "concert_live_seat_subscribers",
        "Open seat-map streams on this instance"
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
