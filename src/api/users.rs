//! `/users/{user_id}/tokens`: user tokens minted by the service (admin), for
//! operators and tests when no identity provider is configured.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::Admin;
use super::bounded::Bounded;
use super::error::{ApiError, Problem};
use super::extract::{body_bytes, json_object, Path};
use super::json_headers::check_json_headers;
use crate::identity::{DEFAULT_TTL_SECS, TTL_RANGE_SECS};
use crate::ids::UserId;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(mint_user_token))
}

/// How long the token is valid; the body may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct MintRequest {
    /// Seconds, 60..=86,400; 3,600 when left out.
    #[schema(value_type = Option<u64>, minimum = 60, maximum = 86400)]
    ttl_secs: Option<Bounded<{ *TTL_RANGE_SECS.start() as i64 }, { *TTL_RANGE_SECS.end() as i64 }>>,
}

/// A user token.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserTokenResponse {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
}

/// Mints a user token signed by the service's own key (admin token). With an identity provider configured, `404 not_found`.
#[utoipa::path(post, path = "/users/{user_id}/tokens", tag = "users", request_body(content = Option<MintRequest>),
    params(("user_id" = Uuid, Path, description = "the user the token names")),
    security(("admin_token" = [])),
    responses(
        (status = 201, body = UserTokenResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: an identity provider issues the tokens", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn mint_user_token(
    State(app): State<AppState>,
    Path(user_id): Path<Uuid>,
    _admin: Admin,
    request: Request,
) -> Result<(StatusCode, axum::Json<UserTokenResponse>), ApiError> {
    // With an identity provider the route does not exist, whatever the body.
    if !app.users.mints() {
        return Err(not_minting());
    }
    // The body may be left out; one that is sent is held to the rules of
    // every JSON body (content type, size, shape).
    let headers = request.headers().clone();
    let bytes = body_bytes(request, &app).await?;
    let body = if bytes.is_empty() {
        MintRequest::default()
    } else {
        check_json_headers(&headers)?;
        json_object::<MintRequest>(&bytes)?
    };
    let ttl_secs = body.ttl_secs.map_or(DEFAULT_TTL_SECS, Bounded::narrow);
    let minted = app
        .users
        .mint(UserId(user_id), Duration::from_secs(ttl_secs))
        .ok_or_else(not_minting)?;
    // The events such a token leads to name the user as their actor: this
    // line is what tells an admin acting as a user from the user.
    tracing::info!(%user_id, expires_at = %minted.expires_at, "user token minted by an admin");
    Ok((
        StatusCode::CREATED,
        axum::Json(UserTokenResponse {
            token: minted.token,
            user_id,
            expires_at: minted.expires_at,
        }),
    ))
}

fn not_minting() -> ApiError {
    ApiError::NotFound("minting (user tokens come from the identity provider)")
}
