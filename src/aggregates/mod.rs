//! The aggregates: each one guards the rules of one thing and records what happened as events.

pub mod concert;
pub mod queue_ticket;
pub mod seat;
pub mod wallet;

#[cfg(test)]
mod stored;

pub use concert::{Concert, ConcertCommand, ConcertDate, ConcertError, ConcertEvent};
pub use queue_ticket::{
    ExpiryReason, QueueTicket, QueueTicketCommand, QueueTicketError, QueueTicketEvent,
};
pub use seat::{Seat, SeatCommand, SeatError, SeatEvent, SALE_VERSION};
pub use wallet::{Wallet, WalletCommand, WalletError, WalletEvent};

/// Version written into every event payload's `event_version` but a sale's
/// (`seat::SALE_VERSION`). A change to an event's fields gets a new variant
/// or version; stored events are never rewritten.
pub const EVENT_VERSION: &str = "1";

/// The versions of `event_type` the service has ever written: a sale is of
/// version 1 unless it names its ticket, every other event is.
pub fn versions_written(event_type: &str) -> &'static [&'static str] {
    if event_type == "SeatSold" {
        &[EVENT_VERSION, SALE_VERSION]
    } else {
        &[EVENT_VERSION]
    }
}
