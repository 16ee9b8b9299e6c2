//! Payments: paying a held reservation with an active queue token.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::answer::Answer;
use crate::client::{with_idempotency_key, Client};
use crate::error::Error;

/// `201` of `POST /payments`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Payment {
    pub payment_id: Uuid,
    pub reservation_id: Uuid,
    pub seat_id: Uuid,
    pub amount: i64,
    /// The balance after the payment.
    pub balance: i64,
    /// `completed`.
    pub status: String,
}

impl Client {
    /// `POST /payments` with an active queue token, endpoint `pay`; with an
    /// `Idempotency-Key` when given.
    pub async fn pay(
        &self,
        token: &str,
        reservation: Uuid,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, Error> {
        let request = self
            .request(Method::POST, "/payments")
            .bearer_auth(token)
            .json(&json!({ "reservation_id": reservation }));
        self.send("pay", with_idempotency_key(request, idempotency_key))
            .await
    }
}
