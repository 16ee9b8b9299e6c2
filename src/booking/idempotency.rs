//! `Idempotency-Key`: the first successful answer to a keyed request is kept and
//! returned for every retry of it.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::BookingError;
use crate::ids::{idempotent_id, UserId};

/// What a key is for: keys are scoped per user and operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Charge,
    Hold,
    Pay,
}

impl Operation {
    /// The name stored with the key and hashed into the command's id.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Charge => "charge",
            Operation::Hold => "hold",
            Operation::Pay => "pay",
        }
    }
}

/// The id of the command a keyed request sends: the same for every retry, so
/// the aggregate sees a retry as the command it already handled.
pub fn command_id(user_id: UserId, operation: Operation, key: &str) -> Uuid {
    idempotent_id(user_id, operation.as_str(), key)
}

/// Longest accepted key.
const MAX_KEY_LEN: usize = 255;

/// Checks a client's key: 1 to 255 visible ASCII characters.
pub fn validate_key(key: &str) -> Result<(), BookingError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(BookingError::Malformed(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        ));
    }
    Ok(())
}

/// An answer kept for a key, with the fingerprint of the request it answered
/// (none for answers kept before fingerprints were).
pub struct KeptAnswer {
    pub status: u16,
    pub body: Value,
    pub request_hash: Option<Vec<u8>>,
}

/// The answer stored for this key, if any.
pub async fn stored_answer(
    pool: &PgPool,
    user_id: UserId,
    operation: Operation,
    key: &str,
) -> sqlx::Result<Option<KeptAnswer>> {
    let row: Option<KeptRow> = sqlx::query_as(
        "select status, body, request_hash from idempotency_keys
         where user_id = $1 and operation = $2 and key = $3",
    )
    .bind(user_id.0)
    .bind(operation.as_str())
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(KeptAnswer::from))
}

/// A kept answer as its row reads: status, body, request fingerprint.
type KeptRow = (i16, Value, Option<Vec<u8>>);

impl From<KeptRow> for KeptAnswer {
    fn from((status, body, request_hash): KeptRow) -> Self {
        Self {
            status: status as u16,
            body,
            request_hash,
        }
    }
}

/// Keeps `answer` to the request fingerprinted `request_hash` for the key
/// unless a concurrent retry stored one first, and returns whichever answer
/// is kept (as stored, so the first answer reads as its retries will).
pub async fn keep_answer(
    pool: &PgPool,
    user_id: UserId,
    operation: Operation,
    key: &str,
    request_hash: &[u8],
    answer: (u16, Value),
) -> sqlx::Result<KeptAnswer> {
    let kept: Option<KeptRow> = sqlx::query_as(
        "insert into idempotency_keys (user_id, operation, key, status, body, request_hash)
         values ($1, $2, $3, $4, $5, $6)
         on conflict do nothing
         returning status, body, request_hash",
    )
    .bind(user_id.0)
    .bind(operation.as_str())
    .bind(key)
    .bind(answer.0 as i16)
    .bind(&answer.1)
    .bind(request_hash)
    .fetch_optional(pool)
    .await?;
    if let Some(kept) = kept {
        return Ok(kept.into());
    }
    // A concurrent retry kept its answer first: that one is the key's.
    Ok(stored_answer(pool, user_id, operation, key)
        .await?
        .unwrap_or(KeptAnswer {
            status: answer.0,
            body: answer.1,
            request_hash: Some(request_hash.to_vec()),
        }))
}

/// Kept answers forgotten per statement, so that no statement locks many rows.
const FORGET_PER_STATEMENT: i64 = 10_000;

/// Forgets the answers kept longer than `kept_for` (by the database's
/// clock, which stamped them); gives how many. Instances doing this at once
/// only wait for each other's rows.
pub async fn forget_answers_older_than(pool: &PgPool, kept_for: Duration) -> sqlx::Result<u64> {
    let mut forgotten = 0;
    loop {
        let done = sqlx::query(
            "delete from idempotency_keys where ctid = any(array(
                 select ctid from idempotency_keys
                 where created_at < now() - make_interval(secs => $1) limit $2))",
        )
        .bind(kept_for.as_secs_f64())
        .bind(FORGET_PER_STATEMENT)
        .execute(pool)
        .await?
        .rows_affected();
        forgotten += done;
        if done < FORGET_PER_STATEMENT as u64 {
            return Ok(forgotten);
        }
    }
}
