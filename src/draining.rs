//! The drain before a stop (`CONCERT_SHUTDOWN_DRAIN_SECS`). Once a stop is
//! asked for, the instance goes on serving for that long while `/readyz`
//! answers `503`, so that a load balancer sends it nothing new, and every
//! HTTP/1.x answer says `Connection: close`, so that its clients' next
//! requests open connections elsewhere instead of meeting the stop on a
//! kept-alive one (hyper closes idle ones at the stop, and a request
//! already on its way there is lost).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::{header, HeaderValue, Response};

/// Whether this instance is draining; shared by the signal and the connections.
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
/// instance drains, on HTTP/1.x (HTTP/2 connections are told by hyper's
/// `GOAWAY` at the stop). Done where hyper's connection takes the answer
/// back from the router, which already looks at every answer there,
/// rather than as one more layer of the router.
pub fn close_if_draining<B>(draining: &Draining, http1: bool, response: &mut Response<B>) {
    if http1 && draining.is_on() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}
