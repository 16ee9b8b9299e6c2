//! Where the server under load is, and the answers every scenario reads the
//! same way, over the shared `concert-client`: each returns the decoded body
//! or an error naming the call. Users sign in the first time the client acts
//! for them (timed as `sign-in`); a scenario that times entering the queue,
//! charging or reading a balance signs its users in during its setup
//! (`common::sign_in`), so the timed phase mints nothing.

use chrono::{DateTime, Utc};
use clap::Args;
use concert_client::{
    BookableDate, Client, Concert, DateList, EventPage, FreeSeat, NewConcert, NewDate, Options,
    SeatPage,
};
use indicatif::ProgressBar;
use serde::Serialize;
use uuid::Uuid;

use crate::BoxError;

/// Where the server under load is, as every scenario takes it.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ServerArgs {
    /// Server root, e.g. http://127.0.0.1:8080.
    #[arg(
        long,
        env = "CONCERT_BENCH_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// The server's CONCERT_ADMIN_TOKEN.
    #[arg(long, env = "CONCERT_ADMIN_TOKEN", hide_env_values = true)]
    #[serde(skip)]
    pub admin_token: String,
}

impl ServerArgs {
    /// A client for `concurrency` clients of this server, once it answers.
    pub async fn connect(&self, concurrency: usize) -> Result<Client, BoxError> {
        let options = Options {
            connections: concurrency,
            ..Options::default()
        };
        let api = Client::new(&[&self.url], &self.admin_token, options)?;
        if !api.healthy().await {
            return Err(format!("no server answers at {}", self.url).into());
        }
        Ok(api)
    }
}

/// Schedules a concert with dates of `(seats, price)`, an hour apart from 30
/// days on.
pub async fn create_concert(
    api: &Client,
    title: &str,
    dates: &[(u32, i64)],
) -> Result<Concert, BoxError> {
    let start: DateTime<Utc> = Utc::now() + chrono::Duration::days(30);
    let concert = NewConcert {
        title: title.to_string(),
        dates: dates
            .iter()
            .enumerate()
            .map(|(i, &(seats, price))| NewDate {
                starts_at: start + chrono::Duration::hours(i as i64),
                seats,
                price,
            })
            .collect(),
    };
    Ok(api
        .create_concert(&concert)
        .await?
        .json("create concert", &[201])?)
}

/// Most seats of one date (the API's limit).
const SEATS_PER_DATE: u32 = 50_000;

/// Seats of each date when `total` seats are split into dates as large as
/// the API allows.
pub fn date_sizes(total: u32) -> Vec<u32> {
    let mut sizes = Vec::new();
    let mut left = total;
    while left > 0 {
        let seats = left.min(SEATS_PER_DATE);
        sizes.push(seats);
        left -= seats;
    }
    sizes
}

/// Funds `user`'s wallet with `amount`; any answer but `200` is an error.
pub async fn charge(api: &Client, user: Uuid, amount: i64) -> Result<(), BoxError> {
    let answer = api.charge(user, amount, None).await?;
    if answer.status == 200 {
        Ok(())
    } else {
        Err(format!("charge: HTTP {}", answer.status).into())
    }
}

/// The user's balance.
pub async fn balance(api: &Client, user: Uuid) -> Result<i64, BoxError> {
    let balance: concert_client::Balance = api.balance(user).await?.json("balance", &[200])?;
    Ok(balance.balance)
}

/// The concert's dates on sale, seen with `token`.
pub async fn dates(
    api: &Client,
    token: &str,
    concert: Uuid,
) -> Result<Vec<BookableDate>, BoxError> {
    let list: DateList = api.dates(token, concert).await?.json("dates", &[200])?;
    Ok(list.dates)
}

/// One page of the date's free seats.
pub async fn seat_page(
    api: &Client,
    token: &str,
    concert: Uuid,
    date: Uuid,
    after_seat_no: i64,
    limit: Option<u32>,
) -> Result<SeatPage, BoxError> {
    Ok(api
        .seats(token, concert, date, after_seat_no, limit)
        .await?
        .json("seats", &[200])?)
}

/// Every free seat of the date, in pages of 5,000, counted on `bar`.
pub async fn all_free_seats(
    api: &Client,
    token: &str,
    concert: Uuid,
    date: Uuid,
    bar: &ProgressBar,
) -> Result<Vec<FreeSeat>, BoxError> {
    let mut seats = Vec::new();
    let mut after = 0i64;
    loop {
        let page = seat_page(api, token, concert, date, after, Some(5_000)).await?;
        bar.inc(page.seats.len() as u64);
        seats.extend(page.seats);
        match page.next_after_seat_no {
            Some(next) => after = i64::from(next),
            None => return Ok(seats),
        }
    }
}

/// A page of the audit log; `None` when the server has no audit API.
pub async fn audit_events(
    api: &Client,
    after: i64,
    limit: u32,
) -> Result<Option<EventPage>, BoxError> {
    let answer = api.audit_events(after, limit).await?;
    if answer.status == 404 || answer.status == 405 {
        return Ok(None);
    }
    Ok(Some(answer.json("audit events", &[200])?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_split_into_dates_of_at_most_50_000() {
        assert_eq!(date_sizes(120_000), [50_000, 50_000, 20_000]);
        assert_eq!(date_sizes(50), [50]);
        assert!(date_sizes(0).is_empty());
    }
}
