//! Reservations: holding a seat with an active queue token, and reading a
//! reservation back with its holder's token.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::answer::Answer;
use crate::client::{with_idempotency_key, Client};
use crate::error::Error;

/// `201` of `POST /reservations` and `200` of `GET /reservations/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: Uuid,
    pub seat_id: Uuid,
    pub date_id: Uuid,
    pub seat_no: i32,
    pub price: i64,
    /// `held`, `expired` or `confirmed`.
    pub status: String,
    pub expires_at: DateTime<Utc>,
}

impl Client {
    /// `POST /reservations` with an active queue token, endpoint `hold`.
    pub async fn hold(&self, token: &str, seat: Uuid) -> Result<Answer, Error> {
        self.hold_with_key(token, seat, None).await
    }

    /// `hold`, with an `Idempotency-Key` when given.
    pub async fn hold_with_key(
        &self,
        token: &str,
        seat: Uuid,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, Error> {
        let request = self
            .request(Method::POST, "/reservations")
            .bearer_auth(token)
            .json(&json!({ "seat_id": seat }));
        self.send("hold", with_idempotency_key(request, idempotency_key))
            .await
    }

    /// `GET /reservations/{reservation}` with the holder's queue token,
    /// endpoint `reservation`.
    pub async fn reservation(&self, token: &str, reservation: Uuid) -> Result<Answer, Error> {
        let request = self
            .request(Method::GET, &format!("/reservations/{reservation}"))
            .bearer_auth(token);
        self.send("reservation", request).await
    }
}
