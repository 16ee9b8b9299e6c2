//! Requests that may carry an `Idempotency-Key`: a retry gets the first
//! successful answer, and the command it sends carries an id derived from the
//! key, so it happens once however often the request is sent.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::error::ApiError;
use crate::booking::idempotency::{self, Operation};
use crate::ids::UserId;

/// One request of `operation` by `user`, with its key if it sent one.
pub struct Idempotent {
    user: UserId,
    operation: Operation,
    key: Option<String>,
}

impl Idempotent {
    /// Reads the `Idempotency-Key` header; a malformed one is `400`.
    pub fn from_headers(
        headers: &HeaderMap,
        user: UserId,
        operation: Operation,
    ) -> Result<Self, ApiError> {
        let key = match headers.get("idempotency-key") {
            None => None,
            Some(value) => {
                let key = value
                    .to_str()
                    .map_err(|_| ApiError::BadRequest("Idempotency-Key must be ASCII".into()))?;
                idempotency::validate_key(key)?;
                Some(key.to_string())
            }
        };
        Ok(Self {
            user,
            operation,
            key,
        })
    }

    /// The answer kept for an earlier request with this key, if any.
    pub async fn earlier_answer(&self, pool: &PgPool) -> Result<Option<Response>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let answer = idempotency::stored_answer(pool, self.user, self.operation, key).await?;
        Ok(answer.map(replay))
    }

    /// The id of the command this request sends: from the key, or fresh.
    pub fn command_id(&self) -> Uuid {
        match &self.key {
            Some(key) => idempotency::command_id(self.user, self.operation, key),
            None => Uuid::now_v7(),
        }
    }

    /// Answers `body` with `status`, keeping it for retries when a key was
    /// sent; a concurrent retry that kept its answer first wins.
    pub async fn answer<T: Serialize>(
        self,
        pool: &PgPool,
        status: StatusCode,
        body: &T,
    ) -> Result<Response, ApiError> {
        let Some(key) = self.key else {
            return Ok((status, axum::Json(body)).into_response());
        };
        let body =
            serde_json::to_value(body).map_err(|error| ApiError::Internal(error.to_string()))?;
        let kept = idempotency::keep_answer(
            pool,
            self.user,
            self.operation,
            &key,
            (status.as_u16(), body),
        )
        .await?;
        Ok(replay(kept))
    }
}

fn replay((status, body): (u16, Value)) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, axum::Json(body)).into_response()
}
