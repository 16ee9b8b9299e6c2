//! Response headers set on whole groups of answers rather than by each
//! handler: a browser's protections for the pages and the docs, `nosniff` on
//! every answer, and `no-store` and the `Bearer` challenge's error on the
//! API's. SECURITY.md, "Response headers", lists them.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// The pages': nothing but this origin, for scripts, styles, fetches and
/// images (and `data:` images); no plugins, no `<base>`, no framing. No
/// inline script or style, no `eval`.
pub const PAGE_POLICY: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Swagger UI's: the pages' policy, and the one inline style sheet it needs
/// (by its hash, not `'unsafe-inline'`): the `<style>` of the logo on its top
/// bar, drawn black on black without it. Its style sheet's icons are
/// `data:` images; it has no inline script and does not need `eval`.
/// `api::operations::docs_page` checks the hash against the served script.
pub const DOCS_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The challenge of a `401` (RFC 9110 §11.6.1, RFC 6750 §3) to a request
/// that sent no credential.
pub const BEARER_CHALLENGE: HeaderValue = HeaderValue::from_static("Bearer");

/// The challenge of a `401` to a request whose credential was refused.
const INVALID_TOKEN_CHALLENGE: HeaderValue =
    HeaderValue::from_static("Bearer error=\"invalid_token\"");

/// The protections of pages (the booking and auditors' pages, the docs) on
/// every answer of `router`'s routes: `policy`, no framing by older browsers
/// either (`X-Frame-Options`), and no `Referer` sent from them: the pages
/// handle tokens.
pub fn protect_pages<S>(router: Router<S>, policy: &'static str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}

/// Every answer is read as the type it declares, never sniffed as another
/// (a JSON body that looks like HTML stays JSON).
pub fn nosniff() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    )
}

/// Whether `path` is the API's: tokens, balances, reservations and the log
/// are answered there.
fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The API's answers: kept by no cache, shared or the browser's, unless the
/// route says otherwise (an event stream's `no-cache`); and a `401` to a
/// request that sent a bearer token says it was refused (RFC 6750 §3.1). A
/// credential of another scheme (`Basic`) is answered as none was sent: the
/// client did not know the scheme, and gets no error code.
pub async fn api_answers(request: Request, next: Next) -> Response {
    if !is_api(request.uri().path()) {
        return next.run(request).await;
    }
    let credential_sent = (request.headers().get(header::AUTHORIZATION))
        .is_some_and(|value| is_bearer(value.as_bytes()));
    let mut response = next.run(request).await;
    let refused = response.status() == StatusCode::UNAUTHORIZED;
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if refused && credential_sent {
        headers.insert(header::WWW_AUTHENTICATE, INVALID_TOKEN_CHALLENGE);
    }
    response
}

/// Whether an `Authorization` value is of the `Bearer` scheme (its name
/// is case-insensitive, RFC 9110 §11.1).
fn is_bearer(value: &[u8]) -> bool {
    let scheme = value.split(|byte| *byte == b' ').next().unwrap_or_default();
    scheme.eq_ignore_ascii_case(b"bearer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_credential_is_told_from_other_schemes() {
        for bearer in ["Bearer abc", "bearer abc", "BEARER", "Bearer"] {
            assert!(is_bearer(bearer.as_bytes()), "{bearer}");
        }
        for other in [
            "Basic YWRtaW46YWRt",
            "Bearerabc",
            "",
            "Token abc",
            " Bearer abc",
        ] {
            assert!(!is_bearer(other.as_bytes()), "{other}");
        }
    }

    #[test]
    fn the_docs_policy_is_the_pages_one_with_a_single_inline_style_allowed() {
        let (head, tail) = PAGE_POLICY.split_once(" object-src").unwrap();
        let style = "style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w=';";
        assert_eq!(DOCS_POLICY, format!("{head} {style} object-src{tail}"));
    }

    #[test]
    fn the_api_is_its_prefix_and_nothing_that_merely_starts_alike() {
        for path in ["/api", "/api/", "/api/v1/concerts", "/api/v2/unknown"] {
            assert!(is_api(path), "{path}");
        }
        for path in [
            "/",
            "/apis",
            "/api-docs",
            "/audit",
            "/docs/",
            "/openapi.json",
        ] {
            assert!(!is_api(path), "{path}");
        }
    }
}
