//! Live updates over HTTP, against real servers on a real PostgreSQL: a
//! date's seat stream sends a snapshot then every hold, expiry and sale; a
//! change committed through one instance reaches a subscriber of another;
//! `Last-Event-ID` replays a missed hold; the standing stream follows an
//! admission; and streams end cleanly when the service stops.

mod harness;
mod listing;
mod streams;
