//! What the feed reads from the log: each positioned event reduced to what a
//! live stream shows (a seat's new status with its date and number, or a
//! ticket that moved), in one query per read, whatever the subscribers.

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::event_log;

/// A seat's status as the seat map shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeatStatus {
    Free,
    Held,
    Sold,
}

impl SeatStatus {
    /// The seat map's character: F, H or S.
    pub fn letter(self) -> u8 {
        match self {
            SeatStatus::Free => b'F',
            SeatStatus::Held => b'H',
            SeatStatus::Sold => b'S',
        }
    }

    /// The status a seat event leaves the seat in.
    pub(super) fn after(event_type: &str) -> Option<Self> {
        match event_type {
            "SeatHeld" => Some(SeatStatus::Held),
            "HoldExpired" | "HoldReleased" => Some(SeatStatus::Free),
            "SeatSold" => Some(SeatStatus::Sold),
            _ => None,
        }
    }
}

/// One positioned event, as the live streams see it.
#[derive(Debug, Clone)]
pub struct LogChange {
    pub position: i64,
    pub kind: ChangeKind,
}

/// What an event changed for live streams.
#[derive(Debug, Clone)]
pub enum ChangeKind {
    /// A seat of a date took a new status.
    Seat {
        date_id: Uuid,
        seat_id: Uuid,
        seat_no: i32,
        /// The event's sequence in the seat's stream.
        sequence: i64,
        status: SeatStatus,
    },
    /// A queue ticket was entered, admitted or expired.
    Ticket {
        ticket_id: Uuid,
        concert_id: Uuid,
        /// The event's sequence in the ticket's stream.
        sequence: i64,
        entered: bool,
    },
    /// Nothing a stream shows (concerts, wallets).
    Other,
}

#[derive(sqlx::FromRow)]
struct Row {
    position: i64,
    sequence: i64,
    event_type: String,
    seat_id: Option<Uuid>,
    date_id: Option<Uuid>,
    seat_no: Option<i32>,
    ticket_id: Option<Uuid>,
    concert_id: Option<Uuid>,
}

/// Each event `e`'s seat with its date and number, or its ticket with its
/// concert, from the read models. Each is its own key lookup (the `limit`s
/// keep the planner from hashing the whole tables, which it did when it
/// expected more events than a read finds: 7 ms a read under 64 holding
/// clients).
const SEAT_AND_TICKET: &str = "
    left join lateral (select seat_id, date_id, seat_no from seats
          where e.aggregate_type = 'Seat'
            and seat_id = (case when e.aggregate_type = 'Seat' then e.aggregate_id::uuid end)
          limit 1) s on true
    left join lateral (select ticket_id, concert_id from queue_tickets
          where e.aggregate_type = 'QueueTicket'
            and ticket_id = (case when e.aggregate_type = 'QueueTicket' then e.aggregate_id::uuid end)
          limit 1) t on true
    order by e.position";

/// What a row of a read shows.
const COLUMNS: &str =
    "e.position, e.sequence, e.event_type, s.seat_id, s.date_id, s.seat_no, t.ticket_id, t.concert_id";

/// Up to `limit` positioned events after `after` and up to `upto`.
pub async fn read(
    pool: &PgPool,
    after: i64,
    upto: i64,
    limit: i64,
) -> sqlx::Result<Vec<LogChange>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "select {COLUMNS}
         from (select position, sequence, event_type, aggregate_type, aggregate_id from events
               where position > $1 and position <= $2 order by position limit $3) e
         {SEAT_AND_TICKET}"
    ))
    .bind(after)
    .bind(upto)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(change).collect())
}

/// Positions the next committed events (see `event_log::position_next`) and
/// returns them, so the events this instance positions need no read of
/// their own: a batch of `event_log::POSITION_BATCH` and the rest of its
/// last transaction, in order. Events that another instance positioned are
/// below the first returned.
pub async fn position_and_read(pool: &PgPool) -> sqlx::Result<Vec<LogChange>> {
    let rows: Vec<Row> = event_log::position_next(
        pool,
        &format!("select {COLUMNS} from positioned e {SEAT_AND_TICKET}"),
    )
    .await?;
    Ok(rows.into_iter().map(change).collect())
}

fn change(row: Row) -> LogChange {
    let kind = match (
        row.seat_id,
        row.date_id,
        row.seat_no,
        row.ticket_id,
        row.concert_id,
    ) {
        (Some(seat_id), Some(date_id), Some(seat_no), _, _) => {
            match SeatStatus::after(&row.event_type) {
                Some(status) => ChangeKind::Seat {
                    date_id,
                    seat_id,
                    seat_no,
                    sequence: row.sequence,
                    status,
                },
                None => ChangeKind::Other,
            }
        }
        (_, _, _, Some(ticket_id), Some(concert_id)) => ChangeKind::Ticket {
            ticket_id,
            concert_id,
            sequence: row.sequence,
            entered: row.event_type == "QueueEntered",
        },
        _ => ChangeKind::Other,
    };
    LogChange {
        position: row.position,
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seat_event_leaves_its_status() {
        assert_eq!(SeatStatus::after("SeatHeld"), Some(SeatStatus::Held));
        assert_eq!(SeatStatus::after("HoldExpired"), Some(SeatStatus::Free));
        assert_eq!(SeatStatus::after("HoldReleased"), Some(SeatStatus::Free));
        assert_eq!(SeatStatus::after("SeatSold"), Some(SeatStatus::Sold));
        assert_eq!(SeatStatus::after("Charged"), None);
    }
}
