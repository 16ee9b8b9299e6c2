//! What a request may take and how it must be framed, checked before any
//! handler runs: its time, the size it announces, one `Host`, and a request
//! id fit to be echoed and logged.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, HOST};
use axum::http::{HeaderName, HeaderValue, Version};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};

use super::error::ApiError;
use super::{MAX_BODY_BYTES, MAX_HEAD_BYTES};

/// Longest request id echoed and logged; a longer one is replaced.
const MAX_REQUEST_ID_LEN: usize = 200;

/// Answers `503 unavailable` as a problem document when a request runs longer
/// than the request timeout; the handler is dropped, and with it any
/// transaction it had open. When the client had not sent its whole body by
/// then, the slowness was its own: `408`.
pub async fn time_limit(limit: Duration, request: Request, next: Next) -> Response {
    let arrived = Arc::new(AtomicBool::new(request.body().is_end_stream()));
    let request = request.map(|body| {
        Body::new(Arrival {
            body,
            arrived: arrived.clone(),
        })
    });
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) if !arrived.load(Ordering::Acquire) => {
            ApiError::RequestTimeout(limit.as_secs()).into_response()
        }
        Err(_) => ApiError::Unavailable(format!(
            "the request took longer than {} s",
            limit.as_secs()
        ))
        .into_response(),
    }
}

/// A request body that notes when its last byte has arrived.
struct Arrival {
    body: Body,
    arrived: Arc<AtomicBool>,
}

impl HttpBody for Arrival {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            self.arrived.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Refuses what no handler should see: an HTTP/1.1 request without exactly
/// one `Host`, or with one that is not a host (RFC 9112 §3.2), an authority
/// in the target or HTTP/2's `:authority` that is not one either (RFC 9113
/// §8.3.1 forbids user information there too), and a body announced larger
/// than any route takes, at once (before `100 Continue` invites the client
/// to send it); and a head larger than `MAX_HEAD_BYTES`.
pub async fn check_framing(request: Request, next: Next) -> Response {
    if head_bytes(&request) > MAX_HEAD_BYTES {
        let mut refused = ApiError::HeadTooLarge.into_response();
        if request.version() <= Version::HTTP_11 {
            // As hyper's own refusal of a head does.
            refused
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        return refused;
    }
    let hosts = request.headers().get_all(HOST).iter().count();
    if hosts > 1 || (hosts == 0 && request.version() == Version::HTTP_11) {
        return ApiError::BadRequest("an HTTP/1.1 request needs exactly one Host header".into())
            .into_response();
    }
    if request
        .headers()
        .get(HOST)
        .is_some_and(|host| !is_host(host.as_bytes()))
    {
        return ApiError::BadRequest("the Host header is not a host and port".into())
            .into_response();
    }
    if request
        .uri()
        .authority()
        .is_some_and(|authority| !is_host(authority.as_str().as_bytes()))
    {
        return ApiError::BadRequest("the request's authority is not a host and port".into())
            .into_response();
    }
    let announced = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if announced.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(request).await
}

/// The size of a request's head as HTTP/1.1 writes it: its line, and each
/// header as `name: value` and a line end. hyper's buffer bounds a head to
/// `MAX_HEAD_BYTES` only on a connection's first request: on a connection
/// that had served one, heads of up to 64 KiB were served.
fn head_bytes(request: &Request) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |target| target.as_str().len());
    let line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let headers: usize = (request.headers().iter())
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + headers + 2
}

/// Whether `value` is a `Host` header's `uri-host [ ":" port ]` (RFC 9112
/// §3.2): an authority without user information, its port digits.
fn is_host(value: &[u8]) -> bool {
    let Ok(authority) = axum::http::uri::Authority::try_from(value) else {
        return false;
    };
    let port_given = authority
        .as_str()
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && !port.ends_with(']'));
    !authority.as_str().contains('@')
        && !authority.host().is_empty()
        && (!port_given || authority.port_u16().is_some())
}

/// Drops a request id that is too long or not plain visible ASCII, so that
/// a fresh one is made: it is echoed in the answer and written on every log
/// line of the request.
pub async fn drop_unusable_request_id(
    header: HeaderName,
    mut request: Request,
    next: Next,
) -> Response {
    let usable = |value: &axum::http::HeaderValue| {
        (1..=MAX_REQUEST_ID_LEN).contains(&value.len())
            && value.as_bytes().iter().all(u8::is_ascii_graphic)
    };
    if request.headers().get_all(&header).iter().count() > 1
        || request
            .headers()
            .get(&header)
            .is_some_and(|value| !usable(value))
    {
        request.headers_mut().remove(&header);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_header_is_a_host_and_an_optional_port() {
        for host in [
            "x",
            "127.0.0.1:8080",
            "tickets.example",
            "[::1]",
            "[::1]:8080",
            "localhost:",
        ] {
            assert!(is_host(host.as_bytes()), "{host}");
        }
        for not_a_host in [
            "a b/c",
            "@evil",
            "user@host",
            "[::1",
            "x:abc",
            "",
            "/path",
            "x:99999",
        ] {
            assert!(!is_host(not_a_host.as_bytes()), "{not_a_host}");
        }
    }
}
