//! `/payments`: paying for a held seat.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::{require_active, require_named_user, VerifiedToken};
use super::context::Correlation;
use super::error::{ApiError, Problem};
use super::extract::Json;
use super::idempotent::Idempotent;
use crate::booking::idempotency::Operation;
use crate::booking::payment;
use crate::ids::{PaymentId, ReservationId, TicketId, UserId};
use crate::money::Won;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(pay))
}

/// The reservation to pay for.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PaymentRequest {
    reservation_id: Uuid,
    /// Optional; when sent, it must be the token's user.
    #[serde(default)]
    user_id: Option<Uuid>,
}

/// A completed payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    payment_id: Uuid,
    reservation_id: Uuid,
    seat_id: Uuid,
    #[schema(value_type = i64)]
    amount: Won,
    /// The balance after the payment.
    #[schema(value_type = i64)]
    balance: Won,
    /// `completed`.
    status: String,
}

/// Pays for a held seat: debits the wallet, sells the seat, spends the queue token (active queue token).
#[utoipa::path(post, path = "/payments", tag = "payments", request_body = PaymentRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes retries safe: 1 to 255 visible ASCII characters", min_length = 1, max_length = 255, pattern = r"^[!-~]+$")),
    security(("queue_token" = [])),
    responses(
        (status = 201, body = PaymentResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 402, description = "insufficient_balance", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "token_not_active, or forbidden: the body names another user than the token", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "hold_expired or already_paid", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn pay(
    State(app): State<AppState>,
    headers: HeaderMap,
    VerifiedToken(ticket_id): VerifiedToken,
    correlation: Correlation,
    Json(body): Json<PaymentRequest>,
) -> Result<Response, ApiError> {
    // The token's ticket comes with the reservation, in one query shared
    // with the payments that arrive meanwhile; each is checked in the order
    // the QueueToken extractor and the booking would.
    let (ticket, reservation) = app
        .payment_reads
        .read((ticket_id.0, body.reservation_id))
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    let user_id = ticket.user_id;
    require_named_user(UserId(user_id), body.user_id)?;
    let own = reservation
        .as_ref()
        .filter(|reservation| reservation.user_id == user_id);
    // The token spent must be the one that let the seat be held; checked
    // before a stored answer too, which it would otherwise be given.
    if own
        .and_then(|reservation| reservation.concert_id)
        .is_some_and(|concert| concert != ticket.concert_id)
    {
        return Err(ApiError::TokenNotActive("the token is for another concert"));
    }
    let request = Idempotent::from_headers(
        &headers,
        UserId(user_id),
        Operation::Pay,
        &body.reservation_id.to_string(),
    )?;
    if let Some(answer) = request.earlier_answer(&app.pool).await? {
        return Ok(answer);
    }
    // Checked after the stored answer: paying spends the token, and a
    // reservation already paid is answered by what paid it, whatever the
    // token's state: a retry of that payment gets its receipt (also one
    // arriving after the commit but before its answer was kept), and any
    // other payment of it `409 already_paid` (also the second of two sent
    // at once, read after the first spent the token).
    let paid_already = own.is_some_and(|reservation| reservation.payment_id.is_some());
    if !paid_already {
        require_active(&ticket)?;
    }
    let payment_id = PaymentId(request.command_id());
    let context = correlation.as_actor(format!("user:{user_id}"));
    // A retry past the hold's deadline may race its own first try's sale.
    let reservation = match reservation {
        Some(own) if request.keyed() && own.user_id == user_id => {
            Some(payment::close_lapsed_hold(&app, own, &context).await?)
        }
        other => other,
    };
    let receipt = payment::pay(
        &app,
        UserId(user_id),
        TicketId(ticket.ticket_id),
        ReservationId(body.reservation_id),
        reservation,
        payment_id,
        &context,
    )
    .await?;
    let answer = PaymentResponse {
        payment_id: receipt.payment.payment_id,
        reservation_id: receipt.payment.reservation_id,
        seat_id: receipt.payment.seat_id,
        amount: receipt.payment.amount,
        balance: receipt.balance,
        status: "completed".to_string(),
    };
    request
        .answer(&app.pool, StatusCode::CREATED, &answer)
        .await
}
