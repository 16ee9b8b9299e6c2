//! The HTTP API: `router()` merges each resource's routes under `/api/v1`, adds
//! the operational endpoints, and wraps them in the serving layers.

mod audit;
mod auth;
mod bounded;
mod client;
mod concerts;
mod context;
mod docs;
pub mod error;
mod extract;
mod headers;
mod health;
mod idempotent;
mod json_headers;
mod links;
pub(crate) mod live;
pub(crate) mod middleware;
mod objects_only;
mod paged_array;
mod pages;
mod payments;
mod preflights;
pub(crate) mod problem_types;
mod protocol_answers;
mod queue;
mod ranged_query;
mod read_source;
mod request_limits;
mod reservations;
mod users;
mod wallet;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::response::Response;
use axum::Extension;
use axum::Router;
use serde_json::Value;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use context::CORRELATION_HEADER;

use crate::state::AppState;
use client::EntryLimiter;
use error::ApiError;
use preflights::PreflightsOnlyLayer;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The most a request head may take, HTTP/1.1 line and headers or HTTP/2
/// header list: a token and a few headers need a few KiB. hyper's own
/// default (~400 KiB) let each unfinished head hold that much for the whole
/// request timeout.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(OpenApi)]
#[openapi(
    info(title = "concert", description = "Event-sourced concert seat booking"),
    modifiers(&BearerAuth),
    components(schemas(error::Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    /// The three credentials, all sent as `Authorization: Bearer`; each
    /// operation names the one it takes.
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |format: &str, description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(format)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "user_token",
            bearer(
                "JWT",
                "Who the caller is: a JWT whose `sub` is the user's id, from the identity \
                 provider or, without one, `POST /api/v1/users/{user_id}/tokens` (admin).",
            ),
        );
        components.add_security_scheme(
            "queue_token",
            bearer(
                "queue token",
                "The `token` of `POST /api/v1/queue/tokens`: a place in one concert's queue.",
            ),
        );
        components.add_security_scheme(
            "admin_token",
            bearer("admin token", "The value of `CONCERT_ADMIN_TOKEN`."),
        );
    }
}

/// The routes and their OpenAPI description.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let api = OpenApiRouter::new()
        .merge(concerts::router())
        .merge(queue::router())
        .merge(reservations::router())
        .merge(users::router())
        .merge(wallet::router())
        .merge(payments::router())
        .merge(audit::router());
    let doc = ApiDoc::openapi()
        .merge_from(live::LiveDoc::openapi())
        .merge_from(pages::PagesDoc::openapi());
    OpenApiRouter::with_openapi(doc)
        .nest("/api/v1", api)
        .merge(health::router())
        .split_for_parts()
}

/// The spec as served at `/openapi.json`: utoipa's document plus the links
/// between operations.
pub fn openapi_document(openapi: &utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(openapi).expect("an OpenAPI document is JSON");
    links::add_links(&mut document);
    protocol_answers::add_protocol_answers(&mut document);
    document
}

/// The whole service: routes, docs, metrics and the serving layers.
pub fn router(app: AppState) -> Router {
    let (routes, openapi) = routes();
    let timeout = Duration::from_secs(app.config.request_timeout_secs);
    let origins: Vec<&str> = (app.config.cors_origins.iter())
        .map(String::as_str)
        .filter(|origin| !origin.is_empty())
        .collect();
    let cors = (!origins.is_empty()).then(|| PreflightsOnlyLayer(cors_layer(&origins)));
    let entry_limiter = EntryLimiter::new(
        app.config.queue_entry_rate_per_sec,
        app.config.queue_entry_burst,
    );
    // Installed now, so that what happens before the first scrape is counted.
    let _ = crate::telemetry::metrics_handle();
    routes
        .merge(live::router())
        .merge(pages::router())
        .merge(problem_types::router())
        .merge(docs::router(openapi_document(&openapi)))
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(app)
        .layer(Extension(entry_limiter))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(request_limits::check_framing))
        .layer(axum::middleware::from_fn(middleware::record_http_metrics))
        .layer(axum::middleware::from_fn(move |request, next| {
            request_limits::time_limit(timeout, request, next)
        }))
        // Outside the time limit, so that a request cut by it (503, or 408
        // for a body too slow) is answered with its correlation id too.
        .layer(axum::middleware::from_fn(context::assign_correlation))
        .layer(tower::util::option_layer(cors))
        .layer(axum::middleware::map_response(date_by_the_database_clock))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(middleware::request_span)
                .on_response(middleware::log_request_finished)
                // `ApiError` logs each failure's cause once (a 503 as a
                // warning); tower-http's own ERROR line for every 5xx
                // filled the log during a database outage.
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::from_fn(|request, next| {
            request_limits::drop_unusable_request_id(REQUEST_ID, request, next)
        }))
        .layer(axum::middleware::from_fn(headers::api_answers))
        .layer(headers::nosniff())
}

/// Every answer's `Date` on the clock its deadlines are on (hyper would
/// write this machine's own, which may be off the database's).
async fn date_by_the_database_clock(mut response: Response) -> Response {
    if let Ok(date) = axum::http::HeaderValue::from_str(&crate::clock::http_date()) {
        response
            .headers_mut()
            .entry(axum::http::header::DATE)
            .or_insert(date);
    }
    response
}

/// The request headers a browser on an allowed origin may send. Named one by
/// one: the Fetch standard's `*` never covers `Authorization`, so with it no
/// authenticated call could be made.
const CORS_REQUEST_HEADERS: [HeaderName; 6] = [
    axum::http::header::AUTHORIZATION,
    axum::http::header::CONTENT_TYPE,
    axum::http::header::ACCEPT,
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("last-event-id"),
    REQUEST_ID,
];

/// The response headers such a browser's script may read besides the
/// safelisted ones.
const CORS_RESPONSE_HEADERS: [HeaderName; 6] = [
    REQUEST_ID,
    HeaderName::from_static(CORRELATION_HEADER),
    // The pages time a hold's countdown by the server's clock.
    axum::http::header::DATE,
    // When a 429 or 503 is worth trying again, and what a 401 wants.
    axum::http::header::RETRY_AFTER,
    axum::http::header::WWW_AUTHENTICATE,
    // Where a 201's new resource is read.
    axum::http::header::LOCATION,
];

fn cors_layer(origins: &[&str]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods(Any)
        .allow_headers(CORS_REQUEST_HEADERS)
        .expose_headers(CORS_RESPONSE_HEADERS);
    if origins.contains(&"*") {
        return layer.allow_origin(Any);
    }
    let origins = origins
        .iter()
        .filter_map(|origin| origin.parse().ok())
        .collect::<Vec<_>>();
    layer.allow_origin(AllowOrigin::list(origins))
}
