//! The tickets' read model for a batch of events in set-based statements:
//! its entries in one, its admissions and expiries in another.

use sqlx::PgConnection;

use super::stream_uuid;
use crate::aggregates::QueueTicketEvent;

/// Ends an insert of tickets `entered` (`returning concert_id, entry_no`):
/// a number recorded as unused that a ticket turns out to have (its entry
/// committed after the look for abandoned numbers took it for one) is in
/// use after all, so the positions behind it stay exact. Without it, the
/// ticket was counted twice once it left the line, as left and as unused,
/// and every place behind it read one short for good.
pub(super) const NUMBERS_IN_USE_AFTER_ALL: &str =
    "delete from queue_unused_entries u using entered e
     where u.concert_id = e.concert_id and u.entry_no = e.entry_no";

/// The `QueueEntered` events of a batch in one statement.
pub(super) async fn insert_entries(
    conn: &mut PgConnection,
    events: &[(&str, &QueueTicketEvent)],
) -> sqlx::Result<()> {
    let (mut tickets, mut concerts, mut users, mut entries, mut entered) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (aggregate_id, event) in events {
        if let QueueTicketEvent::QueueEntered {
            concert_id,
            user_id,
            entry_no,
            entered_at,
        } = event
        {
            tickets.push(stream_uuid(aggregate_id)?);
            concerts.push(concert_id.0);
            users.push(user_id.0);
            entries.push(*entry_no);
            entered.push(*entered_at);
        }
    }
    if !tickets.is_empty() {
        sqlx::query(
            &format!(
                "with entered as (
                    insert into queue_tickets (ticket_id, concert_id, user_id, entry_no, status, entered_at)
                    select t.ticket_id, t.concert_id, t.user_id, t.entry_no, 'waiting', t.entered_at
                    from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::timestamptz[])
                         as t(ticket_id, concert_id, user_id, entry_no, entered_at)
                    on conflict do nothing
                    returning concert_id, entry_no)
                 {NUMBERS_IN_USE_AFTER_ALL}"
            ),
        )
        .bind(tickets)
        .bind(concerts)
        .bind(users)
        .bind(entries)
        .bind(entered)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The admissions and expiries of a batch, one per ticket, in one statement:
/// each ticket's row, and each stripe moved once by the count of its tickets
/// that left the waiting line, the stripes taken in (concert, stripe) order.
/// A ticket that was not waiting (an active one expiring) moves no stripe, so
/// batches of payments do not wait for each other's stripes.
pub(super) async fn apply_moves(
    conn: &mut PgConnection,
    moves: &[(&str, &QueueTicketEvent)],
) -> sqlx::Result<()> {
    let (mut tickets, mut statuses, mut at, mut until) = (vec![], vec![], vec![], vec![]);
    for (aggregate_id, event) in moves {
        let (status, when, expires_at) = match event {
            QueueTicketEvent::TicketAdmitted {
                admitted_at,
                expires_at,
            } => ("active", *admitted_at, Some(*expires_at)),
            QueueTicketEvent::TicketExpired { expired_at, .. } => ("expired", *expired_at, None),
            QueueTicketEvent::QueueEntered { .. } => continue,
        };
        tickets.push(stream_uuid(aggregate_id)?);
        statuses.push(status);
        at.push(when);
        until.push(expires_at);
    }
    sqlx::query(
        "with m as (
             select * from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[])
                 as m(ticket_id, status, at, expires_at)),
         prior as (
             select t.concert_id, t.status, t.entry_no from queue_tickets t join m using (ticket_id)),
         changed as (
             update queue_tickets t set status = m.status,
                 admitted_at = case when m.status = 'active' then m.at else t.admitted_at end,
                 expires_at = case when m.status = 'active' then m.expires_at else t.expires_at end,
                 expired_at = case when m.status = 'expired' then m.at else t.expired_at end
             from m where t.ticket_id = m.ticket_id)
         insert into queue_progress (concert_id, stripe, left_waiting)
         select concert_id, entry_no % 16, count(*) from prior where status = 'waiting'
         group by 1, 2 order by 1, 2
         on conflict (concert_id, stripe)
         do update set left_waiting = queue_progress.left_waiting + excluded.left_waiting",
    )
    .bind(tickets)
    .bind(statuses)
    .bind(at)
    .bind(until)
    .execute(conn)
    .await?;
    Ok(())
}
