//! Who is calling: a user token (a JWT naming the user), a queue token (any
//! status, or active only) or the admin token, all sent as
//! `Authorization: Bearer`. A credential of the wrong kind is as good as none.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::extract::Path;
use crate::ids::{TicketId, UserId};
use crate::projections::queue_tickets::{self, TicketRow, TicketStatus};
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

/// The user a genuine, current user token names.
pub struct SignedIn(pub UserId);

/// The user of a `/users/{user_id}/…` path, signed in with their own token:
/// a malformed path is 400, a missing or bad token 401, another user's 403.
pub struct PathUser(pub UserId);

fn bearer(parts: &Parts) -> Option<&str> {
    // One credential: with two, a proxy that checks one and this service
    // that reads the other would not agree on who is asking.
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
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
    match ticket.status_at(crate::clock::now()) {
        TicketStatus::Active => Ok(()),
        TicketStatus::Waiting => Err(ApiError::TokenNotActive(
            "the token is still waiting in the queue",
        )),
        TicketStatus::Expired => Err(ApiError::TokenInvalid),
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

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::TokenInvalid)?;
        match app.users.verify(token) {
            Ok(user_id) => Ok(SignedIn(user_id)),
            Err(reason) => {
                tracing::debug!(%reason, "user token refused");
                Err(ApiError::TokenInvalid)
            }
        }
    }
}

impl FromRequestParts<AppState> for PathUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(user_id) = Path::<uuid::Uuid>::from_request_parts(parts, app).await?;
        let SignedIn(caller) = SignedIn::from_request_parts(parts, app).await?;
        require_same_user(caller, UserId(user_id))?;
        Ok(PathUser(caller))
    }
}

/// Refuses a request whose user token names another user than the one it acts for.
pub fn require_same_user(caller: UserId, named: UserId) -> Result<(), ApiError> {
    if caller == named {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the user token names another user than the request",
        ))
    }
}

/// Refuses a body whose optional `user_id` names another user than the
/// caller's token (a user or queue token; the contract's `403 forbidden`).
/// Ignored, it let a client that meant to charge one user's wallet be told
/// it had, while its own was charged.
pub fn require_named_user(caller: UserId, named: Option<uuid::Uuid>) -> Result<(), ApiError> {
    match named {
        Some(named) if UserId(named) != caller => Err(ApiError::Forbidden(
            "the body names another user than the token",
        )),
        _ => Ok(()),
    }
}
