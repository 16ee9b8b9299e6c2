//! The operational endpoints: `/healthz`, `/readyz` and `/metrics`.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::error::Problem;
use crate::private_postgres::ServerHealth;
use crate::state::AppState;

/// Most committed events the read models may still have to apply while the
/// instance reports ready. Normally the lag is a few events in flight; a large
/// one means projection updates are failing and reads would be stale.
pub const MAX_PROJECTION_LAG: i64 = 10_000;
/// Longest the readiness checks may take together; a slower database is "not ready".
const READY_TIMEOUT: Duration = Duration::from_secs(3);
/// The media type of the Prometheus text format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Health of the process.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`.
    status: String,
}

/// The outcome of one readiness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Failed,
    /// Not run because an earlier check failed.
    Skipped,
}

/// Each readiness check, in the order they run.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct ReadinessChecks {
    /// The private PostgreSQL server runs (absent with `DATABASE_URL`: not ours to watch).
    #[serde(skip_serializing_if = "Option::is_none")]
    private_server: Option<CheckStatus>,
    /// The database answers.
    database: CheckStatus,
    /// Every migration this binary knows is applied.
    migrations: CheckStatus,
    /// The read models lag the event log by fewer than 10,000 events.
    projections: CheckStatus,
    /// `failed` while the instance drains before it stops
    /// (`CONCERT_SHUTDOWN_DRAIN_SECS`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopping: Option<CheckStatus>,
}

/// The supervised private PostgreSQL server, when `concert` runs one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PrivateServerReport {
    /// `up`, or `restarting` while it is down.
    state: String,
    /// Restarts since the service started.
    restarts: u64,
    /// Why it died last, if it ever did.
    last_cause: Option<String>,
    /// Seconds it has been down, while it is.
    down_secs: Option<f64>,
}

impl PrivateServerReport {
    fn current() -> Option<Self> {
        let health = ServerHealth::current()?;
        Some(Self {
            state: if health.up { "up" } else { "restarting" }.into(),
            restarts: health.restarts,
            last_cause: health.last_cause,
            down_secs: health.down_since.map(|at| at.elapsed().as_secs_f64()),
        })
    }
}

/// The instance is ready for traffic.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessResponse {
    /// `ok`.
    status: String,
    checks: ReadinessChecks,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_server: Option<PrivateServerReport>,
    /// Committed events the read models have not applied yet.
    projection_lag_events: i64,
}

/// The instance is not ready: a problem document naming the failed checks.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotReadyProblem {
    #[serde(flatten)]
    problem: Problem,
    checks: ReadinessChecks,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_server: Option<PrivateServerReport>,
    /// Committed events the read models have not applied yet, when known.
    projection_lag_events: Option<i64>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "the process is up", body = HealthResponse)))]
async fn healthz() -> axum::Json<HealthResponse> {
    axum::Json(HealthResponse {
        status: "ok".into(),
    })
}

/// The database answers, is migrated, and the read models are caught up
/// within 10,000 events.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "ready for traffic", body = ReadinessResponse),
        (status = 503, description = "not ready; `checks` names the failed check",
            body = NotReadyProblem, content_type = "application/problem+json")))]
