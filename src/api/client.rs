//! The client's address, and the per-address limit on queue entries.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Above this many tracked addresses, idle ones are forgotten.
const TRACKED_ADDRESSES: usize = 100_000;

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

/// A token bucket per client address (GCRA, from `governor`).
#[derive(Clone)]
pub struct EntryLimiter(Arc<DefaultKeyedRateLimiter<IpAddr>>);

impl EntryLimiter {
    /// A limiter of `per_second` entries with bursts of `burst`; `None` when `per_second` is 0.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let quota =
            Quota::per_second(NonZeroU32::new(per_second)?).allow_burst(NonZeroU32::new(burst)?);
        Some(Self(Arc::new(RateLimiter::keyed(quota))))
    }

    /// Refuses the request when its address has used up its entries.
    pub fn check(&self, client: &ClientIp) -> Result<(), ApiError> {
        let Some(address) = client.0 else {
            return Ok(());
        };
        if self.0.len() > TRACKED_ADDRESSES {
            self.0.retain_recent();
        }
        self.0
            .check_key(&address)
            .map_err(|_| ApiError::RateLimited)
    }
}
