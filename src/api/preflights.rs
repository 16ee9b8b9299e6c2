//! tower-http's CORS layer answers every OPTIONS request as a preflight,
//! whatever it carries: `OPTIONS /api/v1/payments` without an `Origin`,
//! which no browser sends, got an empty `200` with CORS configured and the
//! router's `405` problem without. A preflight is what the Fetch standard
//! sends: OPTIONS with `Origin` and `Access-Control-Request-Method`. Only
//! that is the CORS layer's to answer; any other OPTIONS request skips it
//! and is answered as it is without CORS, and every other request passes
//! through it as before.

use std::task::{Context, Poll};

use axum::http::header::{ACCESS_CONTROL_REQUEST_METHOD, ORIGIN};
use axum::http::{Method, Request};
use futures::future::Either;
use tower::{Layer, Service};
use tower_http::cors::{Cors, CorsLayer};

/// [`CorsLayer`], with OPTIONS requests that are no preflight left to the
/// service it wraps.
#[derive(Clone)]
pub struct PreflightsOnlyLayer(pub CorsLayer);

impl<S: Clone> Layer<S> for PreflightsOnlyLayer {
    type Service = PreflightsOnly<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PreflightsOnly {
            cors: self.0.layer(inner.clone()),
            plain: inner,
        }
    }
}

#[derive(Clone)]
pub struct PreflightsOnly<S> {
    cors: Cors<S>,
    plain: S,
}

impl<S, B> Service<Request<B>> for PreflightsOnly<S>
where
    S: Service<Request<B>, Response = axum::http::Response<axum::body::Body>> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<<Cors<S> as Service<Request<B>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        match self.cors.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.plain.poll_ready(cx),
            not_ready => not_ready,
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.method() == Method::OPTIONS && !is_preflight(&request) {
            Either::Right(self.plain.call(request))
        } else {
            Either::Left(self.cors.call(request))
        }
    }
}

fn is_preflight<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    headers.contains_key(ORIGIN) && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
}
