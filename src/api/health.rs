//! `/healthz` and `/readyz`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Health of the process or its dependencies.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok` or `unavailable`.
    status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = HealthResponse)))]
async fn healthz() -> axum::Json<HealthResponse> {
    axum::Json(HealthResponse {
        status: "ok".into(),
    })
}

/// The database is reachable and migrated.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
async fn readyz(State(app): State<AppState>) -> (StatusCode, axum::Json<HealthResponse>) {
    match crate::db::migrations_applied(&app.pool).await {
        Ok(true) => (
            StatusCode::OK,
            axum::Json(HealthResponse {
                status: "ok".into(),
            }),
        ),
        Ok(false) | Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(HealthResponse {
                status: "unavailable".into(),
            }),
        ),
    }
}
