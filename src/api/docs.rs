//! The interactive API docs at `/docs`: Swagger UI's embedded assets showing
//! our own spec, offline.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::error::ApiError;
use super::headers;
use crate::state::AppState;

const ENTRY: &str = "/docs";

/// The docs' routes. Swagger UI's validator badge would call
/// validator.swagger.io, so it is off and the page works offline.
/// "Authorize" takes a user, queue or admin token, kept in the page's memory
/// only: persisted, it would sit in the local storage of the pages' origin,
/// admin token included.
pub fn router(spec: Value) -> Router<AppState> {
    let docs = SwaggerUi::new(ENTRY)
        .external_url_unchecked("/openapi.json", spec)
        .config(
            Config::default()
                .validator_url("none")
                .persist_authorization(false),
        );
    let docs = Router::from(docs)
        .layer(axum::middleware::map_response(docs_problems))
        .layer(axum::middleware::from_fn(page_at_the_entry));
    headers::protect_pages(docs, headers::DOCS_POLICY)
}

/// `/docs` is the page itself, not a redirect to `/docs/` that a client
/// which does not follow redirects (curl, httpx) would stop at. Its assets
/// are named from the root there, where relative names would miss `/docs/`.
async fn page_at_the_entry(request: Request, next: Next) -> Response {
    let fetched = matches!(*request.method(), Method::GET | Method::HEAD);
    if request.uri().path() != ENTRY || !fetched {
        return next.run(request).await;
    }
    match entry_page() {
        Some(page) => page,
        None => next.run(request).await,
    }
}

/// Swagger UI's page, its assets named from the root. It needs no settings:
/// they are in `swagger-initializer.js`.
fn entry_page() -> Option<Response> {
    let page = utoipa_swagger_ui::serve("index.html", Arc::new(Config::default())).ok()??;
    let html = rooted_under_docs(&String::from_utf8_lossy(&page.bytes));
    Some(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, page.content_type)],
            html,
        )
            .into_response(),
    )
}

/// `html` with every relative `href` and `src` named from the root, under
/// `/docs/`.
fn rooted_under_docs(html: &str) -> String {
    ["href=\"", "src=\""]
        .into_iter()
        .fold(html.to_string(), |html, attribute| {
            let mut parts = html.split(attribute);
            let mut rooted = parts.next().unwrap_or_default().to_string();
            for part in parts {
                rooted.push_str(attribute);
                let named_already = ["/", "#", "http:", "https:", "data:"]
                    .iter()
                    .any(|start| part.starts_with(start));
                if !named_already {
                    rooted.push_str(ENTRY);
                    rooted.push('/');
                }
                rooted.push_str(if named_already {
                    part
                } else {
                    part.strip_prefix("./").unwrap_or(part)
                });
            }
            rooted
        })
}

/// The docs' own router answers an unknown path under `/docs/` with an
/// empty 404, and a path that is not UTF-8 with a plain-text 400; every
/// other refusal is a problem document, so these are too.
async fn docs_problems(response: Response) -> Response {
    let status = response.status();
    let problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|kind| kind.as_bytes().starts_with(b"application/problem+json"));
    if !status.is_client_error() || problem {
        return response;
    }
    if status == StatusCode::NOT_FOUND {
        return ApiError::NotFound("route").into_response();
    }
    ApiError::BadRequest("the path under /docs/ is not valid".into()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_asset_names_are_rooted_under_the_docs_and_others_kept() {
        let html = r##"<link href="./swagger-ui.css"><link href="index.css"><script src="./a.js"></script><a href="/openapi.json"><a href="https://example.org/x"><a href="#top">"##;
        assert_eq!(
            rooted_under_docs(html),
            r##"<link href="/docs/swagger-ui.css"><link href="/docs/index.css"><script src="/docs/a.js"></script><a href="/openapi.json"><a href="https://example.org/x"><a href="#top">"##
        );
    }
}
