//! One seat of one date: it has at most one holder at a time, a hold lapses at
//! its deadline, and a sold seat stays sold to the one who paid for it.

use chrono::{DateTime, Utc};
use cqrs_es::{event_sink::EventSink, Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{DateId, PaymentId, ReservationId, TicketId, UserId};
use crate::money::Won;

/// A seat and who, if anyone, has it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Seat {
    state: SeatState,
    /// Every reservation that ever held this seat: one id holds once. A
    /// keyed retry derives the id of the hold it repeats, and a second hold
    /// under it would be one the reservations' read model never shows (and
    /// the scheduler never expires).
    #[serde(default)]
    holds: Vec<ReservationId>,
    /// The seat's date, known from its first hold (seats are created by
    /// their concert, not by an event of their own).
    #[serde(default)]
    date_id: Option<DateId>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
enum SeatState {
    #[default]
    Free,
    Held {
        reservation_id: ReservationId,
        user_id: UserId,
        price: Won,
        until: DateTime<Utc>,
    },
    Sold {
        reservation_id: ReservationId,
        payment_id: PaymentId,
    },
}

/// What can be asked of a seat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::AsRefStr)]
pub enum SeatCommand {
    /// Holds the seat for a user until `until`. Where the seat is and what it
    /// costs come from the catalog, looked up before the command is sent.
    HoldSeat {
        reservation_id: ReservationId,
        user_id: UserId,
        date_id: DateId,
        seat_no: u32,
        /// In won; the decision and its event carry it as `Won`.
        price: Won,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// Ends a hold whose deadline has passed. Harmless when the hold is already gone.
    ExpireHold {
        reservation_id: ReservationId,
        now: DateTime<Utc>,
    },
    /// Gives the seat back before the deadline (the holder changed their mind).
    ReleaseHold { reservation_id: ReservationId },
    /// Sells the seat to the holder of a live hold, for a payment already
    /// taken with the queue ticket `ticket_id` (`None` when a recovered
    /// payment's ticket is no longer known).
    ConfirmSeat {
        reservation_id: ReservationId,
        payment_id: PaymentId,
        ticket_id: Option<TicketId>,
        now: DateTime<Utc>,
    },
}

/// What happened to a seat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::AsRefStr)]
pub enum SeatEvent {
    SeatHeld {
        reservation_id: ReservationId,
        user_id: UserId,
        date_id: DateId,
        seat_no: u32,
        price: Won,
        held_at: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    HoldExpired {
        reservation_id: ReservationId,
        expired_at: DateTime<Utc>,
    },
    HoldReleased {
        reservation_id: ReservationId,
    },
    /// Version 2 names the queue ticket the payment spent, so an auditor
    /// can hold each admission to one seat; version 1 has no `ticket_id`.
    SeatSold {
        reservation_id: ReservationId,
        payment_id: PaymentId,
        user_id: UserId,
        price: Won,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ticket_id: Option<TicketId>,
    },
}

/// The version of a `SeatSold` that names its ticket. A sale that cannot
/// (a recovered payment whose ticket lapsed) is still written as version 1.
pub const SALE_VERSION: &str = "2";

impl DomainEvent for SeatEvent {
    fn event_type(&self) -> String {
        // The variant name, as every stored event has it (pinned by the tests).
        self.as_ref().to_string()
    }

    fn event_version(&self) -> String {
        match self {
            SeatEvent::SeatSold {
                ticket_id: Some(_), ..
            } => SALE_VERSION.to_string(),
            _ => super::EVENT_VERSION.to_string(),
        }
    }
}

/// Why a seat command was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SeatError {
    #[error("the seat is held or sold")]
    SeatUnavailable,
    #[error("hold {reservation_id} is not live on this seat")]
    HoldLapsed { reservation_id: ReservationId },
    #[error("the seat was already sold for reservation {reservation_id}")]
    AlreadySold { reservation_id: ReservationId },
    #[error("hold {reservation_id} runs until {until}")]
    HoldNotDue {
        reservation_id: ReservationId,
        until: DateTime<Utc>,
    },
    #[error("a hold must end after it starts")]
    HoldEndsBeforeItStarts,
    #[error("reservation {reservation_id} has held this seat already")]
    ReservationUsed { reservation_id: ReservationId },
}

impl Aggregate for Seat {
    const TYPE: &'static str = "Seat";
    type Command = SeatCommand;
    type Event = SeatEvent;
    type Error = SeatError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let events = match command {
            SeatCommand::HoldSeat {
                reservation_id,
                user_id,
                date_id,
                seat_no,
                price,
                now,
                until,
            } => self.hold(reservation_id, user_id, date_id, seat_no, price, now, until)?,
            SeatCommand::ExpireHold {
                reservation_id,
                now,
            } => self.expire(reservation_id, now)?,
            SeatCommand::ReleaseHold { reservation_id } => self.release(reservation_id),
            SeatCommand::ConfirmSeat {
                reservation_id,
                payment_id,
                ticket_id,
                now,
            } => self.confirm(reservation_id, payment_id, ticket_id, now)?,
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.state = match event {
            SeatEvent::SeatHeld {
                reservation_id,
                user_id,
                date_id,
                price,
                until,
                ..
            } => {
                self.holds.push(reservation_id);
                self.date_id = Some(date_id);
                SeatState::Held {
                    reservation_id,
                    user_id,
                    price,
                    until,
                }
            }
            SeatEvent::HoldExpired { .. } | SeatEvent::HoldReleased { .. } => SeatState::Free,
            SeatEvent::SeatSold {
                reservation_id,
                payment_id,
                ..
            } => SeatState::Sold {
                reservation_id,
                payment_id,
            },
        };
    }
}

impl Seat {
    /// The seat's date, once it has been held.
    pub fn date_id(&self) -> Option<DateId> {
        self.date_id
    }

    #[allow(clippy::too_many_arguments)]
    fn hold(
        &self,
        reservation_id: ReservationId,
        user_id: UserId,
        date_id: DateId,
        seat_no: u32,
        price: Won,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<SeatEvent>, SeatError> {
        if until <= now {
            return Err(SeatError::HoldEndsBeforeItStarts);
        }
        if self.holds.contains(&reservation_id) {
            return Err(SeatError::ReservationUsed { reservation_id });
        }
        let held = SeatEvent::SeatHeld {
            reservation_id,
            user_id,
            date_id,
            seat_no,
            price,
            held_at: now,
            until,
        };
        match &self.state {
            SeatState::Free => Ok(vec![held]),
            // A lapsed hold the scheduler has not reached yet: record its end first,
            // so the history never shows two holders at once.
            SeatState::Held {
                reservation_id: lapsed,
                until: deadline,
                ..
            } if *deadline <= now => Ok(vec![
                SeatEvent::HoldExpired {
                    reservation_id: *lapsed,
                    expired_at: now,
                },
                held,
            ]),
            SeatState::Held { .. } | SeatState::Sold { .. } => Err(SeatError::SeatUnavailable),
        }
    }

    fn expire(
        &self,
        reservation_id: ReservationId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SeatEvent>, SeatError> {
        match &self.state {
            SeatState::Held {
                reservation_id: held,
                until,
                ..
            } if *held == reservation_id => {
                if *until > now {
                    return Err(SeatError::HoldNotDue {
                        reservation_id,
                        until: *until,
                    });
                }
                Ok(vec![SeatEvent::HoldExpired {
                    reservation_id,
                    expired_at: now,
                }])
            }
            // Already expired, released or sold: nothing left to expire.
            _ => Ok(vec![]),
        }
    }

    fn release(&self, reservation_id: ReservationId) -> Vec<SeatEvent> {
        match &self.state {
            SeatState::Held {
                reservation_id: held,
                ..
            } if *held == reservation_id => {
                vec![SeatEvent::HoldReleased { reservation_id }]
            }
            _ => vec![],
        }
    }

    fn confirm(
        &self,
        reservation_id: ReservationId,
        payment_id: PaymentId,
        ticket_id: Option<TicketId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SeatEvent>, SeatError> {
        match &self.state {
            SeatState::Held {
                reservation_id: held,
                user_id,
                price,
                until,
            } if *held == reservation_id && *until > now => Ok(vec![SeatEvent::SeatSold {
                reservation_id,
                payment_id,
                user_id: *user_id,
                price: *price,
                ticket_id,
            }]),
            // The same payment confirming again (a retried step) changes nothing.
            SeatState::Sold {
                reservation_id: sold,
                payment_id: paid,
            } if *sold == reservation_id && *paid == payment_id => Ok(vec![]),
            SeatState::Sold {
                reservation_id: sold,
                ..
            } => Err(SeatError::AlreadySold {
                reservation_id: *sold,
            }),
            _ => Err(SeatError::HoldLapsed { reservation_id }),
        }
    }
}

#[cfg(test)]
mod tests;
