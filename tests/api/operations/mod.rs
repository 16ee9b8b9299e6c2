//! What operators, client generators and browsers rely on: the OpenAPI spec
//! matches the router and the API's contract, the docs page works offline,
//! the response headers browsers and caches act on, metrics, request ids,
//! health and readiness.

mod cli_output;
mod cors;
mod database_encoding;
mod docs_page;
mod log_filter;
mod migrations;
mod missing_store;
mod monitoring;
mod problem_types;
mod response_headers;
mod spec;
