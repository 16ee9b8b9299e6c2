//! The waiting queue: entering it as a signed-in user, and reading where a
//! queue token stands.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::answer::Answer;
use crate::client::Client;
use crate::error::Error;

/// `201`/`200` of `POST /queue/tokens` and `200` of `GET /queue/tokens/current`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueToken {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    pub user_id: Uuid,
    pub concert_id: Uuid,
    /// `waiting`, `active` or `expired`.
    pub status: String,
    /// Waiting tokens ahead of this one; 0 once active.
    pub position: i64,
    pub estimated_wait_seconds: i64,
    /// When an active token lapses; `None` while waiting.
    pub expires_at: Option<DateTime<Utc>>,
    /// Nothing is left to book (absent from servers before it: `false`).
    #[serde(default)]
    pub sold_out: bool,
}

impl Client {
    /// `POST /queue/tokens` with the user's token (signing the user in first
    /// if the client has no token for them yet), endpoint `enter-queue`.
    pub async fn enter_queue(&self, user: Uuid, concert: Uuid) -> Result<Answer, Error> {
        let token = self.user_token(user).await?;
        let request = self
            .request(Method::POST, "/queue/tokens")
            .bearer_auth(token)
            .json(&json!({ "concert_id": concert }));
        self.send("enter-queue", request).await
    }

    /// `GET /queue/tokens/current`, endpoint `queue-status`.
    pub async fn current_token(&self, token: &str) -> Result<Answer, Error> {
        let request = self
            .request(Method::GET, "/queue/tokens/current")
            .bearer_auth(token);
        self.send("queue-status", request).await
    }
}
