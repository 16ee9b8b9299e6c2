//! Live updates over HTTP, against real servers on a real PostgreSQL: a
//! date's seat stream sends a snapshot then every hold, expiry and sale; a
//! change committed through one instance reaches a subscriber of another;
//! `Last-Event-ID` replays a missed hold; the standing stream follows an
//! admission; streams end cleanly when the service stops; and the seat
//! listing, answered from the feed's memory, shows a client its own writes at
//! once and another instance's within the feed's lag; a hold read from memory
//! is still decided by the seat's aggregate.

mod harness;
mod holds;
mod listing;
mod streams;
