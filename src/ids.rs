//! Typed ids, so a seat id can never be passed where a wallet id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// A concert, with one or more dates.
    ConcertId
);
id_type!(
    /// One performance (date) of a concert.
    DateId
);
id_type!(
    /// One numbered seat of one date.
    SeatId
);
id_type!(
    /// A person using the service; also the id of their wallet.
    UserId
);
id_type!(
    /// One hold of one seat by one user.
    ReservationId
);
id_type!(
    /// One payment for one reservation.
    PaymentId
);
id_type!(
    /// A wallet top-up.
    ChargeId
);
id_type!(
    /// A user's place in a concert's waiting queue.
    TicketId
);

/// Namespace for the name-based (v5) ids derived below.
const CONCERT_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2b7e_9a34_4d1e_8c55_0b7d_3e21_a9f4);

impl SeatId {
    /// Seats are addressed by date and number, so their id is derived from both.
    pub fn of(date_id: DateId, seat_no: u32) -> Self {
        let mut name = date_id.0.as_bytes().to_vec();
        name.extend_from_slice(&seat_no.to_be_bytes());
        Self(Uuid::new_v5(&CONCERT_NAMESPACE, &name))
    }
}

impl TicketId {
    /// A user's n-th ticket for a concert: concurrent entries of one user
    /// compute the same id and so collide on one stream instead of queueing twice.
    pub fn of(concert_id: ConcertId, user_id: UserId, generation: i64) -> Self {
        let mut name = concert_id.0.as_bytes().to_vec();
        name.extend_from_slice(user_id.0.as_bytes());
        name.extend_from_slice(&generation.to_be_bytes());
        Self(Uuid::new_v5(&CONCERT_NAMESPACE, &name))
    }
}

/// Derives the id of an operation from a client's `Idempotency-Key`, so a retry
/// of the same request carries the same id and the aggregate can recognise it.
pub fn idempotent_id(user_id: UserId, operation: &str, key: &str) -> Uuid {
    let name = format!("{user_id}/{operation}/{key}");
    Uuid::new_v5(&CONCERT_NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_ids_differ_by_date_and_number() {
        let date = DateId::new();
        assert_eq!(SeatId::of(date, 1), SeatId::of(date, 1));
        assert_ne!(SeatId::of(date, 1), SeatId::of(date, 2));
        assert_ne!(SeatId::of(date, 1), SeatId::of(DateId::new(), 1));
    }

    #[test]
    fn ticket_ids_change_with_the_generation() {
        let (concert, user) = (ConcertId::new(), UserId::new());
        assert_eq!(
            TicketId::of(concert, user, 0),
            TicketId::of(concert, user, 0)
        );
        assert_ne!(
            TicketId::of(concert, user, 0),
            TicketId::of(concert, user, 1)
        );
    }
}
