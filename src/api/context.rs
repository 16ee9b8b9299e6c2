//! The correlation id of a request: put on every event the request causes and
//! returned in the `x-correlation-id` header.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use crate::commands::CommandContext;

/// Response header carrying the correlation id.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The request's correlation id.
#[derive(Debug, Clone, Copy)]
pub struct Correlation(pub Uuid);

impl Correlation {
    /// The command context of this request, acting as `actor`.
    pub fn as_actor(self, actor: impl Into<String>) -> CommandContext {
        CommandContext {
            correlation_id: self.0,
            actor: actor.into(),
        }
    }
}

/// Gives each request a fresh correlation id and echoes it in the response.
pub async fn assign_correlation(mut request: Request, next: Next) -> Response {
    let correlation = Correlation(Uuid::now_v7());
    request.extensions_mut().insert(correlation);
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&correlation.0.to_string()) {
        response.headers_mut().insert(CORRELATION_HEADER, value);
    }
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Correlation {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Correlation>()
            .copied()
            .unwrap_or(Correlation(Uuid::now_v7())))
    }
}
