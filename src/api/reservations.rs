//! `/reservations`: holding a seat and reading the hold back.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::{require_active, require_named_user, QueueToken, VerifiedToken};
use super::context::Correlation;
use super::error::{ApiError, Problem};
use super::extract::{Json, Path};
use super::idempotent;
use super::read_source;
use crate::booking::holds;
use crate::ids::{ReservationId, UserId};
use crate::money::Won;
use crate::projections::reservations::{self, ReservationRow};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(hold_seat))
        .routes(routes!(get_reservation))
}

/// The seat to hold.
#[derive(Debug, Deserialize, ToSchema)]
pub struct HoldSeatRequest {
    seat_id: Uuid,
    /// Optional; when sent, it must be the token's user.
    #[serde(default)]
    user_id: Option<Uuid>,
}

/// A reservation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationResponse {
    reservation_id: Uuid,
    seat_id: Uuid,
    date_id: Uuid,
    seat_no: i32,
    #[schema(value_type = i64)]
    price: Won,
    /// `held`, `expired` or `confirmed`.
    status: String,
    expires_at: DateTime<Utc>,
}

impl From<ReservationRow> for ReservationResponse {
    fn from(row: ReservationRow) -> Self {
        let status = row.status_at(crate::clock::now()).as_str().to_string();
        Self {
            reservation_id: row.reservation_id,
            seat_id: row.seat_id,
            date_id: row.date_id,
            seat_no: row.seat_no,
            price: row.price,
            status,
            expires_at: row.expires_at,
        }
    }
}

/// Holds a seat for the token's user (active queue token).
#[utoipa::path(post, path = "/reservations", tag = "reservations", request_body = HoldSeatRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes retries safe: with the seat, names the hold; a retry gets its reservation as it stands (409 hold_expired once lapsed), also when the hold committed after its request gave up; 1 to 255 visible ASCII characters", min_length = 1, max_length = 255, pattern = r"^[!-~]+$")),
    security(("queue_token" = [])),
    responses(
        (status = 201, body = ReservationResponse,
            headers(("Location" = String, description = "the reservation's own path"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "token_not_active, or forbidden: the body names another user than the token", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "seat_unavailable, or hold_expired for a keyed retry of a lapsed hold", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn hold_seat(
    State(app): State<AppState>,
    headers: HeaderMap,
    VerifiedToken(ticket_id): VerifiedToken,
    correlation: Correlation,
    Json(body): Json<HoldSeatRequest>,
) -> Result<Response, ApiError> {
    let key = idempotent::key_of(&headers)?;
    // Most of a crowd pressing "hold" on a taken seat is turned away here;
    // a keyed retry whose own hold took the seat goes on, to be answered it.
    if let Some(user_id) = read_source::hold_refused_from_memory(&app, ticket_id.0, body.seat_id) {
        require_named_user(user_id, body.user_id)?;
        let own = match key {
            Some(key) => holds::holds_by_key(&app, user_id, key, body.seat_id).await?,
            None => false,
        };
        if !own {
            metrics::counter!("concert_holds_refused_from_memory_total").increment(1);
            return Err(ApiError::SeatUnavailable);
        }
    }
    // The token's ticket comes with the seat, in one query shared with the
    // holds that arrive meanwhile; it is checked as the ActiveToken
    // extractor would.
    let (ticket, seat) = app
        .hold_reads
        .read((ticket_id.0, body.seat_id))
        .await?
        .ok_or(ApiError::TokenInvalid)?;
    require_active(&ticket)?;
    require_named_user(UserId(ticket.user_id), body.user_id)?;
    let seat = seat.ok_or(ApiError::NotFound("seat"))?;
    let context = correlation.as_actor(format!("user:{}", ticket.user_id));
    // The key and the seat name the hold; its answer is the reservation as
    // it stands, so none is kept apart.
    let reservation = match key {
        Some(key) => {
            let reservation_id =
                holds::keyed_reservation_id(UserId(ticket.user_id), key, seat.seat_id);
            holds::hold_seat_once(&app, &ticket, seat, reservation_id, &context).await?
        }
        None => holds::hold_seat(&app, &ticket, seat, ReservationId::new(), &context).await?,
    };
    let answer = ReservationResponse::from(reservation);
    let location = format!("/api/v1/reservations/{}", answer.reservation_id);
    let location = [(header::LOCATION, location)];
    Ok((StatusCode::CREATED, location, axum::Json(answer)).into_response())
}

/// A reservation of the token's user (a queue token of the holder for its concert).
#[utoipa::path(get, path = "/reservations/{reservation_id}", tag = "reservations",
    params(("reservation_id" = Uuid, Path, description = "the reservation")),
    security(("queue_token" = [])),
    responses(
        (status = 200, body = ReservationResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_reservation(
    State(app): State<AppState>,
    Path(reservation_id): Path<Uuid>,
    QueueToken(ticket): QueueToken,
) -> Result<axum::Json<ReservationResponse>, ApiError> {
    let reservation = reservations::find_reservation(&app.pool, reservation_id)
        .await?
        .filter(|reservation| reservation.user_id == ticket.user_id)
        .ok_or(ApiError::NotFound("reservation"))?;
    // Any token of the holder's for the reservation's concert reads it (the
    // one its payment spent too); one for another concert is refused, as on
    // every route of a concert.
    if reservation
        .concert_id
        .is_some_and(|concert_id| concert_id != ticket.concert_id)
    {
        return Err(ApiError::TokenNotActive("the token is for another concert"));
    }
    Ok(axum::Json(reservation.into()))
}
