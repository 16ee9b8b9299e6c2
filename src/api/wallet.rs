//! `/users/{user_id}/balance`: reading and charging a wallet, each only by
//! its own user.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::{require_named_user, PathUser};
use super::bounded::Bounded;
use super::context::Correlation;
use super::error::{ApiError, Problem};
use super::extract::Json;
use super::idempotent::Idempotent;
use crate::aggregates::wallet::MAX_AMOUNT;
use crate::aggregates::{WalletCommand, WalletEvent};
use crate::booking::idempotency::Operation;
use crate::commands::execute_for_events;
use crate::ids::{ChargeId, UserId};
use crate::money::Won;
use crate::projections::balances::{self, WalletEntry};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_balance))
        .routes(routes!(charge_balance))
}

/// A wallet's balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceResponse {
    user_id: Uuid,
    /// Won.
    #[schema(value_type = i64)]
    balance: Won,
}

/// Money to add.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChargeRequest {
    /// Won, 1..=1,000,000,000.
    #[schema(value_type = i64, minimum = 1, maximum = 1000000000)]
    amount: Bounded<1, { MAX_AMOUNT.0 }>,
    /// Optional; when sent, it must be the user the token names.
    #[serde(default)]
    user_id: Option<Uuid>,
}

/// The user's balance (0 for a user never charged).
#[utoipa::path(get, path = "/users/{user_id}/balance", tag = "wallet", security(("user_token" = [])),
    params(("user_id" = Uuid, Path, description = "the user")),
    responses(
        (status = 200, body = BalanceResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: the token names another user", body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_balance(
    State(app): State<AppState>,
    PathUser(UserId(user_id)): PathUser,
) -> Result<axum::Json<BalanceResponse>, ApiError> {
    let balance = balances::balance_of(&app.pool, user_id).await?;
    Ok(axum::Json(BalanceResponse { user_id, balance }))
}

/// Adds money to the wallet. With an `Idempotency-Key`, a retry returns the first answer and charges once.
#[utoipa::path(post, path = "/users/{user_id}/balance/charges", tag = "wallet", request_body = ChargeRequest, security(("user_token" = [])),
    params(("user_id" = Uuid, Path, description = "the user"),
           ("Idempotency-Key" = Option<String>, Header, description = "makes retries safe: 1 to 255 visible ASCII characters", min_length = 1, max_length = 255, pattern = r"^[!-~]+$")),
    responses(
        (status = 200, body = BalanceResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "forbidden: the token names another user than the path or the body", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn charge_balance(
    State(app): State<AppState>,
    PathUser(UserId(user_id)): PathUser,
    headers: HeaderMap,
    correlation: Correlation,
    Json(body): Json<ChargeRequest>,
) -> Result<Response, ApiError> {
    require_named_user(UserId(user_id), body.user_id)?;
    let amount = Won(body.amount.get());
    let request = Idempotent::from_headers(
        &headers,
        UserId(user_id),
        Operation::Charge,
        &amount.to_string(),
    )?;
    if let Some(answer) = request.earlier_answer(&app.pool).await? {
        return Ok(answer);
    }
    let charge_id = ChargeId(request.command_id());
    let command = WalletCommand::Charge { charge_id, amount };
    let stored = execute_for_events(
        &app.wallets,
        &user_id.to_string(),
        command,
        &correlation.as_actor(format!("user:{user_id}")),
    )
    .await?;
    // The balance the charge left, as its event states it: the one stored
    // now, or, for a charge already made (same id), the one in the log.
    let balance = match stored.last().map(WalletEvent::balance) {
        Some(balance) => balance,
        None => {
            let entry = WalletEntry::Charge(charge_id);
            balances::balance_left_by(&app.pool, user_id, entry).await?
        }
    };
    let answer = BalanceResponse { user_id, balance };
    request.answer(&app.pool, StatusCode::OK, &answer).await
}
