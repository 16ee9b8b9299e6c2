//! The booking steps that take more than one command or a read before the
//! command: entering the queue, holding a seat, paying, and replaying answers
//! to retried requests.

mod error;
pub mod holds;
pub mod idempotency;
pub mod payment;
pub mod queue;
mod wait_estimate;

pub use error::BookingError;
