//! Requests that may carry an `Idempotency-Key`: a retry gets the first
//! successful answer, and the command it sends carries an id derived from the
//! key, so it happens once however often the request is sent.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::ApiError;
use crate::booking::idempotency::{self, KeptAnswer, Operation};
use crate::ids::UserId;

/// One request of `operation` by `user`, with its key if it sent one.
pub struct Idempotent {
    user: UserId,
    operation: Operation,
    key: Option<String>,
    /// SHA-256 of what the request asks, to tell a retry from another request.
    request_hash: [u8; 32],
}

/// The request's `Idempotency-Key`, checked (a malformed one is `400`).
pub fn key_of(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    // Which of two a proxy passes on first is not for this service to guess:
    // the other would make a retry a second request.
    if values.next().is_some() {
        return Err(ApiError::BadRequest(
            "send one Idempotency-Key header, not several".into(),
        ));
    }
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be ASCII".into()))?;
    idempotency::validate_key(key)?;
    Ok(Some(key))
}

impl Idempotent {
    /// Reads the `Idempotency-Key` header; a malformed one is `400`.
    /// `request` is what the request asks, in a form that is equal for
    /// retries and different for another request (an amount, a reservation).
    pub fn from_headers(
        headers: &HeaderMap,
        user: UserId,
        operation: Operation,
        request: &str,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            user,
            operation,
            key: key_of(headers)?.map(str::to_string),
            request_hash: Sha256::digest(request.as_bytes()).into(),
        })
    }

    /// The answer kept for an earlier request with this key, if any.
    pub async fn earlier_answer(&self, pool: &PgPool) -> Result<Option<Response>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let answer = idempotency::stored_answer(pool, self.user, self.operation, key).await?;
        answer.map(|kept| self.replay(kept)).transpose()
    }

    /// Whether the request came with an `Idempotency-Key`.
    pub fn keyed(&self) -> bool {
        self.key.is_some()
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
        let Some(key) = &self.key else {
            return Ok((status, axum::Json(body)).into_response());
        };
        let body =
            serde_json::to_value(body).map_err(|error| ApiError::Internal(error.to_string()))?;
        let kept = idempotency::keep_answer(
            pool,
            self.user,
            self.operation,
            key,
            &self.request_hash,
            (status.as_u16(), body),
        )
        .await?;
        self.replay(kept)
    }

    /// The kept answer, if it answered this request; a key reused for another
    /// request is refused (`422`), as the IETF's Idempotency-Key draft says.
    fn replay(&self, kept: KeptAnswer) -> Result<Response, ApiError> {
        if kept
            .request_hash
            .is_some_and(|hash| hash != self.request_hash)
        {
            return Err(ApiError::Validation(
                "this Idempotency-Key was used for a different request".into(),
            ));
        }
        let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
        Ok((status, axum::Json(kept.body)).into_response())
    }
}
