//! This instance's own commits, applied to the feed's memory before their
//! commands are answered: a client that held, paid or released a seat lists
//! the date as it left it, a token spent by a payment is refused at once, and
//! a look at a place in the line shows the admissions and expiries made here.

use uuid::Uuid;

use super::changes::SeatStatus;
use super::Feed;
use crate::aggregates::{QueueTicket, QueueTicketEvent, Seat, SeatEvent};
use crate::event_store::AfterCommit;

impl AfterCommit<Seat> for Feed {
    fn committed(&self, aggregate_id: &str, seat: &Seat, sequence: usize, event: &SeatEvent) {
        let Ok(seat_id) = Uuid::parse_str(aggregate_id) else {
            return;
        };
        let Some(status) = SeatStatus::after(event.as_ref()) else {
            return;
        };
        if status == SeatStatus::Sold {
            self.sold_out().seat_sold();
        }
        let date_id = match event {
            SeatEvent::SeatHeld { date_id, .. } => Some(date_id.0),
            _ => seat.date_id().map(|date_id| date_id.0),
        };
        self.seat_maps()
            .committed(date_id, seat_id, sequence as i64, status);
    }
}

impl AfterCommit<QueueTicket> for Feed {
    fn committed(
        &self,
        aggregate_id: &str,
        _: &QueueTicket,
        sequence: usize,
        event: &QueueTicketEvent,
    ) {
        if let Ok(ticket_id) = Uuid::parse_str(aggregate_id) {
            self.tickets().forget(ticket_id, sequence as i64);
        }
        // A new entry joins behind everyone: nobody's place moves.
        if !matches!(event, QueueTicketEvent::QueueEntered { .. }) {
            self.standings().moved_here();
        }
    }
}
