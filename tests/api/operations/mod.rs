//! What operators and client generators rely on: the OpenAPI spec matches the
//! router and the API's contract, the docs page works offline, metrics, request
//! ids, health and readiness.

mod cors;
mod docs_page;
mod monitoring;
mod spec;
