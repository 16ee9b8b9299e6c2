//! The drain before a stop (`CONCERT_SHUTDOWN_DRAIN_SECS`). Once a stop is
//! asked for, the instance goes on serving for that long while `/readyz`
//! answers `503`, so that a load balancer sends it nothing new, and every
//! HTTP/1.x answer says `Connection: close`, so that its clients' next
//! requests open connections elsewhere instead of meeting the stop on a
//! kept-alive one (hyper closes idle ones at the stop, and a request
//! already on its way there is lost).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Version};
use axum::middleware::Next;
use axum::response::Response;

/// Whether this instance is draining; shared by the signal and the router.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// From now on, until the stop.
    pub fn begin(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Asks the client to close its connection after this answer while the
/// instance drains (HTTP/2 connections are told by hyper's `GOAWAY` at
/// the stop).
pub async fn close_connections(draining: Draining, request: Request, next: Next) -> Response {
    let http1 = matches!(request.version(), Version::HTTP_10 | Version::HTTP_11);
    let mut response = next.run(request).await;
    if http1 && draining.is_on() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
