//! The web pages: the booking page at `/` and the auditors' page at
//! `/audit`, with their scripts, style sheet and icon compiled into the binary
//! (`web/`), so they work without internet access. A strict
//! Content-Security-Policy keeps them from loading anything from elsewhere
//! (`headers::protect_pages`).
//! With `serve --demo`, the booking page signs in as a new sample user
//! through `POST /api/v1/demo/user-tokens`; the auditors' page reads the
//! audit's result from `GET /api/v1/audit/report` (admin).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::Admin;
use super::error::{ApiError, Problem};
use super::extract::Query;
use crate::audit::Checkpoint;
use crate::ids::UserId;
use crate::state::AppState;

/// How long a sample user's token lives.
const SAMPLE_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Each embedded file: its path, content type and text.
const ASSETS: [(&str, &str, &str); 13] = [
    ("/", HTML, include_str!("../../web/index.html")),
    ("/audit", HTML, include_str!("../../web/audit.html")),
    ("/assets/app.js", JS, include_str!("../../web/app.js")),
    (
        "/assets/booking-session.js",
        JS,
        include_str!("../../web/booking-session.js"),
    ),
    (
        "/assets/booking-streams.js",
        JS,
        include_str!("../../web/booking-streams.js"),
    ),
    (
        "/assets/booking-admission.js",
        JS,
        include_str!("../../web/booking-admission.js"),
    ),
    (
        "/assets/seat-map.js",
        JS,
        include_str!("../../web/seat-map.js"),
    ),
    (
        "/assets/booking-hold.js",
        JS,
        include_str!("../../web/booking-hold.js"),
    ),
    ("/assets/audit.js", JS, include_str!("../../web/audit.js")),
    ("/assets/common.js", JS, include_str!("../../web/common.js")),
    (
        "/assets/style.css",
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    ),
    ("/favicon.svg", SVG, FAVICON),
    // Browsers ask for this path whatever the pages link to; current ones
    // take an SVG there too, and a 404 would log an error on every load.
    ("/favicon.ico", SVG, FAVICON),
];
const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";
const FAVICON: &str = include_str!("../../web/favicon.svg");

pub fn router() -> Router<AppState> {
    let mut pages = Router::new();
    for (path, content_type, body) in ASSETS {
        let etag = etag_of(body);
        pages = pages.route(
            path,
            get(move |headers: HeaderMap| page(content_type, body, etag, headers)),
        );
    }
    super::headers::protect_pages(pages, super::headers::PAGE_POLICY)
        .route("/api/v1/demo/user-tokens", post(mint_sample_user))
        .route("/api/v1/audit/report", get(audit_report))
}

/// An embedded file, checked with the server on every load (a new binary's
/// pages are seen at once): `304` with nothing more when the browser's copy
/// is this one, so that a reload moves no page again. `router` adds the
/// pages' protections.
async fn page(
    content_type: &'static str,
    body: &'static str,
    etag: HeaderValue,
    request: HeaderMap,
) -> Response {
    let cached = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .any(|tags| names_this(tags, &etag));
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, etag),
    ];
    if cached {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))];
    (content_type, headers, body).into_response()
}

/// The file's validator: its SHA-256, cut to 128 bits, the same on every
/// instance of one build.
fn etag_of(body: &str) -> HeaderValue {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(body.as_bytes());
    let hex: String = digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex digits in quotes are a header value")
}

/// Whether an `If-None-Match` value names `etag` (RFC 9110 §13.1.2: `*`, or
/// a list compared weakly, so `W/"…"` matches too).
fn names_this(tags: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(tags) = tags.to_str() else {
        return false;
    };
    let etag = etag.to_str().unwrap_or_default();
    tags.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// The OpenAPI description of the two routes the pages call.
#[derive(utoipa::OpenApi)]
#[openapi(paths(mint_sample_user, audit_report))]
pub struct PagesDoc;

/// A user token for a new sample user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SampleUserResponse {
    token: String,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
}

/// Only with `serve --demo` and the service as its own issuer: a token for a
/// fresh random user, who owns nothing yet. Otherwise `404 not_found`.
#[utoipa::path(post, path = "/api/v1/demo/user-tokens", tag = "pages",
    operation_id = "mint_sample_user",
    responses(
        (status = 201, body = SampleUserResponse,
            description = "A user token, valid for an hour, for a new user who owns nothing yet"),
        (status = 404, body = Problem, content_type = "application/problem+json",
            description = "Not served with `--demo`, or user tokens come from an identity provider"),
    ))]
