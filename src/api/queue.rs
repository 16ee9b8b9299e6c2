//! `/queue/tokens`: entering a concert's waiting queue and checking one's place.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::{require_named_user, SignedIn, VerifiedToken};
use super::client::{ClientIp, EntryLimiter};
use super::context::Correlation;
use super::error::{ApiError, Problem};
use super::extract::Json;
use super::read_source;
use crate::booking::queue::{self, enter_queue, Standing};
use crate::ids::{ConcertId, TicketId};
use crate::projections::queue_tickets::{TicketRow, TicketStatus};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enter_queue_handler))
        .routes(routes!(current_token))
}

/// Which concert to queue for; the user is the one the user token names.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EnterQueueRequest {
    concert_id: Uuid,
    /// Optional; when sent, it must be the user the token names.
    #[serde(default)]
    user_id: Option<Uuid>,
}

/// A queue token and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <token>`.
    token: String,
    user_id: Uuid,
    concert_id: Uuid,
    /// `waiting`, `active` or `expired`.
    status: String,
    /// Waiting tokens ahead of this one; 0 once active.
    position: i64,
    estimated_wait_seconds: i64,
    /// When an active token lapses; null while waiting.
    #[schema(required = true)]
    expires_at: Option<DateTime<Utc>>,
    /// True once no seat of a date still ahead is free or held (every seat
    /// sold, or every date begun): nothing more can be booked, whatever the
    /// status. Never false again once true.
    sold_out: bool,
}

/// What a standing stream sends a new standing for: its status, position
/// and expiry, as the contract lists them, and the concert selling out. A
/// new estimate of the wait alone is not news; it rides with the next
/// change.
pub(super) type StandingNews = (String, i64, Option<DateTime<Utc>>, bool);

impl TokenResponse {
    /// The estimated wait, while the token waits.
    pub(super) fn wait_told(&self) -> Option<i64> {
        (self.status == TicketStatus::Waiting.as_str()).then_some(self.estimated_wait_seconds)
    }

    pub(super) fn news(&self) -> StandingNews {
        (
            self.status.clone(),
            self.position,
            self.expires_at,
            self.sold_out,
        )
    }
}

/// Where a queue token reads where it stands: the `Location` of a new one.
const CURRENT_TOKEN: &str = "/api/v1/queue/tokens/current";

/// Enters the queue as the signed-in user, or returns that user's live token for the concert.
#[utoipa::path(post, path = "/queue/tokens", tag = "queue", operation_id = "enter_queue", request_body = EnterQueueRequest,
    security(("user_token" = [])),
    responses(
        (status = 201, description = "a new token", body = TokenResponse,
            headers(("Location" = String, description = "`/api/v1/queue/tokens/current`, where the token reads where it stands"))),
        (status = 200, description = "the user's token that is still live", body = TokenResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: the body names another user than the token", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "rate_limited: too many entries from this address or user, or the queue is full", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn enter_queue_handler(
    State(app): State<AppState>,
    correlation: Correlation,
    client: ClientIp,
    SignedIn(user_id): SignedIn,
    Extension(limiter): Extension<Option<EntryLimiter>>,
    Json(body): Json<EnterQueueRequest>,
) -> Result<Response, ApiError> {
    require_named_user(user_id, body.user_id)?;
    if let Some(limiter) = &limiter {
        limiter.check(&client, user_id)?;
    }
    let context = correlation.as_actor(format!("user:{user_id}"));
    // Apart from the request: one whose client hangs up (or that times out)
    // once its number is taken would leave the number neither a ticket nor
    // released, and every place behind it one too far back.
    let entry = tokio::spawn({
        let app = app.clone();
        async move { enter_queue(&app, ConcertId(body.concert_id), user_id, &context).await }
    });
    let entered = match entry.await {
        Ok(entered) => entered?,
        Err(failed) => std::panic::resume_unwind(failed.into_panic()),
    };
    let created = entered.created;
    let body = axum::Json(token_body(&app, entered.ticket, entered.standing).await?);
    if created {
        let location = [(header::LOCATION, CURRENT_TOKEN)];
        return Ok((StatusCode::CREATED, location, body).into_response());
    }
    Ok((StatusCode::OK, body).into_response())
}

/// The caller's token and where it stands now.
#[utoipa::path(get, path = "/queue/tokens/current", tag = "queue", security(("queue_token" = [])),
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn current_token(
    State(app): State<AppState>,
    VerifiedToken(ticket_id): VerifiedToken,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    // From the feed's memory while it is current, as the listings are:
    // a waiting room's clients poll this.
    let ticket = read_source::ticket(&app, ticket_id.0).await?;
    let standing = read_source::standing(&app, &ticket).await?;
    Ok(axum::Json(token_body(&app, ticket, standing).await?))
}

pub(super) async fn token_body(
    app: &AppState,
    ticket: TicketRow,
    standing: Standing,
) -> Result<TokenResponse, ApiError> {
    let now = crate::clock::now();
    let sold_out = app
        .live
        .sold_out()
        .of(&app.pool, ticket.concert_id, now)
        .await?;
    let status = ticket.status_at(now).as_str();
    Ok(TokenResponse {
        token: app.tokens.issue(TicketId(ticket.ticket_id)),
        user_id: ticket.user_id,
        concert_id: ticket.concert_id,
        status: status.to_string(),
        position: standing.position,
        estimated_wait_seconds: standing.estimated_wait_seconds,
        expires_at: queue::expires_at(&ticket),
        sold_out,
    })
}
