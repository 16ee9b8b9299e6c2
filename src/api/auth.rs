//! Who is calling: a queue token (any status, or active only) or the admin token,
//! all sent as `Authorization: Bearer`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::ids::TicketId;
use crate::projections::queue_tickets::{self, TicketRow};
use crate::state::AppState;

/// The ticket id of a genuine queue token (its signature checks), not yet
/// looked up: for routes that read the ticket together with their own data.
pub struct VerifiedToken(pub TicketId);

/// The ticket of a genuine queue token, whatever its status.
pub struct QueueToken(pub TicketRow);

/// The ticket of a genuine, active queue token.
pub struct ActiveToken(pub TicketRow);

/// A request carrying the admin token.
pub struct Admin;

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for VerifiedToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::TokenInvalid)?;
        let ticket_id = app.tokens.verify(token).ok_or(ApiError::TokenInvalid)?;
        Ok(VerifiedToken(ticket_id))
    }
}

impl FromRequestParts<AppState> for QueueToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let VerifiedToken(ticket_id) = VerifiedToken::from_request_parts(parts, app).await?;
        let ticket = queue_tickets::find_ticket(&app.pool, ticket_id.0)
            .await?
            .ok_or(ApiError::TokenInvalid)?;
        Ok(QueueToken(ticket))
    }
}

impl FromRequestParts<AppState> for ActiveToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let QueueToken(ticket) = QueueToken::from_request_parts(parts, app).await?;
        require_active(&ticket)?;
        Ok(ActiveToken(ticket))
    }
}

/// Refuses a ticket that is not active now: 403 while waiting, 401 once expired.
pub fn require_active(ticket: &TicketRow) -> Result<(), ApiError> {
    if ticket.is_active_at(Utc::now()) {
        Ok(())
    } else if ticket.status == "waiting" {
        Err(ApiError::TokenNotActive(
            "the token is still waiting in the queue",
        ))
    } else {
        Err(ApiError::TokenInvalid)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::TokenInvalid)?;
        if bool::from(token.as_bytes().ct_eq(app.admin_token.as_bytes())) {
            Ok(Admin)
        } else {
            Err(ApiError::TokenInvalid)
        }
    }
}
