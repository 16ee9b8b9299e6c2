//! A user's place in a concert's waiting queue: waiting, then active, then
//! expired, never back. The entry number fixes the FIFO order of admission.

use chrono::{DateTime, Utc};
use cqrs_es::{event_sink::EventSink, Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{ConcertId, UserId};

/// One ticket in the queue.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct QueueTicket {
    state: TicketState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum TicketState {
    #[default]
    NotEntered,
    Waiting,
    Active {
        until: DateTime<Utc>,
    },
    Expired,
}

/// Why a ticket stopped being usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryReason {
    /// The active period ran out.
    Timeout,
    /// The holder paid for a seat.
    Paid,
}

/// What can be asked of a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::AsRefStr)]
pub enum QueueTicketCommand {
    /// Joins the queue; `entry_no` is the concert's next entry number and orders admission.
    EnterQueue {
        concert_id: ConcertId,
        user_id: UserId,
        entry_no: i64,
        now: DateTime<Utc>,
    },
    /// Lets a waiting ticket book until `until`. Admitting an active ticket changes nothing.
    Admit {
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    },
    /// Ends the ticket. Expiring an expired ticket changes nothing.
    Expire {
        reason: ExpiryReason,
        now: DateTime<Utc>,
    },
}

/// What happened to a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::AsRefStr)]
pub enum QueueTicketEvent {
    QueueEntered {
        concert_id: ConcertId,
        user_id: UserId,
        entry_no: i64,
        entered_at: DateTime<Utc>,
    },
    TicketAdmitted {
        admitted_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    TicketExpired {
        reason: ExpiryReason,
        expired_at: DateTime<Utc>,
    },
}

impl DomainEvent for QueueTicketEvent {
    fn event_type(&self) -> String {
        // The variant name, as every stored event has it (pinned by the tests).
        self.as_ref().to_string()
    }

    fn event_version(&self) -> String {
        super::EVENT_VERSION.to_string()
    }
}

/// Why a ticket command was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum QueueTicketError {
    #[error("the ticket is already in the queue")]
    AlreadyEntered,
    #[error("the ticket has expired")]
    Expired,
    #[error("the ticket was never entered")]
    NotEntered,
    #[error("an active ticket times out at {until}, not before")]
    NotDue { until: DateTime<Utc> },
    #[error("an admission must end after it starts")]
    AdmissionEndsBeforeItStarts,
}

impl Aggregate for QueueTicket {
    const TYPE: &'static str = "QueueTicket";
    type Command = QueueTicketCommand;
    type Event = QueueTicketEvent;
    type Error = QueueTicketError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            QueueTicketCommand::EnterQueue {
                concert_id,
                user_id,
                entry_no,
                now,
            } => Some(self.enter(concert_id, user_id, entry_no, now)?),
            QueueTicketCommand::Admit { now, until } => self.admit(now, until)?,
            QueueTicketCommand::Expire { reason, now } => self.expire(reason, now)?,
        };
        if let Some(event) = event {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.state = match event {
            QueueTicketEvent::QueueEntered { .. } => TicketState::Waiting,
            QueueTicketEvent::TicketAdmitted { expires_at, .. } => {
                TicketState::Active { until: expires_at }
            }
            QueueTicketEvent::TicketExpired { .. } => TicketState::Expired,
        };
    }
}

impl QueueTicket {
    fn enter(
        &self,
        concert_id: ConcertId,
        user_id: UserId,
        entry_no: i64,
        now: DateTime<Utc>,
    ) -> Result<QueueTicketEvent, QueueTicketError> {
        match self.state {
            TicketState::NotEntered => Ok(QueueTicketEvent::QueueEntered {
                concert_id,
                user_id,
                entry_no,
                entered_at: now,
            }),
            TicketState::Waiting | TicketState::Active { .. } => {
                Err(QueueTicketError::AlreadyEntered)
            }
            TicketState::Expired => Err(QueueTicketError::Expired),
        }
    }

    fn admit(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<QueueTicketEvent>, QueueTicketError> {
        if until <= now {
            return Err(QueueTicketError::AdmissionEndsBeforeItStarts);
        }
        match self.state {
            TicketState::Waiting => Ok(Some(QueueTicketEvent::TicketAdmitted {
                admitted_at: now,
                expires_at: until,
            })),
            TicketState::Active { .. } => Ok(None),
            TicketState::NotEntered => Err(QueueTicketError::NotEntered),
            TicketState::Expired => Err(QueueTicketError::Expired),
        }
    }

    fn expire(
        &self,
        reason: ExpiryReason,
        now: DateTime<Utc>,
    ) -> Result<Option<QueueTicketEvent>, QueueTicketError> {
        let expired = QueueTicketEvent::TicketExpired {
            reason,
            expired_at: now,
        };
        match (self.state, reason) {
            (TicketState::NotEntered, _) => Err(QueueTicketError::NotEntered),
            (TicketState::Expired, _) => Ok(None),
            (TicketState::Active { until }, ExpiryReason::Timeout) if until > now => {
                Err(QueueTicketError::NotDue { until })
            }
            (TicketState::Waiting | TicketState::Active { .. }, _) => Ok(Some(expired)),
        }
    }
}

#[cfg(test)]
mod tests;
