//! Live updates over HTTP, against real servers on a real PostgreSQL: a
//! date's seat stream sends a snapshot then every hold, expiry and sale; a
//! change committed through one instance reaches a subscriber of another;
//! `Last-Event-ID` replays a missed hold; the standing stream follows an
//! admission; streams end cleanly when the service stops; and the seat
//! listing, answered from the feed's memory, shows a client its own writes at
//! once and another instance's within the feed's lag; holds beside that
//! memory: a spent token holds nothing more, a seat another instance just
//! held is refused, a seat memory shows taken is refused without a query;
//! streams as raw HTTP/1.1, on a connection of their own or after another
//! request on a kept-alive one; a waiting room whose tokens move up
//! together when the line moves; and a look at one's place, answered from
//! the same memory, following the line on every instance.

mod connections;
mod harness;
mod holds;
mod listing;
mod looks;
mod pages;
mod streams;
mod token_streams;
mod waiting_room;