async fn mint_sample_user(State(app): State<AppState>) -> Result<Response, ApiError> {
    if !app.demo {
        return Err(ApiError::NotFound("route"));
    }
    let minted = app
        .users
        .mint(UserId(Uuid::new_v4()), SAMPLE_TOKEN_TTL)
        .ok_or(ApiError::NotFound("route"))?;
    let body = SampleUserResponse {
        token: minted.token,
        user_id: minted.user_id.0,
        expires_at: minted.expires_at,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// The audit's result, as `concert audit` prints it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AuditReportResponse {
    events: u64,
    violations: Vec<ViolationResponse>,
    /// The log's digest at the last event read: kept elsewhere and passed
    /// back as `checkpoint`, it proves the log up to there unchanged.
    checkpoint: CheckpointResponse,
    /// The settings the log was held to, as the service recorded them.
    held_to: HeldToResponse,
    /// Given a `checkpoint`, whether the log up to its position is still
    /// the one it was taken of (its digest, and no event there edited under
    /// its old hash); `null` without one.
    matches_checkpoint: Option<bool>,
}

/// The settings no event states, which the audit takes from what each
/// serve recorded (README, `concert audit`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct HeldToResponse {
    /// The active limit over the log, e.g. `3, then 2 after position 7`.
    active_limits: String,
    /// The TTLs served, e.g. `CONCERT_HOLD_TTL_SECS=300 and
    /// CONCERT_QUEUE_ACTIVE_TTL_SECS=600 after position 0`; `null` when no
    /// serve recorded any, and durations were not checked.
    ttls: Option<String>,
}

/// A digest of the whole log up to a position (README, "Tamper evidence").
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct CheckpointResponse {
    position: i64,
    /// SHA-256, hex.
    digest: String,
    /// `position:digest`, as `concert audit --checkpoint` and this route take it.
    text: String,
}

/// What the audit is held to.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct AuditReportQuery {
    /// A checkpoint an earlier audit returned (`position:digest`): the log up
    /// to that position must still be the one it was taken of.
    checkpoint: Option<String>,
}

/// A broken rule and the events that show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ViolationResponse {
    rule: &'static str,
    detail: String,
    events: Vec<String>,
}

/// Runs the whole audit now (admin token): it reads the entire log once.
#[utoipa::path(get, path = "/api/v1/audit/report", tag = "audit",
    operation_id = "audit_report", security(("admin_token" = [])), params(AuditReportQuery),
    responses(
        (status = 200, body = AuditReportResponse,
            description = "Every invariant checked over the whole log, as `concert audit` does; \
                           `violations` is empty when the history passes"),
        (status = 400, body = Problem, content_type = "application/problem+json",
            description = "`checkpoint` is not `position:digest`"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn audit_report(
    State(app): State<AppState>,
    Query(query): Query<AuditReportQuery>,
    _admin: Admin,
) -> Result<axum::Json<AuditReportResponse>, ApiError> {
    let against = match query.checkpoint.as_deref().filter(|text| !text.is_empty()) {
        Some(text) => Some(Checkpoint::parse(text).map_err(ApiError::BadRequest)?),
        None => None,
    };
    let checkpointed = against.as_ref().map(|against| against.position);
    // The audit's progress callback is not `Send`, so it runs on a thread
    // of its own rather than in this request's task.
    // Dropped with this request (its time limit passed, its client left),
    // the guard calls the audit off at its next batch.
    let call_off = crate::audit::CallOff::default();
    // The limits the service was served with over the log (this instance
    // recorded its own at start), as `concert audit` takes them.
    let limits = crate::served_settings::served_limits(&app.pool)
        .await?
        .unwrap_or_else(|| app.config.queue_active_max.into());
    let active_limits = limits.to_string();
    let (pool, called_off) = (app.pool.clone(), call_off.flag());
    let handle = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || {
        let mut progress = |_, _| {};
        let audit = crate::audit::audit_unless_called_off(
            &pool,
            limits,
            against,
            &mut progress,
            &called_off,
        );
        handle.block_on(audit)
    })
    .await
    .map_err(|error| ApiError::Unavailable(format!("the audit stopped: {error}")))?
    .map_err(|error| match error {
        crate::audit::AuditError::Database(error) => ApiError::from(error),
        called_off @ crate::audit::AuditError::CalledOff => {
            ApiError::Unavailable(called_off.to_string())
        }
    })?;
    let checkpoint = CheckpointResponse {
        position: report.checkpoint.position,
        digest: report.checkpoint.digest_hex(),
        text: report.checkpoint.to_string(),
    };
    let held_to = HeldToResponse {
        active_limits,
        ttls: report.ttls.as_ref().map(ToString::to_string),
    };
    let matches_checkpoint =
        checkpointed.map(|position| crate::audit::holds_checkpoint(&report.violations, position));
    Ok(axum::Json(AuditReportResponse {
        events: report.events,
        checkpoint,
        held_to,
        matches_checkpoint,
        violations: report
            .violations
            .into_iter()
            .map(|violation| ViolationResponse {
                rule: violation.rule,
                detail: violation.detail,
                events: violation.events,
            })
            .collect(),
    }))
}
