//! What each endpoint's loop needs before it starts: signed-in users, a
//! concert's free seats, held reservations of funded users. Prepared outside
//! the measured loop, so the loop times only its endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};

use concert_client::{Client, Concert, Reservation};
use uuid::Uuid;

use super::PRICE;
use crate::api::{all_free_seats, charge, create_concert, date_sizes};
use crate::common::{active_users, for_each, progress, sign_in};
use crate::BoxError;

/// New users signed in during the setup (their tokens kept in the client),
/// handed out one a request.
pub struct SignedInUsers {
    users: Vec<Uuid>,
    next: AtomicUsize,
}

impl SignedInUsers {
    /// `count` new users, signed in `concurrency` at once.
    pub async fn prepare(api: &Client, count: usize, concurrency: usize) -> Result<Self, BoxError> {
        let users: Vec<Uuid> = (0..count).map(|_| Uuid::new_v4()).collect();
        sign_in(api, &users, concurrency).await?;
        Ok(Self {
            users,
            next: AtomicUsize::new(0),
        })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// A user not handed out before; an error once every one was.
    pub fn next(&self) -> Result<Uuid, BoxError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let user = self.users.get(i).copied();
        user.ok_or_else(|| "out of signed-in users (raise --prepared)".into())
    }
}

/// Dates as large as the API allows adding up to `total` (at least one seat).
pub fn date_plan(total: u32) -> Vec<(u32, i64)> {
    date_sizes(total.max(1))
        .into_iter()
        .map(|seats| (seats, PRICE))
        .collect()
}

/// Every free seat of the concert, through the listing.
pub async fn list_all_seats(
    api: &Client,
    token: &str,
    concert: &Concert,
) -> Result<Vec<Uuid>, BoxError> {
    Ok(list_seats_by_date(api, token, concert)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// Takes one item of each list in turn until all are used up.
pub fn interleave(lists: Vec<Vec<Uuid>>) -> Vec<Uuid> {
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    (0..longest)
        .flat_map(|i| lists.iter().filter_map(move |list| list.get(i).copied()))
        .collect()
}

/// Every free seat of the concert by date, through the listing.
pub async fn list_seats_by_date(
    api: &Client,
    token: &str,
    concert: &Concert,
) -> Result<Vec<Vec<Uuid>>, BoxError> {
    let total: u64 = concert.dates.iter().map(|d| u64::from(d.seats)).sum();
    let bar = progress("list seats", total);
    let mut by_date = Vec::new();
    for date in &concert.dates {
        let seats = all_free_seats(api, token, concert.concert_id, date.date_id, &bar).await?;
        by_date.push(seats.into_iter().map(|s| s.seat_id).collect());
    }
    bar.finish_and_clear();
    Ok(by_date)
}

/// `count` funded, admitted users each holding one distinct seat: (token, reservation).
pub async fn prepare_payments(
    api: &Client,
    count: usize,
    concurrency: usize,
) -> Result<Vec<(String, Uuid)>, BoxError> {
    let concert = create_concert(api, "bench pay", &date_plan(count as u32)).await?;
    let users = active_users(api, concert.concert_id, count, concurrency).await?;
    let client = api.clone();
    for_each(
        "charge",
        concurrency,
        users.iter().map(|(u, _)| *u).collect(),
        move |user| {
            let api = client.clone();
            async move { charge(&api, user, PRICE).await }
        },
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>, _>>()?;
    let seats = list_all_seats(api, &users[0].1, &concert).await?;
    let client = api.clone();
    let holds: Vec<(String, Uuid)> = users
        .into_iter()
        .zip(seats)
        .map(|((_, token), seat)| (token, seat))
        .collect();
    for_each("hold", concurrency, holds, move |(token, seat)| {
        let api = client.clone();
        async move {
            let reservation: Reservation = api.hold(&token, seat).await?.json("hold", &[201])?;
            Ok::<_, BoxError>((token, reservation.reservation_id))
        }
    })
    .await
    .into_iter()
    .collect()
}
