//! `BookingError`: what went wrong in a booking step, in the domain's words,
//! and whether trying again may help. `src/api` turns it into a problem
//! document; the scheduler only asks whether it is transient.

use cqrs_es::AggregateError;

use crate::aggregates::{ConcertError, QueueTicketError, SeatError, WalletError};
use crate::event_store::{PaymentRefused, Unstorable};
use crate::money::Won;

/// A booking step that did not happen, and why.
#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// Input the rules cannot take: out of range, too large, inconsistent.
    #[error("{0}")]
    OutOfRange(String),
    /// Input that is malformed before any rule looks at it.
    #[error("{0}")]
    Malformed(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The queue ticket does not open this step (still waiting, another concert).
    #[error("{0}")]
    TicketNotActive(&'static str),
    /// The queue ticket has expired or was spent.
    #[error("the queue token has expired")]
    TicketExpired,
    #[error("the balance {balance} is below the price {amount}")]
    InsufficientBalance { balance: Won, amount: Won },
    #[error("the seat is held or sold")]
    SeatUnavailable,
    /// The seat's date has begun: its seats are no longer sold.
    #[error("the date has begun; its seats are no longer sold")]
    DateBegun,
    #[error("the hold has lapsed")]
    HoldExpired,
    #[error("the reservation is already paid")]
    AlreadyPaid,
    #[error("the waiting queue of this concert is full; retry later")]
    QueueFull,
    /// The database is down, too busy, or a write lost a race: nothing
    /// happened, and the same step may succeed later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupted data.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BookingError {
    /// Whether the same step may succeed when tried again.
    pub fn is_transient(&self) -> bool {
        matches!(self, BookingError::Unavailable(_))
    }
}

impl From<sqlx::Error> for BookingError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database) = &error {
            // Class 22, data exception: the input cannot be stored (a NUL byte,
            // an invalid escape); retrying would not help.
            if database.code().is_some_and(|code| code.starts_with("22")) {
                return BookingError::Malformed(
                    "the request holds a value the database cannot store".into(),
                );
            }
        }
        match error {
            sqlx::Error::Decode(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::TypeNotFound { .. } => BookingError::Internal(error.to_string()),
            other => BookingError::Unavailable(other.to_string()),
        }
    }
}

impl<E> From<AggregateError<E>> for BookingError
where
    E: std::error::Error + Into<BookingError>,
{
    fn from(error: AggregateError<E>) -> Self {
        match error {
            AggregateError::UserError(rule) => rule.into(),
            // Callers retry conflicts where a retry can succeed; one that still
            // reaches here changed nothing, so the client may simply retry.
            AggregateError::AggregateConflict => {
                BookingError::Unavailable("concurrent write; retry".into())
            }
            AggregateError::DatabaseConnectionError(cause) => {
                BookingError::Unavailable(cause.to_string())
            }
            AggregateError::DeserializationError(cause) => {
                BookingError::Internal(cause.to_string())
            }
            AggregateError::UnexpectedError(cause)
                if cause.downcast_ref::<Unstorable>().is_some() =>
            {
                BookingError::Malformed(
                    "the request holds a value the database cannot store".into(),
                )
            }
            AggregateError::UnexpectedError(cause) => BookingError::Unavailable(cause.to_string()),
        }
    }
}

impl From<ConcertError> for BookingError {
    fn from(error: ConcertError) -> Self {
        BookingError::OutOfRange(error.to_string())
    }
}

impl From<SeatError> for BookingError {
    fn from(error: SeatError) -> Self {
        match error {
            SeatError::SeatUnavailable | SeatError::AlreadySold { .. } => {
                BookingError::SeatUnavailable
            }
            SeatError::HoldLapsed { .. } | SeatError::HoldNotDue { .. } => {
                BookingError::HoldExpired
            }
            SeatError::HoldEndsBeforeItStarts => BookingError::Internal(error.to_string()),
            // Only a keyed retry derives an id that held before; it is
            // answered with that reservation (booking::holds).
            SeatError::ReservationUsed { .. } => BookingError::SeatUnavailable,
        }
    }
}

impl From<WalletError> for BookingError {
    fn from(error: WalletError) -> Self {
        match error {
            WalletError::AmountOutOfRange { .. }
            | WalletError::BalanceLimitExceeded { .. }
            | WalletError::ChargeIdTaken { .. }
            | WalletError::PaymentIdTaken { .. } => BookingError::OutOfRange(error.to_string()),
            WalletError::InsufficientBalance { balance, amount } => {
                BookingError::InsufficientBalance { balance, amount }
            }
            WalletError::AlreadyPaid { .. } => BookingError::AlreadyPaid,
            WalletError::UnknownPayment { .. } => BookingError::NotFound("payment"),
            WalletError::PaymentRefunded { .. } => BookingError::HoldExpired,
        }
    }
}

impl From<QueueTicketError> for BookingError {
    fn from(error: QueueTicketError) -> Self {
        match error {
            QueueTicketError::Expired => BookingError::TicketExpired,
            other => BookingError::Internal(other.to_string()),
        }
    }
}

impl From<PaymentRefused> for BookingError {
    fn from(error: PaymentRefused) -> Self {
        match error {
            PaymentRefused::Wallet(error) => error.into(),
            PaymentRefused::Seat(error) => error.into(),
            PaymentRefused::Ticket(error) => error.into(),
        }
    }
}
