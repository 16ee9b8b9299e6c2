//! The client's address, and the per-address and per-user limit on queue entries.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;
use crate::ids::UserId;

/// Above this many tracked addresses (or users), idle ones are forgotten.
const TRACKED_KEYS: usize = 100_000;

/// The peer address of the connection, when the server recorded it.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(ClientIp(address))
    }
}

/// A token bucket per client address and one per user (GCRA, from
/// `governor`): many users behind one address, or one user from many
/// addresses, each meet the limit.
#[derive(Clone)]
pub struct EntryLimiter {
    by_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    by_user: Arc<DefaultKeyedRateLimiter<UserId>>,
}

impl EntryLimiter {
    /// A limiter of `per_second` entries with bursts of `burst`; `None` when `per_second` is 0.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let quota =
            Quota::per_second(NonZeroU32::new(per_second)?).allow_burst(NonZeroU32::new(burst)?);
        Some(Self {
            by_address: Arc::new(RateLimiter::keyed(quota)),
            by_user: Arc::new(RateLimiter::keyed(quota)),
        })
    }

    /// Refuses the request when its address or its user has used up its entries.
    pub fn check(&self, client: &ClientIp, user: UserId) -> Result<(), ApiError> {
        if let Some(address) = client.0 {
            check_key(&self.by_address, &address)?;
        }
        check_key(&self.by_user, &user)
    }
}

fn check_key<K: Clone + Eq + std::hash::Hash>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), ApiError> {
    if limiter.len() > TRACKED_KEYS {
        limiter.retain_recent();
    }
    limiter.check_key(key).map_err(|_| ApiError::RateLimited)
}
