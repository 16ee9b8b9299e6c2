//! A typed HTTP client of the concert REST API (version 1, revision 2; see
//! API.md), shared by the load generator and the tests. One [`Client`] spreads
//! its calls round-robin over the servers it is given, signs users in with the
//! admin token (and keeps their user tokens), and tells an optional
//! [`Observer`] of every call: endpoint name, status and time taken. A call
//! returns the raw [`Answer`] (status, content type, body), which decodes into
//! the response types below or into a [`Problem`]; a call that got no answer
//! is an [`Error::Transport`], so callers tell "the server said no" from "the
//! server did not answer".
//!
//! The calls live in one file per resource, as the server's routes do.

mod answer;
mod audit;
mod client;
mod concerts;
mod error;
mod health;
mod observer;
mod payments;
mod queue;
mod reservations;
mod users;
mod wallet;

#[cfg(test)]
mod fake_server;

pub use answer::{Answer, Problem};
pub use audit::{EventList, EventPage, LoggedEvent};
pub use client::{Client, Options};
pub use concerts::{
    BookableDate, Concert, ConcertList, ConcertSummary, DateList, FreeSeat, NewConcert, NewDate,
    ScheduledDate, SeatPage,
};
pub use error::Error;
pub use observer::{Call, Observer};
pub use payments::Payment;
pub use queue::QueueToken;
pub use reservations::Reservation;
pub use users::UserToken;
pub use wallet::Balance;