async fn readyz(State(app): State<AppState>) -> Response {
    let private_server = PrivateServerReport::current();
    if app.draining.is_on() {
        // Stopping soon: a load balancer is to send nothing new.
        return not_ready(
            ReadinessChecks {
                private_server: None,
                database: CheckStatus::Skipped,
                migrations: CheckStatus::Skipped,
                projections: CheckStatus::Skipped,
                stopping: Some(CheckStatus::Failed),
            },
            None,
            private_server,
        );
    }
    if private_server
        .as_ref()
        .is_some_and(|server| server.state != "up")
    {
        // No need to wait for the pool's timeout: the server is known to be down.
        return not_ready(
            ReadinessChecks {
                private_server: Some(CheckStatus::Failed),
                database: CheckStatus::Skipped,
                migrations: CheckStatus::Skipped,
                projections: CheckStatus::Skipped,
                stopping: None,
            },
            None,
            private_server,
        );
    }
    let (mut checks, lag) = tokio::time::timeout(READY_TIMEOUT, check_readiness(&app))
        .await
        .unwrap_or_else(|_| {
            tracing::warn!("readiness: the database did not answer in time");
            (
                ReadinessChecks {
                    private_server: None,
                    database: CheckStatus::Failed,
                    migrations: CheckStatus::Skipped,
                    projections: CheckStatus::Skipped,
                    stopping: None,
                },
                None,
            )
        });
    checks.private_server = private_server.as_ref().map(|_| CheckStatus::Ok);
    match lag {
        Some(lag) if checks.projections == CheckStatus::Ok => axum::Json(ReadinessResponse {
            status: "ok".into(),
            checks,
            private_server,
            projection_lag_events: lag,
        })
        .into_response(),
        _ => not_ready(checks, lag, private_server),
    }
}

/// Runs the checks in order; a failed one skips those that depend on it.
async fn check_readiness(app: &AppState) -> (ReadinessChecks, Option<i64>) {
    let mut checks = ReadinessChecks {
        private_server: None,
        database: CheckStatus::Failed,
        migrations: CheckStatus::Skipped,
        projections: CheckStatus::Skipped,
        stopping: None,
    };
    match crate::db::migrations_applied(&app.pool).await {
        Ok(applied) => {
            checks.database = CheckStatus::Ok;
            checks.migrations = if applied {
                CheckStatus::Ok
            } else {
                CheckStatus::Failed
            };
        }
        Err(error) => tracing::warn!(%error, "readiness: the database does not answer"),
    }
    if checks.migrations != CheckStatus::Ok {
        return (checks, None);
    }
    match app.projection_lag.state(&app.pool).await {
        Ok(state) => {
            checks.projections = if state.projection_lag < MAX_PROJECTION_LAG {
                CheckStatus::Ok
            } else {
                tracing::warn!(
                    lag = state.projection_lag,
                    "readiness: the read models are behind the event log"
                );
                CheckStatus::Failed
            };
            (checks, Some(state.projection_lag))
        }
        Err(error) => {
            tracing::warn!(%error, "readiness: cannot read the projection lag");
            checks.projections = CheckStatus::Failed;
            (checks, None)
        }
    }
}

fn not_ready(
    checks: ReadinessChecks,
    lag: Option<i64>,
    private_server: Option<PrivateServerReport>,
) -> Response {
    let failed: Vec<&str> = [
        (
            "private_server",
            checks.private_server.unwrap_or(CheckStatus::Ok),
        ),
        ("database", checks.database),
        ("migrations", checks.migrations),
        ("projections", checks.projections),
        ("stopping", checks.stopping.unwrap_or(CheckStatus::Ok)),
    ]
    .into_iter()
    .filter(|(_, status)| *status == CheckStatus::Failed)
    .map(|(name, _)| name)
    .collect();
    let problem = Problem {
        kind: "/problems/unavailable".into(),
        title: "Service unavailable".into(),
        status: StatusCode::SERVICE_UNAVAILABLE.as_u16(),
        detail: format!("not ready: the {} check failed", failed.join(" and ")),
        code: "unavailable".into(),
    };
    let body = NotReadyProblem {
        problem,
        checks,
        private_server,
        projection_lag_events: lag,
    };
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    // Like every `503 unavailable`: when to ask again.
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Every metric family in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, body = String, content_type = "text/plain", description = "Prometheus text format 0.0.4"),
        (status = 500, description = "no metrics recorder", body = Problem,
            content_type = "application/problem+json")))]
async fn metrics() -> Response {
    match crate::telemetry::metrics_handle() {
        Some(handle) => {
            let mut page = handle.render();
            crate::queue_gauges::render(&mut page);
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(PROMETHEUS_TEXT),
                )],
                page,
            )
                .into_response()
        }
        // Another recorder took the process's slot; nothing of ours to show.
        None => super::error::ApiError::Internal("no metrics recorder is installed".into())
            .into_response(),
    }
}
